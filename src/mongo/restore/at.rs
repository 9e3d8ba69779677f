//! `restore --at T` for MongoDB collections: the snapshot taken before `T`, then the
//! oplog slices of its source rolled forward from the snapshot's cluster time to `T`.

use std::collections::HashSet;

use chrono::{DateTime, TimeZone, Utc};

use crate::error::{Error, Result};
use crate::mongo::oplog::coverage::{self, plan};
use crate::mongo::oplog::namespaces::written_namespaces;
use crate::mongo::oplog::replay::{vet_raw, Cut, ReplayStats, Replayer, Selection};
use crate::mongo::oplog::slice::{split_entries, Slice};
use crate::ops::context::Ctx;
use crate::progress::Progress;
use crate::repository::Repository;
use mongodb::bson::RawDocument;

use super::{MongoConflict, MongoRestoreOptions};
use crate::mongo::client::{connect, mongo_error};
use crate::mongo::ns::ns_matchers;
use crate::mongo::ns::Renames;
use crate::snapshot::{ClusterTime, Snapshot};

/// The roll-forward from a snapshot to a moment.
pub struct RollForward {
    /// Where replay stops.
    pub cut: Cut,
    /// The snapshot's cluster time (replay starts after it).
    pub base: ClusterTime,
    /// Slices with the part of each to replay.
    pub parts: Vec<(Slice, ClusterTime, ClusterTime)>,
    /// What the snapshot holds (read once, when planning).
    held: Held,
}

