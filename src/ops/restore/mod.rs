//! `repo restore`: snapshot tree → files under a target directory.
//!
//! Safety: every name is checked ([`crate::tree::is_safe_name`]) before it is used, the
//! target is only reached through directory descriptors ([`target`]) so nothing is ever
//! created, changed or removed through a symlink (not even one swapped in while we run),
//! and file content is written to a temporary name and renamed into place only after
//! every chunk was verified against its id — a damaged chunk fails that file loudly and
//! never leaves wrong bytes behind. A directory whose tree cannot be read is reported and
//! the rest of the snapshot is restored.

mod conflict;
mod content;
mod delete;
mod links;
mod meta;
mod plan;
mod request;
mod target;

pub use conflict::{Action, Conflict};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::ops::context::{Ctx, Phase};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::tree::path::SnapPath;
use crate::tree::NodeKind;

pub use plan::{Plan, PlanItem};
pub use request::{run, FilesTarget, RestoreInto, RestoreOutcome, RestoreRequest};
use target::TargetDir;

/// What to restore and where.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Directory to restore into (created if missing).
    pub target: PathBuf,
    /// Snapshot paths to restore (with everything below them); empty means all.
    pub includes: Vec<SnapPath>,
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
    /// Snapshot path (in JSON, bytes that are not UTF-8 show as `\xNN`; `path_hex` is
    /// then exact).
    pub path: SnapPath,
    /// The path's bytes in hex, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// What restore does with it.
    pub action: Action,
    /// Bytes written for it (0 unless created, overwritten or renamed).
    pub bytes: u64,
}

