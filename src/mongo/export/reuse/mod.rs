//! Unwritten collections are not read again: when the oplog between the parent snapshot's
//! cluster time and this snapshot's is known without a break — from slices `follow`
//! sealed, then from the server's own oplog for the rest — a collection no entry of it
//! touches ([`Changes`]) has exactly the parent's documents, so its `data.bson` entry is
//! taken from the parent unread. `check` still verifies those chunks like any others.
//!
//! Only collections the parent saved under the same collection UUID qualify (a drop and
//! re-create, or a rename over it, gives a new UUID even where the oplog capture would not
//! show it), and only on a replica set whose parent snapshot has the same server identity
//! and layout. The oplog is read only while that costs less than reading what it spares
//! (a quarter of those collections' size); otherwise, and on any doubt, everything is read
//! as before.

use std::collections::{BTreeSet, HashMap};

use mongodb::bson::RawDocumentBuf;

mod server;

use super::{CollectionPlan, MongoSource, ROOT};
use crate::error::{Error, Result};
use crate::mongo::layout;
use crate::mongo::oplog::changes::{entry_time, Changes};
use crate::mongo::oplog::slice::{split_entries, Slice};
use crate::repository::Repository;
use crate::snapshot::{ClusterTime, Snapshot};
use crate::tree::{Node, NodeKind};
use server::{from_server, Sink};

/// Databases a cluster-wide change stream leaves out.
const UNSTREAMED: [&str; 3] = ["admin", "local", "config"];

/// A collection's saved documents taken over from the parent snapshot.
#[derive(Clone, Debug)]
pub struct Reused {
    /// The parent's `data.bson` entry.
    pub data: Node,
    /// Its document count (from the parent's metadata).
    pub count: i64,
}

/// What [`decide`] found.
#[derive(Debug, Default)]
pub struct Decision {
    /// Collections to take from the parent, by (db, name).
    pub reused: HashMap<(String, String), Reused>,
    /// What was decided and why, for the report.
    pub note: Option<String>,
    /// The entries of the listing window ([`moment::listing_window`]), when the server's
    /// oplog was read back across it.
    pub listing_seen: Option<Changes>,
}

