//! Reading the oplog written since a snapshot's listing began ([`read_oplog`]) into what
//! [`confirm`](super::confirm) decides on: the listing's entries, the collections written
//! while they were read, and documents whose state at the read time the oplog proves.

use std::collections::{BTreeSet, HashMap, HashSet};

use mongodb::bson::{doc, Bson, RawDocument, RawDocumentBuf, Timestamp};

use super::{listing_window, Probe, Window, PROBES, TRACKED};
use crate::error::{Error, Result};
use crate::mongo::client::db_err;
use crate::mongo::export::MongoSource;
use crate::mongo::oplog::changes::{entry_time, Changes};
use crate::mongo::oplog::read::{oplog, reaches_back, Backward};
use crate::mongo::oplog::stream::{as_entry, Since};
use crate::snapshot::ClusterTime;

/// What the oplog after the listing began says.
#[derive(Default)]
pub(super) struct Scan {
    /// Entries up to the end of the listing.
    pub listing: Changes,
    /// Collections read that an entry after T wrote before they were read to the end.
    pub touched: Vec<String>,
    pub probes: Vec<Probe>,
}

/// Entries since `from` held to be seen in time order after a backward read; past this the
/// oplog is read forwards instead (more was written during the snapshot than is worth
/// holding).
const BACKWARD_BYTES: usize = 64 << 20;

/// Reads the oplog after `from`, refused when it no longer reaches back to `from`.
///
/// Backwards from its end down to the first entry at or before `from`: that entry proves
/// the oplog still reaches back (an oplog loses its oldest entries first) without a second
/// query, which on SecantusDB costs another scan of its whole oplog. The entries are held
/// and then seen in time order. A server that answers oldest first ([`Backward`]) is read
/// to the end of that same answer, which then starts with the oldest entry.
pub(super) fn read_oplog(source: &MongoSource, w: &Window) -> Result<Scan> {
    let (from, _) = listing_window(w.at, (w.listed_from, w.listed_until));
    if let Some(scan) = read_stream(source, from, w)? {
        return Ok(scan);
    }
    let mut read = Backward::open(&oplog(&source.client), doc! {})?;
    if !read.newest_first() {
        return read_oldest_first(source, read, from, w);
    }
    let (mut newest_first, mut bytes, mut reached) = (Vec::new(), 0usize, true);
    while let Some((entry, t)) = read.next_entry()? {
        reached = t <= from;
        if reached {
            break;
        }
        bytes += entry.as_bytes().len();
        if bytes > BACKWARD_BYTES {
            return read_forward(source, from, w);
        }
        newest_first.push((entry, t));
    }
    // An empty oplog lost nothing: a capped oplog always keeps its newest entries.
    if !reached {
        return Err(no_reach(source, w));
    }
    let mut scanner = Scanner::new(w);
    for (entry, t) in newest_first.iter().rev() {
        scanner.see(entry, *t);
    }
    Ok(scanner.finish())
}

/// [`read_oplog`] from the change stream resumed where this snapshot's opened, before the
/// listing began ([`Since`]): each event seen as the entry it stands for. `None` when the
/// stream cannot answer (no position, the oplog no longer holds it, the server refused or
/// it failed midway), and when what a cluster-wide stream leaves out could matter: a
/// database of the scope among `admin`, `config` and `local`, or a `system.*` collection
/// read (mongod's streams do not show those writes). The oplog is read then.
fn read_stream(source: &MongoSource, from: ClusterTime, w: &Window) -> Result<Option<Scan>> {
    let Some(position) = w.position else {
        return Ok(None);
    };
    let unstreamed = |db: &str| ["admin", "local", "config"].contains(&db);
    let scope_shown = w.scope.is_none_or(|s| !s.iter().any(|d| unstreamed(d)));
    let reads_shown = w.read.iter().all(|(ns, _)| {
        ns.split_once('.')
            .is_some_and(|(d, c)| !unstreamed(d) && !c.starts_with("system."))
    });
    if !scope_shown || !reads_shown || crate::failpoint::skip("mongodb-change-stream") {
        return Ok(None);
    }
    let Some(mut since) = Since::open(&source.client, position)? else {
        return Ok(None);
    };
    let mut scanner = Scanner::new(w);
    loop {
        match since.next_event() {
            Ok(Some((event, t))) => {
                if t > from {
                    scanner.see(&as_entry(&event), t);
                }
            }
            Ok(None) => return Ok(Some(scanner.finish())),
            Err(e) => {
                tracing::debug!("change stream left for the oplog: {e}");
                return Ok(None);
            }
        }
    }
}

/// [`read_oplog`] on a server that gave its whole oplog oldest first: the first entry
/// shows whether it reaches back to `from`.
fn read_oldest_first(
    source: &MongoSource,
    mut read: Backward,
    from: ClusterTime,
    w: &Window,
) -> Result<Scan> {
    let mut scanner = Scanner::new(w);
    let mut first = true;
    while let Some((entry, t)) = read.next_entry()? {
        if std::mem::take(&mut first) && t > from {
            return Err(no_reach(source, w));
        }
        if t > from {
            scanner.see(&entry, t);
        }
    }
    Ok(scanner.finish())
}

