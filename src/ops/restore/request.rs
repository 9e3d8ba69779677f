//! `restore` as one call: which snapshot (or moment), which part of it, and into what —
//! a directory or a MongoDB server.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{plan, Conflict, RestoreOptions, RestoreReport};
use crate::error::{Error, Result};
use crate::lock::LockKind;
use crate::ops::context::Ctx;
use crate::ops::select::{self, SnapshotRef};
use crate::repository::Repository;
use crate::tree::path::SnapPath;

/// A directory to restore files into, and how.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesTarget {
    /// Directory to restore into (created if missing).
    pub target: PathBuf,
    /// Leave out entries matching these globs (names, or whole paths when they hold `/`).
    pub excludes: Vec<String>,
    /// What to do with existing files that differ from the snapshot.
    pub conflict: Conflict,
    /// Hash existing files whose size and mtime match before calling them up to date.
    pub verify_existing: bool,
    /// Remove entries of restored directories that the snapshot does not have.
    pub delete: bool,
}

/// Where a restore writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreInto {
    /// Files into a directory.
    Files(FilesTarget),
    /// Collections into a MongoDB server.
    #[cfg(feature = "mongo")]
    Mongodb(crate::mongo::restore::MongoTarget),
}

/// `restore`: a snapshot (or the state at a moment), or part of it, into a directory or a
/// MongoDB server.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// Which snapshot; with `at`, for MongoDB, the state at that moment (oplog replayed).
    #[serde(default)]
    pub snapshot: SnapshotRef,
    /// With `snapshot.at` (a whole second) and a MongoDB target: exactly the oplog
    /// timestamp (that second, this ordinal), as `mongodb coverage` shows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordinal: Option<u32>,
    /// Snapshot paths, or globs ("*.pdf", "/home/*/docs"), to restore with what is below
    /// them; empty: everything. Absolute paths also choose among snapshots for `latest`
    /// and `at` (the newest that holds them).
    #[serde(default)]
    pub include: Vec<SnapPath>,
    /// Only work out and report what would be done.
    #[serde(default)]
    pub dry_run: bool,
    /// Where to.
    pub into: RestoreInto,
}

/// What a restore did.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum RestoreOutcome {
    /// Files.
    Files(RestoreReport),
    /// Collections.
    #[cfg(feature = "mongo")]
    Mongodb(crate::mongo::restore::MongoRestoreReport),
}

impl RestoreOutcome {
    /// Why the restore is not complete (some items failed), if it is not.
    pub fn failure(&self) -> Option<String> {
        match self {
            RestoreOutcome::Files(r) => (!r.errors.is_empty())
                .then(|| format!("{} item(s) could not be restored", r.errors.len())),
            #[cfg(feature = "mongo")]
            RestoreOutcome::Mongodb(r) => r.failure(),
        }
    }
}

/// Whether `p` names a path rather than a glob.
fn is_path(p: &SnapPath) -> bool {
    p.as_bytes().starts_with(b"/") && !plan::is_glob(p)
}

/// Restores what `req` names, under the shared lock. Items that fail are listed in the
/// report ([`RestoreOutcome::failure`]); everything else is still restored.
pub fn run(repo: &Repository, req: &RestoreRequest, ctx: &Ctx) -> Result<RestoreOutcome> {
    let _lock = repo.lock_for(LockKind::Shared, "restore", ctx)?;
    let mut sel = req.snapshot.clone();
    #[cfg(feature = "mongo")]
    if matches!(req.into, RestoreInto::Mongodb(_)) {
        if sel.filter.source.is_none() {
            // Restoring collections: only snapshots that hold some.
            sel.filter.source = Some("mongodb".into());
        }
        // A snapshot of a later ordinal in that second holds writes after the moment.
        sel.ordinal = req.ordinal;
    }
    let hint: Vec<SnapPath> = req.include.iter().filter(|p| is_path(p)).cloned().collect();
    let snap = select::snapshot(repo, &sel, &hint)?;
    match &req.into {
        RestoreInto::Files(t) => {
            if req.ordinal.is_some() {
                return Err(Error::Invalid(
                    "an oplog ordinal (--at \"TIME #N\") applies to MongoDB restores".into(),
                ));
            }
            ctx.info(format!(
                "restoring snapshot {} ({} UTC, {}) into {}",
                snap.id.short(),
                snap.time.format("%Y-%m-%d %H:%M:%S"),
                snap.source.description,
                t.target.display()
            ));
            let opts = RestoreOptions {
                target: t.target.clone(),
                includes: req.include.clone(),
                excludes: t.excludes.clone(),
                conflict: t.conflict,
                verify_existing: t.verify_existing,
                dry_run: req.dry_run,
                delete: t.delete,
            };
            super::files(repo, &snap, &opts, ctx).map(RestoreOutcome::Files)
        }
        #[cfg(feature = "mongo")]
        RestoreInto::Mongodb(t) => {
            if !req.include.is_empty() {
                return Err(Error::Invalid(
                    "paths choose files; for collections use namespaces (--ns)".into(),
                ));
            }
            let at = match (req.snapshot.at, req.ordinal) {
                (Some(at), None) => Some((at, None)),
                (Some(at), Some(i)) if at.timestamp_subsec_nanos() == 0 => {
                    let t = u32::try_from(at.timestamp()).map_err(|_| {
                        Error::Invalid(format!(
                            "{} is not an oplog time",
                            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        ))
                    })?;
                    Some((at, Some(crate::snapshot::ClusterTime { t, i })))
                }
                (Some(_), Some(_)) => {
                    return Err(Error::Invalid(
                        "an oplog timestamp (--at \"TIME #N\") is a whole second".into(),
                    ))
                }
                (None, Some(_)) => {
                    return Err(Error::Invalid(
                        "an oplog ordinal needs a time (--at \"TIME #N\")".into(),
                    ))
                }
                (None, None) => None,
            };
            crate::mongo::restore::restore(repo, &snap, t, at, req.dry_run, ctx)
                .map(RestoreOutcome::Mongodb)
        }
    }
}
