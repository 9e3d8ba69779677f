//! `repo repair`: make a damaged repository consistent again, losing nothing that can
//! still be read, and saying exactly what was lost.
//!
//! 1. **Index** ([`index`]): the segments are made to describe what is really there.
//!    Packs they list that are gone are dropped; packs whose trailer or blobs are damaged
//!    have their intact blobs copied into new packs and are marked for deletion; packs no
//!    readable segment lists (a damaged segment's) are listed again from their trailers.
//! 2. **Snapshots** ([`snapshots`]): every snapshot that references a blob no pack holds
//!    any more is rewritten without the files (and unreadable directories) it lost, under
//!    a new id that records which snapshot it replaces; the old object is removed. Oplog
//!    slices with lost chunks are removed (coverage then shows the gap).
//!
//! Afterwards no snapshot references anything missing, so the next backup of the same
//! paths finds the lost files absent from its parent, reads them again and stores again
//! every chunk it still has. The caller holds the exclusive lock.

mod index;
mod snapshots;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ops::context::{Ctx, Phase};
use crate::repository::Repository;

pub use snapshots::SnapshotRepair;

/// `repair`: what to repair.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepairRequest {
    /// Repair the index (segments ↔ packs).
    pub index: bool,
    /// Rewrite snapshots that lost data.
    pub snapshots: bool,
    /// Also read and verify every blob of every pack (otherwise only sizes and trailers).
    pub read_data: bool,
    /// Only report what would be done.
    pub dry_run: bool,
}

impl Default for RepairRequest {
    /// Everything (index, then snapshots), judging packs by size and trailer.
    fn default() -> Self {
        Self {
            index: true,
            snapshots: true,
            read_data: false,
            dry_run: false,
        }
    }
}

/// What repair found and did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairReport {
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Index segments that could not be read (removed once their packs are listed again).
    pub segments_damaged: Vec<String>,
    /// Segments written.
    pub segments_written: u64,
    /// Segments removed.
    pub segments_removed: u64,
    /// Packs the index listed that are gone (short ids).
    pub packs_missing: Vec<String>,
    /// Damaged packs, with what is wrong.
    pub packs_damaged: Vec<String>,
    /// Unlisted packs listed again from their trailers.
    pub packs_adopted: u64,
    /// Intact blobs copied out of damaged packs.
    pub blobs_salvaged: u64,
    /// Blobs no pack holds any more.
    pub blobs_lost: u64,
    /// Snapshots that lost data, and what became of them.
    pub snapshots: Vec<SnapshotRepair>,
    /// Snapshot objects that cannot be read at all (remove them with `repo forget ID`).
    pub snapshots_unreadable: Vec<String>,
    /// Oplog slices removed because chunks of theirs are lost.
    pub slices_removed: Vec<String>,
}

impl RepairReport {
    /// Whether anything was (or, in a dry run, would be) changed.
    pub fn changed(&self) -> bool {
        !self.segments_damaged.is_empty()
            || !self.packs_missing.is_empty()
            || !self.packs_damaged.is_empty()
            || self.packs_adopted > 0
            || !self.snapshots.is_empty()
            || !self.slices_removed.is_empty()
    }
}

/// Repairs `repo` under the exclusive lock (released space first if the disk is too
/// full to write the lock).
pub fn run(repo: &mut Repository, opts: &RepairRequest, ctx: &Ctx) -> Result<RepairReport> {
    let _lock = repo.lock_to_free_space(crate::lock::LockKind::Exclusive, "repair", ctx)?;
    ctx.check()?;
    let progress = ctx.phase(Phase::Repairing);
    let r = repair(repo, opts);
    ctx.phase_done(Phase::Repairing);
    drop(progress);
    r
}

fn repair(repo: &mut Repository, opts: &RepairRequest) -> Result<RepairReport> {
    let mut report = RepairReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    // Blobs the index repair found lost: a dry run's index still lists them.
    let mut lost = std::collections::HashSet::new();
    if opts.index {
        lost = index::repair(repo, opts, &mut report)?;
        if !opts.dry_run {
            repo.rebuild_index(false)?;
        }
    }
    if opts.snapshots {
        snapshots::repair(repo, opts, &lost, &mut report)?;
    }
    Ok(report)
}
