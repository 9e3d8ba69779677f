//! Replays oplog entries into a server, for the selected namespaces only, in oplog order:
//! document changes are gathered per collection (collections are independent: nothing
//! the server enforces spans two of them), each collection's in exactly their order —
//! pre-images fetched once per batch, updates applied client-side, each change written
//! as the document it produced — as ordered write commands, so a unique index sees the
//! same sequence the original writes made. Consecutive changes to one document collapse
//! into one write. DDL flushes everything first, then runs in order. Writes bypass
//! document validation (the server accepted these documents once). An entry it cannot
//! reproduce exactly stops the replay with a clear message.

mod commands;
mod vet;

pub use vet::vet_raw;

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Bson, Document, RawDocument};
use mongodb::sync::{Client, Database};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::mongo::client::db_err;
use crate::mongo::ns::Renames;
use crate::mongo::oplog::diff::apply_update;
use crate::snapshot::ClusterTime;

/// Entries per batch of document changes.
const BATCH_OPS: usize = 1000;
/// Bytes of documents per write command.
const WRITE_BYTES: usize = 8 << 20;

/// Where the replay stops: entries up to `ts` (inclusive), and within `ts`'s second only
/// those whose wall clock is at or before `wall` when the target time has a fraction.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    /// Last timestamp replayed.
    pub ts: ClusterTime,
    /// Sub-second bound on the entries of second `ts.t`.
    pub wall: Option<DateTime<Utc>>,
}

impl Cut {
    /// The cut for "the state at `t`".
    pub fn at(t: DateTime<Utc>) -> Self {
        let secs = t.timestamp().clamp(0, i64::from(u32::MAX)) as u32;
        Self {
            ts: ClusterTime {
                t: secs,
                i: u32::MAX,
            },
            wall: (t.timestamp_subsec_nanos() != 0).then_some(t),
        }
    }

    /// The cut at exactly oplog timestamp `ts` (inclusive).
    pub fn exact(ts: ClusterTime) -> Self {
        Self { ts, wall: None }
    }

    /// Whether an entry with this timestamp and wall clock is replayed.
    pub fn includes(&self, ts: ClusterTime, wall: Option<DateTime<Utc>>) -> bool {
        if ts > self.ts {
            return false;
        }
        match (self.wall, wall) {
            (Some(limit), Some(w)) if ts.t == self.ts.t => w <= limit,
            _ => true,
        }
    }
}

/// What a replay did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplayStats {
    /// Entries read from the slices within the range.
    pub entries: u64,
    /// Entries applied (selected namespaces).
    pub applied: u64,
    /// Entries of other namespaces, and no-ops.
    pub skipped: u64,
    /// Commands (DDL) applied.
    pub commands: u64,
    /// Documents written or deleted.
    pub documents_written: u64,
    /// Seconds spent.
    pub seconds: f64,
    /// Timestamp of the last entry applied.
    pub last: Option<ClusterTime>,
}

/// Which namespaces are replayed, and under which names: those the snapshot holds, and
/// those created later where the snapshot held everything (its databases, or the server).
pub struct Selection {
    /// Namespaces the restored snapshot holds.
    pub saved: HashSet<String>,
    /// Databases it holds whole: collections created in them later are replayed too.
    pub whole_dbs: HashSet<String>,
    /// It holds the whole server and the slices every database: databases created later
    /// are replayed too.
    pub all_dbs: bool,
    /// `--ns` globs (empty: all of the above).
    pub globs: Vec<crate::glob::Glob>,
    /// `--ns-rename` rules.
    pub renames: Renames,
}

impl Selection {
    /// Whether entries of `ns` are replayed.
    pub fn wants(&self, ns: &str) -> bool {
        self.holds(ns) && (self.globs.is_empty() || self.globs.iter().any(|g| g.is_match(ns)))
    }

    /// Whether `ns` is in what the snapshot was taken of (whatever `--ns` selects).
    pub fn holds(&self, ns: &str) -> bool {
        let db = ns.split('.').next().unwrap_or("");
        self.saved.contains(ns)
            || self.whole_dbs.contains(db)
            || (self.all_dbs && !["", "admin", "local", "config"].contains(&db))
    }

