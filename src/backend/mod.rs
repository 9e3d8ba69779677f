//! Where repository objects live. The engine only sees [`Backend`]; it never knows whether
//! it talks to a local disk or (later) an object store.

/// The checks every backend passes (tests only).
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod layer;
pub mod local;
pub mod memory;
#[cfg(feature = "object-store")]
pub mod object;
pub mod target;

use std::sync::Arc;

use crate::error::{Error, Result};

/// One stored object as listed by [`Backend::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Path relative to the repository root, with `/` separators (e.g. `packs/ab/ab12…`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was last written, if the service says (prune uses it to leave young,
    /// possibly in-flight objects alone).
    pub modified: Option<std::time::SystemTime>,
}

impl ObjectInfo {
    /// Whether the object was written at least `age` ago (unknown times count as young).
    pub fn older_than(&self, age: std::time::Duration) -> bool {
        self.modified
            .and_then(|m| std::time::SystemTime::now().duration_since(m).ok())
            .is_some_and(|a| a >= age)
    }
}

/// Storage for repository objects, addressed by relative `/`-separated paths.
///
/// Contract: `put` is atomic and durable — once it returns, a reader sees either nothing or
/// the whole object, and the object survives a crash. Objects are written once; `put` of an
/// existing path with the same bytes is harmless. Missing objects are reported as
/// [`crate::error::Error::Missing`].
pub trait Backend: Send + Sync {
    /// Human-readable location, for messages.
    fn location(&self) -> String;
    /// Reads a whole object.
    fn get(&self, path: &str) -> Result<Vec<u8>>;
    /// Reads `len` bytes at `offset`; fewer bytes than asked is an error.
    fn get_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// Stores an object atomically and durably.
    fn put(&self, path: &str, bytes: &[u8]) -> Result<()>;
    /// Stores an object atomically and durably only if nothing is at `path` yet: `false`
    /// when something was (it is left as it is). Two writers racing for one path: exactly
    /// one gets `true` where the service can create exclusively (local disks, S3, GCS,
    /// Azure, SFTP); elsewhere this default ([`put_if_absent`]) checks first and writes,
    /// and callers read back.
    fn put_new(&self, path: &str, bytes: &[u8]) -> Result<bool> {
        put_if_absent(self, path, bytes)
    }
    /// Lists every object whose path starts with `prefix` (recursively).
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    /// Removes an object; removing a missing object is not an error.
    fn delete(&self, path: &str) -> Result<()>;
    /// Whether an object exists.
    fn exists(&self, path: &str) -> Result<bool>;
    /// Whether reads cross a network (immutable objects are then worth caching locally).
    fn is_remote(&self) -> bool {
        false
    }
    /// How many pack uploads are worth running at once (latency-bound stores want several).
    fn parallel_puts(&self) -> usize {
        1
    }
    /// How many reads are worth running at once; 0: one per CPU is enough (local disks).
    fn parallel_gets(&self) -> usize {
        0
    }
    /// Names of whatever is at the repository's location (top level only where the
    /// service has directories), so `init` can refuse a place that holds other data.
    fn top_level(&self) -> Result<Vec<String>> {
        Ok(self.list("")?.into_iter().map(|o| o.path).collect())
    }
    /// Makes the repository's location and its key material accessible to its owner only
    /// (after `init` and after adding a key); services without permissions do nothing.
    fn restrict_access(&self) -> Result<()> {
        Ok(())
    }
    /// Makes sure the space reserved for maintenance on a full disk is set aside (local
    /// disks: a `reserve` file at the root); best effort.
    fn keep_reserve(&self) -> Result<()> {
        Ok(())
    }
    /// Frees the reserved space, so prune can lock and write its small objects on a full
    /// disk; returns whether there was any.
    fn release_reserve(&self) -> Result<bool> {
        Ok(false)
    }
    /// Removes leftovers of interrupted writes (temporary `.tmp-` objects of services that
    /// write then rename) last touched at least `age` ago; returns (objects, bytes) removed.
    /// Younger ones may belong to a write still running elsewhere and are left alone.
    fn remove_leftovers(&self, _age: std::time::Duration) -> Result<(u64, u64)> {
        Ok((0, 0))
    }
}

