//! `repo snapshots`: the list of snapshots, filtered.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ops::context::Ctx;
use crate::repository::Repository;
use crate::selection::{group, SnapshotFilter};
use crate::snapshot::Snapshot;

/// `snapshots`: which ones.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotsRequest {
    /// Only those passing this filter.
    pub filter: SnapshotFilter,
    /// Only the newest N of each series (same host, source and paths).
    pub latest: Option<usize>,
}

/// The snapshots, oldest first (no lock: it only reads).
pub fn run(repo: &Repository, req: &SnapshotsRequest, _ctx: &Ctx) -> Result<Vec<Snapshot>> {
    let snaps = req.filter.apply(repo.snapshots()?);
    let Some(n) = req.latest else {
        return Ok(snaps);
    };
    let mut out: Vec<Snapshot> = group(snaps)
        .into_values()
        .flat_map(|series| {
            let skip = series.len().saturating_sub(n);
            series.into_iter().skip(skip)
        })
        .collect();
    out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
    Ok(out)
}
