//! Local copies of immutable repository objects — tree blobs and snapshot objects — for
//! repositories on remote storage, so `snapshots`, `ls`, `diff`, `find` and the parent
//! lookup of an incremental snapshot do not fetch them again. Copies are kept exactly as
//! read (still encrypted) and are verified on every use like a fresh read; a copy that
//! fails is dropped and fetched again. The cache is never needed for correctness.

use std::fs;
use std::path::PathBuf;

use crate::error::Result;

/// A directory of cached objects, or nothing (local repositories: reads are cheap).
pub struct ObjectCache {
    dir: Option<PathBuf>,
}

impl ObjectCache {
    /// A cache in `dir`; `None` disables it.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// Whether objects are cached.
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(key))
    }

    /// The cached bytes of `key`, or `fetch`ed and remembered.
    pub fn get_or_fetch(
        &self,
        key: &str,
        fetch: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let Some(path) = self.path(key) else {
            return fetch();
        };
        if let Ok(bytes) = fs::read(&path) {
            return Ok(bytes);
        }
        let bytes = fetch()?;
        // Best effort: a cache that cannot be written only costs a later re-fetch.
        if let Some(dir) = path.parent() {
            let tmp = dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
            let stored = fs::create_dir_all(dir)
                .and_then(|()| fs::write(&tmp, &bytes))
                .and_then(|()| fs::rename(&tmp, &path));
            if stored.is_err() {
                let _ = fs::remove_file(&tmp);
            }
        }
        Ok(bytes)
    }

    /// Drops a cached copy (it failed verification).
    pub fn forget(&self, key: &str) {
        if let Some(p) = self.path(key) {
            let _ = fs::remove_file(p);
        }
    }
}