impl FileAction {
    fn new(path: SnapPath, action: Action, bytes: u64) -> Self {
        FileAction {
            path_hex: crate::tree::path::hex_if_not_utf8(path.as_bytes()),
            path,
            action,
            bytes,
        }
    }
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

/// Restores (part of) a snapshot's files into `opts.target` (the caller holds a lock).
/// Cancelled (`ctx`), it stops between packs, removes the files it had not finished (no
/// half-written file is left) and returns [`Error::Cancelled`].
pub fn files(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
    ctx: &Ctx,
) -> Result<RestoreReport> {
    let progress = ctx.phase(Phase::Restoring);
    let r = restore(repo, snap, opts, ctx, &progress);
    ctx.phase_done(Phase::Restoring);
    r
}

fn restore(
    repo: &Repository,
    snap: &Snapshot,
    opts: &RestoreOptions,
    ctx: &Ctx,
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
            opts.includes
                .iter()
                .map(|p| p.display())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    progress.set_unit("files");
    progress.set_totals(
        plan.files().count() as u64,
        plan.files().map(|i| i.node.size).sum(),
    );
    // A dry run looks at the target as it is and creates nothing, not even the target.
    let target = if opts.dry_run {
        TargetDir::open_existing(&opts.target)?
    } else {
        Some(TargetDir::open(&opts.target)?)
    };
    // Decide per file (indexed like plan.items) before anything is written.
    let actions: Vec<Option<Action>> = plan
        .items
        .iter()
        .map(|i| {
            (i.node.kind() == NodeKind::File).then(|| match &target {
                Some(t) => conflict::decide(
                    repo,
                    &i.node,
                    t,
                    &i.rel,
                    opts.conflict,
                    opts.verify_existing,
                ),
                None => Action::Create,
            })
        })
        .collect();
    let mut actions = actions;
    links::unshare(&plan, target.as_ref(), &mut actions);
    let sources = links::link_sources(repo, target.as_ref(), &plan, &actions);
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
    let (in_the_way, deletions) = match (&target, opts.delete) {
        (Some(t), true) => (
            delete::in_the_way(&plan, &actions, t, &excludes),
            delete::extraneous(&plan, t, &excludes),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    let Some(target) = target.filter(|_| !opts.dry_run) else {
        let all: Vec<PathBuf> = in_the_way.into_iter().chain(deletions).collect();
        return Ok(dry_run(&plan, &actions, &all, &opts.target, report));
    };
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
    for r in &plan.unreadable {
        fail("not restored", r);
    }

    // 0. With --delete, directories where the snapshot has something else go first.
    for rel in &in_the_way {
        match target.remove_all(rel) {
            Ok(()) => report.deleted += 1,
            Err(e) => fail(&format!("/{}", rel.display()), &e),
        }
    }
    // 1. Directories, parents first.
    for item in plan.items.iter().filter(|i| i.node.kind() == NodeKind::Dir) {
        match target.ensure_dir(&item.rel) {
            Ok(()) => report.dirs += 1,
            Err(e) => fail(&item.display().to_string(), &e),
        }
    }
    // 2. File contents, pack by pack; a hard-link group's content is written once, to its
    //    first member that is written. Each file gets its metadata as soon as it is complete.
    let writes = |i: usize| {
        sources[i].is_none()
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
    let written = content::restore_files(repo, &target, &jobs, progress, ctx.token(), &fail);
    if ctx.cancelled() {
        return Err(Error::Cancelled(format!(
            ": {} file(s) were completed; nothing else was left behind",
            written.iter().filter(|w| **w).count()
        )));
    }
    let mut done: HashSet<usize> = HashSet::new();
    for ((ok, job), i) in written.iter().zip(&jobs).zip(&chosen) {
        if *ok {
            report.files += 1;
            report.bytes += job.item.node.size;
            done.insert(*i);
        }
    }
    // 3. Hard links (to a member this restore wrote or verified), symlinks, fifos, devices.
    for (idx, item) in plan.items.iter().enumerate() {
        if item.node.kind() == NodeKind::Dir {
            continue;
        }
        let result = if let Some(src) = &sources[idx] {
            let dest = match &actions[idx] {
                Some(Action::Create | Action::Overwrite) => &item.rel,
                Some(Action::Rename(p)) => p,
                // The same content in a file of its own: linked, so the group is one file
                // again as in the snapshot.
                Some(Action::UpToDate) if !target.same_file(&src.rel, &item.rel) => &item.rel,
                _ => continue,
            };
            if !src.verified && !done.contains(&src.item) {
                fail(
                    &item.display().to_string(),
                    &"not restored: the file it is a hard link of could not be written",
                );
                continue;
            }
            target.hard_link(&src.rel, dest)
        } else if item.node.kind() == NodeKind::File {
            continue;
        } else {
            target.create_special(&item.node, &item.rel)
        };
        match result {
            Ok(()) => report.others += 1,
            Err(e) => fail(&item.display().to_string(), &e),
        }
    }
    // 4. Entries the snapshot does not have (--delete), before directory times are set.
    for rel in &deletions {
        match target.remove_all(rel) {
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
        let rel = match (item.node.kind(), &actions[idx]) {
            (NodeKind::File, Some(Action::Skip) | None) => continue,
            (NodeKind::File, Some(Action::Rename(p))) => p.as_path(),
            _ => item.rel.as_path(),
        };
        if target.lstat(rel).is_some() {
            if let Err(e) = target.apply_meta(&item.node, rel) {
                fail(&item.display().to_string(), &e);
            }
        }
    }
    for item in plan
        .items
        .iter()
        .rev()
        .filter(|i| i.node.kind() == NodeKind::Dir)
    {
        if let Err(e) = target.apply_meta(&item.node, &item.rel) {
            fail(&item.display().to_string(), &e);
        }
    }
    report.errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(report)
}

/// The report of a dry run: every file's action and the bytes it would write.
fn dry_run(
    plan: &Plan,
    actions: &[Option<Action>],
    deletions: &[PathBuf],
    target: &Path,
    mut report: RestoreReport,
) -> RestoreReport {
    for (item, a) in plan.items.iter().zip(actions) {
        if let Some(a) = a {
            let writes = matches!(a, Action::Create | Action::Overwrite | Action::Rename(_));
            let bytes = if writes { item.node.size } else { 0 };
            report.bytes += bytes;
            report.files += u64::from(writes);
            let action = match a {
                Action::Rename(p) => Action::Rename(target.join(p)),
                other => other.clone(),
            };
            report
                .plan
                .push(FileAction::new(item.display(), action, bytes));
        }
    }
    for rel in deletions {
        report.deleted += 1;
        report
            .plan
            .push(FileAction::new(plan::snapshot_path(rel), Action::Delete, 0));
    }
    report.errors = plan
        .rejected
        .iter()
        .map(|r| format!("refused: {r}"))
        .chain(plan.unreadable.iter().map(|r| format!("not restored: {r}")))
        .collect();
    report
}
