//! `snapshot --dry-run`: the snapshot's walk — the same sources, exclusions and parent —
//! counted instead of stored. Files are stat'ed and compared with the parent as a real run
//! would, never read, so it costs what an incremental run with nothing changed costs.

use crossbeam_channel::bounded;
use serde::Serialize;

use super::walk::{self, Event, FileJob};
use super::Job;
use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::ops::context::Ctx;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::Skipped;

/// What a snapshot would do.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DryRunReport {
    /// The snapshot unchanged files would be taken from.
    pub parent: Option<SnapshotId>,
    /// The sources, as the snapshot would record them.
    pub paths: Vec<String>,
    /// Files the parent does not have: they would be read.
    pub files_new: u64,
    /// Files whose size, times or inode differ from the parent's: they would be read.
    pub files_changed: u64,
    /// Files taken from the parent without reading.
    pub files_unchanged: u64,
    /// Files of the parent that are gone or now excluded.
    pub files_removed: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks, devices and fifos.
    pub others: u64,
    /// Bytes of the new and changed files: what would be read, and at most what would be
    /// added before deduplication and compression (usually much less is).
    pub bytes_to_read: u64,
    /// Bytes of the unchanged files.
    pub bytes_unchanged: u64,
    /// What could not be read (it would be missing from the snapshot).
    pub skipped: Vec<Skipped>,
}

pub(super) fn run(repo: &Repository, job: &Job, ctx: &Ctx) -> Result<DryRunReport> {
    let prepared = super::prepare(repo, job, ctx)?;
    let mut wctx = prepared.walk_context(repo, job, ctx.token().clone());
    wctx.prefetch = false;
    let progress = Progress::default();
    let mut r = DryRunReport {
        parent: prepared.parent.as_ref().map(|p| p.id),
        paths: prepared.paths.clone(),
        ..DryRunReport::default()
    };
    let (ev_tx, ev_rx) = bounded::<Vec<Event>>(16);
    let (job_tx, job_rx) = bounded::<Vec<FileJob>>(4);
    let walked = std::thread::scope(|s| {
        let (wctx, sources, progress) = (&wctx, &prepared.sources, &progress);
        let walker = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(s, move || {
                let out = walk::WalkOutput {
                    events: &ev_tx,
                    jobs: &job_tx,
                };
                walk::walk(wctx, sources, out, progress)
            })
            .map_err(|e| Error::io("starting walker thread", e))?;
        // The jobs carry the opened files: dropping them closes them, unread.
        s.spawn(move || job_rx.into_iter().for_each(drop));
        for ev in ev_rx.iter().flatten() {
            count(&mut r, ev);
        }
        walker
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("walker thread panicked".into())))
    })?;
    ctx.check()?;
    r.files_removed = walked.files_removed;
    Ok(r)
}

fn count(r: &mut DryRunReport, ev: Event) {
    match ev {
        Event::Enter(..) => r.dirs += 1,
        Event::Leave => {}
        Event::Leaf(_) => r.others += 1,
        Event::File(_, _, node, had_parent) => {
            if had_parent {
                r.files_changed += 1;
            } else {
                r.files_new += 1;
            }
            r.bytes_to_read += node.size;
        }
        Event::Unchanged(node) => {
            r.files_unchanged += 1;
            r.bytes_unchanged += node.size;
        }
        Event::SameDir(_, _, files, bytes) => {
            r.dirs += 1;
            r.files_unchanged += files;
            r.bytes_unchanged += bytes;
        }
        Event::Skipped(s) => r.skipped.push(s),
    }
}
