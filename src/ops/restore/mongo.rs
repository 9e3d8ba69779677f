//! Restore of MongoDB collections from a snapshot into a server: recreate each collection
//! with its options, insert its documents in large unordered batches of the raw bytes
//! that were saved (never re-encoded), then build its indexes.

use std::collections::HashSet;

use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::error::ErrorKind;
use mongodb::sync::{Client, Database};
use serde::Serialize;

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::source::mongodb::{connect, from_entry_name, ns_matchers, split_ns, ROOT};
use crate::tree::{Node, NodeKind};

/// Documents per insert batch (the server also caps a batch at 48 MB).
const BATCH_DOCS: usize = 10_000;
/// Bytes per insert batch.
const BATCH_BYTES: usize = 16 << 20;

/// What to do when a target collection exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MongoConflict {
    /// Keep existing documents; insert only `_id`s that are missing.
    Skip,
    /// Replace documents with the same `_id`.
    Overwrite,
    /// Drop the collection first.
    Drop,
    /// Refuse (before writing anything) when a target collection exists.
    Fail,
}

/// What to restore and where.
#[derive(Clone, Debug)]
pub struct MongoRestoreOptions {
    /// Target server.
    pub uri: String,
    /// Only namespaces matching these globs ("app.users", "app.*"); empty: all.
    pub namespaces: Vec<String>,
    /// Rename rules "from:to", with one optional `*` on each side ("app.*:app_old.*").
    pub renames: Vec<String>,
    /// Policy for existing collections.
    pub conflict: MongoConflict,
    /// Only report what would happen.
    pub dry_run: bool,
}

/// The outcome for one collection.
#[derive(Clone, Debug, Serialize)]
pub struct CollectionOutcome {
    /// Namespace in the snapshot.
    pub source: String,
    /// Namespace written to.
    pub target: String,
    /// "collection", "view" or "timeseries".
    pub kind: String,
    /// Whether the target existed before.
    pub existed: bool,
    /// "create", "drop and create", "merge (skip existing _id)", "merge (replace by _id)".
    pub action: String,
    /// Documents in the snapshot.
    pub documents: u64,
    /// Documents inserted.
    pub inserted: u64,
    /// Documents replaced (overwrite).
    pub replaced: u64,
    /// Documents kept as they were (skip).
    pub skipped: u64,
    /// Indexes built (besides `_id`).
    pub indexes: u64,
}

/// One collection as saved in a snapshot.
pub(crate) struct Saved {
    /// Database name.
    pub db: String,
    /// Its metadata document.
    pub meta: Document,
    /// Its `<coll>.bson` entry (none for views).
    pub data: Option<Node>,
}

fn mongo_err(what: &str, e: mongodb::error::Error) -> Error {
    Error::Source(format!("MongoDB: {what}: {e}"))
}

/// Reads a (small) file's content from the snapshot.
fn read_node(repo: &Repository, node: &Node) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(node.size as usize);
    for c in &node.content {
        out.extend(repo.read_blob(BlobKind::Data, &BlobId::from(*c))?);
    }
    Ok(out)
}

/// Every saved collection in the snapshot.
pub(crate) fn saved(repo: &Repository, snap: &Snapshot) -> Result<Vec<Saved>> {
    let root = repo.load_tree(&snap.tree)?;
    let Some(top) = root
        .nodes
        .iter()
        .find(|n| n.name == ROOT.as_bytes() && n.kind() == NodeKind::Dir)
    else {
        return Err(Error::Selection(format!(
            "snapshot {} holds no MongoDB collections",
            snap.id.short()
        )));
    };
    let mut out = Vec::new();
    let Some(top_tree) = top.subtree else {
        return Err(Error::corrupt(
            "snapshot tree",
            "/mongodb is a directory without a tree",
        ));
    };
    for dbn in repo.load_tree(&top_tree)?.nodes {
        let Some(sub) = dbn.subtree else { continue };
        let db = from_entry_name(&String::from_utf8_lossy(&dbn.name));
        let nodes = repo.load_tree(&sub)?.nodes;
        for n in &nodes {
            let name = String::from_utf8_lossy(&n.name).to_string();
            let Some(base) = name.strip_suffix(".metadata.bson") else {
                continue;
            };
            let meta = Document::from_reader(&mut read_node(repo, n)?.as_slice())
                .map_err(|e| Error::corrupt(format!("metadata of {db}.{base}"), e.to_string()))?;
            let data_name = format!("{base}.bson");
            let data = nodes
                .iter()
                .find(|d| d.name == data_name.as_bytes())
                .cloned();
            out.push(Saved {
                db: db.clone(),
                meta,
                data,
            });
        }
    }
    Ok(out)
}

