//! What restore does with a path that already exists in the target: the conflict policy,
//! and the "already up to date" check that lets an interrupted restore resume cheaply.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::chunk::Chunker;
use crate::repository::Repository;
use crate::tree::{Node, Timestamp};

/// Policy for files that exist in the target and differ from the snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
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
    /// Written under another name.
    Rename(PathBuf),
    /// Not in the snapshot: removed from the target (`--delete`).
    Delete,
}

/// Whether the file at `dest` holds exactly `node`'s content, by re-chunking and hashing.
fn same_content(repo: &Repository, dest: &Path, node: &Node) -> bool {
    let Ok(f) = fs::File::open(dest) else {
        return false;
    };
    let chunker = Chunker::new(repo.config().chunker_files, repo.key().chunker_seed());
    let mut ids = Vec::with_capacity(node.content.len());
    for c in chunker.chunks_with_hint(f, node.size) {
        let Ok(data) = c else { return false };
        ids.push(repo.hasher().chunk_id(&data));
        if ids.len() > node.content.len() {
            return false;
        }
    }
    ids == node.content
}

/// A free sibling name for a renamed restore.
fn renamed(dest: &Path) -> PathBuf {
    let base = dest.as_os_str().to_os_string();
    let mut n = 0;
    loop {
        let mut cand = base.clone();
        cand.push(if n == 0 {
            ".restored".to_string()
        } else {
            format!(".restored.{n}")
        });
        let cand = PathBuf::from(cand);
        if fs::symlink_metadata(&cand).is_err() {
            return cand;
        }
        n += 1;
    }
}

/// Decides what to do with a regular file of the snapshot restored to `dest`.
pub fn decide(
    repo: &Repository,
    node: &Node,
    dest: &Path,
    policy: Conflict,
    verify_existing: bool,
) -> Action {
    let Ok(md) = fs::symlink_metadata(dest) else {
        return Action::Create;
    };
    if md.is_file() {
        let mtime = Timestamp {
            sec: md.mtime(),
            nsec: md.mtime_nsec() as u32,
        };
        let same_size = md.size() == node.size;
        if same_size && mtime == node.mtime && (!verify_existing || same_content(repo, dest, node))
        {
            return Action::UpToDate;
        }
        if policy == Conflict::IfChanged && same_size && same_content(repo, dest, node) {
            return Action::UpToDate;
        }
        return match policy {
            Conflict::Skip => Action::Skip,
            Conflict::Overwrite | Conflict::IfChanged => Action::Overwrite,
            Conflict::IfNewer if node.mtime > mtime => Action::Overwrite,
            Conflict::IfNewer => Action::Skip,
            Conflict::Rename => Action::Rename(renamed(dest)),
        };
    }
    // Something else (symlink, fifo, directory) is in the way.
    match policy {
        Conflict::Skip | Conflict::IfNewer => Action::Skip,
        Conflict::Rename => Action::Rename(renamed(dest)),
        Conflict::Overwrite | Conflict::IfChanged => Action::Overwrite,
    }
}
