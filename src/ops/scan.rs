//! `repo scan`: compare live files with a snapshot to find what was lost, changed, added or
//! silently corrupted (bit rot: content differs while size and mtime do not).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;

use serde::{Deserialize, Serialize};

use crate::dirfd::{self, Meta};
use crate::error::Result;
use crate::id::ChunkId;
use crate::ops::compare;
use crate::ops::context::{Ctx, Phase};
use crate::ops::select::{self, SnapshotRef};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::selection::SnapshotFilter;
use crate::snapshot::Snapshot;
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
    /// Live paths that could not be read (permissions, I/O errors): not compared, and
    /// what the snapshot has below them is not counted as missing.
    pub unreadable: Vec<SnapPath>,
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
                    paths: vec![path.display().into_owned()],
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

/// Compares the live tree at `path` (absolute) with the same path in `snap`. The live
/// tree is walked relative to open directories (as backups read it), so a path longer
/// than `PATH_MAX` or a name that is not UTF-8 is compared like any other; what cannot
/// be read is reported as unreadable, not as missing or corrupted.
fn scan(
    repo: &Repository,
    snap: &Snapshot,
    path: &SnapPath,
    read: bool,
    ctx: &Ctx,
    progress: &Progress,
) -> Result<ScanReport> {
    let mut saved: BTreeMap<SnapPath, (Node, bool)> = BTreeMap::new();
    TreeWalk::new(repo).walk_from(&snap.tree, path, &mut |p, n| {
        if n.kind() != NodeKind::Dir {
            saved.insert(p.clone(), (n.clone(), false));
        }
        Ok(Visit::Descend)
    })?;
    progress.set_unit("files");
    progress.set_totals(saved.len() as u64, 0);
    let mut w = LiveWalk {
        repo,
        ctx,
        progress,
        read,
        saved: &mut saved,
        r: ScanReport {
            snapshot: snap.id.short(),
            path: path.clone(),
            ..Default::default()
        },
    };
    w.root(path)?;
    let mut r = w.r;
    let mut by_content: HashMap<&[ChunkId], Vec<SnapPath>> = HashMap::new();
    for (p, (n, seen)) in &saved {
        if !seen {
            r.missing.push(p.clone());
        }
        if n.kind() == NodeKind::File && n.size > 0 {
            by_content.entry(&n.content).or_default().push(p.clone());
        }
    }
    r.duplicates = by_content.into_values().filter(|v| v.len() > 1).collect();
    r.duplicates.sort();
    for list in [
        &mut r.new,
        &mut r.modified,
        &mut r.corrupted,
        &mut r.unreadable,
    ] {
        list.sort();
    }
    Ok(r)
}

/// The live side of a scan, compared entry by entry with the snapshot's as it is read.
struct LiveWalk<'a> {
    repo: &'a Repository,
    ctx: &'a Ctx,
    progress: &'a Progress,
    read: bool,
    /// The snapshot's non-directories, each marked once the live tree has it.
    saved: &'a mut BTreeMap<SnapPath, (Node, bool)>,
    r: ScanReport,
}

impl LiveWalk<'_> {
    /// `p` could not be read: listed as such, and the snapshot's entries at and below it
    /// are taken as accounted for (not missing: we cannot tell).
    fn unreadable(&mut self, p: SnapPath) {
        if let Some((_, seen)) = self.saved.get_mut(&p) {
            *seen = true;
        }
        // Below `p` means below `p/`: "/a/b-c" sorts between "/a/b" and "/a/b/x".
        let mut dir = p.clone();
        dir.extend(b"/");
        for (q, (_, seen)) in self.saved.range_mut(dir.clone()..) {
            if !q.as_bytes().starts_with(dir.as_bytes()) {
                break;
            }
            *seen = true;
        }
        self.r.unreadable.push(p);
    }

    /// The path the user named: a directory (walked), another entry, or nothing.
    fn root(&mut self, path: &SnapPath) -> Result<()> {
        let p = Path::new(path.as_os_str());
        let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
            return self.dir(dirfd::open_dir(p), &mut path.clone());
        };
        let parent = match dirfd::open_dir(parent) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) => {
                self.unreadable(path.clone());
                return Ok(());
            }
        };
        match dirfd::lstat_at(parent.as_fd(), name) {
            Ok(md) if md.kind == FileType::Directory => {
                self.dir(dirfd::open_dir_at(parent.as_fd(), name), &mut path.clone())
            }
            Ok(md) => self.entry(parent.as_fd(), name, path.clone(), md),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(_) => {
                self.unreadable(path.clone());
                Ok(())
            }
        }
    }

    /// Everything below the directory `dir` (whose path is `path`).
    fn dir(&mut self, dir: std::io::Result<OwnedFd>, path: &mut SnapPath) -> Result<()> {
        let names = match dir.and_then(|fd| dirfd::list_dir(fd.as_fd()).map(|n| (fd, n))) {
            Ok(v) => v,
            Err(_) => {
                self.unreadable(path.clone());
                return Ok(());
            }
        };
        let (fd, names) = names;
        for name in names {
            self.ctx.check()?;
            let end = path.len();
            path.push(name.as_bytes());
            match dirfd::lstat_at(fd.as_fd(), &name) {
                Ok(md) if md.kind == FileType::Directory => {
                    self.dir(dirfd::open_dir_at(fd.as_fd(), &name), path)?
                }
                Ok(md) => self.entry(fd.as_fd(), &name, path.clone(), md)?,
                // Gone since the listing: as if it had not been there.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => self.unreadable(path.clone()),
            }
            path.truncate(end);
        }
        Ok(())
    }

    /// One live non-directory: new, or compared with the snapshot's entry.
    fn entry(&mut self, dir: BorrowedFd<'_>, name: &OsStr, p: SnapPath, md: Meta) -> Result<()> {
        let Some((node, seen)) = self.saved.get_mut(&p) else {
            self.r.new.push(p);
            return Ok(());
        };
        *seen = true;
        self.progress.done(1, 0);
        if node.kind() != NodeKind::File || md.kind != FileType::RegularFile {
            return Ok(());
        }
        let mtime = Timestamp {
            sec: md.mtime.0,
            nsec: md.mtime.1,
        };
        if md.size != node.size || mtime != node.mtime {
            self.r.modified.push(p);
            return Ok(());
        }
        if !self.read {
            return Ok(());
        }
        self.r.files_read += 1;
        self.progress
            .bytes
            .fetch_add(node.size, std::sync::atomic::Ordering::Relaxed);
        let file = dirfd::open_read_at(dir, name)
            .and_then(|f| Ok((dirfd::fstat(&f)?, f)))
            .ok()
            .filter(|(m, _)| m.kind == FileType::RegularFile);
        match file {
            Some((_, f)) => {
                if !compare::holds_content(self.repo, std::io::BufReader::new(f), &node.content) {
                    self.r.corrupted.push(p);
                }
            }
            None => self.unreadable(p),
        }
        Ok(())
    }
}
