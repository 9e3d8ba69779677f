//! Writing a saved collection's documents: large unordered batches (ordered for capped
//! collections, whose insertion order is their natural order), validation bypassed, and an
//! honest account of each document — inserted, replaced, kept because its `_id` was
//! there, or failed (a duplicate on another unique index) with its `_id` and the reason.

use std::collections::HashSet;

use mongodb::bson::{doc, Bson, RawDocumentBuf};
use mongodb::error::ErrorKind;
use mongodb::sync::{Collection, Database};

use super::{CollectionOutcome, MongoConflict};
use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::repository::Repository;
use crate::tree::Node;

/// Documents per insert batch (the server also caps a batch at 48 MB).
const BATCH_DOCS: usize = 10_000;
/// Bytes per insert batch.
const BATCH_BYTES: usize = 16 << 20;
/// Failed documents described one by one per collection; the rest are counted.
const MAX_LISTED: usize = 10;

pub use crate::mongo::client::describe_error as describe;

/// An `_id` as relaxed extended JSON, cut to a readable length.
pub fn show_id(id: &Bson) -> String {
    let s = id.clone().into_relaxed_extjson().to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

fn id_of(d: &RawDocumentBuf) -> Option<Bson> {
    d.get("_id")
        .ok()
        .flatten()
        .and_then(|v| Bson::try_from(v.to_raw_bson()).ok())
}

/// Calls `f` with every document saved in `node` (a collection's data entry), in order,
/// reading one chunk at a time.
pub fn for_each_saved_doc(
    repo: &Repository,
    node: &Node,
    coll: &str,
    mut f: impl FnMut(RawDocumentBuf) -> Result<()>,
) -> Result<()> {
    let bad = |why: String| Error::corrupt(format!("saved documents of {coll}"), why);
    let mut pending: Vec<u8> = Vec::new();
    for chunk in &node.content {
        pending.extend(repo.read_blob(BlobKind::Data, &BlobId::from(*chunk))?);
        let used = crate::mongo::layout::whole_documents(&pending, coll, |d| {
            f(RawDocumentBuf::from_bytes(d.to_vec()).map_err(|e| bad(e.to_string()))?)
        })?;
        pending.drain(..used);
    }
    if !pending.is_empty() {
        return Err(bad("truncated document".into()));
    }
    Ok(())
}

struct Writer<'a> {
    c: Collection<RawDocumentBuf>,
    ns: String,
    conflict: MongoConflict,
    ordered: bool,
    out: &'a mut CollectionOutcome,
}

