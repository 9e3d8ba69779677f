//! Content-defined chunking: FastCDC 2020 with a gear table keyed per repository.
//!
//! Pure: takes any `Read`, yields owned chunks. Parameters live in the repository config
//! so every client cuts the same boundaries (format-spec/chunking.md).

use std::io::Read;

use fastcdc::v2020::{Normalization, StreamCDC};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// FastCDC size limits, in bytes.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkerParams {
    /// No chunk is shorter, except the last of a stream.
    pub min: u32,
    /// Target average size.
    pub avg: u32,
    /// No chunk is longer.
    pub max: u32,
    /// FastCDC normalization level (0–3).
    pub normalization: u8,
}

impl ChunkerParams {
    /// Defaults for file contents: 512 KiB / 1 MiB / 8 MiB.
    pub const FILES: ChunkerParams = ChunkerParams {
        min: 512 * 1024,
        avg: 1024 * 1024,
        max: 8 * 1024 * 1024,
        normalization: 1,
    };

    /// Defaults for BSON collection streams: 16 KiB / 64 KiB / 256 KiB.
    pub const BSON: ChunkerParams = ChunkerParams {
        min: 16 * 1024,
        avg: 64 * 1024,
        max: 256 * 1024,
        normalization: 1,
    };

    /// Checks the limits against what FastCDC 2020 accepts.
    pub fn validate(&self) -> Result<()> {
        let ok = (64..=1_048_576).contains(&self.min)
            && (256..=4_194_304).contains(&self.avg)
            && (1024..=16_777_216).contains(&self.max)
            && self.min <= self.avg
            && self.avg <= self.max
            && self.normalization <= 3;
        if ok {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "chunker parameters out of range: {self:?}"
            )))
        }
    }

    fn level(&self) -> Normalization {
        match self.normalization {
            0 => Normalization::Level0,
            1 => Normalization::Level1,
            2 => Normalization::Level2,
            _ => Normalization::Level3,
        }
    }
}

/// A configured chunker; cheap to clone and share across threads.
#[derive(Clone, Copy, Debug)]
pub struct Chunker {
    params: ChunkerParams,
    seed: u64,
}

impl Chunker {
    /// A chunker with the given limits and gear-table seed.
    pub fn new(params: ChunkerParams, seed: u64) -> Self {
        Self { params, seed }
    }

    /// The limits in use.
    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Splits a stream into chunks; memory use is bounded by the maximum chunk size.
    pub fn chunks<R: Read>(&self, reader: R) -> impl Iterator<Item = std::io::Result<Vec<u8>>> {
        let p = self.params;
        StreamCDC::with_level_and_seed(reader, p.min, p.avg, p.max, p.level(), self.seed).map(|r| {
            match r {
                Ok(c) => Ok(c.data),
                Err(fastcdc::v2020::Error::IoError(e)) => Err(e),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            }
        })
    }

    /// Chunk lengths of an in-memory buffer (used by tests and benches).
    pub fn cut_points(&self, data: &[u8]) -> Vec<usize> {
        let p = self.params;
        fastcdc::v2020::FastCDC::with_level_and_seed(
            data,
            p.min,
            p.avg,
            p.max,
            p.level(),
            self.seed,
        )
        .map(|c| c.length)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Deterministic pseudo-random bytes (xorshift), so golden values need no fixture file.
    fn test_bytes(len: usize, mut state: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(&state.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Golden boundaries: if this changes, every existing repository loses its dedup.
    #[test]
    fn golden_boundaries_files() {
        let data = test_bytes(16 * 1024 * 1024, 0x1234_5678_9abc_def1);
        let c = Chunker::new(ChunkerParams::FILES, 0x0102_0304_0506_0708);
        let lens = c.cut_points(&data);
        assert_eq!(lens.iter().sum::<usize>(), data.len());
        assert_eq!(lens, GOLDEN_FILES.to_vec());
    }

    #[test]
    fn golden_boundaries_bson() {
        let data = test_bytes(1024 * 1024, 42);
        let c = Chunker::new(ChunkerParams::BSON, 99);
        let lens = c.cut_points(&data);
        assert_eq!(lens, GOLDEN_BSON.to_vec());
    }

    const GOLDEN_FILES: &[usize] = &[
        1292120, 1324480, 2164374, 1232158, 1065491, 1104294, 769443, 1190195, 1732965, 1472226,
        2284889, 733648, 410933,
    ];
    const GOLDEN_BSON: &[usize] = &[
        27198, 22336, 105587, 69991, 69734, 205246, 93354, 100612, 46960, 69174, 25424, 27838,
        95287, 76522, 13313,
    ];

    #[test]
    fn seed_changes_boundaries() {
        let data = test_bytes(8 * 1024 * 1024, 5);
        let a = Chunker::new(ChunkerParams::FILES, 1).cut_points(&data);
        let b = Chunker::new(ChunkerParams::FILES, 2).cut_points(&data);
        assert_ne!(a, b);
    }

    #[test]
    fn stream_matches_buffer() {
        let data = test_bytes(5 * 1024 * 1024 + 17, 9);
        let c = Chunker::new(ChunkerParams::FILES, 3);
        let streamed: Vec<usize> = c.chunks(&data[..]).map(|r| r.unwrap().len()).collect();
        assert_eq!(streamed, c.cut_points(&data));
    }

    #[test]
    fn small_input_is_one_chunk_and_empty_is_none() {
        let c = Chunker::new(ChunkerParams::FILES, 3);
        assert_eq!(c.chunks(&b"tiny"[..]).count(), 1);
        assert_eq!(c.chunks(&b""[..]).count(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn chunks_reassemble(len in 0usize..300_000, seed in any::<u64>()) {
            let data = test_bytes(len, seed | 1);
            let c = Chunker::new(ChunkerParams::BSON, seed);
            let parts: Vec<Vec<u8>> = c.chunks(&data[..]).map(|r| r.unwrap()).collect();
            for p in parts.iter().rev().skip(1) {
                prop_assert!(p.len() >= ChunkerParams::BSON.min as usize);
            }
            for p in &parts {
                prop_assert!(p.len() <= ChunkerParams::BSON.max as usize);
            }
            prop_assert_eq!(parts.concat(), data);
        }
    }
}
