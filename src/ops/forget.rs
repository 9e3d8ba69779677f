//! `repo forget`: remove snapshot objects, chosen by id or by a retention policy per group.
//! Only snapshot objects are deleted; their data stays until `prune` reclaims it, so a
//! forget never endangers another snapshot.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::lock::LockKind;
use crate::ops::context::Ctx;
use crate::ops::prune::{PruneReport, PruneRequest};
use crate::repository::Repository;
use crate::retention::{group, Decision, GroupBy, GroupKey, RetentionPolicy};
use crate::selection::SnapshotFilter;
use crate::settings::Settings;
use crate::snapshot::{snapshot_path, Snapshot};

/// `forget`: which snapshots go — by id, or by a retention policy (the given one, else
/// the repository's stored one).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForgetRequest {
    /// Snapshots to remove (ids or unique prefixes; damaged ones included). Without, the
    /// policy decides.
    pub ids: Vec<String>,
    /// The policy (empty: the repository's stored one).
    pub policy: RetentionPolicy,
    /// Store `policy` as the repository's policy first.
    pub save_policy: bool,
    /// The policy applies per group of snapshots with equal host, paths and source.
    pub group_by: GroupBy,
    /// Only snapshots passing this filter are considered.
    pub filter: SnapshotFilter,
    /// Only report what would be removed.
    pub dry_run: bool,
    /// Prune afterwards with these settings (its `dry_run` follows the forget's).
    pub prune: Option<PruneRequest>,
    /// Also remove operation-log records that finished longer ago than this ("400d").
    /// Alone (no ids, no policy), only the log is trimmed.
    pub keep_log: Option<String>,
}

/// What forget removed (or, with `dry_run`, would remove).
#[derive(Debug, Default, Serialize)]
pub struct ForgetReport {
    /// Nothing was removed.
    pub dry_run: bool,
    /// The policy applied (absent when snapshots were named by id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<RetentionPolicy>,
    /// The policy was stored as the repository's.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub policy_saved: bool,
    /// Per group: every snapshot and its fate (policy only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupOutcome>,
    /// Snapshots removed.
    pub removed: Vec<SnapshotId>,
    /// Snapshots kept by the policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<usize>,
    /// Oplog slices removed because only the removed snapshots could use them.
    pub oplog_slices_removed: usize,
    /// Operation-log records removed (`keep_log`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_records_removed: Option<usize>,
    /// The prune that followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneReport>,
}

/// Removes snapshots under the shared lock (then prunes under the exclusive one, when
/// asked).
pub fn run(repo: &Repository, req: &ForgetRequest, ctx: &Ctx) -> Result<ForgetReport> {
    let lock = repo.lock_to_free_space(LockKind::Shared, "forget", ctx)?;
    let mut report = ForgetReport {
        dry_run: req.dry_run,
        ..ForgetReport::default()
    };
    if req.save_policy {
        req.policy.validate()?;
        let mut settings = Settings::load(repo.backend(), repo.key())?;
        settings.retention = Some(req.policy.clone());
        settings.save(repo.backend(), repo.key())?;
        report.policy_saved = true;
    }
    let log_only =
        req.keep_log.is_some() && req.ids.is_empty() && req.policy.is_empty() && !req.save_policy;
    if let Some(keep) = &req.keep_log {
        report.log_records_removed = Some(trim_log(repo, keep, req.dry_run)?);
    }
    if log_only {
        return Ok(report);
    }
    if !req.ids.is_empty() {
        if !req.policy.is_empty() {
            return Err(Error::Invalid(
                "give snapshot ids or --keep-* options, not both".into(),
            ));
        }
        for sel in &req.ids {
            report.removed.push(repo.resolve_snapshot_id(sel)?);
        }
    } else {
        let policy = if req.policy.is_empty() {
            Settings::load(repo.backend(), repo.key())?
                .retention
                .ok_or_else(|| {
                    Error::Invalid(
                        "no retention policy: give --keep-last/--keep-daily/... (add \
                         --save-policy to store them in the repository) or snapshot ids"
                            .into(),
                    )
                })?
        } else {
            req.policy.clone()
        };
        let snaps = req.filter.apply(repo.snapshots()?);
        report.groups = plan(snaps, &policy, req.group_by)?;
        let decisions = report.groups.iter().flat_map(|o| &o.decisions);
        report.kept = Some(decisions.clone().filter(|d| d.keep).count());
        report.removed = decisions
            .filter(|d| !d.keep)
            .map(|d| d.snapshot.id)
            .collect();
        report.policy = Some(policy);
    }
    ctx.check()?;
    if !req.dry_run {
        remove_ids(repo, &report.removed)?;
    }
    // Oplog slices only the removed snapshots could use go with them.
    let slices = unneeded_slices(repo, &report.removed)?;
    if !req.dry_run {
        remove_slices(repo, &slices)?;
    }
    report.oplog_slices_removed = slices.len();
    drop(lock);
    if let Some(p) = &req.prune {
        // Prune needs the repository alone: the shared lock is released first.
        let p = PruneRequest {
            dry_run: req.dry_run,
            ..p.clone()
        };
        report.prune = Some(crate::ops::prune::run(repo, &p, ctx)?);
    }
    Ok(report)
}

