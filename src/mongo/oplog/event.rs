//! Change-stream events read as the oplog entries they stand for, and the oplog
//! position a resume token names ([`super::stream`] reads the stream). Bytes from the
//! server and from snapshots: whatever they hold, no panic.

use bson::{rawdoc, RawDocument, RawDocumentBuf};

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
pub fn sequence(token: &RawDocument) -> Option<i64> {
    let hex = token.get_str("_data").ok()?;
    let bytes = hex::decode(hex).ok()?;
    let inner = RawDocument::from_bytes(&bytes).ok()?;
    inner.get_timestamp("t").ok()?;
    match inner.get("s").ok()?? {
        bson::RawBsonRef::Int64(s) => Some(s),
        bson::RawBsonRef::Int32(s) => Some(i64::from(s)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mongo::oplog::changes::Changes;
    use bson::{doc, Timestamp};

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

    fn changes(events: &[bson::Document]) -> Changes {
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
}
