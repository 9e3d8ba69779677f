//! Snapshot objects (`snapshots/<id>`): small sealed JSON documents, written last.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::{SnapshotId, TreeId};
use crate::source::exclude::ExcludeSettings;

/// Snapshot object format version.
pub const SNAPSHOT_VERSION: u32 = 1;

/// What was backed up.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Source {
    /// "files" (or "mongodb").
    pub kind: String,
    /// Human-readable description, e.g. the paths or a URI without credentials.
    pub description: String,
}

/// A file or directory that could not be read, and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Skipped {
    /// Path as given/walked.
    pub path: String,
    /// The error.
    pub error: String,
}

/// Statistics of the run that created a snapshot.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Files not in the parent snapshot.
    pub files_new: u64,
    /// Files in the parent whose content or metadata changed.
    pub files_changed: u64,
    /// Files reused unchanged from the parent.
    pub files_unchanged: u64,
    /// Files of the parent that are gone (deleted or now excluded).
    #[serde(default)]
    pub files_removed: u64,
    /// Directories.
    pub dirs: u64,
    /// Other entries (symlinks, devices, fifos).
    pub others: u64,
    /// Sum of file sizes in the snapshot.
    pub total_bytes: u64,
    /// Bytes of file content read.
    pub bytes_read: u64,
    /// Blobs stored by this run (not already in the repository).
    pub blobs_added: u64,
    /// Plaintext bytes of those blobs.
    pub bytes_added_raw: u64,
    /// Bytes written to packs after compression and encryption.
    pub bytes_added: u64,
    /// Packs written.
    pub packs_written: u64,
    /// Entries that could not be read.
    pub skipped: Vec<Skipped>,
    /// Files whose size, modification or change time differed after reading from what
    /// they were when listed: stored as read, which may mix old and new content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_during_read: Vec<String>,
    /// Wall-clock duration of the run in seconds.
    pub duration_secs: f64,
}

/// One snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    /// Snapshot format version.
    pub version: u32,
    /// Random id; also the object's name.
    pub id: SnapshotId,
    /// When the snapshot was started (UTC, nanoseconds).
    pub time: DateTime<Utc>,
    /// Host that took it.
    pub host: String,
    /// User that took it.
    pub user: String,
    /// What was backed up.
    pub source: Source,
    /// Absolute paths given on the command line.
    pub paths: Vec<String>,
    /// User tags.
    pub tags: Vec<String>,
    /// Snapshot this one was compared against, if any.
    pub parent: Option<SnapshotId>,
    /// Root tree.
    pub tree: TreeId,
    /// Run statistics.
    pub summary: Summary,
    /// What was excluded (absent when nothing was).
    #[serde(default, skip_serializing_if = "ExcludeSettings::is_empty")]
    pub excludes: ExcludeSettings,
    /// For snapshots holding MongoDB collections: which server and at what time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mongodb: Option<MongoRecord>,
    /// Set on a snapshot `repo repair` rewrote without data that was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repaired: Option<Repaired>,
}

/// How a repaired snapshot came to be.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Repaired {
    /// The snapshot it replaces (removed).
    pub from: SnapshotId,
    /// When the repair ran.
    pub time: DateTime<Utc>,
    /// Files and directories left out because their data was lost.
    pub lost_paths: u64,
}

/// How the MongoDB part of a snapshot was taken.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MongoRecord {
    /// Connection string without credentials.
    pub uri: String,
    /// Cluster time all collections were read at (replica sets and sharded clusters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_time: Option<ClusterTime>,
    /// "snapshot" (one point in time) or "per-collection" (standalone servers).
    pub consistency: String,
    /// Collections and views saved.
    pub collections: u64,
    /// What was asked for (absent in snapshots written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<MongoScope>,
    /// What the server says it is (replica set name and id, or cluster id): how slices
    /// and snapshots of one server find each other whatever the connection string
    /// (absent in snapshots written before it was recorded: `uri` is used then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Tree layout of the collections (absent: 1, flat files; 2: a directory each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<u32>,
    /// The server's change-stream resume token for where a stream opened just before
    /// `cluster_time` was fixed, as hex of its BSON document: the next snapshot resumes
    /// there to learn what was written since (absent: none was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_stream: Option<String>,
}

