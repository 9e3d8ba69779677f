//! Which collections the oplog says were written in a span of time — what lets a snapshot
//! take an unwritten collection's documents from its parent without reading them.
//!
//! Being wrong in one direction only costs a re-read, in the other it saves stale
//! documents, so everything not understood counts as touching as much as it could: a
//! command (create, drop, rename, collMod, index builds, ...) touches its whole database
//! (a rename, both databases); a write to a `system.*` collection (time-series buckets,
//! views) touches its database; a prepared transaction's commit, an unknown operation or an
//! entry that does not parse touches everything.

use std::collections::HashSet;

use bson::{Bson, Document, RawDocument};

use crate::snapshot::ClusterTime;

/// How deep `applyOps` may nest before an entry counts as touching everything.
const MAX_NESTING: usize = 4;

/// What a run of oplog entries wrote.
#[derive(Debug, Default)]
pub struct Changes {
    /// Something was seen whose reach is unknown: no collection is unwritten.
    everything: bool,
    /// Databases where more than documents of named collections changed.
    dbs: HashSet<String>,
    /// Namespaces ("db.coll") whose documents were written.
    namespaces: HashSet<String>,
}

impl Changes {
    /// Whether `db.coll` may have been written.
    pub fn touches(&self, db: &str, coll: &str) -> bool {
        self.everything
            || self.dbs.contains(db)
            || self.namespaces.contains(&format!("{db}.{coll}"))
    }

    /// Whether every collection counts as written.
    pub fn everything(&self) -> bool {
        self.everything
    }

    /// Namespaces ("db.coll") whose documents were written.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces.iter().map(String::as_str)
    }

    /// Databases where more than documents of named collections changed (a command, a
    /// `system.*` write): their collection list, options or indexes may differ.
    pub fn databases(&self) -> impl Iterator<Item = &str> {
        self.dbs.iter().map(String::as_str)
    }

    /// Adds one entry as the server sent it. The caller has already checked its `ts` is in
    /// the span of interest.
    pub fn add(&mut self, raw: &RawDocument) {
        // Document writes are nearly every entry: read them without decoding the rest.
        match raw.get_str("op") {
            Ok("n") => {}
            Ok("i" | "u" | "d") => match raw.get_str("ns") {
                Ok(ns) => self.write(ns),
                Err(_) => self.everything = true,
            },
            Ok("c") => match Document::try_from(raw) {
                Ok(entry) => self.command(&entry, 0),
                Err(_) => self.everything = true,
            },
            _ => self.everything = true,
        }
    }

    /// Adds a decoded entry (an element of `applyOps`).
    fn add_doc(&mut self, entry: &Document, depth: usize) {
        match entry.get_str("op") {
            Ok("n") => {}
            Ok("i" | "u" | "d") => match entry.get_str("ns") {
                Ok(ns) => self.write(ns),
                Err(_) => self.everything = true,
            },
            Ok("c") => self.command(entry, depth),
            _ => self.everything = true,
        }
    }

    fn write(&mut self, ns: &str) {
        match ns.split_once('.') {
            Some((db, coll)) if !db.is_empty() && !coll.is_empty() => {
                if coll.starts_with("system.") {
                    self.dbs.insert(db.to_string());
                } else {
                    self.namespaces.insert(ns.to_string());
                }
            }
            _ => self.everything = true,
        }
    }

    fn command(&mut self, entry: &Document, depth: usize) {
        let (Ok(ns), Ok(o)) = (entry.get_str("ns"), entry.get_document("o")) else {
            self.everything = true;
            return;
        };
        let db = ns.split('.').next().unwrap_or("");
        let name = o.keys().next().map(String::as_str).unwrap_or("");
        match name {
            "applyOps" if depth < MAX_NESTING => match o.get_array("applyOps") {
                Ok(ops) => {
                    for op in ops {
                        match op {
                            Bson::Document(d) => self.add_doc(d, depth + 1),
                            _ => self.everything = true,
                        }
                    }
                }
                Err(_) => self.everything = true,
            },
            // A prepared transaction's writes were logged (with `prepare`) before its
            // commit, possibly before the span began.
            "commitTransaction" | "abortTransaction" => self.everything = true,
            _ if db.is_empty() || db == "admin" => self.everything = true,
            _ => {
                self.dbs.insert(db.to_string());
                // renameCollection names the source namespace, `to` the target.
                for key in ["renameCollection", "to"] {
                    if let Ok(other) = o.get_str(key) {
                        match other.split_once('.') {
                            Some((d, _)) if !d.is_empty() => {
                                self.dbs.insert(d.to_string());
                            }
                            _ => self.everything = true,
                        }
                    }
                }
            }
        }
    }
}

