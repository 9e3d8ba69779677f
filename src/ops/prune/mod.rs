//! `repo prune`: reclaim the space of blobs no snapshot needs.
//!
//! 1. Mark blobs reachable from the remaining snapshots ([`mark`]).
//! 2. Decide per pack: keep, delete (nothing live), or rewrite (more than `max_unused` of
//!    it is garbage). Packs no segment lists (left by interrupted runs) are deleted.
//! 3. Copy the live blobs of rewritten packs into new packs (verifying each one), and write
//!    segments for them.
//! 4. Rewrite the old segments that list deleted packs, merging small segments on the way.
//! 5. Delete the old segments, then the packs.
//!
//! Crash safety: until step 5 nothing is deleted, and by then no remaining segment lists a
//! pack that is about to go, while every live blob is in a pack a remaining segment lists.
//! So a crash at any point leaves every kept snapshot restorable; a rerun finishes the job.
//! The caller holds the exclusive lock: no other writer adds packs or segments meanwhile.

mod mark;
mod segments;

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::id::{BlobId, PackId};
use crate::index::BlobLocation;
use crate::pack::pack_path;
use crate::packer::Packer;
use crate::repository::Repository;

pub use mark::PackUsage;

/// How prune decides.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Rewrite a pack when more than this fraction (0..=1) of it is unused.
    pub max_unused: f64,
    /// Only report what would be done.
    pub dry_run: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            max_unused: 0.05,
            dry_run: false,
        }
    }
}

/// What prune did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Snapshots whose blobs were kept.
    pub snapshots: usize,
    /// Packs before pruning.
    pub packs_before: u64,
    /// Bytes of packs before pruning.
    pub bytes_before: u64,
    /// Packs deleted because nothing in them is live.
    pub packs_deleted: u64,
    /// Packs whose live blobs were copied into new packs, then deleted.
    pub packs_rewritten: u64,
    /// Packs no segment listed (interrupted runs), deleted.
    pub packs_unindexed: u64,
    /// New packs written.
    pub packs_written: u64,
    /// Live blobs copied.
    pub blobs_copied: u64,
    /// Blobs that are no longer referenced and were dropped.
    pub blobs_removed: u64,
    /// Index segments before and after.
    pub segments_before: u64,
    /// Index segments after.
    pub segments_after: u64,
    /// Bytes freed (deleted packs minus new packs).
    pub bytes_freed: u64,
    /// Unused bytes left in kept packs (under the threshold).
    pub bytes_unused_kept: u64,
    /// Wall time in seconds.
    pub duration_secs: f64,
}

