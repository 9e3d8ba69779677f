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

pub mod coverage;
#[cfg(feature = "mongo")]
pub mod diff;
#[cfg(feature = "mongo")]
pub mod follow;
#[cfg(feature = "mongo")]
pub mod namespaces;
#[cfg(feature = "mongo")]
pub mod replay;
pub mod slice;

/// Every slice in the repository, oldest first (by covered time).
#[cfg(feature = "local-index")]
pub fn load_slices(
    repo: &crate::repository::Repository,
) -> crate::error::Result<Vec<slice::Slice>> {
    let mut out = Vec::new();
    for o in repo.backend().list("oplog/")? {
        let Some(id) = o
            .path
            .rsplit('/')
            .next()
            .and_then(|n| n.parse::<crate::id::SliceId>().ok())
        else {
            continue;
        };
        out.push(repo.load_slice(&id)?);
    }
    out.sort_by_key(|s| (s.after, s.until));
    Ok(out)
}
