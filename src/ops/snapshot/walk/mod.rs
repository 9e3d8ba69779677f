//! The walker stage: a depth-first walk that emits ordered events for the assembler and
//! file jobs for the chunkers. Source paths are stored under their full absolute path, so
//! several sources merge into one root without name clashes. With a parent snapshot the
//! walker compares each entry with the parent's and sends only changed files to be read.
//!
//! The walk holds each directory open and looks at its entries through that descriptor
//! ([`crate::dirfd`]): an entry is stat'ed, then opened with `O_NOFOLLOW | O_NONBLOCK`,
//! and the open file must be the one stat'ed. A file swapped for a symlink or a FIFO
//! between the two is skipped with a warning, never read through the link or waited on.
//! `sources.rs`: the source paths, their ancestors and the virtual sources (databases).

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crossbeam_channel::Sender;

mod sources;

pub(super) use sources::prepare_sources;

use super::ahead::{probe, Ahead, Here, Opened, Probe, Slice};
use super::dirsig;
use super::parent::{content_unchanged, count_files, PrevDir};
use crate::dirfd;
use crate::error::Result;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::Skipped;
use crate::source::exclude::Excluder;
use crate::source::fs::{
    file_unchanged, kind_of_meta, node_from_meta, node_without_xattrs, read_xattrs_of, OwnerNames,
};
use crate::source::VirtualSource;
use crate::tree::{Node, NodeKind};

/// One step of the walk, in tree order.
pub(super) enum Event {
    /// A directory starts; its children follow until the matching `Leave`. Carries the
    /// parent snapshot's version of the directory, if any.
    Enter(Node, Option<PrevDir>),
    /// The innermost open directory is complete.
    Leave,
    /// A non-file, non-directory entry.
    Leaf(Node),
    /// A regular file whose content job has sequence number `.0`; `.3` says whether the
    /// parent snapshot had a file at this path.
    File(u64, PathBuf, Node, bool),
    /// A regular file unchanged since the parent snapshot, its content already filled in.
    Unchanged(Node),
    /// Something that could not be read.
    Skipped(Skipped),
    /// A directory holding exactly its parent snapshot version's entries, all regular
    /// files unchanged (`.2` of them, `.3` bytes): its tree is the parent's, id `.1`. One
    /// event instead of a node per file, and no parent tree held in the queue.
    SameDir(Node, crate::id::TreeId, u64, u64),
}

/// What a file looked like when the walker planned it: size, mtime and ctime, compared
/// again after reading to report files that changed while being read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Expect {
    pub size: u64,
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
}

impl Expect {
    pub fn of(st: &dirfd::Meta) -> Self {
        Self {
            size: st.size,
            mtime: st.mtime,
            ctime: st.ctime,
        }
    }
}

/// The message of a socket left out of a snapshot.
pub const SOCKET_SKIPPED: &str = "a socket: cannot be backed up or restored (left out)";

/// A file for the chunkers.
pub(super) struct FileJob {
    pub seq: u64,
    /// The file, opened and checked by the walker.
    pub file: Option<(std::fs::File, Expect)>,
    /// Content that is not a file on disk (a database collection).
    pub open: Option<crate::source::Opener>,
    /// Cut with the small-chunk (BSON stream) parameters.
    pub small_chunks: bool,
    /// Expected length (0 when unknown), so small files are read in one exact buffer.
    pub size_hint: u64,
}

/// What the walk found besides its events.
#[derive(Default)]
pub(super) struct WalkStats {
    /// Files in the parent snapshot that are gone (or now excluded).
    pub files_removed: u64,
}

/// Everything the walker reads besides the file system.
pub(super) struct WalkContext<'a> {
    pub repo: &'a Repository,
    /// Stops the walk when cancelled.
    pub cancel: crate::ops::context::CancelToken,
    pub excluder: &'a Excluder,
    pub parent_root: Option<PrevDir>,
    /// Sources that are not directory trees, walked after the paths.
    pub virtual_sources: &'a [&'a dyn VirtualSource],
    /// Modification time recorded for virtual entries (the snapshot's time).
    pub time: crate::tree::Timestamp,
    /// Start reading small files' content as they are queued ([`dirfd::prefetch`]); off
    /// for a dry run, which reads no content.
    pub prefetch: bool,
    /// Stat large directories' entries on rayon's threads (off with `--threads 1`).
    pub parallel_stat: bool,
}

