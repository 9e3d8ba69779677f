//! The restore target, reached only through directory descriptors.
//!
//! Every path below the target is resolved one component at a time with `O_NOFOLLOW`
//! from the target's own descriptor, and every change (create, rename, link, remove,
//! chmod, chown, times) is made relative to the descriptor of the directory that holds
//! the entry. So a directory swapped for a symlink while a restore runs cannot redirect a
//! single write outside the target: opening through it fails instead.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::FileType;

use crate::dirfd::{self, Meta};
use crate::error::{Error, Result};
use crate::tree::{Node, NodeKind};

/// Directory descriptors kept open at most (the rest are reopened when needed).
const OPEN_DIRS: usize = 256;

/// An open restore target.
pub(super) struct TargetDir {
    root: Arc<OwnedFd>,
    root_path: PathBuf,
    dirs: Mutex<HashMap<PathBuf, Arc<OwnedFd>>>,
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> Error {
    move |e| Error::io(what, e)
}

/// Splits a target-relative path into its directory and final name.
fn split(rel: &Path) -> Result<(&Path, &OsStr)> {
    match (rel.parent(), rel.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(Error::Invalid(format!(
            "{} is not a path below the target",
            rel.display()
        ))),
    }
}

impl TargetDir {
    /// Creates the target directory if needed and opens it (following links: the user
    /// named it).
    pub fn open(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path).map_err(io_err(format!("creating {}", path.display())))?;
        let root = dirfd::open_dir(path).map_err(io_err(format!("opening {}", path.display())))?;
        Ok(Self {
            root: Arc::new(root),
            root_path: path.to_path_buf(),
            dirs: Mutex::new(HashMap::new()),
        })
    }

    /// Opens the target only if it exists already (a dry run creates nothing).
    pub fn open_existing(path: &Path) -> Result<Option<Self>> {
        if std::fs::symlink_metadata(path).is_err() {
            return Ok(None);
        }
        let root = dirfd::open_dir(path).map_err(io_err(format!("opening {}", path.display())))?;
        Ok(Some(Self {
            root: Arc::new(root),
            root_path: path.to_path_buf(),
            dirs: Mutex::new(HashMap::new()),
        }))
    }

    /// The full path of `rel`, for messages.
    pub fn shown(&self, rel: &Path) -> PathBuf {
        self.root_path.join(rel)
    }

    /// The directory at `rel` (empty: the target), opened without following links.
    pub fn dir(&self, rel: &Path) -> io::Result<Arc<OwnedFd>> {
        if rel.as_os_str().is_empty() {
            return Ok(self.root.clone());
        }
        if let Some(d) = self.cached(rel) {
            return Ok(d);
        }
        let parent = self.dir(rel.parent().unwrap_or(Path::new("")))?;
        let name = rel
            .file_name()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let fd = Arc::new(dirfd::open_dir_at(parent.as_fd(), name)?);
        let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        if dirs.len() >= OPEN_DIRS {
            dirs.clear();
        }
        dirs.insert(rel.to_path_buf(), fd.clone());
        Ok(fd)
    }

    fn cached(&self, rel: &Path) -> Option<Arc<OwnedFd>> {
        self.dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(rel)
            .cloned()
    }

    /// What is at `rel`, without following links; `None` when nothing is, or when a
    /// directory on the way is not a real directory (then nothing of ours is there).
    pub fn lstat(&self, rel: &Path) -> Option<Meta> {
        let (parent, name) = split(rel).ok()?;
        let dir = self.dir(parent).ok()?;
        dirfd::lstat_at(dir.as_fd(), name).ok()
    }

    /// Whether `a` and `b` are the same file (hard links of one inode).
    pub fn same_file(&self, a: &Path, b: &Path) -> bool {
        match (self.lstat(a), self.lstat(b)) {
            (Some(x), Some(y)) => (x.dev, x.ino) == (y.dev, y.ino),
            _ => false,
        }
    }

    /// Makes `rel` a directory, replacing whatever non-directory (a symlink included) is
    /// there. Its parent must already be one.
    pub fn ensure_dir(&self, rel: &Path) -> Result<()> {
        let (parent, name) = split(rel)?;
        let shown = || self.shown(rel).display().to_string();
        let dir = self
            .dir(parent)
            .map_err(io_err(format!("opening the directory of {}", shown())))?;
        match dirfd::lstat_at(dir.as_fd(), name) {
            Ok(st) if st.kind == FileType::Directory => return Ok(()),
            Ok(_) => dirfd::unlink_at(dir.as_fd(), name)
                .map_err(io_err(format!("replacing {}", shown())))?,
            Err(_) => {}
        }
        dirfd::mkdir_at(dir.as_fd(), name)
            .map_err(io_err(format!("creating directory {}", shown())))
    }

    /// Creates the new file `tmp` in the directory of `dest`.
    pub fn create_beside(&self, dest: &Path, tmp: &OsStr) -> Result<File> {
        let (parent, _) = split(dest)?;
        let what = || format!("creating {}", self.shown(&parent.join(tmp)).display());
        let dir = self.dir(parent).map_err(io_err(what()))?;
        dirfd::create_at(dir.as_fd(), tmp).map_err(io_err(what()))
    }

    /// Renames `tmp` (beside `dest`) over `dest`; with `clear`, first removes a
    /// non-directory at `dest` (a directory there is refused).
    pub fn rename_over(&self, tmp: &OsStr, dest: &Path, clear: bool) -> Result<()> {
        if clear {
            self.clear(dest)?;
        }
        let (parent, name) = split(dest)?;
        let what = || format!("renaming into {}", self.shown(dest).display());
        let dir = self.dir(parent).map_err(io_err(what()))?;
        dirfd::rename_at(dir.as_fd(), tmp, name).map_err(io_err(what()))
    }

