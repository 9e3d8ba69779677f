//! What the mount shows, as inodes: the made-up directories (`snapshots/`, `by-id/`,
//! `by-host/HOST/`, `by-tag/TAG/`, `latest`), each snapshot's tree, and a MongoDB
//! snapshot's collections as `mongodb/DB/COLL.{bson,jsonl,indexes.json}`.
//!
//! Inodes are handed out as names are looked up and kept for the mount's life (the kernel
//! may ask for any inode it was given). Snapshot lists are read again when a listing is
//! older than [`REFRESH`], so snapshots taken while mounted appear.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::id::{SnapshotId, TreeId};
use crate::repository::Repository;
use crate::selection::SnapshotFilter;
use crate::snapshot::Snapshot;
use crate::tree::{Node, Tree};

/// How old the snapshot list may be when a directory of snapshots is listed.
pub const REFRESH: Duration = Duration::from_secs(2);
/// Decoded trees kept for lookups and listings.
const TREES_KEPT: usize = 4096;

/// Which view of a collection a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CollectionFile {
    Bson,
    Jsonl,
    Indexes,
}

/// What an inode is.
#[derive(Clone, Debug)]
pub enum Item {
    Root,
    Snapshots,
    ById,
    ByHost,
    Host(String),
    ByTag,
    Tag(String),
    /// A symbolic link the mount makes (`latest`, `by-id/…`).
    Link(Vec<u8>),
    /// A snapshot's top directory.
    Snap(SnapshotId),
    /// A directory of a snapshot's tree (its node, for its attributes).
    Dir(TreeId, Node),
    /// Anything else in a tree: a file, symlink, device or fifo.
    Leaf(Node),
    /// `mongodb/` of a MongoDB snapshot, and one database in it.
    MongoRoot(SnapshotId),
    MongoDb(SnapshotId, String),
    /// A collection as a file; `node` is its BSON stream (none for a view).
    Collection {
        snap: SnapshotId,
        ns: String,
        file: CollectionFile,
        node: Option<Node>,
        text: Arc<Vec<u8>>,
    },
}

/// The snapshots shown, by directory name, oldest first.
struct Listing {
    names: Vec<(String, Snapshot)>,
    read: Option<Instant>,
}

/// Every inode handed out, and how to find the children of each.
pub struct Layout {
    repo: Arc<Repository>,
    filter: SnapshotFilter,
    items: Vec<(u64, Item)>,
    by_name: HashMap<(u64, Vec<u8>), u64>,
    /// Hard-linked files of one snapshot share an inode: (snapshot's inode, device, inode).
    hard_links: HashMap<(u64, u64, u64), u64>,
    listing: Listing,
    loaded: HashMap<SnapshotId, Snapshot>,
    trees: HashMap<TreeId, Arc<Tree>>,
    saved: HashMap<SnapshotId, Arc<Vec<crate::mongo::layout::Saved>>>,
}

impl Layout {
    pub fn new(repo: Arc<Repository>, filter: SnapshotFilter) -> Self {
        Layout {
            repo,
            filter,
            items: vec![(1, Item::Root)],
            by_name: HashMap::new(),
            hard_links: HashMap::new(),
            listing: Listing {
                names: Vec::new(),
                read: None,
            },
            loaded: HashMap::new(),
            trees: HashMap::new(),
            saved: HashMap::new(),
        }
    }

    /// Inode `ino` (1 is the root).
    pub fn item(&self, ino: u64) -> Option<&Item> {
        let i = usize::try_from(ino.checked_sub(1)?).ok()?;
        self.items.get(i).map(|(_, it)| it)
    }

    /// The snapshot behind a snapshot directory.
    pub fn snapshot(&self, id: &SnapshotId) -> Option<&Snapshot> {
        self.loaded.get(id)
    }

