//! `repo forget`: remove snapshot objects, chosen by id or by a retention policy per group.
//! Only snapshot objects are deleted; their data stays until `prune` reclaims it, so a
//! forget never endangers another snapshot.

use serde::Serialize;

use crate::error::Result;
use crate::id::SnapshotId;
use crate::repository::Repository;
use crate::retention::{group, Decision, GroupBy, GroupKey, RetentionPolicy};
use crate::snapshot::{snapshot_path, Snapshot};

/// One group's outcome.
#[derive(Debug, Serialize)]
pub struct GroupOutcome {
    /// The group.
    pub group: GroupKey,
    /// Every snapshot of the group, newest first, with its fate.
    pub decisions: Vec<Decision>,
}

/// Applies `policy` to `snaps` (already filtered) grouped by `by`.
pub fn plan(
    snaps: Vec<Snapshot>,
    policy: &RetentionPolicy,
    by: GroupBy,
) -> Result<Vec<GroupOutcome>> {
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

/// Deletes the snapshot objects of `snaps`; returns how many were removed.
pub fn remove(repo: &Repository, snaps: &[&Snapshot]) -> Result<usize> {
    let ids: Vec<SnapshotId> = snaps.iter().map(|s| s.id).collect();
    remove_ids(repo, &ids)
}

/// Deletes snapshot objects by id (damaged ones included); returns how many.
pub fn remove_ids(repo: &Repository, ids: &[SnapshotId]) -> Result<usize> {
    for id in ids {
        repo.backend().delete(&snapshot_path(id))?;
    }
    Ok(ids.len())
}

/// Oplog slices no remaining snapshot can use: per source, those that end before the
/// oldest remaining snapshot's cluster time (replay only ever starts at a snapshot).
/// Sources without any snapshot keep their slices (a snapshot may still be copied in).
pub fn unneeded_slices(
    repo: &Repository,
    removed: &[crate::id::SnapshotId],
) -> Result<Vec<crate::oplog::slice::Slice>> {
    let mut snaps = repo.snapshots()?;
    snaps.retain(|s| !removed.contains(&s.id));
    let slices = crate::oplog::load_slices(repo)?;
    Ok(slices
        .into_iter()
        .filter(|s| {
            snaps
                .iter()
                .filter_map(crate::oplog::coverage::snapshot_point)
                .filter(|(src, _)| *src == s.source)
                .map(|(_, t)| t)
                .min()
                .is_some_and(|oldest| s.until <= oldest)
        })
        .collect())
}

/// Deletes slice objects; their chunks stay until `prune`.
pub fn remove_slices(repo: &Repository, slices: &[crate::oplog::slice::Slice]) -> Result<usize> {
    for s in slices {
        repo.backend()
            .delete(&crate::oplog::slice::slice_path(&s.id))?;
    }
    Ok(slices.len())
}
