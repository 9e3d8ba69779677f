//! A repository in a local directory. Writes go to a temporary file, are fsynced and then
//! renamed into place, so a crash never leaves a half-written object under its real name;
//! the directory is fsynced after every create, rename and delete, so what returned is
//! durable. Objects are created 0600 and directories 0700: a repository holds key files
//! and nobody else on the machine needs to list it.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{Backend, ObjectInfo};
use crate::error::{Error, IoContext, Result};

/// Prefix of in-flight temporary files; `list` skips them.
const TMP_PREFIX: &str = ".tmp-";
/// Space set aside so that prune can take its lock on a disk that filled up
/// (format-spec/layout.md, `reserve`).
pub const RESERVE_NAME: &str = "reserve";
/// How much: a lock and a record of marks need a few KiB, and the rest lets prune rewrite
/// small index segments in place. A prune that must write more on a full disk (larger
/// segments, repacked packs) fails cleanly and, with `--grace 0`, deletes the packs that
/// hold nothing live first: that frees room without a reserve the size of the index,
/// which every repository would carry for a rare day. (8 MiB before: 2% of a 350 MiB
/// repository; a reserve of another size is replaced by this one.)
const RESERVE_BYTES: u64 = 1 << 20;

/// Local-filesystem backend rooted at a directory.
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    /// Writes `bytes` to a temporary file, syncs it and moves it to `path`: by `rename`
    /// (replacing what is there), or with `new` by `link`, which fails when `path` exists
    /// (`Ok(false)`), so of two writers exactly one creates it.
    fn write(&self, path: &str, bytes: &[u8], new: bool) -> Result<bool> {
        let full = self.full(path)?;
        let dir = full
            .parent()
            .ok_or_else(|| Error::Invalid(format!("invalid object path {path:?}")))?;
        ensure_dir(dir).ctx(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!(
            "{TMP_PREFIX}{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        let write = || -> std::io::Result<bool> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            if !new {
                fs::rename(&tmp, &full)?;
                return Ok(true);
            }
            match fs::hard_link(&tmp, &full) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    fs::remove_file(&tmp)?;
                    return Ok(false);
                }
                // A file system without hard links: a rename that refuses to replace.
                Err(_) => return rename_new(&tmp, &full),
            }
            fs::remove_file(&tmp)?;
            Ok(true)
        };
        match write() {
            Ok(created) => {
                sync_dir(dir);
                Ok(created)
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(Error::io(format!("writing {path}"), e))
            }
        }
    }

    /// A backend rooted at `root` (which need not exist yet). A relative root is made
    /// absolute against the current directory, so messages, the operation log and a later
    /// `cd` all mean the same directory.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            root: std::path::absolute(&root).unwrap_or(root),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> Result<PathBuf> {
        super::check_object_path(path)?;
        Ok(self.root.join(path))
    }

    fn not_found(&self, path: &str, e: std::io::Error) -> Error {
        if e.kind() == ErrorKind::NotFound {
            Error::Missing(format!("{path} in {}", self.root.display()))
        } else {
            Error::io(format!("reading {path}"), e)
        }
    }
}

fn sync_dir(dir: &Path) {
    // Directory fsync makes the rename durable; some filesystems refuse it, which is fine.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Creates `dir` and any missing parents with mode 0700, fsyncing each parent that gained
/// an entry (a new directory is only durable once its parent's entry is).
fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    // "" is the parent of a relative path's first component: the current directory.
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_dir(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            if let Some(parent) = dir.parent() {
                sync_dir(parent);
            }
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Every `.tmp-` file below `dir`, with its size and modification time.
fn temp_files(dir: &Path, out: &mut Vec<(PathBuf, u64, std::time::SystemTime)>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for ent in rd.flatten() {
        let Ok(md) = ent.metadata() else { continue };
        if md.is_dir() {
            temp_files(&ent.path(), out);
        } else if ent.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            if let Ok(m) = md.modified() {
                out.push((ent.path(), md.len(), m));
            }
        }
    }
}

/// Moves `tmp` to `full` unless `full` exists (`Ok(false)`, `tmp` removed).
fn rename_new(tmp: &Path, full: &Path) -> std::io::Result<bool> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    let created = match renameat_with(CWD, tmp, CWD, full, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(true),
        Err(rustix::io::Errno::EXIST) => false,
        // Not supported here either: check, then rename (a race is then possible).
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) if !full.exists() => {
            fs::rename(tmp, full)?;
            return Ok(true);
        }
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => false,
        Err(e) => return Err(e.into()),
    };
    fs::remove_file(tmp)?;
    Ok(created)
}