impl Writer<'_> {
    fn fail(&mut self, id: Option<&Bson>, why: &str) {
        self.out.failed += 1;
        if self.out.errors.len() < MAX_LISTED {
            let id = id.map_or_else(|| "(no _id)".to_string(), show_id);
            self.out
                .errors
                .push(format!("{}: document _id {id} not written: {why}", self.ns));
        }
    }

    fn insert(&mut self, docs: &[RawDocumentBuf]) -> Result<Vec<(usize, String)>> {
        match self
            .c
            .insert_many(docs)
            .ordered(self.ordered)
            .bypass_document_validation(true)
            .run()
        {
            Ok(r) => {
                self.out.inserted += r.inserted_ids.len() as u64;
                Ok(Vec::new())
            }
            Err(e) => {
                let ErrorKind::InsertMany(failure) = e.kind.as_ref() else {
                    return Err(Error::Source(format!(
                        "MongoDB: inserting into {}: {}",
                        self.ns,
                        describe(&e)
                    )));
                };
                if let Some(w) = &failure.write_concern_error {
                    return Err(Error::Source(format!(
                        "MongoDB: inserting into {}: {}",
                        self.ns, w.message
                    )));
                }
                let errs: Vec<(usize, String)> = failure
                    .write_errors
                    .iter()
                    .flatten()
                    .map(|w| (w.index, format!("{} (code {})", w.message, w.code)))
                    .collect();
                // Ordered batches stop at the first error: the rest are retried.
                let attempted = if self.ordered {
                    errs.first().map_or(docs.len(), |(i, _)| *i + 1)
                } else {
                    docs.len()
                };
                self.out.inserted += (attempted - errs.len()) as u64;
                if self.ordered && attempted < docs.len() {
                    let mut rest = self.insert(&docs[attempted..])?;
                    for r in &mut rest {
                        r.0 += attempted;
                    }
                    let mut all = errs;
                    all.extend(rest);
                    return Ok(all);
                }
                Ok(errs)
            }
        }
    }

    /// Sorts the refused documents: an `_id` that exists is a real conflict (kept, or
    /// replaced); any other refusal is a failure, reported.
    fn settle(&mut self, docs: &[RawDocumentBuf], errs: Vec<(usize, String)>) -> Result<()> {
        if errs.is_empty() {
            return Ok(());
        }
        let ids: Vec<Bson> = errs.iter().filter_map(|(i, _)| id_of(&docs[*i])).collect();
        let mut present: HashSet<Vec<u8>> = HashSet::new();
        let found = self
            .c
            .clone_with_type::<mongodb::bson::Document>()
            .find(doc! {"_id": {"$in": ids}})
            .projection(doc! {"_id": 1})
            .run()
            .map_err(|e| {
                Error::Source(format!("MongoDB: reading {}: {}", self.ns, describe(&e)))
            })?;
        for d in found.flatten() {
            if let Some(id) = d.get("_id") {
                present.insert(key(id));
            }
        }
        let mut replace = Vec::new();
        for (i, why) in errs {
            let id = id_of(&docs[i]);
            let exists = id.as_ref().is_some_and(|id| present.contains(&key(id)));
            match (exists, self.conflict) {
                (true, MongoConflict::Overwrite) => replace.push(i),
                (true, _) => self.out.skipped += 1,
                (false, _) => self.fail(id.as_ref(), &why),
            }
        }
        if !replace.is_empty() {
            let ids: Vec<Bson> = replace.iter().filter_map(|&i| id_of(&docs[i])).collect();
            self.c
                .delete_many(doc! {"_id": {"$in": ids}})
                .run()
                .map_err(|e| {
                    Error::Source(format!(
                        "MongoDB: replacing in {}: {}",
                        self.ns,
                        describe(&e)
                    ))
                })?;
            let again: Vec<RawDocumentBuf> = replace.iter().map(|&i| docs[i].clone()).collect();
            let before = self.out.inserted;
            let errs = self.insert(&again)?;
            let written = self.out.inserted - before;
            self.out.inserted = before;
            self.out.replaced += written;
            for (i, why) in errs {
                self.fail(id_of(&again[i]).as_ref(), &why);
            }
        }
        Ok(())
    }
}

fn key(id: &Bson) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = doc! {"_id": id.clone()}.to_writer(&mut v);
    v
}

/// Streams the saved documents into the collection in batches.
pub(super) fn insert_documents(
    repo: &Repository,
    db: &Database,
    coll: &str,
    node: &Node,
    conflict: MongoConflict,
    capped: bool,
    out: &mut CollectionOutcome,
) -> Result<()> {
    let ns = format!("{}.{coll}", db.name());
    let mut w = Writer {
        c: db.collection::<RawDocumentBuf>(coll),
        ns: ns.clone(),
        conflict,
        ordered: capped,
        out,
    };
    let mut batch: Vec<RawDocumentBuf> = Vec::new();
    let mut batch_bytes = 0;
    let flush = |w: &mut Writer, batch: &mut Vec<RawDocumentBuf>| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let docs = std::mem::take(batch);
        let errs = w.insert(&docs)?;
        w.settle(&docs, errs)
    };
    for_each_saved_doc(repo, node, &ns, |d| {
        batch_bytes += d.as_bytes().len();
        batch.push(d);
        if batch.len() >= BATCH_DOCS || batch_bytes >= BATCH_BYTES {
            flush(&mut w, &mut batch)?;
            batch_bytes = 0;
        }
        Ok(())
    })?;
    flush(&mut w, &mut batch)
}
