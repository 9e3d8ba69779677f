//! `repo scan --mongodb-uri`: compare a live database with a snapshot, per collection —
//! missing collections, missing, extra and changed documents (by `_id` and content hash)
//! and index differences.
//!
//! The snapshot's side is held as `_id` → BLAKE3 of the document (about 60 bytes per
//! document); the live side is streamed.

use std::collections::{BTreeMap, HashMap, HashSet};

use mongodb::bson::{doc, Document, RawDocumentBuf};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::mongo::client::{connect, db_err};
use crate::mongo::export::index_specs;
use crate::mongo::ns::ns_matchers;
use crate::mongo::restore::{for_each_saved_doc, saved};
use crate::mongo::uri::ConnectionString;
use crate::ops::context::Ctx;
use crate::repository::Repository;
use crate::snapshot::Snapshot;

/// Examples listed per class.
const EXAMPLES: usize = 10;

/// Differences of one collection.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CollectionScan {
    /// "db.coll".
    pub ns: String,
    /// The live collection does not exist.
    pub missing: bool,
    /// Documents in the snapshot.
    pub snapshot_documents: u64,
    /// Documents live.
    pub live_documents: u64,
    /// Snapshot documents whose `_id` is gone.
    pub missing_documents: u64,
    /// Live documents whose `_id` the snapshot does not have.
    pub extra_documents: u64,
    /// Documents whose content differs.
    pub changed_documents: u64,
    /// Some `_id`s of each class (relaxed extended JSON).
    pub examples: BTreeMap<String, Vec<String>>,
    /// Index names in the snapshot but not live.
    pub indexes_missing: Vec<String>,
    /// Index names live but not in the snapshot.
    pub indexes_extra: Vec<String>,
    /// Index names whose spec differs.
    pub indexes_changed: Vec<String>,
}

impl CollectionScan {
    /// Whether anything of the snapshot's content is missing or altered live.
    pub fn lost(&self) -> bool {
        self.missing
            || self.missing_documents > 0
            || self.changed_documents > 0
            || !self.indexes_missing.is_empty()
            || !self.indexes_changed.is_empty()
    }
}

/// The whole comparison.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MongoScan {
    /// Snapshot compared with.
    pub snapshot: String,
    /// When it was taken.
    pub snapshot_time: chrono::DateTime<chrono::Utc>,
    /// Per collection of the snapshot.
    pub collections: Vec<CollectionScan>,
    /// Live collections (of the snapshot's databases) the snapshot does not have.
    pub new_collections: Vec<String>,
}

impl MongoScan {
    /// Whether anything was lost or altered.
    pub fn lost(&self) -> bool {
        self.collections.iter().any(CollectionScan::lost)
    }
}

/// `{_id: <value>}` as bytes: a type-exact key for a document's `_id`.
fn id_key(d: &RawDocumentBuf) -> Result<Vec<u8>> {
    let id = d
        .get("_id")
        .map_err(|e| Error::Source(format!("bad document: {e}")))?
        .ok_or_else(|| Error::Source("a document has no _id".into()))?;
    let mut k = RawDocumentBuf::new();
    k.append("_id", id.to_raw_bson());
    Ok(k.into_bytes())
}

fn show_id(key: &[u8]) -> String {
    RawDocumentBuf::from_bytes(key.to_vec())
        .ok()
        .and_then(|d| Document::try_from(d.as_ref()).ok())
        .and_then(|d| d.get("_id").cloned())
        .map_or_else(|| "?".into(), |b| b.into_relaxed_extjson().to_string())
}

fn index_map(specs: impl IntoIterator<Item = Document>) -> HashMap<String, Document> {
    specs
        .into_iter()
        .filter_map(|mut d| {
            d.remove("ns");
            d.remove("v");
            Some((d.get_str("name").ok()?.to_string(), d))
        })
        .collect()
}

/// The newest snapshot of the server at `uri` (matched by its connection string without
/// credentials), else the newest snapshot holding any collections.
pub fn latest_of(repo: &Repository, uri: &ConnectionString) -> Result<Snapshot> {
    let f = crate::selection::SnapshotFilter {
        source: Some("mongodb".into()),
        ..Default::default()
    };
    let mut snaps = f.apply(repo.snapshots()?);
    let live = uri.redacted();
    if snaps.iter().any(|s| s.paths.contains(&live)) {
        snaps.retain(|s| s.paths.contains(&live));
    }
    snaps
        .pop()
        .ok_or_else(|| Error::Selection("no snapshot holds MongoDB collections".into()))
}