/// Applies the first matching rename rule to `ns`.
pub(crate) fn rename(ns: &str, rules: &[String]) -> Result<String> {
    for r in rules {
        let (from, to) = r
            .split_once(':')
            .ok_or_else(|| Error::Invalid(format!("--ns-rename {r:?}: expected FROM:TO")))?;
        match (from.split_once('*'), to.split_once('*')) {
            (Some((fp, fs)), Some((tp, ts))) => {
                if ns.len() >= fp.len() + fs.len() && ns.starts_with(fp) && ns.ends_with(fs) {
                    let mid = &ns[fp.len()..ns.len() - fs.len()];
                    return Ok(format!("{tp}{mid}{ts}"));
                }
            }
            (None, None) if ns == from => return Ok(to.to_string()),
            (None, None) => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "--ns-rename {r:?}: use a '*' on both sides or on neither"
                )))
            }
        }
    }
    Ok(ns.to_string())
}

/// Restores the snapshot's collections into `opts.uri`.
pub fn run(
    repo: &Repository,
    snap: &Snapshot,
    opts: &MongoRestoreOptions,
) -> Result<Vec<CollectionOutcome>> {
    let globs = ns_matchers(&opts.namespaces)?;
    let mut chosen = Vec::new();
    for s in saved(repo, snap)? {
        let name = s
            .meta
            .get_str("collectionName")
            .unwrap_or_default()
            .to_string();
        let ns = format!("{}.{name}", s.db);
        if globs.is_empty() || globs.iter().any(|g| g.is_match(&ns)) {
            let target = rename(&ns, &opts.renames)?;
            split_ns(&target)?;
            chosen.push((s, ns, target));
        }
    }
    if chosen.is_empty() {
        return Err(Error::Selection(format!(
            "no collection in snapshot {} matches {}",
            snap.id.short(),
            opts.namespaces.join(", ")
        )));
    }
    let client = connect(&opts.uri)?;
    let mut outcomes = Vec::new();
    for (s, ns, target) in &chosen {
        let (tdb, tcoll) = split_ns(target)?;
        let existing: HashSet<String> = client
            .database(tdb)
            .list_collection_names()
            .run()
            .map_err(|e| mongo_err(&format!("listing collections of {tdb}"), e))?
            .into_iter()
            .collect();
        let existed = existing.contains(tcoll);
        let kind = s.meta.get_str("type").unwrap_or("collection").to_string();
        let action = match (existed, opts.conflict) {
            (false, _) => "create",
            (true, MongoConflict::Drop) => "drop and create",
            (true, MongoConflict::Skip) => "merge (skip existing _id)",
            (true, MongoConflict::Overwrite) => "merge (replace by _id)",
            (true, MongoConflict::Fail) => "fail: target exists",
        };
        outcomes.push(CollectionOutcome {
            source: ns.clone(),
            target: target.clone(),
            kind,
            existed,
            action: action.into(),
            documents: s.meta.get_i64("count").unwrap_or(0).max(0) as u64,
            inserted: 0,
            replaced: 0,
            skipped: 0,
            indexes: 0,
        });
    }
    let clashes: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.existed && opts.conflict == MongoConflict::Fail)
        .map(|o| o.target.as_str())
        .collect();
    if !clashes.is_empty() && !opts.dry_run {
        return Err(Error::Refused(format!(
            "target collection(s) already exist: {}; nothing was written (choose --conflict \
             skip, overwrite or drop, or restore elsewhere with --ns-rename)",
            clashes.join(", ")
        )));
    }
    if opts.dry_run {
        return Ok(outcomes);
    }
    // Collections before views: a view's source should exist when it is created.
    let mut order: Vec<usize> = (0..chosen.len()).collect();
    order.sort_by_key(|&i| outcomes[i].kind == "view");
    for i in order {
        let (s, _, target) = &chosen[i];
        restore_one(repo, &client, s, target, opts.conflict, &mut outcomes[i])?;
    }
    Ok(outcomes)
}

