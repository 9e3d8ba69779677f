//! Repository locks taken through an open repository: waited for as the caller asked,
//! remembered, and checked before anything is committed.

use super::*;
use crate::config::{still_there, Still};

impl Repository {
    /// Takes a repository lock for `command` (see [`crate::lock`]), waiting up to `wait`
    /// unless `ctx` is cancelled first.
    pub fn lock(
        &self,
        kind: crate::lock::LockKind,
        command: &str,
        wait: std::time::Duration,
        ctx: &crate::ops::context::Ctx,
    ) -> Result<crate::lock::Lock> {
        self.check_same_repository()?;
        let lock = crate::lock::Lock::acquire_unless(
            self.backend.clone(),
            &self.key,
            kind,
            command,
            wait,
            &|| ctx.cancelled(),
        )?;
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(lock.watch());
        // A local index opened before this lock (by a service between jobs, a mount, an
        // earlier verb of this process) may miss segments other hosts wrote since, or list
        // packs a prune deleted since: what the verb decides under the lock must see the
        // repository as it is now.
        self.refresh_index()?;
        Ok(lock)
    }

    /// How long the verbs wait for a conflicting lock before failing with
    /// [`Error::Locked`] (default: not at all).
    pub fn set_lock_wait(&mut self, wait: std::time::Duration) {
        self.lock_wait = wait;
    }

    /// Takes the lock a verb needs, waiting as [`Repository::set_lock_wait`] says.
    pub fn lock_for(
        &self,
        kind: crate::lock::LockKind,
        command: &str,
        ctx: &crate::ops::context::Ctx,
    ) -> Result<crate::lock::Lock> {
        self.lock(kind, command, self.lock_wait, ctx)
    }

    /// [`Repository::lock_for`] for verbs that free space (forget, prune, repair): on a
    /// disk too full to write even the lock, the space the repository reserves for this
    /// is released first.
    pub fn lock_to_free_space(
        &self,
        kind: crate::lock::LockKind,
        command: &str,
        ctx: &crate::ops::context::Ctx,
    ) -> Result<crate::lock::Lock> {
        match self.lock_for(kind, command, ctx) {
            Err(e) if e.is_disk_full() => {
                if !self.backend.release_reserve()? {
                    return Err(e);
                }
                self.lock_for(kind, command, ctx)
            }
            other => other,
        }
    }

    /// The locks still held through this handle.
    fn watches(&self) -> Vec<crate::lock::LockWatch> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|w| !w.released());
        locks.clone()
    }

    /// Fails when a lock taken through this handle may no longer hold (a refresh failed
    /// or came too late, or its object was removed): another process may then have taken
    /// it for stale, so nothing more may be committed.
    pub fn check_locks(&self) -> Result<()> {
        self.watches().iter().try_for_each(|w| w.verify())?;
        self.check_same_repository()
    }

    /// Before deleting anything under an exclusive lock: [`Repository::check_locks`], and
    /// no other live lock appeared meanwhile.
    pub fn check_alone(&self) -> Result<()> {
        let watches = self.watches();
        if watches.is_empty() {
            return Err(Error::Invalid(
                "deleting from the repository needs the exclusive lock".into(),
            ));
        }
        watches.iter().try_for_each(|w| w.verify_alone())?;
        self.check_same_repository()
    }

    /// Fails when the location no longer holds the repository this handle opened: it was
    /// deleted, perhaps created again (`init`) at the same place, while this process held
    /// it (a `follow` or a service running on). Everything this handle writes is sealed with
    /// the old repository's key, so it would only be unreadable noise in the new one.
    /// Checked before taking a lock (so before anything is written under it) and before
    /// committing: one small read.
    pub fn check_same_repository(&self) -> Result<()> {
        match still_there(self.backend.as_ref(), &self.config_sealed)? {
            Still::Same => Ok(()),
            other => Err(Error::Refused(format!(
                "the repository at {} was {} since this process opened it; nothing more \
                 is written there (open it again to use the repository there now)",
                self.backend.location(),
                if other == Still::Replaced {
                    "replaced by another one"
                } else {
                    "removed"
                }
            ))),
        }
    }

    /// Whether the location still holds the repository this handle opened (a long-lived
    /// holder such as the service opens it again when not).
    pub fn is_same_repository(&self) -> Result<bool> {
        Ok(still_there(self.backend.as_ref(), &self.config_sealed)? == Still::Same)
    }
}
