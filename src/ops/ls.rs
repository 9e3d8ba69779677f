//! `repo ls`: walks a snapshot's tree below a path, calling back for every entry.

use crate::error::{Error, Result};
use crate::id::TreeId;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::tree::Node;

/// Calls `f(path, node)` for the entry at `path` (if it is not the root) and every entry
/// below it, parents first. `path` is a snapshot path like `/home/u/projects`.
pub fn walk(
    repo: &Repository,
    snap: &Snapshot,
    path: &str,
    f: &mut dyn FnMut(&str, &Node) -> Result<()>,
) -> Result<()> {
    let comps: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut tree_id = snap.tree;
    let mut prefix = String::new();
    for (i, c) in comps.iter().enumerate() {
        let tree = repo.load_tree(&tree_id)?;
        let node = tree.get(c.as_bytes()).ok_or_else(|| {
            Error::Selection(format!(
                "{path}: no such path in snapshot {}",
                snap.id.short()
            ))
        })?;
        prefix.push('/');
        prefix.push_str(c);
        match node.subtree {
            Some(sub) => tree_id = sub,
            None if i + 1 == comps.len() => return f(&prefix, node),
            None => {
                return Err(Error::Selection(format!(
                    "{path}: {prefix} is not a directory in snapshot {}",
                    snap.id.short()
                )))
            }
        }
        if i + 1 == comps.len() {
            f(&prefix, node)?;
        }
    }
    recurse(repo, &tree_id, &prefix, f)
}

fn recurse(
    repo: &Repository,
    id: &TreeId,
    prefix: &str,
    f: &mut dyn FnMut(&str, &Node) -> Result<()>,
) -> Result<()> {
    let tree = repo.load_tree(id)?;
    for node in &tree.nodes {
        let p = format!("{prefix}/{}", node.display_name());
        f(&p, node)?;
        if let Some(sub) = &node.subtree {
            recurse(repo, sub, &p, f)?;
        }
    }
    Ok(())
}