fn restore_one(
    repo: &Repository,
    client: &Client,
    s: &Saved,
    target: &str,
    conflict: MongoConflict,
    out: &mut CollectionOutcome,
) -> Result<()> {
    let (tdb, tcoll) = split_ns(target)?;
    let db = client.database(tdb);
    if out.existed && conflict == MongoConflict::Drop {
        db.collection::<Document>(tcoll)
            .drop()
            .run()
            .map_err(|e| mongo_err(&format!("dropping {target}"), e))?;
    }
    if !out.existed || conflict == MongoConflict::Drop {
        let mut create = doc! {"create": tcoll};
        if let Ok(options) = s.meta.get_document("options") {
            for (k, v) in options {
                create.insert(k.clone(), v.clone());
            }
        }
        db.run_command(create)
            .run()
            .map_err(|e| mongo_err(&format!("creating {target}"), e))?;
    }
    if let Some(node) = &s.data {
        insert_documents(repo, &db, tcoll, node, conflict, out)?;
    }
    let specs: Vec<Bson> = s
        .meta
        .get_array("indexes")
        .map(|a| a.to_vec())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|b| match b {
            Bson::Document(mut d) if d.get_str("name") != Ok("_id_") => {
                d.remove("ns");
                Some(Bson::Document(d))
            }
            _ => None,
        })
        .collect();
    if !specs.is_empty() {
        out.indexes = specs.len() as u64;
        db.run_command(doc! {"createIndexes": tcoll, "indexes": specs})
            .run()
            .map_err(|e| mongo_err(&format!("building indexes of {target}"), e))?;
    }
    Ok(())
}

/// A saved collection, as `ls` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SavedCollection {
    /// "db.coll".
    pub ns: String,
    /// "collection", "view" or "timeseries".
    pub kind: String,
    /// Documents at the read time.
    pub documents: u64,
    /// Bytes of raw BSON.
    pub bytes: u64,
    /// Indexes (including `_id`).
    pub indexes: usize,
}

/// The collections a snapshot holds.
pub fn collections(repo: &Repository, snap: &Snapshot) -> Result<Vec<SavedCollection>> {
    Ok(saved(repo, snap)?
        .into_iter()
        .map(|s| SavedCollection {
            ns: format!(
                "{}.{}",
                s.db,
                s.meta.get_str("collectionName").unwrap_or_default()
            ),
            kind: s.meta.get_str("type").unwrap_or("collection").to_string(),
            documents: s.meta.get_i64("count").unwrap_or(0).max(0) as u64,
            bytes: s.data.as_ref().map_or(0, |n| n.size),
            indexes: s.meta.get_array("indexes").map_or(0, |a| a.len()),
        })
        .collect())
}

/// Calls `f` with every document saved in `node` (a `<coll>.bson` entry), in order,
/// reading one chunk at a time.
pub(crate) fn for_each_saved_doc(
    repo: &Repository,
    node: &Node,
    coll: &str,
    mut f: impl FnMut(RawDocumentBuf) -> Result<()>,
) -> Result<()> {
    let bad = |why: String| Error::corrupt(format!("saved documents of {coll}"), why);
    let mut pending: Vec<u8> = Vec::new();
    for chunk in &node.content {
        pending.extend(repo.read_blob(BlobKind::Data, &BlobId::from(*chunk))?);
        let mut at = 0;
        while pending.len() - at >= 4 {
            let len = i32::from_le_bytes([
                pending[at],
                pending[at + 1],
                pending[at + 2],
                pending[at + 3],
            ]);
            if len < 5 {
                return Err(bad("bad document length".into()));
            }
            let len = len as usize;
            if pending.len() - at < len {
                break;
            }
            let d = RawDocumentBuf::from_bytes(pending[at..at + len].to_vec())
                .map_err(|e| bad(e.to_string()))?;
            at += len;
            f(d)?;
        }
        pending.drain(..at);
    }
    if !pending.is_empty() {
        return Err(bad("truncated document".into()));
    }
    Ok(())
}

