//! The service's audit log: one JSON line per HTTP request — when, who (the token's name
//! and role, never the token), from which address, what (method, route, path: never the
//! query or body), the status and how long it took — in `<state root>/audit.jsonl`,
//! mode 0600, rotated at 16 MiB with one old file kept (`audit.jsonl.1`).
//!
//! Operations that change or restore from a repository are also in that repository's
//! operation log, with the token's name. This log adds what does not belong in a
//! repository many hosts share: every read, every refused call and every token change.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Rotate past this size.
const MAX_BYTES: u64 = 16 << 20;

/// One request.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub time: DateTime<Utc>,
    pub method: String,
    /// The route it matched (`/api/backup/{id}`), or `unmatched`.
    pub route: String,
    /// The path asked for (no query string).
    pub path: String,
    pub status: u16,
    /// The token's name; absent when none was accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The token's role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The client's address.
    pub ip: String,
    /// How long it took to answer, in milliseconds.
    pub ms: f64,
}

/// The open audit log.
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl AuditLog {
    /// The log at `<state_root>/audit.jsonl` (opened on first write).
    pub fn new(state_root: &Path) -> Self {
        Self {
            path: state_root.join("audit.jsonl"),
            file: Mutex::new(None),
        }
    }

    /// Appends `e`. A log that cannot be written is reported in the service log and
    /// does not fail the request.
    pub fn write(&self, e: &AuditEntry) {
        let mut line = match serde_json::to_vec(e) {
            Ok(l) => l,
            Err(_) => return,
        };
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = self.append(&mut f, &line) {
            *f = None;
            tracing::warn!("audit log {}: {err}", self.path.display());
        }
    }

    fn append(&self, f: &mut Option<File>, line: &[u8]) -> std::io::Result<()> {
        if f.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            *f = Some(open_append(&self.path)?);
        }
        let Some(file) = f.as_mut() else {
            return Ok(());
        };
        if file.metadata()?.len() + line.len() as u64 > MAX_BYTES {
            std::fs::rename(&self.path, self.path.with_extension("jsonl.1"))?;
            *file = open_append(&self.path)?;
        }
        file.write_all(line)
    }

    /// The newest `limit` entries, newest first, of `token` only when given.
    pub fn tail(&self, limit: usize, token: Option<&str>) -> Result<Vec<AuditEntry>> {
        let mut out = Vec::new();
        for path in [self.path.clone(), self.path.with_extension("jsonl.1")] {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
            };
            let matching = text
                .lines()
                .rev()
                .filter_map(|l| serde_json::from_str::<AuditEntry>(l).ok())
                .filter(|e| token.is_none_or(|t| e.token.as_deref() == Some(t)));
            for e in matching {
                if out.len() == limit {
                    return Ok(out);
                }
                out.push(e);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize, token: Option<&str>) -> AuditEntry {
        AuditEntry {
            time: Utc::now(),
            method: "GET".into(),
            route: "/api/jobs".into(),
            path: format!("/api/jobs/{i}"),
            status: 200,
            token: token.map(str::to_string),
            role: None,
            ip: "127.0.0.1".into(),
            ms: 1.0,
        }
    }

    #[test]
    fn appends_filters_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        for i in 0..5 {
            log.write(&entry(i, if i % 2 == 0 { Some("a") } else { None }));
        }
        let all = log.tail(10, None).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].path, "/api/jobs/4", "newest first");
        let a = log.tail(2, Some("a")).unwrap();
        assert_eq!(
            a.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
            ["/api/jobs/4", "/api/jobs/2"]
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("audit.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
