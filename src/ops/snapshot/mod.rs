//! `repo snapshot`: the backup pipeline. This function owns every thread and channel.
//!
//! ```text
//!  walker ──events (ordered)──────────────────────────────▶ assembler (caller's thread)
//!    │                                                         ▲      │ trees
//!    └─file jobs─▶ chunkers ×N ──file results (by seq)─────────┘      ▼
//!                     │ new chunks                              sealers ×N ──▶ packer
//!                     └──────────────────────────────────────────▶ (compress+encrypt)  (packs → backend,
//!                                                                                   segments → index)
//! ```
//! Channels are bounded, so memory stays flat whatever the input size. The assembler
//! consumes walker events in order and waits for each file's result by sequence number, so
//! trees (and their ids) never depend on thread timing. The snapshot object is written only
//! after the packer has made every pack and segment durable.

mod parent;
mod walk;

pub use parent::ParentChoice;
pub use walk::SOCKET_SKIPPED;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::blob::{self, BlobKind};
use crate::chunk::Chunker;
use crate::error::{Error, Result};
use crate::id::{BlobId, ChunkId, SnapshotId, TreeId};
use crate::packer::{PackStore, Packer, PackerStats};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::selection::SeriesKey;
use crate::snapshot::{Skipped, Snapshot, Source, Summary, SNAPSHOT_VERSION};
use crate::source::exclude::{ExcludeSettings, Excluder};
use crate::source::VirtualSource;
use crate::tree::{self, Node, Tree};

use parent::PrevDir;
use walk::{Event, FileJob, WalkContext};

/// What to back up and how to label it.
#[derive(Clone, Debug, Default)]
pub struct SnapshotOptions {
    /// Paths to back up.
    pub paths: Vec<PathBuf>,
    /// Tags to attach.
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    pub host: Option<String>,
    /// Worker threads per parallel stage (default: available cores).
    pub threads: Option<usize>,
    /// Which snapshot to compare against.
    pub parent: ParentChoice,
    /// What to leave out.
    pub excludes: ExcludeSettings,
    /// Recorded for snapshots that hold MongoDB collections.
    pub mongodb: Option<crate::snapshot::MongoRecord>,
}

/// A new blob on its way to the sealers.
struct SealJob {
    kind: BlobKind,
    id: BlobId,
    data: Vec<u8>,
}

/// A sealed blob on its way to the packer.
struct Sealed {
    kind: BlobKind,
    id: BlobId,
    bytes: Vec<u8>,
    raw_len: u32,
}

/// A chunker's answer for one file: its chunks, the bytes read, and whether it changed
/// while being read.
struct FileDone {
    seq: u64,
    result: std::result::Result<(Vec<ChunkId>, u64, bool), String>,
}

/// Blob ids this run is storing that the index does not list yet, so a chunk seen twice
/// is sealed once. Ids leave once their segment is in the index, so the set stays bounded
/// by what is in flight, not by the size of the backup.
type Seen = Mutex<HashSet<BlobId>>;

/// Claims a blob for storing: false when the index or this run already has it.
///
/// Checks the set before the index, while the pack store adds to the index before it
/// removes from the set: an id is always in at least one of the two places we look.
fn claim(repo: &Repository, seen: &Seen, kind: BlobKind, id: BlobId) -> Result<bool> {
    if seen.lock().unwrap_or_else(|p| p.into_inner()).contains(&id) {
        return Ok(false);
    }
    if repo.index()?.contains(kind, &id)? {
        return Ok(false);
    }
    Ok(seen.lock().unwrap_or_else(|p| p.into_inner()).insert(id))
}

/// Runs a backup of `opts.paths` and writes the snapshot object.
pub fn run(repo: &Repository, opts: &SnapshotOptions, progress: Arc<Progress>) -> Result<Snapshot> {
    run_with(repo, opts, &[], progress)
}

