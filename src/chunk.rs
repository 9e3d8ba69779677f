//! Content-defined chunking: FastCDC 2020 with a gear table keyed per repository.
//!
//! Pure: takes any `Read`, yields owned chunks. Parameters live in the repository config
//! so every client cuts the same boundaries (format-spec/chunking.md).
//!
//! The stream reader is ours rather than `fastcdc::StreamCDC`: that one zeroes a max-size
//! (8 MiB) buffer per stream and shifts it after every chunk, which cost more than the
//! compression itself on trees of small files. Boundaries are identical (same `cut_gear`).

use std::io::Read;

use fastcdc::v2020::{cut_gear, get_gear_with_seed, Normalization, MASKS};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest `max` a config may state: no chunk is longer than this.
pub const MAX_CHUNK_LIMIT: u32 = 16 << 20;

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

    /// Defaults for BSON collection streams of new repositories: 8 KiB / 32 KiB / 128 KiB.
    /// A changed document rewrites its chunk (about 40 KiB of BSON): 10 scattered changes
    /// in a 20,000-document collection add 6–7% of its stored size, against 12% with
    /// [`ChunkerParams::BSON_V1`], for 2.5% more stored bytes (smaller zstd frames); see
    /// `benches/bson_chunking.rs`.
    pub const BSON: ChunkerParams = ChunkerParams {
        min: 8 * 1024,
        avg: 32 * 1024,
        max: 128 * 1024,
        normalization: 1,
    };

    /// Defaults for files shorter than [`SmallFiles::DEFAULT_BELOW`] (format version 4):
    /// 8 KiB / 32 KiB / 128 KiB. With [`ChunkerParams::FILES`] every file under 512 KiB is
    /// one chunk and an edit anywhere in it stores the whole file again; cut finer, an edit
    /// stores about one 32 KiB chunk. On README's real-world benchmark the nightly change
    /// adds 13% fewer bytes, the first backup stores 0.2% more (more chunk ids) and needs
    /// about 8% more CPU (the gear hash runs over the small files' bytes).
    pub const SMALL_FILES: ChunkerParams = Self::BSON;

    /// What repositories created before 2026-12 record for BSON: 16 KiB / 64 KiB / 256 KiB.
    /// They keep it (the config is written once), so their chunks keep deduplicating.
    pub const BSON_V1: ChunkerParams = ChunkerParams {
        min: 16 * 1024,
        avg: 64 * 1024,
        max: 256 * 1024,
        normalization: 1,
    };

    /// Checks the limits against what FastCDC 2020 accepts.
    pub fn validate(&self) -> Result<()> {
        let ok = (64..=1_048_576).contains(&self.min)
            && (256..=4_194_304).contains(&self.avg)
            && (1024..=MAX_CHUNK_LIMIT).contains(&self.max)
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

/// Finer chunking for files shorter than a limit (the config's `chunker_small_files`,
/// format version 4). Files at or over the limit keep `chunker_files`: their bytes are
/// most of a large repository, and chunk count (index size) follows the average size.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SmallFiles {
    /// Files shorter than this many bytes use `params`.
    pub below: u64,
    /// Their FastCDC limits.
    #[serde(flatten)]
    pub params: ChunkerParams,
}

impl SmallFiles {
    /// The limit `init` writes: 1 MiB. Larger media files (photos, audio) rarely change in
    /// place and would only multiply chunk ids; files under it are where edits happen
    /// (sources, documents, configuration, small databases).
    pub const DEFAULT_BELOW: u64 = 1 << 20;

    /// What `init` writes into a version 4 config.
    pub const DEFAULT: SmallFiles = SmallFiles {
        below: Self::DEFAULT_BELOW,
        params: ChunkerParams::SMALL_FILES,
    };

