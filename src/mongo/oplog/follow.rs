//! `repo mongodb follow`: tails the server's oplog and seals what it reads into slices.
//!
//! Reading resumes after the newest slice of this source (or the newest snapshot's cluster
//! time), so a restart never skips or repeats an entry: entries are kept in memory until a
//! slice is sealed, and a slice object is written only after its chunks are in packs
//! listed by an index segment. If the oplog no longer reaches back to the resume point
//! (it rolled over while nothing was reading), the loss is recorded in the next slice as a
//! gap and reported.

use std::time::{Duration, Instant};

use mongodb::bson::{doc, RawDocumentBuf, Timestamp};
use mongodb::sync::Client;

use crate::chunk::Chunker;
use crate::error::{Error, Result};
use crate::id::SliceId;
use crate::lock::LockKind;
use crate::mongo::client::{connect, db_err, hello, server_identity};
use crate::mongo::oplog::backfill::Backfill;
use crate::mongo::oplog::slice::{slice_path, Gap, Slice, SLICE_VERSION};
use crate::ops::context::{Ctx, Event};
use crate::ops::mongodb::{FollowReport, FollowRequest};
use crate::repository::Repository;
use crate::snapshot::ClusterTime;
use crate::writer::BlobWriter;

/// Entries read per query; a query is repeated while it returns a full batch.
const BATCH: i64 = 10_000;

/// The moment just before `c`.
fn before(c: ClusterTime) -> ClusterTime {
    match c.i {
        0 => ClusterTime {
            t: c.t.saturating_sub(1),
            i: u32::MAX,
        },
        i => ClusterTime { t: c.t, i: i - 1 },
    }
}

/// Where the last slice of `source` (for these databases) ended, else the newest snapshot
/// of it with a cluster time.
pub fn resume_point(
    repo: &Repository,
    source: &str,
    dbs: &[String],
) -> Result<Option<ClusterTime>> {
    let slices = crate::mongo::oplog::load_slices(repo)?;
    let from_slices = slices
        .iter()
        .filter(|s| s.source == source && s.dbs == dbs)
        .map(|s| s.until)
        .max();
    if from_slices.is_some() {
        return Ok(from_slices);
    }
    Ok(repo
        .snapshots()?
        .iter()
        .filter_map(crate::mongo::oplog::coverage::snapshot_point)
        .filter(|(src, _)| *src == source)
        .map(|(_, t)| t)
        .max())
}

/// The oplog reader and the entries not yet sealed.
pub(super) struct Tail {
    pub(super) client: Client,
    pub(super) source: String,
    pub(super) dbs: Vec<String>,
    /// Entries are complete up to here (inclusive).
    pub(super) until: ClusterTime,
    /// Where the unsealed part starts (exclusive).
    pub(super) after: ClusterTime,
    /// Read no entry past this (a backfill's end); `None`: up to the present.
    pub(super) bound: Option<ClusterTime>,
    /// A read stops once this many bytes are buffered, to be sealed before it goes on.
    pub(super) limit: u64,
    gap: Option<Gap>,
    buf: Vec<u8>,
    entries: u64,
    first: Option<ClusterTime>,
    last: Option<ClusterTime>,
    /// The server's last write and cluster time at the previous read, to notice idleness.
    prev: Option<(ClusterTime, ClusterTime)>,
    /// The server's clock when the last read began.
    until_wall: Option<chrono::DateTime<chrono::Utc>>,
    /// The server has said it is a replica set member: from then on, a `hello` without
    /// `setName` is a server still starting up (it loads its replica set configuration
    /// after it starts answering), to be retried, not a refusal.
    member: bool,
}

/// What one read got.
pub(super) struct Read {
    /// Entries were added to the buffer.
    pub(super) added: bool,
    /// Everything up to the present (or the bound) was read; `false` when the buffer
    /// reached its limit first.
    pub(super) complete: bool,
    /// The oplog no longer reaches back to `until`: its oldest entry now (nothing was
    /// read; entries after `until` may be lost).
    pub(super) rolled: Option<ClusterTime>,
}

/// What `hello` says about the server's progress.
struct Clock {
    last_write: Option<ClusterTime>,
    cluster: Option<ClusterTime>,
    local: Option<chrono::DateTime<chrono::Utc>>,
}

impl Tail {
    /// A reader of `source`'s entries for `dbs` (all when empty), at the oplog's start.
    pub(super) fn new(client: Client, source: String, dbs: Vec<String>, limit: u64) -> Self {
        Self {
            client,
            source,
            dbs,
            until: ClusterTime::default(),
            after: ClusterTime::default(),
            bound: None,
            limit: limit.max(1),
            gap: None,
            buf: Vec::new(),
            entries: 0,
            first: None,
            last: None,
            prev: None,
            until_wall: None,
            member: false,
        }
    }

