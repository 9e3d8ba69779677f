//! What the replay refuses, known from an entry alone: checked for every entry of a
//! roll-forward before anything is written (`restore --at` plans with it), and again as
//! each entry is applied.

use mongodb::bson::{Document, RawDocument};

use super::{bad, decode, Selection};
use crate::error::Result;
use crate::snapshot::ClusterTime;

/// Commands the replay applies (to the selected namespaces) or passes over.
const COMMANDS: &[&str] = &[
    "create",
    "drop",
    "createIndexes",
    "commitIndexBuild",
    "dropIndexes",
    "deleteIndexes",
    "collMod",
    "startIndexBuild",
    "abortIndexBuild",
    "renameCollection",
    "dropDatabase",
    "applyOps",
];

/// Checks a raw entry (see [`vet`]).
pub fn vet_raw(sel: &Selection, raw: &RawDocument) -> Result<()> {
    let op = raw.get_str("op").unwrap_or("");
    let ns = raw.get_str("ns").unwrap_or("");
    // Document changes are checked by their namespace alone: no need to decode them.
    if op != "c" && refused_write(sel, ns).is_none() {
        return Ok(());
    }
    let (entry, ts) = decode(raw)?;
    vet(sel, &entry, ts)
}

/// Refuses an entry whose effect on the selected namespaces the replay cannot reproduce
/// exactly (inside transactions too).
pub fn vet(sel: &Selection, entry: &Document, ts: ClusterTime) -> Result<()> {
    let ns = entry.get_str("ns").unwrap_or("");
    match entry.get_str("op").unwrap_or("") {
        "i" | "u" | "d" => match refused_write(sel, ns) {
            Some(why) => Err(bad(ts, why)),
            None => Ok(()),
        },
        "c" => command(sel, entry, ns, ts),
        _ => Ok(()),
    }
}

/// Why a document change in `ns` cannot be replayed, if it cannot.
fn refused_write(sel: &Selection, ns: &str) -> Option<String> {
    let (db, coll) = ns.split_once('.')?;
    if let Some(ts_coll) = coll.strip_prefix("system.buckets.") {
        // mongod logs a time-series collection's writes as its buckets' writes; the
        // snapshot holds its measurements, restored into new buckets the entries do not
        // name.
        return sel.wants(&format!("{db}.{ts_coll}")).then(|| {
            format!(
                "a write to time-series collection {db}.{ts_coll} (logged as a bucket change, \
                 which cannot be applied to measurements restored from a snapshot); restore a \
                 snapshot's own moment for it, or leave it out with --ns"
            )
        });
    }
    (coll == "system.views" && sel.wants(ns))
        .then(|| "views changed through system.views".to_string())
}

