//! `repo restore`: snapshot tree → files under a target directory.
//!
//! Safety: every name is checked ([`crate::tree::is_safe_name`]) before it is joined to the
//! target, nothing is ever opened through a symlink, and file content is written to a
//! temporary name and renamed into place only after every chunk was verified against its
//! id — a damaged chunk fails that file loudly and never leaves wrong bytes behind.

mod conflict;
mod content;
mod meta;
#[cfg(feature = "mongo")]
pub mod mongo;
#[cfg(feature = "mongo")]
pub mod mongo_at;
mod plan;

pub use conflict::{Action, Conflict};

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::tree::NodeKind;

pub use plan::{Plan, PlanItem};

/// What to restore and where.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Directory to restore into (created if missing).
    pub target: PathBuf,
    /// Snapshot paths to restore (with everything below them); empty means all.
    pub includes: Vec<String>,
    /// Leave out entries matching these globs (names, or whole paths when they hold `/`).
    pub excludes: Vec<String>,
    /// What to do with existing files that differ.
    pub conflict: Conflict,
    /// Hash existing files whose size and mtime match before calling them up to date.
    pub verify_existing: bool,
    /// Only work out and report what would be done.
    pub dry_run: bool,
    /// Remove entries of fully restored directories that the snapshot does not have.
    pub delete: bool,
}

/// One file of a restore and what happens to it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FileAction {
    /// Snapshot path.
    pub path: String,
    /// What restore does with it.
    pub action: Action,
    /// Bytes written for it (0 unless created, overwritten or renamed).
    pub bytes: u64,
}

/// Outcome of a restore.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RestoreReport {
    /// Regular files written.
    pub files: u64,
    /// Directories created or updated.
    pub dirs: u64,
    /// Symlinks, devices, fifos and hard links created.
    pub others: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Files already identical in the target (not rewritten).
    pub up_to_date: u64,
    /// Existing files kept because of the conflict policy.
    pub skipped: u64,
    /// Files restored under a `.restored` name next to an existing one.
    pub renamed: u64,
    /// Files replaced.
    pub overwritten: u64,
    /// Entries removed from the target because the snapshot does not have them.
    pub deleted: u64,
    /// With `dry_run`: every file and its action (nothing was written).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<FileAction>,
    /// Items that failed, with the reason.
    pub errors: Vec<String>,
}

/// Restores (part of) a snapshot into `opts.target`.
pub fn run(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreReport> {
    let excludes = opts
        .excludes
        .iter()
        .map(|e| crate::ops::find::Pattern::new(e))
        .collect::<Result<Vec<_>>>()?;
    let plan = plan::build(repo, snap, &opts.includes, &excludes)?;
    if !opts.includes.is_empty() && !plan.matched {
        return Err(Error::Selection(format!(
            "nothing in snapshot {} matches {}",
            snap.id.short(),
            opts.includes.join(", ")
        )));
    }
    progress
        .total_items
        .store(plan.files().count() as u64, Relaxed);
    progress
        .total_bytes
        .store(plan.files().map(|i| i.node.size).sum(), Relaxed);
    progress.totals_final.store(true, Relaxed);
    let target = &opts.target;
    // Decide per file (indexed like plan.items) before anything is written.
    let actions: Vec<Option<Action>> = plan
        .items
        .iter()
        .map(|i| {
            (i.node.kind() == NodeKind::File).then(|| {
                conflict::decide(
                    repo,
                    &i.node,
                    &i.path_in(target),
                    opts.conflict,
                    opts.verify_existing,
                )
            })
        })
        .collect();
    let mut report = RestoreReport::default();
    for a in actions.iter().flatten() {
        match a {
            Action::UpToDate => report.up_to_date += 1,
            Action::Skip => report.skipped += 1,
            Action::Rename(_) => report.renamed += 1,
            Action::Overwrite => report.overwritten += 1,
            Action::Create | Action::Delete => {}
        }
    }
    let deletions = if opts.delete {
        extraneous(&plan, target, &excludes)
    } else {
        Vec::new()
    };
    if opts.dry_run {
        for (item, a) in plan.items.iter().zip(&actions) {
            if let Some(a) = a {
                let writes = matches!(a, Action::Create | Action::Overwrite | Action::Rename(_));
                let bytes = if writes { item.node.size } else { 0 };
                report.bytes += bytes;
                report.files += u64::from(writes);
                report.plan.push(FileAction {
                    path: item.display(),
                    action: a.clone(),
                    bytes,
                });
            }
        }
        for (rel, _) in &deletions {
            report.deleted += 1;
            report.plan.push(FileAction {
                path: format!("/{}", rel.display()),
                action: Action::Delete,
                bytes: 0,
            });
        }
        report.errors = plan
            .rejected
            .iter()
            .map(|r| format!("refused: {r}"))
            .collect();
        return Ok(report);
    }
    // Where each file's content goes, or None when it is left alone.
    let dest_of = |idx: usize| -> Option<PathBuf> {
        match actions[idx].as_ref()? {
            Action::Create | Action::Overwrite | Action::UpToDate => {
                Some(plan.items[idx].path_in(target))
            }
            Action::Rename(p) => Some(p.clone()),
            Action::Skip | Action::Delete => None,
        }
    };
    fs::create_dir_all(&opts.target)
        .map_err(|e| Error::io(format!("creating {}", opts.target.display()), e))?;
    let errors = Mutex::new(Vec::new());
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{what}: {e}"));
    };
    for r in &plan.rejected {
        fail("refused", r);
    }

    // 1. Directories, parents first.
    for item in plan.items.iter().filter(|i| i.node.kind() == NodeKind::Dir) {
        match ensure_dir(&item.path_in(target)) {
            Ok(()) => report.dirs += 1,
            Err(e) => fail(&item.display(), &e),
        }
    }
    // 2. File contents, pack by pack; the first copy of each hard-link group only. Each
    //    file gets its metadata as soon as it is complete.
    let writes = |i: usize| {
        plan.items[i].link_to.is_none()
            && matches!(
                actions[i],
                Some(Action::Create | Action::Overwrite | Action::Rename(_))
            )
    };
    let chosen: Vec<usize> = (0..plan.items.len()).filter(|&i| writes(i)).collect();
    let jobs: Vec<content::FileJob> = chosen
        .iter()
        .map(|&i| content::FileJob {
            item: &plan.items[i],
            renamed_to: match &actions[i] {
                Some(Action::Rename(p)) => Some(p.clone()),
                _ => None,
            },
            fresh: matches!(actions[i], Some(Action::Create)),
        })
        .collect();
    let written = content::restore_files(repo, target, &jobs, progress, &fail);
    for (ok, job) in written.iter().zip(&jobs) {
        if *ok {
            report.files += 1;
            report.bytes += job.item.node.size;
        }
    }
    // 3. Hard links, symlinks, fifos, devices.
    for (idx, item) in plan.items.iter().enumerate() {
        if item.node.kind() == NodeKind::Dir {
            continue;
        }
        let result = if let Some(first) = &item.link_to {
            match &actions[idx] {
                Some(Action::Create | Action::Overwrite) => {
                    hard_link(&target.join(first), &item.path_in(target))
                }
                Some(Action::Rename(p)) => hard_link(&target.join(first), p),
                _ => continue,
            }
        } else if item.node.kind() == NodeKind::File {
            continue;
        } else {
            meta::create_special(&item.node, &item.path_in(target))
        };
        match result {
            Ok(()) => report.others += 1,
            Err(e) => fail(&item.display(), &e),
        }
    }
    // 4. Entries the snapshot does not have (--delete), before directory times are set.
    for (rel, path) in &deletions {
        match remove_entry(path) {
            Ok(()) => report.deleted += 1,
            Err(e) => fail(&format!("/{}", rel.display()), &e),
        }
    }
    // 5. Metadata: files and others now, directories last and deepest first, because
    //    creating children changes a directory's mtime.
    for (idx, item) in plan.items.iter().enumerate() {
        if item.node.kind() == NodeKind::Dir || writes(idx) {
            continue; // written files got theirs in step 2
        }
        let p = match item.node.kind() {
            NodeKind::File => match dest_of(idx) {
                Some(p) => p,
                None => continue,
            },
            _ => item.path_in(target),
        };
        if fs::symlink_metadata(&p).is_ok() {
            if let Err(e) = meta::apply(&item.node, &p) {
                fail(&item.display(), &e);
            }
        }
    }
    for item in plan
        .items
        .iter()
        .rev()
        .filter(|i| i.node.kind() == NodeKind::Dir)
    {
        if let Err(e) = meta::apply(&item.node, &item.path_in(target)) {
            fail(&item.display(), &e);
        }
    }
    report.errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(report)
}