    fn oplog(&self) -> mongodb::sync::Collection<RawDocumentBuf> {
        self.client.database("local").collection("oplog.rs")
    }

    /// The server's last committed write, current cluster time and clock.
    fn clock(&mut self) -> Result<Clock> {
        let hello = hello(&self.client)?;
        if !hello.contains_key("setName") {
            return Err(if self.member {
                Error::Source(
                    "MongoDB: the server does not report its replica set yet (starting up?)".into(),
                )
            } else {
                Error::Refused(
                    "MongoDB: the server is not a replica set member, so it keeps no oplog \
                     (start it with --replSet; a one-node replica set is enough)"
                        .into(),
                )
            });
        }
        let last_write = hello
            .get_document("lastWrite")
            .and_then(|w| w.get_document("opTime"))
            .and_then(|o| o.get_timestamp("ts"))
            .ok()
            .map(ClusterTime::from);
        let cluster = hello
            .get_document("$clusterTime")
            .and_then(|c| c.get_timestamp("clusterTime"))
            .or_else(|_| hello.get_timestamp("operationTime"))
            .ok()
            .map(ClusterTime::from);
        let local = hello
            .get_datetime("localTime")
            .ok()
            .and_then(|d| chrono::DateTime::from_timestamp_millis(d.timestamp_millis()));
        self.member = true;
        Ok(Clock {
            last_write,
            cluster,
            local,
        })
    }

    /// The oldest entry still in the oplog.
    fn oldest(&self) -> Result<Option<ClusterTime>> {
        let first = self
            .oplog()
            .find(doc! {})
            .sort(doc! {"$natural": 1})
            .limit(1)
            .run()
            .map_err(|e| db_err("reading the oplog", e))?
            .next()
            .transpose()
            .map_err(|e| db_err("reading the oplog", e))?;
        Ok(match first {
            Some(d) => Some(ClusterTime::from(d.get_timestamp("ts").map_err(|e| {
                Error::Source(format!("MongoDB: oplog entry without ts: {e}"))
            })?)),
            None => None,
        })
    }

    /// The newest entry in the oplog.
    fn newest(&mut self) -> Result<Option<ClusterTime>> {
        Ok(self.clock()?.last_write)
    }

    fn wanted(&self, ns: &str) -> bool {
        let db = ns.split('.').next().unwrap_or("");
        if db == "admin" {
            // Transactions on mongod are logged as applyOps in admin.$cmd; the replay
            // picks the inner operations it needs.
            return ns == "admin.$cmd";
        }
        if self.dbs.is_empty() {
            !db.is_empty() && db != "local" && db != "config"
        } else {
            self.dbs.iter().any(|d| d == db)
        }
    }

    /// Whether the oplog no longer holds the entry right after `until` (when its oldest
    /// entry is newer, entries in between may have been dropped).
    fn rolled_over(&self) -> Result<Option<ClusterTime>> {
        Ok(self.oldest()?.filter(|&oldest| oldest > self.until))
    }

    /// Records a loss up to `oldest`: reading continues from there (nothing is buffered).
    fn mark_gap(&mut self, oldest: ClusterTime) -> Gap {
        let gap = Gap {
            from: self.until,
            to: oldest,
        };
        self.gap = Some(gap);
        self.after = before(oldest);
        self.until = self.after;
        gap
    }

    /// Reads what is new, up to the buffer's limit; `verify`: first show that the oplog
    /// still reaches back to `until` ([`Tail::read_to_present`]).
    fn read(&mut self, ctx: &Ctx, verify: bool) -> Result<Read> {
        let Clock {
            last_write,
            cluster,
            local,
        } = self.clock()?;
        let added = self.read_to_present(last_write, cluster, local, verify)?;
        ctx.event(Event::Polled {
            server_time: local,
            head: last_write,
            read_until: self.until,
        });
        Ok(added)
    }