/// Why nothing is reused (said in the report), or a failure reading what decides it.
enum Stop {
    Why(String),
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

fn why<T>(text: impl Into<String>) -> std::result::Result<T, Stop> {
    Err(Stop::Why(text.into()))
}

/// Oplog read so far, against what reading it may cost.
#[derive(Default)]
struct Scan {
    entries: u64,
    bytes: u64,
    budget: u64,
    slices: usize,
    from_server: u64,
    /// The server's part came from its change stream, not its oplog.
    streamed: bool,
}

impl Scan {
    fn spend(&mut self, bytes: u64) -> std::result::Result<(), Stop> {
        self.entries += 1;
        // An entry costs the server a read even when little of it is sent.
        self.bytes += bytes + 64;
        if self.bytes > self.budget {
            return why(
                "the oplog since the parent snapshot is larger than reading the collections would be",
            );
        }
        Ok(())
    }
}

/// Decides which of `plan`'s collections can be taken from `parent` unread.
pub fn decide(
    repo: &Repository,
    parent: &Snapshot,
    source: &MongoSource,
    plan: &[CollectionPlan],
) -> Decision {
    let mut decision = Decision::default();
    match find(repo, parent, source, plan) {
        Ok((reused, scan, until, listing_seen)) => {
            decision.listing_seen = listing_seen;
            let total = plan.iter().filter(|c| c.kind != "view").count();
            decision.note = Some(format!(
                "{} of {total} collection(s) unwritten since snapshot {} (oplog to {until} read: \
                 {} entries, {} of them from {} slice(s), {} from the server{}): taken from it \
                 unread",
                reused.len(),
                parent.id.short(),
                scan.entries,
                scan.entries.saturating_sub(scan.from_server),
                scan.slices,
                scan.from_server,
                if scan.streamed {
                    "'s change stream"
                } else {
                    ""
                },
            ));
            decision.reused = reused;
        }
        Err(Stop::Why(text)) => {
            decision.note = Some(format!("every collection is read: {text}"));
        }
        Err(Stop::Failed(e)) => {
            decision.note = Some(format!(
                "every collection is read: the oplog could not be checked ({e})"
            ));
        }
    }
    decision
}

type Found = (
    HashMap<(String, String), Reused>,
    Scan,
    ClusterTime,
    Option<Changes>,
);

fn find(
    repo: &Repository,
    parent: &Snapshot,
    source: &MongoSource,
    plan: &[CollectionPlan],
) -> std::result::Result<Found, Stop> {
    let Some(m) = parent.mongodb.as_ref() else {
        return why("the parent snapshot saved no MongoDB server");
    };
    if !source.server.starts_with("replset:") {
        return why("only a replica set's oplog says what changed");
    }
    if m.server.as_deref() != Some(source.server.as_str())
        || m.consistency != "snapshot"
        || m.layout != Some(layout::LAYOUT)
    {
        return why("the parent snapshot is of another server, or older");
    }
    let (Some(t0), Some(t1)) = (m.cluster_time, source.cluster_time.map(ClusterTime::from)) else {
        return why("no cluster time to compare");
    };
    if t1 < t0 {
        return why("the parent snapshot is newer than this one's read time");
    }
    let candidates = candidates(repo, parent, plan)?;
    if candidates.is_empty() {
        return why("no collection of the parent snapshot matches a collection now");
    }
    let size: u64 = candidates.values().map(|r| r.data.size).sum();
    let mut scan = Scan {
        budget: size / 4 + (1 << 20),
        ..Scan::default()
    };
    let dbs: BTreeSet<&str> = candidates.keys().map(|(d, _)| d.as_str()).collect();
    let mut changes = Changes::default();
    let all_touched = |c: &Changes| candidates.keys().all(|(d, n)| c.touches(d, n));
    let mut cur = t0;
    let slices = crate::mongo::oplog::load_slices(repo)?;
    for s in chain(&slices, &source.server, &dbs, t0, t1) {
        let bytes = crate::mongo::oplog::slice_bytes(repo, s)?;
        scan.slices += 1;
        for raw in split_entries(&bytes)? {
            let entry = mongodb::bson::RawDocument::from_bytes(raw)
                .map_err(|e| Error::corrupt("oplog entry", e.to_string()))?;
            match entry_time(entry) {
                Some(t) if t <= t0 || t > t1 => continue,
                Some(_) => {}
                None => return why("an oplog entry without a time"),
            }
            scan.spend(raw.len() as u64)?;
            changes.add(entry);
        }
        cur = s.until;
        if all_touched(&changes) {
            return why("every collection was written");
        }
    }
    // The parent's change-stream position, unless the stream would leave a database out.
    let position = m
        .change_stream
        .as_deref()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| RawDocumentBuf::from_bytes(b).ok())
        .filter(|_| !dbs.iter().any(|d| UNSTREAMED.contains(d)));
    let mut listing_seen = None;
    if cur < t1 {
        let sink = Sink {
            after: cur,
            until: t1,
            window: None,
            changes: &mut changes,
            scan: &mut scan,
            all_touched: &all_touched,
        };
        listing_seen = from_server(source, sink, position.as_deref())?;
    }
    if changes.everything() || all_touched(&changes) {
        return why("every collection was written");
    }
    // Writes to `system.*` collections are not in mongod's change streams.
    let unseen = |n: &str| scan.streamed && n.starts_with("system.");
    let reused = candidates
        .into_iter()
        .filter(|((d, n), _)| !(changes.touches(d, n) || unseen(n)))
        .collect();
    Ok((reused, scan, t1, listing_seen))
}