/// Entries of fully restored directories in the target that the snapshot does not have:
/// (snapshot-relative path, path in the target). Excluded entries and our own temporary
/// files are left alone.
fn extraneous(
    plan: &Plan,
    target: &Path,
    excludes: &[crate::ops::find::Pattern],
) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for (rel, names) in &plan.full_dirs {
        let dir = target.join(rel);
        // Never follow a symlink out of the target.
        match fs::symlink_metadata(&dir) {
            Ok(md) if md.is_dir() => {}
            _ => continue,
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut extra: Vec<_> = entries
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| {
                let b = n.as_bytes();
                if names.contains(b) || b.starts_with(b".repo-restore-") {
                    return false;
                }
                let shown = format!("/{}", rel.join(n).display());
                let name = n.to_string_lossy();
                !excludes.iter().any(|p| p.matches(&shown, &name))
            })
            .collect();
        extra.sort();
        out.extend(extra.into_iter().map(|n| (rel.join(&n), dir.join(&n))));
    }
    out
}

/// Removes a file, symlink or whole directory (never following symlinks).
fn remove_entry(p: &Path) -> Result<()> {
    let md =
        fs::symlink_metadata(p).map_err(|e| Error::io(format!("inspecting {}", p.display()), e))?;
    let r = if md.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    };
    r.map_err(|e| Error::io(format!("deleting {}", p.display()), e))
}

/// Creates a directory, replacing any non-directory (including a symlink) in its place.
fn ensure_dir(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => return Ok(()),
        Ok(_) => {
            fs::remove_file(p).map_err(|e| Error::io(format!("replacing {}", p.display()), e))?
        }
        Err(_) => {}
    }
    fs::create_dir(p).map_err(|e| Error::io(format!("creating directory {}", p.display()), e))
}

/// Removes whatever is at `p` unless it is a directory (which is refused).
fn clear_path(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => Err(Error::Refused(format!(
            "{} is a directory in the target; not replacing it with a file",
            p.display()
        ))),
        Ok(_) => fs::remove_file(p).map_err(|e| Error::io(format!("replacing {}", p.display()), e)),
        Err(_) => Ok(()),
    }
}

fn hard_link(first: &Path, p: &Path) -> Result<()> {
    clear_path(p)?;
    fs::hard_link(first, p)
        .map_err(|e| Error::io(format!("linking {} to {}", p.display(), first.display()), e))
}
