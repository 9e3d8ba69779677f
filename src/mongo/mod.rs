//! Everything MongoDB: the connection and its errors ([`client`]), how collections sit in
//! a snapshot tree ([`layout`]) and how namespaces are named and renamed ([`ns`]), reading
//! collections into a snapshot ([`export`]), writing them back ([`restore`], including
//! `--at`), comparing a live server with a snapshot ([`scan`]), and the oplog ([`oplog`]:
//! capture, coverage, replay).
//!
//! ```text
//! export    listCollections/listIndexes + documents in _id order at one cluster time
//!           → /mongodb/<db>/<coll>/{data.bson,metadata.bson} in the snapshot tree
//! restore   tree → collections (options, indexes) → documents in batches → server
//! follow    oplog → slices (between snapshots)
//! --at T    newest snapshot ≤ T → restore → replay slices' entries in (S, T]
//! ```
//! Only [`uri`] and the slice records of [`oplog`] are built without the driver (the
//! repository's format and fuzz targets need them).

#[cfg(feature = "mongo")]
pub mod client;
#[cfg(feature = "mongo")]
pub mod export;
#[cfg(feature = "mongo")]
mod identity;
#[cfg(feature = "mongo")]
pub mod layout;
#[cfg(feature = "mongo")]
pub mod ns;
pub mod oplog;
#[cfg(feature = "mongo")]
pub mod restore;
#[cfg(feature = "mongo")]
pub mod scan;
pub mod uri;