/// Runs a backup of `opts.paths` and of `virtual_sources` (databases) into one snapshot.
pub fn run_with(
    repo: &Repository,
    opts: &SnapshotOptions,
    virtual_sources: &[&dyn VirtualSource],
    progress: Arc<Progress>,
) -> Result<Snapshot> {
    let started = Instant::now();
    let time = chrono::Utc::now();
    let sources = if opts.paths.is_empty() && !virtual_sources.is_empty() {
        Vec::new()
    } else {
        walk::prepare_sources(&opts.paths)?
    };
    if sources.iter().any(|p| {
        virtual_sources
            .iter()
            .any(|v| p.starts_with(Path::new("/").join(v.root())))
    }) {
        return Err(Error::Invalid(
            "a path under /mongodb cannot be backed up together with a database: the snapshot keeps collections there".into(),
        ));
    }
    let excluder = Excluder::new(&opts.excludes)?;
    repo.index()?; // open and sync before threads start, so errors surface here
    let budget = repo.quota_headroom()?;
    let host = opts.host.clone().unwrap_or_else(crate::sysinfo::hostname);
    let mut paths: Vec<String> = sources.iter().map(|p| p.display().to_string()).collect();
    paths.extend(virtual_sources.iter().map(|v| v.description()));
    let mut kinds: Vec<&str> = Vec::new();
    if !sources.is_empty() {
        kinds.push("files");
    }
    kinds.extend(virtual_sources.iter().map(|v| v.kind()));
    let kind = kinds.join("+");
    let series = SeriesKey {
        host: host.clone(),
        source: kind.clone(),
        paths: paths.clone(),
    };
    let parent = parent::find(repo, &opts.parent, &series)?;
    let ctx = WalkContext {
        repo,
        excluder: &excluder,
        parent_root: parent.as_ref().and_then(|p| PrevDir::load(repo, p.tree)),
        virtual_sources,
        time: crate::tree::Timestamp {
            sec: time.timestamp(),
            nsec: time.timestamp_subsec_nanos(),
        },
    };
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let chunkers = (
        Chunker::new(repo.config().chunker_files, repo.key().chunker_seed()),
        Chunker::new(repo.config().chunker_bson, repo.key().chunker_seed()),
    );
    let seen: Seen = Mutex::new(HashSet::new());

    let (ev_tx, ev_rx) = bounded::<Event>(4096);
    // Jobs carry open files: the bound also bounds open descriptors.
    let (job_tx, job_rx) = bounded::<FileJob>(128);
    let (done_tx, done_rx) = unbounded::<FileDone>();
    let (seal_tx, seal_rx) = bounded::<SealJob>(2 * threads);
    let (sealed_tx, sealed_rx) = bounded::<Sealed>(2 * threads);

    let outcome = std::thread::scope(|s| {
        let walker = {
            let progress = progress.clone();
            let (sources, ctx) = (&sources, &ctx);
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn_scoped(s, move || {
                    walk::walk(ctx, sources, &ev_tx, &job_tx, &progress)
                })
                .map_err(|e| Error::io("starting walker thread", e))?
        };
        for _ in 0..threads {
            let (job_rx, done_tx, seal_tx) = (job_rx.clone(), done_tx.clone(), seal_tx.clone());
            let (seen, progress) = (&seen, progress.clone());
            s.spawn(move || {
                chunk_files(repo, chunkers, seen, &job_rx, &done_tx, &seal_tx, &progress)
            });
        }
        drop((job_rx, done_tx));
        for _ in 0..threads {
            let (seal_rx, sealed_tx) = (seal_rx.clone(), sealed_tx.clone());
            s.spawn(move || seal_blobs(repo, &seal_rx, &sealed_tx));
        }
        drop((seal_rx, sealed_tx));
        // A rendezvous channel: the next pack fills while the store uploads (at most the
        // backend's `parallel_puts`); no more packs wait in memory (RSS).
        let (pack_tx, pack_rx) = bounded(0);
        let packer = s.spawn(move || -> Result<PackerStats> {
            let mut packer = Packer::queued(repo, pack_tx).with_budget(budget);
            for b in sealed_rx {
                packer.add(b.kind, b.id, &b.bytes, b.raw_len)?;
            }
            packer.finish()
        });
        let seen_ref = &seen;
        let store = s.spawn(move || -> Result<u64> {
            let mut store = PackStore::new(repo).on_indexed(move |packs| {
                let mut seen = seen_ref.lock().unwrap_or_else(|p| p.into_inner());
                for e in packs.iter().flat_map(|p| &p.entries) {
                    seen.remove(&e.id);
                }
            });
            for p in pack_rx {
                store.store(p)?;
            }
            store.finish()
        });

        let assembled = assemble(
            repo,
            &seen,
            ev_rx,
            done_rx,
            seal_tx,
            ctx.parent_root.clone(),
        );
        let walked = walker
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid("walker thread panicked".into())));
        let packed = packer
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid("packer thread panicked".into())));
        let stored = store
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid("pack store thread panicked".into())));
        // The store's error (e.g. a failed write) is the root cause when stages stop early,
        // then the packer's (e.g. the quota).
        let segments = stored?;
        let mut pack_stats = packed?;
        pack_stats.segments = segments;
        let walk_stats = walked?;
        let (root, mut summary) = assembled?;
        summary.files_removed = walk_stats.files_removed;
        Ok::<_, Error>((root, summary_with(&mut summary, pack_stats)))
    });
    let (root, mut summary) = outcome?;
    // A database that could not be read completely is a failed backup, not a snapshot
    // with a hole: a restore from it would silently lose a collection.
    for v in virtual_sources {
        let prefix = format!("/{}/", v.root());
        if let Some(s) = summary.skipped.iter().find(|s| s.path.starts_with(&prefix)) {
            return Err(Error::Source(format!(
                "reading {} failed: {}; no snapshot was written",
                s.path, s.error
            )));
        }
    }
    // Whatever a source cannot read back from this tree must not become a snapshot.
    for v in virtual_sources {
        v.verify(repo, root)?;
    }
    summary.duration_secs = started.elapsed().as_secs_f64();
    let snap = Snapshot {
        version: SNAPSHOT_VERSION,
        id: SnapshotId::random(),
        time,
        host,
        user: crate::sysinfo::username(),
        source: Source {
            kind,
            description: paths.join(" "),
        },
        paths,
        tags: opts.tags.clone(),
        parent: parent.map(|p| p.id),
        tree: root,
        summary,
        excludes: opts.excludes.clone(),
        mongodb: opts.mongodb.clone(),
        repaired: None,
    };
    crate::failpoint::hit("snapshot-before-commit");
    repo.save_snapshot(&snap)?;
    Ok(snap)
}