    /// Reads the oplog after `until`, up to the present (or the bound) or the buffer's
    /// limit. With `verify`, the first query also shows that nothing after `until` was
    /// dropped: it starts at `until` itself, and when `until` is the time of an entry,
    /// that entry coming back first proves it (an oplog loses its oldest entries first),
    /// so a poll costs one query. Otherwise the oldest entry is read: when it is after
    /// `until`, nothing is read and [`Read::rolled`] says so.
    pub(super) fn read_to_present(
        &mut self,
        last_write: Option<ClusterTime>,
        cluster: Option<ClusterTime>,
        local: Option<chrono::DateTime<chrono::Utc>>,
        mut verify: bool,
    ) -> Result<Read> {
        let mut added = false;
        loop {
            let from = Timestamp::from(self.until);
            let filter = match self.bound {
                None => doc! {"ts": {"$gte": from}},
                Some(b) => doc! {"ts": {"$gte": from, "$lte": Timestamp::from(b)}},
            };
            let mut cursor = self
                .oplog()
                .find(filter)
                .limit(BATCH)
                .run()
                .map_err(|e| db_err("reading the oplog", e))?;
            let mut batch: Vec<(ClusterTime, RawDocumentBuf)> = Vec::new();
            for d in &mut cursor {
                let d = d.map_err(|e| db_err("reading the oplog", e))?;
                let t = d
                    .get_timestamp("ts")
                    .map_err(|e| Error::Source(format!("MongoDB: oplog entry without ts: {e}")))?;
                batch.push((ClusterTime::from(t), d));
            }
            batch.sort_by_key(|(t, _)| *t);
            if std::mem::take(&mut verify) && batch.first().map(|(t, _)| *t) != Some(self.until) {
                if let Some(oldest) = self.rolled_over()? {
                    return Ok(Read {
                        added,
                        complete: false,
                        rolled: Some(oldest),
                    });
                }
            }
            let full = batch.len() as i64 >= BATCH;
            if full {
                // Never split the entries of one timestamp (a transaction) across reads.
                let last = batch.last().map(|(t, _)| *t);
                let cut = batch
                    .iter()
                    .position(|(t, _)| Some(*t) == last)
                    .unwrap_or(0);
                if cut > 0 {
                    batch.truncate(cut);
                }
            }
            let Some(&(newest, _)) = batch.last() else {
                break;
            };
            for (t, d) in batch {
                if t <= self.until {
                    // The entry at `until`, read before.
                    continue;
                }
                let ns = d.get_str("ns").unwrap_or("");
                let op = d.get_str("op").unwrap_or("");
                if op == "n" || !self.wanted(ns) {
                    continue;
                }
                self.buf.extend_from_slice(d.as_bytes());
                self.entries += 1;
                self.first.get_or_insert(t);
                self.last = Some(t);
                added = true;
            }
            self.until = newest;
            if !full {
                break;
            }
            if self.buf.len() as u64 >= self.limit {
                // Sealed before reading on: a capture far behind the head never holds
                // more than about a slice's worth in memory.
                return Ok(Read {
                    added,
                    complete: false,
                    rolled: None,
                });
            }
        }
        // `until` moves past the last entry read only when the server has been idle for a
        // whole poll (its last write unchanged, nothing new read): a write still in flight
        // (an oplog "hole" below the last write) is then long committed and visible, so
        // nothing can appear at or before the cluster time seen at the previous read. While
        // writes flow, the last entry read is the bound: forward oplog reads never skip a
        // hole, so the next read starts exactly there.
        if let (Some(w), Some(c)) = (last_write, cluster) {
            if let Some((pw, pc)) = self.prev {
                if pw == w && !added {
                    self.until = self.until.max(w).max(pc.min(c));
                }
            }
            self.prev = Some((w, c));
        }
        // Whatever the server had committed when this read began has now been read.
        if local.is_some() {
            self.until_wall = local;
        }
        Ok(Read {
            added,
            complete: true,
            rolled: None,
        })
    }
}

