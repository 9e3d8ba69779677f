//! Repositories on object storage — S3 (and compatibles), Google Cloud Storage, Azure Blob
//! and SFTP — through Apache OpenDAL, behind our [`Backend`] trait so its API churn stays
//! in this file. OpenDAL is async; this backend owns a small tokio runtime and blocks on
//! it, because the engine's threads are plain threads.
//!
//! Every request has a timeout; a timed-out or otherwise temporary failure is reported as a
//! transient [`Error::Storage`], which the [`Retry`] layer [`open`] puts around this
//! backend retries (whole requests: a resumed half-read is not worth the subtlety). Packs
//! above [`MULTIPART_CHUNK`] are uploaded in parts, several at once. A put either completes or leaves nothing under its name (S3, GCS and
//! Azure make an object visible only when complete), so a failed upload never leaves a
//! half pack that a segment could point at.

use std::sync::Arc;
use std::time::Duration;

use opendal::layers::{ConcurrentLimitLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator};

mod services;
mod sftp;

use sftp::SftpLogin;

use super::layer::pace::Pace;
use super::layer::retry::Retry;
use super::layer::Layered;
use super::target::{ObjectOptions, Target};
use super::{Backend, ObjectInfo};
use crate::error::{Error, Result};

/// Part size of multipart uploads.
pub const MULTIPART_CHUNK: usize = 8 << 20;

/// An object-store repository.
pub struct ObjectBackend {
    op: Operator,
    rt: tokio::runtime::Runtime,
    location: String,
    connections: usize,
    /// Objects are written as `.tmp-<random>` and renamed into place, for services (SFTP) where
    /// a half-written file would otherwise be visible under its final name.
    write_then_rename: bool,
    /// How to reach an SFTP server with the `sftp` client, for what OpenDAL cannot do
    /// (permissions).
    sftp: Option<SftpLogin>,
}

/// The backend for an object-store location with its behaviours around it: rate limits
/// (when asked), injected faults (tests), and retries of transient failures outermost, so
/// every attempt is paced and a fault is retried like a dropped connection.
pub fn open(location: &str, target: &Target, o: &ObjectOptions) -> Result<Arc<dyn Backend>> {
    let mut b: Arc<dyn Backend> = Arc::new(ObjectBackend::new(location, target, o)?);
    if o.limit_upload.is_some() || o.limit_download.is_some() {
        b = Arc::new(Layered::new(b, Pace::new(o.limit_upload, o.limit_download)));
    }
    #[cfg(feature = "testing")]
    if let Some(r) = o.fault_ratio {
        b = Arc::new(Layered::new(b, super::layer::faults::Faults::new(r)));
    }
    Ok(Arc::new(Layered::new(
        b,
        Retry::new(o.retries.unwrap_or(8)),
    )))
}

impl ObjectBackend {
    /// Connects (lazily: nothing is sent until the first request) to `target`.
    pub fn new(location: &str, target: &Target, o: &ObjectOptions) -> Result<Self> {
        let op = services::operator(location, target, o)?;
        let connections = o.connections.unwrap_or(8).max(1);
        let op = op.layer(ConcurrentLimitLayer::new(connections)).layer(
            TimeoutLayer::new()
                .with_timeout(Duration::from_secs(120))
                .with_io_timeout(Duration::from_secs(60)),
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the storage runtime", e))?;
        Ok(Self {
            op,
            rt,
            location: location.to_string(),
            connections,
            write_then_rename: matches!(target, Target::Sftp { .. }),
            sftp: SftpLogin::of(target, o),
        })
    }

    /// Runs one request on the runtime.
    fn run<T, F, Fut>(&self, mut request: F) -> std::result::Result<T, opendal::Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, opendal::Error>>,
    {
        self.rt.block_on(request())
    }

    /// Writes to a fresh `.tmp-` name at the root, then renames over `path` (SFTP's
    /// posix-rename replaces atomically), so readers see the whole object or none.
    fn put_then_rename(&self, path: &str, data: opendal::Buffer) -> Result<()> {
        let tmp = format!(
            ".tmp-{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let written = self
            .run(|| self.op.write(&tmp, data.clone()))
            .map(|_| ())
            .and_then(|()| self.run(|| self.op.rename(&tmp, path)));
        if let Err(e) = written {
            // Best effort: a leftover `.tmp-` object is never read, only wasted space.
            let _ = self.rt.block_on(self.op.delete(&tmp));
            return Err(self.err("writing", path, e));
        }
        Ok(())
    }

    fn err(&self, what: &str, path: &str, e: opendal::Error) -> Error {
        // The cause (e.g. ssh's "Host key verification failed") is in the source chain.
        let mut detail = String::new();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !text.is_empty() && !e.to_string().contains(&text) && !detail.contains(&text) {
                detail.push_str(": ");
                detail.push_str(text.trim());
            }
            source = s.source();
        }
        let kind = e.kind();
        // A temporary failure (timeout, throttling, a dropped connection) may pass: the
        // retry layer tries again.
        let transient = e.is_temporary();
        let e = format!("{e}{detail}");
        // Refused, or the request could not even be signed: say where credentials come
        // from and which of those are set.
        let unsigned = e.to_ascii_lowercase().contains("credential");
        match kind {
            ErrorKind::NotFound => Error::Missing(format!("{path} in {}", self.location)),
            ErrorKind::PermissionDenied => Error::storage(
                format!(
                    "{what} {path} in {}: access denied: {e}; {}",
                    self.location,
                    services::credential_sources(&self.location)
                        .unwrap_or_else(|| "check the credentials".into())
                ),
                false,
            ),
            _ if unsigned => Error::storage(
                format!(
                    "{what} {path} in {}: no usable credentials ({e}); {}",
                    self.location,
                    services::credential_sources(&self.location)
                        .unwrap_or_else(|| "check the credentials".into())
                ),
                transient,
            ),
            _ => Error::storage(
                format!("{what} {path} in {}: {e}", self.location),
                transient,
            ),
        }
    }
}

impl Backend for ObjectBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn parallel_gets(&self) -> usize {
        self.connections
    }

