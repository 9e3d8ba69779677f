//! MongoDB collections as a backup source.
//!
//! Each collection becomes two entries under `/mongodb/<db>/`: `<coll>.bson`, the
//! collection's documents in `_id` order as concatenated raw BSON (exactly the bytes the
//! server sent; never re-encoded, so an unchanged collection gives the same byte stream
//! and dedupes completely), and `<coll>.metadata.bson`, one BSON document with its type,
//! options, indexes and document count. On a replica set every collection is read at one
//! cluster time (a snapshot session), so the whole snapshot is one point in time.

use std::io::{self, Read};
use std::time::Duration;

use mongodb::bson::{doc, Bson, Document, RawDocumentBuf, Timestamp};
use mongodb::options::ClientOptions;
use mongodb::sync::{Client, ClientSession, Cursor, SessionCursor};

use crate::error::{Error, Result};

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
}

impl CollectionPlan {
    /// "db.coll".
    pub fn ns(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    /// The metadata document stored next to the data.
    pub fn metadata(&self, cluster_time: Option<Timestamp>) -> Document {
        let mut d = doc! {
            "collectionName": &self.name,
            "db": &self.db,
            "type": &self.kind,
            "options": self.options.clone(),
            "indexes": self.indexes.iter().cloned().map(Bson::Document).collect::<Vec<_>>(),
            "count": self.count,
        };
        if let Some(t) = cluster_time {
            d.insert("clusterTime", t);
        }
        d
    }
}

/// An open connection to the server being backed up.
pub struct MongoSource {
    client: Client,
    /// The URI without credentials, for the snapshot record.
    pub redacted_uri: String,
    /// Cluster time every collection is read at (replica sets), else `None`.
    pub cluster_time: Option<Timestamp>,
}

/// Removes `user:password@` from a connection string.
pub fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(host_end);
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // Query options such as password-bearing TLS settings are not kept either.
    let path = tail.split('?').next().unwrap_or("");
    format!("{scheme}://{hosts}{path}")
}

fn db_err(what: &str, e: mongodb::error::Error) -> Error {
    Error::Source(format!("MongoDB: {what}: {e}"))
}

/// The server's `hello` reply (replica set name, cluster time, last write, ...).
pub fn hello(client: &Client) -> Result<Document> {
    client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .run()
        .map_err(|e| db_err("hello", e))
}

/// Connects and checks the server answers (and the credentials work).
pub fn connect(uri: &str) -> Result<Client> {
    let mut opts = ClientOptions::parse(uri)
        .run()
        .map_err(|e| db_err("bad connection string", e))?;
    opts.app_name = Some("repo".into());
    if opts.server_selection_timeout.is_none() {
        opts.server_selection_timeout = Some(Duration::from_secs(10));
    }
    if opts.connect_timeout.is_none() {
        opts.connect_timeout = Some(Duration::from_secs(10));
    }
    let client = Client::with_options(opts).map_err(|e| db_err("client", e))?;
    client
        .database("admin")
        .run_command(doc! {"ping": 1})
        .run()
        .map_err(|e| db_err(&format!("cannot reach {}", redact(uri)), e))?;
    Ok(client)
}

impl MongoSource {
    /// Connects to `uri`.
    pub fn open(uri: &str) -> Result<Self> {
        Ok(Self {
            client: connect(uri)?,
            redacted_uri: redact(uri),
            cluster_time: None,
        })
    }

    /// Lists what `sel` selects, fixing the read time first on a replica set.
    pub fn plan(&mut self, sel: &MongoSelection) -> Result<Vec<CollectionPlan>> {
        let hello = hello(&self.client)?;
        let mut session = if hello.contains_key("setName") || hello.get_str("msg") == Ok("isdbgrid")
        {
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
        let mut time_fixed = false;
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
                if name.is_empty() || name.starts_with("system.") {
                    continue;
                }
                let ns = format!("{db_name}.{name}");
                let wanted = sel.collections.is_empty()
                    || sel.collections.contains(&ns)
                    || sel.dbs.contains(db_name);
                if !wanted {
                    continue;
                }
                let options = info.get_document("options").cloned().unwrap_or_default();
                let (indexes, count) = if kind == "view" {
                    (Vec::new(), 0)
                } else {
                    let coll = db.collection::<Document>(&name);
                    let idx = index_specs(&db, &name)?;
                    // The first read in the snapshot session fixes its cluster time.
                    if let Some(sess) = session.as_mut() {
                        if !time_fixed {
                            coll.find_one(doc! {})
                                .session(sess)
                                .run()
                                .map_err(|e| db_err(&format!("reading {ns}"), e))?;
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
                });
            }
        }
        for ns in &sel.collections {
            if !out.iter().any(|c| c.ns() == *ns) {
                return Err(Error::Selection(format!(
                    "no collection {ns} on {}",
                    self.redacted_uri
                )));
            }
        }
        if out.is_empty() {
            return Err(Error::Selection(format!(
                "nothing to back up on {}: no collections matched",
                self.redacted_uri
            )));
        }
        self.cluster_time = session.as_mut().and_then(|s| {
            let inner: &mut mongodb::ClientSession = s.into();
            inner.snapshot_time()
        });
        Ok(out)
    }

