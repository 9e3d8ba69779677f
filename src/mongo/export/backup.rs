//! A planned MongoDB backup as the snapshot pipeline walks it ([`VirtualSource`]): the
//! collections' entries, documents streamed at the read time or taken from the parent
//! ([`reuse`]), and the checks before the commit ([`super::verify`]).
//!
//! [`VirtualSource`]: crate::source::VirtualSource

use std::io::{self, Read};

use super::stream::StreamEnd;
use super::{is_capped, reuse, CollectionPlan, MongoSelection, MongoSource, ROOT};
use crate::error::Result;
use crate::mongo::layout::{self, entry_name};

/// A planned MongoDB backup, walked as a [`VirtualSource`].
pub struct MongoBackup {
    pub(super) source: std::sync::Arc<MongoSource>,
    pub(super) plan: Vec<CollectionPlan>,
    pub(super) scope: crate::snapshot::MongoScope,
    /// Collections taken from the parent snapshot unread ([`reuse`]), by (db, name).
    pub(super) reused: std::sync::Mutex<std::collections::HashMap<(String, String), reuse::Reused>>,
    /// The oplog entries of the listing window, when [`reuse`] read them.
    pub(super) listing_seen: std::sync::Mutex<Option<crate::mongo::oplog::changes::Changes>>,
}

impl MongoBackup {
    /// Connects and plans the backup of `sel` from `uri`.
    pub fn new(uri: &str, sel: &MongoSelection) -> Result<Self> {
        let mut source = MongoSource::open(uri)?;
        let mut plan = source.plan(sel)?;
        // Tests write here, after the read time is fixed and before any document is read.
        crate::failpoint::hit("mongodb-planned");
        plan.sort_by(|a, b| (&a.db, &a.name).cmp(&(&b.db, &b.name)));
        Ok(Self {
            source: std::sync::Arc::new(source),
            plan,
            scope: crate::snapshot::MongoScope {
                dbs: sel.dbs.clone(),
                collections: sel.collections.clone(),
            },
            reused: Default::default(),
            listing_seen: Default::default(),
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
            server: Some(self.source.server.clone()),
            layout: Some(layout::LAYOUT),
            change_stream: self
                .source
                .stream_position
                .as_ref()
                .map(|t| hex::encode(t.as_bytes())),
        }
    }

    /// Server-managed collections the backup leaves out ("db.coll").
    pub fn left_out(&self) -> &[String] {
        &self.source.left_out
    }

    /// Databases of the selection without a collection, saved empty ("": a whole server
    /// without databases).
    pub fn empty_databases(&self) -> &[String] {
        &self.source.empty
    }

    /// The collections to be saved.
    pub fn collections(&self) -> &[CollectionPlan] {
        &self.plan
    }

    /// What the parent snapshot gives for `db.name` unread, if anything.
    fn reused(&self, db: &str, name: &str) -> Option<reuse::Reused> {
        let map = self.reused.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(db.to_string(), name.to_string())).cloned()
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
            let dirs = vec![entry_name(&c.db), entry_name(&c.name)];
            let end = std::sync::Arc::new(StreamEnd::default());
            // Data before metadata: chunkers take jobs in order, so the stream whose
            // count the metadata waits for is always already being read.
            let reused = self.reused(&c.db, &c.name);
            // Metadata beside documents taken from the parent carries their time: when it
            // is unchanged too, so is the collection's directory.
            let read_at = reused.as_ref().map(|r| r.data.mtime);
            if let Some(r) = reused {
                end.finish(Ok(r.count));
                out.push(crate::source::VirtualEntry {
                    dirs: dirs.clone(),
                    name: layout::DATA.into(),
                    open: Box::new(|| Err(io::Error::other("taken from the parent unread"))),
                    small_chunks: true,
                    reuse: Some(r.data),
                    mtime: read_at,
                });
            } else if c.kind != "view" {
                let (src, db, name) = (self.source.clone(), c.db.clone(), c.name.clone());
                let (end, capped) = (end.clone(), is_capped(&c.options));
                out.push(crate::source::VirtualEntry {
                    dirs: dirs.clone(),
                    name: layout::DATA.into(),
                    open: Box::new(move || match src.open_stream(&db, &name, capped) {
                        Ok(mut s) => {
                            s.end = Some(end);
                            let ns = format!("{db}.{name}");
                            let src = src.clone();
                            s.ended = Some(Box::new(move || src.stream_ended(ns)));
                            Ok(Box::new(s) as Box<dyn Read + Send>)
                        }
                        Err(e) => {
                            end.finish(Err(e.to_string()));
                            Err(io::Error::other(e.to_string()))
                        }
                    }),
                    small_chunks: true,
                    reuse: None,
                    mtime: None,
                });
            } else {
                end.finish(Ok(0));
            }
            let mut plan = c.clone();
            out.push(crate::source::VirtualEntry {
                dirs,
                name: layout::METADATA.into(),
                open: Box::new(move || {
                    plan.count = end.wait().map_err(io::Error::other)?;
                    let mut bytes = Vec::new();
                    plan.metadata()
                        .to_writer(&mut bytes)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    Ok(Box::new(io::Cursor::new(bytes)) as Box<dyn Read + Send>)
                }),
                small_chunks: true,
                reuse: None,
                mtime: read_at,
            });
        }
        // Tree order: by the escaped names, as the entries will be stored.
        out.sort_by(|a, b| (&a.dirs, &a.name).cmp(&(&b.dirs, &b.name)));
        out
    }

    #[cfg(feature = "local-index")]
    fn verify(
        &self,
        repo: &crate::repository::Repository,
        root: crate::id::TreeId,
    ) -> Result<Option<String>> {
        self.verify_tree(repo, root)?;
        self.confirm_moment()
    }

    #[cfg(feature = "local-index")]
    fn use_parent(
        &self,
        repo: &crate::repository::Repository,
        parent: &crate::snapshot::Snapshot,
    ) -> Option<String> {
        let d = reuse::decide(repo, parent, &self.source, &self.plan);
        *self.reused.lock().unwrap_or_else(|p| p.into_inner()) = d.reused;
        *self.listing_seen.lock().unwrap_or_else(|p| p.into_inner()) = d.listing_seen;
        d.note
    }
}
