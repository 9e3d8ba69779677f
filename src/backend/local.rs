//! A repository in a local directory. Writes go to a temporary file, are fsynced and then
//! renamed into place, so a crash never leaves a half-written object under its real name.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{Backend, ObjectInfo};
use crate::error::{Error, IoContext, Result};

/// Prefix of in-flight temporary files; `list` skips them.
const TMP_PREFIX: &str = ".tmp-";

/// Local-filesystem backend rooted at a directory.
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    /// A backend rooted at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
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
        let full = self.full(path)?;
        let dir = full
            .parent()
            .ok_or_else(|| Error::Invalid(format!("invalid object path {path:?}")))?;
        fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!(
            "{TMP_PREFIX}{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &full)?;
            Ok(())
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(format!("writing {path}"), e));
        }
        sync_dir(dir);
        Ok(())
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
                let md = ent
                    .metadata()
                    .ctx(|| format!("stat {}", ent.path().display()))?;
                if md.is_dir() {
                    stack.push(ent.path());
                } else if let Ok(rel) = ent.path().strip_prefix(&self.root) {
                    out.push(ObjectInfo {
                        path: rel.to_string_lossy().replace('\\', "/"),
                        size: md.len(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &str) -> Result<()> {
        match fs::remove_file(self.full(path)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("deleting {path}"), e)),
        }
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
}