/// The `ts` of an entry, if it has one.
pub fn entry_time(raw: &RawDocument) -> Option<ClusterTime> {
    raw.get_timestamp("ts").ok().map(|t| ClusterTime {
        t: t.time,
        i: t.increment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, RawDocumentBuf};
    use proptest::prelude::*;

    fn after(entries: &[Document]) -> Changes {
        let mut c = Changes::default();
        for e in entries {
            c.add(&RawDocumentBuf::from_document(e).unwrap());
        }
        c
    }

    #[test]
    fn document_writes_touch_their_collection_only() {
        let c = after(&[
            doc! {"op": "i", "ns": "a.x", "o": {"_id": 1}},
            doc! {"op": "u", "ns": "a.y", "o": {"$set": {"k": 1}}, "o2": {"_id": 1}},
            doc! {"op": "d", "ns": "b.z", "o": {"_id": 1}},
            doc! {"op": "n", "ns": "", "o": {"msg": "periodic noop"}},
        ]);
        assert!(c.touches("a", "x") && c.touches("a", "y") && c.touches("b", "z"));
        assert!(!c.touches("a", "w") && !c.touches("b", "x") && !c.touches("c", "x"));
        assert!(!c.everything());
        // A collection whose name has dots: the database ends at the first one.
        let c = after(&[doc! {"op": "i", "ns": "a.x.y", "o": {"_id": 1}}]);
        assert!(c.touches("a", "x.y") && !c.touches("a", "x"));
    }

    #[test]
    fn commands_touch_whole_databases_renames_both() {
        let c = after(&[doc! {"op": "c", "ns": "a.$cmd", "o": {"createIndexes": "x"}}]);
        assert!(c.touches("a", "anything") && !c.touches("b", "x"));
        let c = after(&[doc! {"op": "c", "ns": "a.$cmd",
        "o": {"renameCollection": "a.x", "to": "b.y", "dropTarget": true}}]);
        assert!(c.touches("a", "q") && c.touches("b", "q") && !c.touches("c", "q"));
        let c = after(&[doc! {"op": "c", "ns": "a.$cmd", "o": {"dropDatabase": 1}}]);
        assert!(c.touches("a", "x") && !c.touches("b", "x"));
    }

    #[test]
    fn system_collections_touch_their_database() {
        let c = after(&[doc! {"op": "i", "ns": "a.system.buckets.w", "o": {"_id": 1}}]);
        assert!(c.touches("a", "w") && c.touches("a", "other") && !c.touches("b", "w"));
    }

    #[test]
    fn transactions_touch_what_they_hold_commits_touch_everything() {
        let c = after(&[doc! {"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [
            {"op": "i", "ns": "a.x", "o": {"_id": 1}},
            {"op": "d", "ns": "b.y", "o": {"_id": 1}},
            {"op": "c", "ns": "c.$cmd", "o": {"create": "n"}},
        ]}}]);
        assert!(c.touches("a", "x") && c.touches("b", "y") && c.touches("c", "n"));
        assert!(!c.touches("a", "other") && !c.touches("b", "other"));
        let c = after(&[doc! {"op": "c", "ns": "admin.$cmd", "o": {"commitTransaction": 1}}]);
        assert!(c.everything());
        let c = after(&[doc! {"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [1]}}]);
        assert!(c.everything());
        let c = after(&[doc! {"op": "c", "ns": "admin.$cmd", "o": {"unknownAdminThing": 1}}]);
        assert!(c.everything());
    }

    #[test]
    fn deep_nesting_and_malformed_entries_touch_everything() {
        let mut inner = doc! {"op": "i", "ns": "a.x", "o": {"_id": 1}};
        for _ in 0..=MAX_NESTING {
            inner = doc! {"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [inner]}};
        }
        assert!(after(&[inner]).everything());
        for bad in [
            doc! {"op": "i", "o": {"_id": 1}},
            doc! {"op": "i", "ns": "nodot", "o": {"_id": 1}},
            doc! {"op": "x", "ns": "a.b"},
            doc! {"ns": "a.b"},
            doc! {"op": "c", "ns": "a.$cmd"},
            doc! {"op": "c", "ns": "a.$cmd", "o": {"renameCollection": "a.x", "to": "nodot"}},
        ] {
            assert!(after(std::slice::from_ref(&bad)).everything(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(raw) = RawDocument::from_bytes(&bytes) {
                let mut c = Changes::default();
                c.add(raw);
                let _ = entry_time(raw);
            }
        }
    }
}
