//! `repo snapshot`: the backup pipeline. [`run_stages`] owns every thread and channel.
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

mod ahead;
mod assemble;
mod dirsig;
mod dry_run;
mod parent;
mod stages;
mod walk;

pub use dry_run::DryRunReport;
pub use parent::ParentChoice;
pub use walk::SOCKET_SKIPPED;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use serde::{Deserialize, Serialize};

use crate::blob::BlobKind;
use crate::chunk::{Chunker, FileChunkers};
use crate::error::{Error, Result};
use crate::id::{BlobId, ChunkId, SnapshotId, TreeId};
use crate::mongo::uri::ConnectionString;
use crate::ops::context::{CancelToken, Ctx, Phase};
use crate::packer::{PackStore, Packer, PackerStats};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::selection::SeriesKey;
use crate::snapshot::{Snapshot, Source, Summary, SNAPSHOT_VERSION};
use crate::source::exclude::{ExcludeSettings, Excluder};
use crate::source::VirtualSource;
use crate::writer::Claims;

use crate::unit::{Grouper, SealedUnit};
use parent::PrevDir;
use stages::{chunk_files, seal_blobs, FileDone, SealJob, Stages};
use walk::{Event, FileJob, WalkContext};

/// A MongoDB server whose collections a snapshot holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoSourceRequest {
    /// The server (credentials are used to connect, never stored).
    pub uri: ConnectionString,
    /// Only these databases (empty: all but admin, local and config).
    #[serde(default)]
    pub dbs: Vec<String>,
    /// Only these namespaces, "db.coll" (empty: every collection of those databases).
    #[serde(default)]
    pub collections: Vec<String>,
}

/// `snapshot`: what to back up and how to label it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotRequest {
    /// Files and directories to back up.
    pub paths: Vec<PathBuf>,
    /// A MongoDB server to back up (alone or with the paths).
    pub mongodb: Option<MongoSourceRequest>,
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
    /// Files of more exclude patterns, one per line (read when the verb runs).
    pub exclude_files: Vec<PathBuf>,
}

/// What a run works from once its request is resolved: the exclusions with the exclude
/// files read, and the MongoDB source connected and planned.
struct Job<'a> {
    req: &'a SnapshotRequest,
    excludes: ExcludeSettings,
    mongodb: Option<crate::snapshot::MongoRecord>,
    virtual_sources: Vec<&'a dyn VirtualSource>,
}

/// The run's claims on new blobs (see [`Claims`]).
type Seen = Claims;

/// Backs up `req.paths` and the MongoDB server of `req.mongodb` into one snapshot, under
/// the shared lock, and returns it (its `summary` lists what could not be read). The
/// server is reached (and a bad address or password refused) before the repository is
/// touched. Cancelled (`ctx`), it stops reading, writes no snapshot, releases its lock
/// and returns [`Error::Cancelled`]; what it stored meanwhile is unreferenced until a prune.
///
/// A database that moved while it was read ([`Error::Moved`]) is read again from the
/// start, at most [`MOVED_ATTEMPTS`] times in all.
pub fn run(repo: &Repository, req: &SnapshotRequest, ctx: &Ctx) -> Result<Snapshot> {
    let mut attempt = 1;
    loop {
        let result = with_job(req, ctx, |job| {
            let _lock = repo.lock_for(crate::lock::LockKind::Shared, "snapshot", ctx)?;
            let progress = ctx.phase(Phase::BackingUp);
            let result = pipeline(repo, job, ctx, progress);
            ctx.phase_done(Phase::BackingUp);
            result
        });
        match result {
            Err(Error::Moved(why)) if attempt < MOVED_ATTEMPTS && !ctx.cancelled() => {
                attempt += 1;
                ctx.note(format!(
                    "{why}; reading again (attempt {attempt} of {MOVED_ATTEMPTS})"
                ));
                std::thread::sleep(std::time::Duration::from_millis(250 * u64::from(attempt)));
            }
            result => return result,
        }
    }
}

/// How many times a snapshot reads a database that keeps moving under it.
pub const MOVED_ATTEMPTS: u32 = 6;

/// `snapshot --dry-run`: what [`run`] would read, with the same sources, exclusions and
/// parent, without reading any content or writing anything (no lock).
pub fn dry_run(repo: &Repository, req: &SnapshotRequest, ctx: &Ctx) -> Result<DryRunReport> {
    with_job(req, ctx, |job| dry_run::run(repo, job, ctx))
}

