//! The one way to walk a snapshot's trees: depth first, parents before children, in
//! tree order, with the visitor deciding per directory whether to descend.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::id::TreeId;
use crate::repository::Repository;
use crate::tree::path::SnapPath;
use crate::tree::{Node, Tree};

/// A snapshot path as name bytes, root first (the root itself: empty).
pub type RawPath = [Vec<u8>];

/// What [`TreeWalk::visit`] reports, in walk order.
pub trait Visitor {
    /// The entries of the directory at `path`, before any of them is visited.
    fn dir(&mut self, _path: &RawPath, _tree: &Tree) -> Result<()> {
        Ok(())
    }

    /// The entry at `path` (its own name last). `Descend` enters its subtree.
    fn entry(&mut self, path: &RawPath, node: &Node) -> Result<Visit>;

    /// The walk is done below the entry at `path`: called for each entry that was
    /// descended into, after its subtree (or after [`Visitor::unreadable`]).
    fn leave(&mut self, _path: &RawPath, _node: &Node) -> Result<()> {
        Ok(())
    }

    /// The subtree of the entry at `path` is missing or damaged. The default stops the
    /// walk with the error; a visitor that can do without that directory returns `Ok`.
    fn unreadable(&mut self, _path: &RawPath, err: Error) -> Result<()> {
        Err(err)
    }
}

/// Adapts a closure on whole paths ("/home/u") to a [`Visitor`].
struct Shown<'f> {
    path: SnapPath,
    /// Where `path` ended before each entry still open.
    ends: Vec<usize>,
    f: &'f mut dyn FnMut(&SnapPath, &Node) -> Result<Visit>,
}

