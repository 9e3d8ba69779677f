//! File-system access relative to open directories, never following a symbolic link.
//!
//! Backup and restore run as root over trees other users can change while we work. A
//! path that was a directory when we looked may be a symlink to `/etc` a moment later, so
//! nothing here resolves a path from the top: each step opens one name inside a directory
//! we hold open, with `O_NOFOLLOW`, and checks what it got with `fstat`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, CWD};

/// What `stat` says of an entry, in the same types on every architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Kind of entry.
    pub kind: FileType,
    /// Permission bits including setuid/setgid/sticky.
    pub perm: u32,
    /// Hard links.
    pub nlink: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number (devices).
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, u32),
    /// Status change time (seconds, nanoseconds).
    pub ctime: (i64, u32),
}

impl Meta {
    // The field types of `struct stat` differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    fn from_stat(st: &Stat) -> Self {
        Self {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            kind: FileType::from_raw_mode(st.st_mode as _),
            perm: (st.st_mode as u32) & 0o7777,
            nlink: st.st_nlink as u64,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            rdev: st.st_rdev as u64,
            size: st.st_size.max(0) as u64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as u32),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as u32),
        }
    }

    /// Whether both describe the same file: same device, inode and kind.
    pub fn same_file(&self, other: &Meta) -> bool {
        self.dev == other.dev && self.ino == other.ino && self.kind == other.kind
    }
}

/// Opens a directory (the target of a restore, the root of a backup), following links:
/// the user named it.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens the directory `name` inside `dir`; fails (ELOOP/ENOTDIR) on anything else,
/// symlinks included.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens `name` inside `dir` for reading without following a symlink, without blocking on
/// a FIFO and without taking a controlling terminal. The caller compares [`fstat`] with
/// what it expected before reading.
pub fn open_read_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<File> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// Asks the kernel to start reading a small file's first `len` bytes into the page cache
/// now (`POSIX_FADV_WILLNEED`), so the reads of many queued small files overlap instead of
/// waiting one after another on a cold disk. Advice only: failure changes nothing, and it
/// is skipped for larger files, which sequential readahead already serves.
pub fn prefetch(file: &File, len: u64) {
    const PREFETCH_MAX: u64 = 1 << 20;
    if let Some(len) = std::num::NonZeroU64::new(len).filter(|l| l.get() <= PREFETCH_MAX) {
        let _ = rustix::fs::fadvise(file, 0, Some(len), rustix::fs::Advice::WillNeed);
    }
}

/// Creates a new file `name` inside `dir` (never over an existing entry, never through a
/// symlink), mode 0600 until its metadata is applied.
pub fn create_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<File> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    Ok(File::from(fd))
}

/// An `O_PATH` handle on `name` inside `dir` (the entry itself, symlinks included), for
/// changing special files we must not open for reading (devices).
pub fn open_path_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `lstat` of `name` inside `dir`.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Meta> {
    Ok(Meta::from_stat(&rustix::fs::statat(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW,
    )?))
}

/// `fstat` of an open file or directory.
pub fn fstat(fd: impl AsFd) -> io::Result<Meta> {
    Ok(Meta::from_stat(&rustix::fs::fstat(fd)?))
}

/// The names in a directory (not `.` and `..`), sorted by their bytes.
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for ent in rustix::fs::Dir::read_from(dir)? {
        let ent = ent?;
        let name = ent.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// A path through `/proc` that names exactly the file `fd` is open on, for the calls
/// Linux offers no fd form of (`chmod` of an `O_PATH` handle, extended attributes).
pub fn proc_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `proc_path(dir)/name`: the entry `name` inside `dir`, final component not followed by
/// the `l*` calls that take it.
pub fn proc_path_at(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    proc_path(dir).join(name)
}

/// Removes `name` inside `dir`: a file or symlink, or a whole directory tree (walked
/// through descriptors, so a symlink swapped in meanwhile is removed, never followed).
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let st = lstat_at(dir, name)?;
    if st.kind != FileType::Directory {
        return Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?);
    }
    let sub = open_dir_at(dir, name)?;
    for child in list_dir(sub.as_fd())? {
        remove_all_at(sub.as_fd(), &child)?;
    }
    drop(sub);
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// Creates directory `name` inside `dir` (mode 0700 until its metadata is applied).
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?)
}

