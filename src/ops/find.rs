//! `repo find`: which snapshots hold a path matching a glob.

use std::collections::HashMap;
use std::sync::Arc;

use globset::{GlobBuilder, GlobMatcher};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::TreeId;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind, Tree};

/// A compiled find pattern: without `/` it matches names, with `/` whole snapshot paths.
pub struct Pattern {
    glob: GlobMatcher,
    whole_path: bool,
}

impl Pattern {
    /// Compiles a glob (`*`, `?`, `[..]`, `{a,b}`, `**`).
    pub fn new(pattern: &str) -> Result<Self> {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| Error::Invalid(format!("bad pattern {pattern:?}: {e}")))?
            .compile_matcher();
        Ok(Pattern {
            glob,
            whole_path: pattern.contains('/'),
        })
    }

    /// Whether `path` (with `name` its last component) matches.
    pub fn matches(&self, path: &str, name: &str) -> bool {
        if self.whole_path {
            self.glob.is_match(path)
        } else {
            self.glob.is_match(name)
        }
    }
}

/// One match.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    /// Short snapshot id.
    pub snapshot: String,
    /// Snapshot time (RFC 3339).
    pub time: String,
    /// Snapshot path of the match.
    pub path: String,
    /// Entry type.
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (RFC 3339).
    pub mtime: String,
}

/// Searches `snaps` for paths matching `pat`. Trees shared by several snapshots are read
/// once.
pub fn find(repo: &Repository, snaps: &[Snapshot], pat: &Pattern) -> Result<Vec<Found>> {
    let mut cache: HashMap<TreeId, Arc<Tree>> = HashMap::new();
    let mut out = Vec::new();
    for s in snaps {
        walk(repo, &mut cache, &s.tree, "", &mut |path, node| {
            let name = node.display_name();
            if pat.matches(path, &name) {
                out.push(Found {
                    snapshot: s.id.short(),
                    time: s.time.to_rfc3339(),
                    path: path.to_string(),
                    kind: node.kind(),
                    size: node.size,
                    mtime: crate::tree::format_time(node.mtime),
                });
            }
        })?;
    }
    Ok(out)
}

fn walk(
    repo: &Repository,
    cache: &mut HashMap<TreeId, Arc<Tree>>,
    id: &TreeId,
    prefix: &str,
    f: &mut dyn FnMut(&str, &Node),
) -> Result<()> {
    let tree = match cache.get(id) {
        Some(t) => t.clone(),
        None => {
            let t = Arc::new(repo.load_tree(id)?);
            cache.insert(*id, t.clone());
            t
        }
    };
    for node in &tree.nodes {
        let path = format!("{prefix}/{}", node.display_name());
        f(&path, node);
        if let Some(sub) = &node.subtree {
            walk(repo, cache, sub, &path, f)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_or_whole_paths() {
        let p = Pattern::new("*.txt").expect("valid");
        assert!(p.matches("/a/b/x.txt", "x.txt"));
        assert!(!p.matches("/a/x.txt/y", "y"));
        let p = Pattern::new("/home/**/docs/*.md").expect("valid");
        assert!(p.matches("/home/u/w/docs/a.md", "a.md"));
        assert!(!p.matches("/srv/docs/a.md", "a.md"));
        assert!(Pattern::new("a[").is_err());
    }
}
