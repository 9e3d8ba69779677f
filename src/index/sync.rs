//! Keeping the local RocksDB index in step with the repository's segments.
//!
//! Nothing here writes to the repository: the local index is a cache that readers build
//! without any lock, and a reader that wrote segments could list packs a running prune is
//! about to delete. Only [`adopt_unlisted`], called under the exclusive lock, writes.

use std::collections::HashSet;
use std::path::Path;

use super::pending;
use super::segment::{self, PackRecord};
use super::{list_segments, read_segment, RocksIndex, SyncReport};
use crate::backend::Backend;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::{PackId, SegmentId};
use crate::pack::reader::read_trailer;

/// Flag set on a local index that holds packs read from trailers because a segment was
/// damaged: such an index is rebuilt on the next open instead of being trusted, so a pack
/// that prune marked for deletion meanwhile never stays in it.
pub const DEGRADED: &str = "degraded";

/// Brings the local index up to date with the repository's segments: merges new ones and,
/// if a segment it had merged is gone (a prune compacted it), says to start over.
/// Returns the report and whether the caller must rebuild from scratch.
pub fn sync(
    index: &RocksIndex,
    backend: &dyn Backend,
    key: &MasterKey,
) -> Result<(SyncReport, bool)> {
    if index.flag(DEGRADED)? {
        return Ok((SyncReport::default(), true));
    }
    let present: HashSet<SegmentId> = list_segments(backend)?.into_iter().collect();
    let merged: HashSet<SegmentId> = index.segments()?.into_iter().collect();
    if merged.iter().any(|s| !present.contains(s)) {
        return Ok((SyncReport::default(), true));
    }
    let mut report = SyncReport::default();
    let mut todo: Vec<&SegmentId> = present.iter().filter(|s| !merged.contains(*s)).collect();
    todo.sort();
    for seg in todo {
        match read_segment(backend, key, seg) {
            Ok(packs) => {
                index.insert(Some(seg), &packs)?;
                report.segments_merged += 1;
            }
            Err(e @ Error::Corrupt { .. }) => report.damaged_segments.push(e.to_string()),
            // Deleted since the listing: a prune replaced it; the next open starts over.
            Err(Error::Missing(_)) => return Ok((report, true)),
            Err(e) => return Err(e),
        }
    }
    if !report.damaged_segments.is_empty() {
        // The damaged segments' packs are still there: find them by their trailers, for
        // this process only (the index is marked for a rebuild on the next open).
        report.packs_from_trailers = recover_locally(index, backend, key)?;
    }
    if report.segments_merged > 0 || report.packs_from_trailers > 0 {
        index.flush()?;
    }
    Ok((report, false))
}

/// Rebuilds an index directory from scratch from the segments (and, when some are
/// damaged, from the trailers of the packs no readable segment lists).
pub fn rebuild(
    dir: &Path,
    backend: &dyn Backend,
    key: &MasterKey,
) -> Result<(RocksIndex, SyncReport)> {
    if dir.exists() {
        // Fails with Error::Busy instead of pulling the files from under another process.
        if let Err(e @ Error::Busy(_)) = RocksIndex::open(dir) {
            return Err(e);
        }
        std::fs::remove_dir_all(dir)
            .map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
    }
    let index = RocksIndex::open(dir)?;
    let (report, _) = sync(&index, backend, key)?;
    index.flush()?;
    Ok((index, report))
}

/// Packs in the repository that no segment the index merged lists, and that no prune
/// marked for deletion: (id, size).
fn unlisted_packs(
    index: &RocksIndex,
    backend: &dyn Backend,
    key: &MasterKey,
) -> Result<Vec<(PackId, u64)>> {
    let known: HashSet<PackId> = index.packs()?.into_iter().map(|(p, _)| p).collect();
    let marked = pending::load(backend, key)?;
    Ok(crate::backend::pack_sizes(backend)?
        .into_iter()
        .filter(|(id, _)| !known.contains(id) && !marked.packs.contains_key(id))
        .collect())
}

/// Reads the trailers of unlisted packs; damaged trailers are reported and skipped.
fn read_unlisted(
    index: &RocksIndex,
    backend: &dyn Backend,
    key: &MasterKey,
    damaged: &mut Vec<String>,
) -> Result<Vec<PackRecord>> {
    let mut found = Vec::new();
    for (id, size) in unlisted_packs(index, backend, key)? {
        match read_trailer(backend, key, &id, size) {
            Ok(entries) => found.push(PackRecord { id, size, entries }),
            Err(e @ Error::Corrupt { .. }) => damaged.push(e.to_string()),
            // Deleted since the listing (a prune, or a writer cleaning up).
            Err(Error::Missing(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

fn recover_locally(index: &RocksIndex, backend: &dyn Backend, key: &MasterKey) -> Result<usize> {
    let mut ignored = Vec::new();
    let found = read_unlisted(index, backend, key, &mut ignored)?;
    index.insert(None, &found)?;
    index.set_flag(DEGRADED, true)?;
    Ok(found.len())
}

/// Lists every pack no segment lists (and no prune marked) in a new segment, from the
/// packs' trailers, and merges it into `index`. Writes to the repository: only under the
/// exclusive lock (`index rebuild --from-packs`, `repair index`).
pub fn adopt_unlisted(
    index: &RocksIndex,
    backend: &dyn Backend,
    key: &MasterKey,
    version: u8,
) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    let found = read_unlisted(index, backend, key, &mut report.damaged_segments)?;
    if !found.is_empty() {
        // Record what the trailers told us as a new segment, so the invariant "every
        // indexed pack is listed by a segment" holds again and other clients see it too.
        let (seg, bytes) = segment::seal(key, version, &found)?;
        backend.put(&segment::segment_path(&seg), &bytes)?;
        index.insert(Some(&seg), &found)?;
        report.packs_from_trailers = found.len();
    }
    index.flush()?;
    Ok(report)
}
