//! `repo stats`: where the repository's space goes — dedup and compression ratios, what
//! prune could reclaim, and per snapshot its raw size and the bytes only it references.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::blob::BlobKind;
use crate::error::Result;
use crate::id::{BlobId, TreeId};
use crate::ops::context::Ctx;
use crate::ops::select::{self, SnapshotRef};
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::tree::walk::{TreeWalk, Visit};

/// One snapshot's figures.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotStats {
    /// Snapshot id.
    pub id: String,
    /// When it was taken.
    pub time: chrono::DateTime<chrono::Utc>,
    /// Files in it.
    pub files: u64,
    /// Bytes of file content in it (what a restore writes).
    pub raw_bytes: u64,
    /// Distinct data chunks it references.
    pub chunks: u64,
    /// Plaintext bytes of the chunks no other snapshot references.
    pub unique_raw_bytes: u64,
    /// Stored (compressed, encrypted) bytes of those: what forgetting it alone frees.
    pub unique_stored_bytes: u64,
}

/// Repository-wide figures.
#[derive(Clone, Debug, Serialize)]
pub struct RepoStats {
    /// Snapshots.
    pub snapshots: usize,
    /// Bytes of all objects on the backend.
    pub size_on_disk: u64,
    /// Pack files.
    pub packs: u64,
    /// Data blobs in the index.
    pub data_blobs: u64,
    /// Tree blobs in the index.
    pub tree_blobs: u64,
    /// Plaintext bytes of all indexed data blobs.
    pub data_raw_bytes: u64,
    /// Stored bytes of all indexed data blobs.
    pub data_stored_bytes: u64,
    /// Sum of every snapshot's file bytes (what restoring all of them would write).
    pub snapshots_raw_bytes: u64,
    /// `snapshots_raw_bytes / data_raw_bytes`: how much deduplication saves.
    pub dedup_ratio: f64,
    /// `data_raw_bytes / data_stored_bytes`: how much compression saves.
    pub compression_ratio: f64,
    /// Bytes `repo prune --max-unused 0%` would free (unreferenced blobs, unindexed packs).
    pub reclaimable_bytes: u64,
    /// Configured quota, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<u64>,
    /// Per snapshot (all, or the one asked for).
    pub per_snapshot: Vec<SnapshotStats>,
}

/// `stats`: the whole repository, and which snapshots to list.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsRequest {
    /// Only this snapshot in the per-snapshot list (default: all).
    pub snapshot: Option<SnapshotRef>,
}

/// Computes the statistics (no lock: it only reads).
pub fn run(repo: &Repository, req: &StatsRequest, ctx: &Ctx) -> Result<RepoStats> {
    let only = req
        .snapshot
        .as_ref()
        .map(|r| select::snapshot(repo, r, &[]))
        .transpose()?;
    stats(repo, only.as_ref(), ctx)
}

fn stats(repo: &Repository, only: Option<&Snapshot>, ctx: &Ctx) -> Result<RepoStats> {
    let snaps = repo.snapshots()?;
    let index = repo.index()?;
    let (mut data_blobs, mut tree_blobs, mut raw, mut stored) = (0u64, 0u64, 0u64, 0u64);
    index.for_each_blob(|kind, _, loc| {
        match kind {
            BlobKind::Data => {
                data_blobs += 1;
                raw += u64::from(loc.raw_length);
                stored += loc.stored_share();
            }
            BlobKind::Tree => tree_blobs += 1,
        }
        Ok(())
    })?;
    let packs = index.packs()?.len() as u64;

    // Which snapshots reference each chunk: (how many, the last one). Held in memory:
    // ~50 bytes per distinct chunk.
    let mut refs: HashMap<BlobId, (u32, u32)> = HashMap::new();
    let mut chunks_per: Vec<u64> = Vec::with_capacity(snaps.len());
    for (n, s) in snaps.iter().enumerate() {
        ctx.check()?;
        // A subtree that appears twice in one snapshot is counted once.
        let mut trees: HashSet<TreeId> = HashSet::new();
        let mut chunks = 0;
        TreeWalk::new(repo).walk(&s.tree, &Default::default(), &mut |_, node| {
            for c in &node.content {
                let e = refs.entry(BlobId::from(*c)).or_insert((0, u32::MAX));
                if e.1 != n as u32 {
                    e.0 += 1;
                    e.1 = n as u32;
                    chunks += 1;
                }
            }
            Ok(match node.subtree {
                Some(t) if !trees.insert(t) => Visit::Skip,
                _ => Visit::Descend,
            })
        })?;
        chunks_per.push(chunks);
    }
    let mut unique: Vec<(u64, u64)> = vec![(0, 0); snaps.len()];
    for (id, (count, last)) in &refs {
        if *count == 1 {
            if let Some(loc) = index.lookup(BlobKind::Data, id)? {
                let u = &mut unique[*last as usize];
                u.0 += u64::from(loc.raw_length);
                u.1 += loc.stored_share();
            }
        }
    }
    drop(refs);

    let reclaimable = crate::ops::prune::reclaimable(repo)?;
    let snapshots_raw_bytes: u64 = snaps.iter().map(|s| s.summary.total_bytes).sum();
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let per_snapshot = snaps
        .iter()
        .enumerate()
        .filter(|(_, s)| only.is_none_or(|o| o.id == s.id))
        .map(|(n, s)| SnapshotStats {
            id: s.id.to_hex(),
            time: s.time,
            files: s.summary.files_new + s.summary.files_changed + s.summary.files_unchanged,
            raw_bytes: s.summary.total_bytes,
            chunks: chunks_per[n],
            unique_raw_bytes: unique[n].0,
            unique_stored_bytes: unique[n].1,
        })
        .collect();
    Ok(RepoStats {
        snapshots: snaps.len(),
        size_on_disk: repo.total_size()?,
        packs,
        data_blobs,
        tree_blobs,
        data_raw_bytes: raw,
        data_stored_bytes: stored,
        snapshots_raw_bytes,
        dedup_ratio: ratio(snapshots_raw_bytes, raw),
        compression_ratio: ratio(raw, stored),
        reclaimable_bytes: reclaimable,
        quota_bytes: crate::settings::Settings::load(repo.backend(), repo.key())?.quota_bytes,
        per_snapshot,
    })
}
