//! Keeping the local RocksDB index in step with the repository's segments.

use std::collections::HashSet;
use std::path::Path;

use super::segment::{self, PackRecord};
use super::{list_segments, read_segment, RocksIndex, SyncReport};
use crate::backend::Backend;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::{PackId, SegmentId};
use crate::pack::reader::read_trailer;

/// Brings the local index up to date with the repository's segments: merges new ones and,
/// if a segment it had merged is gone (a prune compacted it), starts over.
/// Returns the report and whether the caller must rebuild from scratch.
pub fn sync(
    index: &RocksIndex,
    backend: &dyn Backend,
    key: &MasterKey,
) -> Result<(SyncReport, bool)> {
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
            Err(e) => return Err(e),
        }
    }
    if report.segments_merged > 0 {
        index.flush()?;
    }
    Ok((report, false))
}

/// Rebuilds an index directory from scratch: segments first, then (with `from_packs`, or
/// for packs no readable segment covers) pack trailers.
pub fn rebuild(
    dir: &Path,
    backend: &dyn Backend,
    key: &MasterKey,
    from_packs: bool,
) -> Result<(RocksIndex, SyncReport)> {
    if dir.exists() {
        // Fails with Error::Busy instead of pulling the files from under another process.
        drop(RocksIndex::open(dir)?);
        std::fs::remove_dir_all(dir)
            .map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
    }
    let index = RocksIndex::open(dir)?;
    let mut report = SyncReport::default();
    if !from_packs {
        let (r, _) = sync(&index, backend, key)?;
        report = r;
    }
    let known: HashSet<PackId> = index.packs()?.into_iter().map(|(p, _)| p).collect();
    let mut recovered = Vec::new();
    for obj in backend.list("packs/")? {
        let Some(id) = obj
            .path
            .rsplit('/')
            .next()
            .and_then(|n| n.parse::<PackId>().ok())
        else {
            continue;
        };
        if known.contains(&id) {
            continue;
        }
        match read_trailer(backend, key, &id, obj.size) {
            Ok(entries) => recovered.push(PackRecord {
                id,
                size: obj.size,
                entries,
            }),
            Err(e @ Error::Corrupt { .. }) => report.damaged_segments.push(e.to_string()),
            Err(e) => return Err(e),
        }
    }
    if !recovered.is_empty() {
        // Record what the trailers told us as a new segment, so the invariant "every
        // indexed pack is listed by a segment" holds again and other clients see it too.
        let (seg, bytes) = segment::seal(key, &recovered);
        backend.put(&segment::segment_path(&seg), &bytes)?;
        index.insert(Some(&seg), &recovered)?;
        report.packs_from_trailers = recovered.len();
    }
    index.flush()?;
    Ok((index, report))
}
