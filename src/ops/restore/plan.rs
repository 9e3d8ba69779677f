//! Restore planning: walk the snapshot tree, apply `--include`/`--exclude`, check every
//! name, and pair hard links. The plan lists items parents-first.
//!
//! An include is either a snapshot path ("/home/ann/docs": that entry and everything below)
//! or a glob ("*.pdf", "/home/*/docs/**": every matching entry and everything below). The
//! directories leading to a selected entry are created; directories with nothing selected
//! below them are not.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::ops::find::Pattern;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::tree::path::SnapPath;
use crate::tree::walk::{RawPath, TreeWalk, Visit, Visitor};
use crate::tree::{is_safe_name, LinkGroups, Node, NodeKind, Tree};

/// One thing to create.
pub struct PlanItem {
    /// Path below the target, built only from checked names.
    pub rel: PathBuf,
    /// What to create.
    pub node: Node,
    /// For the second and later members of a hard-link group: the first member's `rel`.
    pub link_to: Option<PathBuf>,
}

impl PlanItem {
    /// The snapshot path (as bytes; its `Display` escapes those that are not UTF-8).
    pub fn display(&self) -> SnapPath {
        snapshot_path(&self.rel)
    }
}

/// The snapshot path of `rel` (a path relative to the target).
pub fn snapshot_path(rel: &std::path::Path) -> SnapPath {
    let mut p = SnapPath::from_bytes(b"/".to_vec());
    p.extend(rel.as_os_str().as_bytes());
    p
}

/// Everything a restore will do.
#[derive(Default)]
pub struct Plan {
    /// Items, parents before children.
    pub items: Vec<PlanItem>,
    /// Entries refused because their names are unsafe.
    pub rejected: Vec<String>,
    /// Directories whose contents could not be read (a damaged or missing tree): the rest
    /// of the snapshot is still restored.
    pub unreadable: Vec<String>,
    /// Whether anything matched the includes (always true without includes).
    pub matched: bool,
    /// Directories restored in full, with every name the snapshot has in them (excluded
    /// names too, so `--delete` leaves them alone): what `--delete` may clean up.
    pub full_dirs: Vec<(PathBuf, HashSet<Vec<u8>>)>,
}

impl Plan {
    /// Regular files (including hard-link members).
    pub fn files(&self) -> impl Iterator<Item = &PlanItem> {
        self.items
            .iter()
            .filter(|i| i.node.kind() == NodeKind::File)
    }
}

/// Splits an include path ("/a/b", "a/b/") into components.
fn include_components(s: &SnapPath) -> Vec<Vec<u8>> {
    s.components().map(<[u8]>::to_vec).collect()
}

/// The snapshot path of `comps` ("/a/b"), for messages and pattern matching.
fn shown_path(comps: &[Vec<u8>]) -> SnapPath {
    let mut p = SnapPath::default();
    for c in comps {
        p.push(c);
    }
    if p.is_empty() {
        p = SnapPath::root();
    }
    p
}

/// Whether an include is a glob rather than a literal path.
pub(super) fn is_glob(s: &SnapPath) -> bool {
    s.as_bytes().iter().any(|b| b"*?[{".contains(b))
}

/// An include glob as text (a pattern is text; it matches names as their bytes, see
/// [`Pattern::matches`]).
fn glob_text(g: &SnapPath) -> Result<&str> {
    g.to_str().ok_or_else(|| {
        Error::Invalid(format!(
            "{g}: a pattern must be UTF-8 (name a file whose name is not by its exact path, \
             or match those bytes with ?)"
        ))
    })
}

struct Builder<'a> {
    includes: Vec<Vec<Vec<u8>>>,
    globs: Vec<Pattern>,
    excludes: &'a [Pattern],
    plan: Plan,
    /// Hard-link groups seen, by their first member's path.
    links: LinkGroups<PathBuf>,
    /// Ancestor directories entered but not yet in the plan: they are added only once
    /// something below them is selected.
    pending: Vec<PlanItem>,
    /// For each directory being walked (the root first): whether everything in it is
    /// selected, and how many pending ancestors there were when it was entered.
    open: Vec<(bool, usize)>,
}

/// How a path relates to the includes.
enum Selected {
    /// Inside an include: take it and everything below.
    All,
    /// An ancestor of an include: create it, look further down.
    Ancestor,
    /// Unrelated.
    No,
}

impl Builder<'_> {
    fn select(&self, comps: &[Vec<u8>], name: &[u8]) -> Selected {
        if self.includes.is_empty() && self.globs.is_empty() {
            return Selected::All;
        }
        if !self.globs.is_empty() {
            let path = shown_path(comps);
            if self.globs.iter().any(|g| g.matches(path.as_bytes(), name)) {
                return Selected::All;
            }
        }
        // A glob may match anywhere below.
        let mut ancestor = !self.globs.is_empty();
        for inc in &self.includes {
            if comps.starts_with(inc) {
                return Selected::All;
            }
            if inc.starts_with(comps) {
                ancestor = true;
            }
        }
        if ancestor {
            Selected::Ancestor
        } else {
            Selected::No
        }
    }

    /// Whether everything in the directory being walked is selected.
    fn all_here(&self) -> bool {
        self.open.last().is_some_and(|(all, _)| *all)
    }

    fn excluded(&self, comps: &[Vec<u8>], name: &[u8]) -> bool {
        if self.excludes.is_empty() {
            return false;
        }
        let path = shown_path(comps);
        self.excludes
            .iter()
            .any(|p| p.matches(path.as_bytes(), name))
    }

    fn file(&mut self, node: &Node, rel: PathBuf) {
        let link_to = self.links.link_to(node, || rel.clone());
        self.plan.items.push(PlanItem {
            rel,
            node: node.clone(),
            link_to,
        });
    }
}