fn summary_with(summary: &mut Summary, p: PackerStats) -> Summary {
    summary.blobs_added = p.blobs;
    summary.bytes_added_raw = p.raw_bytes;
    summary.bytes_added = p.pack_bytes;
    summary.packs_written = p.packs;
    std::mem::take(summary)
}

/// Chunker stage: read each file, cut and hash chunks, hand new ones to the sealers.
fn chunk_files(
    repo: &Repository,
    chunkers: (Chunker, Chunker),
    seen: &Seen,
    jobs: &Receiver<FileJob>,
    done: &Sender<FileDone>,
    seal: &Sender<SealJob>,
    progress: &Progress,
) {
    for job in jobs {
        let seq = job.seq;
        let chunker = if job.small_chunks {
            chunkers.1
        } else {
            chunkers.0
        };
        let result = chunk_one(repo, chunker, seen, job, seal, progress);
        let result = match result {
            Ok(r) => Ok(r),
            Err(ChunkError::Stopped) => return,
            Err(ChunkError::Failed(e)) => Err(e),
        };
        progress.done(1, 0);
        if done.send(FileDone { seq, result }).is_err() {
            return;
        }
    }
}

enum ChunkError {
    /// The pipeline is shutting down.
    Stopped,
    /// This file could not be read; the snapshot goes on without it.
    Failed(String),
}

fn chunk_one(
    repo: &Repository,
    chunker: Chunker,
    seen: &Seen,
    job: FileJob,
    seal: &Sender<SealJob>,
    progress: &Progress,
) -> std::result::Result<(Vec<ChunkId>, u64, bool), ChunkError> {
    let failed = |e: &dyn std::fmt::Display| ChunkError::Failed(e.to_string());
    let mut expect = None;
    let file: Box<dyn std::io::Read + Send> = match (job.file, job.open) {
        (Some((f, e)), _) => {
            let handle = f.try_clone().map_err(|e| failed(&e))?;
            expect = Some((handle, e));
            Box::new(f)
        }
        (None, Some(open)) => open().map_err(|e| failed(&e))?,
        (None, None) => return Err(ChunkError::Failed("nothing to read".into())),
    };
    let mut ids = Vec::new();
    let mut read = 0u64;
    for chunk in chunker.chunks_with_hint(file, job.size_hint) {
        let data = chunk.map_err(|e| failed(&e))?;
        read += data.len() as u64;
        progress.bytes.fetch_add(data.len() as u64, Relaxed);
        let id = repo.hasher().chunk_id(&data);
        ids.push(id);
        let is_new = claim(repo, seen, BlobKind::Data, id.into()).map_err(|e| failed(&e))?;
        if is_new {
            let job = SealJob {
                kind: BlobKind::Data,
                id: id.into(),
                data,
            };
            seal.send(job).map_err(|_| ChunkError::Stopped)?;
        }
    }
    // Written to while we read: what we stored may mix old and new bytes. Say so.
    let changed = expect.is_some_and(|(f, e)| {
        read != e.size || crate::dirfd::fstat(&f).map_or(true, |now| walk::Expect::of(&now) != e)
    });
    Ok((ids, read, changed))
}