    /// The inode of `name` in `parent`, handing one out the first time.
    pub fn intern(&mut self, parent: u64, name: &[u8], item: Item) -> u64 {
        let key = (parent, name.to_vec());
        if let Some(&ino) = self.by_name.get(&key) {
            // Refresh what it is (a `latest` link moves when a snapshot is taken).
            if let Some(slot) = self.items.get_mut(ino as usize - 1) {
                slot.1 = item;
            }
            return ino;
        }
        let link = match &item {
            Item::Leaf(n) if n.links > 1 && n.inode != 0 => {
                Some((self.snapshot_inode(parent), n.device, n.inode))
            }
            _ => None,
        };
        if let Some(&ino) = link.as_ref().and_then(|l| self.hard_links.get(l)) {
            // Only a member the first one's twin: a file rewritten between the backup's
            // reads of its two names shows each name with what the snapshot holds for it.
            if matches!((self.item(ino), &item), (Some(Item::Leaf(first)), Item::Leaf(n)) if first.same_file_as(n))
            {
                self.by_name.insert(key, ino);
                return ino;
            }
        }
        self.items.push((parent, item));
        let ino = self.items.len() as u64;
        self.by_name.insert(key, ino);
        if let Some(l) = link {
            self.hard_links.entry(l).or_insert(ino);
        }
        ino
    }

    /// The snapshot directory `ino` is in (0 outside any).
    fn snapshot_inode(&self, mut ino: u64) -> u64 {
        loop {
            match self.item(ino) {
                Some(Item::Snap(_)) => return ino,
                Some(_) if ino != 1 => ino = self.parent(ino),
                _ => return 0,
            }
        }
    }

    /// The parent of `ino` (the root is its own).
    pub fn parent(&self, ino: u64) -> u64 {
        ino.checked_sub(1)
            .and_then(|i| self.items.get(i as usize))
            .map_or(1, |(p, _)| *p)
    }

    /// The children of directory `ino`, by name.
    pub fn children(&mut self, ino: u64) -> Result<Vec<(Vec<u8>, Item)>> {
        let item = self
            .item(ino)
            .cloned()
            .ok_or_else(|| Error::Selection(format!("no inode {ino}")))?;
        match item {
            Item::Root => {
                self.refresh()?;
                let mut v = vec![
                    (b"snapshots".to_vec(), Item::Snapshots),
                    (b"by-id".to_vec(), Item::ById),
                    (b"by-host".to_vec(), Item::ByHost),
                    (b"by-tag".to_vec(), Item::ByTag),
                ];
                if let Some((name, _)) = self.listing.names.last() {
                    v.push((b"latest".to_vec(), link("", name)));
                }
                Ok(v)
            }
            Item::Snapshots => {
                self.refresh()?;
                Ok(self.each(|_| true, |n, s| (n.as_bytes().to_vec(), Item::Snap(s.id))))
            }
            Item::ById => {
                self.refresh()?;
                Ok(self.each(
                    |_| true,
                    |n, s| (s.id.to_hex().into_bytes(), link("../", n)),
                ))
            }
            Item::ByHost => {
                self.refresh()?;
                Ok(self.groups(|s| vec![s.host.clone()], Item::Host))
            }
            Item::ByTag => {
                self.refresh()?;
                Ok(self.groups(|s| s.tags.clone(), Item::Tag))
            }
            Item::Host(h) => self.members(|s| safe(&s.host) == h),
            Item::Tag(t) => self.members(|s| s.tags.iter().any(|x| safe(x) == t)),
            Item::Snap(id) => self.snapshot_root(&id),
            Item::Dir(tree, _) => self.tree_children(&tree),
            Item::MongoRoot(id) => mongo::databases(self, &id),
            Item::MongoDb(id, db) => mongo::collections(self, &id, &db),
            _ => Err(Error::Selection("not a directory".into())),
        }
    }