/// Resolves `req` (exclude files read, the MongoDB server reached and planned) and calls
/// `f` with it.
fn with_job<T>(req: &SnapshotRequest, ctx: &Ctx, f: impl FnOnce(&Job) -> Result<T>) -> Result<T> {
    if req.paths.is_empty() && req.mongodb.is_none() {
        return Err(Error::Invalid(
            "nothing to back up: give paths or a MongoDB connection string".into(),
        ));
    }
    let mut excludes = req.excludes.clone();
    for f in &req.exclude_files {
        excludes.add_file(f)?;
    }
    let mongo = req.mongodb.as_ref().map(mongo_source).transpose()?;
    let mut job = Job {
        req,
        excludes,
        mongodb: None,
        virtual_sources: Vec::new(),
    };
    #[cfg(feature = "mongo")]
    if let Some(m) = &mongo {
        let record = m.record();
        if record.consistency != "snapshot" {
            ctx.note(format!(
                "{} is not a replica set: each collection is consistent on its own, not \
                 across collections",
                record.uri
            ));
        }
        for ns in m.left_out() {
            ctx.note(format!("{ns} is managed by the server and not backed up"));
        }
        for db in m.empty_databases() {
            let what = match db.as_str() {
                "" => "the server has no databases".to_string(),
                db => format!("database {db} has no collections"),
            };
            ctx.note(format!(
                "{}: {what}: saved empty (restore --at rolls forward what is created later)",
                record.uri
            ));
        }
        job.mongodb = Some(record);
        job.virtual_sources.push(m);
    }
    f(&job)
}

#[cfg(feature = "mongo")]
fn mongo_source(m: &MongoSourceRequest) -> Result<crate::mongo::export::MongoBackup> {
    let sel = crate::mongo::export::MongoSelection {
        dbs: m.dbs.clone(),
        collections: m.collections.clone(),
    };
    crate::mongo::export::MongoBackup::new(m.uri.expose(), &sel)
}

#[cfg(not(feature = "mongo"))]
fn mongo_source(_: &MongoSourceRequest) -> Result<std::convert::Infallible> {
    Err(Error::Invalid(
        "this build has no MongoDB support (feature mongo)".into(),
    ))
}

/// What a run works on before any thread starts: the sources in tree order, the
/// exclusions, the series (host, kind, paths) and its parent snapshot.
struct Prepared {
    sources: Vec<PathBuf>,
    excluder: Excluder,
    time: chrono::DateTime<chrono::Utc>,
    host: String,
    paths: Vec<String>,
    kind: String,
    parent: Option<Snapshot>,
}

fn prepare(repo: &Repository, job: &Job, ctx: &Ctx) -> Result<Prepared> {
    let (opts, virtual_sources) = (job.req, job.virtual_sources.as_slice());
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
    let excluder = Excluder::new(&job.excludes)?;
    repo.index()?; // open and sync before threads start, so errors surface here
    let host = opts.host.clone().unwrap_or_else(crate::sysinfo::hostname);
    let mut paths: Vec<String> = sources.iter().map(|p| crate::tree::path::text(p)).collect();
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
    if let Some(p) = &parent {
        for v in virtual_sources {
            if let Some(note) = v.use_parent(repo, p) {
                ctx.note(format!("{}: {note}", v.kind()));
            }
        }
    }
    Ok(Prepared {
        sources,
        excluder,
        time,
        host,
        paths,
        kind,
        parent,
    })
}

impl Prepared {
    fn walk_context<'a>(
        &'a self,
        repo: &'a Repository,
        job: &'a Job,
        cancel: CancelToken,
    ) -> WalkContext<'a> {
        WalkContext {
            repo,
            cancel,
            excluder: &self.excluder,
            parent_root: self
                .parent
                .as_ref()
                .and_then(|p| PrevDir::load(repo, p.tree)),
            virtual_sources: job.virtual_sources.as_slice(),
            time: crate::tree::Timestamp {
                sec: self.time.timestamp(),
                nsec: self.time.timestamp_subsec_nanos(),
            },
            prefetch: true,
            parallel_stat: true,
        }
    }
}

fn pipeline(repo: &Repository, job: &Job, run: &Ctx, progress: Arc<Progress>) -> Result<Snapshot> {
    let started = Instant::now();
    let prepared = prepare(repo, job, run)?;
    let outcome = run_stages(repo, job, run, progress, &prepared);
    if run.cancelled() {
        return Err(Error::Cancelled(": no snapshot was written".into()));
    }
    let (root, mut summary) = outcome?;
    summary.duration_secs = started.elapsed().as_secs_f64();
    commit(repo, job, run, &prepared, root, summary)
}

