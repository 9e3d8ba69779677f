//! Where collections live in a snapshot's tree (format-spec/snapshot.md), written and read.
//!
//! Layout 2 (current): `/mongodb/<db>/<coll>/metadata.bson` and, for collections (not
//! views), `/mongodb/<db>/<coll>/data.bson` — one directory per collection, named by an
//! injective escaping of its name, so no collection name (`t.metadata`, `x.bson`, `a/b`,
//! `%`, unicode, 200 bytes long) can collide with another's entries. The names a reader
//! uses are the ones inside `metadata.bson`, never the entry names.
//!
//! Layout 1 (snapshots written before 2026-12): `<coll>.bson` and `<coll>.metadata.bson`
//! side by side in the database's directory. Still read; never written.

use mongodb::bson::Document;

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::{BlobId, TreeId};
use crate::repository::Repository;
use crate::tree::{Node, NodeKind};

/// The current layout, recorded in the snapshot's `mongodb.layout`.
pub const LAYOUT: u32 = 2;
/// Entry of a collection's documents (layout 2).
pub const DATA: &str = "data.bson";
/// Entry of a collection's metadata (layout 2).
pub const METADATA: &str = "metadata.bson";

/// Encodes a database or collection name as a tree entry name: `%`, `/` and NUL as `%XX`,
/// and a leading `.` as `%2E` (so `.` and `..` never appear). Injective: `%` only ever
/// starts an escape.
pub fn entry_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.char_indices() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '\0' => out.push_str("%00"),
            '.' if i == 0 => out.push_str("%2E"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`entry_name`] (also the narrower escaping of layout 1).
pub fn from_entry_name(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 3 <= b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One collection (or view) as saved in a snapshot.
pub struct Saved {
    /// Database name (from the metadata).
    pub db: String,
    /// Collection name (from the metadata).
    pub name: String,
    /// Its metadata document.
    pub meta: Document,
    /// Its documents' entry (none for views).
    pub data: Option<Node>,
}

impl Saved {
    /// "db.coll".
    pub fn ns(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    /// The index specs as `listIndexes` returned them when the snapshot was taken.
    pub fn index_specs(&self) -> Vec<Document> {
        self.meta
            .get_array("indexes")
            .map(|a| a.to_vec())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|b| match b {
                mongodb::bson::Bson::Document(d) => Some(d),
                _ => None,
            })
            .collect()
    }
}

/// Reads a (small) file's content from the snapshot.
pub fn read_node(repo: &Repository, node: &Node) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(node.size as usize);
    for c in &node.content {
        out.extend(repo.read_blob(BlobKind::Data, &BlobId::from(*c))?);
    }
    Ok(out)
}

fn metadata(repo: &Repository, node: &Node, at: &str) -> Result<Document> {
    Document::from_reader(&mut read_node(repo, node)?.as_slice())
        .map_err(|e| Error::corrupt(format!("metadata at {at}"), e.to_string()))
}

fn names(meta: &Document, at: &str) -> Result<(String, String)> {
    match (meta.get_str("db"), meta.get_str("collectionName")) {
        (Ok(db), Ok(name)) => Ok((db.to_string(), name.to_string())),
        _ => Err(Error::corrupt(
            format!("metadata at {at}"),
            "no db or collectionName",
        )),
    }
}

/// Every collection saved under `/mongodb` of the tree `root` (the `/mongodb` tree itself).
pub fn read(repo: &Repository, mongodb_tree: TreeId) -> Result<Vec<Saved>> {
    let mut out = Vec::new();
    for dbn in repo.load_tree(&mongodb_tree)?.nodes {
        let Some(sub) = dbn.subtree else { continue };
        let db_entry = String::from_utf8_lossy(&dbn.name).into_owned();
        let nodes = repo.load_tree(&sub)?.nodes;
        if nodes.iter().any(|n| n.kind() == NodeKind::Dir) {
            read_v2(repo, &db_entry, &nodes, &mut out)?;
        } else {
            read_v1(repo, &db_entry, &nodes, &mut out)?;
        }
    }
    Ok(out)
}

fn read_v2(repo: &Repository, db_entry: &str, nodes: &[Node], out: &mut Vec<Saved>) -> Result<()> {
    for cn in nodes.iter().filter(|n| n.kind() == NodeKind::Dir) {
        let at = format!("/mongodb/{db_entry}/{}", String::from_utf8_lossy(&cn.name));
        let Some(t) = cn.subtree else { continue };
        let inner = repo.load_tree(&t)?.nodes;
        let find = |n: &str| inner.iter().find(|x| x.name == n.as_bytes()).cloned();
        let meta_node =
            find(METADATA).ok_or_else(|| Error::corrupt(at.clone(), "no metadata.bson"))?;
        let meta = metadata(repo, &meta_node, &at)?;
        let (db, name) = names(&meta, &at)?;
        out.push(Saved {
            db,
            name,
            meta,
            data: find(DATA),
        });
    }
    Ok(())
}

