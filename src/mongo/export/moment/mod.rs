//! Whether what a replica-set snapshot read is the state at its cluster time.
//!
//! A snapshot reads every collection in a snapshot session fixed at one cluster time T,
//! and `restore --at` replays the oplog from T onto what it saved. Two things can make
//! the saved state another moment's:
//! - the collection list, options and index specs come from `listCollections` and
//!   `listIndexes`, which answer for the present, not for T;
//! - a server may answer a snapshot session's reads with the present (SecantusDB does:
//!   it accepts snapshot sessions but shows writes made after their time).
//!
//! So before the snapshot is committed, the oplog written since the reads began is read
//! ([`confirm`]): a command or `system.*` write in a database of the snapshot's scope
//! while the collections were being listed, or a document write to a collection while it
//! was being read on a server that does not read at T, means no snapshot is written
//! ([`Error::Moved`]; the snapshot verb reads again). Whether the server reads at T is
//! asked of the server itself, with a document the oplog proves absent (or present) at T.
//! An idle server (its last write before T) needs no oplog at all. Where the server's
//! change stream can answer — resumed where this snapshot's opened, before its listing
//! began ([`crate::mongo::oplog::stream`]) — its events stand for the entries, which
//! spares SecantusDB's scan of its whole oplog.

use mongodb::bson::{doc, Bson, RawDocument, RawDocumentBuf, Timestamp};

mod scan;

use super::MongoSource;
use crate::error::{Error, Result};
use crate::mongo::client::{db_err, hello, is_mongos};
use crate::mongo::oplog::changes::Changes;
use crate::snapshot::ClusterTime;
use scan::read_oplog;

/// Entries whose document ids are remembered for probes; past this, no new probe is taken.
const TRACKED: usize = 100_000;
/// Probes tried at most.
const PROBES: usize = 8;

/// What the snapshot promised to cover, for [`confirm`].
pub struct Window<'a> {
    /// The snapshot's cluster time (T).
    pub at: Timestamp,
    /// The server's last write before listing began (the listing may precede T).
    pub listed_from: Option<Timestamp>,
    /// The server's last write when listing ended.
    pub listed_until: Option<Timestamp>,
    /// Databases of the scope; `None`: every database but admin, local and config.
    pub scope: Option<&'a [String]>,
    /// Collections whose documents were read now (not taken from the parent), as
    /// "db.coll", each with the server's last write once it was read to its end (`None`:
    /// not known, so any later write counts).
    pub read: Vec<(String, Option<Timestamp>)>,
    /// The entries of [`listing_window`], when the check of what the parent snapshot
    /// spares already read the oplog across it: with no collection read, nothing else is
    /// needed, so the oplog is not read twice (on SecantusDB every read scans all of it).
    pub listing_seen: Option<Changes>,
    /// Where this snapshot's change stream opened, before the listing began: the stream
    /// resumed there shows what the oplog holds since, without a scan of it.
    pub position: Option<&'a RawDocument>,
}

/// The oplog entries that decide whether the collection list is the read time's: those
/// after the earlier of `at` and the last write before listing began, up to the last
/// write once listing ended (`None`: not known, so no bound).
pub fn listing_window(
    at: Timestamp,
    (listed_from, listed_until): (Option<Timestamp>, Option<Timestamp>),
) -> (ClusterTime, Option<ClusterTime>) {
    let t0 = ClusterTime::from(at);
    let from = listed_from.map(ClusterTime::from).map_or(t0, |s| s.min(t0));
    (from, listed_until.map(ClusterTime::from))
}

/// A document the oplog proves absent (`present == false`) or present at T.
struct Probe {
    db: String,
    coll: String,
    id: Bson,
    present: bool,
}

/// Checks that `w` describes one moment; a note when that could not be checked.
pub fn confirm(source: &MongoSource, w: &Window) -> Result<Option<String>> {
    if let (true, Some(listing)) = (w.read.is_empty(), &w.listing_seen) {
        return check_listing(source, listing, w.scope).map(|()| None);
    }
    let t0 = ClusterTime::from(w.at);
    crate::failpoint::hit("mongodb-confirm");
    let hello = hello(&source.client)?;
    if super::last_write(&hello).is_some_and(|l| ClusterTime::from(l) <= t0) {
        return Ok(None);
    }
    if is_mongos(&hello) {
        return Ok(Some(
            "the read time could not be checked against an oplog (a sharded cluster keeps \
             one per shard, which mongos does not serve); the cluster's snapshot reads are \
             trusted"
                .into(),
        ));
    }
    let scan = match read_oplog(source, w) {
        Ok(scan) => scan,
        // A user without the right to read `local`: the server's snapshot reads are
        // trusted, as mongod's are. Any other failure (a dropped connection, a server
        // going down) proves nothing either way, so nothing is saved.
        Err(Error::Denied(e)) => {
            return Ok(Some(format!(
                "the read time could not be checked against the oplog ({e}); the server's \
                 snapshot reads are trusted"
            )))
        }
        Err(e) => return Err(e),
    };
    check_listing(source, &scan.listing, w.scope)?;
    let touched = scan.touched;
    if touched.is_empty() {
        return Ok(None);
    }
    match reads_at_time(source, t0, &scan.probes)? {
        Some(true) => Ok(None),
        verdict => {
            let how = if verdict.is_some() {
                "the server's snapshot reads show later writes"
            } else {
                "the server could not be shown to read at one moment"
            };
            let more = if touched.len() > 3 { ", …" } else { "" };
            Err(moved(
                source,
                &format!(
                    "{} collection(s) were written while being read ({}{more}) and {how}",
                    touched.len(),
                    touched[..touched.len().min(3)].join(", ")
                ),
            ))
        }
    }
}