impl MongoRecord {
    /// The key slices of the same server carry: its identity, else (older snapshots)
    /// the connection string.
    pub fn source_key(&self) -> &str {
        self.server.as_deref().unwrap_or(&self.uri)
    }
}

/// The selection a MongoDB snapshot was taken with: whole databases and single collections;
/// both empty means the whole server (every database but admin, local and config).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MongoScope {
    /// Databases saved whole (`--db`).
    #[serde(default)]
    pub dbs: Vec<String>,
    /// Single collections as `db.coll` (`--collection`).
    #[serde(default)]
    pub collections: Vec<String>,
}

impl MongoScope {
    /// Whether the snapshot asked for the whole server.
    pub fn whole_server(&self) -> bool {
        self.dbs.is_empty() && self.collections.is_empty()
    }
}

/// A MongoDB cluster time (BSON timestamp).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClusterTime {
    /// Seconds since the epoch.
    pub t: u32,
    /// Ordinal within the second.
    pub i: u32,
}

impl From<bson::Timestamp> for ClusterTime {
    fn from(t: bson::Timestamp) -> Self {
        ClusterTime {
            t: t.time,
            i: t.increment,
        }
    }
}

impl From<ClusterTime> for bson::Timestamp {
    fn from(c: ClusterTime) -> Self {
        bson::Timestamp {
            time: c.t,
            increment: c.i,
        }
    }
}

impl std::fmt::Display for ClusterTime {
    /// UTC seconds and the ordinal, as `--at` accepts it: "2026-11-28T10:16:59Z #3".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let when = chrono::DateTime::from_timestamp(i64::from(self.t), 0).unwrap_or_default();
        write!(f, "{} #{}", when.format("%Y-%m-%dT%H:%M:%SZ"), self.i)
    }
}

/// Object name of a snapshot.
pub fn snapshot_path(id: &SnapshotId) -> String {
    format!("snapshots/{}", id.to_hex())
}

impl Snapshot {
    /// Seals for storage.
    pub fn seal(&self, key: &MasterKey) -> Vec<u8> {
        key.seal(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// Opens a stored snapshot and checks it is the one its name says.
    pub fn open(key: &MasterKey, bytes: &[u8], expected: &SnapshotId) -> Result<Self> {
        let what = format!("snapshot {}", expected.short());
        let plain = key.open(bytes, &what)?;
        let s = Self::decode(&plain, &what)?;
        if s.id != *expected {
            return Err(Error::corrupt(
                what,
                "id inside does not match the object name",
            ));
        }
        Ok(s)
    }

    /// Decodes the plaintext JSON.
    pub fn decode(plain: &[u8], what: &str) -> Result<Self> {
        let s: Snapshot =
            serde_json::from_slice(plain).map_err(|e| Error::corrupt(what, e.to_string()))?;
        if s.version != SNAPSHOT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: s.version,
                supported: SNAPSHOT_VERSION,
            });
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_name_check() {
        let k = MasterKey::from_secret([5; 32]);
        let s = Snapshot {
            version: 1,
            id: SnapshotId::random(),
            time: Utc::now(),
            host: "h".into(),
            user: "u".into(),
            source: Source {
                kind: "files".into(),
                description: "/x".into(),
            },
            paths: vec!["/x".into()],
            tags: vec!["daily".into()],
            parent: None,
            tree: TreeId([1; 32]),
            summary: Summary::default(),
            excludes: Default::default(),
            mongodb: None,
            repaired: None,
        };
        let sealed = s.seal(&k);
        assert_eq!(Snapshot::open(&k, &sealed, &s.id).unwrap(), s);
        assert!(Snapshot::open(&k, &sealed, &SnapshotId::random()).is_err());
    }

    proptest! {
        #[test]
        fn decode_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Snapshot::decode(&bytes, "s");
        }
    }
}
