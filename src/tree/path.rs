//! Paths inside a snapshot as the bytes their names are stored as.
//!
//! Tree names are raw bytes (a Linux file name is any bytes but `/` and NUL), so a path
//! built from them is bytes too. Turning it into text early loses information: `x\xff`
//! and `x\xfe` both became `x\u{FFFD}`, one name for two files, and a name that is not
//! UTF-8 could not be asked for at all. Paths stay bytes from the command line or query
//! string to the tree lookup; they become text only to be shown or put in JSON
//! ([`SnapPath::display`]: each byte that is not UTF-8 as `\xNN`, so different names stay
//! different), and reports that list entries add the exact bytes ([`hex_if_not_utf8`]).

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// A snapshot path ("/home/u/x"): `/`-separated names, as bytes.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapPath(Vec<u8>);

impl SnapPath {
    /// The root ("/").
    pub fn root() -> Self {
        SnapPath(b"/".to_vec())
    }

    /// A path from its bytes, as typed or as built from names.
    pub fn from_bytes(b: impl Into<Vec<u8>>) -> Self {
        SnapPath(b.into())
    }

    /// The path's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The path as an `OsStr` (for glob matching and file-system calls).
    pub fn as_os_str(&self) -> &OsStr {
        OsStr::from_bytes(&self.0)
    }

    /// The text, when the path is UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The names, without empty ones and `.` ("/a//./b/" has `a`, `b`).
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
    }

    /// Whether this is the root (no names).
    pub fn is_root(&self) -> bool {
        self.components().next().is_none()
    }

    /// Appends `/name`.
    pub fn push(&mut self, name: &[u8]) {
        // The root already ends in its `/` ("/" + "a" is "/a", not "//a").
        if self.0 != b"/" {
            self.0.push(b'/');
        }
        self.0.extend_from_slice(name);
    }

    /// Appends bytes as they are (part of a name, or `/`-separated names).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// Cuts the path back to `len` bytes (undoing pushes).
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the path has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The last name (empty for the root).
    pub fn file_name(&self) -> &[u8] {
        self.components().last().unwrap_or(b"")
    }

    /// The path as text for people: UTF-8 as it is, each other byte as `\xNN`, so two
    /// different names never look the same.
    pub fn display(&self) -> Cow<'_, str> {
        shown(&self.0)
    }
}

/// Bytes as text for people: UTF-8 as it is, each other byte as `\xNN`.
pub fn shown(b: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(b) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(b.len() + 8);
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        for x in chunk.invalid() {
            out.push_str(&format!("\\x{x:02x}"));
        }
    }
    Cow::Owned(out)
}

/// A file-system path as text for records and people (a snapshot's `paths`, skipped and
/// changed files): as [`shown`], so two paths that differ only in bytes that are not UTF-8
/// stay two (lossy text made them one: one `forget` group for two sources, and one
/// source's snapshots could all be forgotten as the other's older ones).
pub fn text(p: &std::path::Path) -> String {
    shown(p.as_os_str().as_bytes()).into_owned()
}

/// The exact bytes in hex, when they are not UTF-8 (JSON strings cannot hold them; a
/// report's `path` then shows them escaped and its `path_hex` has them exactly).
pub fn hex_if_not_utf8(b: &[u8]) -> Option<String> {
    std::str::from_utf8(b).is_err().then(|| hex::encode(b))
}

impl fmt::Display for SnapPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl fmt::Debug for SnapPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.display())
    }
}

impl AsRef<[u8]> for SnapPath {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for SnapPath {
    fn from(s: &str) -> Self {
        SnapPath(s.as_bytes().to_vec())
    }
}

impl From<String> for SnapPath {
    fn from(s: String) -> Self {
        SnapPath(s.into_bytes())
    }
}

impl From<OsString> for SnapPath {
    fn from(s: OsString) -> Self {
        SnapPath(s.into_vec())
    }
}

impl From<&OsStr> for SnapPath {
    fn from(s: &OsStr) -> Self {
        SnapPath(s.as_bytes().to_vec())
    }
}

/// In JSON a path is a string: as [`SnapPath::display`] shows it in reports (listings
/// add `path_hex` with the exact bytes); a request's string is taken as its UTF-8 bytes.
impl serde::Serialize for SnapPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.display())
    }
}

impl<'de> serde::Deserialize<'de> for SnapPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SnapPath::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_utf8_stay_distinct() {
        let a = SnapPath::from_bytes(b"/d/x\xff".to_vec());
        let b = SnapPath::from_bytes(b"/d/x\xfe".to_vec());
        assert_ne!(a.display(), b.display());
        assert_eq!(a.display(), "/d/x\\xff");
        assert_eq!(
            String::from_utf8_lossy(a.as_bytes()),
            String::from_utf8_lossy(b.as_bytes())
        );
        assert_eq!(hex_if_not_utf8(a.as_bytes()).as_deref(), Some("2f642f78ff"));
        assert_eq!(hex_if_not_utf8(b"/d/ok"), None);
        assert_eq!(a.file_name(), b"x\xff");
    }

    #[test]
    fn components_skip_empty_names_and_dots() {
        let p = SnapPath::from("/a//./b/");
        assert_eq!(p.components().collect::<Vec<_>>(), vec![b"a", b"b"]);
        assert!(SnapPath::from("/./").is_root());
        assert!(SnapPath::root().is_root());
        let mut q = SnapPath::from("");
        q.push(b"a");
        assert_eq!(q.as_bytes(), b"/a");
        let mut r = SnapPath::root();
        r.push(b"etc");
        r.push(b"x");
        assert_eq!(r.as_bytes(), b"/etc/x", "the root's / is not doubled");
    }
}
