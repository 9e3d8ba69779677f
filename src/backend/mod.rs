//! Where repository objects live. The engine only sees [`Backend`]; it never knows whether
//! it talks to a local disk or (later) an object store.

pub mod local;
pub mod memory;

use crate::error::Result;

/// One stored object as listed by [`Backend::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Path relative to the repository root, with `/` separators (e.g. `packs/ab/ab12…`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
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
    /// Lists every object whose path starts with `prefix` (recursively).
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    /// Removes an object; removing a missing object is not an error.
    fn delete(&self, path: &str) -> Result<()>;
    /// Whether an object exists.
    fn exists(&self, path: &str) -> Result<bool>;
}

#[cfg(test)]
use crate::error::Error;

#[cfg(test)]
/// The conformance checks every backend must pass.
pub(crate) fn conformance(b: &dyn Backend) {
    assert!(matches!(b.get("config"), Err(Error::Missing(_))));
    assert!(!b.exists("config").unwrap());
    b.put("packs/ab/abcd", b"0123456789").unwrap();
    b.put("config", b"c").unwrap();
    assert!(b.exists("config").unwrap());
    assert_eq!(b.get("packs/ab/abcd").unwrap(), b"0123456789");
    assert_eq!(b.get_range("packs/ab/abcd", 3, 4).unwrap(), b"3456");
    assert!(b.get_range("packs/ab/abcd", 8, 4).is_err());
    let l = b.list("packs/").unwrap();
    assert_eq!(
        l,
        vec![ObjectInfo {
            path: "packs/ab/abcd".into(),
            size: 10
        }]
    );
    assert!(b.list("snapshots/").unwrap().is_empty());
    b.delete("packs/ab/abcd").unwrap();
    b.delete("packs/ab/abcd").unwrap();
    assert!(b.list("packs/").unwrap().is_empty());
    assert!(b.put("../escape", b"x").is_err());
}