fn when(t: ClusterTime) -> String {
    Utc.timestamp_opt(i64::from(t.t), 0)
        .single()
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The refusal of a moment after a snapshot that no captured oplog reaches.
fn not_after_snapshot(snap: &Snapshot, at: DateTime<Utc>, why: &str) -> Error {
    let moment = snap
        .mongodb
        .as_ref()
        .and_then(|m| m.cluster_time)
        .map_or_else(|| snap.time.format("%Y-%m-%dT%H:%M:%SZ").to_string(), when);
    Error::Refused(format!(
        "{} is not restorable: {why}; nearest restorable: {moment} (snapshot {}: restore it \
         with `repo restore {} --mongodb-uri …`, or capture the oplog with `repo mongodb \
         follow` to make later moments restorable)",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        snap.id.short(),
        snap.id.short()
    ))
}

/// Plans the roll-forward of `snap` to `at`. None when `at` is the snapshot's own moment
/// (same second) and its source has no oplog slices: the snapshot is the answer. A later
/// moment the oplog does not reach is refused, never answered with the older state.
pub fn plan_at(
    repo: &Repository,
    snap: &Snapshot,
    at: DateTime<Utc>,
    exact: Option<ClusterTime>,
) -> Result<Option<RollForward>> {
    let own_second = |t: ClusterTime| at.timestamp() <= i64::from(t.t);
    let Some((source, base)) = coverage::snapshot_point(snap) else {
        if at.timestamp() <= snap.time.timestamp() {
            return Ok(None);
        }
        return Err(not_after_snapshot(
            snap,
            at,
            "the snapshot before it has no cluster time (a standalone server keeps no oplog)",
        ));
    };
    let cut = exact.map_or_else(|| Cut::at(at), Cut::exact);
    // The oplog only moves a state forward: a snapshot read after the moment can never
    // answer for it (the selection takes an earlier one).
    if base > cut.ts {
        return Err(Error::Refused(format!(
            "snapshot {} was read at {} #{}, after {}: it cannot give an earlier state; \
             restore by time (`--at`) to have an earlier snapshot chosen",
            snap.id.short(),
            when(base),
            base.i,
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    let slices: Vec<Slice> = crate::mongo::oplog::load_slices(repo)?
        .into_iter()
        .filter(|s| s.source == source)
        .collect();
    if slices.is_empty() {
        if own_second(base) && exact.is_none_or(|e| e <= base) {
            return Ok(None);
        }
        return Err(not_after_snapshot(
            snap,
            at,
            &format!("no oplog of {source} was captured after the snapshot before it"),
        ));
    }
    let held = held(repo, snap)?;
    let dbs = held.dbs();
    // Slices that captured every database this snapshot holds.
    let usable: Vec<&Slice> = slices
        .iter()
        .filter(|s| s.dbs.is_empty() || dbs.iter().all(|d| s.dbs.contains(d)))
        .collect();
    let end = cut.ts.max(base);
    let (parts, missing) = plan(&usable, base, end);
    // Short of `end` in oplog time, the chain may still vouch for `at` by the server's
    // clock: a whole-second `at` means the end of that second.
    // A whole second, or an exact timestamp in it: all of that second must have been read.
    let instant = match cut.wall {
        Some(w) => w,
        None => at + chrono::Duration::milliseconds(999),
    };
    let vouched =
        missing.is_some_and(|m| coverage::wall_at(&usable, m).is_some_and(|w| w >= instant));
    let Some(missing) = missing.filter(|_| !vouched) else {
        return Ok(Some(RollForward {
            cut,
            base,
            parts: parts
                .into_iter()
                .map(|(s, a, b)| (s.clone(), a, b))
                .collect(),
            held,
        }));
    };
    let spans = coverage::spans(&usable);
    let times: Vec<ClusterTime> = repo
        .snapshots()?
        .iter()
        .filter_map(coverage::snapshot_point)
        .filter(|(s, _)| *s == source)
        .map(|(_, t)| t)
        .collect();
    let ranges = coverage::ranges(&times, &spans);
    let (before, after) = coverage::nearest(&ranges, cut.ts);
    let mut nearest = Vec::new();
    if let Some(b) = before {
        nearest.push(format!("{} (latest before)", when(b)));
    }
    if let Some(a) = after {
        nearest.push(format!("{} (earliest after)", when(a)));
    }
    Err(Error::Refused(format!(
        "{} is not restorable for {source}: the oplog was not captured after {} (a gap, \
         or `follow` has not sealed that far yet); nearest restorable: {} (see `repo \
         mongodb coverage`)",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        when(missing),
        if nearest.is_empty() {
            "none".to_string()
        } else {
            nearest.join(", ")
        }
    )))
}

/// What a snapshot holds, as far as a roll-forward is concerned.
struct Held {
    /// Namespaces saved.
    saved: HashSet<String>,
    /// Databases saved whole (the `--db` scope; for the whole server, those it had).
    whole_dbs: HashSet<String>,
    /// Taken of the whole server.
    whole_server: bool,
}

impl Held {
    /// Databases whose oplog entries a roll-forward needs.
    fn dbs(&self) -> HashSet<String> {
        let mut dbs = self.whole_dbs.clone();
        dbs.extend(
            self.saved
                .iter()
                .filter_map(|ns| Some(ns.split_once('.')?.0.to_string())),
        );
        dbs
    }
}

fn held(repo: &Repository, snap: &Snapshot) -> Result<Held> {
    let saved: HashSet<String> = super::saved(repo, snap)?.iter().map(|s| s.ns()).collect();
    let saved_dbs = || {
        saved
            .iter()
            .filter_map(|ns| Some(ns.split_once('.')?.0.to_string()))
            .collect()
    };
    let scope = snap.mongodb.as_ref().and_then(|m| m.scope.as_ref());
    let (whole_dbs, whole_server) = match scope {
        // Snapshots from before the scope was recorded: their databases, as then.
        None => (saved_dbs(), false),
        Some(s) if s.whole_server() => (saved_dbs(), true),
        Some(s) => (s.dbs.iter().cloned().collect(), false),
    };
    Ok(Held {
        saved,
        whole_dbs,
        whole_server,
    })
}

/// Replays the planned slices into `uri`, for the namespaces `globs` select, renamed
/// (counting entries in `progress`; cancellation is honoured between entries).
pub fn roll_forward(
    repo: &Repository,
    rf: &RollForward,
    uri: &str,
    namespaces: &[String],
    renames: &Renames,
    ctx: &Ctx,
    progress: &Progress,
) -> Result<ReplayStats> {
    let (sel, known) = selection(rf, namespaces, renames)?;
    let client = connect(uri)?;
    let mut replayer = Replayer::new(&client, &sel, known);
    progress.set_unit("oplog entries");
    progress.set_totals(
        rf.parts.iter().map(|(s, _, _)| s.entries).sum(),
        rf.parts.iter().map(|(s, _, _)| s.bytes).sum(),
    );
    for_each_entry(repo, rf, |doc| {
        ctx.check()?;
        progress.done(1, doc.as_bytes().len() as u64);
        replayer.apply(doc)
    })?;
    replayer.finish()
}

/// What the roll-forward replays (and under which names), and the namespaces the
/// snapshot holds.
fn selection(
    rf: &RollForward,
    namespaces: &[String],
    renames: &Renames,
) -> Result<(Selection, HashSet<String>)> {
    let held = &rf.held;
    let sel = Selection {
        saved: held.saved.clone(),
        whole_dbs: held.whole_dbs.clone(),
        // New databases are in the oplog only where `follow` captured every database.
        all_dbs: held.whole_server && rf.parts.iter().all(|(s, _, _)| s.dbs.is_empty()),
        globs: ns_matchers(namespaces)?,
        renames: renames.clone(),
    };
    Ok((sel, held.saved.clone()))
}

/// Calls `f` with each planned entry, in oplog order, up to the cut.
fn for_each_entry(
    repo: &Repository,
    rf: &RollForward,
    mut f: impl FnMut(&RawDocument) -> Result<()>,
) -> Result<()> {
    for (slice, from, to) in &rf.parts {
        let bytes = crate::mongo::oplog::slice_bytes(repo, slice)?;
        for raw in split_entries(&bytes)? {
            let doc = RawDocument::from_bytes(raw)
                .map_err(|e| Error::corrupt("oplog entry", e.to_string()))?;
            let ts = doc
                .get_timestamp("ts")
                .map_err(|e| Error::corrupt("oplog entry", e.to_string()))?;
            let ts = ClusterTime {
                t: ts.time,
                i: ts.increment,
            };
            if ts <= *from || ts > *to {
                continue;
            }
            let wall = doc
                .get_datetime("wall")
                .ok()
                .and_then(|w| Utc.timestamp_millis_opt(w.timestamp_millis()).single());
            if rf.cut.includes(ts, wall) {
                f(doc)?;
            }
        }
    }
    Ok(())
}

/// Checks the target before anything is written — and with `--conflict drop` clears it —
/// so that the oplog is replayed onto exactly the snapshot's documents: a collection
/// merged with existing data (`skip`, `overwrite`), or one the replay creates that already
/// exists, would give a wrong database.
pub fn prepare_target(
    repo: &Repository,
    snap: &Snapshot,
    rf: &RollForward,
    opts: &mut MongoRestoreOptions,
) -> Result<()> {
    // Namespaces the replay creates count for the rename rules too.
    let (sel, saved) = selection(rf, &opts.namespaces, &opts.renames)?;
    let mut replayed: Vec<String> = Vec::new();
    for_each_entry(repo, rf, |doc| {
        for ns in written_namespaces(doc)? {
            if sel.wants(&ns) && !saved.contains(&ns) && !replayed.contains(&ns) {
                replayed.push(ns);
            }
        }
        // Whatever the replay would stop at (a rename into the selection too) is refused
        // now, before any write.
        vet_raw(&sel, doc)
    })?;
    opts.replayed = replayed.clone();
    let planned = super::run(
        repo,
        snap,
        &MongoRestoreOptions {
            dry_run: true,
            ..opts.clone()
        },
        &Ctx::default(),
        &Progress::default(),
    )?;
    let merging: Vec<&str> = planned
        .iter()
        .filter(|o| o.existed)
        .filter(|_| {
            matches!(
                opts.conflict,
                MongoConflict::Skip | MongoConflict::Overwrite
            )
        })
        .map(|o| o.target.as_str())
        .collect();
    if !merging.is_empty() {
        return Err(Error::Refused(format!(
            "target collection(s) already exist: {}; a restore --at replays the oplog onto \
             exactly the snapshot's documents, so it cannot merge: use --conflict drop, or \
             restore elsewhere with --ns-rename; nothing was written",
            merging.join(", ")
        )));
    }
    let mut created: Vec<(String, String)> = Vec::new();
    for ns in &replayed {
        let t = sel.target(ns)?;
        if !created.contains(&t) {
            created.push(t);
        }
    }
    if created.is_empty() {
        return Ok(());
    }
    let client = connect(&opts.uri)?;
    let mut clashes = Vec::new();
    for (db, coll) in &created {
        let names = client
            .database(db)
            .list_collection_names()
            .run()
            .map_err(|e| mongo_error(&format!("listing collections of {db}"), &e))?;
        if names.contains(coll) {
            clashes.push((db, coll));
        }
    }
    if clashes.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = clashes.iter().map(|(d, c)| format!("{d}.{c}")).collect();
    match opts.conflict {
        MongoConflict::Drop if opts.dry_run => Ok(()),
        MongoConflict::Drop => {
            for (db, coll) in clashes {
                client
                    .database(db)
                    .collection::<mongodb::bson::Document>(coll)
                    .drop()
                    .run()
                    .map_err(|e| mongo_error(&format!("dropping {db}.{coll}"), &e))?;
            }
            Ok(())
        }
        _ => Err(Error::Refused(format!(
            "collection(s) the oplog creates after the snapshot already exist in the target: \
             {}; nothing was written (use --conflict drop to replace them, or restore \
             elsewhere with --ns-rename)",
            list.join(", ")
        ))),
    }
}
