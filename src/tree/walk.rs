//! The one way to walk a snapshot's trees: depth first, parents before children, in
//! tree order, with the visitor deciding per directory whether to descend.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::id::TreeId;
use crate::repository::Repository;
use crate::tree::{Node, Tree};

/// What a visitor wants after seeing an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    /// Go on (into the entry, when it is a directory).
    Descend,
    /// Go on, but not below this entry.
    Skip,
}

/// Walks trees of one repository. Trees can be remembered across walks
/// ([`TreeWalk::remembering`]) when several snapshots share most of them.
pub struct TreeWalk<'r> {
    repo: &'r Repository,
    cache: Option<HashMap<TreeId, Arc<Tree>>>,
}

impl<'r> TreeWalk<'r> {
    /// A walker that reads each tree when it gets to it.
    pub fn new(repo: &'r Repository) -> Self {
        Self { repo, cache: None }
    }

    /// A walker that keeps every tree it read, so a tree shared by the snapshots it walks
    /// is read once (memory grows with the number of distinct trees).
    pub fn remembering(repo: &'r Repository) -> Self {
        Self {
            repo,
            cache: Some(HashMap::new()),
        }
    }

    fn load(&mut self, id: &TreeId) -> Result<Arc<Tree>> {
        match &mut self.cache {
            None => Ok(Arc::new(self.repo.load_tree(id)?)),
            Some(cache) => {
                if let Some(t) = cache.get(id) {
                    return Ok(t.clone());
                }
                let t = Arc::new(self.repo.load_tree(id)?);
                cache.insert(*id, t.clone());
                Ok(t)
            }
        }
    }

    /// Calls `f(path, node)` for every entry below the tree `root`, whose own path is
    /// `prefix` ("" for a snapshot's root, so paths read "/home/u").
    pub fn walk(
        &mut self,
        root: &TreeId,
        prefix: &str,
        f: &mut dyn FnMut(&str, &Node) -> Result<Visit>,
    ) -> Result<()> {
        let tree = self.load(root)?;
        for node in &tree.nodes {
            let path = format!("{prefix}/{}", node.display_name());
            if f(&path, node)? == Visit::Descend {
                if let Some(sub) = &node.subtree {
                    self.walk(sub, &path, f)?;
                }
            }
        }
        Ok(())
    }

    /// Visits the trees reachable from `roots` without paths, for work where only
    /// reaching a tree matters (prune's mark, copy's prefetch): `enter(id)` is asked before
    /// each tree is read (`Skip`: already handled, e.g. a subtree shared between
    /// snapshots), then `each(node)` sees every entry of it. Depth first, with its own
    /// stack (no recursion, however deep the directories).
    pub fn walk_trees(
        &mut self,
        roots: &[TreeId],
        enter: &mut dyn FnMut(&TreeId) -> Result<Visit>,
        each: &mut dyn FnMut(&Node) -> Result<()>,
    ) -> Result<()> {
        let mut stack: Vec<TreeId> = roots.iter().rev().copied().collect();
        while let Some(id) = stack.pop() {
            if enter(&id)? == Visit::Skip {
                continue;
            }
            let tree = self.load(&id)?;
            for node in &tree.nodes {
                each(node)?;
                stack.extend(node.subtree);
            }
        }
        Ok(())
    }

    /// Like [`TreeWalk::walk`] from the entry at snapshot path `path` below `root` (that
    /// entry included, unless `path` is the root). A path that is not in the snapshot is
    /// an [`Error::Selection`].
    pub fn walk_from(
        &mut self,
        root: &TreeId,
        path: &str,
        f: &mut dyn FnMut(&str, &Node) -> Result<Visit>,
    ) -> Result<()> {
        let comps: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        let mut tree_id = *root;
        let mut prefix = String::new();
        for (i, c) in comps.iter().enumerate() {
            let tree = self.load(&tree_id)?;
            let node = tree
                .get(c.as_bytes())
                .ok_or_else(|| Error::Selection(format!("{path}: no such path in the snapshot")))?;
            prefix.push('/');
            prefix.push_str(c);
            let last = i + 1 == comps.len();
            match node.subtree {
                Some(sub) => tree_id = sub,
                None if last => {
                    f(&prefix, node)?;
                    return Ok(());
                }
                None => {
                    return Err(Error::Selection(format!(
                        "{path}: {prefix} is not a directory in the snapshot"
                    )))
                }
            }
            if last && f(&prefix, node)? == Visit::Skip {
                return Ok(());
            }
        }
        self.walk(&tree_id, &prefix, f)
    }
}