/// Removes the non-directory entry `name` inside `dir`.
pub fn unlink_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?)
}

/// Renames `from` to `to`, both inside `dir` (replacing a non-directory at `to`).
pub fn rename_at(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::renameat(dir, from, dir, to)?)
}

/// Creates symlink `name` inside `dir` pointing at `target`.
pub fn symlink_at(target: &OsStr, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::symlinkat(target, dir, name)?)
}

/// Hard-links `from_name` in `from_dir` as `to_name` in `to_dir` (a symlink is linked,
/// not followed).
pub fn link_at(
    from_dir: BorrowedFd<'_>,
    from_name: &OsStr,
    to_dir: BorrowedFd<'_>,
    to_name: &OsStr,
) -> io::Result<()> {
    Ok(rustix::fs::linkat(
        from_dir,
        from_name,
        to_dir,
        to_name,
        AtFlags::empty(),
    )?)
}

/// Creates a FIFO or device node `name` inside `dir`.
pub fn mknod_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: FileType,
    mode: u32,
    rdev: u64,
) -> io::Result<()> {
    Ok(rustix::fs::mknodat(
        dir,
        name,
        kind,
        Mode::from_raw_mode(mode & 0o7777),
        rdev,
    )?)
}

/// Reads the target of symlink `name` inside `dir`.
pub fn readlink_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<u8>> {
    Ok(rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes())
}

/// Sets owner, never following a symlink.
pub fn lchown_at(dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    // Any id a snapshot recorded, even one with all bits set.
    let (u, g) = (
        rustix::fs::Uid::from_raw_unchecked(uid),
        rustix::fs::Gid::from_raw_unchecked(gid),
    );
    Ok(rustix::fs::chownat(
        dir,
        name,
        Some(u),
        Some(g),
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// Sets permission bits of the file an `O_PATH` (or any) handle is open on.
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::chmodat(
        CWD,
        proc_path(fd),
        Mode::from_raw_mode(mode & 0o7777),
        AtFlags::empty(),
    )?)
}

/// Sets access and modification time of `name` inside `dir`, never following a symlink.
pub fn set_times_at(dir: BorrowedFd<'_>, name: &OsStr, sec: i64, nsec: u32) -> io::Result<()> {
    let t = rustix::fs::Timespec {
        tv_sec: sec,
        tv_nsec: i64::from(nsec),
    };
    let times = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    Ok(rustix::fs::utimensat(
        dir,
        name,
        &times,
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_follows_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"s").unwrap();
        let root = d.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("file")).unwrap();
        let fd = open_dir(&root).unwrap();
        let link = OsStr::new("link");
        assert!(open_dir_at(fd.as_fd(), link).is_err());
        assert!(open_read_at(fd.as_fd(), OsStr::new("file")).is_err());
        assert!(create_at(fd.as_fd(), OsStr::new("file")).is_err());
        assert_eq!(lstat_at(fd.as_fd(), link).unwrap().kind, FileType::Symlink);
        // Removing a symlinked "directory" removes the link, not what it points at.
        remove_all_at(fd.as_fd(), link).unwrap();
        assert!(outside.join("secret").exists());
        assert_eq!(list_dir(fd.as_fd()).unwrap(), vec![OsString::from("file")]);
    }

    #[test]
    fn a_fifo_opens_without_blocking_and_is_told_apart() {
        let d = tempfile::tempdir().unwrap();
        let fd = open_dir(d.path()).unwrap();
        mknod_at(fd.as_fd(), OsStr::new("p"), FileType::Fifo, 0o644, 0).unwrap();
        let f = open_read_at(fd.as_fd(), OsStr::new("p")).unwrap();
        assert_eq!(fstat(&f).unwrap().kind, FileType::Fifo);
        let p = open_path_at(fd.as_fd(), OsStr::new("p")).unwrap();
        chmod_fd(p.as_fd(), 0o600).unwrap();
        assert_eq!(lstat_at(fd.as_fd(), OsStr::new("p")).unwrap().perm, 0o600);
    }
}