    /// Removes the file `tmp` beside `dest` (best effort: a failed file's temporary).
    pub fn remove_beside(&self, dest: &Path, tmp: &OsStr) {
        if let Ok((parent, _)) = split(dest) {
            if let Ok(dir) = self.dir(parent) {
                let _ = dirfd::unlink_at(dir.as_fd(), tmp);
            }
        }
    }

    /// Removes whatever non-directory is at `rel`; a directory is refused.
    pub fn clear(&self, rel: &Path) -> Result<()> {
        let (parent, name) = split(rel)?;
        let Ok(dir) = self.dir(parent) else {
            return Ok(());
        };
        match dirfd::lstat_at(dir.as_fd(), name) {
            Ok(st) if st.kind == FileType::Directory => Err(Error::Refused(format!(
                "{} is a directory in the target; not replacing it with a file \
                 (`--delete` replaces it, unless it holds excluded entries)",
                self.shown(rel).display()
            ))),
            Ok(_) => dirfd::unlink_at(dir.as_fd(), name)
                .map_err(io_err(format!("replacing {}", self.shown(rel).display()))),
            Err(_) => Ok(()),
        }
    }

    /// Removes `rel` whatever it is, whole directory trees included (never following links).
    pub fn remove_all(&self, rel: &Path) -> Result<()> {
        let (parent, name) = split(rel)?;
        let what = || format!("deleting {}", self.shown(rel).display());
        let dir = self.dir(parent).map_err(io_err(what()))?;
        dirfd::remove_all_at(dir.as_fd(), name).map_err(io_err(what()))?;
        // Descriptors of what was removed must not be reused for a new directory there.
        self.dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| !k.starts_with(rel));
        Ok(())
    }

    /// The names in directory `rel`, if it is a real directory.
    pub fn list(&self, rel: &Path) -> Option<Vec<OsString>> {
        let dir = self.dir(rel).ok()?;
        dirfd::list_dir(dir.as_fd()).ok()
    }

    /// Opens the existing regular file at `rel` for reading (never through a symlink).
    pub fn open_file(&self, rel: &Path) -> io::Result<File> {
        let (parent, name) =
            split(rel).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let dir = self.dir(parent)?;
        let f = dirfd::open_read_at(dir.as_fd(), name)?;
        if dirfd::fstat(&f)?.kind != FileType::RegularFile {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(f)
    }

    /// Creates a symlink, FIFO or device node at `rel` (replacing a non-directory there).
    pub fn create_special(&self, node: &Node, rel: &Path) -> Result<()> {
        self.clear(rel)?;
        let (parent, name) = split(rel)?;
        let shown = self.shown(rel).display().to_string();
        let dir = self
            .dir(parent)
            .map_err(io_err(format!("opening the directory of {shown}")))?;
        let d = dir.as_fd();
        let made = match node.kind() {
            NodeKind::Symlink => dirfd::symlink_at(OsStr::from_bytes(&node.target), d, name),
            NodeKind::Fifo => dirfd::mknod_at(d, name, FileType::Fifo, node.mode, 0),
            NodeKind::CharDevice => {
                dirfd::mknod_at(d, name, FileType::CharacterDevice, node.mode, node.rdev)
            }
            NodeKind::BlockDevice => {
                dirfd::mknod_at(d, name, FileType::BlockDevice, node.mode, node.rdev)
            }
            NodeKind::File | NodeKind::Dir => Ok(()),
        };
        made.map_err(io_err(format!("creating {shown}")))
    }

    /// Makes `rel` a hard link of `first` (replacing a non-directory at `rel`).
    pub fn hard_link(&self, first: &Path, rel: &Path) -> Result<()> {
        self.clear(rel)?;
        let (fp, fname) = split(first)?;
        let (tp, tname) = split(rel)?;
        let what = || {
            format!(
                "linking {} to {}",
                self.shown(rel).display(),
                self.shown(first).display()
            )
        };
        let from = self.dir(fp).map_err(io_err(what()))?;
        let to = self.dir(tp).map_err(io_err(what()))?;
        dirfd::link_at(from.as_fd(), fname, to.as_fd(), tname).map_err(io_err(what()))
    }

    /// Applies ownership (as root), mode, xattrs and times to the entry at `rel`, which
    /// must still be of the node's kind.
    pub fn apply_meta(&self, node: &Node, rel: &Path) -> Result<()> {
        let shown = self.shown(rel);
        match node.kind() {
            NodeKind::Dir => {
                let dir = self
                    .dir(rel)
                    .map_err(io_err(format!("opening {}", shown.display())))?;
                let f = File::from(
                    dir.try_clone()
                        .map_err(io_err(format!("opening {}", shown.display())))?,
                );
                super::meta::apply_to_file(node, &f, &shown)
            }
            NodeKind::File => {
                let f = self
                    .open_file(rel)
                    .map_err(io_err(format!("opening {}", shown.display())))?;
                super::meta::apply_to_file(node, &f, &shown)
            }
            _ => {
                let (parent, name) = split(rel)?;
                let dir = self.dir(parent).map_err(io_err(format!(
                    "opening the directory of {}",
                    shown.display()
                )))?;
                super::meta::apply_special(node, dir.as_fd(), name, &shown)
            }
        }
    }
}