impl Visitor for Builder<'_> {
    fn dir(&mut self, comps: &RawPath, tree: &Tree) -> Result<()> {
        if self.all_here() {
            let rel: PathBuf = comps.iter().map(|c| OsStr::from_bytes(c)).collect();
            let names = tree.nodes.iter().map(|n| n.name.clone()).collect();
            self.plan.full_dirs.push((rel, names));
        }
        Ok(())
    }

    fn entry(&mut self, comps: &RawPath, node: &Node) -> Result<Visit> {
        if self.excluded(comps, &node.name) {
            return Ok(Visit::Skip);
        }
        let all = match (self.all_here(), self.select(comps, &node.name)) {
            (true, _) | (_, Selected::All) => true,
            (false, Selected::Ancestor) => false,
            (false, Selected::No) => return Ok(Visit::Skip),
        };
        if !is_safe_name(&node.name) {
            self.plan.rejected.push(format!(
                "{}: unsafe name {:?} in the snapshot",
                shown_path(comps),
                crate::tree::path::shown(&node.name)
            ));
            return Ok(Visit::Skip);
        }
        self.plan.matched |= all;
        if all {
            // Something is selected: its ancestors are needed after all.
            self.plan.items.append(&mut self.pending);
        }
        let rel: PathBuf = comps.iter().map(|c| OsStr::from_bytes(c)).collect();
        match node.kind() {
            NodeKind::Dir => {
                let item = PlanItem {
                    rel,
                    node: node.clone(),
                    link_to: None,
                };
                let depth = self.pending.len();
                if all {
                    self.plan.items.push(item);
                } else {
                    self.pending.push(item);
                }
                if node.subtree.is_none() {
                    self.pending.truncate(depth);
                    return Ok(Visit::Skip);
                }
                self.open.push((all, depth));
                return Ok(Visit::Descend);
            }
            _ if !all => {}
            NodeKind::File => self.file(node, rel),
            _ => self.plan.items.push(PlanItem {
                rel,
                node: node.clone(),
                link_to: None,
            }),
        }
        Ok(Visit::Skip)
    }

    fn leave(&mut self, _: &RawPath, _: &Node) -> Result<()> {
        if let Some((_, depth)) = self.open.pop() {
            // Nothing selected below: forget it.
            self.pending.truncate(depth);
        }
        Ok(())
    }

    fn unreadable(&mut self, comps: &RawPath, err: Error) -> Result<()> {
        self.plan.unreadable.push(format!(
            "{}: the directory's contents cannot be read ({err})",
            shown_path(comps)
        ));
        Ok(())
    }
}

/// Builds the plan for `snap`, restricted to `includes` (snapshot paths or globs) when non-empty and
/// leaving out entries (with everything below them) that match an exclude pattern.
pub fn build(
    repo: &Repository,
    snap: &Snapshot,
    includes: &[SnapPath],
    excludes: &[Pattern],
) -> Result<Plan> {
    let (globs, paths): (Vec<&SnapPath>, Vec<&SnapPath>) =
        includes.iter().partition(|s| is_glob(s));
    let mut b = Builder {
        includes: paths.iter().map(|s| include_components(s)).collect(),
        globs: globs
            .iter()
            .map(|g| Pattern::new(glob_text(g)?))
            .collect::<Result<_>>()?,
        excludes,
        plan: Plan::default(),
        links: LinkGroups::default(),
        pending: Vec::new(),
        open: Vec::new(),
    };
    let all =
        (b.includes.is_empty() && b.globs.is_empty()) || b.includes.iter().any(|i| i.is_empty());
    b.open.push((all, 0));
    TreeWalk::new(repo).visit(&snap.tree, &mut b)?;
    Ok(b.plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ChunkId;
    use crate::tree::NodeKind;

    fn member(name: &str, content: u8) -> Node {
        Node {
            name: name.as_bytes().to_vec(),
            kind: Some(NodeKind::File),
            links: 3,
            device: 7,
            inode: 42,
            content: vec![ChunkId([content; 32])],
            ..Default::default()
        }
    }

    #[test]
    fn hard_link_members_are_linked_only_to_a_first_showing_the_same_file() {
        let mut b = Builder {
            includes: Vec::new(),
            globs: Vec::new(),
            excludes: &[],
            plan: Plan::default(),
            links: LinkGroups::default(),
            pending: Vec::new(),
            open: Vec::new(),
        };
        b.file(&member("a", 1), PathBuf::from("a"));
        // Rewritten between the backup's reads of its names: a file of its own.
        b.file(&member("b", 2), PathBuf::from("b"));
        b.file(&member("c", 1), PathBuf::from("c"));
        // Same content, but chmod'ed or touched between the reads: one inode has one mode
        // and one mtime, so each name keeps its own as a file of its own.
        let chmoded = Node {
            mode: 0o600,
            ..member("d", 1)
        };
        b.file(&chmoded, PathBuf::from("d"));
        let mut touched = member("e", 1);
        touched.mtime.sec += 1;
        b.file(&touched, PathBuf::from("e"));
        let links: Vec<_> = b.plan.items.iter().map(|i| i.link_to.clone()).collect();
        let a = Some(PathBuf::from("a"));
        assert_eq!(links, [None, None, a, None, None]);
    }
}
