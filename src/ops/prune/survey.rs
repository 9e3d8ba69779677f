//! Prune's survey (steps 1–3 and the decision of step 6): what is live, what to adopt,
//! mark and rewrite, found before anything is written.

use std::collections::{HashMap, HashSet};

use chrono::Utc;

use super::{
    adopt, damaged, decide, mark, segments, Adoption, Decision, PruneReport, PruneRequest,
};
use crate::error::{Error, Result};
use crate::id::PackId;
use crate::index::pending::{self, PendingPack};
use crate::ops::context::Ctx;
use crate::repository::Repository;

/// The youngest `.tmp-` object prune deletes: older than any write in flight.
const LEFTOVER_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// What steps 1–3 and step 6's decision found, before anything is written: all that the
/// writes and deletions act on.
pub(super) struct Survey {
    pub now: chrono::DateTime<Utc>,
    pub index: std::sync::Arc<crate::index::RocksIndex>,
    pub usage: mark::Usage,
    /// Every pack file and its size.
    pub on_disk: HashMap<PackId, u64>,
    pub adoption: Adoption,
    pub adopted: HashSet<PackId>,
    pub decision: Decision,
    /// The packs this run takes out of the index: marked or rewritten.
    pub gone: HashSet<PackId>,
    pub segs: segments::SegmentPlan,
    /// Earlier marks still standing.
    pub keep: HashMap<PackId, PendingPack>,
    /// Packs no segment lists and no mark names yet.
    pub new_unindexed: Vec<(PackId, u64)>,
}

/// Steps 1–3 (leftovers removed unless a dry run; live blobs; packs to adopt), then the
/// decision per pack and the segments to rewrite; and the live blobs. Stops on a damaged
/// repository.
pub(super) fn survey(
    repo: &Repository,
    opts: &PruneRequest,
    ctx: &Ctx,
    report: &mut PruneReport,
) -> Result<(Survey, crate::index::keyset::BlobSet)> {
    // Opening the index merges segments other hosts added before we took the lock.
    let index = repo.index()?;
    if index.flag(crate::index::DEGRADED)? {
        return Err(damaged("an index segment cannot be read"));
    }
    let marks = pending::load(repo.backend(), repo.key())?;
    if let Some(d) = marks.damaged.first() {
        return Err(damaged(d));
    }
    let now = Utc::now();
    ctx.check()?;
    // 1. Leftovers of interrupted writes. Not the young ones, whatever the grace period:
    // lock objects and operation-log records are written outside any lock, by processes
    // waiting for this one or finishing beside it, and deleting their `.tmp-` name between
    // its write and its rename fails them.
    if !opts.dry_run {
        repo.check_alone()?;
        let age = opts.grace.max(LEFTOVER_MIN_AGE);
        let (n, bytes) = repo.backend().remove_leftovers(age)?;
        report.leftovers_removed = n;
        report.bytes_freed += bytes;
    }
    // 2. What is live.
    let snaps = repo.snapshots()?;
    report.snapshots = snaps.len();
    let live = mark::mark(repo, &snaps)?;
    ctx.check()?;
    let usage = mark::usage(repo, &live, |_, _, _| {})?;
    let on_disk = crate::backend::pack_sizes(repo.backend())?;
    let unlisted: Vec<(PackId, u64)> = on_disk
        .iter()
        .filter(|(id, _)| !usage.packs.contains_key(*id))
        .map(|(id, size)| (*id, *size))
        .collect();
    // 3. Live blobs only unlisted packs have.
    let adoption = adopt::find(repo, &usage.missing, &unlisted)?;
    if !adoption.still_missing.is_empty() || usage.missing_count > usage.missing.len() as u64 {
        return Err(lost_blobs(&adoption));
    }
    let adopted: HashSet<PackId> = adoption.packs.iter().map(|p| p.id).collect();
    report.packs_adopted = adopted.len() as u64;
    let decision = decide(
        &usage.packs,
        &on_disk,
        opts,
        repo.config().structure_version(),
        report,
    )?;
    let segs = segments::plan(repo, &decision.mark, &decision.rewrite)?;
    if segs.damaged > 0 {
        return Err(damaged("an index segment cannot be read"));
    }
    report.segments_before = segs.before;
    // Marks: earlier ones still standing, then this run's.
    let keep: HashMap<PackId, PendingPack> = marks
        .packs
        .values()
        .filter(|m| {
            on_disk.contains_key(&m.id)
                && !usage.packs.contains_key(&m.id)
                && !adopted.contains(&m.id)
        })
        .map(|m| (m.id, m.clone()))
        .collect();
    let new_unindexed: Vec<(PackId, u64)> = unlisted
        .iter()
        .filter(|(id, _)| !keep.contains_key(id) && !adopted.contains(id))
        .copied()
        .collect();
    report.packs_unindexed = new_unindexed.len() as u64;
    let gone = decision.mark.union(&decision.rewrite).copied().collect();
    let survey = Survey {
        now,
        index,
        usage,
        on_disk,
        adoption,
        adopted,
        decision,
        gone,
        segs,
        keep,
        new_unindexed,
    };
    Ok((survey, live))
}

/// The refusal when kept snapshots need blobs that are in no pack.
fn lost_blobs(adoption: &Adoption) -> Error {
    let examples: Vec<String> = adoption
        .still_missing
        .iter()
        .take(10)
        .map(|(k, id)| format!("{} {}", crate::repository::kind_name(*k), id.short()))
        .collect();
    Error::Refused(format!(
        "{} blob(s) that kept snapshots need are in no pack (e.g. {}); not pruning a \
         damaged repository — run `repo check`, then `repo repair`",
        adoption.still_missing.len().max(1),
        examples.join(", ")
    ))
}
