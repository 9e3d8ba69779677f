//! The server's change stream as a cheap view of its oplog since a known position.
//!
//! SecantusDB answers any `find` on `local.oplog.rs` with a scan of the whole oplog
//! (seconds at a million entries), but its change streams seek the oplog by position: a
//! snapshot that records where a fresh stream opened ([`position`]) lets the next one
//! see every write since in milliseconds ([`Since`]) — the common case of an unchanged
//! database among them.
//!
//! What makes the answer complete, not just quick:
//! - The position is taken before the snapshot's read time is fixed: every entry at or
//!   before it was visible then, so everything written after the read time lies after it.
//! - Resuming from it fails with ChangeStreamHistoryLost (286) once the oplog dropped an
//!   entry after it, as mongod's does: the stream never silently starts later.
//! - An empty batch does not mean the stream has seen everything: a server may return one
//!   while it is still scanning entries it does not show (noops, `admin`). So the oplog's
//!   end is taken first, as the position of a second, fresh stream, and the resumed
//!   stream is read until its own position has reached it. Positions are compared by the
//!   sequence number SecantusDB's tokens hold (`_data`: a hex BSON document `{s, t, …}`);
//!   a server whose tokens are not of that form (mongod's) gets no answer here, and the
//!   caller reads the oplog itself.
//! - What a cluster-wide stream leaves out — the `admin`, `config` and `local` databases
//!   and, on mongod, `system.*` collections — is for the caller to read otherwise.

use std::time::Duration;

use mongodb::bson::{doc, rawdoc, RawDocument, RawDocumentBuf};
use mongodb::change_stream::event::ResumeToken;
use mongodb::sync::{ChangeStream, Client};

use crate::error::{Error, Result};
use crate::mongo::client::db_err;
use crate::snapshot::ClusterTime;

/// Empty batches read before a stream that has not reached the oplog's end is given up.
const MAX_EMPTY_BATCHES: u32 = 2_000;

/// Where a fresh cluster-wide change stream opens now (after every write already
/// visible), as the server's resume token; `None` when the server gives none (no change
/// streams for this user, a standalone server, events already waiting at the open).
pub fn position(client: &Client) -> Option<RawDocumentBuf> {
    let stream = open(client, None).ok()?;
    let token = stream.resume_token()?;
    let raw = mongodb::bson::to_raw_document_buf(&token).ok()?;
    sequence(&raw).map(|_| raw)
}

/// The resumed stream's events after a position, each with its cluster time, up to the
/// oplog's end as it was when [`Since::open`] ran.
pub struct Since {
    stream: ChangeStream<RawDocumentBuf>,
    /// The oplog's end: a fresh stream's position at the open.
    end: i64,
    caught_up: bool,
}

impl Since {
    /// Resumes after `token`. `Ok(None)`: the stream cannot answer — the oplog no longer
    /// holds everything after it, the server refused the stream, or its positions cannot
    /// be compared.
    pub fn open(client: &Client, token: &RawDocument) -> Result<Option<Since>> {
        let Some(start) = sequence(token) else {
            return Ok(None);
        };
        let Some(end) = position(client).as_deref().and_then(sequence) else {
            return Ok(None);
        };
        let resume: ResumeToken = match mongodb::bson::from_slice(token.as_bytes()) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        };
        let stream = match open(client, Some(resume)) {
            Ok(s) => s,
            // Most often ChangeStreamHistoryLost (286); whatever the reason, the oplog
            // read decides instead.
            Err(e) => {
                tracing::debug!("change stream not resumed: {e}");
                return Ok(None);
            }
        };
        Ok(Some(Since {
            stream,
            end,
            caught_up: start >= end,
        }))
    }

    /// The next event and its cluster time; `None` once the stream has passed the oplog's
    /// end as it was at the open.
    pub fn next_event(&mut self) -> Result<Option<(RawDocumentBuf, ClusterTime)>> {
        let mut empty = 0;
        loop {
            if !self.stream.is_alive() {
                return Err(Error::Source(
                    "MongoDB: the change stream ended before the oplog's end".into(),
                ));
            }
            if let Some(event) = self
                .stream
                .next_if_any()
                .map_err(|e| db_err("reading the change stream", e))?
            {
                let time = event
                    .get_timestamp("clusterTime")
                    .map(ClusterTime::from)
                    .map_err(|_| Error::corrupt("change event", "no clusterTime"))?;
                return Ok(Some((event, time)));
            }
            if self.caught_up || self.at_end() {
                self.caught_up = true;
                return Ok(None);
            }
            empty += 1;
            if empty > MAX_EMPTY_BATCHES {
                return Err(Error::Source(
                    "MongoDB: the change stream did not reach the oplog's end".into(),
                ));
            }
        }
    }

    fn at_end(&self) -> bool {
        let token = self.stream.resume_token();
        let raw = token.and_then(|t| mongodb::bson::to_raw_document_buf(&t).ok());
        raw.as_deref()
            .and_then(sequence)
            .is_some_and(|s| s >= self.end)
    }
}

