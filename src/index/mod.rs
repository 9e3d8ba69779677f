//! Chunk id → pack location. The repository's `index/` segments are the truth; the local
//! RocksDB database is a cache of them that can always be deleted and rebuilt
//! (from segments, or from pack trailers when segments are gone).

#[cfg(feature = "local-index")]
pub mod keyset;
pub mod pending;
#[cfg(feature = "local-index")]
pub mod rocks;
pub mod segment;

#[cfg(feature = "local-index")]
mod sync;

use std::path::{Path, PathBuf};

use crate::backend::Backend;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::{PackId, SegmentId};

#[cfg(feature = "local-index")]
pub use rocks::RocksIndex;
use segment::PackRecord;
#[cfg(feature = "local-index")]
pub use sync::{adopt_unlisted, rebuild, sync, DEGRADED};

/// Where one blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: PackId,
    /// Offset of the blob's envelope in the pack.
    pub offset: u64,
    /// Length of that envelope.
    pub length: u32,
    /// Plaintext length of the blob.
    pub raw_length: u32,
    /// Where the blob starts in the envelope's decompressed payload.
    pub unit_offset: u32,
    /// Length of the envelope's decompressed payload (`raw_length` when alone).
    pub unit_length: u32,
}

impl BlobLocation {
    /// Where `e`, an entry of `pack`, is.
    pub fn new(pack: PackId, e: &crate::pack::PackEntry) -> Self {
        Self {
            pack,
            offset: e.offset,
            length: e.length,
            raw_length: e.raw_length,
            unit_offset: e.unit_offset,
            unit_length: e.unit_length,
        }
    }

    /// True when the envelope holds this blob and nothing else.
    pub fn is_solo(&self) -> bool {
        self.unit_offset == 0 && self.unit_length == self.raw_length
    }

    /// The blob's share of its envelope's stored bytes (all of it when alone; in
    /// proportion to its plaintext in a unit, rounded up so that the shares of a unit
    /// never add up to less than the unit: prune must not see a live unit as waste).
    pub fn stored_share(&self) -> u64 {
        if self.is_solo() || self.unit_length == 0 {
            return u64::from(self.length);
        }
        (u64::from(self.length) * u64::from(self.raw_length)).div_ceil(u64::from(self.unit_length))
    }
}

/// What a sync or rebuild did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SyncReport {
    /// Segments merged into the local index.
    pub segments_merged: usize,
    /// Packs whose trailers were read because no segment covered them.
    pub packs_from_trailers: usize,
    /// Segments that could not be read (and were skipped), with the reason.
    pub damaged_segments: Vec<String>,
}

/// Reads, authenticates and decodes one segment from the backend.
pub fn read_segment(
    backend: &dyn Backend,
    key: &MasterKey,
    id: &SegmentId,
) -> Result<Vec<PackRecord>> {
    let what = format!("index segment {}", id.short());
    let bytes = backend.get(&segment::segment_path(id))?;
    if crate::hash::content_hash(&bytes) != id.0 {
        return Err(Error::corrupt(&what, "content does not match its name"));
    }
    let plain = key.open(&bytes, &what)?;
    segment::decode(&plain, &what)
}

/// Lists the segment ids present in the repository.
pub fn list_segments(backend: &dyn Backend) -> Result<Vec<SegmentId>> {
    Ok(backend
        .list("index/")?
        .into_iter()
        .filter_map(|o| o.path.strip_prefix("index/").and_then(|n| n.parse().ok()))
        .collect())
}

/// Default location of a repository's local index under a cache directory.
pub fn index_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("index")
}
