//! The operation log: one encrypted, immutable record per operation a user ran against a
//! repository (snapshot, restore, check, forget, prune, copy, key changes, plan runs,
//! oplog follow), written to `log/<id>` after the operation ends, so every host's history
//! is readable from any host (format-spec/layout.md, "Operation log").
//!
//! A record holds what ran, where, by whom, when, how it ended, the report and the error;
//! the command line is stored with the credentials of any URI in it replaced, and reports
//! and errors never hold secrets to begin with. When the repository cannot be reached the
//! record waits in this host's journal ([`Pending`]) and is written before the next record
//! that reaches the repository.

mod pending;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};

pub use pending::{record, Pending};

/// Where records live in a repository.
pub const PREFIX: &str = "log/";

/// Reports larger than this are stored as a note saying so.
const MAX_REPORT: usize = 256 << 10;

/// One operation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// Record format version, 1.
    pub version: u32,
    /// A ULID: sortable by time, unique across hosts.
    pub id: String,
    /// snapshot, restore, check, forget, prune, copy, key, repair, unlock, run, follow.
    pub kind: String,
    /// The plan it ran for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    pub host: String,
    pub user: String,
    /// The API token's name, when the operation came through `repo serve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The command line, credentials replaced.
    pub command: Vec<String>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// ok, warnings, failed, skipped or cancelled.
    pub result: String,
    /// The operation's report, as its JSON output.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub report: serde_json::Value,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Record {
    /// A record of `kind` started now by this host and user, running `command`.
    pub fn start(kind: &str, command: &[String]) -> Self {
        let now = Utc::now();
        Self {
            version: 1,
            id: operation_id(),
            kind: kind.to_string(),
            plan: None,
            host: crate::sysinfo::hostname(),
            user: crate::sysinfo::username(),
            token: None,
            command: redact_command(command),
            started: now,
            finished: now,
            result: "ok".into(),
            report: serde_json::Value::Null,
            error: None,
        }
    }

    /// Ends the record: how it went, its report (a note instead when it is very large)
    /// and its error.
    pub fn finish(&mut self, result: &str, report: serde_json::Value, error: Option<String>) {
        self.finished = Utc::now();
        self.result = result.to_string();
        let size = serde_json::to_vec(&report).map_or(0, |v| v.len());
        self.report = if size > MAX_REPORT {
            serde_json::json!({ "omitted": format!("the report was {size} bytes") })
        } else {
            report
        };
        self.error = error;
    }

    fn seal(&self, key: &MasterKey) -> Result<Vec<u8>> {
        let plain = serde_json::to_vec(self)
            .map_err(|e| Error::Internal(format!("encoding a log record: {e}")))?;
        Ok(key.seal(&plain))
    }

    /// Decodes a record's plaintext.
    pub fn decode(plain: &[u8], what: &str) -> Result<Self> {
        let r: Record =
            serde_json::from_slice(plain).map_err(|e| Error::corrupt(what, e.to_string()))?;
        if r.version != 1 {
            return Err(Error::corrupt(
                what,
                format!("record version {}", r.version),
            ));
        }
        Ok(r)
    }
}

/// `args` with the user-info part of every `scheme://user:password@host` replaced.
pub fn redact_command(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| match a.find("://") {
            Some(i) => {
                let (head, rest) = a.split_at(i + 3);
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                match rest[..end].rfind('@') {
                    Some(at) => format!("{head}***@{}", &rest[at + 1..]),
                    None => a.clone(),
                }
            }
            None => a.clone(),
        })
        .collect()
}

/// A repository records can be written to.
#[derive(Clone)]
pub struct Sink {
    backend: Arc<dyn Backend>,
    key: MasterKey,
    /// The repository's `config` object as it was opened, to tell it from another one
    /// created at the same location since.
    config_sealed: Arc<[u8]>,
}

impl Sink {
    /// The log of the open repository `repo`.
    #[cfg(feature = "local-index")]
    pub fn of(repo: &crate::repository::Repository) -> Self {
        Self {
            backend: repo.shared_backend(),
            key: repo.key().clone(),
            config_sealed: repo.sealed_config().into(),
        }
    }

    /// Whether the location still holds the repository this sink was made for (not
    /// removed, nor removed and created again while the operation ran).
    pub fn same_repository(&self) -> Result<bool> {
        use crate::config::{still_there, Still};
        Ok(still_there(self.backend.as_ref(), &self.config_sealed)? == Still::Same)
    }