    /// Where `ns` is restored to: (database, collection).
    pub fn target(&self, ns: &str) -> Result<(String, String)> {
        let t = self.renames.target(ns);
        let (db, coll) = crate::mongo::ns::split_ns(&t)?;
        Ok((db.to_string(), coll.to_string()))
    }
}

enum DocOp {
    Insert(Document),
    Update(Bson, Document),
    Delete(Bson),
}

/// One write of a flushed batch: a new document, a document as a change left it, or its
/// deletion.
enum Write {
    Insert(Bson, Document),
    Put(Bson, Document),
    Delete(Bson),
}

impl Write {
    fn id(&self) -> &Bson {
        match self {
            Write::Insert(id, _) | Write::Put(id, _) | Write::Delete(id) => id,
        }
    }

    /// Which write command carries it.
    fn command(&self) -> u8 {
        match self {
            Write::Insert(..) => 0,
            Write::Put(..) => 1,
            Write::Delete(_) => 2,
        }
    }
}

/// Applies entries in order.
pub struct Replayer<'a> {
    client: &'a Client,
    sel: &'a Selection,
    /// Pending document changes per source namespace, each in oplog order.
    batches: HashMap<String, Vec<(ClusterTime, DocOp)>>,
    /// Source namespaces known to exist (for dropDatabase).
    known: HashSet<String>,
    stats: ReplayStats,
    started: Instant,
}

fn bad(ts: ClusterTime, what: impl std::fmt::Display) -> Error {
    // The moment as `restore --at` and `coverage` write it.
    let when = DateTime::from_timestamp(i64::from(ts.t), 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| ts.t.to_string());
    Error::Refused(format!(
        "oplog entry at {when} #{} cannot be replayed: {what}; stopping rather than producing \
         a wrong database",
        ts.i
    ))
}

/// An entry decoded, with its timestamp.
fn decode(raw: &RawDocument) -> Result<(Document, ClusterTime)> {
    let entry =
        Document::try_from(raw).map_err(|e| Error::corrupt("oplog entry", e.to_string()))?;
    let ts = entry
        .get_timestamp("ts")
        .map(|t| ClusterTime {
            t: t.time,
            i: t.increment,
        })
        .map_err(|_| Error::corrupt("oplog entry", "no ts"))?;
    Ok((entry, ts))
}

fn id_key(id: &Bson) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = doc! {"_id": id.clone()}.to_writer(&mut v);
    v
}

/// Runs a write command and fails on write errors (which do not fail the command itself).
fn write(db: &Database, cmd: Document, what: &str) -> Result<u64> {
    let reply = db.run_command(cmd).run().map_err(|e| db_err(what, e))?;
    if let Ok(errs) = reply.get_array("writeErrors") {
        if let Some(Bson::Document(e)) = errs.first() {
            return Err(Error::Source(format!(
                "MongoDB: {what}: {}",
                e.get_str("errmsg").unwrap_or("write error")
            )));
        }
    }
    Ok(reply.get_i32("n").map(|n| n.max(0) as u64).unwrap_or(0))
}

impl<'a> Replayer<'a> {
    /// A replayer writing through `client`, knowing the restored namespaces.
    pub fn new(client: &'a Client, sel: &'a Selection, known: HashSet<String>) -> Self {
        Self {
            client,
            sel,
            batches: HashMap::new(),
            known,
            stats: ReplayStats::default(),
            started: Instant::now(),
        }
    }

    /// Applies one raw oplog entry.
    pub fn apply(&mut self, raw: &RawDocument) -> Result<()> {
        let (entry, ts) = decode(raw)?;
        self.stats.entries += 1;
        vet::vet(self.sel, &entry, ts)?;
        self.apply_doc(&entry, ts)
    }