/// A cluster-wide stream of every kind of change (DDL included), each event cut to what
/// says what it touched.
fn open(client: &Client, resume: Option<ResumeToken>) -> Result<ChangeStream<RawDocumentBuf>> {
    let project = doc! {"$project": {
        "operationType": 1, "clusterTime": 1, "ns": 1, "to": 1, "documentKey": 1,
    }};
    client
        .watch()
        .pipeline([project])
        .show_expanded_events(true)
        .max_await_time(Duration::from_millis(50))
        .batch_size(1_000)
        .resume_after(resume)
        .run()
        .map(|s| s.with_type::<RawDocumentBuf>())
        .map_err(|e| db_err("opening a change stream", e))
}

/// The oplog entry a change event stands for, as far as [`Changes`] and the read-time
/// check read entries: `op`, `ns`, and the document's `_id` in `o` (insert, delete) or
/// `o2` (update, replace). Any other event with a database is a command on it (`o` named
/// after the event; a rename's `o` names both namespaces, as `renameCollection` does);
/// an event without a database, or an `invalidate`, is an entry of unknown `op`, which
/// counts as touching everything.
///
/// [`Changes`]: super::changes::Changes
pub fn as_entry(event: &RawDocument) -> RawDocumentBuf {
    let ns = event.get_document("ns").ok();
    let db = ns.and_then(|n| n.get_str("db").ok()).unwrap_or("");
    let coll = ns.and_then(|n| n.get_str("coll").ok());
    let key = event
        .get_document("documentKey")
        .map(RawDocument::to_raw_document_buf)
        .unwrap_or_default();
    let kind = event.get_str("operationType").unwrap_or("");
    match (kind, coll) {
        _ if db.is_empty() || kind.is_empty() || kind == "invalidate" => rawdoc! {"op": "?"},
        ("insert" | "delete", Some(coll)) => {
            let op = if kind == "insert" { "i" } else { "d" };
            rawdoc! {"op": op, "ns": format!("{db}.{coll}"), "o": key}
        }
        ("update" | "replace", Some(coll)) => {
            rawdoc! {"op": "u", "ns": format!("{db}.{coll}"), "o": {}, "o2": key}
        }
        ("rename", _) => {
            let to = event.get_document("to").ok();
            let to_db = to.and_then(|t| t.get_str("db").ok()).unwrap_or("");
            let to_coll = to.and_then(|t| t.get_str("coll").ok()).unwrap_or("");
            rawdoc! {"op": "c", "ns": format!("{db}.$cmd"), "o": {
                "renameCollection": format!("{db}.{}", coll.unwrap_or("")),
                "to": format!("{to_db}.{to_coll}"),
            }}
        }
        _ => {
            let mut o = RawDocumentBuf::new();
            o.append(kind, coll.unwrap_or(""));
            rawdoc! {"op": "c", "ns": format!("{db}.$cmd"), "o": o}
        }
    }
}

