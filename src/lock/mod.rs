//! Repository locks: objects under `locks/` that say who is using the repository.
//!
//! Writers that only add immutable objects (snapshot, restore, check, forget) share the
//! repository; prune, which deletes packs and segments, needs it alone. Object stores have
//! no atomic create-if-absent, so a lock is taken optimistically: write ours, list the
//! others, and withdraw if a conflicting live lock is there. Two contenders can both
//! withdraw; never can both keep conflicting locks, because each lists after writing.
//!
//! A holder refreshes its lock every [`REFRESH_EVERY`]. A lock not refreshed for
//! [`STALE_AFTER`], or whose process is gone on this host, is stale: it is ignored and
//! `repo unlock` removes it. So a holder that could not refresh in time (a failing store, a
//! suspended machine) or whose lock object was removed must assume others no longer see
//! it, and commits nothing more ([`LockWatch::verify`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::LockId;

mod found;
pub use found::{list, lock_path, remove, FoundLock, LockInfo};

/// How often a holder rewrites its lock.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// A lock not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// Pause between attempts while waiting for a conflicting lock to go away.
const RETRY_EVERY: Duration = Duration::from_secs(2);
/// How often a waiter looks whether it was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// Shared or exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// Compatible with other shared locks.
    Shared,
    /// Compatible with nothing.
    Exclusive,
}

struct Held {
    backend: Arc<dyn Backend>,
    key: MasterKey,
    info: Mutex<(LockId, LockInfo)>,
    /// When the lock object was last written successfully.
    written: Mutex<Instant>,
    /// Set when the holder released the lock.
    released: AtomicBool,
}

/// How long after its last successful write a holder still trusts its lock: well before
/// others may call it stale, leaving room for clocks that disagree a little.
pub const TRUST_FOR: Duration =
    Duration::from_secs(STALE_AFTER.as_secs() - 2 * REFRESH_EVERY.as_secs());

impl Held {
    fn write(&self, id: &LockId, info: &LockInfo) -> Result<()> {
        let plain =
            serde_json::to_vec(info).map_err(|e| Error::Invalid(format!("encoding lock: {e}")))?;
        self.backend.put(&lock_path(id), &self.key.seal(&plain))
    }

    /// Writes a fresh lock object, then removes the old one, so there is never a moment
    /// without a lock (which an object store's non-atomic overwrite could not promise).
    /// Fails when the old object is gone: someone took it for stale and removed it.
    fn refresh(&self) -> Result<()> {
        let mut guard = self.info.lock().unwrap_or_else(|p| p.into_inner());
        if !self.backend.exists(&lock_path(&guard.0))? {
            return Err(Error::Refused(
                "the lock object was removed by another process".into(),
            ));
        }
        let mut info = guard.1.clone();
        info.refreshed = Utc::now();
        let id = LockId::random();
        self.write(&id, &info)?;
        *self.written.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let old = std::mem::replace(&mut *guard, (id, info)).0;
        self.backend.delete(&lock_path(&old))
    }
}

/// What a repository handle keeps of each lock taken through it, to check before
/// committing that the lock still holds.
#[derive(Clone)]
pub struct LockWatch {
    held: Arc<Held>,
    lost: Arc<AtomicBool>,
    kind: LockKind,
}

impl LockWatch {
    /// Whether the holder released the lock (there is nothing left to check).
    pub fn released(&self) -> bool {
        self.held.released.load(Ordering::Relaxed)
    }

