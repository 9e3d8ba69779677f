//! Prune, part 2: live blobs the index does not know. They can only be in packs no segment
//! lists — packs marked for deletion that a writer (on a host whose lock prune could not
//! see) used after the mark, or packs of an interrupted writer that a snapshot still got
//! to reference. Such packs are "adopted": listed in a new segment again, never deleted.

use std::collections::{HashMap, HashSet};

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::{BlobId, PackId};
use crate::index::segment::PackRecord;
use crate::pack::reader::read_trailer;
use crate::repository::Repository;

/// Unlisted packs that hold live blobs, and the live blobs found nowhere.
#[derive(Default)]
pub struct Adoption {
    /// Packs to list again, with their trailers' entries.
    pub packs: Vec<PackRecord>,
    /// Live blobs in no pack at all.
    pub still_missing: Vec<(BlobKind, BlobId)>,
}

/// Looks for `missing` live blobs in the `unlisted` packs (id, size) by their trailers.
pub fn find(
    repo: &Repository,
    missing: &[(BlobKind, BlobId)],
    unlisted: &[(PackId, u64)],
) -> Result<Adoption> {
    if missing.is_empty() {
        return Ok(Adoption::default());
    }
    let wanted: HashSet<(BlobKind, BlobId)> = missing.iter().copied().collect();
    let mut found: HashSet<(BlobKind, BlobId)> = HashSet::new();
    let mut packs: HashMap<PackId, PackRecord> = HashMap::new();
    for (id, size) in unlisted {
        let entries = match read_trailer(repo.backend(), repo.key(), id, *size) {
            Ok(e) => e,
            // A damaged trailer cannot vouch for anything; the blobs stay missing.
            Err(Error::Corrupt { .. } | Error::Missing(_)) => continue,
            Err(e) => return Err(e),
        };
        if entries.iter().any(|e| wanted.contains(&(e.kind, e.id))) {
            found.extend(entries.iter().map(|e| (e.kind, e.id)));
            packs.insert(
                *id,
                PackRecord {
                    id: *id,
                    size: *size,
                    entries,
                },
            );
        }
    }
    let mut packs: Vec<PackRecord> = packs.into_values().collect();
    packs.sort_by_key(|p| p.id);
    Ok(Adoption {
        packs,
        still_missing: missing
            .iter()
            .filter(|m| !found.contains(m))
            .copied()
            .collect(),
    })
}