    /// A reader of one collection's documents in `_id` order, at the planned read time.
    pub fn open_stream(&self, db: &str, coll: &str) -> Result<CollectionStream> {
        let c = self.client.database(db).collection::<RawDocumentBuf>(coll);
        let find = c.find(doc! {}).sort(doc! {"_id": 1}).batch_size(BATCH_DOCS);
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
        })
    }
}

/// A planned MongoDB backup, walked as a [`VirtualSource`].
pub struct MongoBackup {
    source: std::sync::Arc<MongoSource>,
    plan: Vec<CollectionPlan>,
    scope: crate::snapshot::MongoScope,
}

impl MongoBackup {
    /// Connects and plans the backup of `sel` from `uri`.
    pub fn new(uri: &str, sel: &MongoSelection) -> Result<Self> {
        let mut source = MongoSource::open(uri)?;
        let mut plan = source.plan(sel)?;
        plan.sort_by(|a, b| (&a.db, &a.name).cmp(&(&b.db, &b.name)));
        Ok(Self {
            source: std::sync::Arc::new(source),
            plan,
            scope: crate::snapshot::MongoScope {
                dbs: sel.dbs.clone(),
                collections: sel.collections.clone(),
            },
        })
    }

    /// What the snapshot records about this backup.
    pub fn record(&self) -> crate::snapshot::MongoRecord {
        crate::snapshot::MongoRecord {
            uri: self.source.redacted_uri.clone(),
            cluster_time: self
                .source
                .cluster_time
                .map(|t| crate::snapshot::ClusterTime {
                    t: t.time,
                    i: t.increment,
                }),
            consistency: if self.source.cluster_time.is_some() {
                "snapshot".into()
            } else {
                "per-collection".into()
            },
            collections: self.plan.len() as u64,
            scope: Some(self.scope.clone()),
        }
    }

    /// The collections to be saved.
    pub fn collections(&self) -> &[CollectionPlan] {
        &self.plan
    }
}

impl crate::source::VirtualSource for MongoBackup {
    fn root(&self) -> &str {
        ROOT
    }

    fn kind(&self) -> &str {
        "mongodb"
    }

    fn description(&self) -> String {
        self.source.redacted_uri.clone()
    }

    fn entries(&self) -> Vec<crate::source::VirtualEntry> {
        let mut out = Vec::new();
        for c in &self.plan {
            let dirs = vec![entry_name(&c.db)];
            let end = std::sync::Arc::new(StreamEnd::default());
            // Data before metadata: chunkers take jobs in order, so the stream whose
            // count the metadata waits for is always already being read.
            if c.kind != "view" {
                let (src, db, name) = (self.source.clone(), c.db.clone(), c.name.clone());
                let end = end.clone();
                out.push(crate::source::VirtualEntry {
                    dirs: dirs.clone(),
                    name: format!("{}.bson", entry_name(&c.name)),
                    open: Box::new(move || match src.open_stream(&db, &name) {
                        Ok(mut s) => {
                            s.end = Some(end);
                            Ok(Box::new(s) as Box<dyn Read + Send>)
                        }
                        Err(e) => {
                            end.finish(Err(e.to_string()));
                            Err(io::Error::other(e.to_string()))
                        }
                    }),
                    small_chunks: true,
                });
            } else {
                end.finish(Ok(0));
            }
            let mut plan = c.clone();
            let cluster_time = self.source.cluster_time;
            out.push(crate::source::VirtualEntry {
                dirs,
                name: format!("{}.metadata.bson", entry_name(&c.name)),
                open: Box::new(move || {
                    plan.count = end.wait().map_err(io::Error::other)?;
                    let mut bytes = Vec::new();
                    plan.metadata(cluster_time)
                        .to_writer(&mut bytes)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    Ok(Box::new(io::Cursor::new(bytes)) as Box<dyn Read + Send>)
                }),
                small_chunks: true,
            });
        }
        // Tree order within each database directory.
        out.sort_by(|a, b| (&a.dirs, &a.name).cmp(&(&b.dirs, &b.name)));
        out
    }
}

