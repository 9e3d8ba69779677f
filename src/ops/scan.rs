//! `repo scan`: compare live files with a snapshot to find what was lost, changed, added or
//! silently corrupted (bit rot: content differs while size and mtime do not).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use crate::chunk::Chunker;
use crate::error::Result;
use crate::id::ChunkId;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::source::fs::read_dir_sorted;
use crate::tree::{Node, NodeKind, Timestamp};

/// What a scan found; every list holds snapshot/live paths.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScanReport {
    /// Snapshot the live data was compared with (short id).
    pub snapshot: String,
    /// In the snapshot, gone from the live tree.
    pub missing: Vec<String>,
    /// In the live tree, not in the snapshot.
    pub new: Vec<String>,
    /// Size or mtime (or, with reading, content) differ.
    pub modified: Vec<String>,
    /// Same size and mtime but different content (only found when reading contents).
    pub corrupted: Vec<String>,
    /// Groups of snapshot paths with identical non-empty content.
    pub duplicates: Vec<Vec<String>>,
    /// Live files whose content was hashed.
    pub files_read: u64,
}

impl ScanReport {
    /// Whether anything is lost: missing or corrupted files.
    pub fn lost(&self) -> bool {
        !self.missing.is_empty() || !self.corrupted.is_empty()
    }
}

/// Compares the live tree at `path` (absolute) with the same path in `snap`.
pub fn scan(repo: &Repository, snap: &Snapshot, path: &str, read: bool) -> Result<ScanReport> {
    let mut saved: BTreeMap<String, Node> = BTreeMap::new();
    super::ls::walk(repo, snap, path, &mut |p, n| {
        if n.kind() != NodeKind::Dir {
            saved.insert(p.to_string(), n.clone());
        }
        Ok(())
    })?;
    let mut live: BTreeMap<String, fs::Metadata> = BTreeMap::new();
    walk_live(Path::new(path), &mut live);
    let mut r = ScanReport {
        snapshot: snap.id.short(),
        ..Default::default()
    };
    let chunker = Chunker::new(repo.config().chunker_files, repo.key().chunker_seed());
    for (p, node) in &saved {
        let Some(md) = live.get(p) else {
            r.missing.push(p.clone());
            continue;
        };
        if node.kind() != NodeKind::File || !md.is_file() {
            continue;
        }
        let mtime = Timestamp {
            sec: md.mtime(),
            nsec: md.mtime_nsec() as u32,
        };
        let same_meta = md.size() == node.size && mtime == node.mtime;
        if !same_meta {
            r.modified.push(p.clone());
        } else if read {
            r.files_read += 1;
            if hash_file(repo, chunker, Path::new(p)).as_ref() != Some(&node.content) {
                r.corrupted.push(p.clone());
            }
        }
    }
    r.new = live
        .keys()
        .filter(|p| !saved.contains_key(*p))
        .cloned()
        .collect();
    let mut by_content: HashMap<&[ChunkId], Vec<String>> = HashMap::new();
    for (p, n) in &saved {
        if n.kind() == NodeKind::File && n.size > 0 {
            by_content.entry(&n.content).or_default().push(p.clone());
        }
    }
    r.duplicates = by_content.into_values().filter(|v| v.len() > 1).collect();
    r.duplicates.sort();
    Ok(r)
}

fn hash_file(repo: &Repository, chunker: Chunker, p: &Path) -> Option<Vec<ChunkId>> {
    let f = fs::File::open(p).ok()?;
    let size = f.metadata().map_or(0, |m| m.len());
    chunker
        .chunks_with_hint(f, size)
        .map(|c| c.ok().map(|d| repo.hasher().chunk_id(&d)))
        .collect()
}

/// Every non-directory below `dir` (or `dir` itself when it is not a directory).
fn walk_live(dir: &Path, out: &mut BTreeMap<String, fs::Metadata>) {
    let Ok(md) = fs::symlink_metadata(dir) else {
        return;
    };
    if !md.is_dir() {
        out.insert(dir.display().to_string(), md);
        return;
    }
    if let Ok(names) = read_dir_sorted(dir) {
        for n in names {
            walk_live(&dir.join(n), out);
        }
    }
}
