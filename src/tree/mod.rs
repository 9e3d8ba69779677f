//! Trees: one blob per directory, in a canonical binary encoding (format-spec/tree.md).
//!
//! The same directory always encodes to the same bytes, so unchanged subtrees get the same
//! id and are stored once. Names are raw bytes: non-UTF-8 names round-trip.

mod codec;
pub mod path;
#[cfg(feature = "local-index")]
pub mod walk;

pub use codec::{decode, encode, nodes, NodeView, Nodes};

use crate::id::{ChunkId, TreeId};

/// Magic bytes opening an encoded tree.
pub const TREE_MAGIC: &[u8; 4] = b"RTR1";
/// Tree encoding version.
pub const TREE_VERSION: u8 = 1;

/// What a tree entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Regular file with content chunks.
    File,
    /// Directory with a subtree.
    Dir,
    /// Symbolic link with a target.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
}

impl NodeKind {
    /// Encoding byte.
    pub fn code(self) -> u8 {
        match self {
            NodeKind::File => 0,
            NodeKind::Dir => 1,
            NodeKind::Symlink => 2,
            NodeKind::Fifo => 3,
            NodeKind::CharDevice => 4,
            NodeKind::BlockDevice => 5,
        }
    }

    /// Parses the encoding byte.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => NodeKind::File,
            1 => NodeKind::Dir,
            2 => NodeKind::Symlink,
            3 => NodeKind::Fifo,
            4 => NodeKind::CharDevice,
            5 => NodeKind::BlockDevice,
            _ => return None,
        })
    }

    /// One-letter type as `ls -l` shows it.
    pub fn letter(self) -> char {
        match self {
            NodeKind::File => '-',
            NodeKind::Dir => 'd',
            NodeKind::Symlink => 'l',
            NodeKind::Fifo => 'p',
            NodeKind::CharDevice => 'c',
            NodeKind::BlockDevice => 'b',
        }
    }
}

/// A timestamp with nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub sec: i64,
    /// Nanoseconds within the second (< 1e9).
    pub nsec: u32,
}

/// One entry of a directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// Name as raw bytes (never empty, no `/`, not `.` or `..` in trees we write).
    pub name: Vec<u8>,
    /// What it is.
    pub kind: Option<NodeKind>,
    /// Permission bits including setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Owner user name ("" when unknown).
    pub user: String,
    /// Owner group name ("" when unknown).
    pub group: String,
    /// Modification time.
    pub mtime: Timestamp,
    /// Inode change time.
    pub ctime: Timestamp,
    /// Size in bytes (files), 0 otherwise.
    pub size: u64,
    /// Inode number at backup time.
    pub inode: u64,
    /// Device id of the filesystem at backup time.
    pub device: u64,
    /// Hard link count at backup time; files with links > 1 and equal (device, inode) are
    /// restored as hard links of one another.
    pub links: u64,
    /// Device number for character/block devices.
    pub rdev: u64,
    /// Symlink target bytes.
    pub target: Vec<u8>,
    /// Subtree of a directory.
    pub subtree: Option<TreeId>,
    /// Content chunks of a file, in order.
    pub content: Vec<ChunkId>,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Node {
    /// The node's kind; decoded nodes always have one.
    pub fn kind(&self) -> NodeKind {
        self.kind.unwrap_or(NodeKind::File)
    }

    /// The hard-link group a file belongs to, `(device, inode)`, when it had more than
    /// one link at backup time: restore and `dump` make its members one file again.
    pub fn link_group(&self) -> Option<(u64, u64)> {
        (self.kind() == NodeKind::File && self.links > 1).then_some((self.device, self.inode))
    }

    /// Name for display: bytes that are not UTF-8 as `\xNN` (two names never look
    /// alike), see [`path::shown`].
    pub fn display_name(&self) -> String {
        path::shown(&self.name).into_owned()
    }

    /// Whether two members of one hard-link group can come back as one file: the snapshot
    /// holds the same content and attributes for both (one inode has one set). They differ
    /// when the file was rewritten, `chmod`ed or `touch`ed between the backup's reads of
    /// its two names.
    pub fn same_file_as(&self, other: &Node) -> bool {
        self.kind() == other.kind()
            && self.content == other.content
            && self.size == other.size
            && self.target == other.target
            && self.rdev == other.rdev
            && self.mode == other.mode
            && (self.uid, self.gid) == (other.uid, other.gid)
            && (&self.user, &self.group) == (&other.user, &other.group)
            && self.mtime == other.mtime
            && self.xattrs == other.xattrs
    }
}

/// Which earlier entry each member of a hard-link group becomes a link of (restore's plan,
/// `dump`): the group's first member, when the snapshot shows the same file for both
/// ([`Node::same_file_as`]). A file rewritten or `chmod`ed between the backup's reads of its
/// two names is two files, each with what the snapshot holds for it.
pub struct LinkGroups<T> {
    first: std::collections::HashMap<(u64, u64), (T, Node)>,
}

impl<T> Default for LinkGroups<T> {
    fn default() -> Self {
        Self {
            first: std::collections::HashMap::new(),
        }
    }
}

impl<T: Clone> LinkGroups<T> {
    /// The entry `node` is a link of; `None` for a file of its own, or the first of its
    /// group, which is then remembered as `at`.
    pub fn link_to(&mut self, node: &Node, at: impl FnOnce() -> T) -> Option<T> {
        use std::collections::hash_map::Entry;
        match self.first.entry(node.link_group()?) {
            Entry::Occupied(f) => f.get().1.same_file_as(node).then(|| f.get().0.clone()),
            Entry::Vacant(v) => {
                v.insert((at(), node.clone()));
                None
            }
        }
    }
}

/// A directory: nodes sorted by name bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// Entries, strictly increasing by `name`.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Sorts nodes into canonical order.
    pub fn sort(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        for n in &mut self.nodes {
            n.xattrs.sort();
        }
    }

    /// Finds a node by name.
    pub fn get(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

/// Whether `name` is safe to create inside a directory: no separators, not `.`/`..`, no NUL.
pub fn is_safe_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

/// A timestamp as RFC 3339 UTC with nanoseconds ("" when out of range).
pub fn format_time(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp(t.sec, t.nsec)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default()
}
