//! Restore of MongoDB collections from a snapshot into a server: recreate each collection
//! with its options (validator included), insert its documents — the raw bytes that were
//! saved, never re-encoded, bypassing document validation since the server accepted them
//! once — then build its indexes from the specs `listIndexes` gave.
//!
//! Before anything is written the whole plan is checked: the rename rules each match
//! something, no two sources land on one target, existing targets follow `--conflict`,
//! and a restore whose renames were meant to go elsewhere never writes into a namespace of
//! the very server the snapshot was taken from without `--in-place`. A collection that
//! fails does not stop the others; the outcome says which completed and which did not.

pub mod at;
pub(crate) mod indexes;
mod insert;
mod verb;

use std::collections::{HashMap, HashSet};

use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::sync::Client;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::mongo::client::{connect, hello, server_identity};
use crate::mongo::export::is_capped;
use crate::mongo::layout::{self, Saved};
use crate::mongo::ns::Renames;
use crate::mongo::ns::{ns_matchers, split_ns};
use crate::ops::context::Ctx;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::tree::Node;

pub use insert::for_each_saved_doc;
pub use verb::{restore, MongoRestoreReport, MongoTarget};

/// What to do when a target collection exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    /// Rename rules.
    pub renames: Renames,
    /// Policy for existing collections.
    pub conflict: MongoConflict,
    /// Allow writing into namespaces of the server the snapshot was taken from although
    /// rename rules were given (some namespaces are then restored in place).
    pub in_place: bool,
    /// Only report what would happen.
    pub dry_run: bool,
    /// Namespaces a roll-forward creates after the snapshot (`restore --at`): the rename
    /// rules may be meant for them.
    pub replayed: Vec<String>,
}

/// The outcome for one collection.
#[derive(Clone, Debug, Default, Serialize)]
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
    /// Documents kept as they were because their `_id` existed (skip).
    pub skipped: u64,
    /// Documents that could not be written (e.g. a duplicate on another unique index).
    pub failed: u64,
    /// Indexes built (besides `_id`).
    pub indexes: u64,
    /// Their names.
    pub indexes_created: Vec<String>,
    /// Why, for each failed document (at most 10) or index, and for the collection itself.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Whether the collection was restored completely.
    pub complete: bool,
}

use crate::mongo::client::mongo_error;

/// Every saved collection in the snapshot.
pub fn saved(repo: &Repository, snap: &Snapshot) -> Result<Vec<Saved>> {
    let root = repo.load_tree(&snap.tree)?;
    let top = root
        .nodes
        .iter()
        .find(|n| n.name == crate::mongo::export::ROOT.as_bytes())
        .and_then(|n| n.subtree)
        .ok_or_else(|| {
            Error::Selection(format!(
                "snapshot {} holds no MongoDB collections",
                snap.id.short()
            ))
        })?;
    layout::read(repo, top)
}

