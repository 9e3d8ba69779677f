//! Prune, part 2: the index segments. Segments that list packs prune deletes are rewritten
//! without them; small segments (many short runs leave many) are merged on the way.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::id::{PackId, SegmentId};
use crate::index::segment::{self, PackRecord};
use crate::index::{list_segments, read_segment};
use crate::repository::Repository;

/// Segments smaller than this are merged into bigger ones.
const SMALL_SEGMENT_BYTES: u64 = 1 << 20;
/// Blob entries per rewritten segment (≈ 28 MB in format version 2, ≈ 17 MB in 3):
/// bounds memory and object size.
const MAX_ENTRIES: usize = 500_000;

/// Which segments prune replaces.
pub struct SegmentPlan {
    /// Segments present before prune.
    pub before: u64,
    /// Segments to rewrite (and then delete).
    pub to_rewrite: Vec<SegmentId>,
    /// Segments that could not be read (left alone).
    pub damaged: usize,
}

/// Reads every segment and picks those listing a pack that goes, plus small ones when
/// there are at least two to merge.
pub fn plan(
    repo: &Repository,
    delete: &HashSet<PackId>,
    rewrite: &HashSet<PackId>,
) -> Result<SegmentPlan> {
    let sizes: std::collections::HashMap<String, u64> = repo
        .backend()
        .list("index/")?
        .into_iter()
        .map(|o| (o.path, o.size))
        .collect();
    let all = list_segments(repo.backend())?;
    let mut affected = Vec::new();
    let mut small = Vec::new();
    let mut damaged = 0;
    for seg in &all {
        let packs = match read_segment(repo.backend(), repo.key(), seg) {
            Ok(p) => p,
            Err(Error::Corrupt { .. }) => {
                damaged += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        if packs
            .iter()
            .any(|p| delete.contains(&p.id) || rewrite.contains(&p.id))
        {
            affected.push(*seg);
        } else if sizes
            .get(&segment::segment_path(seg))
            .is_some_and(|s| *s < SMALL_SEGMENT_BYTES)
        {
            small.push(*seg);
        }
    }
    if small.len() >= 2 || !affected.is_empty() {
        affected.extend(small);
    }
    affected.sort();
    Ok(SegmentPlan {
        before: all.len() as u64,
        to_rewrite: affected,
        damaged,
    })
}

/// Writes replacement segments for `plan.to_rewrite` without the packs in `gone`;
/// returns how many were written. The old segments are not touched.
pub fn rewrite(repo: &Repository, plan: &SegmentPlan, gone: &HashSet<PackId>) -> Result<u64> {
    let mut seen: HashSet<PackId> = HashSet::new();
    let mut buf: Vec<PackRecord> = Vec::new();
    let mut entries = 0usize;
    let mut written = 0u64;
    let mut flush = |buf: &mut Vec<PackRecord>| -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let (id, bytes) = segment::seal(repo.key(), repo.config().structure_version(), buf)?;
        repo.backend().put(&segment::segment_path(&id), &bytes)?;
        buf.clear();
        written += 1;
        Ok(())
    };
    for seg in &plan.to_rewrite {
        for p in read_segment(repo.backend(), repo.key(), seg)? {
            if gone.contains(&p.id) || !seen.insert(p.id) {
                continue;
            }
            entries += p.entries.len();
            buf.push(p);
            if entries >= MAX_ENTRIES {
                flush(&mut buf)?;
                entries = 0;
            }
        }
    }
    flush(&mut buf)?;
    Ok(written)
}
