//! MongoDB collections as a backup source.
//!
//! Each collection becomes a directory `/mongodb/<db>/<coll>/` ([`layout`]) holding
//! `data.bson`, the collection's documents as concatenated raw BSON (exactly the bytes the
//! server sent; never re-encoded, so an unchanged collection gives the same byte stream
//! and dedupes completely) in `_id` order — in insertion order for capped collections —
//! and `metadata.bson`, one BSON document with its type, options, index specs (as
//! `listIndexes` returned them) and document count. On a replica set every collection is
//! read at one cluster time (a snapshot session), so the whole snapshot is one point in
//! time. Before the snapshot is committed its tree is read back ([`MongoBackup::verify`]).
//!
//! `system.*` collections are server-managed and left out (reported), except
//! `system.js`, the database's stored functions, which are saved like any collection.

mod backup;
mod moment;
pub mod reuse;
mod stream;
#[cfg(feature = "local-index")]
mod verify;

use mongodb::bson::{doc, Bson, Document, RawDocumentBuf, Timestamp};
use mongodb::sync::Client;

use crate::error::{Error, Result};
use crate::mongo::client::{connect, db_err, hello, is_mongos, server_identity};
use crate::mongo::ns::split_ns;
use crate::mongo::uri::redact;
pub use backup::MongoBackup;
use stream::{CollectionStream, Docs};

/// The only `system.*` collection saved: stored JavaScript functions.
pub const SYSTEM_JS: &str = "system.js";

/// Documents per server batch while exporting.
const BATCH_DOCS: u32 = 1000;

/// The name of the top-level snapshot directory holding collections.
pub const ROOT: &str = "mongodb";

/// What a snapshot of a server reads.
#[derive(Clone, Debug, Default)]
pub struct MongoSelection {
    /// Only these databases (empty: all but admin, local, config).
    pub dbs: Vec<String>,
    /// Only these namespaces "db.coll" (empty: every collection of the chosen databases).
    pub collections: Vec<String>,
}

/// One collection (or view) to export.
#[derive(Clone, Debug)]
pub struct CollectionPlan {
    /// Database.
    pub db: String,
    /// Collection name.
    pub name: String,
    /// "collection", "view" or "timeseries".
    pub kind: String,
    /// listCollections `options` (capped, validator, collation, viewOn, pipeline, ...).
    pub options: Document,
    /// listIndexes output, full specs.
    pub indexes: Vec<Document>,
    /// Documents (filled in from the stream for collections; 0 for views).
    pub count: i64,
    /// The collection's UUID (listCollections `info.uuid`), when the server gives one.
    pub uuid: Option<Bson>,
}

impl CollectionPlan {
    /// "db.coll".
    pub fn ns(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    /// The metadata document stored next to the data. Nothing in it changes unless the
    /// collection does (the moment it was read is the snapshot's `mongodb.cluster_time`;
    /// until 2026-12-03 each metadata document repeated it as `clusterTime`).
    pub fn metadata(&self) -> Document {
        let mut d = doc! {
            "collectionName": &self.name,
            "db": &self.db,
            "type": &self.kind,
            "options": self.options.clone(),
            "indexes": self.indexes.iter().cloned().map(Bson::Document).collect::<Vec<_>>(),
            "count": self.count,
        };
        if let Some(u) = &self.uuid {
            d.insert("uuid", u.clone());
        }
        d
    }
}

/// An open connection to the server being backed up.
pub struct MongoSource {
    client: Client,
    /// The URI without credentials, for the snapshot record.
    pub redacted_uri: String,
    /// What the server says it is ([`server_identity`]).
    pub server: String,
    /// Cluster time every collection is read at (replica sets), else `None`.
    pub cluster_time: Option<Timestamp>,
    /// Where a change stream opened just before the read time was fixed: the next
    /// snapshot resumes there to see what was written since
    /// ([`crate::mongo::oplog::stream`]).
    pub stream_position: Option<RawDocumentBuf>,
    /// Server-managed collections left out, as "db.coll".
    pub left_out: Vec<String>,
    /// Databases of the selection without a collection, saved empty.
    pub empty: Vec<String>,
    /// The server's last write before the collections were listed, and after.
    listed: (Option<Timestamp>, Option<Timestamp>),
    /// Per collection read ("db.coll"), the server's last write once its last document
    /// was read (`None`: not known).
    read_ends: std::sync::Mutex<std::collections::HashMap<String, Option<Timestamp>>>,
}

impl MongoSource {
    /// Connects to `uri`.
    pub fn open(uri: &str) -> Result<Self> {
        let client = connect(uri)?;
        let server = server_identity(&client, &hello(&client)?, uri)?;
        Ok(Self {
            client,
            redacted_uri: redact(uri),
            server,
            cluster_time: None,
            stream_position: None,
            left_out: Vec::new(),
            empty: Vec::new(),
            listed: (None, None),
            read_ends: Default::default(),
        })
    }