impl Visitor for Shown<'_> {
    fn entry(&mut self, _: &RawPath, node: &Node) -> Result<Visit> {
        let end = self.path.len();
        self.path.push(&node.name);
        let visit = (self.f)(&self.path, node)?;
        if visit == Visit::Descend && node.subtree.is_some() {
            self.ends.push(end);
        } else {
            self.path.truncate(end);
        }
        Ok(visit)
    }

    fn leave(&mut self, _: &RawPath, _: &Node) -> Result<()> {
        if let Some(end) = self.ends.pop() {
            self.path.truncate(end);
        }
        Ok(())
    }
}

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
    /// `prefix` (empty for a snapshot's root, so paths read "/home/u"), names as their
    /// bytes.
    pub fn walk(
        &mut self,
        root: &TreeId,
        prefix: &SnapPath,
        f: &mut dyn FnMut(&SnapPath, &Node) -> Result<Visit>,
    ) -> Result<()> {
        let mut shown = Shown {
            path: prefix.clone(),
            ends: Vec::new(),
            f,
        };
        self.visit(root, &mut shown)
    }

    /// Walks the trees below `root` depth first, telling `v` about each directory's
    /// entries, each entry, each subtree left behind and each subtree that cannot be read
    /// (see [`Visitor`]). Paths are name bytes, root first. Its own stack: no recursion,
    /// however deep the directories. A root that cannot be read is an error.
    pub fn visit(&mut self, root: &TreeId, v: &mut dyn Visitor) -> Result<()> {
        let mut path: Vec<Vec<u8>> = Vec::new();
        let tree = self.load(root)?;
        v.dir(&path, &tree)?;
        // Each frame: a directory and the index of its next entry.
        let mut stack: Vec<(Arc<Tree>, usize)> = vec![(tree, 0)];
        while let Some((tree, next)) = stack.last_mut() {
            let tree = tree.clone();
            let Some(node) = tree.nodes.get(*next) else {
                stack.pop();
                // The directory just finished is the entry its parent is at.
                if let Some((parent, at)) = stack.last() {
                    v.leave(&path, &parent.nodes[*at - 1])?;
                    path.pop();
                }
                continue;
            };
            *next += 1;
            path.push(node.name.clone());
            let sub = match (v.entry(&path, node)?, node.subtree) {
                (Visit::Descend, Some(sub)) => sub,
                _ => {
                    path.pop();
                    continue;
                }
            };
            match self.load(&sub) {
                Ok(t) => {
                    v.dir(&path, &t)?;
                    stack.push((t, 0));
                }
                Err(e @ (Error::Corrupt { .. } | Error::Missing(_))) => {
                    v.unreadable(&path, e)?;
                    v.leave(&path, node)?;
                    path.pop();
                }
                Err(e) => return Err(e),
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
        path: &SnapPath,
        f: &mut dyn FnMut(&SnapPath, &Node) -> Result<Visit>,
    ) -> Result<()> {
        let comps: Vec<&[u8]> = path.components().collect();
        let mut tree_id = *root;
        let mut prefix = SnapPath::default();
        for (i, c) in comps.iter().enumerate() {
            let tree = self.load(&tree_id)?;
            let node = tree
                .get(c)
                .ok_or_else(|| Error::Selection(format!("{path}: no such path in the snapshot")))?;
            prefix.push(c);
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

/// What [`Fold::open`] found: a tree to fold, or its result without reading it.
pub enum Opened<T> {
    /// The tree, read and decoded.
    Tree(Tree),
    /// Already known (a tree that is missing or damaged, say).
    Known(T),
}

/// A bottom-up computation over the tree DAG (check's damage tracing, copy's
/// re-encoding): every distinct tree is folded once, after all its subtrees.
pub trait Fold {
    /// What a tree folds to.
    type Out: Clone;
    /// Results so far, by tree: [`fold`] reads and fills it, so shared subtrees (and
    /// trees folded by an earlier call) are not folded again.
    fn done(&mut self) -> &mut HashMap<TreeId, Self::Out>;
    /// Reads a tree.
    fn open(&mut self, id: &TreeId) -> Result<Opened<Self::Out>>;
    /// The result for `tree`, whose subtrees all have theirs in [`Fold::done`].
    fn combine(&mut self, id: &TreeId, tree: Tree) -> Result<Self::Out>;
}

/// Folds the trees below `root` (root included) with `f` and returns the root's result.
/// Its own stack: no recursion, however deep; only the trees on the current path are held.
pub fn fold<F: Fold + ?Sized>(f: &mut F, root: &TreeId) -> Result<F::Out> {
    // Each frame: a tree, and once read, its contents (folded when it is on top again,
    // i.e. after every subtree pushed above it).
    let mut stack: Vec<(TreeId, Option<Tree>)> = vec![(*root, None)];
    while let Some((id, read)) = stack.last_mut() {
        let id = *id;
        if f.done().contains_key(&id) {
            stack.pop();
            continue;
        }
        if let Some(tree) = read.take() {
            let out = f.combine(&id, tree)?;
            f.done().insert(id, out);
            stack.pop();
            continue;
        }
        match f.open(&id)? {
            Opened::Known(out) => {
                f.done().insert(id, out);
                stack.pop();
            }
            Opened::Tree(tree) => {
                let done = f.done();
                let subs: Vec<TreeId> = tree
                    .nodes
                    .iter()
                    .filter_map(|n| n.subtree)
                    .filter(|s| !done.contains_key(s))
                    .collect();
                *read = Some(tree);
                stack.extend(subs.into_iter().rev().map(|s| (s, None)));
            }
        }
    }
    f.done()
        .get(root)
        .cloned()
        .ok_or_else(|| Error::Internal(format!("tree {} was not folded", root.short())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::blob::BlobKind;
    use crate::config::RepoConfig;
    use crate::id::BlobId;
    use crate::key::KdfParams;
    use crate::tree::{self, NodeKind};
    use crate::writer::BlobWriter;

    fn repo(dir: &std::path::Path) -> Repository {
        let backend = Arc::new(MemoryBackend::new());
        let kdf = KdfParams::with_costs(256, 1, 1);
        Repository::init(&*backend, b"pw", RepoConfig::new_default(), kdf).expect("init");
        Repository::open(backend, b"pw", dir).expect("open")
    }

    fn file(name: &[u8]) -> Node {
        Node {
            name: name.to_vec(),
            kind: Some(NodeKind::File),
            ..Default::default()
        }
    }

    fn dir(name: &[u8], sub: TreeId) -> Node {
        Node {
            name: name.to_vec(),
            kind: Some(NodeKind::Dir),
            subtree: Some(sub),
            ..Default::default()
        }
    }

    fn store(w: &mut BlobWriter, repo: &Repository, mut nodes: Vec<Node>) -> TreeId {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let enc = tree::encode(&Tree { nodes });
        let id = repo.hasher().tree_id(&enc);
        w.store(BlobKind::Tree, BlobId::from(id), &enc)
            .expect("store");
        id
    }

    /// Writes events as text: "dir /a", "entry /a", "leave /a", "unreadable /c".
    #[derive(Default)]
    struct Log(Vec<String>, bool);

    fn shown(path: &RawPath) -> String {
        let parts: Vec<_> = path
            .iter()
            .map(|c| format!("{}", c.escape_ascii()))
            .collect();
        format!("/{}", parts.join("/"))
    }

    impl Visitor for Log {
        fn dir(&mut self, path: &RawPath, tree: &Tree) -> Result<()> {
            self.0
                .push(format!("dir {} ({})", shown(path), tree.nodes.len()));
            Ok(())
        }
        fn entry(&mut self, path: &RawPath, _: &Node) -> Result<Visit> {
            self.0.push(format!("entry {}", shown(path)));
            Ok(if path.last().is_some_and(|n| n == b"skip") {
                Visit::Skip
            } else {
                Visit::Descend
            })
        }
        fn leave(&mut self, path: &RawPath, _: &Node) -> Result<()> {
            self.0.push(format!("leave {}", shown(path)));
            Ok(())
        }
        fn unreadable(&mut self, path: &RawPath, err: Error) -> Result<()> {
            self.0.push(format!("unreadable {}", shown(path)));
            if self.1 {
                Ok(())
            } else {
                Err(err)
            }
        }
    }

    #[test]
    fn visit_reports_entries_leaves_and_unreadable_subtrees_in_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = repo(tmp.path());
        let mut w = BlobWriter::new(&repo);
        let y = store(&mut w, &repo, vec![file(b"z")]);
        let a = store(&mut w, &repo, vec![file(b"x"), dir(b"y", y)]);
        let skip = store(&mut w, &repo, vec![file(b"hidden")]);
        let never_stored = TreeId([7; 32]);
        let root = store(
            &mut w,
            &repo,
            vec![
                dir(b"a", a),
                file(b"b\xff"),
                dir(b"c", never_stored),
                dir(b"skip", skip),
            ],
        );
        w.finish().expect("finish");

        let mut log = Log(Vec::new(), true);
        TreeWalk::new(&repo).visit(&root, &mut log).expect("visit");
        let want = [
            "dir / (4)",
            "entry /a",
            "dir /a (2)",
            "entry /a/x",
            "entry /a/y",
            "dir /a/y (1)",
            "entry /a/y/z",
            "leave /a/y",
            "leave /a",
            "entry /b\\xff",
            "entry /c",
            "unreadable /c",
            "leave /c",
            "entry /skip",
        ];
        assert_eq!(log.0, want);

        // By default a missing subtree stops the walk with its error.
        let mut strict = Log(Vec::new(), false);
        let err = TreeWalk::new(&repo).visit(&root, &mut strict).unwrap_err();
        assert!(matches!(err, Error::Missing(_)), "{err}");

        // The closure form gives the same paths.
        let mut paths = Vec::new();
        TreeWalk::new(&repo)
            .walk(&a, &SnapPath::from("/a"), &mut |p, _| {
                paths.push(p.to_string());
                Ok(Visit::Descend)
            })
            .expect("walk");
        assert_eq!(paths, ["/a/x", "/a/y", "/a/y/z"]);
    }

    /// Counts the files below each tree; `combined` counts the trees folded.
    struct Files(HashMap<TreeId, u64>, u64, Repository);

    impl Fold for Files {
        type Out = u64;
        fn done(&mut self) -> &mut HashMap<TreeId, u64> {
            &mut self.0
        }
        fn open(&mut self, id: &TreeId) -> Result<Opened<u64>> {
            Ok(Opened::Tree(self.2.load_tree(id)?))
        }
        fn combine(&mut self, _: &TreeId, tree: Tree) -> Result<u64> {
            self.1 += 1;
            Ok(tree
                .nodes
                .iter()
                .map(|n| n.subtree.map_or(1, |s| self.0[&s]))
                .sum())
        }
    }

    #[test]
    fn fold_visits_shared_subtrees_once_and_needs_no_recursion() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = repo(tmp.path());
        let mut w = BlobWriter::new(&repo);
        let shared = store(&mut w, &repo, vec![file(b"f1"), file(b"f2")]);
        let mid = store(&mut w, &repo, vec![dir(b"s1", shared), dir(b"s2", shared)]);
        let root = store(&mut w, &repo, vec![dir(b"m", mid), dir(b"s", shared)]);
        // Deep enough that a recursive walk would overflow a test thread's stack.
        let mut deep = store(&mut w, &repo, vec![file(b"bottom")]);
        for _ in 0..50_000 {
            deep = store(&mut w, &repo, vec![dir(b"d", deep)]);
        }
        w.finish().expect("finish");

        let mut f = Files(HashMap::new(), 0, repo);
        assert_eq!(fold(&mut f, &root).expect("fold"), 6);
        assert_eq!(f.1, 3, "each distinct tree is folded once");
        assert_eq!(fold(&mut f, &deep).expect("fold deep"), 1);
        assert_eq!(f.1, 3 + 50_001);

        let mut depth = 0;
        TreeWalk::new(&f.2)
            .visit(&deep, &mut DepthCount(&mut depth))
            .expect("visit deep");
        assert_eq!(depth, 50_001);
    }

    struct DepthCount<'a>(&'a mut usize);

    impl Visitor for DepthCount<'_> {
        fn entry(&mut self, path: &RawPath, _: &Node) -> Result<Visit> {
            *self.0 = (*self.0).max(path.len());
            Ok(Visit::Descend)
        }
    }
}
