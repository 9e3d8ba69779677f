//! Local copies of immutable repository objects — snapshot objects, oplog slices and tree
//! blobs — for repositories on remote storage, so `snapshots`, `ls`, `diff`, `find` and
//! the parent lookup of an incremental snapshot do not fetch them again.
//!
//! The repository sends only reads of immutable objects through this layer (packs are
//! named by their content, so a range of one never changes). Copies are kept exactly as
//! read (still encrypted) and verified on every use like a fresh read; a copy that fails
//! is [evicted](ObjectCache::evict) and read again. The cache is never needed for
//! correctness, and a cache that cannot be written only costs a later fetch.

use std::fs;
use std::path::PathBuf;

use super::{Layer, Request};
use crate::error::Result;

/// A directory of cached objects, or nothing (local repositories: reads are cheap).
pub struct ObjectCache {
    dir: Option<PathBuf>,
}

impl ObjectCache {
    /// A cache in `dir`; `None` passes every read through.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// Where the copy of what `req` reads lives.
    fn path(&self, req: &Request<'_>) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let key = match req {
            Request::Get(path) => (*path).to_string(),
            Request::GetRange { path, offset, len } => format!("{path}.{offset}.{len}"),
            _ => return None,
        };
        // Object paths are ours (`packs/ab/ab12…`), never `..` or absolute.
        if key
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return None;
        }
        Some(dir.join(key))
    }

    /// Drops the copy of what `req` read (it failed verification); true when there was one.
    pub fn evict(&self, req: &Request<'_>) -> bool {
        self.path(req).is_some_and(|p| fs::remove_file(p).is_ok())
    }
}

impl Layer for ObjectCache {
    fn read(
        &self,
        req: &Request<'_>,
        call: &mut dyn FnMut() -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let Some(path) = self.path(req) else {
            return call();
        };
        if let Ok(bytes) = fs::read(&path) {
            return Ok(bytes);
        }
        let bytes = call()?;
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
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::layer::Layered;
    use crate::backend::memory::MemoryBackend;
    use crate::backend::Backend;

    #[test]
    fn reads_are_kept_and_evicted_copies_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemoryBackend::new());
        store.put("snapshots/ab", b"one").unwrap();
        let cached = Layered::new(
            store.clone(),
            ObjectCache::new(Some(dir.path().to_path_buf())),
        );
        assert_eq!(cached.get("snapshots/ab").unwrap(), b"one");
        assert_eq!(cached.get_range("snapshots/ab", 1, 2).unwrap(), b"ne");
        // Served from the copies now, even with the store changed under it.
        store.put("snapshots/ab", b"two").unwrap();
        assert_eq!(cached.get("snapshots/ab").unwrap(), b"one");
        assert!(cached.layer().evict(&Request::Get("snapshots/ab")));
        assert_eq!(cached.get("snapshots/ab").unwrap(), b"two");
        assert!(!cached.layer().evict(&Request::Get("../x")));
    }
}