/// Runs every stage on its threads until the walk is done and every pack and segment is
/// durable; returns the root tree and the summary.
fn run_stages(
    repo: &Repository,
    job: &Job,
    run: &Ctx,
    progress: Arc<Progress>,
    prepared: &Prepared,
) -> Result<(TreeId, Summary)> {
    let budget = repo.quota_headroom()?;
    let mut ctx = prepared.walk_context(repo, job, run.token().clone());
    let sources = &prepared.sources;
    let threads = job
        .req
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    ctx.parallel_stat = threads > 1;
    let chunkers = (
        repo.config().file_chunkers(repo.key().chunker_seed()),
        Chunker::new(repo.config().chunker_bson, repo.key().chunker_seed()),
    );
    let seen = Claims::default();

    // Both travel in batches (walk/mod.rs): 16 × 512 events, 4 × 16 files.
    let (ev_tx, ev_rx) = bounded::<Vec<Event>>(16);
    // Jobs carry open files: the bound also bounds open descriptors.
    let (job_tx, job_rx) = bounded::<Vec<FileJob>>(4);
    let (done_tx, done_rx) = unbounded::<Vec<FileDone>>();
    let (seal_tx, seal_rx) = bounded::<Vec<SealJob>>(2 * threads);
    let (sealed_tx, sealed_rx) = bounded::<SealedUnit>(2 * threads);

    std::thread::scope(|s| {
        let walker = {
            let progress = progress.clone();
            let ctx = &ctx;
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn_scoped(s, move || {
                    let out = walk::WalkOutput {
                        events: &ev_tx,
                        jobs: &job_tx,
                    };
                    walk::walk(ctx, sources, out, &progress)
                })
                .map_err(|e| Error::io("starting walker thread", e))?
        };
        for _ in 0..threads {
            let (job_rx, done_tx, seal_tx) = (job_rx.clone(), done_tx.clone(), seal_tx.clone());
            let (seen, progress, cancel) = (&seen, progress.clone(), run.token().clone());
            s.spawn(move || {
                let stages = Stages {
                    repo,
                    seen,
                    progress: &progress,
                    cancel: &cancel,
                };
                chunk_files(&stages, chunkers, &job_rx, &done_tx, &seal_tx)
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
                packer.add_unit(&b)?;
            }
            packer.finish()
        });
        let seen_ref = &seen;
        let store = s.spawn(move || -> Result<u64> {
            let mut store = PackStore::new(repo).on_indexed(move |packs| seen_ref.indexed(packs));
            for p in pack_rx {
                store.store(p)?;
            }
            store.finish()
        });

        let assembled = assemble::assemble(
            repo,
            run,
            &seen,
            ev_rx,
            done_rx,
            seal_tx,
            ctx.parent_root.clone(),
        );
        let joined = |what: &str| Error::Internal(format!("{what} thread panicked"));
        let walked = walker.join().unwrap_or_else(|_| Err(joined("walker")));
        let packed = packer.join().unwrap_or_else(|_| Err(joined("packer")));
        let stored = store.join().unwrap_or_else(|_| Err(joined("pack store")));
        // The store's error (e.g. a failed write) is the root cause when stages stop early,
        // then the packer's (e.g. the quota).
        let segments = stored?;
        let mut pack_stats = packed?;
        pack_stats.segments = segments;
        let walk_stats = walked?;
        let (root, mut summary) = assembled?;
        summary.files_removed = walk_stats.files_removed;
        Ok((root, summary_with(&mut summary, pack_stats)))
    })
}

/// Checks what the stages made and writes the snapshot object: the only write that makes
/// the backup visible.
fn commit(
    repo: &Repository,
    job: &Job,
    run: &Ctx,
    prepared: &Prepared,
    root: TreeId,
    summary: Summary,
) -> Result<Snapshot> {
    let virtual_sources = job.virtual_sources.as_slice();
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
        if let Some(note) = v.verify(repo, root)? {
            run.note(format!("{}: {note}", v.kind()));
        }
    }
    let snap = Snapshot {
        version: SNAPSHOT_VERSION,
        id: SnapshotId::random(),
        time: prepared.time,
        host: prepared.host.clone(),
        user: crate::sysinfo::username(),
        source: Source {
            kind: prepared.kind.clone(),
            description: prepared.paths.join(" "),
        },
        paths: prepared.paths.clone(),
        tags: job.req.tags.clone(),
        parent: prepared.parent.as_ref().map(|p| p.id),
        tree: root,
        summary,
        excludes: job.excludes.clone(),
        mongodb: job.mongodb.clone(),
        repaired: None,
    };
    crate::failpoint::hit("snapshot-before-commit");
    run.check()?;
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
