//! Where packs become files: file contents are restored pack by pack, not file by file.
//!
//! Every chunk the restore needs is looked up once, the uses are sorted by pack and offset,
//! and each pack is read with one range request per run of nearby blobs. Each blob is
//! decrypted and verified once and written to every file (and offset) that holds it. Packs
//! are processed in parallel; a file is renamed into place (and gets its metadata) as soon
//! as its last chunk is written, so open files stay few.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::{BlobId, PackId};
use crate::index::BlobLocation;
use crate::ops::context::CancelToken;
use crate::pack::pack_path;
use crate::pack::runs::{read_runs, span};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::tree::Node;

use super::target::TargetDir;
use super::PlanItem;

/// Granularity of hole detection when writing: zero blocks this size stay unwritten.
const SPARSE_BLOCK: usize = 64 << 10;

/// One file to write. Kept small (paths are derived when needed): a restore of millions
/// of files holds one of these per file.
pub(super) struct FileJob<'a> {
    /// Its plan entry (snapshot path and node).
    pub item: &'a PlanItem,
    /// Where it goes instead of its own path (the `rename` conflict policy; target-relative).
    pub renamed_to: Option<PathBuf>,
    /// Nothing was at the destination when the restore was planned (no need to clear it).
    pub fresh: bool,
}

impl FileJob<'_> {
    /// The target-relative destination.
    fn dest(&self) -> &Path {
        match &self.renamed_to {
            Some(p) => p,
            None => &self.item.rel,
        }
    }

    fn node(&self) -> &Node {
        &self.item.node
    }

    fn display(&self) -> String {
        self.item.display().to_string()
    }
}

/// One place a blob goes: file `file` at byte `at`.
struct Use {
    loc: BlobLocation,
    id: BlobId,
    file: usize,
    at: u64,
}

/// A file being written: its temporary name's tag, open handle and chunks still to come.
struct Open {
    tag: u64,
    handle: Mutex<Option<File>>,
    remaining: AtomicUsize,
    failed: AtomicBool,
    holes: AtomicBool,
}

/// Writes every job's content; returns, per job, whether it was restored. Failures are
/// reported through `fail` and leave nothing behind under the destination name.
pub(super) fn restore_files(
    repo: &Repository,
    target: &TargetDir,
    jobs: &[FileJob],
    progress: &Progress,
    cancel: &CancelToken,
    fail: &(dyn Fn(&str, &dyn std::fmt::Display) + Sync),
) -> Vec<bool> {
    let mut uses = Vec::new();
    let mut state = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let before = uses.len();
        let planned = plan_file(repo, i, job, &mut uses);
        if let Err(e) = &planned {
            uses.truncate(before);
            fail(&job.display(), e);
        }
        state.push(Open {
            tag: rand::random(),
            handle: Mutex::new(None),
            remaining: AtomicUsize::new(uses.len() - before),
            failed: AtomicBool::new(planned.is_err()),
            holes: AtomicBool::new(false),
        });
    }
    // Empty files have no chunks: create them now.
    for (i, job) in jobs.iter().enumerate() {
        if job.node().content.is_empty() && !state[i].failed.load(Relaxed) {
            let s = &state[i];
            match target.create_beside(job.dest(), &s.tmp()) {
                Ok(f) => *s.handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(f),
                Err(e) => {
                    s.failed.store(true, Relaxed);
                    fail(&job.display(), &e);
                }
            }
            finish_file(target, job, s, progress, fail);
        }
    }
    uses.sort_by_key(|u| (u.loc.pack, u.loc.offset, u.loc.unit_offset, u.file, u.at));
    let packs: Vec<&[Use]> = uses.chunk_by(|a, b| a.loc.pack == b.loc.pack).collect();
    crate::backend::with_read_threads(repo.backend(), || {
        packs.par_iter().for_each(|uses| {
            if !cancel.is_cancelled() {
                restore_pack(repo, target, uses, jobs, &state, progress, fail);
            }
        });
    });
    if cancel.is_cancelled() {
        // Files still waiting for chunks are dropped with their temporary names.
        for (s, job) in state.iter().zip(jobs) {
            if s.remaining.load(Relaxed) > 0 {
                s.failed.store(true, Relaxed);
                drop(s.handle.lock().unwrap_or_else(|p| p.into_inner()).take());
                target.remove_beside(job.dest(), &s.tmp());
            }
        }
    }
    state.iter().map(|s| !s.failed.load(Relaxed)).collect()
}

/// Looks up a file's chunks and queues their uses; checks they add up to its size.
fn plan_file(repo: &Repository, file: usize, job: &FileJob, uses: &mut Vec<Use>) -> Result<()> {
    let mut at = 0u64;
    for id in &job.node().content {
        let bid = BlobId::from(*id);
        let loc = repo.locate(BlobKind::Data, &bid)?;
        uses.push(Use {
            loc,
            id: bid,
            file,
            at,
        });
        at += u64::from(loc.raw_length);
    }
    if at != job.node().size {
        return Err(Error::corrupt(
            format!("file {}", job.display()),
            format!(
                "chunks add up to {at} bytes but the tree says {}",
                job.node().size
            ),
        ));
    }
    Ok(())
}

