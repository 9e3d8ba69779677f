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

/// An SFTP location as the `sftp` command-line client takes it.
struct SftpLogin {
    destination: String,
    port: Option<u16>,
    key: Option<String>,
    accept_new: bool,
    path: String,
}

impl SftpLogin {
    /// Runs `commands` in one batch session (`sftp -b -`), through the same `ssh` OpenDAL
    /// uses (the first on PATH, with the user's configuration).
    fn batch(&self, commands: &str) -> Result<()> {
        use std::io::Write;
        let mut c = std::process::Command::new("sftp");
        c.args(["-q", "-b", "-", "-S", "ssh"]);
        if let Some(p) = self.port {
            c.args(["-P", &p.to_string()]);
        }
        if let Some(k) = &self.key {
            c.args(["-i", k]);
        }
        let strict = if self.accept_new { "accept-new" } else { "yes" };
        c.args(["-o", &format!("StrictHostKeyChecking={strict}")]);
        c.arg(&self.destination)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = c
            .spawn()
            .map_err(|e| Error::io("running the sftp client (install openssh-client)", e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(commands.as_bytes())
                .map_err(|e| Error::io("talking to the sftp client", e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::io("running the sftp client", e))?;
        if !out.status.success() {
            return Err(Error::storage(
                format!(
                    "restricting access on {}: {}",
                    self.destination,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                false,
            ));
        }
        Ok(())
    }
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

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn root_of(prefix: &str) -> String {
    format!("/{}", prefix.trim_matches('/'))
}

impl ObjectBackend {
    /// Connects (lazily: nothing is sent until the first request) to `target`.
    pub fn new(location: &str, target: &Target, o: &ObjectOptions) -> Result<Self> {
        // The process-wide HTTP client (reqwest); idempotent.
        opendal::install_default();
        let cfg = |e: opendal::Error| Error::Invalid(format!("{location}: {e}"));
        let op = match target {
            Target::S3 {
                endpoint,
                bucket,
                prefix,
            } => {
                let mut b = opendal::services::S3::default()
                    .bucket(bucket)
                    .root(&root_of(prefix));
                if let Some(e) = o.endpoint.as_ref().or(endpoint.as_ref()) {
                    b = b.endpoint(e);
                }
                let region = o
                    .region
                    .clone()
                    .or_else(|| env("AWS_REGION"))
                    .or_else(|| env("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|| "us-east-1".into());
                b = b.region(&region);
                if o.virtual_host_style {
                    b = b.enable_virtual_host_style();
                }
                if let Some(c) = &o.storage_class {
                    b = b.default_storage_class(c);
                }
                if o.no_ambient_credentials {
                    b = b.disable_config_load().disable_ec2_metadata();
                    if let (Some(k), Some(s)) =
                        (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
                    {
                        b = b.access_key_id(&k).secret_access_key(&s);
                    }
                }
                Operator::new(b).map_err(cfg)?
            }
            Target::Gcs { bucket, prefix } => {
                let mut b = opendal::services::Gcs::default()
                    .bucket(bucket)
                    .root(&root_of(prefix));
                // Google's tools accept the emulator's address with or without a scheme.
                let emulator = env("STORAGE_EMULATOR_HOST").map(|h| {
                    if h.contains("://") {
                        h
                    } else {
                        format!("http://{h}")
                    }
                });
                if let Some(e) = o.endpoint.as_ref().or(emulator.as_ref()) {
                    b = b.endpoint(e);
                }
                if let Some(c) = &o.storage_class {
                    b = b.default_storage_class(c);
                }
                let credentials = env("GOOGLE_APPLICATION_CREDENTIALS");
                if let Some(p) = &credentials {
                    b = b.credential_path(p);
                }
                // Like Google's client libraries, talk to an emulator anonymously unless
                // credentials are given (rather than asking a VM metadata server for a token).
                let anonymous_emulator = emulator.is_some() && credentials.is_none();
                if o.no_ambient_credentials || anonymous_emulator {
                    b = b
                        .disable_vm_metadata()
                        .disable_config_load()
                        .skip_signature();
                }
                Operator::new(b).map_err(cfg)?
            }
            Target::Azure { container, prefix } => {
                let b = match env("AZURE_STORAGE_CONNECTION_STRING") {
                    // The form Azure's own tools print (and `UseDevelopmentStorage=true`
                    // for Azurite): account, key or SAS, and endpoint in one variable.
                    Some(conn) => opendal::services::Azblob::from_connection_string(&conn)
                        .map_err(|e| {
                            Error::Invalid(format!(
                                "{location}: AZURE_STORAGE_CONNECTION_STRING: {e}"
                            ))
                        })?,
                    None => {
                        // restic's variable names are accepted too, for users moving over.
                        let account = env("AZURE_STORAGE_ACCOUNT")
                            .or_else(|| env("AZURE_ACCOUNT_NAME"))
                            .ok_or_else(|| {
                                Error::Invalid(format!(
                                    "{location}: set AZURE_STORAGE_ACCOUNT (and \
                                     AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN), or \
                                     AZURE_STORAGE_CONNECTION_STRING"
                                ))
                            })?;
                        let endpoint = env("AZURE_STORAGE_ENDPOINT")
                            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
                        let mut b = opendal::services::Azblob::default()
                            .endpoint(&endpoint)
                            .account_name(&account);
                        if let Some(k) =
                            env("AZURE_STORAGE_KEY").or_else(|| env("AZURE_ACCOUNT_KEY"))
                        {
                            b = b.account_key(&k);
                        }
                        if let Some(t) =
                            env("AZURE_STORAGE_SAS_TOKEN").or_else(|| env("AZURE_ACCOUNT_SAS"))
                        {
                            b = b.sas_token(&t);
                        }
                        b
                    }
                };
                let mut b = b.container(container).root(&root_of(prefix));
                if let Some(e) = &o.endpoint {
                    b = b.endpoint(e);
                }
                Operator::new(b).map_err(cfg)?
            }
            Target::Sftp {
                user,
                host,
                port,
                path,
            } => {
                // Without a port, the ssh client's configuration (Host aliases) decides.
                let endpoint = match port {
                    Some(p) => format!("ssh://{host}:{p}"),
                    None => format!("ssh://{host}"),
                };
                let mut b = opendal::services::Sftp::default()
                    .endpoint(&endpoint)
                    .root(path)
                    .known_hosts_strategy(if o.ssh_accept_new_host {
                        "add"
                    } else {
                        "strict"
                    });
                if let Some(u) = user {
                    b = b.user(u);
                }
                if let Some(k) = &o.ssh_key {
                    b = b.key(k);
                }
                Operator::new(b).map_err(cfg)?
            }
        };
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
            sftp: match target {
                Target::Sftp {
                    user,
                    host,
                    port,
                    path,
                } => Some(SftpLogin {
                    destination: match user {
                        Some(u) => format!("{u}@{host}"),
                        None => host.clone(),
                    },
                    port: *port,
                    key: o.ssh_key.clone(),
                    accept_new: o.ssh_accept_new_host,
                    path: path.trim_end_matches('/').to_string(),
                }),
                _ => None,
            },
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
        match kind {
            ErrorKind::NotFound => Error::Missing(format!("{path} in {}", self.location)),
            ErrorKind::PermissionDenied => Error::storage(
                format!(
                    "{what} {path} in {}: access denied (check the credentials): {e}",
                    self.location
                ),
                false,
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
