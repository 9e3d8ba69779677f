//! Repair, part 2: snapshots (and oplog slices) without what no pack holds any more.
//!
//! A file with a lost chunk is left out; a directory whose tree is lost or unreadable
//! becomes an empty directory with its recorded metadata. Unchanged subtrees keep their
//! ids, so a repaired snapshot costs only the trees on the way to what was lost.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use super::{RepairReport, RepairRequest};
use crate::blob::{self, BlobKind};
use crate::error::{Error, Result};
use crate::id::{BlobId, SnapshotId, TreeId};
use crate::index::RocksIndex;
use crate::packer::Packer;
use crate::repository::Repository;
use crate::snapshot::{snapshot_path, Repaired, Snapshot};
use crate::tree::{self, NodeKind, Tree};

/// Lost paths listed per snapshot (the count says how many there are in all).
const MAX_LISTED: usize = 100;

/// One snapshot that lost data.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotRepair {
    /// The damaged snapshot.
    pub snapshot: SnapshotId,
    /// When it was taken.
    pub time: chrono::DateTime<chrono::Utc>,
    /// The snapshot that replaces it (none in a dry run).
    pub replaced_by: Option<SnapshotId>,
    /// Lost paths (at most 100; a directory ends with `/`).
    pub lost: Vec<String>,
    /// How many paths were lost in all.
    pub lost_count: u64,
}

/// A tree after repair: its id (the old one when nothing was lost) and what it lost.
#[derive(Clone)]
struct Fixed {
    id: TreeId,
    lost: Arc<Vec<String>>,
}

struct Fixer<'r> {
    repo: &'r Repository,
    index: Arc<RocksIndex>,
    /// Blobs known lost though the index (of a dry run) still lists them.
    lost: &'r HashSet<(BlobKind, BlobId)>,
    memo: HashMap<TreeId, Fixed>,
    packer: Option<Packer<'r>>,
    stored: HashSet<TreeId>,
}