/// Streams the saved documents into the collection in batches.
fn insert_documents(
    repo: &Repository,
    db: &Database,
    coll: &str,
    node: &Node,
    conflict: MongoConflict,
    out: &mut CollectionOutcome,
) -> Result<()> {
    let c = db.collection::<RawDocumentBuf>(coll);
    let mut batch: Vec<RawDocumentBuf> = Vec::new();
    let mut batch_bytes = 0;
    let flush = |batch: &mut Vec<RawDocumentBuf>, out: &mut CollectionOutcome| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let docs = std::mem::take(batch);
        match c.insert_many(&docs).ordered(false).run() {
            Ok(r) => out.inserted += r.inserted_ids.len() as u64,
            Err(e) => {
                let ErrorKind::InsertMany(failure) = e.kind.as_ref() else {
                    return Err(mongo_err(&format!("inserting into {coll}"), e));
                };
                let dups: Vec<usize> = failure
                    .write_errors
                    .iter()
                    .flatten()
                    .filter(|w| w.code == 11000)
                    .map(|w| w.index)
                    .collect();
                let others = failure.write_errors.as_ref().map_or(0, |w| w.len()) - dups.len();
                if others > 0 || failure.write_concern_error.is_some() {
                    return Err(mongo_err(&format!("inserting into {coll}"), e));
                }
                out.inserted += (docs.len() - dups.len()) as u64;
                if conflict != MongoConflict::Overwrite {
                    out.skipped += dups.len() as u64;
                } else if !dups.is_empty() {
                    // Replace in bulk: delete those _ids, then insert the saved copies.
                    let mut ids = Vec::with_capacity(dups.len());
                    for &i in &dups {
                        let id = docs[i]
                            .get("_id")
                            .ok()
                            .flatten()
                            .and_then(|v| Bson::try_from(v.to_raw_bson()).ok())
                            .ok_or_else(|| {
                                Error::Source(format!("a document of {coll} has no _id"))
                            })?;
                        ids.push(id);
                    }
                    c.delete_many(doc! {"_id": {"$in": ids}})
                        .run()
                        .map_err(|e| mongo_err(&format!("replacing in {coll}"), e))?;
                    c.insert_many(dups.iter().map(|&i| &docs[i]))
                        .ordered(false)
                        .run()
                        .map_err(|e| mongo_err(&format!("replacing in {coll}"), e))?;
                    out.replaced += dups.len() as u64;
                }
            }
        }
        Ok(())
    };
    for_each_saved_doc(repo, node, coll, |d| {
        batch_bytes += d.as_bytes().len();
        batch.push(d);
        if batch.len() >= BATCH_DOCS || batch_bytes >= BATCH_BYTES {
            flush(&mut batch, out)?;
            batch_bytes = 0;
        }
        Ok(())
    })?;
    flush(&mut batch, out)
}

#[cfg(test)]
mod tests {
    use super::rename;

    #[test]
    fn renames_with_and_without_wildcards() {
        let r = vec!["app.*:app_restored.*".to_string(), "x.a:y.b".to_string()];
        assert_eq!(rename("app.users", &r).unwrap(), "app_restored.users");
        assert_eq!(rename("x.a", &r).unwrap(), "y.b");
        assert_eq!(rename("other.c", &r).unwrap(), "other.c");
        assert!(rename("a.b", &["a.*:b".to_string()]).is_err());
    }
}