/// Events per message to the assembler, and at most how many files (or bytes of them) one
/// message to a chunker carries: a message per file would cost more than a tiny file's
/// whole work (channel hand-offs wake threads), so both travel in batches.
const EVENT_BATCH: usize = 512;
const JOB_BATCH_FILES: usize = 16;
const JOB_BATCH_BYTES: u64 = 1 << 20;

/// Messages from the walker: ordered events for the assembler, file jobs for the chunkers.
pub(super) struct WalkOutput<'a> {
    pub events: &'a Sender<Vec<Event>>,
    pub jobs: &'a Sender<Vec<FileJob>>,
}

struct Walker<'a> {
    ctx: &'a WalkContext<'a>,
    out: WalkOutput<'a>,
    /// Events not sent yet; sent after `jobs`, so the assembler never waits for a file
    /// whose job is still here.
    events: Vec<Event>,
    jobs: Vec<FileJob>,
    job_bytes: u64,
    progress: &'a Progress,
    /// Shared with the probes (a probe compares by digest, which names owners).
    owners: Arc<OwnerNames>,
    seq: u64,
    /// Device of the source path being walked (for `--one-file-system`).
    root_dev: u64,
    stats: WalkStats,
}

/// Signals that the rest of the pipeline has stopped.
struct Stopped;

