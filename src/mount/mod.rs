//! `repo mount`: snapshots as a read-only FUSE file system (through `fuser`, mounted with
//! `fusermount3`), so one lost file can be found and copied without restoring anything.
//!
//! ```text
//! MOUNTPOINT/snapshots/2026-11-28T09:00:00Z/…   each snapshot's tree, by time
//!            by-id/ID -> ../snapshots/TIME       by-host/HOST/{TIME,latest}, by-tag/TAG/…
//!            latest -> snapshots/TIME
//!            …/mongodb/DB/COLL.bson|.jsonl|.indexes.json   a MongoDB snapshot's collections
//! ```
//!
//! One thread (fuser's session) answers the kernel; reads fetch only the chunks they
//! touch, through a cache of at most [`content::CACHE_BYTES`]. The calling thread waits
//! for its context to be cancelled (SIGINT/SIGTERM) or the file system to be unmounted
//! from outside (`fusermount3 -u`), then unmounts. Nothing is written to the repository.

mod content;
mod fs;
mod layout;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::ops::context::Ctx;
use crate::repository::Repository;
use crate::selection::SnapshotFilter;

/// `mount`: where, and which snapshots.
#[derive(Clone, Debug)]
pub struct MountRequest {
    /// An existing, empty directory.
    pub mountpoint: PathBuf,
    /// Only snapshots matching this are shown.
    pub filter: SnapshotFilter,
    /// Let other users read the mount (needs `user_allow_other` in /etc/fuse.conf).
    pub allow_other: bool,
}

/// What a mount did, once unmounted.
#[derive(Clone, Debug, Serialize)]
pub struct MountReport {
    /// The mount point.
    pub mountpoint: PathBuf,
    /// Chunks read from the repository (each read fetches only the chunks it touches).
    pub chunks_fetched: u64,
    /// Their plaintext bytes.
    pub bytes_fetched: u64,
    /// File reads answered.
    pub reads: u64,
}

/// Whether `dir` is a mount point now (a second mount on it is refused).
fn is_mounted(dir: &Path) -> Result<bool> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("reading /proc/self/mountinfo", e))?;
    let want = dir.to_string_lossy();
    // Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
    Ok(text.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| unescape(m) == want.as_ref())
    }))
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            let code: String = it.by_ref().take(3).collect();
            if let Ok(v) = u8::from_str_radix(&code, 8) {
                out.push(v as char);
                continue;
            }
            out.push(c);
            out.push_str(&code);
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks the mount point: an existing directory nothing is mounted on.
fn check_mountpoint(dir: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| Error::Invalid(format!("mount point {}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(Error::Invalid(format!(
            "mount point {} is not a directory",
            dir.display()
        )));
    }
    let abs = std::fs::canonicalize(dir)
        .map_err(|e| Error::Invalid(format!("mount point {}: {e}", dir.display())))?;
    if is_mounted(&abs)? {
        return Err(Error::BadPath {
            reason: format!(
                "already a mount point (unmount it first: fusermount3 -u {})",
                abs.display()
            ),
            path: abs,
        });
    }
    Ok(abs)
}

/// Mounts the repository's snapshots at `req.mountpoint` until `ctx` is cancelled or the
/// file system is unmounted from outside; then unmounts and reports.
pub fn run(repo: Arc<Repository>, req: &MountRequest, ctx: &Ctx) -> Result<MountReport> {
    let at = check_mountpoint(&req.mountpoint)?;
    let cache = Arc::new(content::ChunkCache::new(repo.clone()));
    let fs = fs::MountFs::new(layout::Layout::new(repo, req.filter.clone()), cache.clone());
    let mut options = vec![
        fuser::MountOption::RO,
        fuser::MountOption::FSName("repo".into()),
        fuser::MountOption::Subtype("repo".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
        fuser::MountOption::DefaultPermissions,
    ];
    if req.allow_other {
        options.push(fuser::MountOption::AllowOther);
    }
    let session = fuser::spawn_mount2(fs, &at, &options).map_err(|e| {
        Error::Refused(format!(
            "cannot mount on {}: {e} (FUSE needs /dev/fuse and fusermount3, Debian's fuse3 package)",
            at.display()
        ))
    })?;
    tracing::info!("mounted on {}", at.display());
    while !ctx.cancelled() && !session.guard.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let outside = session.guard.is_finished();
    unmount(session, &at);
    tracing::info!(
        "unmounted {}{}",
        at.display(),
        if outside { " (from outside)" } else { "" }
    );
    let f = &cache.fetched;
    Ok(MountReport {
        mountpoint: at,
        chunks_fetched: f.chunks.load(Ordering::Relaxed),
        bytes_fetched: f.bytes.load(Ordering::Relaxed),
        reads: f.reads.load(Ordering::Relaxed),
    })
}

/// Unmounts and waits for the session's thread, which holds the repository: it must end
/// before the process does. A mount still in use (a shell's working directory inside it)
/// is detached lazily after a few seconds; the thread then ends when the last user leaves.
fn unmount(session: fuser::BackgroundSession, at: &Path) {
    let guard = {
        let s = session;
        s.guard
        // The rest of the session (its mount) is dropped here: that unmounts.
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !guard.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if !guard.is_finished() && is_mounted(at).unwrap_or(false) {
        tracing::warn!(
            "{} is busy (a process is using it): detaching it; the mount ends when the last file in it is closed",
            at.display()
        );
        let _ = std::process::Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(at)
            .status();
    }
    if let Ok(Err(e)) = guard.join() {
        tracing::warn!("the mount of {} ended with: {e}", at.display());
    }
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape("/mnt/tab\\011x\\134y"), "/mnt/tab\tx\\y");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