/// Prunes `repo`. The caller must hold the exclusive lock.
pub fn run(repo: &Repository, opts: &PruneOptions) -> Result<PruneReport> {
    let started = Instant::now();
    if !(0.0..=1.0).contains(&opts.max_unused) {
        return Err(Error::Invalid(
            "--max-unused must be between 0% and 100%".into(),
        ));
    }
    // Opening the index merges segments other hosts added before we took the lock.
    repo.index()?;
    let snaps = repo.snapshots()?;
    let mut report = PruneReport {
        snapshots: snaps.len(),
        ..Default::default()
    };
    let live = mark::mark(repo, &snaps)?;

    // Live blobs of packs that may be rewritten are only known after the usage pass, so
    // collect every live location of packs that are partly dead in a second pass.
    let usage = mark::usage(repo, &live, |_, _, _| {})?;
    let on_disk: HashMap<PackId, u64> = repo
        .backend()
        .list("packs/")?
        .into_iter()
        .filter_map(|o| {
            let id = o.path.rsplit('/').next()?.parse::<PackId>().ok()?;
            Some((id, o.size))
        })
        .collect();
    let envelope_overhead = repo.key().seal(&[]).len() as u64;
    let mut delete: HashSet<PackId> = HashSet::new();
    let mut rewrite: HashSet<PackId> = HashSet::new();
    for (id, u) in &usage {
        report.packs_before += 1;
        report.bytes_before += u.size;
        if u.live_blobs > 0 && !on_disk.contains_key(id) {
            return Err(Error::Refused(format!(
                "pack {} holds live blobs but is missing from the repository; not pruning a \
                 damaged repository — run `repo check`",
                id.short()
            )));
        }
        report.blobs_removed += u.blobs - u.live_blobs;
        // The trailer is not garbage: without this, small packs always look wasteful.
        let trailer = 4 + envelope_overhead + 9 + crate::pack::ENTRY_LEN as u64 * u.blobs;
        let unused = u.size.saturating_sub(u.live_bytes + trailer);
        if u.live_blobs == 0 {
            delete.insert(*id);
        } else if u.size > 0 && unused as f64 / u.size as f64 > opts.max_unused {
            rewrite.insert(*id);
        } else {
            report.bytes_unused_kept += unused;
        }
    }
    let segs = segments::plan(repo, &delete, &rewrite)?;
    report.segments_before = segs.before;
    // Packs no segment lists are leftovers of interrupted runs — unless a segment could
    // not be read, in which case they may be its packs: leave them for `index rebuild`.
    let unindexed: Vec<(PackId, u64)> = if segs.damaged == 0 {
        on_disk
            .iter()
            .filter(|(id, _)| !usage.contains_key(*id))
            .map(|(id, size)| (*id, *size))
            .collect()
    } else {
        Vec::new()
    };
    report.packs_unindexed = unindexed.len() as u64;
    report.packs_deleted = delete.len() as u64;
    report.packs_rewritten = rewrite.len() as u64;
    let freed_old: u64 = delete
        .iter()
        .chain(rewrite.iter())
        .filter_map(|p| on_disk.get(p))
        .sum::<u64>()
        + unindexed.iter().map(|(_, s)| s).sum::<u64>();

    if opts.dry_run {
        let rewrite_live: u64 = rewrite.iter().map(|p| usage[p].live_bytes).sum();
        report.blobs_copied = rewrite.iter().map(|p| usage[p].live_blobs).sum();
        report.bytes_freed = freed_old.saturating_sub(rewrite_live);
        report.segments_after = segs.before - segs.to_rewrite.len() as u64
            + u64::from(!segs.to_rewrite.is_empty())
            + u64::from(!rewrite.is_empty());
        report.duration_secs = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    // 3. Copy live blobs out of the packs being rewritten.
    let mut moves: Vec<(BlobKind, BlobId, BlobLocation)> = Vec::new();
    if !rewrite.is_empty() {
        mark::usage(repo, &live, |kind, id, loc| {
            if rewrite.contains(&loc.pack) {
                moves.push((kind, *id, *loc));
            }
        })?;
    }
    drop(live);
    moves.sort_by_key(|(_, _, l)| (l.pack, l.offset));
    let mut packer = Packer::new(repo);
    for group in moves.chunk_by(|a, b| a.2.pack == b.2.pack) {
        let pack = group[0].2.pack;
        let bytes = repo.backend().get(&pack_path(&pack))?;
        for (kind, id, loc) in group {
            let end = loc.offset as usize + loc.length as usize;
            let sealed = bytes.get(loc.offset as usize..end).ok_or_else(|| {
                Error::corrupt(
                    format!("pack {}", pack.short()),
                    "blob extends past the end of the file",
                )
            })?;
            // Never carry damage forward: the copy must decrypt and hash to its id.
            repo.open_blob(*kind, id, sealed, loc)?;
            packer.add(*kind, *id, sealed, loc.raw_length)?;
            report.blobs_copied += 1;
        }
    }
    let written = packer.finish()?;
    report.packs_written = written.packs;
    failpoint::hit("prune-after-repack");

    // 4. Segments: write the replacements, then delete the old ones.
    let gone: HashSet<PackId> = delete.union(&rewrite).copied().collect();
    let new_segments = segments::rewrite(repo, &segs, &gone)?;
    failpoint::hit("prune-after-segments");
    for (n, seg) in segs.to_rewrite.iter().enumerate() {
        repo.backend()
            .delete(&crate::index::segment::segment_path(seg))?;
        if n == 0 {
            failpoint::hit("prune-mid-segment-delete");
        }
    }
    report.segments_after =
        segs.before - segs.to_rewrite.len() as u64 + new_segments + written.segments;

    // 5. Packs.
    let mut n = 0;
    for p in gone.iter().chain(unindexed.iter().map(|(p, _)| p)) {
        repo.backend().delete(&pack_path(p))?;
        n += 1;
        if n == 1 {
            failpoint::hit("prune-mid-pack-delete");
        }
    }
    report.bytes_freed = freed_old.saturating_sub(written.pack_bytes);
    report.duration_secs = started.elapsed().as_secs_f64();
    Ok(report)
}