    /// Reads the snapshot list again when it is older than [`REFRESH`].
    fn refresh(&mut self) -> Result<()> {
        if self.listing.read.is_some_and(|t| t.elapsed() < REFRESH) {
            return Ok(());
        }
        let ids = self.repo.snapshot_ids()?;
        if ids.iter().any(|id| !self.loaded.contains_key(id)) {
            // New snapshots: their trees and chunks may be in packs the index has not seen.
            self.repo.refresh_index()?;
        }
        let mut snaps = Vec::new();
        for id in ids {
            if let Some(s) = self.loaded.get(&id) {
                snaps.push(s.clone());
                continue;
            }
            match self.repo.load_snapshot(&id) {
                Ok(s) => {
                    self.loaded.insert(id, s.clone());
                    snaps.push(s);
                }
                // Forgotten between listing and loading: it is simply gone.
                Err(Error::Missing(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut snaps = self.filter.apply(snaps);
        snaps.sort_by_key(|s| (s.time, s.id));
        let stamp = |s: &Snapshot| s.time.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut count: HashMap<String, usize> = HashMap::new();
        for s in &snaps {
            *count.entry(stamp(s)).or_default() += 1;
        }
        self.listing.names = snaps
            .into_iter()
            .map(|s| {
                let t = stamp(&s);
                // Two snapshots in one second: both get their short id.
                let name = if count[&t] > 1 {
                    format!("{t}-{}", s.id.short())
                } else {
                    t
                };
                (name, s)
            })
            .collect();
        self.listing.read = Some(Instant::now());
        Ok(())
    }

    fn each(
        &self,
        keep: impl Fn(&Snapshot) -> bool,
        f: impl Fn(&str, &Snapshot) -> (Vec<u8>, Item),
    ) -> Vec<(Vec<u8>, Item)> {
        self.listing
            .names
            .iter()
            .filter(|(_, s)| keep(s))
            .map(|(n, s)| f(n, s))
            .collect()
    }

    fn groups(
        &self,
        keys: impl Fn(&Snapshot) -> Vec<String>,
        item: impl Fn(String) -> Item,
    ) -> Vec<(Vec<u8>, Item)> {
        let mut names: Vec<String> = self
            .listing
            .names
            .iter()
            .flat_map(|(_, s)| keys(s))
            .map(|k| safe(&k))
            .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|n| (n.clone().into_bytes(), item(n)))
            .collect()
    }

    /// A host's or tag's snapshots, as links, and its `latest`.
    fn members(&mut self, keep: impl Fn(&Snapshot) -> bool) -> Result<Vec<(Vec<u8>, Item)>> {
        self.refresh()?;
        let mut v = self.each(&keep, |n, _| (n.as_bytes().to_vec(), link("../../", n)));
        if let Some((n, _)) = self.listing.names.iter().rev().find(|(_, s)| keep(s)) {
            v.push((b"latest".to_vec(), link("../../", n)));
        }
        Ok(v)
    }

    fn snapshot_root(&mut self, id: &SnapshotId) -> Result<Vec<(Vec<u8>, Item)>> {
        let Some(snap) = self.loaded.get(id) else {
            return Ok(Vec::new());
        };
        let (tree, mongo) = (snap.tree, snap.mongodb.is_some());
        let mut v = self.tree_children(&tree)?;
        if mongo {
            // The collections' own layout in the tree is an encoding; show them as files.
            for (name, item) in &mut v {
                if name.as_slice() == crate::mongo::export::ROOT.as_bytes() {
                    *item = Item::MongoRoot(*id);
                }
            }
        }
        Ok(v)
    }

    fn tree_children(&mut self, id: &TreeId) -> Result<Vec<(Vec<u8>, Item)>> {
        let tree = match self.trees.get(id) {
            Some(t) => t.clone(),
            None => {
                let t = Arc::new(self.repo.load_tree(id)?);
                if self.trees.len() >= TREES_KEPT {
                    self.trees.clear();
                }
                self.trees.insert(*id, t.clone());
                t
            }
        };
        Ok(tree
            .nodes
            .iter()
            // A name the kernel cannot take (a separator, `.`/`..`) is left out.
            .filter(|n| crate::tree::is_safe_name(&n.name))
            .map(|n| {
                let item = match n.subtree {
                    Some(t) if n.kind() == crate::tree::NodeKind::Dir => Item::Dir(t, n.clone()),
                    _ => Item::Leaf(n.clone()),
                };
                (n.name.clone(), item)
            })
            .collect())
    }
}

/// A link to `snapshots/NAME` from `up` (the way back to the mount's root).
fn link(up: &str, name: &str) -> Item {
    Item::Link(format!("{up}snapshots/{name}").into_bytes())
}

/// A host or tag as one directory name.
fn safe(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    match t.as_str() {
        "" | "." | ".." => format!("_{t}"),
        _ => t,
    }
}

mod mongo {
    use super::{CollectionFile, Item, Layout};
    use crate::error::Result;
    use crate::id::SnapshotId;
    use std::sync::Arc;

    fn saved(l: &mut Layout, id: &SnapshotId) -> Result<Arc<Vec<crate::mongo::layout::Saved>>> {
        if let Some(s) = l.saved.get(id) {
            return Ok(s.clone());
        }
        let Some(snap) = l.loaded.get(id) else {
            return Ok(Arc::new(Vec::new()));
        };
        let s = Arc::new(crate::mongo::restore::saved(&l.repo, snap)?);
        l.saved.insert(*id, s.clone());
        Ok(s)
    }

    pub fn databases(l: &mut Layout, id: &SnapshotId) -> Result<Vec<(Vec<u8>, Item)>> {
        let mut dbs: Vec<String> = saved(l, id)?.iter().map(|c| c.db.clone()).collect();
        dbs.sort();
        dbs.dedup();
        Ok(dbs
            .into_iter()
            .filter(|d| crate::tree::is_safe_name(d.as_bytes()))
            .map(|d| (d.clone().into_bytes(), Item::MongoDb(*id, d)))
            .collect())
    }

    pub fn collections(l: &mut Layout, id: &SnapshotId, db: &str) -> Result<Vec<(Vec<u8>, Item)>> {
        let mut out = Vec::new();
        for c in saved(l, id)?.iter().filter(|c| c.db == db) {
            let specs: Vec<serde_json::Value> = c
                .index_specs()
                .into_iter()
                .map(|d| mongodb::bson::Bson::Document(d).into_canonical_extjson())
                .collect();
            let mut text = serde_json::to_vec_pretty(&specs).unwrap_or_default();
            text.push(b'\n');
            let text = Arc::new(text);
            for (ext, file) in [
                ("bson", CollectionFile::Bson),
                ("jsonl", CollectionFile::Jsonl),
                ("indexes.json", CollectionFile::Indexes),
            ] {
                // Collection names may hold '/', which a file name cannot.
                let name = format!("{}.{ext}", c.name.replace('/', "%2F"));
                out.push((
                    name.into_bytes(),
                    Item::Collection {
                        snap: *id,
                        ns: c.ns(),
                        file,
                        node: c.data.clone(),
                        text: text.clone(),
                    },
                ));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(content: u8) -> Item {
        Item::Leaf(Node {
            kind: Some(crate::tree::NodeKind::File),
            links: 2,
            device: 3,
            inode: 9,
            content: vec![crate::id::ChunkId([content; 32])],
            ..Default::default()
        })
    }

    #[test]
    fn hard_links_share_an_inode_only_when_they_show_the_same_file() {
        let backend = Arc::new(crate::backend::memory::MemoryBackend::new());
        let kdf = crate::key::KdfParams::with_costs(256, 1, 1);
        let cfg = crate::config::RepoConfig::new_default();
        Repository::init(&*backend, b"pw", cfg, kdf).expect("init");
        let cache = tempfile::tempdir().expect("tempdir");
        let repo = Repository::open(backend, b"pw", cache.path()).expect("open");
        let mut l = Layout::new(Arc::new(repo), SnapshotFilter::default());
        let a = l.intern(1, b"a", member(1));
        let b = l.intern(1, b"b", member(2));
        let c = l.intern(1, b"c", member(1));
        assert_ne!(a, b, "different content: two files");
        assert_eq!(a, c);
        // The name keeps its inode when looked up again.
        assert_eq!(l.intern(1, b"b", member(2)), b);
    }

    #[test]
    fn hosts_and_tags_become_one_directory_name() {
        assert_eq!(safe("web-1"), "web-1");
        assert_eq!(safe("a/b"), "a_b");
        assert_eq!(safe(".."), "_..");
        assert_eq!(safe(""), "_");
        assert_eq!(safe("x\0y"), "x_y");
    }
}
