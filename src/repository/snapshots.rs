//! Snapshot objects: listing, loading (damaged ones set aside, warned about once), naming
//! by id prefix, and storing one (the last write of a backup).

use super::*;

impl Repository {
    /// All snapshot ids in the repository.
    pub fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        Ok(crate::backend::list_ids(self.backend(), "snapshots/")?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// All readable snapshots, oldest first. A snapshot object that cannot be decrypted
    /// or decoded is left out with a warning (once per process) and listed by
    /// [`Repository::damaged_snapshots`]: one bad object must not stop every command.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let mut out = Vec::new();
        let mut damaged = Vec::new();
        for id in self.snapshot_ids()? {
            match self.load_snapshot(&id) {
                Ok(s) => out.push(s),
                Err(e @ Error::Corrupt { .. }) => damaged.push((id, e.to_string())),
                // Removed since the listing (a concurrent forget).
                Err(Error::Missing(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut known = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
        for (id, why) in damaged {
            if !known.iter().any(|(k, _)| *k == id) {
                tracing::warn!(
                    "snapshot {} is damaged and left out ({why}); remove it with `repo forget {}`",
                    id.short(),
                    id.short()
                );
                known.push((id, why));
            }
        }
        out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Snapshot objects found damaged so far by [`Repository::snapshots`], with why.
    pub fn damaged_snapshots(&self) -> Vec<(SnapshotId, String)> {
        self.damaged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The id of the snapshot object a full id or unique prefix names, without reading
    /// it (so a damaged snapshot can still be named, e.g. to forget it).
    pub fn resolve_snapshot_id(&self, sel: &str) -> Result<SnapshotId> {
        let sel_lc = sel.to_ascii_lowercase();
        if sel_lc.is_empty() || !sel_lc.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::Selection(format!(
                "{sel:?} is not a snapshot id (expected hex digits or \"latest\")"
            )));
        }
        let matches: Vec<SnapshotId> = self
            .snapshot_ids()?
            .into_iter()
            .filter(|id| id.to_hex().starts_with(&sel_lc))
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::Selection(format!("no snapshot matches {sel:?}"))),
            many => Err(Error::Selection(format!(
                "{sel:?} is ambiguous: it matches {} snapshots; give more digits",
                many.len()
            ))),
        }
    }

    /// Stores a snapshot object — the last write of a backup run.
    pub fn save_snapshot(&self, s: &Snapshot) -> Result<()> {
        self.check_locks()?;
        self.backend.put(&snapshot_path(&s.id), &s.seal(&self.key))
    }
}