    fn apply_doc(&mut self, entry: &Document, ts: ClusterTime) -> Result<()> {
        let op = entry.get_str("op").unwrap_or("");
        let ns = entry.get_str("ns").unwrap_or("");
        match op {
            "n" => {
                self.stats.skipped += 1;
                Ok(())
            }
            "c" => self.command(entry, ns, ts),
            "i" | "u" | "d" => {
                if !self.sel.wants(ns) {
                    self.stats.skipped += 1;
                    return Ok(());
                }
                // Server-kept collections are not saved (`vet` refused the views' and the
                // time-series buckets'); stored functions are, like any collection.
                let coll = ns.split_once('.').map_or("", |(_, c)| c);
                if coll.starts_with("system.") && coll != crate::mongo::export::SYSTEM_JS {
                    self.stats.skipped += 1;
                    return Ok(());
                }
                let o = entry
                    .get_document("o")
                    .map_err(|_| bad(ts, "no o document"))?
                    .clone();
                let id = || -> Result<Bson> {
                    entry
                        .get_document("o2")
                        .ok()
                        .and_then(|d| d.get("_id"))
                        .or_else(|| o.get("_id"))
                        .cloned()
                        .ok_or_else(|| bad(ts, "no _id"))
                };
                let dop = match op {
                    "i" => DocOp::Insert(o.clone()),
                    "u" => DocOp::Update(id()?, o.clone()),
                    _ => DocOp::Delete(id()?),
                };
                self.known.insert(ns.to_string());
                let batch = self.batches.entry(ns.to_string()).or_default();
                batch.push((ts, dop));
                if batch.len() >= BATCH_OPS {
                    self.flush_ns(ns)?;
                }
                self.stats.applied += 1;
                self.stats.last = Some(ts);
                Ok(())
            }
            other => Err(bad(ts, format!("unknown op {other:?}"))),
        }
    }

    /// Writes every pending document change.
    fn flush(&mut self) -> Result<()> {
        let mut pending: Vec<String> = self.batches.keys().cloned().collect();
        pending.sort();
        for ns in pending {
            self.flush_ns(&ns)?;
        }
        Ok(())
    }

    /// Writes the pending document changes of one collection, in their order.
    fn flush_ns(&mut self, ns: &str) -> Result<()> {
        let Some(ops) = self.batches.remove(ns).filter(|o| !o.is_empty()) else {
            return Ok(());
        };
        let (tdb, tcoll) = self.sel.target(ns)?;
        let db = self.client.database(&tdb);
        let mut state = self.pre_images(&db, &tcoll, &ops)?;
        let mut writes: Vec<Write> = Vec::with_capacity(ops.len());
        for (ts, op) in ops {
            let w = match op {
                DocOp::Insert(d) => {
                    let id = d
                        .get("_id")
                        .cloned()
                        .ok_or_else(|| bad(ts, "insert without _id"))?;
                    state.insert(id_key(&id), Some(d.clone()));
                    Write::Insert(id, d)
                }
                DocOp::Update(id, o) => {
                    let is_delta = o.keys().any(|k| k.starts_with('$'));
                    let mut cur = match state.get(&id_key(&id)) {
                        Some(Some(d)) => d.clone(),
                        _ if !is_delta => doc! {"_id": id.clone()},
                        _ => {
                            return Err(bad(
                                ts,
                                format!(
                                    "update of {ns} _id {id} which does not exist at that point \
                                     (the snapshot and the oplog disagree)"
                                ),
                            ))
                        }
                    };
                    apply_update(&mut cur, &o).map_err(|e| bad(ts, e))?;
                    state.insert(id_key(&id), Some(cur.clone()));
                    Write::Put(id, cur)
                }
                DocOp::Delete(id) => {
                    state.insert(id_key(&id), None);
                    Write::Delete(id)
                }
            };
            // Back-to-back changes of one document: only its last state matters, and no
            // other document's write comes between. (An insert then changed is put whole:
            // it did not exist before, so the upsert creates it.)
            let w = match (writes.last(), w) {
                (Some(l), w) if l.id() == w.id() => {
                    writes.pop();
                    match w {
                        // Re-inserted after a delete: the document may exist on the server
                        // until that delete runs, so it is put whole instead.
                        Write::Insert(id, d) => Write::Put(id, d),
                        other => other,
                    }
                }
                (_, w) => w,
            };
            writes.push(w);
        }
        self.write_in_order(&db, &tcoll, writes)
    }

