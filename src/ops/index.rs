//! `repo index rebuild`: the local index made again from the repository.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::index::SyncReport;
use crate::lock::LockKind;
use crate::ops::context::Ctx;
use crate::repository::Repository;

/// `index rebuild`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexRebuildRequest {
    /// Also read the trailers of packs no segment lists and list them in a new segment
    /// (writes to the repository: takes the exclusive lock).
    pub from_packs: bool,
}

/// Recreates the local index from the segments; only `from_packs` writes (and locks).
pub fn rebuild(repo: &mut Repository, req: &IndexRebuildRequest, ctx: &Ctx) -> Result<SyncReport> {
    let _lock = req
        .from_packs
        .then(|| repo.lock_for(LockKind::Exclusive, "index rebuild", ctx))
        .transpose()?;
    repo.rebuild_index(req.from_packs)
}
