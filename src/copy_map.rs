//! Remembers, in the destination's local cache, which destination chunk id each source
//! chunk id became in earlier copies. Chunk ids are keyed hashes of the content, so the
//! translation never changes; with it, a repeated `repo copy` skips reading every chunk
//! the destination already holds (only new data crosses the network).
//!
//! File `copied-chunks-<source repository id>` in the destination's cache directory:
//! records of 72 bytes — source id (32), destination id (32), the first 8 bytes of
//! BLAKE3(source id ‖ destination id). A record whose check fails (a torn or damaged
//! cache) is ignored: the cache only ever saves reads, and the destination's index still
//! decides whether a chunk is there.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::id::{ChunkId, RepoId};

const RECORD: usize = 72;

/// Source → destination chunk ids of earlier copies between two repositories.
pub struct ChunkMap {
    path: PathBuf,
    known: HashMap<ChunkId, ChunkId>,
    fresh: Vec<(ChunkId, ChunkId)>,
}

fn check(src: &[u8], dst: &[u8]) -> [u8; 8] {
    let mut h = blake3::Hasher::new();
    h.update(src);
    h.update(dst);
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.finalize().as_bytes()[..8]);
    out
}

/// Records for `pairs` (source id, destination id).
pub fn encode(pairs: &[(ChunkId, ChunkId)]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(pairs.len() * RECORD);
    for (s, d) in pairs {
        buf.extend_from_slice(s.as_bytes());
        buf.extend_from_slice(d.as_bytes());
        buf.extend_from_slice(&check(s.as_bytes(), d.as_bytes()));
    }
    buf
}

/// The intact records of a map file (damaged ones and a torn tail are skipped).
pub fn parse(bytes: &[u8]) -> HashMap<ChunkId, ChunkId> {
    bytes
        .chunks_exact(RECORD)
        .filter(|r| check(&r[..32], &r[32..64]) == r[64..])
        .filter_map(|r| {
            Some((
                ChunkId::from_slice(&r[..32])?,
                ChunkId::from_slice(&r[32..64])?,
            ))
        })
        .collect()
}

impl ChunkMap {
    /// Loads what earlier copies from repository `source` recorded in the destination's
    /// cache directory `dir` (nothing if none).
    pub fn load(dir: &Path, source: &RepoId) -> Self {
        let path = dir.join(format!("copied-chunks-{}", source.to_hex()));
        let known = parse(&std::fs::read(&path).unwrap_or_default());
        Self {
            path,
            known,
            fresh: Vec::new(),
        }
    }

    /// The destination id recorded for `src`, if any.
    pub fn get(&self, src: &ChunkId) -> Option<ChunkId> {
        self.known.get(src).copied()
    }

    /// Notes a translation made in this run (saved by [`ChunkMap::save`]).
    pub fn note(&mut self, src: ChunkId, dst: ChunkId) {
        if self.known.insert(src, dst).is_none() {
            self.fresh.push((src, dst));
        }
    }

    /// Appends this run's translations; call once their chunks are durable in the
    /// destination (they would be rechecked against its index anyway).
    pub fn save(&mut self) -> Result<()> {
        if self.fresh.is_empty() {
            return Ok(());
        }
        let buf = encode(&self.fresh);
        // One append: concurrent copies interleave whole records, never bytes of one.
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(&buf))
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?;
        self.fresh.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn damaged_records_and_a_torn_tail_are_ignored() {
        let (a, b, c) = (ChunkId([1; 32]), ChunkId([2; 32]), ChunkId([3; 32]));
        let mut bytes = encode(&[(a, b), (b, c)]);
        bytes[40] ^= 1; // the first record's destination id
        bytes.extend_from_slice(&[9; 30]);
        let parsed = parse(&bytes);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed.get(&b), Some(&c));
    }

    proptest! {
        #[test]
        fn records_round_trip(pairs in proptest::collection::vec((any::<[u8; 32]>(), any::<[u8; 32]>()), 0..20)) {
            let pairs: Vec<(ChunkId, ChunkId)> =
                pairs.into_iter().map(|(s, d)| (ChunkId(s), ChunkId(d))).collect();
            let want: HashMap<ChunkId, ChunkId> = pairs.iter().copied().collect();
            prop_assert_eq!(parse(&encode(&pairs)), want);
        }

        #[test]
        fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&bytes);
        }
    }
}