    /// Writes `rec` as `log/<id>`.
    pub fn write(&self, rec: &Record) -> Result<()> {
        self.backend
            .put(&format!("{PREFIX}{}", rec.id), &rec.seal(&self.key)?)
    }
}

/// Log objects that could not be read: (object name, why).
pub type Unreadable = Vec<(String, String)>;

/// Every record in the repository, oldest first, and the names of those that could not
/// be read (with why).
pub fn list(backend: &dyn Backend, key: &MasterKey) -> Result<(Vec<Record>, Unreadable)> {
    list_via(backend, |path, name| {
        backend
            .get(path)
            .and_then(|b| key.open(&b, name))
            .and_then(|p| Record::decode(&p, name))
    })
}

/// [`list`] with each record read and opened by `read(object path, name)` — several at
/// once, as each is a round trip to remote storage.
pub fn list_via(
    backend: &dyn Backend,
    read: impl Fn(&str, &str) -> Result<Record> + Sync,
) -> Result<(Vec<Record>, Unreadable)> {
    use rayon::prelude::*;
    let mut objs = backend.list(PREFIX)?;
    objs.sort_by(|a, b| a.path.cmp(&b.path));
    objs.retain(|o| {
        !o.path
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with(".tmp-"))
    });
    let results: Vec<(String, Result<Record>)> = crate::backend::with_read_threads(backend, || {
        objs.par_iter()
            .map(|o| {
                let name = o.path.trim_start_matches('/').to_string();
                let r = read(&o.path, &name);
                (name, r)
            })
            .collect()
    });
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (name, read) in results {
        match read {
            Ok(r) => out.push(r),
            // Trimmed between list and get.
            Err(Error::Missing(_)) => {}
            Err(e) => bad.push((name, e.to_string())),
        }
    }
    Ok((out, bad))
}

/// The object names of records that finished before `before` — and of unreadable
/// records whose id says they started before it.
pub fn expired(
    backend: &dyn Backend,
    key: &MasterKey,
    before: DateTime<Utc>,
) -> Result<Vec<String>> {
    let (records, bad) = list(backend, key)?;
    let mut out: Vec<String> = records
        .iter()
        .filter(|r| r.finished < before)
        .map(|r| format!("{PREFIX}{}", r.id))
        .collect();
    for (name, _) in bad {
        let id = name.rsplit('/').next().unwrap_or("");
        if started_at(id).is_some_and(|t| t < before) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Deletes what [`expired`] names; returns how many.
pub fn trim(backend: &dyn Backend, key: &MasterKey, before: DateTime<Utc>) -> Result<usize> {
    let names = expired(backend, key, before)?;
    for n in &names {
        backend.delete(n)?;
    }
    Ok(names.len())
}

/// Crockford's base32, as ULIDs spell it.
const ULID_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new operation id: a ULID (48 bits of milliseconds, 80 random bits), so ids sort by
/// time and two hosts never make the same one.
pub fn operation_id() -> String {
    let ms = Utc::now().timestamp_millis().max(0) as u128;
    let value = (ms << 80) | (rand::random::<u128>() >> 48);
    (0..26)
        .rev()
        .map(|i| ULID_ALPHABET[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// The moment a ULID was made (its first 10 characters: milliseconds since the epoch).
pub fn started_at(id: &str) -> Option<DateTime<Utc>> {
    if id.len() != 26 {
        return None;
    }
    let mut ms: i64 = 0;
    for c in id.bytes().take(10) {
        let v = ULID_ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())?;
        ms = ms.checked_mul(32)?.checked_add(v as i64)?;
    }
    DateTime::from_timestamp_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_uris_are_replaced() {
        let args: Vec<String> = [
            "repo",
            "snapshot",
            "mongodb://admin:s3cr%40t@db1:27017,db2/?authSource=admin",
            "--mongodb-uri=mongodb://u:p@h/",
            "https://host/path@x",
            "/plain/path",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = redact_command(&args);
        assert_eq!(r[2], "mongodb://***@db1:27017,db2/?authSource=admin");
        assert_eq!(r[3], "--mongodb-uri=mongodb://***@h/");
        assert_eq!(
            r[4], "https://host/path@x",
            "an @ after the host is not user info"
        );
        assert_eq!(r[5], "/plain/path");
    }

    #[test]
    fn operation_ids_carry_their_time() {
        let before = Utc::now();
        let id = operation_id();
        let t = started_at(&id).unwrap();
        assert!((t - before).num_milliseconds().abs() < 1000, "{id} {t}");
        assert!(started_at("not-a-ulid").is_none());
    }
}