fn moved(source: &MongoSource, why: &str) -> Error {
    Error::Moved(format!(
        "{}: {why}; what was read is not the state of one moment, so no snapshot was written",
        source.redacted_uri
    ))
}

fn check_listing(source: &MongoSource, listing: &Changes, scope: Option<&[String]>) -> Result<()> {
    match listing_moved(listing, scope) {
        Some(db) => Err(moved(
            source,
            &format!("the collections of database {db} changed while they were listed"),
        )),
        None => Ok(()),
    }
}

/// The first database of the scope whose listing may not be the snapshot time's.
fn listing_moved(listing: &Changes, scope: Option<&[String]>) -> Option<String> {
    if listing.everything() {
        return Some("(any)".into());
    }
    let mut dbs: Vec<&str> = listing
        .databases()
        .filter(|d| match scope {
            Some(s) => s.iter().any(|x| x == d),
            None => !["admin", "local", "config"].contains(d),
        })
        .collect();
    dbs.sort();
    dbs.first().map(|d| d.to_string())
}

/// Whether the server reads at `t0`: `Some(true)` when a probe's document is as the
/// oplog proves it was at `t0` and otherwise now, `Some(false)` when it is not, `None`
/// when no probe decides.
fn reads_at_time(source: &MongoSource, t0: ClusterTime, probes: &[Probe]) -> Result<Option<bool>> {
    for p in probes {
        let coll = source
            .client
            .database(&p.db)
            .collection::<RawDocumentBuf>(&p.coll);
        let filter = doc! {"_id": {"$eq": p.id.clone()}};
        let mut session = source
            .client
            .start_session()
            .snapshot(true)
            .snapshot_time(Timestamp {
                time: t0.t,
                increment: t0.i,
            })
            .run()
            .map_err(|e| db_err("starting a snapshot session", e))?;
        // A probe the server will not answer (the collection dropped since, say) decides
        // nothing.
        let Ok(then) = coll.find_one(filter.clone()).session(&mut session).run() else {
            continue;
        };
        if then.is_some() != p.present {
            return Ok(Some(false));
        }
        let Ok(now) = coll.find_one(filter).run() else {
            continue;
        };
        if now.is_some() != p.present {
            return Ok(Some(true));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::scan::Keys;
    use super::*;

    fn raw(d: mongodb::bson::Document) -> RawDocumentBuf {
        RawDocumentBuf::from_document(&d).unwrap()
    }

    fn changes(entries: &[mongodb::bson::Document]) -> Changes {
        let mut c = Changes::default();
        for e in entries {
            c.add(&raw(e.clone()));
        }
        c
    }

    #[test]
    fn commands_in_the_scope_move_the_listing_document_writes_do_not() {
        let create = changes(&[doc! {"op": "c", "ns": "app.$cmd", "o": {"create": "x"}}]);
        let app = ["app".to_string()];
        let other = ["other".to_string()];
        assert_eq!(listing_moved(&create, Some(&app)), Some("app".into()));
        assert_eq!(listing_moved(&create, Some(&other)), None);
        assert_eq!(listing_moved(&create, None), Some("app".into()));
        let views = changes(&[doc! {"op": "i", "ns": "app.system.views", "o": {"_id": "app.v"}}]);
        assert_eq!(listing_moved(&views, Some(&app)), Some("app".into()));
        let writes = changes(&[
            doc! {"op": "i", "ns": "app.x", "o": {"_id": 1}},
            doc! {"op": "d", "ns": "app.y", "o": {"_id": 1}},
        ]);
        assert_eq!(listing_moved(&writes, None), None);
        // Work in admin, local or config is outside a whole-server scope; anything not
        // understood is inside every scope.
        let local = changes(&[doc! {"op": "c", "ns": "config.$cmd", "o": {"create": "x"}}]);
        assert_eq!(listing_moved(&local, None), None);
        let unknown = changes(&[doc! {"op": "z", "ns": "app.x"}]);
        assert!(listing_moved(&unknown, Some(&other)).is_some());
    }

    #[test]
    fn probes_are_first_inserts_and_deletes_of_read_collections_before_any_command() {
        let read: HashMap<String, ()> = [("app.a".to_string(), ())].into();
        let mut keys = Keys::default();
        let mut probes = Vec::new();
        for e in [
            doc! {"op": "i", "ns": "app.a", "o": {"_id": 1, "v": 1}},
            doc! {"op": "u", "ns": "app.a", "o": {"$v": 2, "diff": {}}, "o2": {"_id": 2}},
            doc! {"op": "d", "ns": "app.a", "o": {"_id": 2}},
            doc! {"op": "n", "ns": "", "o": {"msg": "noop"}},
            doc! {"op": "d", "ns": "app.a", "o": {"_id": "three"}},
            doc! {"op": "i", "ns": "app.b", "o": {"_id": 4}},
            doc! {"op": "d", "ns": "app.a", "o": {"_id": 1}},
            doc! {"op": "c", "ns": "app.$cmd", "o": {"applyOps": []}},
            doc! {"op": "i", "ns": "app.a", "o": {"_id": 9}},
        ] {
            keys.see(&raw(e), &read, &mut probes);
        }
        let got: Vec<(String, Bson, bool)> = probes
            .into_iter()
            .map(|p| (format!("{}.{}", p.db, p.coll), p.id, p.present))
            .collect();
        assert_eq!(
            got,
            [
                ("app.a".to_string(), Bson::Int32(1), false),
                ("app.a".to_string(), Bson::String("three".into()), true),
            ]
        );
    }
}