/// Reads the needed ranges of one pack and writes each blob wherever it is used.
fn restore_pack(
    repo: &Repository,
    target: &TargetDir,
    uses: &[Use],
    jobs: &[FileJob],
    state: &[Open],
    progress: &Progress,
    fail: &(dyn Fn(&str, &dyn std::fmt::Display) + Sync),
) {
    let pack: PackId = uses[0].loc.pack;
    for run in read_runs(uses, |u| &u.loc) {
        let (start, len) = span(run, |u| &u.loc);
        let bytes = repo.backend().get_range(&pack_path(&pack), start, len);
        // One blob per group (blobs of one unit share an offset, not a unit offset).
        for same in run
            .chunk_by(|a, b| (a.loc.offset, a.loc.unit_offset) == (b.loc.offset, b.loc.unit_offset))
        {
            let u0 = &same[0];
            let data = bytes.as_ref().map_err(Error::to_string).and_then(|b| {
                let from = (u0.loc.offset - start) as usize;
                let sealed = b
                    .get(from..from + u0.loc.length as usize)
                    .ok_or_else(|| format!("pack {} read came back short", pack.short()))?;
                repo.open_blob(BlobKind::Data, &u0.id, sealed, &u0.loc)
                    .map_err(|e| e.to_string())
            });
            for u in same {
                let s = &state[u.file];
                let written = match &data {
                    Ok(d) if !s.failed.load(Relaxed) => {
                        write_at(target, s, jobs[u.file].dest(), d, u.at).map_err(|e| e.to_string())
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.clone()),
                };
                if let Err(e) = written {
                    if !s.failed.swap(true, Relaxed) {
                        fail(&jobs[u.file].display(), &e);
                    }
                }
                if let Ok(d) = &data {
                    progress.bytes.fetch_add(d.len() as u64, Relaxed);
                }
                if s.remaining.fetch_sub(1, AcqRel) == 1 {
                    finish_file(target, &jobs[u.file], s, progress, fail);
                }
            }
        }
    }
}

impl Open {
    /// The temporary name, beside the destination, the content is written under.
    fn tmp(&self) -> OsString {
        OsString::from(format!(".repo-restore-{:016x}", self.tag))
    }
}

/// Writes one chunk at `at`; runs of zero blocks are left as holes.
fn write_at(target: &TargetDir, s: &Open, dest: &Path, data: &[u8], at: u64) -> Result<()> {
    // Held while creating, so two packs' threads never both create the file.
    let mut guard = s.handle.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        *guard = Some(target.create_beside(dest, &s.tmp())?);
    }
    let f = guard
        .as_ref()
        .ok_or_else(|| Error::Internal("restore file handle vanished".into()))?;
    let err = |e| Error::io(format!("writing {}", target.shown(dest).display()), e);
    let mut run_start: Option<usize> = None;
    for (n, block) in data.chunks(SPARSE_BLOCK).enumerate() {
        let pos = n * SPARSE_BLOCK;
        if !crate::chunk::is_zero(block) {
            run_start.get_or_insert(pos);
        } else {
            s.holes.store(true, Relaxed);
            if let Some(r) = run_start.take() {
                f.write_all_at(&data[r..pos], at + r as u64).map_err(err)?;
            }
        }
    }
    if let Some(r) = run_start {
        f.write_all_at(&data[r..], at + r as u64).map_err(err)?;
    }
    Ok(())
}

/// After the last chunk: sizes (for trailing holes), closes and renames the file into
/// place and applies its metadata; a failed file's temporary is removed.
fn finish_file(
    target: &TargetDir,
    job: &FileJob,
    s: &Open,
    progress: &Progress,
    fail: &(dyn Fn(&str, &dyn std::fmt::Display) + Sync),
) {
    let dest = job.dest();
    let shown = target.shown(dest);
    let handle = s.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
    let result = (|| -> Result<()> {
        if s.failed.load(Relaxed) {
            return Err(Error::Invalid("not restored".into()));
        }
        let f = handle.ok_or_else(|| Error::Invalid("restore file was never created".into()))?;
        if s.holes.load(Relaxed) {
            f.set_len(job.node().size)
                .map_err(|e| Error::io(format!("sizing {}", shown.display()), e))?;
        }
        // Metadata through the handle, before the rename (which keeps it): a failure
        // there is reported, but the content is still restored.
        if let Err(e) = super::meta::apply_to_file(job.node(), &f, &shown) {
            fail(&job.display(), &e);
        }
        drop(f);
        target.rename_over(&s.tmp(), dest, !job.fresh)
    })();
    if let Err(e) = result {
        if !s.failed.swap(true, Relaxed) {
            fail(&job.display(), &e);
        }
        target.remove_beside(dest, &s.tmp());
    }
    progress.done(1, 0);
}