fn command(sel: &Selection, entry: &Document, ns: &str, ts: ClusterTime) -> Result<()> {
    let o = entry
        .get_document("o")
        .map_err(|_| bad(ts, "no o document"))?;
    let Some((name, _)) = o.iter().next() else {
        return Err(bad(ts, "empty command"));
    };
    if !COMMANDS.contains(&name.as_str()) {
        return Err(bad(ts, format!("unsupported command {name}")));
    }
    let db = ns.split('.').next().unwrap_or("");
    match name.as_str() {
        "applyOps" => {
            for op in o.get_array("applyOps").map_err(|_| bad(ts, "applyOps"))? {
                let op = op.as_document().ok_or_else(|| bad(ts, "applyOps entry"))?;
                vet(sel, op, ts)?;
            }
        }
        "renameCollection" => {
            let from = o
                .get_str("renameCollection")
                .map_err(|_| bad(ts, "rename"))?;
            let to = o.get_str("to").map_err(|_| bad(ts, "rename without to"))?;
            if sel.wants(to) && !sel.wants(from) {
                // The renamed collection's documents would be missing.
                let how = if sel.holds(from) {
                    format!("select it too (--ns '{from}'), or choose a moment before the rename")
                } else {
                    "the snapshot does not hold it: choose a moment before the rename, or \
                     restore a snapshot that holds it"
                        .to_string()
                };
                return Err(bad(
                    ts,
                    format!("{to} is {from} renamed, and {from} is not restored: {how}"),
                ));
            }
        }
        "collMod" => {
            let coll = o.get_str("collMod").unwrap_or("");
            // A server that logs a change it made without saying what it was (SecantusDB:
            // a view redefined, an index hidden or unhidden) leaves nothing to replay; a
            // restore that went on would give the state from before that change.
            if o.len() == 1 && sel.wants(&format!("{db}.{coll}")) {
                let view = entry
                    .get_document("o2")
                    .and_then(|o2| o2.get_document("collectionOptions_old"))
                    .is_ok_and(|old| old.contains_key("viewOn"));
                let what = if view {
                    "view redefined"
                } else {
                    "collection's indexes or options changed"
                };
                return Err(bad(
                    ts,
                    format!(
                        "collMod of {db}.{coll} ({what}) was logged without the change it \
                         made; restore a moment before it, or a snapshot taken after it"
                    ),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;
    use std::collections::HashSet;

    fn sel() -> Selection {
        Selection {
            saved: HashSet::from(["a.c".to_string()]),
            whole_dbs: HashSet::from(["a".to_string()]),
            all_dbs: false,
            globs: Vec::new(),
            renames: Default::default(),
        }
    }

    fn check(entry: Document) -> std::result::Result<(), String> {
        vet(&sel(), &entry, ClusterTime { t: 1, i: 1 }).map_err(|e| e.to_string())
    }

    #[test]
    fn a_saved_time_series_collection_is_refused_by_its_buckets_namespace() {
        let mut sel = sel();
        sel.saved.insert("t.w".into());
        let write = |ns: &str| doc! {"op": "i", "ns": ns, "o": {"_id": 1}};
        let ts = ClusterTime { t: 1, i: 1 };
        assert!(vet(&sel, &write("t.system.buckets.w"), ts).is_err());
        assert!(vet(&sel, &write("t.system.buckets.other"), ts).is_ok());
        let raw = mongodb::bson::RawDocumentBuf::from_document(
            &doc! {"ts": mongodb::bson::Timestamp { time: 1, increment: 1 }, "op": "u",
            "ns": "t.system.buckets.w", "o": {}, "o2": {"_id": 1}},
        )
        .unwrap();
        let err = vet_raw(&sel, &raw).unwrap_err().to_string();
        assert!(err.contains("time-series collection t.w"), "{err}");
    }

    #[test]
    fn entries_the_replay_cannot_reproduce_are_refused() {
        let ok = |e: Document| assert_eq!(check(e.clone()), Ok(()), "{e}");
        let refused = |e: Document, why: &str| {
            let err = check(e.clone()).expect_err("refused");
            assert!(err.contains(why), "{e}: {err}");
        };
        ok(doc! {"op": "i", "ns": "a.c", "o": {"_id": 1}});
        ok(doc! {"op": "i", "ns": "a.system.js", "o": {"_id": "f"}});
        ok(doc! {"op": "i", "ns": "b.system.views", "o": {"_id": "b.v"}});
        ok(doc! {"op": "i", "ns": "b.system.buckets.w", "o": {"_id": 1}});
        refused(
            doc! {"op": "i", "ns": "a.system.views", "o": {"_id": "a.v"}},
            "system.views",
        );
        refused(
            doc! {"op": "u", "ns": "a.system.buckets.w", "o": {}, "o2": {"_id": 1}},
            "time-series collection a.w",
        );
        ok(doc! {"op": "c", "ns": "a.$cmd", "o": {"collMod": "c", "validator": {}}});
        ok(doc! {"op": "c", "ns": "b.$cmd", "o": {"collMod": "c"}});
        refused(
            doc! {"op": "c", "ns": "a.$cmd", "o": {"collMod": "v"},
            "o2": {"collectionOptions_old": {"viewOn": "c", "viewPipeline": []}}},
            "view redefined",
        );
        refused(
            doc! {"op": "c", "ns": "a.$cmd", "o": {"collMod": "c"}},
            "without the change",
        );
        refused(
            doc! {"op": "c", "ns": "a.$cmd", "o": {"convertToCapped": "c", "size": 10}},
            "unsupported command convertToCapped",
        );
        refused(
            doc! {"op": "c", "ns": "b.$cmd", "o": {"renameCollection": "b.x", "to": "a.y"}},
            "a.y is b.x renamed, and b.x is not restored: the snapshot does not hold it",
        );
        let mut only_y = sel();
        only_y.globs = crate::mongo::ns::ns_matchers(&["a.y".to_string()]).unwrap();
        let nested = doc! {"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [
            {"op": "c", "ns": "a.$cmd", "o": {"renameCollection": "a.x", "to": "a.y"}},
        ]}};
        let err = vet(&only_y, &nested, ClusterTime { t: 1, i: 1 }).unwrap_err();
        assert!(
            err.to_string().contains("select it too (--ns 'a.x')"),
            "{err}"
        );
        ok(doc! {"op": "c", "ns": "a.$cmd", "o": {"renameCollection": "a.x", "to": "b.y"}});
        refused(
            doc! {"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [
                {"op": "i", "ns": "a.c", "o": {"_id": 2}},
                {"op": "d", "ns": "a.system.buckets.w", "o": {"_id": 1}},
            ]}},
            "time-series",
        );
    }
}
