//! Continuous point-in-time recovery for MongoDB: the oplog captured between snapshots.
//!
//! ```text
//! follow    oplog (local.oplog.rs) → filter by database → buffer raw entries
//!           → every N s / M MB: chunk → blobs → pack → segment → slice object (last)
//! coverage  snapshots' cluster times + unbroken chains of slices → restorable ranges
//! restore   newest snapshot ≤ T → its collections → replay slices' entries in (S, T]
//! ```
//! A slice covers the half-open range `(after, until]` of oplog time: it holds every
//! entry of its databases in that range, so slices chain when one's `after` equals the
//! previous one's `until`. A break in the chain is a gap nothing can restore across.

#[cfg(feature = "mongo")]
mod backfill;
pub mod changes;
pub mod coverage;
#[cfg(feature = "mongo")]
pub mod diff;
pub mod event;
#[cfg(feature = "mongo")]
pub mod follow;
#[cfg(feature = "mongo")]
pub mod namespaces;
#[cfg(feature = "mongo")]
pub mod read;
#[cfg(feature = "mongo")]
pub mod replay;
pub mod slice;
#[cfg(feature = "mongo")]
pub mod stream;

/// Every slice in the repository, oldest first (by covered time).
#[cfg(feature = "local-index")]
pub fn load_slices(
    repo: &crate::repository::Repository,
) -> crate::error::Result<Vec<slice::Slice>> {
    let (out, damaged) = load_slices_and_damaged(repo)?;
    for (id, why) in damaged {
        // Left out: coverage shows the hole it leaves, and `repair snapshots` removes it.
        tracing::warn!(
            "oplog slice {} is damaged and left out ({why}); `repo repair snapshots` removes it",
            id.short()
        );
    }
    Ok(out)
}

/// A slice's entries (raw BSON documents back to back), read from its chunks and checked
/// against its recorded size.
#[cfg(feature = "local-index")]
pub fn slice_bytes(
    repo: &crate::repository::Repository,
    slice: &slice::Slice,
) -> crate::error::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(slice.bytes as usize);
    for c in &slice.chunks {
        let blob = crate::id::BlobId::from(*c);
        bytes.extend_from_slice(&repo.read_blob(crate::blob::BlobKind::Data, &blob)?);
    }
    if bytes.len() as u64 != slice.bytes {
        return Err(crate::error::Error::corrupt(
            format!("oplog slice {}", slice.id.short()),
            "its chunks do not add up to its size",
        ));
    }
    Ok(bytes)
}

/// Slice objects that could not be read, with why.
pub type DamagedSlices = Vec<(crate::id::SliceId, String)>;

/// Every readable slice (ordered by oplog time), and the slice objects that cannot be
/// read, with why.
#[cfg(feature = "local-index")]
pub fn load_slices_and_damaged(
    repo: &crate::repository::Repository,
) -> crate::error::Result<(Vec<slice::Slice>, DamagedSlices)> {
    use rayon::prelude::*;
    let ids = crate::backend::list_ids::<crate::id::SliceId>(repo.backend(), "oplog/")?;
    // One small object per slice, thousands of them after weeks of `follow`: read at once.
    let loaded: Vec<_> = crate::backend::with_read_threads(repo.backend(), || {
        ids.par_iter()
            .map(|(id, _)| (*id, repo.load_slice(id)))
            .collect()
    });
    let mut out = Vec::new();
    let mut damaged = Vec::new();
    for (id, loaded) in loaded {
        match loaded {
            Ok(s) => out.push(s),
            Err(e @ crate::error::Error::Corrupt { .. }) => damaged.push((id, e.to_string())),
            Err(crate::error::Error::Missing(_)) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by_key(|s| (s.after, s.until));
    Ok((out, damaged))
}
