//! The filesystem source: metadata capture (lstat, owners, xattrs) and sorted directory
//! listings. Names stay raw bytes from end to end.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::tree::{Node, NodeKind, Timestamp};

/// Caches uid/gid → name look-ups, which otherwise cost a passwd/group parse per file.
#[derive(Default)]
pub struct OwnerNames {
    users: Mutex<HashMap<u32, String>>,
    groups: Mutex<HashMap<u32, String>>,
}

/// The name of user `uid` on this system, if it has one.
fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The name of group `gid` on this system, if it has one.
fn group_name(gid: u32) -> Option<String> {
    nix::unistd::Group::from_gid(gid.into())
        .ok()
        .flatten()
        .map(|g| g.name)
}

/// The cached name of `id` ("" when it has none), looked up on first use.
fn cached(m: &mut HashMap<u32, String>, id: u32, find: fn(u32) -> Option<String>) -> &str {
    m.entry(id)
        .or_insert_with(|| find(id).unwrap_or_default())
        .as_str()
}

impl OwnerNames {
    fn user(&self, uid: u32) -> String {
        let mut m = self.users.lock().unwrap_or_else(|p| p.into_inner());
        cached(&mut m, uid, user_name).to_owned()
    }

    fn group(&self, gid: u32) -> String {
        let mut m = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        cached(&mut m, gid, group_name).to_owned()
    }

    /// Calls `f` with the names of `uid` and `gid` (without copying them).
    pub fn with_names<R>(&self, uid: u32, gid: u32, f: impl FnOnce(&str, &str) -> R) -> R {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        f(
            cached(&mut users, uid, user_name),
            cached(&mut groups, gid, group_name),
        )
    }

    /// Whether `uid` and `gid` have these names now (without copying them).
    fn names_are(&self, uid: u32, user: &str, gid: u32, group: &str) -> bool {
        self.with_names(uid, gid, |u, g| u == user && g == group)
    }
}

/// Whether a regular file `lstat` gave as `st` is exactly its parent snapshot entry
/// `prev`: every field a node built from `st` would get is equal, and the content is
/// known. (Equal ctime already implies equal content, mode, owners, links and extended
/// attributes; the rest is compared too, so the entry is the one a fresh walk would make.)
pub fn file_unchanged(
    prev: &crate::tree::NodeView<'_>,
    st: &crate::dirfd::Meta,
    owners: &OwnerNames,
) -> bool {
    kind_of_meta(st) == Some(NodeKind::File)
        && prev.kind == NodeKind::File
        && prev.size == st.size
        && (prev.mtime.sec, prev.mtime.nsec) == st.mtime
        && (prev.ctime.sec, prev.ctime.nsec) == st.ctime
        && prev.inode == st.ino
        && prev.device == st.dev
        && prev.links == st.nlink
        && prev.mode == st.perm
        && prev.uid == st.uid
        && prev.gid == st.gid
        && prev.rdev == 0
        && prev.target.is_empty()
        && prev.subtree.is_none()
        && (prev.size == 0 || prev.chunks() != 0)
        && owners.names_are(st.uid, prev.user, st.gid, prev.group)
}

/// The kind of a filesystem entry, or `None` for sockets (which cannot be restored).
pub fn kind_of(md: &Metadata) -> Option<NodeKind> {
    let ft = md.file_type();
    if ft.is_file() {
        Some(NodeKind::File)
    } else if ft.is_dir() {
        Some(NodeKind::Dir)
    } else if ft.is_symlink() {
        Some(NodeKind::Symlink)
    } else if ft.is_fifo() {
        Some(NodeKind::Fifo)
    } else if ft.is_char_device() {
        Some(NodeKind::CharDevice)
    } else if ft.is_block_device() {
        Some(NodeKind::BlockDevice)
    } else {
        None
    }
}

/// The kind of entry a stat describes, or `None` for sockets.
pub fn kind_of_meta(st: &crate::dirfd::Meta) -> Option<NodeKind> {
    use rustix::fs::FileType;
    Some(match st.kind {
        FileType::RegularFile => NodeKind::File,
        FileType::Directory => NodeKind::Dir,
        FileType::Symlink => NodeKind::Symlink,
        FileType::Fifo => NodeKind::Fifo,
        FileType::CharacterDevice => NodeKind::CharDevice,
        FileType::BlockDevice => NodeKind::BlockDevice,
        _ => return None,
    })
}

/// Builds a node from a stat of `name` inside the open directory `dir`: the symlink
/// target and the xattrs are read relative to `dir` too, never through a path someone
/// could swap.
pub fn node_from_meta(
    name: &[u8],
    dir: std::os::fd::BorrowedFd<'_>,
    st: &crate::dirfd::Meta,
    kind: NodeKind,
    owners: &OwnerNames,
) -> Result<Node> {
    let mut node = node_without_xattrs(name, dir, st, kind, owners)?;
    let os_name = std::ffi::OsStr::from_bytes(name);
    node.xattrs = read_xattrs(&crate::dirfd::proc_path_at(dir, os_name));
    Ok(node)
}