    /// The current lock object's id (it changes at every refresh).
    pub fn id(&self) -> LockId {
        self.held.info.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Fails unless the lock certainly still holds: its last refresh worked, was recent
    /// enough that no one may call it stale, and its object is still there.
    pub fn verify(&self) -> Result<()> {
        let lost = |why: &str| {
            Err(Error::Refused(format!(
                "the repository lock is no longer certain ({why}); stopping before committing anything more"
            )))
        };
        if self.lost.load(Ordering::Relaxed) {
            return lost("a refresh failed");
        }
        let age = self
            .held
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed();
        if age > TRUST_FOR {
            return lost(&format!("not refreshed for {}s", age.as_secs()));
        }
        if !self.held.backend.exists(&lock_path(&self.id()))? {
            return lost("its object was removed by another process");
        }
        Ok(())
    }

    /// For an exclusive lock, just before deleting anything: fails when another live lock
    /// appeared after all (one written by a host whose listing lagged, or that ignored ours).
    pub fn verify_alone(&self) -> Result<()> {
        self.verify()?;
        if self.kind != LockKind::Exclusive {
            return Ok(());
        }
        let others = conflicts(&self.held, LockKind::Exclusive)?;
        if others.is_empty() {
            Ok(())
        } else {
            Err(Error::Locked(format!(
                "another process took a lock while this one held the repository alone; stopping before deleting anything:\n{}",
                others.iter().map(|l| format!("  {}", l.describe())).collect::<Vec<_>>().join("\n")
            )))
        }
    }
}

/// A lock this process holds; released (deleted) on drop.
pub struct Lock {
    held: Arc<Held>,
    stop: Arc<(Mutex<bool>, std::sync::Condvar)>,
    refresher: Option<JoinHandle<()>>,
    lost: Arc<AtomicBool>,
    kind: LockKind,
}

impl Lock {
    /// Takes a lock of `kind` for `command`, waiting up to `wait` for conflicting locks.
    pub fn acquire(
        backend: Arc<dyn Backend>,
        key: &MasterKey,
        kind: LockKind,
        command: &str,
        wait: Duration,
    ) -> Result<Lock> {
        Self::acquire_unless(backend, key, kind, command, wait, &|| false)
    }

    /// [`Lock::acquire`], giving up with [`Error::Cancelled`] as soon as `cancelled` says
    /// so while it waits (a job cancelled in the service must not sit out `--lock-wait`).
    pub fn acquire_unless(
        backend: Arc<dyn Backend>,
        key: &MasterKey,
        kind: LockKind,
        command: &str,
        wait: Duration,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Lock> {
        let now = Utc::now();
        let info = LockInfo {
            kind,
            host: crate::sysinfo::hostname(),
            pid: std::process::id(),
            user: crate::sysinfo::username(),
            command: command.to_string(),
            created: now,
            refreshed: now,
        };
        let held = Arc::new(Held {
            backend,
            key: key.clone(),
            info: Mutex::new((LockId::random(), info)),
            written: Mutex::new(Instant::now()),
            released: AtomicBool::new(false),
        });
        let deadline = Instant::now() + wait;
        let mut told = false;
        loop {
            let blocking = conflicts(&held, kind)?;
            if blocking.is_empty() {
                let (id, info) = held.info.lock().unwrap_or_else(|p| p.into_inner()).clone();
                held.write(&id, &info)?;
                *held.written.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                // Someone may have written theirs at the same time: look again. A look
                // that fails must not leave our lock behind: a long-lived process (the
                // service) would keep it fresh-looking, blocking every exclusive lock.
                let blocking = match conflicts(&held, kind) {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = held.backend.delete(&lock_path(&id));
                        return Err(e);
                    }
                };
                if blocking.is_empty() {
                    return Ok(Self::start(held, kind));
                }
                held.backend.delete(&lock_path(&id))?;
                if Instant::now() >= deadline {
                    return Err(locked(kind, &blocking));
                }
            } else if Instant::now() >= deadline {
                return Err(locked(kind, &blocking));
            }
            if !told {
                told = true;
                let who: Vec<String> = blocking.iter().map(|l| l.describe()).collect();
                tracing::info!(
                    "waiting up to {}s for the repository, in use by {}",
                    wait.as_secs(),
                    who.join("; ")
                );
            }
            // Jitter keeps two contenders from colliding forever.
            let jitter = Duration::from_millis(rand::random::<u64>() % 1000);
            let next = Instant::now() + (RETRY_EVERY + jitter);
            while Instant::now() < next.min(deadline) {
                if cancelled() {
                    return Err(Error::Cancelled(
                        " while waiting for the repository lock".into(),
                    ));
                }
                std::thread::sleep(CANCEL_POLL.min(next.saturating_duration_since(Instant::now())));
            }
        }
    }

    fn start(held: Arc<Held>, kind: LockKind) -> Lock {
        let stop = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let lost = Arc::new(AtomicBool::new(false));
        let (h, s, l) = (held.clone(), stop.clone(), lost.clone());
        let refresher = std::thread::spawn(move || loop {
            let (m, cv) = &*s;
            let guard = m.lock().unwrap_or_else(|p| p.into_inner());
            let (guard, _) = cv
                .wait_timeout_while(guard, REFRESH_EVERY, |stopped| !*stopped)
                .unwrap_or_else(|p| p.into_inner());
            if *guard {
                return;
            }
            drop(guard);
            if h.refresh().is_err() {
                l.store(true, Ordering::Relaxed);
            }
        });
        Lock {
            held,
            stop,
            refresher: Some(refresher),
            lost,
            kind,
        }
    }

