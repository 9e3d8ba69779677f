//! `repo diff`: what changed between two snapshots, found by walking both trees at once
//! and skipping every subtree whose id is equal in both.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::{SnapshotId, TreeId};
use crate::ops::context::Ctx;
use crate::ops::select::{self, SnapshotRef};
use crate::repository::Repository;
use crate::tree::path::{hex_if_not_utf8, SnapPath};
use crate::tree::walk::{TreeWalk, Visit};
use crate::tree::{Node, NodeKind, Tree};

/// How one path differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Only in the second snapshot.
    Added,
    /// Only in the first snapshot.
    Removed,
    /// Content (or symlink target, or type) differs.
    Modified,
    /// Same content; mode, owner, mtime or xattrs differ.
    Metadata,
}

/// One changed path.
#[derive(Clone, Debug, Serialize)]
pub struct DiffEntry {
    /// Snapshot path (in JSON, bytes that are not UTF-8 show as `\xNN`; `path_hex` is
    /// then exact).
    pub path: SnapPath,
    /// The path's bytes in hex, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// What changed.
    pub change: Change,
    /// Entry type (in the second snapshot when present there).
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Size in the first snapshot.
    pub size_before: Option<u64>,
    /// Size in the second snapshot.
    pub size_after: Option<u64>,
}

/// `diff`: two snapshots.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffRequest {
    /// The older snapshot.
    pub from: SnapshotRef,
    /// The newer snapshot.
    pub to: SnapshotRef,
}

/// Counts of a diff.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiffTotals {
    /// Paths only in `to`.
    pub added: u64,
    /// Paths only in `from`.
    pub removed: u64,
    /// Paths whose content differs.
    pub modified: u64,
    /// Paths whose metadata only differs.
    pub metadata: u64,
    /// Bytes of added files.
    pub bytes_added: u64,
    /// Bytes of removed files.
    pub bytes_removed: u64,
}

/// What changed between two snapshots.
#[derive(Clone, Debug, Serialize)]
pub struct DiffReport {
    /// The older snapshot.
    pub from: SnapshotId,
    /// The newer snapshot.
    pub to: SnapshotId,
    /// Every changed path, in path order.
    pub changes: Vec<DiffEntry>,
    /// Their counts.
    pub totals: DiffTotals,
}

/// Compares two snapshots (no lock: it only reads).
pub fn run(repo: &Repository, req: &DiffRequest, ctx: &Ctx) -> Result<DiffReport> {
    let from = select::snapshot(repo, &req.from, &[])?;
    let to = select::snapshot(repo, &req.to, &[])?;
    ctx.check()?;
    let changes = diff(repo, &from.tree, &to.tree)?;
    let mut t = DiffTotals::default();
    for c in &changes {
        match c.change {
            Change::Added => {
                t.added += 1;
                t.bytes_added += c.size_after.unwrap_or(0);
            }
            Change::Removed => {
                t.removed += 1;
                t.bytes_removed += c.size_before.unwrap_or(0);
            }
            Change::Modified => t.modified += 1,
            Change::Metadata => t.metadata += 1,
        }
    }
    Ok(DiffReport {
        from: from.id,
        to: to.id,
        changes,
        totals: t,
    })
}

