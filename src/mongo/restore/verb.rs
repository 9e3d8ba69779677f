//! Restoring a snapshot's collections as one call: the roll-forward planned (and refused)
//! before anything is written, the target checked, the collections written, the oplog
//! replayed, and one report of all of it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::at::{plan_at, prepare_target, roll_forward};
use super::{CollectionOutcome, MongoConflict, MongoRestoreOptions};
use crate::error::Result;
use crate::id::SnapshotId;
use crate::mongo::ns::Renames;
use crate::mongo::oplog::replay::ReplayStats;
use crate::mongo::uri::ConnectionString;
use crate::ops::context::{Ctx, Phase};
use crate::repository::Repository;
use crate::snapshot::{ClusterTime, Snapshot};

/// A MongoDB server to restore collections into, and how.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoTarget {
    /// The server.
    pub uri: ConnectionString,
    /// Only namespaces matching these globs ("app.users", "app.*"); empty: all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Rename rules, first match wins.
    #[serde(default)]
    pub renames: Renames,
    /// What to do with existing target collections.
    #[serde(default = "refuse")]
    pub conflict: MongoConflict,
    /// With rename rules: allow collections no rule covers to be written back into the
    /// server the snapshot was taken from.
    #[serde(default)]
    pub in_place: bool,
}

fn refuse() -> MongoConflict {
    MongoConflict::Fail
}

/// What a MongoDB restore did.
#[derive(Clone, Debug, Serialize)]
pub struct MongoRestoreReport {
    /// The snapshot restored.
    pub snapshot: SnapshotId,
    /// Nothing was written (`dry_run`).
    pub dry_run: bool,
    /// One entry per collection.
    pub collections: Vec<CollectionOutcome>,
    /// The oplog replayed after the snapshot (`--at` past the snapshot's moment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayStats>,
    /// Without a roll-forward: the moment the restored state is from (the snapshot's
    /// cluster time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_as_of: Option<ClusterTime>,
}

impl MongoRestoreReport {
    /// Collections not restored completely (never in a dry run).
    pub fn incomplete(&self) -> Vec<&CollectionOutcome> {
        self.collections
            .iter()
            .filter(|o| !o.complete && !self.dry_run)
            .collect()
    }

    /// For an incomplete restore: what failed, what completed, and how to resume.
    pub fn failure(&self) -> Option<String> {
        let incomplete = self.incomplete();
        if incomplete.is_empty() {
            return None;
        }
        let done: Vec<&str> = self
            .collections
            .iter()
            .filter(|o| o.complete)
            .map(|o| o.target.as_str())
            .collect();
        let failed: Vec<&str> = incomplete.iter().map(|o| o.source.as_str()).collect();
        let resume: String = failed.iter().map(|ns| format!("--ns '{ns}' ")).collect();
        Some(format!(
            "{} collection(s) not completely restored: {}; completed: {}; to resume, restore \
             again with {resume}--conflict drop (after fixing the cause above)",
            incomplete.len(),
            failed.join(", "),
            if done.is_empty() {
                "none".to_string()
            } else {
                done.join(", ")
            },
        ))
    }
}

/// Restores `snap`'s collections into `target`; with `at`, the state at that moment (an
/// exact oplog timestamp with the second element). A moment the captured oplog does not
/// reach is refused before anything is written. Collections that fail are reported in
/// the report (see [`MongoRestoreReport::failure`]), the others are still restored.
pub fn restore(
    repo: &Repository,
    snap: &Snapshot,
    target: &MongoTarget,
    at: Option<(DateTime<Utc>, Option<ClusterTime>)>,
    dry_run: bool,
    ctx: &Ctx,
) -> Result<MongoRestoreReport> {
    let roll = match at {
        Some((at, exact)) => plan_at(repo, snap, at, exact)?,
        None => None,
    };
    ctx.info(format!(
        "restoring collections of snapshot {} ({} UTC, {}) into {}",
        snap.id.short(),
        snap.time.format("%Y-%m-%d %H:%M:%S"),
        snap.source.description,
        target.uri
    ));
    let mut opts = MongoRestoreOptions {
        uri: target.uri.expose().to_string(),
        namespaces: target.namespaces.clone(),
        renames: target.renames.clone(),
        conflict: target.conflict,
        in_place: target.in_place,
        dry_run,
        replayed: Vec::new(),
    };
    if let Some(rf) = &roll {
        prepare_target(repo, snap, rf, &mut opts)?;
    }
    let progress = ctx.phase(Phase::Restoring);
    let collections = super::run(repo, snap, &opts, ctx, &progress);
    ctx.phase_done(Phase::Restoring);
    let mut report = MongoRestoreReport {
        snapshot: snap.id,
        dry_run,
        collections: collections?,
        replay: None,
        state_as_of: None,
    };
    match &roll {
        Some(rf) if report.incomplete().is_empty() => {
            ctx.info(format!(
                "rolling forward from the snapshot's cluster time {} through {} oplog slice(s)",
                rf.base,
                rf.parts.len()
            ));
            if !dry_run {
                let progress = ctx.phase(Phase::Replaying);
                let replay = roll_forward(
                    repo,
                    rf,
                    &opts.uri,
                    &opts.namespaces,
                    &opts.renames,
                    ctx,
                    &progress,
                );
                ctx.phase_done(Phase::Replaying);
                report.replay = Some(replay?);
            }
        }
        Some(_) => {}
        None => report.state_as_of = snap.mongodb.as_ref().and_then(|m| m.cluster_time),
    }
    Ok(report)
}