    /// Checks the limits.
    pub fn validate(&self) -> Result<()> {
        self.params.validate()?;
        if !(1..=1 << 30).contains(&self.below) {
            return Err(Error::Invalid(format!(
                "small-file limit {} out of range 1..=1 GiB",
                self.below
            )));
        }
        Ok(())
    }
}

/// How a repository cuts file contents: by `chunker_files`, or finer for small files.
/// The snapshot picks each file's chunker here. (Restore and scan never re-cut to
/// compare: ops/compare.rs reads in the stored chunks' lengths.)
#[derive(Clone, Copy, Debug)]
pub struct FileChunkers {
    large: Chunker,
    small: Option<(u64, Chunker)>,
}

impl FileChunkers {
    /// The chunkers for a config's parameters and a key's seed.
    pub fn new(files: ChunkerParams, small: Option<SmallFiles>, seed: u64) -> Self {
        Self {
            large: Chunker::new(files, seed),
            small: small.map(|s| (s.below, Chunker::new(s.params, seed))),
        }
    }

    /// The chunker for a file of `size` bytes; `None` (length unknown before reading, a
    /// stream) takes the large-file one.
    pub fn for_size(&self, size: Option<u64>) -> Chunker {
        match (self.small, size) {
            (Some((below, small)), Some(n)) if n < below => small,
            _ => self.large,
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

    /// Splits a stream into chunks; memory use is bounded by twice the maximum chunk size
    /// (typically eight average sizes).
    pub fn chunks<R: Read>(&self, reader: R) -> ChunkStream<R> {
        self.chunks_with_hint(reader, 0)
    }

    /// Like [`Chunker::chunks`], with the expected stream length (a file's size) so a
    /// small file is read into one exactly sized buffer and handed out without a copy.
    pub fn chunks_with_hint<R: Read>(&self, reader: R, size_hint: u64) -> ChunkStream<R> {
        let p = self.params;
        let bits = fastcdc::v2020::logarithm2(p.avg);
        let norm = p.level().bits();
        let mask_s = MASKS[(bits + norm) as usize];
        let mask_l = MASKS[(bits - norm) as usize];
        let (gear, gear_ls) = get_gear_with_seed(self.seed);
        let max = p.max as usize;
        let hint = usize::try_from(size_hint).unwrap_or(usize::MAX);
        ChunkStream {
            reader,
            buf: Vec::with_capacity(hint.saturating_add(1).min(8 * p.avg as usize).min(2 * max)),
            pos: 0,
            eof: false,
            min: p.min as usize,
            avg: p.avg as usize,
            max,
            masks: [mask_s, mask_l, mask_s << 1, mask_l << 1],
            gear,
            gear_ls,
            zero_cut: None,
            lent: 0,
        }
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

/// Whether `data` is all zero bytes (stops at the first 4 KiB block that is not).
pub fn is_zero(data: &[u8]) -> bool {
    data.chunks(4096)
        .all(|block| block.iter().fold(0u8, |acc, &b| acc | b) == 0)
}

/// Chunks of one stream, cut as they are read.
pub struct ChunkStream<R> {
    reader: R,
    /// Bytes read and not yet handed out start at `pos`.
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    min: usize,
    avg: usize,
    max: usize,
    /// mask_s, mask_l and their left-shifted twins.
    masks: [u64; 4],
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
    /// Where a chunk starting with `max` zero bytes is cut (found once, on first need).
    zero_cut: Option<usize>,
    /// Length of the chunk lent at `pos` by `next_chunk` and not taken.
    lent: usize,
}

impl<R: Read> ChunkStream<R> {
    /// Bytes we like to have ahead of `pos` before cutting: a cut usually falls within
    /// about one average size, so a few averages serve almost every chunk without holding
    /// a full maximum (8 MiB) per stream.
    fn lookahead(&self) -> usize {
        (4 * self.avg).clamp(self.min + 1, self.max)
    }

    /// Makes at least `need` bytes available at `pos` unless the stream ends first. Reads
    /// twice what is needed, so the tail moved to the front is at most one half of it.
    fn fill(&mut self, need: usize) -> std::io::Result<()> {
        if self.eof || self.buf.len() - self.pos >= need {
            return Ok(());
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let want = (2 * need).min(need + self.max) - self.buf.len();
        // `take(..).read_to_end` reads into spare capacity without zeroing it first.
        let got = (&mut self.reader)
            .take(want as u64)
            .read_to_end(&mut self.buf)?;
        if got < want {
            self.eof = true;
        }
        Ok(())
    }

    /// Where FastCDC cuts `data` (only its first `max` bytes count).
    fn cut(&self, data: &[u8]) -> usize {
        let [mask_s, mask_l, mask_s_ls, mask_l_ls] = self.masks;
        cut_gear(
            data,
            self.min,
            self.avg,
            self.max,
            mask_s,
            mask_l,
            mask_s_ls,
            mask_l_ls,
            &self.gear,
            &self.gear_ls,
        )
        .1
    }

    /// Length of the next chunk at `pos`, reading more first when the cut depends on it.
    fn next_len(&mut self) -> std::io::Result<usize> {
        let mut need = self.lookahead();
        loop {
            self.fill(need)?;
            let avail = &self.buf[self.pos..];
            // A run of zeros (a hole, a preallocated region) is cut where any other run of
            // `max` zeros is: found once instead of hashing every byte again.
            if avail.len() >= self.max && is_zero(&avail[..self.max]) {
                let cut = match self.zero_cut {
                    Some(cut) => cut,
                    None => self.cut(&vec![0u8; self.max]),
                };
                self.zero_cut = Some(cut);
                return Ok(cut);
            }
            let len = self.cut(avail);
            // A cut before the end of what we hold is final; at the end it is only final
            // when the stream ended or we already hold a maximum-size chunk.
            if len < avail.len() || self.eof || avail.len() >= self.max {
                return Ok(len);
            }
            need = self.max;
        }
    }
}

impl<R: Read> ChunkStream<R> {
    /// Cuts the next chunk and lends it: `None` at the end of the stream. The caller then
    /// either takes it ([`ChunkStream::take_chunk`]) or lets the next call drop it, so a chunk
    /// the repository already holds is hashed where it lies and never copied.
    pub fn next_chunk(&mut self) -> Option<std::io::Result<&[u8]>> {
        self.pos += std::mem::take(&mut self.lent);
        match self.next_len() {
            Ok(0) => None,
            Ok(len) => {
                self.lent = len;
                Some(Ok(&self.buf[self.pos..self.pos + len]))
            }
            Err(e) => {
                self.eof = true;
                self.buf.clear();
                self.pos = 0;
                Some(Err(e))
            }
        }
    }

    /// The chunk [`ChunkStream::next_chunk`] lent last, as an owned buffer (empty when
    /// none is lent).
    pub fn take_chunk(&mut self) -> Vec<u8> {
        let len = std::mem::take(&mut self.lent);
        if self.pos == 0 && len == self.buf.len() && self.eof {
            // The whole (small) stream is one chunk: hand the buffer over as it is.
            return std::mem::take(&mut self.buf);
        }
        let chunk = self.buf[self.pos..self.pos + len].to_vec();
        self.pos += len;
        chunk
    }
}

impl<R: Read> Iterator for ChunkStream<R> {
    type Item = std::io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        let lent = self.next_chunk()?.map(|_| ());
        Some(lent.map(|()| self.take_chunk()))
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

    #[test]
    fn small_files_take_the_fine_chunker_and_the_rest_the_large_one() {
        let c = FileChunkers::new(ChunkerParams::FILES, Some(SmallFiles::DEFAULT), 7);
        let below = SmallFiles::DEFAULT_BELOW;
        for (size, want) in [
            (Some(0), ChunkerParams::SMALL_FILES),
            (Some(below - 1), ChunkerParams::SMALL_FILES),
            (Some(below), ChunkerParams::FILES),
            (Some(u64::MAX), ChunkerParams::FILES),
            (None, ChunkerParams::FILES),
        ] {
            assert_eq!(c.for_size(size).params(), want, "{size:?}");
        }
        let single = FileChunkers::new(ChunkerParams::FILES, None, 7);
        assert_eq!(single.for_size(Some(10)).params(), ChunkerParams::FILES);
        // An edit in the middle of a 200 KiB file changes one or two of its chunks.
        let data = test_bytes(200 << 10, 0x9e37_79b9_7f4a_7c15);
        let mut edited = data.clone();
        edited.splice(100_000..100_000, *b"an edit");
        let chunker = c.for_size(Some(data.len() as u64));
        let (a, b) = (cuts(&chunker, &data), cuts(&chunker, &edited));
        assert!(a.len() >= 3, "{a:?}");
        let kept = b.iter().filter(|x| a.contains(x)).count();
        assert!(kept + 2 >= a.len(), "{a:?} {b:?}");
    }

    /// The hashes of `data`'s chunks.
    fn cuts(c: &Chunker, data: &[u8]) -> Vec<blake3::Hash> {
        let mut at = 0;
        c.cut_points(data)
            .into_iter()
            .map(|n| {
                at += n;
                blake3::hash(&data[at - n..at])
            })
            .collect()
    }

    #[test]
    fn small_file_limits_are_checked() {
        assert!(SmallFiles::DEFAULT.validate().is_ok());
        for bad in [
            SmallFiles {
                below: 0,
                ..SmallFiles::DEFAULT
            },
            SmallFiles {
                below: (1 << 30) + 1,
                ..SmallFiles::DEFAULT
            },
            SmallFiles {
                params: ChunkerParams {
                    min: 1,
                    ..ChunkerParams::SMALL_FILES
                },
                ..SmallFiles::DEFAULT
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
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
        let c = Chunker::new(ChunkerParams::BSON_V1, 99);
        let lens = c.cut_points(&data);
        assert_eq!(lens, GOLDEN_BSON_V1.to_vec());
        let c = Chunker::new(ChunkerParams::BSON, 99);
        let lens = c.cut_points(&data);
        assert_eq!(lens.iter().sum::<usize>(), data.len());
        assert_eq!(lens, GOLDEN_BSON.to_vec());
    }

    const GOLDEN_FILES: &[usize] = &[
        1292120, 1324480, 2164374, 1232158, 1065491, 1104294, 769443, 1190195, 1732965, 1472226,
        2284889, 733648, 410933,
    ];
    const GOLDEN_BSON: &[usize] = &[
        27198, 22336, 60365, 12340, 32882, 41310, 28681, 38780, 33817, 55835, 35466, 49319, 23852,
        34243, 44270, 26363, 34453, 55441, 28730, 82790, 33441, 34940, 26602, 72538, 35500, 36569,
        39461, 1054,
    ];
    const GOLDEN_BSON_V1: &[usize] = &[
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

    /// A reader that hands out at most `step` bytes per call, like a pipe or socket.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn stream_refills_match_buffer_boundaries() {
        // Many refills (max is 256 KiB), reads of odd sizes, and a size hint that is wrong.
        let data = test_bytes(3 * 1024 * 1024 + 5, 21);
        let c = Chunker::new(ChunkerParams::BSON, 77);
        let reader = Trickle {
            data: &data,
            step: 4093,
        };
        let parts: Vec<Vec<u8>> = c
            .chunks_with_hint(reader, 1000)
            .map(|r| r.unwrap())
            .collect();
        let lens: Vec<usize> = parts.iter().map(Vec::len).collect();
        assert_eq!(lens, c.cut_points(&data));
        assert_eq!(parts.concat(), data);
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

        #[test]
        fn stream_boundaries_equal_buffer_boundaries(
            len in 0usize..1_500_000,
            seed in any::<u64>(),
            step in 1usize..300_000,
            small in any::<bool>(),
        ) {
            let data = test_bytes(len, seed | 1);
            // BSON limits read a whole maximum ahead; the small ones (max = 16 averages)
            // exercise cuts decided on a partial lookahead and the read-more path.
            let params = if small {
                ChunkerParams { min: 256, avg: 1024, max: 16_384, normalization: 1 }
            } else {
                ChunkerParams::BSON
            };
            let c = Chunker::new(params, seed);
            let reader = Trickle { data: &data, step };
            let lens: Vec<usize> = c
                .chunks_with_hint(reader, len as u64)
                .map(|r| r.unwrap().len())
                .collect();
            prop_assert_eq!(lens, c.cut_points(&data));
        }

        /// Runs of zeros (holes, preallocated space) take the shortcut; their boundaries
        /// must still be FastCDC's, wherever a run starts, ends or meets a read's end.
        #[test]
        fn zero_runs_are_cut_where_fastcdc_cuts_them(
            runs in proptest::collection::vec((any::<bool>(), 1usize..70_000), 1..12),
            seed in any::<u64>(),
            step in 1usize..100_000,
        ) {
            let mut data = Vec::new();
            for (i, (zero, len)) in runs.into_iter().enumerate() {
                if zero {
                    data.resize(data.len() + len, 0);
                } else {
                    data.extend(test_bytes(len, (seed ^ i as u64) | 1));
                }
            }
            let params = ChunkerParams { min: 256, avg: 1024, max: 16_384, normalization: 1 };
            let c = Chunker::new(params, seed);
            let reader = Trickle { data: &data, step };
            let parts: Vec<Vec<u8>> = c.chunks(reader).map(|r| r.unwrap()).collect();
            let lens: Vec<usize> = parts.iter().map(Vec::len).collect();
            prop_assert_eq!(lens, c.cut_points(&data));
            prop_assert_eq!(parts.concat(), data);
        }
    }

    #[test]
    fn lent_chunks_are_skipped_unless_taken() {
        let data = test_bytes(3 << 20, 13);
        let c = Chunker::new(ChunkerParams::BSON, 5);
        let whole: Vec<Vec<u8>> = c.chunks(&data[..]).map(|r| r.unwrap()).collect();
        let mut stream = c.chunks(&data[..]);
        let mut i = 0;
        while let Some(chunk) = stream.next_chunk() {
            assert_eq!(chunk.unwrap(), &whole[i][..]);
            if i % 3 == 0 {
                assert_eq!(stream.take_chunk(), whole[i]);
            }
            i += 1;
        }
        assert_eq!(i, whole.len());
        // A small stream's one chunk is its whole buffer, handed over.
        let mut one = c.chunks_with_hint(&b"tiny"[..], 4);
        assert_eq!(one.next_chunk().unwrap().unwrap(), b"tiny");
        assert_eq!(one.take_chunk(), b"tiny");
        assert!(one.next_chunk().is_none());
    }

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[]));
        assert!(is_zero(&[0; 10_000]));
        for at in [0, 4095, 4096, 9_999] {
            let mut d = vec![0; 10_000];
            d[at] = 1;
            assert!(!is_zero(&d), "{at}");
        }
    }

    #[test]
    fn a_long_zero_run_is_cut_as_fastcdc_cuts_it() {
        // Large enough for many maximum-size chunks in a row, with data on both sides.
        let mut data = test_bytes(300_000, 5);
        data.resize(data.len() + 20 * 1024 * 1024 + 777, 0);
        data.extend(test_bytes(500_000, 6));
        let c = Chunker::new(ChunkerParams::FILES, 11);
        let lens: Vec<usize> = c.chunks(&data[..]).map(|r| r.unwrap().len()).collect();
        assert_eq!(lens, c.cut_points(&data));
    }
}
