//! `repo prune`: reclaim the space of blobs no snapshot needs, in two phases.
//!
//! A pack is never deleted by the run that finds it unneeded: that run takes it out of the
//! index segments and *marks* it (`pending/`, [`crate::index::pending`]); a later run
//! deletes it once the mark is older than the grace period. A writer that read the index
//! before the mark — on a host whose lock this prune could not see — has by then either
//! committed, and then the pack's blobs are live and the pack is listed again ("adopted"),
//! or it has lost its lock and committed nothing.
//!
//! One run, in this order (nothing needs writing before step 4, so a full disk gets space):
//! 1. Remove `.tmp-` leftovers of interrupted writes older than the grace period.
//! 2. Mark every blob reachable from the snapshots and oplog slices ([`mark`]).
//! 3. Live blobs the index lacks: find them in unlisted packs to adopt ([`adopt`]); a live
//!    blob in no pack at all means a damaged repository, and prune stops.
//! 4. Delete marked packs whose grace is over and that no segment lists or adoption needs.
//! 5. List adopted packs in a new segment.
//! 6. Decide per listed pack: keep, mark (nothing live) or rewrite (too much garbage: copy
//!    its live blobs into new packs, verified, then mark it). Unlisted packs are marked too.
//! 7. Write replacement segments without the marked packs ([`segments`]), then the marks,
//!    then delete the replaced segments.
//! 8. With a zero grace period, delete the new marks at once.
//! 9. Record the marks left.
//!
//! Crash safety: a pack is deleted only when marked and listed by no segment, and a
//! segment stops listing a pack only after its live blobs are listed elsewhere; so a crash
//! at any point leaves every kept snapshot restorable, and a rerun finishes the job.
//! The caller holds the exclusive lock, re-checked right before anything is deleted.

mod adopt;
mod mark;
mod repack;
pub(crate) mod segments;
mod survey;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::id::{BlobId, PackId};
use crate::index::pending::{self, PendingPack, Reason};
use crate::index::segment;
use crate::index::BlobLocation;
use crate::ops::context::{Ctx, Phase};
use crate::pack::pack_path;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::writer::BlobWriter;
use repack::{dry_run_report, repack};
use survey::{survey, Survey};

pub use adopt::Adoption;
pub use mark::PackUsage;

/// Default time between marking a pack and deleting it: longer than a lock may go
/// without a refresh before others call it stale ([`crate::lock::STALE_AFTER`]).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60 * 60);

/// `prune`: how it decides.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PruneRequest {
    /// Rewrite a pack when more than this fraction (0..=1) of it is unused.
    pub max_unused: f64,
    /// Only report what would be done.
    pub dry_run: bool,
    /// How long a pack stays marked before it is deleted (zero: in the same run, safe only
    /// when no other host uses the repository); whole seconds.
    #[serde(rename = "grace_secs", with = "crate::timespec::secs")]
    pub grace: Duration,
}

impl PruneRequest {
    /// Reads a `--max-unused` value: "5%", "0.05" or "100%".
    pub fn parse_max_unused(text: &str) -> Result<f64> {
        crate::timespec::parse_fraction(text, "--max-unused")
    }
}

/// Repack packs more than this fraction unused, unless told otherwise.
pub const DEFAULT_MAX_UNUSED: f64 = 0.05;

impl Default for PruneRequest {
    fn default() -> Self {
        Self {
            max_unused: DEFAULT_MAX_UNUSED,
            dry_run: false,
            grace: DEFAULT_GRACE,
        }
    }
}

/// What prune did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Snapshots whose blobs were kept.
    pub snapshots: usize,
    /// Packs listed by the index before pruning.
    pub packs_before: u64,
    /// Bytes of those packs.
    pub bytes_before: u64,
    /// Packs marked for deletion because nothing in them is live.
    pub packs_deleted: u64,
    /// Packs whose live blobs were copied into new packs, then marked.
    pub packs_rewritten: u64,
    /// Packs no segment listed (interrupted runs), marked.
    pub packs_unindexed: u64,
    /// New packs written.
    pub packs_written: u64,
    /// Live blobs copied.
    pub blobs_copied: u64,
    /// Blobs that are no longer referenced and were dropped from the index.
    pub blobs_removed: u64,
    /// Index segments before.
    pub segments_before: u64,
    /// Index segments after.
    pub segments_after: u64,
    /// Unlisted packs holding live blobs, listed again.
    pub packs_adopted: u64,
    /// Pack objects deleted by this run (marks whose grace was over).
    pub packs_removed: u64,
    /// Bytes of those packs.
    pub bytes_removed: u64,
    /// Packs still marked after this run (a later prune deletes them).
    pub packs_pending: u64,
    /// Bytes of those packs.
    pub bytes_pending: u64,
    /// Leftovers of interrupted writes removed (`.tmp-` objects).
    pub leftovers_removed: u64,
    /// The grace period, in seconds.
    pub grace_secs: u64,
    /// Bytes freed by this run (deleted packs and leftovers minus new packs).
    pub bytes_freed: u64,
    /// Unused bytes left in kept packs (under the threshold).
    pub bytes_unused_kept: u64,
    /// Wall time in seconds.
    pub duration_secs: f64,
}