    /// Lists what `sel` selects, fixing the read time first on a replica set.
    pub fn plan(&mut self, sel: &MongoSelection) -> Result<Vec<CollectionPlan>> {
        // First: every entry the position passes was written before the last write noted
        // next, before the listing and before the read time.
        let position = crate::mongo::oplog::stream::position(&self.client);
        let hello = hello(&self.client)?;
        self.listed.0 = last_write(&hello);
        self.stream_position =
            position.filter(|_| hello.contains_key("setName") && !is_mongos(&hello));
        let mut session = if hello.contains_key("setName") || is_mongos(&hello) {
            Some(
                self.client
                    .start_session()
                    .snapshot(true)
                    .run()
                    .map_err(|e| db_err("starting a snapshot session", e))?,
            )
        } else {
            None
        };
        let dbs = if sel.dbs.is_empty() && sel.collections.is_empty() {
            let mut names = self
                .client
                .list_database_names()
                .run()
                .map_err(|e| db_err("listing databases", e))?;
            names.retain(|n| !["admin", "local", "config"].contains(&n.as_str()));
            names
        } else {
            let mut names = sel.dbs.clone();
            for ns in &sel.collections {
                let (db, _) = split_ns(ns)?;
                if !names.iter().any(|n| n == db) {
                    names.push(db.to_string());
                }
            }
            names
        };
        let mut out = Vec::new();
        // The read time is fixed before anything is listed, so that what the listing
        // shows either was there at that time or came after it, in the oplog.
        let mut time_fixed = match (session.as_mut(), dbs.first()) {
            (Some(sess), Some(first)) => probe_read_time(&self.client.database(first), sess),
            _ => false,
        };
        for db_name in &dbs {
            let db = self.client.database(db_name);
            let mut cursor = db
                .run_cursor_command(doc! {"listCollections": 1})
                .run()
                .map_err(|e| db_err(&format!("listing collections of {db_name}"), e))?;
            let mut infos = Vec::new();
            for info in &mut cursor {
                infos.push(info.map_err(|e| db_err("listCollections", e))?);
            }
            for info in infos {
                let name = info.get_str("name").unwrap_or_default().to_string();
                let kind = info.get_str("type").unwrap_or("collection").to_string();
                let ns = format!("{db_name}.{name}");
                if name.is_empty() {
                    continue;
                }
                if name.starts_with("system.") && name != SYSTEM_JS {
                    self.left_out.push(ns);
                    continue;
                }
                let wanted = sel.collections.is_empty()
                    || sel.collections.contains(&ns)
                    || sel.dbs.contains(db_name);
                if !wanted {
                    continue;
                }
                let options = info.get_document("options").cloned().unwrap_or_default();
                let uuid = info
                    .get_document("info")
                    .ok()
                    .and_then(|i| i.get("uuid"))
                    .cloned();
                let (indexes, count) = if kind == "view" {
                    (Vec::new(), 0)
                } else {
                    let coll = db.collection::<Document>(&name);
                    let idx = index_specs(&db, &name)?;
                    // The first read in the snapshot session fixes its cluster time.
                    if let Some(sess) = session.as_mut() {
                        if !time_fixed {
                            fix_read_time(&db, &coll, sess, &ns)?;
                            time_fixed = true;
                        }
                    }
                    // Counted while streaming: exact at the read time, and free.
                    (idx, 0)
                };
                out.push(CollectionPlan {
                    db: db_name.clone(),
                    name,
                    kind,
                    options,
                    indexes,
                    count,
                    uuid,
                });
            }
            // Tests change a database here, after it was listed and before listing ends.
            crate::failpoint::hit("mongodb-listed-db");
        }
        for ns in &sel.collections {
            if !out.iter().any(|c| c.ns() == *ns) {
                return Err(Error::Selection(format!(
                    "no collection {ns} on {}",
                    self.redacted_uri
                )));
            }
        }
        // A database without collections yet is saved empty: `restore --at` can then
        // roll forward from before its first collection. Said, in case it is a typo.
        self.empty = dbs
            .iter()
            .filter(|d| !out.iter().any(|c| &c.db == *d))
            .cloned()
            .collect();
        if out.is_empty() && dbs.is_empty() {
            self.empty.push(String::new());
        }
        // No collection read fixed the time (none, or views only): the probe may still.
        // Refused, the snapshot records no cluster time, as a standalone server's.
        if let (Some(sess), false) = (session.as_mut(), time_fixed) {
            probe_read_time(
                &self.client.database(dbs.first().map_or("admin", |d| d)),
                sess,
            );
        }
        self.cluster_time = session.as_mut().and_then(|s| {
            let inner: &mut mongodb::ClientSession = s.into();
            inner.snapshot_time()
        });
        self.listed.1 = last_write(&super::client::hello(&self.client)?);
        Ok(out)
    }

