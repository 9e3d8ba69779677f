//! `verify` one snapshot: read every tree and every data blob it references — what
//! restoring it would read — decrypting, decompressing and re-hashing each, and report the
//! blobs that fail. Writes nothing; holds the shared lock so no prune deletes packs under it.

use std::collections::HashSet;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::blob::BlobKind;
use crate::error::Result;
use crate::id::{BlobId, ChunkId, TreeId};
use crate::lock::LockKind;
use crate::ops::context::{Ctx, Phase};
use crate::ops::select::{self, SnapshotRef};
use crate::repository::Repository;
use crate::tree::walk::{TreeWalk, Visit};

/// Which snapshot.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyRequest {
    pub snapshot: SnapshotRef,
}

/// A blob that could not be read back intact.
#[derive(Clone, Debug, Serialize)]
pub struct Damaged {
    /// The chunk id, hex.
    pub blob: String,
    pub error: String,
}

/// What was read.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// The snapshot's id.
    pub snapshot: String,
    /// Distinct trees read.
    pub trees: u64,
    /// Distinct data blobs read.
    pub blobs: u64,
    /// Their plaintext bytes.
    pub bytes: u64,
    /// Blobs that failed (empty: the snapshot restores).
    pub damaged: Vec<Damaged>,
}

impl VerifyReport {
    /// Whether the snapshot's data is intact.
    pub fn ok(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// Reads back everything the snapshot `req` names references. A tree that cannot be read
/// is an error (nothing below it can be checked); damaged data blobs are in the report.
pub fn run(repo: &Repository, req: &VerifyRequest, ctx: &Ctx) -> Result<VerifyReport> {
    let _lock = repo.lock_for(LockKind::Shared, "verify", ctx)?;
    let snap = select::snapshot(repo, &req.snapshot, &[])?;
    ctx.info(format!(
        "verifying snapshot {} ({})",
        snap.id.short(),
        snap.source.description
    ));
    let mut trees: HashSet<TreeId> = HashSet::new();
    let mut chunks: HashSet<ChunkId> = HashSet::new();
    TreeWalk::new(repo).walk_trees(
        &[snap.tree],
        &mut |id| {
            ctx.check()?;
            Ok(if trees.insert(*id) {
                Visit::Descend
            } else {
                Visit::Skip
            })
        },
        &mut |node| {
            chunks.extend(node.content.iter().copied());
            Ok(())
        },
    )?;
    let progress = ctx.phase(Phase::Checking);
    progress.set_unit("chunks");
    progress.set_totals(chunks.len() as u64, 0);
    let chunks: Vec<ChunkId> = chunks.into_iter().collect();
    let results: Vec<std::result::Result<u64, Damaged>> = chunks
        .par_iter()
        .map(|c| {
            if ctx.cancelled() {
                return Ok(0);
            }
            match repo.read_blob(BlobKind::Data, &BlobId::from(*c)) {
                Ok(b) => {
                    progress.done(1, b.len() as u64);
                    Ok(b.len() as u64)
                }
                Err(e) => Err(Damaged {
                    blob: c.to_hex(),
                    error: e.to_string(),
                }),
            }
        })
        .collect();
    ctx.phase_done(Phase::Checking);
    ctx.check()?;
    let mut report = VerifyReport {
        snapshot: snap.id.to_hex(),
        trees: trees.len() as u64,
        blobs: chunks.len() as u64,
        bytes: 0,
        damaged: Vec::new(),
    };
    for r in results {
        match r {
            Ok(n) => report.bytes += n,
            Err(d) => {
                ctx.warn(Some(d.blob.clone()), d.error.clone());
                report.damaged.push(d);
            }
        }
    }
    Ok(report)
}