/// The objects under `prefix` whose name (last path component) is an id of type `T`,
/// with their listing; other names (leftovers, foreign files) are skipped.
pub fn list_ids<T: std::str::FromStr>(
    backend: &dyn Backend,
    prefix: &str,
) -> Result<Vec<(T, ObjectInfo)>> {
    Ok(backend
        .list(prefix)?
        .into_iter()
        .filter_map(|o| Some((o.path.rsplit('/').next()?.parse::<T>().ok()?, o)))
        .collect())
}

/// Every pack in the repository with its size.
pub fn pack_sizes(
    backend: &dyn Backend,
) -> Result<std::collections::HashMap<crate::id::PackId, u64>> {
    Ok(list_ids(backend, "packs/")?
        .into_iter()
        .map(|(id, o)| (id, o.size))
        .collect())
}

/// Runs `work` (which reads through `backend` on rayon threads) with at least as many
/// threads as the backend takes reads at once: waiting on a network is not CPU work.
pub fn with_read_threads<R: Send>(backend: &dyn Backend, work: impl FnOnce() -> R + Send) -> R {
    let want = backend.parallel_gets();
    if want <= rayon::current_num_threads() {
        return work();
    }
    match rayon::ThreadPoolBuilder::new().num_threads(want).build() {
        Ok(pool) => pool.install(work),
        // Not enough threads is slower, never wrong.
        Err(_) => work(),
    }
}

/// Refuses object paths that could escape a repository root (`..`, empty or absolute
/// components). Paths are made by us; this guards every backend the same way.
pub fn check_object_path(path: &str) -> Result<()> {
    if path.split('/').any(|c| c == ".." || c.is_empty()) || path.starts_with('/') {
        return Err(Error::Invalid(format!("invalid object path {path:?}")));
    }
    Ok(())
}

/// `put_new` for a service that cannot create exclusively: check, then write (two writers
/// racing may both get `true`; the caller reads back to see whose bytes stayed).
pub fn put_if_absent<B: Backend + ?Sized>(b: &B, path: &str, bytes: &[u8]) -> Result<bool> {
    if b.exists(path)? {
        return Ok(false);
    }
    b.put(path, bytes)?;
    Ok(true)
}

/// The error every backend returns when a range read comes back shorter than asked.
pub fn short_read(path: &str, offset: u64, len: u64, got: usize) -> Error {
    Error::corrupt(
        path,
        format!("short read: wanted {len} bytes at offset {offset}, got {got}"),
    )
}

/// The backend for a repository location as users write it: a directory (or `local:DIR`),
/// or `s3:…`, `gs:…`, `azure:…`, `sftp:…` with `opts` (object stores get the retry and, when
/// asked, rate-limit layers). Every face opens repositories through this.
pub fn open(location: &str, opts: &target::ObjectOptions) -> Result<Arc<dyn Backend>> {
    if location.is_empty() {
        return Err(Error::Invalid("the repository location is empty".into()));
    }
    if let Some(dir) = location.strip_prefix("local:") {
        return Ok(Arc::new(local::LocalBackend::new(dir)));
    }
    match target::Target::parse(location)? {
        #[cfg(feature = "object-store")]
        Some(t) => object::open(location, &t, opts),
        #[cfg(not(feature = "object-store"))]
        Some(_) => {
            let _ = opts;
            Err(Error::Invalid(
                "this build has no object-storage support (feature object-store)".into(),
            ))
        }
        None => {
            if let Some((scheme, _)) = location.split_once(':') {
                if ["rest", "b2", "swift"].contains(&scheme) {
                    return Err(Error::Invalid(format!(
                        "{scheme}: repositories are not supported; use s3:, gs:, azure:, sftp: or a directory"
                    )));
                }
            }
            Ok(Arc::new(local::LocalBackend::new(location)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_open_the_right_backend_or_say_why_not() {
        let opts = target::ObjectOptions::default();
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a:b");
        for loc in [
            format!("local:{}", dir.path().display()),
            plain.display().to_string(),
        ] {
            let b = open(&loc, &opts).unwrap();
            assert!(!b.is_remote(), "{loc}");
        }
        for (loc, why) in [
            ("", "empty"),
            ("rest:http://host/", "not supported"),
            ("b2:bucket", "not supported"),
        ] {
            let e = open(loc, &opts).err().expect(loc).to_string();
            assert!(e.contains(why), "{loc}: {e}");
        }
    }
}
