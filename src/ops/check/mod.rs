//! `repo check`: audits packs ↔ index segments ↔ trees reachable from snapshots, and with
//! `--read-data` decrypts and re-hashes every blob. It collects findings instead of
//! stopping at the first problem, and names which snapshots and files each damage affects.
//!
//! It trusts only the repository: index segments are read directly, not the local RocksDB.

mod oplog;
mod packs;
mod trees;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::blob::BlobKind;
use crate::error::Result;
use crate::id::{BlobId, PackId};
use crate::index::BlobLocation;
use crate::ops::context::{Ctx, Phase};
use crate::progress::Progress;
use crate::repository::Repository;
pub use crate::subset::DataSubset;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Data is lost or unreadable.
    Error,
    /// Wasted space or something to tidy; no data at risk.
    Warning,
}

/// What kind of problem a finding is (scripts and tests match on this, not on text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// An index segment cannot be read.
    SegmentUnreadable,
    /// A record of packs marked for deletion cannot be read.
    PendingUnreadable,
    /// A pack the index lists is gone.
    PackMissing,
    /// A pack's size differs from what the index says.
    PackSize,
    /// A pack's trailer cannot be read or disagrees with the index; its blobs may be fine.
    PackTrailer,
    /// Bytes of a pack outside any blob were altered.
    PackContent,
    /// A blob does not decrypt or does not hash to its id.
    BlobDamaged,
    /// A pack no segment lists (left by an interrupted run).
    PackUnindexed,
    /// A snapshot object cannot be read.
    SnapshotUnreadable,
    /// A snapshot references data that is damaged or gone.
    SnapshotDamaged,
    /// A tree no segment lists (its directory and everything below cannot be restored).
    TreeMissing,
    /// A tree does not decrypt, hash or decode.
    TreeDamaged,
    /// An oplog slice cannot be read or names lost chunks.
    SliceDamaged,
    /// An operation-log record cannot be read (no backup depends on it).
    LogRecordDamaged,
}

impl FindingKind {
    /// The command that repairs findings of this kind.
    pub fn fix(self) -> &'static str {
        match self {
            FindingKind::SegmentUnreadable
            | FindingKind::PendingUnreadable
            | FindingKind::PackTrailer => "repo repair index",
            FindingKind::PackMissing
            | FindingKind::PackSize
            | FindingKind::SnapshotDamaged
            | FindingKind::TreeMissing
            | FindingKind::TreeDamaged => "repo repair",
            // Only a full read finds these again, to salvage what is intact.
            FindingKind::PackContent | FindingKind::BlobDamaged => "repo repair --read-data",
            FindingKind::PackUnindexed => "repo prune",
            FindingKind::SnapshotUnreadable => "repo forget ID",
            FindingKind::SliceDamaged => "repo repair snapshots",
            // Nothing restorable is lost; the record ages out with the rest.
            FindingKind::LogRecordDamaged => "repo forget --keep-log DURATION",
        }
    }
}

/// One problem found.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// What kind of problem.
    pub kind: FindingKind,
    /// A sentence saying what is wrong.
    pub message: String,
    /// The command that repairs it.
    pub fix: String,
    /// The pack concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack: Option<PackId>,
    /// Short ids of snapshots that lose data because of it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<String>,
    /// Affected paths (`<snapshot>:<path>`), at most a few per finding.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// Result of a check.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    /// Snapshots examined.
    pub snapshots: usize,
    /// Packs examined.
    pub packs: usize,
    /// Blobs listed by the index segments.
    pub blobs: usize,
    /// Trees decoded.
    pub trees: usize,
    /// Oplog slices examined.
    pub slices: usize,
    /// Operation-log records read.
    pub log_records: usize,
    /// Bytes read and verified with `--read-data` (or a subset).
    pub bytes_read: u64,
    /// Packs read in full.
    pub packs_read: usize,
    /// Packs no segment lists yet while other runs (backups, copies) held locks: theirs,
    /// still being written, not reported as findings.
    pub packs_in_flight: usize,
    /// Everything wrong, errors first.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Number of error-severity findings.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    fn push(
        &mut self,
        severity: Severity,
        kind: FindingKind,
        message: String,
        pack: Option<PackId>,
    ) {
        self.findings.push(Finding {
            severity,
            kind,
            message,
            fix: kind.fix().to_string(),
            pack,
            snapshots: Vec::new(),
            paths: Vec::new(),
        });
    }
}

/// The index as the repository's segments describe it.
pub(crate) struct SegmentIndex {
    blobs: HashMap<(BlobKind, BlobId), BlobLocation>,
    packs: HashMap<PackId, u64>,
    /// The segments read (readable or not).
    segments: std::collections::HashSet<crate::id::SegmentId>,
}

/// `check`: what to verify.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckRequest {
    /// Also read, decrypt and re-hash every blob of every pack.
    pub read_data: bool,
    /// Read only these packs in full (implies reading data).
    pub read_data_subset: Option<DataSubset>,
}

/// Which packs a check reads in full.
pub(crate) enum DataRead {
    /// None: sizes and trailers only.
    Nothing,
    /// Every pack.
    All,
    /// A subset.
    Subset(DataSubset),
}

impl CheckRequest {
    fn data_read(&self) -> DataRead {
        match (self.read_data_subset, self.read_data) {
            (Some(s), _) => DataRead::Subset(s),
            (None, true) => DataRead::All,
            (None, false) => DataRead::Nothing,
        }
    }
}

/// Audits the repository under the shared lock. Damage is reported as findings (see
/// [`CheckReport::errors`]), not as an error.
pub fn run(repo: &Repository, req: &CheckRequest, ctx: &Ctx) -> Result<CheckReport> {
    let lock = repo.lock_for(crate::lock::LockKind::Shared, "check", ctx)?;
    let progress = ctx.phase(Phase::Checking);
    let r = audit(repo, &req.data_read(), &lock.watch(), ctx, &progress);
    ctx.phase_done(Phase::Checking);
    r
}

fn audit(
    repo: &Repository,
    read_data: &DataRead,
    own_lock: &crate::lock::LockWatch,
    ctx: &Ctx,
    progress: &Progress,
) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    // Snapshots and slices are listed before the segments: each is written only after the
    // segment listing its blobs, so all of those listed here are covered by the segments
    // read next, whatever backups running beside this check add meanwhile (listed after,
    // a new snapshot would point at blobs of a segment not read: false damage). Later
    // ones are the next check's.
    let snapshots = repo.snapshot_ids()?;
    let slices: Vec<crate::id::SliceId> = crate::backend::list_ids(repo.backend(), "oplog/")?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let index = packs::load_segments(repo, &mut report)?;
    crate::failpoint::hit("check-after-segments");
    report.blobs = index.blobs.len();
    // Blobs that cannot be read back, with the pack and the reason.
    let damaged = packs::check_packs(
        repo,
        &index,
        read_data,
        own_lock,
        progress,
        ctx,
        &mut report,
    )?;
    trees::check_snapshots(repo, &snapshots, &index, &damaged, &mut report)?;
    oplog::check_slices(repo, &slices, &index, &damaged, &mut report)?;
    let (records, unreadable) = crate::journal::list(repo.backend(), repo.key())?;
    report.log_records = records.len();
    for (name, why) in unreadable {
        report.push(
            Severity::Warning,
            FindingKind::LogRecordDamaged,
            format!("operation-log record {name} cannot be read: {why}"),
            None,
        );
    }
    report
        .findings
        .sort_by_key(|f| f.severity != Severity::Error);
    Ok(report)
}
