//! `mongodb follow` and `mongodb coverage`: continuous oplog capture, and the moments it
//! (with the snapshots) makes restorable. The capture itself lives in
//! [`crate::mongo::oplog::follow`]; this is the verb's face for callers.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lock::LockKind;
use crate::mongo::oplog::coverage::{self, Coverage};
use crate::mongo::oplog::slice::{Gap, Slice};
use crate::mongo::uri::redact;
use crate::mongo::uri::ConnectionString;
use crate::ops::context::{Ctx, Event};
use crate::repository::Repository;
use crate::snapshot::ClusterTime;

/// `mongodb follow`: what to capture and how often to seal. Runs until its context is
/// cancelled (sealing what was read), or once with `once`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowRequest {
    /// The server to follow (a replica set member: only those keep an oplog).
    pub uri: ConnectionString,
    /// Only these databases (empty: all but admin, local and config).
    #[serde(default)]
    pub dbs: Vec<String>,
    /// Seal a slice at least this often, in milliseconds (when something new was read).
    #[serde(default = "default_seal_interval_ms")]
    pub seal_interval_ms: u64,
    /// Seal a slice once this many bytes of entries are buffered.
    #[serde(default = "default_seal_bytes")]
    pub seal_bytes: u64,
    /// Pause between reads of the oplog when it had nothing new, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Read what is there, seal it, and stop.
    #[serde(default)]
    pub once: bool,
}

fn default_seal_interval_ms() -> u64 {
    60_000
}
fn default_seal_bytes() -> u64 {
    16 << 20
}
fn default_poll_ms() -> u64 {
    1_000
}

impl FollowRequest {
    /// Following `uri` with the default intervals.
    pub fn new(uri: ConnectionString) -> Self {
        Self {
            uri,
            dbs: Vec::new(),
            seal_interval_ms: default_seal_interval_ms(),
            seal_bytes: default_seal_bytes(),
            poll_ms: default_poll_ms(),
            once: false,
        }
    }
}

/// What one run of `follow` captured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FollowReport {
    /// The server's identity the slices are keyed by.
    pub source: String,
    /// Where reading resumed (`None`: from the newest entry when it started).
    pub resumed_after: Option<ClusterTime>,
    /// Slices sealed.
    pub slices: u64,
    /// Oplog entries stored in them.
    pub entries: u64,
    /// Bytes of entries stored.
    pub bytes: u64,
    /// Ranges lost because the oplog rolled over before they were read.
    pub gaps: Vec<Gap>,
    /// Oplog time captured up to (inclusive), once a slice was sealed.
    pub covered_until: Option<ClusterTime>,
    /// Ranges read from before this run's start, for snapshots that appeared while it ran.
    pub backfills: Vec<Backfilled>,
}

/// The oplog read from before a capture's start, so that a snapshot taken just before it
/// chains to its slices.
#[derive(Clone, Debug, Serialize)]
pub struct Backfilled {
    /// Range read: `(after, until]`.
    pub after: ClusterTime,
    /// This run's start.
    pub until: ClusterTime,
    /// The snapshot that needed it (short id).
    pub snapshot: String,
}

impl FollowReport {
    /// Counts a sealed slice and tells the observer.
    pub(crate) fn sealed(&mut self, slice: Slice, ctx: &Ctx) {
        self.slices += 1;
        self.entries += slice.entries;
        self.bytes += slice.bytes;
        // A backfill seals a slice older than those before it.
        self.covered_until = self.covered_until.max(Some(slice.until));
        ctx.event(Event::SliceSealed {
            slice: Box::new(slice),
        });
    }
}

/// Captures the oplog into slices until `ctx` is cancelled (or once, with `req.once`).
/// Events (resumed, sealed, gap, retrying) reach the observer as they happen.
pub fn follow(repo: &Repository, req: &FollowRequest, ctx: &Ctx) -> Result<FollowReport> {
    crate::mongo::oplog::follow::run(repo, req, ctx)
}

/// `mongodb coverage`: which sources to show.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoverageRequest {
    /// Only this source: a connection string (the server is asked what it is; data
    /// recorded before identities is matched on the connection string without
    /// credentials), or an identity as coverage reports it (`replset:…`).
    pub source: Option<String>,
}

/// Restorable ranges per source.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct CoverageReport {
    /// One entry per source.
    pub sources: Vec<Coverage>,
}

/// The time ranges each MongoDB source can be restored to.
pub fn coverage(repo: &Repository, req: &CoverageRequest, ctx: &Ctx) -> Result<CoverageReport> {
    let _lock = repo.lock_for(LockKind::Shared, "mongodb coverage", ctx)?;
    let slices = crate::mongo::oplog::load_slices(repo)?;
    let snaps = repo.snapshots()?;
    let mut all = coverage::compute(&snaps, &slices);
    if let Some(src) = &req.source {
        let want = source_names(src)?;
        all.retain(|c| {
            want.contains(&c.source) || c.uri.as_ref().is_some_and(|u| want.contains(u))
        });
        if all.is_empty() {
            return Err(Error::Selection(format!(
                "no snapshot or oplog slice of {} in this repository",
                redact(src)
            )));
        }
    }
    Ok(CoverageReport { sources: all })
}

/// Every name `src` may be recorded under: as given, without credentials, and (for a
/// reachable server) the identity it reports.
fn source_names(src: &str) -> Result<Vec<String>> {
    let mut want = vec![src.to_string(), redact(src)];
    if src.starts_with("mongodb") {
        // An unreachable server can still be matched by how it was written down.
        if let Ok(client) = crate::mongo::client::connect(src) {
            let hello = crate::mongo::client::hello(&client)?;
            want.push(crate::mongo::client::server_identity(&client, &hello, src)?);
        }
    }
    Ok(want)
}