    /// A handle to check, later, that this lock still holds.
    pub fn watch(&self) -> LockWatch {
        LockWatch {
            held: self.held.clone(),
            lost: self.lost.clone(),
            kind: self.kind,
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        {
            let (m, cv) = &*self.stop;
            *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let id = self.held.info.lock().unwrap_or_else(|p| p.into_inner()).0;
        self.held.released.store(true, Ordering::Relaxed);
        let _ = self.held.backend.delete(&lock_path(&id));
    }
}

/// Live locks of others that conflict with taking `kind`.
fn conflicts(held: &Held, kind: LockKind) -> Result<Vec<FoundLock>> {
    let own = held.info.lock().unwrap_or_else(|p| p.into_inner()).0;
    let now = Utc::now();
    Ok(list(held.backend.as_ref(), &held.key)?
        .into_iter()
        .filter(|l| l.id != own && !l.is_stale(now) && l.conflicts_with(kind))
        .collect())
}

fn locked(kind: LockKind, blocking: &[FoundLock]) -> Error {
    let want = match kind {
        LockKind::Shared => "a shared lock",
        LockKind::Exclusive => "an exclusive lock",
    };
    let list: Vec<String> = blocking
        .iter()
        .map(|l| format!("  {}", l.describe()))
        .collect();
    Error::Locked(format!(
        "cannot take {want}: the repository is in use by\n{}\nwait with --lock-wait DURATION, or if that process is gone, run `repo unlock`",
        list.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;

    fn setup() -> (tempfile::TempDir, Arc<dyn Backend>, MasterKey) {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        (dir, b, MasterKey::generate())
    }

    #[test]
    fn shared_locks_coexist_and_exclusive_waits_for_them() {
        let (_d, b, k) = setup();
        let s1 = Lock::acquire(b.clone(), &k, LockKind::Shared, "a", Duration::ZERO).unwrap();
        let s2 = Lock::acquire(b.clone(), &k, LockKind::Shared, "b", Duration::ZERO).unwrap();
        let e = Lock::acquire(b.clone(), &k, LockKind::Exclusive, "p", Duration::ZERO);
        let msg = e.err().unwrap().to_string();
        assert!(
            msg.contains("shared lock") && msg.contains("\"a\""),
            "{msg}"
        );
        drop((s1, s2));
        assert!(list(b.as_ref(), &k).unwrap().is_empty(), "drop left a lock");
        let e = Lock::acquire(b.clone(), &k, LockKind::Exclusive, "p", Duration::ZERO).unwrap();
        assert!(Lock::acquire(b.clone(), &k, LockKind::Shared, "s", Duration::ZERO).is_err());
        drop(e);
    }

    /// A local backend whose `list` of `locks/` fails from the `fail_from`-th call.
    struct ListFails {
        inner: LocalBackend,
        lists: std::sync::atomic::AtomicUsize,
        fail_from: usize,
    }

    impl Backend for ListFails {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn get(&self, path: &str) -> Result<Vec<u8>> {
            self.inner.get(path)
        }
        fn get_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
            self.inner.get_range(path, offset, len)
        }
        fn put(&self, path: &str, bytes: &[u8]) -> Result<()> {
            self.inner.put(path, bytes)
        }
        fn list(&self, prefix: &str) -> Result<Vec<crate::backend::ObjectInfo>> {
            if self.lists.fetch_add(1, Ordering::SeqCst) + 1 >= self.fail_from {
                return Err(Error::storage("listing failed", false));
            }
            self.inner.list(prefix)
        }
        fn delete(&self, path: &str) -> Result<()> {
            self.inner.delete(path)
        }
        fn exists(&self, path: &str) -> Result<bool> {
            self.inner.exists(path)
        }
    }

    #[test]
    fn a_failed_second_look_leaves_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let k = MasterKey::generate();
        for kind in [LockKind::Shared, LockKind::Exclusive] {
            let b: Arc<dyn Backend> = Arc::new(ListFails {
                inner: LocalBackend::new(dir.path()),
                lists: Default::default(),
                fail_from: 2,
            });
            let e = Lock::acquire(b, &k, kind, "check", Duration::ZERO);
            assert!(e.is_err());
            let left = list(&LocalBackend::new(dir.path()), &k).unwrap();
            assert!(left.is_empty(), "{kind:?}: {} lock(s) left", left.len());
        }
    }

    #[test]
    fn a_cancelled_waiter_gives_up_and_leaves_no_lock() {
        let (_d, b, k) = setup();
        let held = Lock::acquire(b.clone(), &k, LockKind::Exclusive, "p", Duration::ZERO).unwrap();
        // Asked to stop on its third look: a waiter of ten minutes returns at once.
        let looks = std::sync::atomic::AtomicUsize::new(0);
        let cancelled = || looks.fetch_add(1, Ordering::SeqCst) >= 2;
        let wait = Duration::from_secs(600);
        let e = Lock::acquire_unless(b.clone(), &k, LockKind::Shared, "s", wait, &cancelled);
        assert!(matches!(e, Err(Error::Cancelled(_))), "{:?}", e.err());
        assert_eq!(
            list(b.as_ref(), &k).unwrap().len(),
            1,
            "only the holder's lock"
        );
        drop(held);
        // Not cancelled, it takes the lock once free.
        let s = Lock::acquire_unless(b.clone(), &k, LockKind::Shared, "s", wait, &|| false);
        assert!(s.is_ok());
    }

    #[test]
    fn stale_locks_are_ignored_and_removable() {
        let (_d, b, k) = setup();
        let old = Utc::now() - chrono::Duration::hours(2);
        let info = LockInfo {
            kind: LockKind::Exclusive,
            host: "elsewhere".into(),
            pid: 1,
            user: "u".into(),
            command: "prune".into(),
            created: old,
            refreshed: old,
        };
        let id = LockId::random();
        b.put(
            &lock_path(&id),
            &k.seal(&serde_json::to_vec(&info).unwrap()),
        )
        .unwrap();
        let s = Lock::acquire(b.clone(), &k, LockKind::Shared, "s", Duration::ZERO).unwrap();
        drop(s);
        let removed = remove(b.as_ref(), &k, false).unwrap();
        assert_eq!(removed.len(), 1);
        assert!(list(b.as_ref(), &k).unwrap().is_empty());
    }

    #[test]
    fn refresh_replaces_the_object() {
        let (_d, b, k) = setup();
        let l = Lock::acquire(b.clone(), &k, LockKind::Shared, "s", Duration::ZERO).unwrap();
        let before = list(b.as_ref(), &k).unwrap();
        l.held.refresh().unwrap();
        let after = list(b.as_ref(), &k).unwrap();
        assert_eq!((before.len(), after.len()), (1, 1));
        assert_ne!(before[0].id, after[0].id);
        l.watch().verify().unwrap();
    }

    #[test]
    fn a_lock_removed_by_others_or_not_refreshed_in_time_is_lost() {
        let (_d, b, k) = setup();
        let l = Lock::acquire(b.clone(), &k, LockKind::Shared, "s", Duration::ZERO).unwrap();
        let w = l.watch();
        w.verify().unwrap();
        // Someone (say `repo unlock --all` elsewhere) removed it.
        remove(b.as_ref(), &k, true).unwrap();
        assert!(w.verify().unwrap_err().to_string().contains("removed"));
        assert!(l.held.refresh().is_err());
        drop(l);
        // A holder whose last write is older than it may trust (a suspended machine).
        let l = Lock::acquire(b.clone(), &k, LockKind::Shared, "s", Duration::ZERO).unwrap();
        *l.held.written.lock().unwrap() = Instant::now() - TRUST_FOR - Duration::from_secs(1);
        let err = l.watch().verify().unwrap_err().to_string();
        assert!(err.contains("not refreshed"), "{err}");
    }

    #[test]
    fn exclusive_holder_notices_a_lock_that_appeared_anyway() {
        let (_d, b, k) = setup();
        let e = Lock::acquire(b.clone(), &k, LockKind::Exclusive, "prune", Duration::ZERO).unwrap();
        e.watch().verify_alone().unwrap();
        // A writer whose listing did not show the exclusive lock wrote its own.
        let now = Utc::now();
        let info = LockInfo {
            kind: LockKind::Shared,
            host: "other-host".into(),
            pid: 1,
            user: "u".into(),
            command: "snapshot".into(),
            created: now,
            refreshed: now,
        };
        b.put(
            &lock_path(&LockId::random()),
            &k.seal(&serde_json::to_vec(&info).unwrap()),
        )
        .unwrap();
        let err = e.watch().verify_alone().unwrap_err().to_string();
        assert!(err.contains("snapshot"), "{err}");
    }
}
