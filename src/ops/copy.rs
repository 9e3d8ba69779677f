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

use rayon::prelude::*;

use crate::backend::with_read_threads;
use crate::blob::BlobKind;
use crate::copy_map::ChunkMap;
use crate::error::{Error, Result};
use crate::id::{BlobId, ChunkId, SliceId, SnapshotId, TreeId};
use crate::index::BlobLocation;
use crate::lock::LockKind;
use crate::mongo::oplog::coverage::snapshot_point;
use crate::mongo::oplog::slice::{slice_path, Slice};
use crate::ops::context::{Ctx, Phase};
use crate::ops::select::{self, SnapshotRef};
use crate::pack::pack_path;
use crate::pack::runs::{read_runs, span};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::selection::SnapshotFilter;
use crate::snapshot::Snapshot;
use crate::tree::walk::{self, Fold, TreeWalk, Visit};
use crate::tree::{self, Tree};
use crate::writer::BlobWriter;

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
    /// Range requests those reads took (nearby chunks of a pack share one).
    pub source_requests: u64,
    /// Problems that did not stop the copy (e.g. the translation cache not saved).
    pub warnings: Vec<String>,
}

/// Translates source ids into destination ids, storing what the destination lacks.
struct Copier<'a> {
    src: &'a Repository,
    dst: &'a Repository,
    writer: BlobWriter<'a>,
    chunks: HashMap<ChunkId, ChunkId>,
    trees: HashMap<TreeId, TreeId>,
    /// Translations of earlier copies, so chunks the destination holds are not read.
    earlier: ChunkMap,
    chunks_read: u64,
    source_requests: u64,
}

impl Copier<'_> {
    fn store(&mut self, kind: BlobKind, id: BlobId, data: &[u8]) -> Result<()> {
        self.writer.store(kind, id, data).map(drop)
    }

    /// The destination id of a chunk; [`Copier::prefetch`] has normally translated it.
    fn chunk(&mut self, id: ChunkId) -> Result<ChunkId> {
        if self.needs_read(id)? {
            self.source_requests += 1;
            let data = self.src.read_blob(BlobKind::Data, &BlobId::from(id))?;
            return self.translate(id, &data);
        }
        self.chunks
            .get(&id)
            .copied()
            .ok_or_else(|| Error::Invalid(format!("chunk {} was not translated", id.short())))
    }

    /// Stores a chunk read from the source under its destination id.
    fn translate(&mut self, id: ChunkId, data: &[u8]) -> Result<ChunkId> {
        self.chunks_read += 1;
        let new = self.dst.hasher().chunk_id(data);
        self.store(BlobKind::Data, BlobId::from(new), data)?;
        self.chunks.insert(id, new);
        self.earlier.note(id, new);
        Ok(new)
    }

    /// Whether `id` needs reading: not translated in this run, nor known to be held by
    /// the destination from an earlier one.
    fn needs_read(&mut self, id: ChunkId) -> Result<bool> {
        if self.chunks.contains_key(&id) {
            return Ok(false);
        }
        if let Some(new) = self.earlier.get(&id) {
            if self
                .dst
                .index()?
                .contains(BlobKind::Data, &BlobId::from(new))?
            {
                self.chunks.insert(id, new);
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads every chunk under `roots` and in `extra` that needs reading, pack by pack
    /// with coalesced range reads (one request per run of nearby blobs, as restore does),
    /// and translates it; the tree pass then finds them all translated.
    fn prefetch(&mut self, roots: &[TreeId], extra: &[ChunkId]) -> Result<()> {
        let mut wanted: Vec<ChunkId> = extra.to_vec();
        let mut seen_trees: HashSet<TreeId> = HashSet::new();
        let translated = &self.trees;
        TreeWalk::new(self.src).walk_trees(
            roots,
            &mut |t| {
                Ok(if seen_trees.insert(*t) && !translated.contains_key(t) {
                    Visit::Descend
                } else {
                    Visit::Skip
                })
            },
            &mut |node| {
                wanted.extend(node.content.iter().copied());
                Ok(())
            },
        )?;
        let index = self.src.index()?;
        let mut need: Vec<(ChunkId, BlobLocation)> = Vec::new();
        let mut queued: HashSet<ChunkId> = HashSet::new();
        for id in wanted {
            if !queued.insert(id) || !self.needs_read(id)? {
                continue;
            }
            let loc = index
                .lookup(BlobKind::Data, &BlobId::from(id))?
                .ok_or_else(|| {
                    Error::Missing(format!("data blob {} (not in the index)", id.short()))
                })?;
            need.push((id, loc));
        }
        need.sort_by_key(|(_, l)| (l.pack, l.offset));
        let runs: Vec<&[(ChunkId, BlobLocation)]> = need
            .chunk_by(|a, b| a.1.pack == b.1.pack)
            .flat_map(|pack| read_runs(pack, |(_, l)| l))
            .collect();
        // Runs are fetched and opened a batch at a time, in parallel (a remote source takes
        // several requests at once); each batch bounds memory to a few runs.
        let src = self.src;
        let batch = src
            .backend()
            .parallel_gets()
            .max(rayon::current_num_threads())
            * 2;
        for group in runs.chunks(batch) {
            let opened: Vec<Result<Opened>> = with_read_threads(src.backend(), || {
                group.par_iter().map(|run| read_run(src, run)).collect()
            });
            for run in opened {
                self.source_requests += 1;
                for (id, data) in run? {
                    self.translate(id, &data)?;
                }
            }
        }
        Ok(())
    }

    /// The destination id of a source tree, re-encoding it and every tree below it
    /// under the destination's ids (each distinct tree once).
    fn tree(&mut self, id: TreeId) -> Result<TreeId> {
        walk::fold(self, &id)
    }
}

impl Fold for Copier<'_> {
    type Out = TreeId;

    fn done(&mut self) -> &mut HashMap<TreeId, TreeId> {
        &mut self.trees
    }

    fn open(&mut self, id: &TreeId) -> Result<walk::Opened<TreeId>> {
        Ok(walk::Opened::Tree(self.src.load_tree(id)?))
    }

    fn combine(&mut self, _: &TreeId, mut t: Tree) -> Result<TreeId> {
        for node in &mut t.nodes {
            for c in &mut node.content {
                *c = self.chunk(*c)?;
            }
            if let Some(sub) = node.subtree {
                let new = self.trees.get(&sub).copied().ok_or_else(|| {
                    Error::Internal(format!("tree {} was not copied", sub.short()))
                })?;
                node.subtree = Some(new);
            }
        }
        let enc = tree::encode(&t);
        let new = self.dst.hasher().tree_id(&enc);
        self.store(BlobKind::Tree, BlobId::from(new), &enc)?;
        Ok(new)
    }
}

/// Whether `dst` already holds a copy of `s` (the same moment of the same source).
fn has_copy(existing: &[Snapshot], s: &Snapshot) -> bool {
    existing
        .iter()
        .any(|d| d.time == s.time && d.host == s.host && d.paths == s.paths && d.tags == s.tags)
}

/// `copy`: which snapshots of the source.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CopyRequest {
    /// The snapshots to copy; empty: every snapshot passing `filter`.
    pub snapshots: Vec<SnapshotRef>,
    /// Without `snapshots`: which ones.
    pub filter: SnapshotFilter,
}