/// The oplog sequence number a SecantusDB resume token holds: `{_data: <hex of a BSON
/// document with an integer "s" and a timestamp "t">}`.
fn sequence(token: &RawDocument) -> Option<i64> {
    let hex = token.get_str("_data").ok()?;
    let bytes = hex::decode(hex).ok()?;
    let inner = RawDocument::from_bytes(&bytes).ok()?;
    inner.get_timestamp("t").ok()?;
    match inner.get("s").ok()?? {
        mongodb::bson::RawBsonRef::Int64(s) => Some(s),
        mongodb::bson::RawBsonRef::Int32(s) => Some(i64::from(s)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mongo::oplog::changes::Changes;
    use mongodb::bson::Timestamp;

    fn token(inner: RawDocumentBuf) -> RawDocumentBuf {
        rawdoc! {"_data": hex::encode_upper(inner.as_bytes())}
    }

    #[test]
    fn secantus_tokens_give_their_sequence_others_none() {
        let t = Timestamp {
            time: 1_796_458_215,
            increment: 1,
        };
        let s = token(rawdoc! {"s": 1_009_012_i64, "t": t, "n": "", "k": {}});
        assert_eq!(sequence(&s), Some(1_009_012));
        let s = token(rawdoc! {"s": 7_i32, "t": t});
        assert_eq!(sequence(&s), Some(7));
        // mongod's keystring tokens, a token without a time, garbage: no sequence.
        for bad in [
            rawdoc! {"_data": "8267B2A1C7000000012B022C0100296E5A1004"},
            token(rawdoc! {"s": 7_i64}),
            rawdoc! {"_data": "zz"},
            rawdoc! {"other": 1},
        ] {
            assert_eq!(sequence(&bad), None, "{bad:?}");
        }
    }

    fn changes(events: &[mongodb::bson::Document]) -> Changes {
        let mut c = Changes::default();
        for e in events {
            c.add(&as_entry(&RawDocumentBuf::from_document(e).unwrap()));
        }
        c
    }

    #[test]
    fn change_events_touch_what_their_entries_would() {
        let c = changes(&[
            doc! {"operationType": "insert", "ns": {"db": "a", "coll": "x"}},
            doc! {"operationType": "replace", "ns": {"db": "a", "coll": "y"}},
            doc! {"operationType": "delete", "ns": {"db": "b", "coll": "z.w"}},
        ]);
        assert!(c.touches("a", "x") && c.touches("a", "y") && c.touches("b", "z.w"));
        assert!(!c.touches("a", "w") && !c.touches("b", "z") && !c.everything());
        let js = doc! {"operationType": "update", "ns": {"db": "a", "coll": "system.js"}};
        let c = changes(&[js]);
        assert!(c.touches("a", "other") && !c.touches("b", "x"));
        for ddl in [
            "createIndexes",
            "modify",
            "create",
            "drop",
            "dropDatabase",
            "newKind",
        ] {
            let c = changes(&[doc! {"operationType": ddl, "ns": {"db": "a", "coll": "x"}}]);
            assert!(c.touches("a", "q") && !c.touches("b", "q"), "{ddl}");
            assert!(!c.everything(), "{ddl}");
        }
        let c = changes(&[doc! {"operationType": "rename",
        "ns": {"db": "a", "coll": "x"}, "to": {"db": "b", "coll": "y"}}]);
        assert!(c.touches("a", "q") && c.touches("b", "q") && !c.touches("c", "q"));
        for bad in [
            doc! {"operationType": "invalidate"},
            doc! {"operationType": "invalidate", "ns": {"db": "a", "coll": "x"}},
            doc! {"operationType": "insert", "ns": {"coll": "x"}},
            doc! {"ns": {"db": "a", "coll": "x"}},
            doc! {"operationType": "rename", "ns": {"db": "a", "coll": "x"}, "to": {}},
            doc! {"operationType": "create", "ns": {"db": "admin", "coll": "x"}},
        ] {
            assert!(changes(std::slice::from_ref(&bad)).everything(), "{bad}");
        }
        // A document change without a collection is a change to the database.
        let c = changes(&[doc! {"operationType": "insert", "ns": {"db": "a"}}]);
        assert!(c.touches("a", "q") && !c.everything());
    }

    #[test]
    fn document_changes_keep_their_document_key() {
        let key = doc! {"_id": 7};
        for (kind, op, field) in [
            ("insert", "i", "o"),
            ("delete", "d", "o"),
            ("update", "u", "o2"),
            ("replace", "u", "o2"),
        ] {
            let event = doc! {"operationType": kind, "ns": {"db": "a", "coll": "x"},
            "documentKey": key.clone()};
            let entry = as_entry(&RawDocumentBuf::from_document(&event).unwrap());
            assert_eq!(entry.get_str("op").unwrap(), op);
            assert_eq!(entry.get_str("ns").unwrap(), "a.x");
            let got = entry.get_document(field).unwrap().get_i32("_id").unwrap();
            assert_eq!(got, 7, "{kind}");
        }
    }

    proptest::proptest! {
        #[test]
        fn garbage_events_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Ok(raw) = RawDocument::from_bytes(&bytes) {
                Changes::default().add(&as_entry(raw));
                let _ = sequence(raw);
            }
        }
    }

    #[test]
    fn a_stored_token_resumes_as_the_driver_gave_it() {
        let raw = rawdoc! {"_data": "2B00"};
        let resume: ResumeToken = mongodb::bson::from_slice(raw.as_bytes()).unwrap();
        assert_eq!(mongodb::bson::to_raw_document_buf(&resume).unwrap(), raw);
    }
}