impl Walker<'_> {
    fn emit(&mut self, ev: Event) -> std::result::Result<(), Stopped> {
        if self.ctx.cancel.is_cancelled() {
            return Err(Stopped);
        }
        self.events.push(ev);
        if self.events.len() >= EVENT_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Queues a file for the chunkers; `bytes` is its expected size (`u64::MAX`: unknown,
    /// sent at once).
    fn queue(&mut self, job: FileJob, bytes: u64) -> std::result::Result<(), Stopped> {
        self.jobs.push(job);
        self.job_bytes = self.job_bytes.saturating_add(bytes);
        if self.jobs.len() >= JOB_BATCH_FILES || self.job_bytes >= JOB_BATCH_BYTES {
            self.flush_jobs()?;
        }
        Ok(())
    }

    fn flush_jobs(&mut self) -> std::result::Result<(), Stopped> {
        self.job_bytes = 0;
        if self.jobs.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.jobs, Vec::with_capacity(JOB_BATCH_FILES));
        self.out.jobs.send(batch).map_err(|_| Stopped)
    }

    /// Sends what is queued: the jobs first, then the events that refer to them.
    fn flush(&mut self) -> std::result::Result<(), Stopped> {
        self.flush_jobs()?;
        if self.events.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.events, Vec::with_capacity(EVENT_BATCH));
        self.out.events.send(batch).map_err(|_| Stopped)
    }

    fn skip(&mut self, path: &Path, error: impl ToString) -> std::result::Result<(), Stopped> {
        self.emit(Event::Skipped(Skipped {
            path: crate::tree::path::text(path),
            error: error.to_string(),
        }))
    }

    fn visit(
        &mut self,
        dir: BorrowedFd<'_>,
        path: &Path,
        name: &[u8],
        prev: Option<&PrevDir>,
    ) -> std::result::Result<(), Stopped> {
        let st = dirfd::lstat_at(dir, OsStr::from_bytes(name));
        self.visit_stated(dir, path, name, prev, st, None)
    }

    /// Visits a directory opened (and listed, unless it is a mount point not to cross):
    /// whole with its parent version's tree id when every entry is that version's
    /// unchanged file, else entry by entry.
    fn visit_opened(
        &mut self,
        path: &Path,
        node: Node,
        o: Opened,
    ) -> std::result::Result<(), Stopped> {
        let Some(listed) = o.names else {
            // A mount point: kept as an empty directory, like tar does.
            self.emit(Event::Enter(node, o.sub.clone()))?;
            self.note_removed_children(o.sub.as_ref());
            return self.emit(Event::Leave);
        };
        let names = match listed {
            Ok(names) => names,
            Err(e) => {
                self.emit(Event::Enter(node, o.sub.clone()))?;
                self.skip(path, e)?;
                return self.emit(Event::Leave);
            }
        };
        let mut sub = o.sub;
        if let Some(same) = o.same {
            if !self.excludes_any(path, &names) {
                return self.same_dir(node, same.id, same.files, same.bytes);
            }
            // Entries excluded now: compared through the tree, which leaves them out.
            sub = PrevDir::load(self.ctx.repo, same.id);
        }
        if let (Some(p), Some(st)) = (sub.as_ref(), o.stats.as_ref()) {
            if let Some((files, bytes)) = self.same_files(path, &names, st, p) {
                // Compared through the tree: next time, by digest.
                if let Some((digest, _)) = dirsig::of_stats(&names, st, &self.owners) {
                    dirsig::keep(self.ctx.repo, &p.id, &digest);
                }
                return self.same_dir(node, p.id, files, bytes);
            }
        }
        self.emit(Event::Enter(node, sub.clone()))?;
        self.visit_listed(o.fd.as_fd(), path, sub.as_ref(), names, o.stats)?;
        self.emit(Event::Leave)
    }

    /// A directory unchanged as a whole: its parent version's tree `id`.
    fn same_dir(
        &mut self,
        node: Node,
        id: crate::id::TreeId,
        files: u64,
        bytes: u64,
    ) -> std::result::Result<(), Stopped> {
        self.progress.total_items.fetch_add(files, Relaxed);
        self.progress.done(files, 0);
        self.emit(Event::SameDir(node, id, files, bytes))
    }

    /// Whether an exclusion pattern now leaves out any of the files `names` in `path`.
    fn excludes_any(&self, path: &Path, names: &[std::ffi::OsString]) -> bool {
        self.ctx.excluder.has_patterns()
            && names
                .iter()
                .any(|n| self.ctx.excluder.excludes(&path.join(n), false))
    }

    /// Visits `name` in `dir`, stat'ed as `st` (`ahead`: the directory already probed).
    fn visit_stated(
        &mut self,
        dir: BorrowedFd<'_>,
        path: &Path,
        name: &[u8],
        prev: Option<&PrevDir>,
        st: std::io::Result<dirfd::Meta>,
        ahead: Option<Probe>,
    ) -> std::result::Result<(), Stopped> {
        let os_name = OsStr::from_bytes(name);
        let st = match st {
            Ok(st) => st,
            Err(e) => return self.skip(path, e),
        };
        let Some(kind) = kind_of_meta(&st) else {
            return self.skip(path, SOCKET_SKIPPED);
        };
        let before = prev.and_then(|p| p.get(name));
        // A directory probed ahead was found neither excluded nor marked before it was
        // opened (`visit_slice`'s plan): not asked twice.
        let vetted = ahead.is_some();
        if !vetted && self.ctx.excluder.excludes(path, kind == NodeKind::Dir) {
            self.note_removed(before);
            return Ok(());
        }
        if before.is_some_and(|b| b.kind != Some(kind)) {
            // Replaced by another kind of entry: the files that were there are gone.
            self.note_removed(before);
        }
        // A file's extended attributes are read below, through the file or from the
        // parent snapshot, not through a `/proc` path (the walk's costliest lookup).
        let built = if kind == NodeKind::File {
            node_without_xattrs(name, dir, &st, kind, &self.owners)
        } else {
            node_from_meta(name, dir, &st, kind, &self.owners)
        };
        let mut node = match built {
            Ok(n) => n,
            Err(e) => return self.skip(path, e),
        };
        match kind {
            NodeKind::Dir => {
                if !vetted && self.ctx.excluder.marked(path) {
                    self.note_removed(before);
                    return Ok(());
                }
                let crosses = self.ctx.excluder.crosses(st.dev, self.root_dev);
                let probed = ahead.unwrap_or_else(|| {
                    let here = Here {
                        repo: self.ctx.repo,
                        dir,
                        prev,
                        owners: &self.owners,
                    };
                    probe(&here, os_name, &st, !crosses, self.ctx.parallel_stat)
                });
                let opened = match probed {
                    Probe::Opened(o) => o,
                    Probe::Failed(e) => return self.skip(path, e),
                    Probe::Replaced => return self.skip(path, REPLACED),
                };
                self.visit_opened(path, node, opened)
            }
            NodeKind::File => {
                self.progress.total_items.fetch_add(1, Relaxed);
                if let Some(b) = before.filter(|b| content_unchanged(b, &node)) {
                    // Setting an extended attribute changes ctime, which `content_unchanged`
                    // compares: an unchanged file has its parent entry's attributes.
                    node.xattrs = b.xattrs.clone();
                    node.content = b.content.clone();
                    self.progress.done(1, 0);
                    return self.emit(Event::Unchanged(node));
                }
                // Opened here, through the directory we hold, and checked to be the file
                // just stat'ed: not a symlink, FIFO or device swapped in since.
                let file = match dirfd::open_read_at(dir, os_name) {
                    Ok(f) => f,
                    Err(e) => return self.skip(path, e),
                };
                if !dirfd::fstat(&file).is_ok_and(|now| now.same_file(&st)) {
                    return self.skip(path, REPLACED);
                }
                node.xattrs = read_xattrs_of(&file);
                if self.ctx.prefetch {
                    // Queued jobs' reads start now, in parallel, not one by one later.
                    dirfd::prefetch(&file, node.size);
                }
                self.seq += 1;
                self.progress.total_bytes.fetch_add(node.size, Relaxed);
                let job = FileJob {
                    seq: self.seq,
                    file: Some((file, Expect::of(&st))),
                    open: None,
                    small_chunks: false,
                    size_hint: node.size,
                };
                self.queue(job, node.size)?;
                let existed = before.is_some_and(|b| b.kind == Some(NodeKind::File));
                self.emit(Event::File(self.seq, path.to_path_buf(), node, existed))
            }
            _ => self.emit(Event::Leaf(node)),
        }
    }

    fn note_removed(&mut self, before: Option<&Node>) {
        if let Some(b) = before {
            self.stats.files_removed += count_files(self.ctx.repo, b);
        }
    }

    fn note_removed_children(&mut self, prev: Option<&PrevDir>) {
        if let Some(p) = prev {
            for n in &p.tree().nodes {
                self.stats.files_removed += count_files(self.ctx.repo, n);
            }
        }
    }

    fn visit_children(
        &mut self,
        dir: BorrowedFd<'_>,
        path: &Path,
        prev: Option<&PrevDir>,
    ) -> std::result::Result<(), Stopped> {
        match dirfd::list_dir(dir) {
            Ok(names) => self.visit_listed(dir, path, prev, names, None),
            Err(e) => self.skip(path, e),
        }
    }

    /// Visits the entries `names` of `dir` (`stats`: their `lstat`s, when already taken).
    fn visit_listed(
        &mut self,
        dir: BorrowedFd<'_>,
        path: &Path,
        prev: Option<&PrevDir>,
        names: Vec<std::ffi::OsString>,
        stats: Option<Vec<std::io::Result<dirfd::Meta>>>,
    ) -> std::result::Result<(), Stopped> {
        if let Some(p) = prev {
            // Entries of the parent that are gone; `names` and the tree share one order.
            let mut live = names.iter().map(|n| n.as_bytes()).peekable();
            for old in &p.tree().nodes {
                while live.next_if(|n| *n < old.name.as_slice()).is_some() {}
                if live.peek() != Some(&old.name.as_slice()) {
                    self.stats.files_removed += count_files(self.ctx.repo, old);
                }
            }
        }
        if let Some(stats) = stats {
            return self.visit_slice(dir, path, prev, &names, stats);
        }
        // In slices: a huge directory's stats are not all held at once, and none is much
        // older than the visit that uses it.
        for slice in names.chunks(STAT_SLICE) {
            let stats = stat_all(dir, slice, self.ctx.parallel_stat);
            self.visit_slice(dir, path, prev, slice, stats)?;
        }
        Ok(())
    }

    /// Visits entries already stat'ed, their subdirectories probed a window ahead.
    fn visit_slice(
        &mut self,
        dir: BorrowedFd<'_>,
        path: &Path,
        prev: Option<&PrevDir>,
        names: &[std::ffi::OsString],
        mut stats: Vec<std::io::Result<dirfd::Meta>>,
    ) -> std::result::Result<(), Stopped> {
        let mut ahead = Ahead::new(prev, self.ctx.parallel_stat, &stats);
        let (excluder, root_dev) = (self.ctx.excluder, self.root_dev);
        let plan = |i: usize, st: &dirfd::Meta| {
            let p = path.join(&names[i]);
            (!excluder.excludes(&p, true) && !excluder.marked(&p))
                .then(|| !excluder.crosses(st.dev, root_dev))
        };
        let owners = Arc::clone(&self.owners);
        let slice = Slice {
            here: Here {
                repo: self.ctx.repo,
                dir,
                prev,
                owners: &owners,
            },
            names,
        };
        // Probes run on rayon's threads within this scope; it ends when they all have,
        // also when the walk stops early.
        rayon::in_place_scope(|scope| {
            for i in 0..names.len() {
                let probe = ahead.take(scope, i, &slice, &plan);
                let st = std::mem::replace(&mut stats[i], Err(std::io::ErrorKind::NotFound.into()));
                let n = &names[i];
                self.visit_stated(dir, &path.join(n), n.as_bytes(), prev, st, probe)?;
            }
            Ok(())
        })
    }

    /// Files and bytes of a directory whose entries are exactly the parent's, all regular
    /// files unchanged and none excluded now; `None` otherwise. Such a directory (most
    /// leaves of a tree, between two snapshots) needs no node built or compared, and its
    /// parent version is read without decoding it into nodes.
    fn same_files(
        &self,
        path: &Path,
        names: &[std::ffi::OsString],
        stats: &[std::io::Result<dirfd::Meta>],
        prev: &PrevDir,
    ) -> Option<(u64, u64)> {
        let mut bytes = 0u64;
        if names.len() != prev.len() || self.excludes_any(path, names) {
            return None;
        }
        let mut views = prev.views();
        for (n, st) in names.iter().zip(stats) {
            let old = views.next()?;
            let st = st.as_ref().ok()?;
            if n.as_bytes() != old.name || !file_unchanged(&old, st, &self.owners) {
                return None;
            }
            bytes += old.size;
        }
        Some((names.len() as u64, bytes))
    }
}

