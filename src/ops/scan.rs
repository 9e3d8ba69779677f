//! `repo scan`: compare live files with a snapshot to find what was lost, changed, added or
//! silently corrupted (bit rot: content differs while size and mtime do not).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::ChunkId;
use crate::ops::compare;
use crate::ops::context::{Ctx, Phase};
use crate::ops::select::{self, SnapshotRef};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::selection::SnapshotFilter;
use crate::snapshot::Snapshot;
use crate::source::fs::read_dir_sorted;
use crate::tree::path::SnapPath;
use crate::tree::walk::{TreeWalk, Visit};
use crate::tree::{Node, NodeKind, Timestamp};

/// What a scan found; every list holds snapshot/live paths (as bytes: a name that is
/// not UTF-8 is its own file, in JSON shown with `\xNN` escapes).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScanReport {
    /// Snapshot the live data was compared with (short id).
    pub snapshot: String,
    /// The live path compared (absolute).
    pub path: SnapPath,
    /// In the snapshot, gone from the live tree.
    pub missing: Vec<SnapPath>,
    /// In the live tree, not in the snapshot.
    pub new: Vec<SnapPath>,
    /// Size or mtime (or, with reading, content) differ.
    pub modified: Vec<SnapPath>,
    /// Same size and mtime but different content (only found when reading contents).
    pub corrupted: Vec<SnapPath>,
    /// Groups of snapshot paths with identical non-empty content.
    pub duplicates: Vec<Vec<SnapPath>>,
    /// Live files whose content was hashed.
    pub files_read: u64,
}

impl ScanReport {
    /// Whether anything is lost: missing or corrupted files.
    pub fn lost(&self) -> bool {
        !self.missing.is_empty() || !self.corrupted.is_empty()
    }
}

/// What a scan compares with a snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanOf {
    /// A live directory tree (or file).
    Files {
        /// The live path (made absolute).
        path: PathBuf,
        /// Hash the content of files whose size and mtime are unchanged (finds corruption).
        #[serde(default)]
        read: bool,
    },
    /// A live MongoDB server.
    #[cfg(feature = "mongo")]
    Mongodb {
        /// The server.
        uri: crate::mongo::uri::ConnectionString,
        /// Only namespaces matching these globs.
        #[serde(default)]
        namespaces: Vec<String>,
    },
}

/// `scan`: live data against a snapshot (default: the latest that holds the path, or the
/// latest of the server).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// The snapshot to compare with; `None`: chosen as above.
    #[serde(default)]
    pub snapshot: Option<SnapshotRef>,
    /// What to compare.
    pub of: ScanOf,
}

/// What a scan found.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum ScanOutcome {
    /// Files.
    Files(ScanReport),
    /// Collections.
    #[cfg(feature = "mongo")]
    Mongodb(crate::mongo::scan::MongoScan),
}

impl ScanOutcome {
    /// Whether anything was lost (missing or corrupted files; missing or altered
    /// collections, documents or indexes).
    pub fn lost(&self) -> bool {
        match self {
            ScanOutcome::Files(r) => r.lost(),
            #[cfg(feature = "mongo")]
            ScanOutcome::Mongodb(r) => r.lost(),
        }
    }
}

/// Compares live data with a snapshot (no lock: it only reads the repository).
pub fn run(repo: &Repository, req: &ScanRequest, ctx: &Ctx) -> Result<ScanOutcome> {
    match &req.of {
        ScanOf::Files { path, read } => {
            let path = SnapPath::from(crate::source::fs::absolute(path)?.into_os_string());
            let sel = req.snapshot.clone().unwrap_or_else(|| {
                SnapshotRef::latest().with_filter(SnapshotFilter {
                    paths: vec![path.lossy().into_owned()],
                    ..SnapshotFilter::default()
                })
            });
            let snap = select::snapshot(repo, &sel, std::slice::from_ref(&path))?;
            let progress = ctx.phase(Phase::Scanning);
            let r = scan(repo, &snap, &path, *read, ctx, &progress);
            ctx.phase_done(Phase::Scanning);
            r.map(ScanOutcome::Files)
        }
        #[cfg(feature = "mongo")]
        ScanOf::Mongodb { uri, namespaces } => {
            let snap = match &req.snapshot {
                Some(r) => select::snapshot(repo, r, &[])?,
                None => crate::mongo::scan::latest_of(repo, uri)?,
            };
            let progress = ctx.phase(Phase::Scanning);
            let r = crate::mongo::scan::run(repo, &snap, uri.expose(), namespaces, ctx);
            ctx.phase_done(Phase::Scanning);
            drop(progress);
            r.map(ScanOutcome::Mongodb)
        }
    }
}

/// Compares the live tree at `path` (absolute) with the same path in `snap`.
fn scan(
    repo: &Repository,
    snap: &Snapshot,
    path: &SnapPath,
    read: bool,
    ctx: &Ctx,
    progress: &Progress,
) -> Result<ScanReport> {
    let mut saved: BTreeMap<SnapPath, Node> = BTreeMap::new();
    TreeWalk::new(repo).walk_from(&snap.tree, path, &mut |p, n| {
        if n.kind() != NodeKind::Dir {
            saved.insert(p.clone(), n.clone());
        }
        Ok(Visit::Descend)
    })?;
    let mut live: BTreeMap<SnapPath, fs::Metadata> = BTreeMap::new();
    walk_live(Path::new(path.as_os_str()), &mut live);
    let mut r = ScanReport {
        snapshot: snap.id.short(),
        path: path.clone(),
        ..Default::default()
    };
    progress.set_unit("files");
    progress.set_totals(saved.len() as u64, 0);
    for (p, node) in &saved {
        ctx.check()?;
        progress.done(1, 0);
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
            progress
                .bytes
                .fetch_add(node.size, std::sync::atomic::Ordering::Relaxed);
            let same = fs::File::open(p.as_os_str()).is_ok_and(|f| {
                compare::holds_content(repo, std::io::BufReader::new(f), &node.content)
            });
            if !same {
                r.corrupted.push(p.clone());
            }
        }
    }
    r.new = live
        .keys()
        .filter(|p| !saved.contains_key(*p))
        .cloned()
        .collect();
    let mut by_content: HashMap<&[ChunkId], Vec<SnapPath>> = HashMap::new();
    for (p, n) in &saved {
        if n.kind() == NodeKind::File && n.size > 0 {
            by_content.entry(&n.content).or_default().push(p.clone());
        }
    }
    r.duplicates = by_content.into_values().filter(|v| v.len() > 1).collect();
    r.duplicates.sort();
    Ok(r)
}

/// Every non-directory below `dir` (or `dir` itself when it is not a directory).
fn walk_live(dir: &Path, out: &mut BTreeMap<SnapPath, fs::Metadata>) {
    let Ok(md) = fs::symlink_metadata(dir) else {
        return;
    };
    if !md.is_dir() {
        out.insert(SnapPath::from(dir.as_os_str()), md);
        return;
    }
    if let Ok(names) = read_dir_sorted(dir) {
        for n in names {
            walk_live(&dir.join(n), out);
        }
    }
}