/// What step 6 decided for the listed packs.
struct Decision {
    mark: HashSet<PackId>,
    rewrite: HashSet<PackId>,
}

/// Prunes `repo` under the exclusive lock (released space first if the disk is too full
/// to write the lock). Cancellation is honoured until the first object is deleted.
pub fn run(repo: &Repository, req: &PruneRequest, ctx: &Ctx) -> Result<PruneReport> {
    let _lock = repo.lock_to_free_space(crate::lock::LockKind::Exclusive, "prune", ctx)?;
    ctx.check()?;
    let progress = ctx.phase(Phase::Pruning);
    let r = prune(repo, req, ctx, &progress);
    ctx.phase_done(Phase::Pruning);
    r
}

/// What `prune --max-unused 0% --grace 0` would free (a dry run; needs no lock).
pub(crate) fn reclaimable(repo: &Repository) -> Result<u64> {
    let req = PruneRequest {
        max_unused: 0.0,
        dry_run: true,
        // Everything prune could free eventually, marked packs included.
        grace: Duration::ZERO,
    };
    let r = prune(repo, &req, &Ctx::default(), &Progress::default())?;
    Ok(r.bytes_freed)
}

/// Prunes `repo`; the caller holds the exclusive lock.
fn prune(
    repo: &Repository,
    opts: &PruneRequest,
    ctx: &Ctx,
    progress: &Progress,
) -> Result<PruneReport> {
    let started = Instant::now();
    if !(0.0..=1.0).contains(&opts.max_unused) {
        return Err(Error::Invalid(
            "--max-unused must be between 0% and 100%".into(),
        ));
    }
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        grace_secs: opts.grace.as_secs(),
        ..Default::default()
    };
    let (mut s, live) = survey(repo, opts, ctx, &mut report)?;
    if opts.dry_run {
        return Ok(dry_run_report(
            report,
            &s.usage.packs,
            &s.decision,
            &s.keep,
            &s.on_disk,
            &s.new_unindexed,
            &s.segs,
            opts,
            started,
        ));
    }

    ctx.check()?;
    progress.set_unit("packs");
    progress.set_totals(report.packs_before, report.bytes_before);
    // 4. Deletions that need no write first.
    let mut keep = std::mem::take(&mut s.keep);
    let due: Vec<PendingPack> = keep
        .values()
        .filter(|m| m.due(s.now, opts.grace))
        .cloned()
        .collect();
    delete_packs(repo, &due, &mut keep, &mut report)?;

    // 5–7. Writes.
    let (written, new_segments, freed_early) =
        write_making_room(repo, opts, &s, &live, &mut keep, &mut report)?;
    drop(live);
    let changed = mark_gone(&s, &freed_early, &mut keep, &report);
    if changed {
        let all: Vec<PendingPack> = keep.values().cloned().collect();
        pending::replace(repo.backend(), repo.key(), &all, &[])?;
    }
    failpoint::hit("prune-after-segments");
    repo.check_alone()?;
    for (n, seg) in s.segs.to_rewrite.iter().enumerate() {
        repo.backend().delete(&segment::segment_path(seg))?;
        if n == 0 {
            failpoint::hit("prune-mid-segment-delete");
        }
    }
    report.segments_after +=
        s.segs.before - s.segs.to_rewrite.len() as u64 + new_segments + written.segments;

    // 8. A zero grace period: this run's marks are due already.
    if opts.grace.is_zero() {
        let due: Vec<PendingPack> = keep.values().cloned().collect();
        delete_packs(repo, &due, &mut keep, &mut report)?;
    }

    // 9. The marks left replace every earlier record.
    let left: Vec<PendingPack> = keep.values().cloned().collect();
    let fresh = pending::load(repo.backend(), repo.key())?;
    if changed || fresh.objects.len() > 1 || fresh.packs.len() != left.len() {
        pending::replace(repo.backend(), repo.key(), &left, &fresh.objects)?;
    }
    report.packs_pending = left.len() as u64;
    report.bytes_pending = left.iter().map(|m| m.size).sum();
    report.bytes_freed =
        (report.bytes_freed + report.bytes_removed).saturating_sub(written.pack_bytes);
    repo.backend().keep_reserve()?;
    report.duration_secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Steps 5–7's writes ([`write_phase`]). On a full disk, the reserve is released and they
