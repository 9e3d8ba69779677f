//! The parent snapshot: how a run finds it, and how the walker reads its trees to reuse
//! the content of unchanged files and the ids of unchanged directories.

use std::sync::{Arc, OnceLock};

use crate::error::Result;
use crate::id::TreeId;
use crate::repository::Repository;
use crate::selection::SeriesKey;
use crate::snapshot::Snapshot;
use crate::tree::{self, Node, NodeKind, Tree};

/// Which snapshot to compare against.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentChoice {
    /// The latest snapshot of the same host and paths (the default).
    #[default]
    Auto,
    /// Read every file (`--force-full`).
    None,
    /// This snapshot (`--parent ID`).
    Given(String),
}

/// Finds the parent for a run over `key`'s host and paths.
pub fn find(repo: &Repository, choice: &ParentChoice, key: &SeriesKey) -> Result<Option<Snapshot>> {
    match choice {
        ParentChoice::None => Ok(None),
        ParentChoice::Given(sel) => {
            crate::ops::select::snapshot(repo, &crate::ops::select::SnapshotRef::id(sel), &[])
                .map(Some)
        }
        ParentChoice::Auto => Ok(repo
            .snapshots()?
            .into_iter()
            .filter(|s| SeriesKey::of(s) == *key)
            .max_by_key(|s| s.time)),
    }
}

/// A directory of the parent snapshot. Its entries are decoded only when the walk needs
/// them as nodes: a directory found unchanged as a whole (most of them, between two
/// snapshots) is compared straight from its encoded bytes ([`PrevDir::views`]), which
/// costs no allocation per entry.
#[derive(Clone)]
pub(super) struct PrevDir {
    /// Its tree id, reused when the directory is unchanged.
    pub id: TreeId,
    /// The tree's bytes.
    raw: Arc<Vec<u8>>,
    /// How many entries it has.
    len: usize,
    /// Its entries as nodes, once asked for.
    tree: Arc<OnceLock<Tree>>,
}

/// What a parent tree is called in errors (none is shown: a failure means no parent).
const WHAT: &str = "parent tree";

impl PrevDir {
    /// Loads a parent tree. A tree that cannot be read only costs re-reading the files
    /// below it, so failures give `None` rather than failing the backup.
    pub fn load(repo: &Repository, id: TreeId) -> Option<PrevDir> {
        let raw = repo.load_tree_bytes(&id).ok()?;
        // The entries are checked as they are read ([`PrevDir::views`] stops at the first
        // bad one, [`PrevDir::tree`] gives none): a damaged tree then costs what no tree
        // costs, its files read again.
        Self::from_bytes(id, raw)
    }

    fn from_bytes(id: TreeId, raw: Vec<u8>) -> Option<PrevDir> {
        let len = tree::nodes(&raw, WHAT).ok()?.len();
        Some(PrevDir {
            id,
            raw: Arc::new(raw),
            len,
            tree: Arc::new(OnceLock::new()),
        })
    }

    /// How many entries it has.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Its entries in name order, borrowed from the encoded tree; ends early at an entry
    /// that does not decode (the caller compares the count it read with [`PrevDir::len`]).
    pub fn views(&self) -> impl Iterator<Item = tree::NodeView<'_>> {
        tree::nodes(&self.raw, WHAT)
            .into_iter()
            .flatten()
            .map_while(|v| v.ok())
    }

    /// Its entries, sorted by name (decoded on first use).
    pub fn tree(&self) -> &Tree {
        // A tree that does not decode is taken as empty: every file below is read again.
        self.tree
            .get_or_init(|| tree::decode(&self.raw, WHAT).unwrap_or_default())
    }

    /// The entry called `name`.
    pub fn get(&self, name: &[u8]) -> Option<&Node> {
        self.tree().get(name)
    }

    /// The tree id of the parent's version of subdirectory `name`.
    pub fn subdir_id(&self, name: &[u8]) -> Option<TreeId> {
        let n = self.get(name)?;
        if n.kind != Some(NodeKind::Dir) {
            return None;
        }
        n.subtree
    }

    /// The parent's version of subdirectory `name`.
    pub fn subdir(&self, repo: &Repository, name: &[u8]) -> Option<PrevDir> {
        PrevDir::load(repo, self.subdir_id(name)?)
    }
}

/// Whether a file can reuse its parent entry's content without being read: same size,
/// mtime, ctime and inode. ctime catches content rewritten with a restored mtime.
///
/// Deliberately looser than `source::fs::file_unchanged`, which decides whether a whole
/// directory's entries can be taken as they are: here only the content is reused and the
/// entry's other fields are fresh, so a file seen under a new device number (a filesystem
/// snapshot mounted anew for each backup) is not read again.
pub(super) fn content_unchanged(prev: &Node, now: &Node) -> bool {
    prev.kind == Some(NodeKind::File)
        && prev.size == now.size
        && prev.mtime == now.mtime
        && prev.ctime == now.ctime
        && prev.inode == now.inode
        && (prev.size == 0 || !prev.content.is_empty())
}

/// Counts the files below (and including) a parent entry that no longer exists.
pub(super) fn count_files(repo: &Repository, node: &Node) -> u64 {
    match node.kind {
        Some(NodeKind::File) => 1,
        Some(NodeKind::Dir) => node
            .subtree
            .and_then(|id| repo.load_tree(&id).ok())
            .map_or(0, |t| t.nodes.iter().map(|n| count_files(repo, n)).sum()),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64) -> Node {
        Node {
            name: name.as_bytes().to_vec(),
            kind: Some(NodeKind::File),
            size,
            user: "u".into(),
            xattrs: vec![(b"user.a".to_vec(), b"1".to_vec())],
            content: vec![crate::id::ChunkId([7; 32])],
            ..Node::default()
        }
    }

    #[test]
    fn views_are_the_decoded_entries_and_a_damaged_tree_has_none() {
        let t = Tree {
            nodes: vec![file("a", 1), file("b", 2), file("c", 3)],
        };
        let enc = tree::encode(&t);
        let p = PrevDir::from_bytes(TreeId([1; 32]), enc.clone()).expect("header");
        assert_eq!(p.len(), 3);
        let seen: Vec<Node> = p.views().map(|v| v.to_node()).collect();
        assert_eq!(seen, t.nodes);
        assert_eq!(p.tree(), &t);
        assert_eq!(p.get(b"b").map(|n| n.size), Some(2));

        // Cut inside the last entry: the header still reads, the entries stop early and
        // the tree is taken as empty (its files are read again), never half of it.
        let cut =
            PrevDir::from_bytes(TreeId([1; 32]), enc[..enc.len() - 10].to_vec()).expect("header");
        assert_eq!(cut.len(), 3);
        assert_eq!(cut.views().count(), 2);
        assert!(cut.tree().nodes.is_empty());
        assert!(PrevDir::from_bytes(TreeId([1; 32]), b"junk".to_vec()).is_none());
    }
}
