//! The parent snapshot: how a run finds it, and how the walker reads its trees to reuse
//! the content of unchanged files and the ids of unchanged directories.

use std::sync::Arc;

use crate::error::Result;
use crate::id::TreeId;
use crate::repository::Repository;
use crate::selection::SeriesKey;
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind, Tree};

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

/// A directory of the parent snapshot.
#[derive(Clone)]
pub(super) struct PrevDir {
    /// Its tree id, reused when the directory is unchanged.
    pub id: TreeId,
    /// Its entries, sorted by name.
    pub tree: Arc<Tree>,
}

impl PrevDir {
    /// Loads a parent tree. A tree that cannot be read only costs re-reading the files
    /// below it, so failures give `None` rather than failing the backup.
    pub fn load(repo: &Repository, id: TreeId) -> Option<PrevDir> {
        let mut tree = repo.load_tree(&id).ok()?;
        tree.sort();
        Some(PrevDir {
            id,
            tree: Arc::new(tree),
        })
    }

    /// The entry called `name`.
    pub fn get(&self, name: &[u8]) -> Option<&Node> {
        self.tree
            .nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.tree.nodes[i])
    }

    /// The parent's version of subdirectory `name`.
    pub fn subdir(&self, repo: &Repository, name: &[u8]) -> Option<PrevDir> {
        let n = self.get(name)?;
        if n.kind != Some(NodeKind::Dir) {
            return None;
        }
        PrevDir::load(repo, n.subtree?)
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