/// Layout 1: the metadata entries are found by their suffix; a "metadata" entry that is
/// not a metadata document (the documents of a collection whose own name ends in
/// `.metadata`, which that layout could not tell apart) is passed over.
fn read_v1(repo: &Repository, db_entry: &str, nodes: &[Node], out: &mut Vec<Saved>) -> Result<()> {
    for n in nodes {
        let entry = String::from_utf8_lossy(&n.name).into_owned();
        if !entry.ends_with(".metadata.bson") {
            continue;
        }
        let at = format!("/mongodb/{db_entry}/{entry}");
        let Ok((meta, (db, name))) =
            metadata(repo, n, &at).and_then(|m| names(&m, &at).map(|x| (m, x)))
        else {
            continue;
        };
        let data_entry = format!("{}.bson", legacy_entry_name(&name));
        let data = nodes
            .iter()
            .find(|d| d.name == data_entry.as_bytes())
            .cloned();
        out.push(Saved {
            db,
            name,
            meta,
            data,
        });
    }
    Ok(())
}

/// Layout 1's escaping (`%` and `/` only).
fn legacy_entry_name(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

/// Calls `f` with each whole document at the start of `buf` (a collection's saved stream
/// is BSON documents back to back, split across chunks anywhere); returns the bytes used,
/// so the caller keeps the rest for when the next chunk arrives. `what` names the stream
/// in errors.
pub fn whole_documents(
    buf: &[u8],
    what: &str,
    mut f: impl FnMut(&[u8]) -> Result<()>,
) -> Result<usize> {
    let mut at = 0;
    while let Some(head) = buf.get(at..at + 4) {
        let len = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l >= 5)
            .ok_or_else(|| {
                Error::corrupt(format!("saved documents of {what}"), "bad document length")
            })?;
        let Some(doc) = buf.get(at..at + len) else {
            break;
        };
        f(doc)?;
        at += len;
    }
    Ok(at)
}

#[cfg(test)]
mod tests {

    #[test]
    fn whole_documents_are_found_however_the_stream_is_split() {
        use mongodb::bson::doc;
        let docs: Vec<Vec<u8>> = (0..20)
            .map(|i| {
                mongodb::bson::to_vec(&doc! {"_id": i as i64, "s": "x".repeat(i * 7)}).unwrap()
            })
            .collect();
        let stream: Vec<u8> = docs.concat();
        for step in [1, 3, 4, 5, 17, 64, stream.len()] {
            let (mut pending, mut got) = (Vec::new(), Vec::new());
            for piece in stream.chunks(step) {
                pending.extend_from_slice(piece);
                let used = whole_documents(&pending, "t", |d| {
                    got.push(d.to_vec());
                    Ok(())
                })
                .unwrap();
                pending.drain(..used);
            }
            assert!(pending.is_empty(), "step {step}");
            assert_eq!(got, docs, "step {step}");
        }
        for bad in [[0u8, 0, 0, 0], [4, 0, 0, 0], [255, 255, 255, 255]] {
            assert!(whole_documents(&bad, "t", |_| Ok(())).is_err(), "{bad:?}");
        }
    }
    use super::*;

    #[test]
    fn entry_names_are_injective_and_reversible() {
        let names = [
            "t",
            "t.metadata",
            "t.bson",
            "data.bson",
            "metadata.bson",
            "a/b",
            "a%2Fb",
            "%",
            "%25",
            ".",
            "..",
            ".hidden",
            "a.",
            "ünï/cødé",
            "x\0y",
        ];
        let mut seen = std::collections::HashSet::new();
        for n in names {
            let e = entry_name(n);
            assert!(
                !e.contains('/') && e != "." && e != ".." && !e.contains('\0'),
                "{n:?} → {e:?}"
            );
            assert!(seen.insert(e.clone()), "{n:?} collides");
            assert_eq!(from_entry_name(&e), n);
        }
        let long = "x".repeat(250);
        assert_eq!(from_entry_name(&entry_name(&long)), long);
    }

    proptest::proptest! {
        #[test]
        fn any_name_round_trips(n in "\\PC{1,40}") {
            proptest::prop_assert_eq!(from_entry_name(&entry_name(&n)), n);
        }

        #[test]
        fn distinct_names_get_distinct_entries(a in "[a-z%/.]{1,6}", b in "[a-z%/.]{1,6}") {
            proptest::prop_assume!(a != b);
            proptest::prop_assert_ne!(entry_name(&a), entry_name(&b));
        }
    }
}
