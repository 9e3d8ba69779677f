//! Which namespaces an oplog entry writes into or creates — known before a replay, so the
//! target can be checked before anything is written.

use mongodb::bson::{Document, RawDocument};

use crate::error::{Error, Result};

/// Namespaces an entry writes documents into or creates (inside transactions too).
pub fn written_namespaces(raw: &RawDocument) -> Result<Vec<String>> {
    let op = raw.get_str("op").unwrap_or("");
    let ns = raw.get_str("ns").unwrap_or("");
    match op {
        // Most entries: no need to decode the document.
        "i" | "u" => Ok(vec![ns.to_string()]),
        "c" => {
            let entry = Document::try_from(raw)
                .map_err(|e| Error::corrupt("oplog entry", e.to_string()))?;
            let mut out = Vec::new();
            collect(&entry, &mut out);
            Ok(out)
        }
        _ => Ok(Vec::new()),
    }
}

fn collect(entry: &Document, out: &mut Vec<String>) {
    let ns = entry.get_str("ns").unwrap_or("");
    match entry.get_str("op").unwrap_or("") {
        "i" | "u" => out.push(ns.to_string()),
        "c" => {
            let Ok(o) = entry.get_document("o") else {
                return;
            };
            let db = ns.split('.').next().unwrap_or("");
            if let Ok(c) = o.get_str("create") {
                out.push(format!("{db}.{c}"));
            }
            if let Ok(to) = o.get_str("to") {
                out.push(to.to_string());
            }
            for op in o.get_array("applyOps").into_iter().flatten() {
                if let Some(d) = op.as_document() {
                    collect(d, out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, RawDocumentBuf};

    fn written(entry: Document) -> Vec<String> {
        written_namespaces(&RawDocumentBuf::from_document(&entry).unwrap()).unwrap()
    }

    #[test]
    fn inserts_updates_creates_renames_and_transactions() {
        assert_eq!(
            written(doc! {"op": "i", "ns": "a.c", "o": {"_id": 1}}),
            ["a.c"]
        );
        assert_eq!(written(doc! {"op": "u", "ns": "a.c", "o": {}}), ["a.c"]);
        assert!(written(doc! {"op": "d", "ns": "a.c", "o": {"_id": 1}}).is_empty());
        assert_eq!(
            written(doc! {"op": "c", "ns": "a.$cmd", "o": {"create": "n"}}),
            ["a.n"]
        );
        assert_eq!(
            written(
                doc! {"op": "c", "ns": "a.$cmd", "o": {"renameCollection": "a.x", "to": "a.y"}}
            ),
            ["a.y"]
        );
        let txn = doc! {"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [
            {"op": "i", "ns": "b.t", "o": {"_id": 1}},
            {"op": "d", "ns": "b.u", "o": {"_id": 1}},
        ]}};
        assert_eq!(written(txn), ["b.t"]);
        assert!(written(doc! {"op": "c", "ns": "a.$cmd", "o": {"drop": "c"}}).is_empty());
    }
}
