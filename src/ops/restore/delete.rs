//! `restore --delete`: what in the target the snapshot does not have.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;

use super::conflict::Action;
use super::plan::Plan;
use super::target::TargetDir;
use crate::tree::NodeKind;

/// Entries of fully restored directories in the target that the snapshot does not have
/// (target-relative). Excluded entries and our own temporary files are left alone, and
/// nothing behind a symlink is looked at.
pub(super) fn extraneous(
    plan: &Plan,
    target: &TargetDir,
    excludes: &[crate::ops::find::Pattern],
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (rel, names) in &plan.full_dirs {
        let Some(entries) = target.list(rel) else {
            continue;
        };
        let mut extra: Vec<_> = entries
            .into_iter()
            .filter(|n| {
                let b = n.as_bytes();
                if names.contains(b) || b.starts_with(b".repo-restore-") {
                    return false;
                }
                let path = super::plan::snapshot_path(&rel.join(n));
                !excludes.iter().any(|p| p.matches(path.as_bytes(), b))
            })
            .collect();
        extra.sort();
        out.extend(extra.into_iter().map(|n| rel.join(&n)));
    }
    out
}

/// Directories in the target where the snapshot has a file, symlink or other
/// non-directory this restore puts there (target-relative): with `--delete` they are
/// removed first, with everything in them. One holding an entry an `--exclude` matches
/// is kept (`--delete` never removes excluded entries), and that item is refused.
pub(super) fn in_the_way(
    plan: &Plan,
    actions: &[Option<Action>],
    target: &TargetDir,
    excludes: &[crate::ops::find::Pattern],
) -> Vec<PathBuf> {
    plan.items
        .iter()
        .zip(actions)
        .filter(|(item, action)| match item.node.kind() {
            NodeKind::Dir => false,
            NodeKind::File => matches!(action, Some(Action::Create | Action::Overwrite)),
            _ => true,
        })
        .filter(|(item, _)| {
            target
                .lstat(&item.rel)
                .is_some_and(|st| st.kind == FileType::Directory)
        })
        .filter(|(item, _)| !holds_excluded(target, &item.rel, excludes))
        .map(|(item, _)| item.rel.clone())
        .collect()
}

/// Whether anything below the target directory `rel` matches an exclude pattern (never
/// looking behind a symlink; an explicit stack, so depth is not bounded by the thread's).
fn holds_excluded(target: &TargetDir, rel: &Path, excludes: &[crate::ops::find::Pattern]) -> bool {
    if excludes.is_empty() {
        return false;
    }
    let mut stack = vec![rel.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for name in target.list(&dir).unwrap_or_default() {
            let path = dir.join(&name);
            let shown = super::plan::snapshot_path(&path);
            if excludes
                .iter()
                .any(|p| p.matches(shown.as_bytes(), name.as_bytes()))
            {
                return true;
            }
            if target
                .lstat(&path)
                .is_some_and(|st| st.kind == FileType::Directory)
            {
                stack.push(path);
            }
        }
    }
    false
}