/// Compares the snapshot's collections (matching `namespaces` globs) with `uri`;
/// cancellation is honoured between collections.
pub fn run(
    repo: &Repository,
    snap: &Snapshot,
    uri: &str,
    namespaces: &[String],
    ctx: &Ctx,
) -> Result<MongoScan> {
    let globs = ns_matchers(namespaces)?;
    let client = connect(uri)?;
    let mut report = MongoScan {
        snapshot: snap.id.short(),
        snapshot_time: snap.time,
        ..Default::default()
    };
    let mut dbs: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for s in saved(repo, snap)? {
        ctx.check()?;
        let name = s
            .meta
            .get_str("collectionName")
            .unwrap_or_default()
            .to_string();
        let ns = format!("{}.{name}", s.db);
        if !(globs.is_empty() || globs.iter().any(|g| g.is_match(&ns))) {
            continue;
        }
        let db = client.database(&s.db);
        let live_names = match dbs.get(&s.db) {
            Some(n) => n.clone(),
            None => {
                let n: HashSet<String> = db
                    .list_collection_names()
                    .run()
                    .map_err(|e| db_err(&format!("listing collections of {}", s.db), e))?
                    .into_iter()
                    .collect();
                dbs.insert(s.db.clone(), n.clone());
                n
            }
        };
        let mut c = CollectionScan {
            ns: ns.clone(),
            snapshot_documents: s.meta.get_i64("count").unwrap_or(0).max(0) as u64,
            ..Default::default()
        };
        if !live_names.contains(&name) {
            c.missing = true;
            report.collections.push(c);
            continue;
        }
        // Indexes.
        let saved_idx = index_map(s.index_specs());
        if s.meta.get_str("type") != Ok("view") {
            let live_specs = index_specs(&db, &name)?;
            let live_idx = index_map(live_specs);
            for (n, spec) in &saved_idx {
                match live_idx.get(n) {
                    None => c.indexes_missing.push(n.clone()),
                    Some(l) if l != spec => c.indexes_changed.push(n.clone()),
                    Some(_) => {}
                }
            }
            c.indexes_extra = live_idx
                .keys()
                .filter(|n| !saved_idx.contains_key(*n))
                .cloned()
                .collect();
            c.indexes_missing.sort();
            c.indexes_changed.sort();
            c.indexes_extra.sort();
        }
        // Documents.
        if let Some(node) = &s.data {
            let mut want: HashMap<Vec<u8>, [u8; 32]> = HashMap::new();
            for_each_saved_doc(repo, node, &ns, |d| {
                want.insert(id_key(&d)?, *blake3::hash(d.as_bytes()).as_bytes());
                Ok(())
            })?;
            c.snapshot_documents = want.len() as u64;
            let mut examples: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            let mut note = |class: &'static str, key: &[u8]| {
                let v = examples.entry(class).or_default();
                if v.len() < EXAMPLES {
                    v.push(show_id(key));
                }
            };
            for d in db
                .collection::<RawDocumentBuf>(&name)
                .find(doc! {})
                .batch_size(1000)
                .run()
                .map_err(|e| db_err(&format!("reading {ns}"), e))?
            {
                let d = d.map_err(|e| db_err(&format!("reading {ns}"), e))?;
                c.live_documents += 1;
                let key = id_key(&d)?;
                match want.remove(&key) {
                    None => {
                        c.extra_documents += 1;
                        note("extra", &key);
                    }
                    Some(h) if h != *blake3::hash(d.as_bytes()).as_bytes() => {
                        c.changed_documents += 1;
                        note("changed", &key);
                    }
                    Some(_) => {}
                }
            }
            c.missing_documents = want.len() as u64;
            let mut gone: Vec<&Vec<u8>> = want.keys().collect();
            gone.sort();
            for k in gone.into_iter().take(EXAMPLES) {
                note("missing", k);
            }
            c.examples = examples
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        }
        report.collections.push(c);
    }
    if report.collections.is_empty() {
        return Err(Error::Selection(format!(
            "no collection in snapshot {} matches {}",
            snap.id.short(),
            namespaces.join(", ")
        )));
    }
    let known: HashSet<&str> = report.collections.iter().map(|c| c.ns.as_str()).collect();
    // With --ns the user chose what to compare; other collections are not "new".
    let all_dbs = if globs.is_empty() {
        dbs.iter().collect()
    } else {
        Vec::new()
    };
    for (db, names) in all_dbs {
        let mut extra: Vec<String> = names
            .iter()
            .filter(|n| !n.starts_with("system."))
            .map(|n| format!("{db}.{n}"))
            .filter(|ns| !known.contains(ns.as_str()))
            .collect();
        extra.sort();
        report.new_collections.extend(extra);
    }
    Ok(report)
}