/// are tried again; with no grace period, the packs that hold nothing live (still listed
/// for a moment: no snapshot needs them) are deleted first to make room. Returns the
/// writes' stats, the replacement segments written and the packs deleted early.
fn write_making_room(
    repo: &Repository,
    opts: &PruneRequest,
    s: &Survey,
    live: &crate::index::keyset::BlobSet,
    keep: &mut HashMap<PackId, PendingPack>,
    report: &mut PruneReport,
) -> Result<(crate::packer::PackerStats, u64, HashSet<PackId>)> {
    let mut freed_early: HashSet<PackId> = HashSet::new();
    let write = |report: &mut PruneReport| {
        write_phase(
            repo,
            &s.index,
            &s.adoption,
            live,
            &s.decision,
            &s.segs,
            &s.gone,
            report,
        )
    };
    let mut attempt = write(report);
    if attempt.as_ref().is_err_and(Error::is_disk_full) && repo.backend().release_reserve()? {
        attempt = write(report);
    }
    let (written, new_segments) = match attempt {
        Err(e) if e.is_disk_full() && opts.grace.is_zero() => {
            let unused: Vec<PendingPack> = s
                .decision
                .mark
                .iter()
                .chain(s.new_unindexed.iter().map(|(p, _)| p))
                .map(|p| PendingPack {
                    id: *p,
                    size: s.on_disk.get(p).copied().unwrap_or(0),
                    marked: s.now,
                    reason: Reason::Unused,
                })
                .collect();
            delete_packs(repo, &unused, keep, report)?;
            freed_early.extend(unused.iter().map(|m| m.id));
            write(report)?
        }
        Err(e) if e.is_disk_full() => {
            return Err(Error::Refused(format!(
                "the repository's disk is full ({e}); {} pack(s) hold nothing any snapshot \
                 needs: if no other host uses this repository, `repo prune --grace 0` deletes \
                 them first to make room",
                s.decision.mark.len()
            )))
        }
        other => other?,
    };
    Ok((written, new_segments, freed_early))
}

/// Marks this run's packs in `keep`: those taken out of the index (unless deleted early)
/// and the unindexed ones. Returns whether the marks differ from the earlier record.
fn mark_gone(
    s: &Survey,
    freed_early: &HashSet<PackId>,
    keep: &mut HashMap<PackId, PendingPack>,
    report: &PruneReport,
) -> bool {
    let reasons = s
        .gone
        .iter()
        .filter(|p| !freed_early.contains(p))
        .map(|p| {
            let r = if s.decision.rewrite.contains(p) {
                Reason::Rewritten
            } else {
                Reason::Unused
            };
            (
                *p,
                s.on_disk.get(p).copied().unwrap_or(s.usage.packs[p].size),
                r,
            )
        })
        .chain(
            s.new_unindexed
                .iter()
                .filter(|(p, _)| !freed_early.contains(p))
                .map(|(p, size)| (*p, *size, Reason::Unindexed)),
        );
    let mut changed = report.packs_removed > 0 || !s.adopted.is_empty();
    for (id, size, reason) in reasons {
        keep.insert(
            id,
            PendingPack {
                id,
                size,
                marked: s.now,
                reason,
            },
        );
        changed = true;
    }
    changed
}