    /// A reader of one collection's documents at the planned read time: in `_id` order,
    /// or for a capped collection in natural (insertion) order, which tailable cursors and
    /// eviction depend on.
    pub fn open_stream(&self, db: &str, coll: &str, capped: bool) -> Result<CollectionStream> {
        let c = self.client.database(db).collection::<RawDocumentBuf>(coll);
        let order = if capped {
            doc! {"$natural": 1}
        } else {
            doc! {"_id": 1}
        };
        let find = c.find(doc! {}).sort(order).batch_size(BATCH_DOCS);
        let cursor = match self.cluster_time {
            Some(t) => {
                let mut s = self
                    .client
                    .start_session()
                    .snapshot(true)
                    .snapshot_time(t)
                    .run()
                    .map_err(|e| db_err("starting a snapshot session", e))?;
                let cur = find
                    .session(&mut s)
                    .run()
                    .map_err(|e| db_err(&format!("reading {db}.{coll}"), e))?;
                Docs::Session(cur, Box::new(s))
            }
            None => Docs::Plain(
                find.run()
                    .map_err(|e| db_err(&format!("reading {db}.{coll}"), e))?,
            ),
        };
        Ok(CollectionStream {
            docs: cursor,
            buf: Vec::new(),
            pos: 0,
            count: 0,
            end: None,
            ended: None,
        })
    }

    /// Notes the server's last write now that `ns` was read to its end: no later write
    /// can be in what was read of it.
    fn stream_ended(&self, ns: String) {
        let last = hello(&self.client).ok().as_ref().and_then(last_write);
        let mut ends = self.read_ends.lock().unwrap_or_else(|p| p.into_inner());
        ends.insert(ns, last);
    }
}

/// The server's error code for a namespace that does not exist.
const NAMESPACE_NOT_FOUND: i32 = 26;

/// A collection name no one uses: reading it is how a snapshot session gets its time.
const TIME_PROBE: &str = "repo.read-time-probe";

/// Fixes the snapshot session's cluster time with the cheapest read that does it: a find
/// on a collection that does not exist, which returns at once (a find on a large
/// collection can cost a scan on some servers: 35 s for 1,000,000 documents on
/// SecantusDB). If the server gave no time for that, one document of `coll` is read.
fn fix_read_time(
    db: &mongodb::sync::Database,
    coll: &mongodb::sync::Collection<Document>,
    sess: &mut mongodb::sync::ClientSession,
    ns: &str,
) -> Result<()> {
    // Refused (no privilege on that name, say): the read below fixes the time instead.
    if !probe_read_time(db, sess) {
        coll.find_one(doc! {})
            .session(sess)
            .run()
            .map_err(|e| db_err(&format!("reading {ns}"), e))?;
    }
    Ok(())
}

/// Fixes the session's time with a find on [`TIME_PROBE`]; whether that fixed it.
fn probe_read_time(db: &mongodb::sync::Database, sess: &mut mongodb::sync::ClientSession) -> bool {
    let probe = db.collection::<Document>(TIME_PROBE);
    let _ = probe.find_one(doc! {}).session(&mut *sess).run();
    let inner: &mut mongodb::ClientSession = sess.into();
    inner.snapshot_time().is_some()
}

/// The last write `hello` reports (replica set members only).
fn last_write(hello: &Document) -> Option<Timestamp> {
    hello
        .get_document("lastWrite")
        .and_then(|w| w.get_document("opTime"))
        .and_then(|o| o.get_timestamp("ts"))
        .ok()
}

/// Whether listCollections options say the collection is capped.
pub fn is_capped(options: &Document) -> bool {
    matches!(options.get("capped"), Some(Bson::Boolean(true)))
        || options.get_i32("capped").is_ok_and(|v| v != 0)
}

/// Full index specs of a live collection, exactly as `listIndexes` returns them: every
/// option (`unique: 1`, `hidden`, `expireAfterSeconds: 3600.0`, collations, partial
/// filters, wildcard projections, ...) survives, whatever its type.
pub fn index_specs(db: &mongodb::sync::Database, name: &str) -> Result<Vec<Document>> {
    let ns = format!("{}.{name}", db.name());
    let err = |e: mongodb::error::Error| match *e.kind {
        // Dropped since it was listed: the listing is already the past.
        mongodb::error::ErrorKind::Command(ref c) if c.code == NAMESPACE_NOT_FOUND => Error::Moved(
            format!("{ns} was dropped while the collections were listed"),
        ),
        _ => db_err(&format!("listing indexes of {ns}"), e),
    };
    let mut out = Vec::new();
    let cursor = db
        .run_cursor_command(doc! {"listIndexes": name})
        .run()
        .map_err(err)?;
    for spec in cursor {
        out.push(spec.map_err(err)?);
    }
    Ok(out)
}
