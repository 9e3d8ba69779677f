//! Prune, part 1: mark every blob reachable from the kept snapshots, then join the marks
//! with the index (both sorted by kind and id) to learn how much of each pack is live.
//! Nothing here holds every blob id in memory: marks live in a temporary RocksDB set.

use std::collections::HashMap;

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::{BlobId, PackId, TreeId};
use crate::index::keyset::{order, BlobSet};
use crate::index::BlobLocation;
use crate::repository::Repository;
use crate::snapshot::Snapshot;
use crate::tree::walk::{TreeWalk, Visit};

/// Live and total content of one indexed pack.
#[derive(Clone, Copy, Debug, Default)]
pub struct PackUsage {
    /// Size of the pack file.
    pub size: u64,
    /// Sealed bytes of live blobs whose indexed copy is in this pack.
    pub live_bytes: u64,
    /// Number of such blobs.
    pub live_blobs: u64,
    /// Blobs the index places in this pack.
    pub blobs: u64,
}

/// Marks every tree and data blob reachable from `snaps`, and every oplog slice's chunks.
pub fn mark(repo: &Repository, snaps: &[Snapshot]) -> Result<BlobSet> {
    let live = std::cell::RefCell::new(BlobSet::create(repo.cache_dir(), "prune-live")?);
    let roots: Vec<TreeId> = snaps.iter().map(|s| s.tree).collect();
    TreeWalk::new(repo).walk_trees(
        &roots,
        &mut |id| {
            let bid = BlobId::from(*id);
            let mut live = live.borrow_mut();
            // Shared subtrees (most of them, between snapshots) are walked once.
            if live.contains(BlobKind::Tree, &bid)? {
                return Ok(Visit::Skip);
            }
            live.insert(BlobKind::Tree, &bid)?;
            Ok(Visit::Descend)
        },
        &mut |node| {
            let mut live = live.borrow_mut();
            for c in &node.content {
                live.insert(BlobKind::Data, &BlobId::from(*c))?;
            }
            Ok(())
        },
    )?;
    let mut live = live.into_inner();
    // Oplog slices keep their chunks (forget decides which slices go).
    for slice in crate::mongo::oplog::load_slices(repo)? {
        for c in &slice.chunks {
            live.insert(BlobKind::Data, &BlobId::from(*c))?;
        }
    }
    live.flush()?;
    Ok(live)
}

/// Per-pack usage, plus the live blobs the index does not know (at most
/// [`MISSING_KEPT`] of them are kept, with the total count).
pub struct Usage {
    /// Listed packs and how much of each is live.
    pub packs: HashMap<PackId, PackUsage>,
    /// Live blobs not in the index (they may be in packs no segment lists).
    pub missing: Vec<(BlobKind, BlobId)>,
    /// How many live blobs are not in the index in all.
    pub missing_count: u64,
}

/// Live blobs missing from the index that are remembered by id; beyond that the
/// repository is damaged beyond what adopting unlisted packs could fix in one run.
pub const MISSING_KEPT: usize = 1_000_000;

/// Streams the index against the marks. Calls `on_live` for every live blob with its
/// location, and returns per-pack usage and the live blobs the index lacks.
pub fn usage(
    repo: &Repository,
    live: &BlobSet,
    mut on_live: impl FnMut(BlobKind, &BlobId, &BlobLocation),
) -> Result<Usage> {
    let index = repo.index()?;
    let mut packs: HashMap<PackId, PackUsage> = index
        .packs()?
        .into_iter()
        .map(|(p, size)| {
            (
                p,
                PackUsage {
                    size,
                    ..Default::default()
                },
            )
        })
        .collect();
    let mut marks = live.iter()?.peekable();
    let mut missing: Vec<(BlobKind, BlobId)> = Vec::new();
    let mut missing_count = 0u64;
    let mut note_missing = |kind: BlobKind, id: &BlobId| {
        missing_count += 1;
        if missing.len() < MISSING_KEPT {
            missing.push((kind, *id));
        }
    };
    index.for_each_blob(|kind, id, loc| {
        let mut is_live = false;
        while let Some(next) = marks.peek() {
            let (mk, mid) = match next {
                Ok(v) => *v,
                Err(e) => return Err(Error::Invalid(e.to_string())),
            };
            match order((mk, &mid), (kind, &id)) {
                std::cmp::Ordering::Less => {
                    note_missing(mk, &mid);
                    marks.next();
                }
                std::cmp::Ordering::Equal => {
                    is_live = true;
                    marks.next();
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        let u = packs.entry(loc.pack).or_default();
        u.blobs += 1;
        if is_live {
            u.live_blobs += 1;
            u.live_bytes += loc.stored_share();
            on_live(kind, &id, &loc);
        }
        Ok(())
    })?;
    for m in marks {
        let (k, id) = m?;
        note_missing(k, &id);
    }
    Ok(Usage {
        packs,
        missing,
        missing_count,
    })
}
