//! `repo locks` and `repo unlock`: who holds the repository, and removing the locks of
//! processes that are gone.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::lock::{FoundLock, LockInfo};
use crate::ops::context::Ctx;
use crate::repository::Repository;

/// One lock, as listed.
#[derive(Clone, Debug, Serialize)]
pub struct LockEntry {
    /// Its object id.
    pub id: String,
    /// No refresh for too long, or its process is gone on this host: ignored by others.
    pub stale: bool,
    /// What the lock says, when it can be read.
    #[serde(flatten)]
    pub info: Option<LockInfo>,
    /// Why it cannot be read.
    pub error: Option<String>,
    /// One line for people.
    #[serde(skip)]
    pub description: String,
}

fn entries(locks: &[FoundLock]) -> Vec<LockEntry> {
    let now = chrono::Utc::now();
    locks
        .iter()
        .map(|l| LockEntry {
            id: l.id.to_hex(),
            stale: l.is_stale(now),
            info: l.info.as_ref().ok().cloned(),
            error: l.info.as_ref().err().cloned(),
            description: l.describe(),
        })
        .collect()
}

/// Every lock of the repository.
pub fn list(repo: &Repository, _ctx: &Ctx) -> Result<Vec<LockEntry>> {
    Ok(entries(&crate::lock::list(repo.backend(), repo.key())?))
}

/// `unlock`: which locks to remove.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnlockRequest {
    /// Every lock, not only stale ones (only when no other process uses the repository).
    pub all: bool,
}

/// What `unlock` removed (serialized as the list of removed locks).
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct UnlockReport {
    /// The locks removed.
    pub removed: Vec<LockEntry>,
    /// Live locks left.
    #[serde(skip)]
    pub remaining: usize,
}

/// Removes stale locks (or all of them).
pub fn unlock(repo: &Repository, req: &UnlockRequest, _ctx: &Ctx) -> Result<UnlockReport> {
    let removed = crate::lock::remove(repo.backend(), repo.key(), req.all)?;
    let remaining = crate::lock::list(repo.backend(), repo.key())?.len();
    Ok(UnlockReport {
        removed: entries(&removed),
        remaining,
    })
}