/// Steps 5–7's writes: the adoption segment, the repacked blobs, the replacement
/// segments. Returns the packer's stats and how many replacement segments were written.
#[allow(clippy::too_many_arguments)]
fn write_phase(
    repo: &Repository,
    index: &crate::index::RocksIndex,
    adoption: &Adoption,
    live: &crate::index::keyset::BlobSet,
    decision: &Decision,
    segs: &segments::SegmentPlan,
    gone: &HashSet<PackId>,
    report: &mut PruneReport,
) -> Result<(crate::packer::PackerStats, u64)> {
    if !adoption.packs.is_empty() {
        let (seg, bytes) = segment::seal(
            repo.key(),
            repo.config().structure_version(),
            &adoption.packs,
        )?;
        repo.backend().put(&segment::segment_path(&seg), &bytes)?;
        index.insert(Some(&seg), &adoption.packs)?;
        report.segments_after += 1;
    }
    report.blobs_copied = 0;
    let written = repack(repo, live, &decision.rewrite, report)?;
    failpoint::hit("prune-after-repack");
    let new_segments = segments::rewrite(repo, segs, gone)?;
    Ok((written, new_segments))
}

fn damaged(what: &str) -> Error {
    Error::Refused(format!(
        "{what}; not pruning a damaged repository — run `repo repair index` first"
    ))
}

/// Step 6's decision for every listed pack.
fn decide(
    usage: &HashMap<PackId, PackUsage>,
    on_disk: &HashMap<PackId, u64>,
    opts: &PruneRequest,
    version: u8,
    report: &mut PruneReport,
) -> Result<Decision> {
    let envelope_overhead = crate::crypto::ENVELOPE_OVERHEAD as u64;
    let mut d = Decision {
        mark: HashSet::new(),
        rewrite: HashSet::new(),
    };
    for (id, u) in usage {
        report.packs_before += 1;
        report.bytes_before += u.size;
        if u.live_blobs > 0 && !on_disk.contains_key(id) {
            return Err(Error::Refused(format!(
                "pack {} holds live blobs but is missing from the repository; not pruning a \
                 damaged repository — run `repo check`, then `repo repair`",
                id.short()
            )));
        }
        // The trailer is not garbage: without this, small packs always look wasteful.
        let trailer = 4 + envelope_overhead + 15 + crate::pack::max_entry_bytes(version) * u.blobs;
        let unused = u.size.saturating_sub(u.live_bytes + trailer);
        if u.live_blobs == 0 {
            d.mark.insert(*id);
            report.blobs_removed += u.blobs;
        } else if u.size > 0 && unused as f64 / u.size as f64 > opts.max_unused {
            d.rewrite.insert(*id);
            report.blobs_removed += u.blobs - u.live_blobs;
        } else {
            // A kept pack's unused blobs stay listed (a later prune may rewrite it).
            report.bytes_unused_kept += unused;
        }
    }
    report.packs_deleted = d.mark.len() as u64;
    report.packs_rewritten = d.rewrite.len() as u64;
    Ok(d)
}

/// Deletes the given marked packs (after checking the lock still holds us alone), and
/// forgets their marks.
fn delete_packs(
    repo: &Repository,
    due: &[PendingPack],
    keep: &mut HashMap<PackId, PendingPack>,
    report: &mut PruneReport,
) -> Result<()> {
    if due.is_empty() {
        return Ok(());
    }
    repo.check_alone()?;
    for (n, m) in due.iter().enumerate() {
        repo.backend().delete(&pack_path(&m.id))?;
        keep.remove(&m.id);
        report.packs_removed += 1;
        report.bytes_removed += m.size;
        if n == 0 {
            failpoint::hit("prune-mid-pack-delete");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(size: u64, live_bytes: u64, live_blobs: u64, blobs: u64) -> PackUsage {
        PackUsage {
            size,
            live_bytes,
            live_blobs,
            blobs,
        }
    }

    /// Only blobs that leave the index count as removed: a kept pack's unused blobs stay
    /// listed, so a second prune must not report them again.
    #[test]
    fn blobs_removed_counts_only_packs_that_go() {
        let (dead, wasteful, kept) = (PackId::random(), PackId::random(), PackId::random());
        let usage = HashMap::from([
            (dead, usage(1000, 0, 0, 3)),
            (wasteful, usage(100_000, 10_000, 1, 5)),
            (kept, usage(100_000, 99_000, 9, 10)),
        ]);
        let on_disk = usage.iter().map(|(id, u)| (*id, u.size)).collect();
        let mut report = PruneReport::default();
        let d = decide(&usage, &on_disk, &PruneRequest::default(), 2, &mut report).unwrap();
        assert_eq!(d.mark, HashSet::from([dead]));
        assert_eq!(d.rewrite, HashSet::from([wasteful]));
        assert_eq!(report.blobs_removed, 3 + 4);
        assert!(report.bytes_unused_kept > 0);
        assert_eq!((report.packs_deleted, report.packs_rewritten), (1, 1));
    }
}
