//! Backfill: the oplog between a snapshot and the start of a capture that began after it.
//!
//! `follow` with nothing to resume from starts at the oplog's newest entry. A snapshot
//! being taken at that moment (the service starts a plan's follower and its first backup
//! together; another host's backup; a snapshot copied in later) records a cluster time
//! before that start: without the entries in between, no moment after that snapshot
//! would be restorable until the next one, while the capture reports itself as running
//! and current. So, each time it seals, `follow` looks at the snapshots that appeared
//! since it started; for one of its source whose cluster time is before this run's start
//! and not already chained to it by slices, it reads what the oplog still holds in
//! between and seals it as ordinary slices. If the oplog has rolled past that point the
//! range stays a gap (`repo mongodb coverage` shows it) and a warning says so.

use std::collections::HashSet;

use crate::id::SnapshotId;
use crate::mongo::oplog::coverage;
use crate::mongo::oplog::follow::{seal, Tail};
use crate::ops::context::Ctx;
use crate::ops::mongodb::{Backfilled, FollowReport};
use crate::repository::Repository;
use crate::snapshot::ClusterTime;

/// The snapshots already looked at, and where this run's chain of slices begins.
pub(super) struct Backfill {
    origin: ClusterTime,
    known: HashSet<SnapshotId>,
}

impl Backfill {
    /// Snapshots present now need nothing: `follow` resumed from the newest of them (or
    /// from a slice after it).
    pub(super) fn new(repo: &Repository, origin: ClusterTime) -> crate::error::Result<Self> {
        Ok(Self {
            origin,
            known: repo.snapshot_ids()?.into_iter().collect(),
        })
    }

    /// Fills what new snapshots need before this run's start. Failures are logged and
    /// tried again at the next seal (a snapshot that did not load stays new): the capture
    /// itself must go on.
    pub(super) fn run(
        &mut self,
        repo: &Repository,
        tail: &Tail,
        report: &mut FollowReport,
        ctx: &Ctx,
    ) {
        match self.needed(repo, tail) {
            Ok(Some((from, snapshot))) => match fill(repo, tail, from, self.origin, report, ctx) {
                Ok(true) => report.backfills.push(Backfilled {
                    after: from,
                    until: self.origin,
                    snapshot: snapshot.short(),
                }),
                Ok(false) => tracing::warn!(
                    "snapshot {} of {} was taken at {from:?}, before this capture started \
                     ({:?}), and the oplog no longer holds what came between: moments \
                     before its next snapshot are not restorable",
                    snapshot.short(),
                    tail.source,
                    self.origin
                ),
                Err(e) => {
                    self.known.remove(&snapshot);
                    tracing::warn!("reading the oplog before this capture's start: {e}");
                }
            },
            Ok(None) => {}
            Err(e) => tracing::warn!("looking for snapshots this capture must reach: {e}"),
        }
    }

    /// The earliest point a new snapshot needs that no slice chains to this run's start,
    /// and that snapshot.
    fn needed(
        &mut self,
        repo: &Repository,
        tail: &Tail,
    ) -> crate::error::Result<Option<(ClusterTime, SnapshotId)>> {
        let mut earliest: Option<(ClusterTime, SnapshotId)> = None;
        for id in repo.snapshot_ids()? {
            if !self.known.insert(id) {
                continue;
            }
            let snap = match repo.load_snapshot(&id) {
                Ok(s) => s,
                // Forgotten since it was listed: nothing to reach back to.
                Err(crate::error::Error::Missing(_)) => continue,
                // Looked at again at the next seal; the other new snapshots are not held
                // up by it (returning here would forget them: they are known already).
                Err(e) => {
                    self.known.remove(&id);
                    tracing::warn!("reading snapshot {}: {e}", id.short());
                    continue;
                }
            };
            let Some((source, t)) = coverage::snapshot_point(&snap) else {
                continue;
            };
            if source == tail.source && t < self.origin && earliest.is_none_or(|(e, _)| t < e) {
                earliest = Some((t, id));
            }
        }
        let Some((t, id)) = earliest else {
            return Ok(None);
        };
        let slices: Vec<_> = crate::mongo::oplog::load_slices(repo)?
            .into_iter()
            .filter(|s| s.source == tail.source && s.dbs == tail.dbs)
            .collect();
        let refs: Vec<_> = slices.iter().collect();
        Ok(coverage::plan(&refs, t, self.origin).1.map(|m| (m, id)))
    }
}

/// Reads `(from, to]` of the oplog and seals it in slices of the capture's size; `false`
/// when the oplog no longer reaches back to `from`.
fn fill(
    repo: &Repository,
    tail: &Tail,
    from: ClusterTime,
    to: ClusterTime,
    report: &mut FollowReport,
    ctx: &Ctx,
) -> crate::error::Result<bool> {
    let mut back = Tail::new(
        tail.client.clone(),
        tail.source.clone(),
        tail.dbs.clone(),
        tail.limit,
    );
    back.after = from;
    back.until = from;
    back.bound = Some(to);
    loop {
        let read = back.read_to_present(None, None, None, true)?;
        if read.rolled.is_some() {
            // What was sealed so far is complete up to where it ends.
            return Ok(false);
        }
        if read.complete {
            // Every entry up to `to` was committed when this run started reading after it.
            back.until = to;
        }
        if back.until > back.after {
            report.sealed(seal(repo, &mut back)?, ctx);
        }
        if read.complete {
            return Ok(true);
        }
    }
}