/// Lists every difference between the trees `a` and `b`, in path order. Subtrees with
/// the same id are equal and not read; one-sided subtrees are walked with [`TreeWalk`].
pub fn diff(repo: &Repository, a: &TreeId, b: &TreeId) -> Result<Vec<DiffEntry>> {
    let mut out = Vec::new();
    if a == b {
        return Ok(out);
    }
    // A merge of two sorted directories per frame, with its own stack (no recursion,
    // however deep the directories).
    let mut stack = vec![Merge::new(repo, a, b, SnapPath::default())?];
    while let Some(m) = stack.last_mut() {
        let (na, nb) = (m.a.nodes.get(m.i), m.b.nodes.get(m.j));
        let descend = match (na, nb) {
            (Some(x), Some(y)) if x.name == y.name => {
                let path = m.below(&x.name);
                m.i += 1;
                m.j += 1;
                compare_nodes(repo, x, y, &path, &mut out)?.map(|(a, b)| (a, b, path))
            }
            (Some(x), y) if y.is_none_or(|y| x.name < y.name) => {
                let path = m.below(&x.name);
                m.i += 1;
                one_side(repo, x, &path, Change::Removed, &mut out)?;
                None
            }
            (_, Some(y)) => {
                let path = m.below(&y.name);
                m.j += 1;
                one_side(repo, y, &path, Change::Added, &mut out)?;
                None
            }
            // Both sides done (`Some, None` went to the removed arm).
            (_, None) => {
                stack.pop();
                continue;
            }
        };
        if let Some((a, b, path)) = descend {
            stack.push(Merge::new(repo, &a, &b, path)?);
        }
    }
    Ok(out)
}

/// Two versions of one directory being compared: the next entry on each side.
struct Merge {
    a: Tree,
    b: Tree,
    i: usize,
    j: usize,
    prefix: SnapPath,
}

impl Merge {
    fn new(repo: &Repository, a: &TreeId, b: &TreeId, prefix: SnapPath) -> Result<Self> {
        Ok(Self {
            a: load_sorted(repo, a)?,
            b: load_sorted(repo, b)?,
            i: 0,
            j: 0,
            prefix,
        })
    }
}

impl Merge {
    /// The path of the entry `name` in this directory.
    fn below(&self, name: &[u8]) -> SnapPath {
        let mut p = self.prefix.clone();
        p.push(name);
        p
    }
}

fn load_sorted(repo: &Repository, id: &TreeId) -> Result<Tree> {
    let mut t = repo.load_tree(id)?;
    t.sort();
    Ok(t)
}

/// Reports how two entries of the same name differ; returns their subtrees when both
/// are directories whose contents differ, for the caller to compare.
fn compare_nodes(
    repo: &Repository,
    x: &Node,
    y: &Node,
    path: &SnapPath,
    out: &mut Vec<DiffEntry>,
) -> Result<Option<(TreeId, TreeId)>> {
    if x.kind() != y.kind() {
        one_side(repo, x, path, Change::Removed, out)?;
        one_side(repo, y, path, Change::Added, out)?;
        return Ok(None);
    }
    let entry = |change| DiffEntry {
        path: path.clone(),
        path_hex: hex_if_not_utf8(path.as_bytes()),
        change,
        kind: y.kind(),
        size_before: Some(x.size),
        size_after: Some(y.size),
    };
    let content_differs = x.content != y.content || x.target != y.target || x.rdev != y.rdev;
    let is_dir = x.kind() == NodeKind::Dir;
    // A directory's mtime changes whenever an entry does; reporting it would be noise.
    let meta_differs = x.mode != y.mode
        || x.uid != y.uid
        || x.gid != y.gid
        || x.xattrs != y.xattrs
        || (!is_dir && x.mtime != y.mtime);
    if content_differs {
        out.push(entry(Change::Modified));
    } else if meta_differs {
        out.push(entry(Change::Metadata));
    }
    Ok(match (x.subtree, y.subtree) {
        (Some(a), Some(b)) if a != b => Some((a, b)),
        _ => None,
    })
}

/// Reports a node present on one side only, and everything below it.
fn one_side(
    repo: &Repository,
    n: &Node,
    path: &SnapPath,
    change: Change,
    out: &mut Vec<DiffEntry>,
) -> Result<()> {
    let entry = |path: &SnapPath, n: &Node| DiffEntry {
        path: path.clone(),
        path_hex: hex_if_not_utf8(path.as_bytes()),
        change,
        kind: n.kind(),
        size_before: (change == Change::Removed).then_some(n.size),
        size_after: (change == Change::Added).then_some(n.size),
    };
    out.push(entry(path, n));
    if let Some(sub) = &n.subtree {
        TreeWalk::new(repo).walk(sub, path, &mut |p, c| {
            out.push(entry(p, c));
            Ok(Visit::Descend)
        })?;
    }
    Ok(())
}