/// [`read_oplog`] reading forwards from `from`, for a busy server.
fn read_forward(source: &MongoSource, from: ClusterTime, w: &Window) -> Result<Scan> {
    let err = |e| db_err("reading the oplog", e);
    let oplog = oplog(&source.client);
    let mut scanner = Scanner::new(w);
    let mut reached = false;
    let cursor = oplog
        .find(doc! {"ts": {"$gte": Bson::Timestamp(from.into())}})
        .batch_size(1_000)
        .run()
        .map_err(err)?;
    for entry in cursor {
        let entry = entry.map_err(err)?;
        let t = time_of(&entry)?;
        if t <= from {
            reached = true;
            continue;
        }
        scanner.see(&entry, t);
    }
    if !reached && !reaches_back(&oplog, from)? {
        return Err(no_reach(source, w));
    }
    Ok(scanner.finish())
}

fn time_of(entry: &RawDocument) -> Result<ClusterTime> {
    entry_time(entry).ok_or_else(|| Error::corrupt("oplog entry", "no ts"))
}

fn no_reach(source: &MongoSource, w: &Window) -> Error {
    Error::Moved(format!(
        "{}: the oplog no longer reaches back to the snapshot's time {}; no snapshot was written",
        source.redacted_uri,
        ClusterTime::from(w.at)
    ))
}

/// Sees the entries after `from`, in time order, into a [`Scan`].
struct Scanner {
    read: Reads,
    t0: ClusterTime,
    listed_until: Option<ClusterTime>,
    touched: BTreeSet<String>,
    keys: Keys,
    scan: Scan,
}

impl Scanner {
    fn new(w: &Window) -> Scanner {
        Scanner {
            read: Reads::new(&w.read),
            t0: ClusterTime::from(w.at),
            listed_until: listing_window(w.at, (w.listed_from, w.listed_until)).1,
            touched: BTreeSet::new(),
            keys: Keys::default(),
            scan: Scan::default(),
        }
    }

    fn see(&mut self, entry: &RawDocument, t: ClusterTime) {
        if self.listed_until.is_none_or(|l| t <= l) {
            self.scan.listing.add(entry);
        }
        if t > self.t0 {
            self.read.touched_by(entry, t, &mut self.touched);
            self.keys.see(entry, &self.read.ends, &mut self.scan.probes);
        }
    }

    fn finish(mut self) -> Scan {
        self.scan.touched = self.touched.into_iter().collect();
        self.scan
    }
}

/// The collections read, by namespace and by database, with when each was read to the end.
struct Reads {
    ends: HashMap<String, Option<ClusterTime>>,
    by_db: HashMap<String, Vec<String>>,
}

impl Reads {
    fn new(read: &[(String, Option<Timestamp>)]) -> Reads {
        let mut by_db: HashMap<String, Vec<String>> = HashMap::new();
        for (ns, _) in read {
            if let Some((db, _)) = ns.split_once('.') {
                by_db.entry(db.into()).or_default().push(ns.clone());
            }
        }
        Reads {
            ends: read
                .iter()
                .map(|(ns, e)| (ns.clone(), e.map(ClusterTime::from)))
                .collect(),
            by_db,
        }
    }

    /// Adds to `out` the collections `entry`, written at `t`, may have changed while
    /// they were being read.
    fn touched_by(&self, entry: &RawDocument, t: ClusterTime, out: &mut BTreeSet<String>) {
        let mut one = Changes::default();
        one.add(entry);
        let mut hit = |ns: &str| {
            if self.ends.get(ns).is_some_and(|e| e.is_none_or(|e| t <= e)) {
                out.insert(ns.to_string());
            }
        };
        if one.everything() {
            self.ends.keys().for_each(|ns| hit(ns));
            return;
        }
        for db in one.databases() {
            self.by_db
                .get(db)
                .into_iter()
                .flatten()
                .for_each(|ns| hit(ns));
        }
        one.namespaces().for_each(hit);
    }
}

/// Document ids written since T, to find one whose state at T the oplog proves.
#[derive(Default)]
pub(super) struct Keys {
    seen: HashSet<(String, Vec<u8>)>,
    stopped: bool,
}

impl Keys {
    pub(super) fn see<V>(
        &mut self,
        entry: &RawDocument,
        read: &HashMap<String, V>,
        probes: &mut Vec<Probe>,
    ) {
        if self.stopped {
            return;
        }
        let op = entry.get_str("op").unwrap_or("");
        let (true, Ok(ns)) = (matches!(op, "i" | "u" | "d"), entry.get_str("ns")) else {
            // A command or a transaction may write any document: nothing after it proves
            // a state at T.
            self.stopped = op != "n";
            return;
        };
        let holder = if op == "u" { "o2" } else { "o" };
        let Some(id) = entry
            .get_document(holder)
            .ok()
            .and_then(|o| o.get("_id").ok().flatten())
        else {
            self.stopped = true;
            return;
        };
        let id_bytes = {
            let mut d = RawDocumentBuf::new();
            d.append("_id", id.to_raw_bson());
            d.into_bytes()
        };
        let first = self.seen.insert((ns.to_string(), id_bytes));
        self.stopped = self.seen.len() >= TRACKED;
        // The first entry on a document since T says its state at T: an insert, that it
        // was absent; a delete, that it was there.
        if first && op != "u" && probes.len() < PROBES && read.contains_key(ns) {
            let (Some((db, coll)), Ok(id)) = (ns.split_once('.'), Bson::try_from(id)) else {
                return;
            };
            probes.push(Probe {
                db: db.into(),
                coll: coll.into(),
                id,
                present: op == "d",
            });
        }
    }
}