/// The chosen collections with their targets; checks the rules before anything is read
/// from the server.
fn choose(
    repo: &Repository,
    snap: &Snapshot,
    opts: &MongoRestoreOptions,
) -> Result<Vec<(Saved, String)>> {
    let globs = ns_matchers(&opts.namespaces)?;
    let mut chosen = Vec::new();
    let mut used = vec![false; opts.renames.0.len()];
    for s in saved(repo, snap)? {
        let ns = s.ns();
        if !(globs.is_empty() || globs.iter().any(|g| g.is_match(&ns))) {
            continue;
        }
        let (target, rule) = opts.renames.apply(&ns);
        if let Some(r) = rule {
            used[r] = true;
        }
        split_ns(&target)?;
        chosen.push((s, target));
    }
    let globs_match = |ns: &str| globs.is_empty() || globs.iter().any(|g| g.is_match(ns));
    let mut replayed_targets = Vec::new();
    for ns in opts.replayed.iter().filter(|ns| globs_match(ns)) {
        let (target, rule) = opts.renames.apply(ns);
        if let Some(r) = rule {
            used[r] = true;
        }
        replayed_targets.push((ns.clone(), target));
    }
    // A collection created after the snapshot is restored by the roll-forward alone.
    if chosen.is_empty() && replayed_targets.is_empty() {
        let created = if opts.replayed.is_empty() {
            ""
        } else {
            " or created by the oplog up to the moment"
        };
        // A snapshot of databases that had no collections yet holds none.
        return Err(Error::Selection(if opts.namespaces.is_empty() {
            format!(
                "snapshot {} holds no collection{created} (its databases had none when it \
                 was taken): nothing to restore",
                snap.id.short()
            )
        } else {
            format!(
                "no collection in snapshot {}{created} matches {}",
                snap.id.short(),
                opts.namespaces.join(", ")
            )
        }));
    }
    // A rule for a whole database the snapshot saved whole is no typo when it matches
    // nothing: that database had no collections then (or at the moment restored to).
    let scope_dbs: Vec<&str> = snap
        .mongodb
        .as_ref()
        .and_then(|m| m.scope.as_ref())
        .map(|s| s.dbs.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let saved_whole =
        |r: &crate::mongo::ns::Rule| r.whole_database().is_some_and(|db| scope_dbs.contains(&db));
    if let Some(i) = (0..used.len()).find(|&i| !used[i] && !saved_whole(&opts.renames.0[i])) {
        return Err(Error::Refused(format!(
            "--ns-rename {:?} matches no collection selected from snapshot {}; nothing was written",
            opts.renames.0[i].text,
            snap.id.short()
        )));
    }
    let all: Vec<(String, String)> = chosen
        .iter()
        .map(|(s, t)| (s.ns(), t.clone()))
        .chain(replayed_targets)
        .collect();
    let mut by_target: HashMap<&str, &str> = HashMap::new();
    for (src, t) in &all {
        if by_target.insert(t.as_str(), src.as_str()).is_some() {
            let sources: Vec<&str> = all
                .iter()
                .filter(|(_, t2)| t2 == t)
                .map(|(s2, _)| s2.as_str())
                .collect();
            return Err(Error::Refused(format!(
                "{} would all be restored into {t}; nothing was written",
                sources.join(" and ")
            )));
        }
    }
    Ok(chosen)
}

/// Refuses writing into the snapshot's own server and namespaces when renames were meant
/// to send the restore elsewhere.
fn guard_source(
    client: &Client,
    snap: &Snapshot,
    opts: &MongoRestoreOptions,
    chosen: &[(Saved, String)],
) -> Result<()> {
    if opts.renames.is_empty() || opts.in_place {
        return Ok(());
    }
    let Some(rec) = &snap.mongodb else {
        return Ok(());
    };
    let target_server = server_identity(client, &hello(client)?, &opts.uri)?;
    let same_server = match &rec.server {
        Some(s) => *s == target_server,
        None => crate::mongo::uri::redact(&opts.uri) == rec.uri,
    };
    let in_place: Vec<String> = chosen
        .iter()
        .filter(|(s, t)| s.ns() == *t)
        .map(|(_, t)| t.clone())
        .collect();
    if same_server && !in_place.is_empty() {
        return Err(Error::Refused(format!(
            "no rename rule covers {}: they would be written back into the server the \
             snapshot was taken from, over the live data; fix the rules (see --ns), or add \
             --in-place if that is what you want; nothing was written",
            in_place.join(", ")
        )));
    }
    Ok(())
}

/// Restores the snapshot's collections into `opts.uri` (counting documents in
/// `progress`; cancellation is honoured between collections).
pub fn run(
    repo: &Repository,
    snap: &Snapshot,
    opts: &MongoRestoreOptions,
    ctx: &Ctx,
    progress: &Progress,
) -> Result<Vec<CollectionOutcome>> {
    let chosen = choose(repo, snap, opts)?;
    let client = connect(&opts.uri)?;
    guard_source(&client, snap, opts, &chosen)?;
    let mut outcomes = Vec::new();
    let mut existing: HashMap<String, HashSet<String>> = HashMap::new();
    for (s, target) in &chosen {
        let (tdb, tcoll) = split_ns(target)?;
        if !existing.contains_key(tdb) {
            let names = client
                .database(tdb)
                .list_collection_names()
                .run()
                .map_err(|e| mongo_error(&format!("listing collections of {tdb}"), &e))?;
            existing.insert(tdb.to_string(), names.into_iter().collect());
        }
        let existed = existing[tdb].contains(tcoll);
        let action = match (existed, opts.conflict) {
            (false, _) => "create",
            (true, MongoConflict::Drop) => "drop and create",
            (true, MongoConflict::Skip) => "merge (skip existing _id)",
            (true, MongoConflict::Overwrite) => "merge (replace by _id)",
            (true, MongoConflict::Fail) => "fail: target exists",
        };
        outcomes.push(CollectionOutcome {
            source: s.ns(),
            target: target.clone(),
            kind: s.meta.get_str("type").unwrap_or("collection").to_string(),
            existed,
            action: action.into(),
            documents: s.meta.get_i64("count").unwrap_or(0).max(0) as u64,
            ..Default::default()
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
    progress.set_unit("documents");
    progress.set_totals(outcomes.iter().map(|o| o.documents).sum(), 0);
    // Collections before views: a view's source should exist when it is created.
    let mut order: Vec<usize> = (0..chosen.len()).collect();
    order.sort_by_key(|&i| outcomes[i].kind == "view");
    for i in order {
        ctx.check()?;
        let (s, target) = &chosen[i];
        let out = &mut outcomes[i];
        match restore_one(repo, &client, s, target, opts.conflict, out) {
            Ok(()) => out.complete = out.failed == 0 && out.errors.is_empty(),
            Err(e) => {
                out.errors.push(e.to_string());
                out.complete = false;
            }
        }
        progress.done(out.documents, 0);
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
            .map_err(|e| mongo_error(&format!("dropping {target}"), &e))?;
    }
    let options = s.meta.get_document("options").cloned().unwrap_or_default();
    // system.js exists implicitly (the server refuses to create system collections).
    let create = (!out.existed || conflict == MongoConflict::Drop) && tcoll != "system.js";
    if create {
        let mut cmd = doc! {"create": tcoll};
        for (k, v) in &options {
            cmd.insert(k.clone(), v.clone());
        }
        implied_span_left_out(&mut cmd);
        db.run_command(cmd)
            .run()
            .map_err(|e| mongo_error(&format!("creating {target}"), &e))?;
    }
    if let Some(node) = &s.data {
        insert::insert_documents(repo, &db, tcoll, node, conflict, is_capped(&options), out)?;
    }
    indexes::build(&db, tcoll, s, out)
}

/// Leaves out of a `create` command the bucket span a time-series collection's granularity
/// implies. `listCollections` names both (mongod and SecantusDB alike), and mongod creates a
/// collection from both, but secantusd-rs refuses the pair unless a rounding equal to the
/// span is given too; the granularity alone creates the same collection everywhere.
pub(crate) fn implied_span_left_out(cmd: &mut Document) {
    let Ok(ts) = cmd.get_document_mut("timeseries") else {
        return;
    };
    let implied = match ts.get_str("granularity") {
        Ok("seconds") => 3_600,
        Ok("minutes") => 86_400,
        Ok("hours") => 2_592_000,
        _ => return,
    };
    let span = match ts.get("bucketMaxSpanSeconds") {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        _ => return,
    };
    if span == implied && !ts.contains_key("bucketRoundingSeconds") {
        ts.remove("bucketMaxSpanSeconds");
    }
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
            ns: s.ns(),
            kind: s.meta.get_str("type").unwrap_or("collection").to_string(),
            documents: s.meta.get_i64("count").unwrap_or(0).max(0) as u64,
            bytes: s.data.as_ref().map_or(0, |n: &Node| n.size),
            indexes: s.meta.get_array("indexes").map_or(0, |a| a.len()),
        })
        .collect())
}

/// The documents of a saved collection, in their saved order (for callers that hold
/// whole collections in memory: tests and small tools).
pub fn saved_documents(repo: &Repository, s: &Saved) -> Result<Vec<RawDocumentBuf>> {
    let mut out = Vec::new();
    if let Some(node) = &s.data {
        for_each_saved_doc(repo, node, &s.ns(), |d| {
            out.push(d);
            Ok(())
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_span_a_granularity_implies_is_left_out() {
        let mut cmd = doc! {"create": "t", "timeseries": {
        "timeField": "t", "granularity": "hours", "bucketMaxSpanSeconds": 2_592_000}};
        implied_span_left_out(&mut cmd);
        assert_eq!(
            cmd,
            doc! {"create": "t", "timeseries": {"timeField": "t", "granularity": "hours"}}
        );
        // A span of its own, or one set with its rounding, is kept.
        for ts in [
            doc! {"timeField": "t", "granularity": "hours", "bucketMaxSpanSeconds": 60i64},
            doc! {"timeField": "t", "bucketMaxSpanSeconds": 60, "bucketRoundingSeconds": 60},
            doc! {"timeField": "t", "granularity": "minutes"},
        ] {
            let mut cmd = doc! {"create": "t", "timeseries": ts.clone()};
            implied_span_left_out(&mut cmd);
            assert_eq!(cmd, doc! {"create": "t", "timeseries": ts});
        }
    }
}