/// [`node_from_meta`] with the extended attributes left empty, for a caller that reads
/// them another way (through the open file, or from an unchanged earlier entry).
pub fn node_without_xattrs(
    name: &[u8],
    dir: std::os::fd::BorrowedFd<'_>,
    st: &crate::dirfd::Meta,
    kind: NodeKind,
    owners: &OwnerNames,
) -> Result<Node> {
    let os_name = std::ffi::OsStr::from_bytes(name);
    let target = if kind == NodeKind::Symlink {
        crate::dirfd::readlink_at(dir, os_name)
            .map_err(|e| Error::io(format!("reading link {}", String::from_utf8_lossy(name)), e))?
    } else {
        Vec::new()
    };
    Ok(Node {
        name: name.to_vec(),
        kind: Some(kind),
        mode: st.perm,
        uid: st.uid,
        gid: st.gid,
        user: owners.user(st.uid),
        group: owners.group(st.gid),
        mtime: Timestamp {
            sec: st.mtime.0,
            nsec: st.mtime.1,
        },
        ctime: Timestamp {
            sec: st.ctime.0,
            nsec: st.ctime.1,
        },
        size: if kind == NodeKind::File { st.size } else { 0 },
        inode: st.ino,
        device: st.dev,
        links: st.nlink,
        rdev: if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
            st.rdev
        } else {
            0
        },
        target,
        subtree: None,
        content: Vec::new(),
        xattrs: Vec::new(),
    })
}

/// Builds a node from `lstat` data (content and subtree are filled in later).
pub fn node_from_metadata(
    name: &[u8],
    path: &Path,
    md: &Metadata,
    kind: NodeKind,
    owners: &OwnerNames,
) -> Result<Node> {
    let target = if kind == NodeKind::Symlink {
        fs::read_link(path)
            .map_err(|e| Error::io(format!("reading link {}", path.display()), e))?
            .as_os_str()
            .as_bytes()
            .to_vec()
    } else {
        Vec::new()
    };
    Ok(Node {
        name: name.to_vec(),
        kind: Some(kind),
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        user: owners.user(md.uid()),
        group: owners.group(md.gid()),
        mtime: Timestamp {
            sec: md.mtime(),
            nsec: md.mtime_nsec() as u32,
        },
        ctime: Timestamp {
            sec: md.ctime(),
            nsec: md.ctime_nsec() as u32,
        },
        size: if kind == NodeKind::File { md.size() } else { 0 },
        inode: md.ino(),
        device: md.dev(),
        links: md.nlink(),
        rdev: if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
            md.rdev()
        } else {
            0
        },
        target,
        subtree: None,
        content: Vec::new(),
        xattrs: read_xattrs(path),
    })
}

/// Extended attributes of a path (not following symlinks); unsupported filesystems give none.
pub fn read_xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    collect_xattrs(
        |buf| rustix::fs::llistxattr(path, buf),
        |name, buf| rustix::fs::lgetxattr(path, name, buf),
    )
}

/// Extended attributes of an open file.
pub fn read_xattrs_of(file: &std::fs::File) -> Vec<(Vec<u8>, Vec<u8>)> {
    collect_xattrs(
        |buf| rustix::fs::flistxattr(file, buf),
        |name, buf| rustix::fs::fgetxattr(file, name, buf),
    )
}

type XattrCall<'a> = dyn Fn(&mut [u8]) -> rustix::io::Result<usize> + 'a;

/// Lists names with `list`, reads each with `get`, sorted by name. One call when there are
/// none (the common case); an attribute removed in between is left out.
fn collect_xattrs(
    list: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
    get: impl Fn(&std::ffi::CStr, &mut [u8]) -> rustix::io::Result<usize>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Some(names) = read_growing(&list) else {
        return Vec::new();
    };
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = names
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| {
            let name = std::ffi::CString::new(n).ok()?;
            let value = read_growing(&|buf: &mut [u8]| get(&name, buf))?;
            Some((n.to_vec(), value))
        })
        .collect();
    out.sort();
    out
}

/// Calls `f` with a buffer that grows while the answer does not fit (`ERANGE`); `None` on
/// any other error (no support for attributes, an attribute gone).
fn read_growing(f: &XattrCall) -> Option<Vec<u8>> {
    // Linux caps a value at 64 KiB and a list at 64 KiB; the cap only stops a loop.
    const MAX: usize = 16 << 20;
    let mut buf = vec![0u8; 256];
    loop {
        match f(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Some(buf);
            }
            Err(rustix::io::Errno::RANGE) if buf.len() < MAX => buf.resize(buf.len() * 8, 0),
            Err(_) => return None,
        }
    }
}

/// Directory entries sorted by raw name bytes (the tree's canonical order).
pub fn read_dir_sorted(dir: &Path) -> std::io::Result<Vec<OsString>> {
    let mut names = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<Vec<_>>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Makes a source path absolute and lexically normal (no `.`/`..`), without following links.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| Error::BadPath {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The normal components of an absolute path as raw bytes.
pub fn components(path: &Path) -> Vec<Vec<u8>> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.as_bytes().to_vec()),
            _ => None,
        })
        .collect()
}