/// Copies the snapshots `req` names from `src` into `dst` (shared locks on both;
/// already copied ones are skipped). Cancelled, it stops between trees and writes no
/// snapshot object.
pub fn run(src: &Repository, dst: &Repository, req: &CopyRequest, ctx: &Ctx) -> Result<CopyReport> {
    let _dst_lock = dst.lock_for(LockKind::Shared, "copy", ctx)?;
    let _src_lock = src.lock_for(LockKind::Shared, "copy (source)", ctx)?;
    let snapshots = if req.snapshots.is_empty() {
        select::matching(src, &req.filter)?
    } else {
        select::snapshots(src, &req.snapshots)?
    };
    let progress = ctx.phase(Phase::Copying);
    let r = copy(src, dst, &snapshots, ctx, &progress);
    ctx.phase_done(Phase::Copying);
    r
}

fn copy(
    src: &Repository,
    dst: &Repository,
    snapshots: &[Snapshot],
    ctx: &Ctx,
    progress: &Progress,
) -> Result<CopyReport> {
    let existing = dst.snapshots()?;
    let mut report = CopyReport::default();
    let mut copier = Copier {
        src,
        dst,
        writer: BlobWriter::new(dst),
        chunks: HashMap::new(),
        trees: HashMap::new(),
        earlier: ChunkMap::load(dst.cache_dir(), &src.config().id),
        chunks_read: 0,
        source_requests: 0,
    };
    let (skipped, to_copy): (Vec<&Snapshot>, Vec<&Snapshot>) =
        snapshots.iter().partition(|s| has_copy(&existing, s));
    report.skipped = skipped.iter().map(|s| s.id.to_hex()).collect();
    let mut slices = slices_to_copy(src, dst, snapshots)?;
    let roots: Vec<TreeId> = to_copy.iter().map(|s| s.tree).collect();
    let slice_chunks: Vec<ChunkId> = slices.iter().flat_map(|s| s.chunks.clone()).collect();
    copier.prefetch(&roots, &slice_chunks)?;
    let mut pending = Vec::new();
    progress.set_unit("snapshots");
    progress.set_totals(to_copy.len() as u64, 0);
    for s in to_copy {
        ctx.check()?;
        let root = copier.tree(s.tree)?;
        pending.push((s, root));
        progress.done(1, 0);
    }
    ctx.check()?;
    for slice in &mut slices {
        for c in &mut slice.chunks {
            *c = copier.chunk(*c)?;
        }
    }
    // Every pack and segment is durable before the first snapshot object names them.
    let stats = copier.writer.finish()?;
    report.blobs_added = stats.blobs;
    report.bytes_added = stats.pack_bytes;
    report.chunks_read = copier.chunks_read;
    report.source_requests = copier.source_requests;
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
    Ok(crate::mongo::oplog::load_slices(src)?
        .into_iter()
        .filter(|s| oldest.get(s.source.as_str()).is_some_and(|t| s.until > *t))
        .filter(|s| !have.contains(&s.id))
        .collect())
}

/// Chunks of one run, opened: (source id, plaintext).
type Opened = Vec<(ChunkId, Vec<u8>)>;

/// Fetches one run of nearby chunks with a single range request and opens each chunk.
fn read_run(src: &Repository, run: &[(ChunkId, BlobLocation)]) -> Result<Opened> {
    let Some((_, first)) = run.first() else {
        return Ok(Vec::new());
    };
    let (start, len) = span(run, |(_, l)| l);
    let bytes = src
        .backend()
        .get_range(&pack_path(&first.pack), start, len)?;
    run.iter()
        .map(|(id, loc)| {
            let from = (loc.offset - start) as usize;
            let sealed = bytes.get(from..from + loc.length as usize).ok_or_else(|| {
                Error::corrupt(
                    format!("pack {}", loc.pack.short()),
                    "range read came back short",
                )
            })?;
            let data = src.open_blob(BlobKind::Data, &BlobId::from(*id), sealed, loc)?;
            Ok((*id, data))
        })
        .collect()
}