    /// The current documents of those whose first change in `ops` is a delta update.
    fn pre_images(
        &self,
        db: &Database,
        coll: &str,
        ops: &[(ClusterTime, DocOp)],
    ) -> Result<HashMap<Vec<u8>, Option<Document>>> {
        let mut first_seen: HashSet<Vec<u8>> = HashSet::new();
        let mut need: Vec<Bson> = Vec::new();
        for (_, op) in ops {
            let (id, is_delta) = match op {
                DocOp::Insert(d) => (d.get("_id").cloned().unwrap_or(Bson::Null), false),
                DocOp::Update(id, o) => (id.clone(), o.keys().any(|k| k.starts_with('$'))),
                DocOp::Delete(id) => (id.clone(), false),
            };
            if first_seen.insert(id_key(&id)) && is_delta {
                need.push(id);
            }
        }
        let mut state = HashMap::new();
        for ids in need.chunks(BATCH_OPS) {
            let found = db
                .collection::<Document>(coll)
                .find(doc! {"_id": {"$in": ids.to_vec()}})
                .run()
                .map_err(|e| db_err(&format!("reading {}.{coll}", db.name()), e))?;
            for d in found {
                let d = d.map_err(|e| db_err(&format!("reading {}.{coll}", db.name()), e))?;
                let id = d.get("_id").cloned().unwrap_or(Bson::Null);
                state.insert(id_key(&id), Some(d));
            }
        }
        Ok(state)
    }

    /// Sends the writes as ordered commands, one per run of inserts, puts or deletes.
    fn write_in_order(&mut self, db: &Database, coll: &str, writes: Vec<Write>) -> Result<()> {
        let mut it = writes.into_iter().peekable();
        while let Some(first) = it.next() {
            let kind = first.command();
            let mut run = vec![first];
            let mut bytes = 0;
            while let Some(next) = it.peek() {
                if next.command() != kind || run.len() >= BATCH_OPS || bytes >= WRITE_BYTES {
                    break;
                }
                if let Write::Insert(_, d) | Write::Put(_, d) = next {
                    let mut raw = Vec::new();
                    let _ = d.to_writer(&mut raw);
                    bytes += raw.len();
                }
                run.extend(it.next());
            }
            let n = run.len() as u64;
            let what = format!("writing to {}.{coll}", db.name());
            let cmd = match kind {
                0 => {
                    let docs: Vec<Document> = run
                        .into_iter()
                        .filter_map(|w| match w {
                            Write::Insert(_, d) => Some(d),
                            _ => None,
                        })
                        .collect();
                    doc! {"insert": coll, "documents": docs, "ordered": true,
                    "bypassDocumentValidation": true}
                }
                1 => {
                    let updates: Vec<Document> = run
                        .into_iter()
                        .filter_map(|w| match w {
                            Write::Put(id, d) => {
                                Some(doc! {"q": {"_id": id}, "u": d, "upsert": true})
                            }
                            _ => None,
                        })
                        .collect();
                    doc! {"update": coll, "updates": updates, "ordered": true,
                    "bypassDocumentValidation": true}
                }
                _ => {
                    let deletes: Vec<Document> = run
                        .into_iter()
                        .map(|w| doc! {"q": {"_id": w.id().clone()}, "limit": 1})
                        .collect();
                    doc! {"delete": coll, "deletes": deletes, "ordered": true}
                }
            };
            write(db, cmd, &what)?;
            self.stats.documents_written += n;
        }
        Ok(())
    }

    /// Writes what is pending and returns the totals.
    pub fn finish(mut self) -> Result<ReplayStats> {
        self.flush()?;
        self.stats.seconds = self.started.elapsed().as_secs_f64();
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_is_inclusive_and_sub_second_only_within_its_second() {
        let t: DateTime<Utc> = "2026-11-28T10:16:59Z".parse().unwrap();
        let c = Cut::at(t);
        let s = t.timestamp() as u32;
        assert!(c.includes(ClusterTime { t: s, i: 900 }, None));
        assert!(!c.includes(ClusterTime { t: s + 1, i: 0 }, None));
        let half: DateTime<Utc> = "2026-11-28T10:16:59.500Z".parse().unwrap();
        let c = Cut::at(half);
        let w = |ms: i64| Some(t + chrono::Duration::milliseconds(ms));
        assert!(c.includes(ClusterTime { t: s, i: 1 }, w(499)));
        assert!(!c.includes(ClusterTime { t: s, i: 2 }, w(501)));
        assert!(c.includes(ClusterTime { t: s - 1, i: 2 }, w(-10)));
    }
}