/// Runs until `ctx` is cancelled (sealing what was read), or once with `req.once`.
pub fn run(repo: &Repository, req: &FollowRequest, ctx: &Ctx) -> Result<FollowReport> {
    let ms = |v: u64, what: &str| {
        if v == 0 {
            Err(Error::Invalid(format!("{what} must be above zero")))
        } else {
            Ok(Duration::from_millis(v))
        }
    };
    let seal_interval = ms(req.seal_interval_ms, "the seal interval")?;
    let poll = ms(req.poll_ms, "the poll interval")?;
    // One capture set, however the databases were listed: resuming matches on it.
    let mut dbs = req.dbs.clone();
    dbs.sort();
    dbs.dedup();
    let client = connect(req.uri.expose())?;
    // Slices are keyed by what the server says it is, as snapshots are: however the
    // connection string is spelled, they find each other.
    let source = server_identity(&client, &hello(&client)?, req.uri.expose())?;
    let mut tail = Tail::new(client, source.clone(), dbs, req.seal_bytes);
    tail.clock()?;
    let resumed = resume_point(repo, &source, &tail.dbs)?;
    ctx.event(Event::FollowResumed { after: resumed });
    let start = match resumed {
        Some(t) => t,
        None => tail.newest()?.unwrap_or_default(),
    };
    let mut report = FollowReport {
        source,
        resumed_after: resumed,
        ..FollowReport::default()
    };
    tail.until = start;
    tail.after = start;
    let mut backfill = Backfill::new(repo, start)?;
    let mut last_seal = Instant::now();
    // The server clock the last sealed slice vouches for: an idle server's time still
    // becomes restorable when a slice records a later reading, even with no entry.
    let mut sealed_wall = tail.until_wall;
    let mut failures = 0u32;
    loop {
        let stopping = ctx.cancelled();
        let polled = tail.read(ctx, true).and_then(|read| {
            let Some(oldest) = read.rolled else {
                return Ok(read);
            };
            // What was read before the loss is complete: seal it on its own first.
            if tail.until > tail.after {
                report.sealed(seal(repo, &mut tail)?, ctx);
            }
            let gap = tail.mark_gap(oldest);
            report.gaps.push(gap);
            ctx.event(Event::OplogGap { gap });
            // Read on from the oldest entry, which the gap ends just before.
            tail.read(ctx, false)
        });
        let read = match polled {
            Ok(read) => {
                failures = 0;
                read
            }
            // The server or the network failed: what is buffered stays consistent (reads
            // are all-or-nothing per batch), so keep it and try again, unless asked to stop.
            Err(Error::Source(msg)) if !req.once && !stopping => {
                failures += 1;
                let pause = Duration::from_secs(1u64 << failures.min(5));
                ctx.event(Event::Retrying {
                    error: msg,
                    in_secs: pause.as_secs(),
                });
                pause_unless_cancelled(pause, ctx);
                continue;
            }
            Err(Error::Source(_)) if stopping => Read {
                added: false,
                complete: true,
                rolled: None,
            },
            Err(e) => return Err(e),
        };
        let progressed = tail.until > tail.after || tail.until_wall > sealed_wall;
        let due = last_seal.elapsed() >= seal_interval && progressed;
        if stopping || req.once || due || tail.buf.len() as u64 >= req.seal_bytes {
            if progressed || tail.gap.is_some() {
                let slice = seal(repo, &mut tail)?;
                sealed_wall = slice.until_wall;
                report.sealed(slice, ctx);
            }
            last_seal = Instant::now();
            if !stopping && !req.once {
                backfill.run(repo, &tail, &mut report, ctx);
            }
        }
        // `--once` reads to the present, a slice's worth at a time; a stop request seals
        // what is buffered and ends.
        if stopping || (req.once && read.complete) {
            return Ok(report);
        }
        if !read.added {
            pause_unless_cancelled(poll, ctx);
        }
    }
}

/// Sleeps in small steps so a stop request is served promptly.
fn pause_unless_cancelled(pause: Duration, ctx: &Ctx) {
    let until = Instant::now() + pause;
    while Instant::now() < until && !ctx.cancelled() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stores the buffered entries as chunks and writes the slice object (last).
pub(super) fn seal(repo: &Repository, tail: &mut Tail) -> Result<Slice> {
    // Sealing also runs after a stop request, to keep what was read: it is never
    // cancelled itself.
    let _lock = repo.lock(
        LockKind::Shared,
        "mongodb follow",
        Duration::from_secs(60),
        &Ctx::default(),
    )?;
    let chunker = Chunker::new(repo.config().chunker_bson, repo.key().chunker_seed());
    let mut writer = BlobWriter::new(repo);
    let chunks = writer.store_chunks(&chunker, &tail.buf)?;
    writer.finish()?;
    let slice = Slice {
        version: SLICE_VERSION,
        id: SliceId::random(),
        source: tail.source.clone(),
        dbs: tail.dbs.clone(),
        host: crate::sysinfo::hostname(),
        created: chrono::Utc::now(),
        after: tail.after,
        until: tail.until,
        until_wall: tail.until_wall,
        first: tail.first,
        last: tail.last,
        entries: tail.entries,
        bytes: tail.buf.len() as u64,
        chunks,
        gap: tail.gap,
    };
    repo.check_locks()?;
    repo.backend()
        .put(&slice_path(&slice.id), &slice.seal(repo.key()))?;
    tail.after = tail.until;
    tail.buf.clear();
    tail.entries = 0;
    tail.first = None;
    tail.last = None;
    tail.gap = None;
    Ok(slice)
}