/// Sealer stage: compress and encrypt.
fn seal_blobs(repo: &Repository, jobs: &Receiver<SealJob>, out: &Sender<Sealed>) {
    let level = repo.config().compression_level;
    for job in jobs {
        let bytes = blob::seal(repo.key(), &job.data, level);
        let sealed = Sealed {
            kind: job.kind,
            id: job.id,
            bytes,
            raw_len: job.data.len() as u32,
        };
        if out.send(sealed).is_err() {
            return;
        }
    }
}

/// One directory being assembled: its own node (none for the root), its children, and the
/// parent snapshot's version of it.
struct Frame {
    node: Option<Node>,
    children: Vec<Node>,
    prev: Option<PrevDir>,
}

/// Assembler: turns ordered walker events plus file results into trees, bottom-up.
fn assemble(
    repo: &Repository,
    seen: &Seen,
    events: Receiver<Event>,
    done: Receiver<FileDone>,
    seal: Sender<SealJob>,
    parent_root: Option<PrevDir>,
) -> Result<(TreeId, Summary)> {
    let aborted = || Error::Invalid("backup pipeline stopped early".into());
    let mut summary = Summary::default();
    let mut stack = vec![Frame {
        node: None,
        children: Vec::new(),
        prev: parent_root,
    }];
    let mut waiting: HashMap<u64, FileDone> = HashMap::new();
    for ev in events {
        match ev {
            Event::Enter(node, prev) => stack.push(Frame {
                node: Some(node),
                children: Vec::new(),
                prev,
            }),
            Event::Leave => {
                let frame = stack.pop().ok_or_else(aborted)?;
                let id = store_tree(repo, seen, &seal, frame.children, frame.prev)?;
                let mut node = frame.node.ok_or_else(aborted)?;
                node.subtree = Some(id);
                summary.dirs += 1;
                stack.last_mut().ok_or_else(aborted)?.children.push(node);
            }
            Event::Leaf(node) => {
                summary.others += 1;
                stack.last_mut().ok_or_else(aborted)?.children.push(node);
            }
            Event::Skipped(s) => summary.skipped.push(s),
            Event::Unchanged(node) => {
                summary.files_unchanged += 1;
                summary.total_bytes += node.size;
                stack.last_mut().ok_or_else(aborted)?.children.push(node);
            }
            Event::File(seq, path, mut node, existed) => {
                let result = loop {
                    if let Some(d) = waiting.remove(&seq) {
                        break d.result;
                    }
                    let d = done.recv().map_err(|_| aborted())?;
                    waiting.insert(d.seq, d);
                };
                match result {
                    Ok((chunks, size, changed)) => {
                        if changed {
                            summary.changed_during_read.push(path.display().to_string());
                        }
                        node.content = chunks;
                        node.size = size;
                        if existed {
                            summary.files_changed += 1;
                        } else {
                            summary.files_new += 1;
                        }
                        summary.total_bytes += size;
                        summary.bytes_read += size;
                        stack.last_mut().ok_or_else(aborted)?.children.push(node);
                    }
                    Err(error) => summary.skipped.push(Skipped {
                        path: path.display().to_string(),
                        error,
                    }),
                }
            }
        }
    }
    if stack.len() != 1 {
        return Err(aborted());
    }
    let root = stack.pop().ok_or_else(aborted)?;
    let id = store_tree(repo, seen, &seal, root.children, root.prev)?;
    Ok((id, summary))
}

/// Encodes a directory and queues it for storing unless an identical tree exists. A
/// directory equal to the parent snapshot's reuses its id without encoding.
fn store_tree(
    repo: &Repository,
    seen: &Seen,
    seal: &Sender<SealJob>,
    nodes: Vec<Node>,
    prev: Option<PrevDir>,
) -> Result<TreeId> {
    let mut t = Tree { nodes };
    t.sort();
    if let Some(p) = prev {
        if p.tree.nodes == t.nodes {
            return Ok(p.id);
        }
    }
    let enc = tree::encode(&t);
    let id = repo.hasher().tree_id(&enc);
    if claim(repo, seen, BlobKind::Tree, id.into())? {
        seal.send(SealJob {
            kind: BlobKind::Tree,
            id: id.into(),
            data: enc,
        })
        .map_err(|_| Error::Invalid("backup pipeline stopped early".into()))?;
    }
    Ok(id)
}
