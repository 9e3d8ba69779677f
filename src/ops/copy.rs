//! `repo copy`: snapshots from one repository into another (e.g. local → S3), moving only
//! the chunks the destination lacks.
//!
//! Blob ids are keyed per repository, so the same bytes have different ids in the two:
//! every chunk is read and verified in the source, re-hashed with the destination's key,
//! and sealed with the destination's key only when the destination does not have it;
//! trees are rewritten with the new ids. Shared subtrees and chunks are translated once,
//! and chunk translations are remembered across runs ([`ChunkMap`]), so a repeated copy
//! reads only chunks the destination does not hold yet.
//! MongoDB oplog slices that can roll the copied snapshots forward come along (their
//! chunks translated the same way), so point-in-time coverage survives the copy.
//! Order as in a snapshot: packs and segments first, snapshot and slice objects last.

use std::collections::{HashMap, HashSet};

use crate::blob::{self, BlobKind};
use crate::copy_map::ChunkMap;
use crate::error::Result;
use crate::id::{BlobId, ChunkId, SliceId, SnapshotId, TreeId};
use crate::oplog::coverage::snapshot_point;
use crate::oplog::slice::{slice_path, Slice};
use crate::packer::Packer;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::tree::{self, Tree};

/// What one copy run did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CopyReport {
    /// Snapshots written to the destination: (source id, destination id).
    pub copied: Vec<(String, String)>,
    /// Source snapshots the destination already had (same time, host, paths and tags).
    pub skipped: Vec<String>,
    /// Blobs stored in the destination.
    pub blobs_added: u64,
    /// Bytes of packs written to the destination.
    pub bytes_added: u64,
    /// MongoDB oplog slices written to the destination.
    pub oplog_slices_copied: usize,
    /// Chunks read from the source (those the destination was known to hold are not).
    pub chunks_read: u64,
    /// Problems that did not stop the copy (e.g. the translation cache not saved).
    pub warnings: Vec<String>,
}

/// Translates source ids into destination ids, storing what the destination lacks.
struct Copier<'a> {
    src: &'a Repository,
    dst: &'a Repository,
    packer: Packer<'a>,
    chunks: HashMap<ChunkId, ChunkId>,
    trees: HashMap<TreeId, TreeId>,
    /// Translations of earlier copies, so chunks the destination holds are not read.
    earlier: ChunkMap,
    chunks_read: u64,
}

impl Copier<'_> {
    fn store(&mut self, kind: BlobKind, id: BlobId, data: &[u8]) -> Result<()> {
        if self.dst.index()?.contains(kind, &id)? {
            return Ok(());
        }
        let sealed = blob::seal(self.dst.key(), data, self.dst.config().compression_level);
        self.packer.add(kind, id, &sealed, data.len() as u32)
    }

    fn chunk(&mut self, id: ChunkId) -> Result<ChunkId> {
        if let Some(done) = self.chunks.get(&id) {
            return Ok(*done);
        }
        if let Some(new) = self.earlier.get(&id) {
            // Trusted only while the destination's index says the chunk is there.
            if self
                .dst
                .index()?
                .contains(BlobKind::Data, &BlobId::from(new))?
            {
                self.chunks.insert(id, new);
                return Ok(new);
            }
        }
        let data = self.src.read_blob(BlobKind::Data, &BlobId::from(id))?;
        self.chunks_read += 1;
        let new = self.dst.hasher().chunk_id(&data);
        self.store(BlobKind::Data, BlobId::from(new), &data)?;
        self.chunks.insert(id, new);
        self.earlier.note(id, new);
        Ok(new)
    }

    fn tree(&mut self, id: TreeId) -> Result<TreeId> {
        if let Some(done) = self.trees.get(&id) {
            return Ok(*done);
        }
        let mut t: Tree = self.src.load_tree(&id)?;
        for node in &mut t.nodes {
            for c in &mut node.content {
                *c = self.chunk(*c)?;
            }
            if let Some(sub) = node.subtree {
                node.subtree = Some(self.tree(sub)?);
            }
        }
        let enc = tree::encode(&t);
        let new = self.dst.hasher().tree_id(&enc);
        self.store(BlobKind::Tree, BlobId::from(new), &enc)?;
        self.trees.insert(id, new);
        Ok(new)
    }
}

/// Whether `dst` already holds a copy of `s` (the same moment of the same source).
fn has_copy(existing: &[Snapshot], s: &Snapshot) -> bool {
    existing
        .iter()
        .any(|d| d.time == s.time && d.host == s.host && d.paths == s.paths && d.tags == s.tags)
}

/// Copies `snapshots` (all of them when empty) from `src` into `dst`.
pub fn run(src: &Repository, dst: &Repository, snapshots: &[Snapshot]) -> Result<CopyReport> {
    let existing = dst.snapshots()?;
    let mut report = CopyReport::default();
    let mut copier = Copier {
        src,
        dst,
        packer: Packer::new(dst),
        chunks: HashMap::new(),
        trees: HashMap::new(),
        earlier: ChunkMap::load(dst.cache_dir(), &src.config().id),
        chunks_read: 0,
    };
    let mut pending = Vec::new();
    for s in snapshots {
        if has_copy(&existing, s) {
            report.skipped.push(s.id.to_hex());
            continue;
        }
        let root = copier.tree(s.tree)?;
        pending.push((s, root));
    }
    let mut slices = slices_to_copy(src, dst, snapshots)?;
    for slice in &mut slices {
        for c in &mut slice.chunks {
            *c = copier.chunk(*c)?;
        }
    }
    // Every pack and segment is durable before the first snapshot object names them.
    let stats = copier.packer.finish()?;
    report.blobs_added = stats.blobs;
    report.bytes_added = stats.pack_bytes;
    report.chunks_read = copier.chunks_read;
    // Only now are the new chunks durable in the destination. A cache that cannot be
    // written costs the next copy reads, not correctness.
    if let Err(e) = copier.earlier.save() {
        report.warnings.push(e.to_string());
    }
    for slice in &slices {
        // The id is kept: it is random, and it makes a repeated copy skip the slice.
        dst.backend()
            .put(&slice_path(&slice.id), &slice.seal(dst.key()))?;
    }
    report.oplog_slices_copied = slices.len();
    for (s, root) in pending {
        let mut copy = s.clone();
        copy.id = SnapshotId::random();
        copy.tree = root;
        copy.parent = None;
        dst.save_snapshot(&copy)?;
        report.copied.push((s.id.to_hex(), copy.id.to_hex()));
    }
    Ok(report)
}

/// The source's oplog slices that extend `snapshots` (same MongoDB server, ending after the
/// oldest of those snapshots' cluster time) and that `dst` does not hold yet.
fn slices_to_copy(
    src: &Repository,
    dst: &Repository,
    snapshots: &[Snapshot],
) -> Result<Vec<Slice>> {
    let mut oldest: HashMap<&str, crate::snapshot::ClusterTime> = HashMap::new();
    for (source, t) in snapshots.iter().filter_map(snapshot_point) {
        let o = oldest.entry(source).or_insert(t);
        *o = (*o).min(t);
    }
    if oldest.is_empty() {
        return Ok(Vec::new());
    }
    let have: HashSet<SliceId> = dst
        .backend()
        .list("oplog/")?
        .iter()
        .filter_map(|o| o.path.rsplit('/').next()?.parse().ok())
        .collect();
    Ok(crate::oplog::load_slices(src)?
        .into_iter()
        .filter(|s| oldest.get(s.source.as_str()).is_some_and(|t| s.until > *t))
        .filter(|s| !have.contains(&s.id))
        .collect())
}
