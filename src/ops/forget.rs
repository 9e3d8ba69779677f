//! `repo forget`: remove snapshot objects, chosen by id or by a retention policy per group.
//! Only snapshot objects are deleted; their data stays until `prune` reclaims it, so a
//! forget never endangers another snapshot.

use serde::Serialize;

use crate::error::Result;
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
    for s in snaps {
        repo.backend().delete(&snapshot_path(&s.id))?;
    }
    Ok(snaps.len())
}