impl Fixer<'_> {
    fn tree(&mut self, id: TreeId) -> Result<Fixed> {
        if let Some(f) = self.memo.get(&id) {
            return Ok(f.clone());
        }
        let fixed = self.fix(id)?;
        self.memo.insert(id, fixed.clone());
        Ok(fixed)
    }

    fn fix(&mut self, id: TreeId) -> Result<Fixed> {
        let loaded = if self.lost.contains(&(BlobKind::Tree, BlobId::from(id))) {
            Err(Error::Missing(format!("tree {}", id.short())))
        } else {
            self.repo.load_tree(&id)
        };
        let t = match loaded {
            Ok(t) => t,
            Err(Error::Corrupt { .. } | Error::Missing(_)) => {
                // The whole directory is lost: it stays, empty.
                let empty = self.store(Tree { nodes: Vec::new() })?;
                return Ok(Fixed {
                    id: empty,
                    lost: Arc::new(vec!["/".into()]),
                });
            }
            Err(e) => return Err(e),
        };
        let mut nodes = Vec::with_capacity(t.nodes.len());
        let mut lost = Vec::new();
        for mut node in t.nodes {
            let name = node.display_name();
            if node.kind() == NodeKind::File && !self.all_present(&node.content)? {
                lost.push(format!("/{name}"));
                continue;
            }
            if let Some(sub) = node.subtree {
                let f = self.tree(sub)?;
                if f.id != sub {
                    node.subtree = Some(f.id);
                    lost.extend(f.lost.iter().map(|p| format!("/{name}{p}")));
                }
            }
            nodes.push(node);
        }
        if lost.is_empty() {
            return Ok(Fixed {
                id,
                lost: Arc::new(Vec::new()),
            });
        }
        Ok(Fixed {
            id: self.store(Tree { nodes })?,
            lost: Arc::new(lost),
        })
    }

    fn all_present(&self, chunks: &[crate::id::ChunkId]) -> Result<bool> {
        for c in chunks {
            let b = BlobId::from(*c);
            if self.lost.contains(&(BlobKind::Data, b))
                || !self.index.contains(BlobKind::Data, &b)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Encodes a tree and stores it (unless a dry run, or already there); returns its id.
    fn store(&mut self, mut t: Tree) -> Result<TreeId> {
        t.sort();
        let enc = tree::encode(&t);
        let id = self.repo.hasher().tree_id(&enc);
        let bid = BlobId::from(id);
        if let Some(p) = self.packer.as_mut() {
            if !self.index.contains(BlobKind::Tree, &bid)? && self.stored.insert(id) {
                let sealed =
                    blob::seal(self.repo.key(), &enc, self.repo.config().compression_level);
                p.add(BlobKind::Tree, bid, &sealed, enc.len() as u32)?;
            }
        }
        Ok(id)
    }
}

/// Rewrites snapshots that reference lost blobs, and removes oplog slices that do.
pub(super) fn repair(
    repo: &Repository,
    opts: &RepairRequest,
    lost: &HashSet<(BlobKind, BlobId)>,
    report: &mut RepairReport,
) -> Result<()> {
    let snaps = repo.snapshots()?;
    report.snapshots_unreadable = repo
        .damaged_snapshots()
        .iter()
        .map(|(id, why)| format!("{}: {why}", id.short()))
        .collect();
    let mut fixer = Fixer {
        repo,
        index: repo.index()?,
        lost,
        memo: HashMap::new(),
        packer: (!opts.dry_run).then(|| Packer::new(repo)),
        stored: HashSet::new(),
    };
    let mut rewrites: Vec<(Snapshot, TreeId, usize)> = Vec::new();
    for snap in snaps {
        let fixed = fixer.tree(snap.tree)?;
        if fixed.lost.is_empty() {
            continue;
        }
        report.snapshots.push(SnapshotRepair {
            snapshot: snap.id,
            time: snap.time,
            replaced_by: None,
            lost: fixed.lost.iter().take(MAX_LISTED).cloned().collect(),
            lost_count: fixed.lost.len() as u64,
        });
        rewrites.push((snap, fixed.id, fixed.lost.len()));
    }
    let lost_slices = lost_slices(repo, &fixer.index, lost)?;
    report.slices_removed = lost_slices.iter().map(|s| s.short()).collect();
    let Some(packer) = fixer.packer.take() else {
        return Ok(());
    };
    // New trees are durable (packs, then segment) before any snapshot names them.
    packer.finish()?;
    let now = chrono::Utc::now();
    for ((old, tree, lost), r) in rewrites.into_iter().zip(report.snapshots.iter_mut()) {
        let mut new = old.clone();
        new.id = SnapshotId::random();
        new.tree = tree;
        if !new.tags.iter().any(|t| t == "repaired") {
            new.tags.push("repaired".into());
        }
        new.repaired = Some(Repaired {
            from: old.id,
            time: now,
            lost_paths: lost as u64,
        });
        repo.save_snapshot(&new)?;
        repo.backend().delete(&snapshot_path(&old.id))?;
        r.replaced_by = Some(new.id);
    }
    for id in &lost_slices {
        repo.backend()
            .delete(&crate::mongo::oplog::slice::slice_path(id))?;
    }
    Ok(())
}

/// Oplog slices naming a chunk the index does not hold.
fn lost_slices(
    repo: &Repository,
    index: &RocksIndex,
    lost: &HashSet<(BlobKind, BlobId)>,
) -> Result<Vec<crate::id::SliceId>> {
    let (slices, damaged) = crate::mongo::oplog::load_slices_and_damaged(repo)?;
    let mut out: Vec<crate::id::SliceId> = damaged.into_iter().map(|(id, _)| id).collect();
    for s in slices {
        let mut whole = true;
        for c in &s.chunks {
            let b = BlobId::from(*c);
            if lost.contains(&(BlobKind::Data, b)) || !index.contains(BlobKind::Data, &b)? {
                whole = false;
                break;
            }
        }
        if !whole {
            out.push(s.id);
        }
    }
    Ok(out)
}