/// An entry's metadata, or `None` when it went away after the directory was read: another
/// process deleted it (a lock refreshed, a pack pruned), which is not an error of ours.
fn entry_metadata(ent: &fs::DirEntry) -> Result<Option<fs::Metadata>> {
    match ent.metadata() {
        Ok(md) => Ok(Some(md)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("stat {}", ent.path().display()), e)),
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn get(&self, path: &str) -> Result<Vec<u8>> {
        fs::read(self.full(path)?).map_err(|e| self.not_found(path, e))
    }

    fn get_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut f = File::open(self.full(path)?).map_err(|e| self.not_found(path, e))?;
        f.seek(SeekFrom::Start(offset))
            .ctx(|| format!("seeking in {path}"))?;
        let mut buf = Vec::with_capacity(len as usize);
        f.take(len)
            .read_to_end(&mut buf)
            .ctx(|| format!("reading {path}"))?;
        if buf.len() as u64 != len {
            return Err(super::short_read(path, offset, len, buf.len()));
        }
        Ok(buf)
    }

    fn put(&self, path: &str, bytes: &[u8]) -> Result<()> {
        self.write(path, bytes, false).map(|_| ())
    }

    fn put_new(&self, path: &str, bytes: &[u8]) -> Result<bool> {
        self.write(path, bytes, true)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        let start = self.root.join(prefix.trim_end_matches('/'));
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
            };
            for ent in rd {
                let ent = ent.ctx(|| format!("listing {}", dir.display()))?;
                let name = ent.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(TMP_PREFIX) {
                    continue;
                }
                let Some(md) = entry_metadata(&ent)? else {
                    continue;
                };
                if md.is_dir() {
                    stack.push(ent.path());
                } else if let Ok(rel) = ent.path().strip_prefix(&self.root) {
                    out.push(ObjectInfo {
                        path: rel.to_string_lossy().replace('\\', "/"),
                        size: md.len(),
                        modified: md.modified().ok(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &str) -> Result<()> {
        let full = self.full(path)?;
        match fs::remove_file(&full) {
            Ok(()) => {
                // Without this a crash can bring a deleted object back.
                if let Some(dir) = full.parent() {
                    sync_dir(dir);
                }
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("deleting {path}"), e)),
        }
    }

    fn keep_reserve(&self) -> Result<()> {
        let path = self.root.join(RESERVE_NAME);
        if fs::metadata(&path).is_ok_and(|m| m.len() == RESERVE_BYTES) {
            return Ok(());
        }
        // Best effort: on a disk that is still full, try again next time. `put` writes a
        // temporary file and renames it over the old reserve, so a reserve of another size
        // stays until its replacement is whole.
        let _ = self.put(RESERVE_NAME, &vec![0u8; RESERVE_BYTES as usize]);
        Ok(())
    }

    fn release_reserve(&self) -> Result<bool> {
        match fs::remove_file(self.root.join(RESERVE_NAME)) {
            Ok(()) => {
                sync_dir(&self.root);
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("releasing the reserved space", e)),
        }
    }

    fn restrict_access(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let set = |p: &Path, mode: u32| {
            fs::set_permissions(p, fs::Permissions::from_mode(mode))
                .ctx(|| format!("restricting access to {}", p.display()))
        };
        set(&self.root, 0o700)?;
        let keys = self.root.join("keys");
        if keys.is_dir() {
            set(&keys, 0o700)?;
        }
        Ok(())
    }

    fn top_level(&self) -> Result<Vec<String>> {
        match fs::read_dir(&self.root) {
            Ok(rd) => rd
                .map(|e| {
                    e.map(|e| e.file_name().to_string_lossy().into_owned())
                        .ctx(|| format!("listing {}", self.root.display()))
                })
                .collect(),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(format!("listing {}", self.root.display()), e)),
        }
    }

    fn remove_leftovers(&self, age: std::time::Duration) -> Result<(u64, u64)> {
        let mut found = Vec::new();
        temp_files(&self.root, &mut found);
        let now = std::time::SystemTime::now();
        let (mut n, mut bytes) = (0, 0);
        for (p, size, modified) in found {
            if now.duration_since(modified).is_ok_and(|a| a >= age) {
                match fs::remove_file(&p) {
                    Ok(()) => {
                        n += 1;
                        bytes += size;
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(format!("deleting {}", p.display()), e)),
                }
            }
        }
        Ok((n, bytes))
    }

    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.full(path)?.exists())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_conformance() {
        let d = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(d.path().join("repo"));
        super::super::conformance::check(&b);
        super::super::conformance::check_scale(&b, 3 << 20, 50);
    }

    #[test]
    fn the_reserve_is_kept_at_its_size_and_released_once() {
        let d = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(d.path());
        let reserve = d.path().join(RESERVE_NAME);
        let size = || fs::metadata(&reserve).map(|m| m.len()).ok();
        b.keep_reserve().unwrap();
        assert_eq!(size(), Some(RESERVE_BYTES));
        // An earlier client's larger reserve is replaced, not kept beside.
        fs::write(&reserve, vec![0u8; 8 << 20]).unwrap();
        b.keep_reserve().unwrap();
        assert_eq!(size(), Some(RESERVE_BYTES));
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [RESERVE_NAME], "no temporary file is left");
        assert!(b.release_reserve().unwrap());
        assert_eq!(size(), None);
        assert!(!b.release_reserve().unwrap());
    }

    #[test]
    fn an_object_deleted_while_listing_is_left_out() {
        let d = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(d.path());
        b.put("locks/aa", b"x").unwrap();
        let ent = fs::read_dir(d.path().join("locks"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        // Gone between reading the directory and the stat: another process deleted it.
        b.delete("locks/aa").unwrap();
        assert!(entry_metadata(&ent).unwrap().is_none());
        b.put("locks/bb", b"y").unwrap();
        let listed: Vec<String> = b
            .list("locks/")
            .unwrap()
            .into_iter()
            .map(|o| o.path)
            .collect();
        assert_eq!(listed, ["locks/bb"]);
    }
}