/// Directory entries stat'ed together, ahead of their visits.
pub(super) const STAT_SLICE: usize = 1024;

/// `lstat` of directory entries, on rayon's threads when there are many: with a
/// parent snapshot most files need nothing else, so the stats are most of the walk's
/// work, and one thread doing them all was what a no-change snapshot waited for.
pub(super) fn stat_all(
    dir: BorrowedFd<'_>,
    names: &[std::ffi::OsString],
    parallel: bool,
) -> Vec<std::io::Result<dirfd::Meta>> {
    use rayon::prelude::*;
    if !parallel || names.len() < 64 {
        return names.iter().map(|n| dirfd::lstat_at(dir, n)).collect();
    }
    names
        .par_iter()
        .with_min_len(32)
        .map(|n| dirfd::lstat_at(dir, n))
        .collect()
}

/// Why an entry that changed between being listed and being opened was left out.
const REPLACED: &str = "replaced while being backed up (not the entry that was listed); left out";

/// Walks every source; returns when done or when the pipeline stopped.
pub(super) fn walk(
    ctx: &WalkContext,
    sources: &[PathBuf],
    out: WalkOutput,
    progress: &Progress,
) -> Result<WalkStats> {
    progress.set_unit("files");
    let mut w = Walker {
        ctx,
        out,
        events: Vec::with_capacity(EVENT_BATCH),
        jobs: Vec::with_capacity(JOB_BATCH_FILES),
        job_bytes: 0,
        progress,
        owners: Arc::default(),
        seq: 0,
        root_dev: 0,
        stats: WalkStats::default(),
    };
    let _ = w.walk_sources(sources);
    progress.totals_final.store(true, Relaxed);
    Ok(w.stats)
}
