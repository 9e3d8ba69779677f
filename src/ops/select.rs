//! Naming snapshots: the one function every verb (and every face) uses to turn
//! "latest", an id prefix or a moment, narrowed by host/path/tag filters, into a snapshot.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::repository::Repository;
use crate::selection::{at_or_before, covers, SnapshotFilter};
use crate::snapshot::Snapshot;
use crate::tree::path::SnapPath;

/// How a request names one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotRef {
    /// `latest` (also when absent), a full id or a unique id prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Instead of an id: the newest snapshot whose moment is at or before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// Which snapshots `latest` and `at` choose among; a snapshot named by id must match
    /// it too.
    pub filter: SnapshotFilter,
    /// With `at`: exactly oplog timestamp (that second, this ordinal), for a MongoDB
    /// restore (set from [`crate::ops::restore::RestoreRequest::ordinal`]).
    #[serde(skip)]
    pub ordinal: Option<u32>,
}

impl SnapshotRef {
    /// The newest snapshot.
    pub fn latest() -> Self {
        Self::default()
    }

    /// A snapshot by `latest`, id or unique prefix.
    pub fn id(sel: impl Into<String>) -> Self {
        Self {
            id: Some(sel.into()),
            ..Self::default()
        }
    }

    /// The newest snapshot at or before `at`.
    pub fn at(at: DateTime<Utc>) -> Self {
        Self {
            at: Some(at),
            ..Self::default()
        }
    }

    /// The same reference, narrowed by `filter`.
    pub fn with_filter(mut self, filter: SnapshotFilter) -> Self {
        self.filter = filter;
        self
    }

    fn is_latest(&self) -> bool {
        self.id.as_deref().is_none_or(|s| s == "latest")
    }
}

/// Whether `s` holds absolute snapshot path `path`: one of its paths is the path, an
/// ancestor of it, or below it (listing `/` of a snapshot of `/home/u` shows `/home/u`).
/// A snapshot's recorded paths are text ([`crate::tree::path::text`]), compared as such.
fn holds(s: &Snapshot, path: &str) -> bool {
    s.paths
        .iter()
        .any(|root| covers(root, path) || covers(path, root))
}

/// The snapshot `r` names. `paths` are the absolute snapshot paths the verb is about to
/// use (what `ls` lists, what `restore` restores): without a path filter, `latest` and
/// `at` prefer the snapshots that hold all of them, so `latest ~/projects` means the newest
/// snapshot of `~/projects`, not the newest of the repository.
pub fn snapshot(repo: &Repository, r: &SnapshotRef, paths: &[SnapPath]) -> Result<Snapshot> {
    if r.at.is_some() && !r.is_latest() {
        return Err(Error::Invalid(
            "name a snapshot by id or by time, not both".into(),
        ));
    }
    if !r.is_latest() {
        let sel = r.id.as_deref().unwrap_or_default();
        let snap = by_id(repo, sel)?;
        if !r.filter.matches(&snap) {
            return Err(Error::Selection(format!(
                "snapshot {} does not match the given filters (--host, --path, --tag)",
                snap.id.short()
            )));
        }
        return Ok(snap);
    }
    let mut snaps = r.filter.apply(repo.snapshots()?);
    if r.filter.paths.is_empty() && !paths.is_empty() {
        let holding: Vec<Snapshot> = snaps
            .iter()
            .filter(|s| paths.iter().all(|p| holds(s, &p.display())))
            .cloned()
            .collect();
        if !holding.is_empty() {
            snaps = holding;
        }
    }
    match r.at {
        Some(at) => at_or_before(snaps, at, r.ordinal),
        None => snaps.pop().ok_or_else(|| {
            Error::Selection(if r.filter == SnapshotFilter::default() {
                "the repository has no snapshots yet".into()
            } else {
                "no snapshot matches the given filters (--host, --path, --tag)".into()
            })
        }),
    }
}

/// The snapshots a list of references names (`latest` once per entry), in the order
/// given, without repeats.
pub fn snapshots(repo: &Repository, refs: &[SnapshotRef]) -> Result<Vec<Snapshot>> {
    let mut out: Vec<Snapshot> = Vec::new();
    for r in refs {
        let s = snapshot(repo, r, &[])?;
        if !out.iter().any(|o| o.id == s.id) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Every snapshot passing `filter`, oldest first.
pub fn matching(repo: &Repository, filter: &SnapshotFilter) -> Result<Vec<Snapshot>> {
    Ok(filter.apply(repo.snapshots()?))
}

/// A snapshot by full id or unique prefix; a damaged one is an error that says how to
/// remove it.
fn by_id(repo: &Repository, sel: &str) -> Result<Snapshot> {
    let id = repo.resolve_snapshot_id(sel)?;
    repo.load_snapshot(&id).map_err(|e| match e {
        Error::Corrupt { what, detail } => Error::Corrupt {
            what,
            detail: format!(
                "{detail}; the snapshot cannot be used (remove it with `repo forget {}`)",
                id.short()
            ),
        },
        other => other,
    })
}
