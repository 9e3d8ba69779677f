//! What restore does with a path that already exists in the target: the conflict policy,
//! and the "already up to date" check that lets an interrupted restore resume cheaply.

use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use serde::Serialize;

use super::target::TargetDir;
use crate::repository::Repository;
use crate::tree::{Node, Timestamp};

/// Policy for files that exist in the target and differ from the snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conflict {
    /// Keep the existing file.
    Skip,
    /// Replace it (the default).
    #[default]
    Overwrite,
    /// Replace it only when the snapshot's copy has a newer mtime.
    IfNewer,
    /// Replace it only when its content differs (hashing it when size is equal).
    IfChanged,
    /// Keep it and restore the snapshot's copy next to it with a `.restored` suffix.
    Rename,
}

/// What happens to one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing there: write it.
    Create,
    /// Replace what is there.
    Overwrite,
    /// Already identical: only metadata is applied.
    UpToDate,
    /// Kept as is because of the policy.
    Skip,
    /// Written under another name (target-relative).
    Rename(PathBuf),
    /// Not in the snapshot: removed from the target (`--delete`).
    Delete,
}

/// Whether the regular file at `rel` holds exactly `node`'s content (read in the stored
/// chunks' lengths and hashed: ops/compare.rs).
pub(super) fn same_content(repo: &Repository, t: &TargetDir, rel: &Path, node: &Node) -> bool {
    t.open_file(rel).is_ok_and(|f| {
        crate::ops::compare::holds_content(repo, std::io::BufReader::new(f), &node.content)
    })
}

/// A free sibling name for a renamed restore (target-relative).
fn renamed(t: &TargetDir, rel: &Path) -> PathBuf {
    let base = rel.as_os_str().to_os_string();
    let mut n = 0;
    loop {
        let mut cand = base.clone();
        cand.push(if n == 0 {
            ".restored".to_string()
        } else {
            format!(".restored.{n}")
        });
        let cand = PathBuf::from(cand);
        if t.lstat(&cand).is_none() {
            return cand;
        }
        n += 1;
    }
}

/// Decides what to do with a regular file of the snapshot restored to `rel`. What is
/// there is looked at without following any link, the directories on the way included:
/// behind a symlink where the snapshot has a directory, nothing counts as restored.
pub(super) fn decide(
    repo: &Repository,
    node: &Node,
    t: &TargetDir,
    rel: &Path,
    policy: Conflict,
    verify_existing: bool,
) -> Action {
    let Some(st) = t.lstat(rel) else {
        return Action::Create;
    };
    if st.kind == FileType::RegularFile {
        let mtime = Timestamp {
            sec: st.mtime.0,
            nsec: st.mtime.1,
        };
        let same_size = st.size == node.size;
        if same_size
            && mtime == node.mtime
            && (!verify_existing || same_content(repo, t, rel, node))
        {
            return Action::UpToDate;
        }
        if policy == Conflict::IfChanged && same_size && same_content(repo, t, rel, node) {
            return Action::UpToDate;
        }
        return match policy {
            Conflict::Skip => Action::Skip,
            Conflict::Overwrite | Conflict::IfChanged => Action::Overwrite,
            Conflict::IfNewer if node.mtime > mtime => Action::Overwrite,
            Conflict::IfNewer => Action::Skip,
            Conflict::Rename => Action::Rename(renamed(t, rel)),
        };
    }
    // Something else (symlink, fifo, directory) is in the way.
    match policy {
        Conflict::Skip | Conflict::IfNewer => Action::Skip,
        Conflict::Rename => Action::Rename(renamed(t, rel)),
        Conflict::Overwrite | Conflict::IfChanged => Action::Overwrite,
    }
}