    fn parallel_puts(&self) -> usize {
        // Each pack already sends up to four parts at once; a few packs in flight keep the
        // connections busy between one pack's last part and the next pack's first.
        (self.connections / 2).clamp(1, 4)
    }

    fn get(&self, path: &str) -> Result<Vec<u8>> {
        let buf = self
            .run(|| self.op.read(path))
            .map_err(|e| self.err("reading", path, e))?;
        Ok(buf.to_vec())
    }

    fn get_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let buf = self
            .run(|| async { self.op.read_with(path).range(offset..offset + len).await })
            .map_err(|e| self.err("reading", path, e))?;
        if buf.len() as u64 != len {
            return Err(super::short_read(path, offset, len, buf.len()));
        }
        Ok(buf.to_vec())
    }

    fn put(&self, path: &str, bytes: &[u8]) -> Result<()> {
        super::check_object_path(path)?;
        let data = opendal::Buffer::from(bytes.to_vec());
        if self.write_then_rename {
            return self.put_then_rename(path, data);
        }
        let multipart = bytes.len() > MULTIPART_CHUNK;
        let parts = self.connections.min(4);
        self.run(|| {
            let write = self.op.write_with(path, data.clone());
            async move {
                if multipart {
                    write.chunk(MULTIPART_CHUNK).concurrent(parts).await
                } else {
                    write.await
                }
            }
        })
        .map_err(|e| self.err("writing", path, e))?;
        Ok(())
    }

    fn put_new(&self, path: &str, bytes: &[u8]) -> Result<bool> {
        super::check_object_path(path)?;
        if !self.op.info().capability().write_with_if_not_exists {
            return super::put_if_absent(self, path, bytes);
        }
        // One request the service refuses when the object exists (S3 `If-None-Match: *`,
        // GCS `ifGenerationMatch=0`, Azure `If-None-Match: *`, SFTP an exclusive open).
        let data = opendal::Buffer::from(bytes.to_vec());
        let write = || {
            let w = self.op.write_with(path, data.clone()).if_not_exists(true);
            async move { w.await }
        };
        match self.run(write) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::ConditionNotMatch => Ok(false),
            Err(e) => Err(self.err("writing", path, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        // Listing a prefix that is not a "directory" path is what S3 does natively; the
        // repository only lists directories (`packs/`, `index/`, …), so ask for those.
        let dir = match prefix.rfind('/') {
            Some(i) => &prefix[..=i],
            None => "",
        };
        let entries = match self.run(|| async { self.op.list_with(dir).recursive(true).await }) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.err("listing", prefix, e)),
        };
        let mut out: Vec<ObjectInfo> = Vec::new();
        for e in entries {
            if e.metadata().is_dir() || !e.path().starts_with(prefix) {
                continue;
            }
            let size = match e.metadata().content_length() {
                0 => self
                    .run(|| self.op.stat(e.path()))
                    .map(|m| m.content_length())
                    .unwrap_or(0),
                n => n,
            };
            out.push(ObjectInfo {
                path: e.path().trim_start_matches('/').to_string(),
                size,
                modified: e
                    .metadata()
                    .last_modified()
                    .map(std::time::SystemTime::from),
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn restrict_access(&self) -> Result<()> {
        let Some(s) = &self.sftp else {
            return Ok(());
        };
        // Quoted for sftp's command parser; the root 0700 keeps everything below private
        // whatever mode the server gives new files.
        let q = |p: &str| format!("\"{}\"", p.replace('\\', "\\\\").replace('"', "\\\""));
        let root = if s.path.is_empty() { "/" } else { &s.path };
        let mut cmds = format!(
            "chmod 700 {}\n-chmod 700 {}\n",
            q(root),
            q(&format!("{}/keys", s.path))
        );
        let private = self
            .list("keys/")?
            .into_iter()
            .map(|o| o.path)
            .chain(self.exists("config")?.then(|| "config".to_string()));
        for p in private {
            cmds.push_str(&format!("chmod 600 {}\n", q(&format!("{}/{p}", s.path))));
        }
        s.batch(&cmds)
    }

    fn remove_leftovers(&self, age: Duration) -> Result<(u64, u64)> {
        // Only SFTP writes `.tmp-` objects (at the root); the others never make partial
        // objects visible.
        if !self.write_then_rename {
            return Ok((0, 0));
        }
        let entries = match self.run(|| self.op.list("/")) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(self.err("listing", "/", e)),
        };
        let now = std::time::SystemTime::now();
        let (mut n, mut bytes) = (0, 0);
        for e in entries {
            let name = e.path().trim_start_matches('/');
            let old = e
                .metadata()
                .last_modified()
                .and_then(|m| now.duration_since(m.into()).ok())
                .is_some_and(|a| a >= age);
            if name.starts_with(".tmp-") && !e.metadata().is_dir() && old {
                self.delete(name)?;
                n += 1;
                bytes += e.metadata().content_length();
            }
        }
        Ok((n, bytes))
    }

    fn delete(&self, path: &str) -> Result<()> {
        match self.run(|| self.op.delete(path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("deleting", path, e)),
        }
    }

    fn exists(&self, path: &str) -> Result<bool> {
        self.run(|| self.op.exists(path))
            .map_err(|e| self.err("checking", path, e))
    }
}
