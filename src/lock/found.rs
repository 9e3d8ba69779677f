//! Lock objects as found in the repository: what they say, whether their holder is gone,
//! and listing and removing them (`repo locks`, `repo unlock`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{LockKind, STALE_AFTER};
use crate::backend::Backend;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::LockId;

/// The content of a lock object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockInfo {
    /// Shared or exclusive.
    pub kind: LockKind,
    /// Host name of the holder.
    pub host: String,
    /// Process id of the holder on that host.
    pub pid: u32,
    /// User running the holder.
    pub user: String,
    /// The command holding it (e.g. "prune").
    pub command: String,
    /// When the lock was first taken.
    pub created: DateTime<Utc>,
    /// Last heartbeat.
    pub refreshed: DateTime<Utc>,
}

impl LockInfo {
    /// Decodes a lock's plaintext.
    pub fn decode(plain: &[u8], what: &str) -> Result<Self> {
        serde_json::from_slice(plain).map_err(|e| Error::corrupt(what, e.to_string()))
    }
}

/// A lock found in the repository.
#[derive(Clone, Debug)]
pub struct FoundLock {
    /// Its object id.
    pub id: LockId,
    /// Its content, or why it could not be read.
    pub info: std::result::Result<LockInfo, String>,
}

impl FoundLock {
    /// Whether the holder is certainly gone: no heartbeat for [`STALE_AFTER`], or a dead
    /// process on this host. Unreadable locks are never called stale.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        let Ok(info) = &self.info else { return false };
        let age = now.signed_duration_since(info.refreshed);
        if age.to_std().is_ok_and(|a| a > STALE_AFTER) {
            return true;
        }
        info.host == crate::sysinfo::hostname() && !process_alive(info.pid)
    }

    /// One line for messages.
    pub fn describe(&self) -> String {
        match &self.info {
            Ok(i) => format!(
                "{} lock {} by \"{}\" (pid {} on {}, user {}), taken {}, refreshed {}",
                match i.kind {
                    LockKind::Shared => "shared",
                    LockKind::Exclusive => "exclusive",
                },
                self.id.short(),
                i.command,
                i.pid,
                i.host,
                i.user,
                i.created.format("%Y-%m-%d %H:%M:%S UTC"),
                i.refreshed.format("%H:%M:%S UTC"),
            ),
            Err(e) => format!("lock {} (unreadable: {e})", self.id.short()),
        }
    }

    pub(super) fn conflicts_with(&self, kind: LockKind) -> bool {
        match &self.info {
            Ok(i) => kind == LockKind::Exclusive || i.kind == LockKind::Exclusive,
            Err(_) => true,
        }
    }
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Object name of a lock.
pub fn lock_path(id: &LockId) -> String {
    format!("locks/{}", id.to_hex())
}

/// Every lock in the repository.
pub fn list(backend: &dyn Backend, key: &MasterKey) -> Result<Vec<FoundLock>> {
    let mut out = Vec::new();
    for (id, obj) in crate::backend::list_ids::<LockId>(backend, "locks/")? {
        let info = match backend.get(&obj.path) {
            Ok(bytes) => key
                .open(&bytes, &format!("lock {}", id.short()))
                .and_then(|plain| LockInfo::decode(&plain, &format!("lock {}", id.short())))
                .map_err(|e| e.to_string()),
            // Released between list and get.
            Err(Error::Missing(_)) => continue,
            Err(e) => return Err(e),
        };
        out.push(FoundLock { id, info });
    }
    Ok(out)
}

/// Removes stale locks (or all with `all`); returns what was removed.
pub fn remove(backend: &dyn Backend, key: &MasterKey, all: bool) -> Result<Vec<FoundLock>> {
    let now = Utc::now();
    let mut removed = Vec::new();
    for l in list(backend, key)? {
        if all || l.is_stale(now) {
            backend.delete(&lock_path(&l.id))?;
            removed.push(l);
        }
    }
    Ok(removed)
}