/// The collections of `plan` the parent saved under the same UUID, with their entries.
fn candidates(
    repo: &Repository,
    parent: &Snapshot,
    plan: &[CollectionPlan],
) -> Result<HashMap<(String, String), Reused>> {
    let top = repo
        .load_tree(&parent.tree)?
        .nodes
        .into_iter()
        .find(|n| n.name == ROOT.as_bytes())
        .and_then(|n| n.subtree);
    let Some(top) = top else {
        return Ok(HashMap::new());
    };
    let mut saved: HashMap<(String, String), layout::Saved> = layout::read(repo, top)?
        .into_iter()
        .map(|s| ((s.db.clone(), s.name.clone()), s))
        .collect();
    let mut out = HashMap::new();
    for c in plan.iter().filter(|c| c.kind == "collection") {
        let key = (c.db.clone(), c.name.clone());
        let (Some(uuid), Some(s)) = (c.uuid.as_ref(), saved.remove(&key)) else {
            continue;
        };
        let count = s.meta.get_i64("count").unwrap_or(-1);
        let Some(data) = s.data else { continue };
        let whole = data.size == 0 || !data.content.is_empty();
        if s.meta.get("uuid") != Some(uuid)
            || count < 0
            || data.kind != Some(NodeKind::File)
            || !whole
        {
            continue;
        }
        out.insert(key, Reused { data, count });
    }
    Ok(out)
}

/// Slices of `server` holding every entry of `dbs`, chained from `t0` towards `t1`
/// without a break.
fn chain<'a>(
    slices: &'a [Slice],
    server: &str,
    dbs: &BTreeSet<&str>,
    t0: ClusterTime,
    t1: ClusterTime,
) -> Vec<&'a Slice> {
    let covers = |s: &Slice| {
        s.source == server
            && if s.dbs.is_empty() {
                dbs.iter()
                    .all(|d| !["admin", "local", "config"].contains(d))
            } else {
                dbs.iter().all(|d| s.dbs.iter().any(|x| x == d))
            }
    };
    let mut out = Vec::new();
    let mut cur = t0;
    while cur < t1 {
        let next = slices
            .iter()
            .filter(|s| covers(s) && s.after <= cur && s.until > cur)
            .max_by_key(|s| s.until);
        match next {
            Some(s) => {
                out.push(s);
                cur = s.until;
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SliceId;

    fn t(t: u32) -> ClusterTime {
        ClusterTime { t, i: 0 }
    }

    fn slice(after: u32, until: u32, dbs: &[&str]) -> Slice {
        Slice {
            version: crate::mongo::oplog::slice::SLICE_VERSION,
            id: SliceId::random(),
            source: "replset:rs:1".into(),
            dbs: dbs.iter().map(|d| d.to_string()).collect(),
            host: "h".into(),
            created: chrono::Utc::now(),
            after: t(after),
            until: t(until),
            until_wall: None,
            first: None,
            last: None,
            entries: 0,
            bytes: 0,
            chunks: Vec::new(),
            gap: None,
        }
    }

    fn ends(v: Vec<&Slice>) -> Vec<(u32, u32)> {
        v.iter().map(|s| (s.after.t, s.until.t)).collect()
    }

    #[test]
    fn chains_from_the_parent_time_without_a_break() {
        let dbs: BTreeSet<&str> = ["app"].into();
        let slices = vec![
            slice(0, 10, &[]),
            slice(10, 20, &[]),
            slice(15, 30, &["app"]),
            slice(30, 40, &["other"]),
            slice(41, 50, &[]),
        ];
        // Starts in the slice holding 12, takes the one reaching furthest, stops at the
        // slice of another database and never jumps the hole at 40..41.
        assert_eq!(
            ends(chain(&slices, "replset:rs:1", &dbs, t(12), t(60))),
            [(10, 20), (15, 30)]
        );
        // Another server's slices are never used.
        assert!(chain(&slices, "replset:other:1", &dbs, t(12), t(60)).is_empty());
        // A snapshot of admin's collections is not covered by slices of "every database".
        let admin: BTreeSet<&str> = ["admin"].into();
        assert!(chain(&slices, "replset:rs:1", &admin, t(1), t(60)).is_empty());
        // Nothing to read when the times are equal.
        assert!(chain(&slices, "replset:rs:1", &dbs, t(12), t(12)).is_empty());
    }
}