/// Compiles `--ns` globs ("app.*"; `*` also matches dots).
pub fn ns_matchers(globs: &[String]) -> Result<Vec<globset::GlobMatcher>> {
    globs
        .iter()
        .map(|g| {
            globset::GlobBuilder::new(g)
                .literal_separator(false)
                .build()
                .map(|g| g.compile_matcher())
                .map_err(|e| Error::Invalid(format!("--ns {g:?}: {e}")))
        })
        .collect()
}

/// Full index specs of a live collection (listIndexes).
pub fn index_specs(db: &mongodb::sync::Database, name: &str) -> Result<Vec<Document>> {
    let ns = format!("{}.{name}", db.name());
    let mut out = Vec::new();
    for i in db
        .collection::<Document>(name)
        .list_indexes()
        .run()
        .map_err(|e| db_err(&format!("listing indexes of {ns}"), e))?
    {
        let model = i.map_err(|e| db_err("listIndexes", e))?;
        out.push(
            mongodb::bson::to_document(&model)
                .map_err(|e| Error::Source(format!("index of {ns}: {e}")))?,
        );
    }
    Ok(out)
}

/// Splits "db.coll" (collection names may contain dots; database names may not).
pub fn split_ns(ns: &str) -> Result<(&str, &str)> {
    ns.split_once('.')
        .filter(|(d, c)| !d.is_empty() && !c.is_empty())
        .ok_or_else(|| Error::Invalid(format!("{ns:?} is not a namespace: expected db.collection")))
}

enum Docs {
    Plain(Cursor<RawDocumentBuf>),
    Session(SessionCursor<RawDocumentBuf>, Box<ClientSession>),
}

/// How a collection's stream ended: the metadata entry waits for its document count.
#[derive(Default)]
pub struct StreamEnd {
    state: std::sync::Mutex<Option<std::result::Result<i64, String>>>,
    cv: std::sync::Condvar,
}

impl StreamEnd {
    fn finish(&self, r: std::result::Result<i64, String>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.is_none() {
            *s = Some(r);
        }
        self.cv.notify_all();
    }

    /// Blocks until the stream has ended; its document count or why it failed.
    fn wait(&self) -> std::result::Result<i64, String> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = s.as_ref() {
                return r.clone();
            }
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The raw BSON of a collection's documents, back to back, as a byte stream.
pub struct CollectionStream {
    docs: Docs,
    buf: Vec<u8>,
    pos: usize,
    count: i64,
    end: Option<std::sync::Arc<StreamEnd>>,
}

impl Drop for CollectionStream {
    fn drop(&mut self) {
        // Dropped before the end (an error, a stopped pipeline): release the waiter.
        if let Some(end) = &self.end {
            end.finish(Err("the collection could not be read to the end".into()));
        }
    }
}

impl Read for CollectionStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            let next = match &mut self.docs {
                Docs::Plain(c) => c.next(),
                Docs::Session(c, s) => c.next(s),
            };
            match next {
                None => {
                    if let Some(end) = self.end.take() {
                        end.finish(Ok(self.count));
                    }
                    return Ok(0);
                }
                Some(Err(e)) => return Err(io::Error::other(format!("MongoDB: {e}"))),
                Some(Ok(d)) => {
                    self.buf = d.into_bytes();
                    self.pos = 0;
                    self.count += 1;
                    if self.count == 1 {
                        crate::failpoint::hit("mongodb-stream-started");
                    }
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Encodes a database or collection name as a tree entry name ('/' and '%' escaped).
pub fn entry_name(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

/// Reverses [`entry_name`].
pub fn from_entry_name(name: &str) -> String {
    name.replace("%2F", "/").replace("%25", "%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_survive_redaction() {
        assert_eq!(
            redact("mongodb://u:p%40ss@h1:27017,h2/app?authSource=admin&tlsCertificateKeyFilePassword=x"),
            "mongodb://h1:27017,h2/app"
        );
        assert_eq!(
            redact("mongodb+srv://c.example.net/"),
            "mongodb+srv://c.example.net/"
        );
        assert_eq!(from_entry_name(&entry_name("a/b%c")), "a/b%c");
        assert!(!entry_name("a/b").contains('/'));
        assert!(split_ns("app.users.v2").unwrap() == ("app", "users.v2"));
        assert!(split_ns("app").is_err());
    }
}