/// Removes (or with `dry_run` counts) log records that finished more than `keep` ago.
fn trim_log(repo: &Repository, keep: &str, dry_run: bool) -> Result<usize> {
    let keep = crate::timespec::parse_duration(keep)?;
    if keep <= chrono::Duration::zero() {
        return Err(Error::Invalid(
            "--keep-log must be a positive duration".into(),
        ));
    }
    let before = chrono::Utc::now() - keep;
    if dry_run {
        return Ok(crate::journal::expired(repo.backend(), repo.key(), before)?.len());
    }
    crate::journal::trim(repo.backend(), repo.key(), before)
}

/// One group's outcome.
#[derive(Debug, Serialize)]
pub struct GroupOutcome {
    /// The group.
    pub group: GroupKey,
    /// Every snapshot of the group, newest first, with its fate.
    pub decisions: Vec<Decision>,
}

/// Applies `policy` to `snaps` (already filtered) grouped by `by`.
fn plan(snaps: Vec<Snapshot>, policy: &RetentionPolicy, by: GroupBy) -> Result<Vec<GroupOutcome>> {
    policy.validate()?;
    group(snaps, by)
        .into_iter()
        .map(|(group, snaps)| {
            Ok(GroupOutcome {
                group,
                decisions: policy.apply(snaps)?,
            })
        })
        .collect()
}

/// Deletes snapshot objects by id (damaged ones included); returns how many.
fn remove_ids(repo: &Repository, ids: &[SnapshotId]) -> Result<usize> {
    for id in ids {
        repo.backend().delete(&snapshot_path(id))?;
    }
    Ok(ids.len())
}

/// Oplog slices no remaining snapshot can use: per source, those that end before the
/// oldest remaining snapshot's cluster time (replay only ever starts at a snapshot).
/// Sources without any snapshot keep their slices (a snapshot may still be copied in).
fn unneeded_slices(
    repo: &Repository,
    removed: &[crate::id::SnapshotId],
) -> Result<Vec<crate::mongo::oplog::slice::Slice>> {
    let mut snaps = repo.snapshots()?;
    snaps.retain(|s| !removed.contains(&s.id));
    let slices = crate::mongo::oplog::load_slices(repo)?;
    Ok(slices
        .into_iter()
        .filter(|s| {
            snaps
                .iter()
                .filter_map(crate::mongo::oplog::coverage::snapshot_point)
                .filter(|(src, _)| *src == s.source)
                .map(|(_, t)| t)
                .min()
                .is_some_and(|oldest| s.until <= oldest)
        })
        .collect())
}

/// Deletes slice objects; their chunks stay until `prune`.
fn remove_slices(repo: &Repository, slices: &[crate::mongo::oplog::slice::Slice]) -> Result<usize> {
    for s in slices {
        repo.backend()
            .delete(&crate::mongo::oplog::slice::slice_path(&s.id))?;
    }
    Ok(slices.len())
}
