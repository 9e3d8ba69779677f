//! Where backup input comes from. Each source turns live data into tree nodes and content
//! streams; the backup pipeline (ops/snapshot) never looks inside them.

pub mod exclude;
pub mod fs;
pub mod sparse;

use std::io::Read;

/// Opens one entry's content when a chunker is ready for it.
pub type Opener = Box<dyn FnOnce() -> std::io::Result<Box<dyn Read + Send>> + Send>;

/// One file-like entry of a [`VirtualSource`].
pub struct VirtualEntry {
    /// Directory names below the source's root directory.
    pub dirs: Vec<String>,
    /// Entry name.
    pub name: String,
    /// Its content.
    pub open: Opener,
    /// Whether to cut it with the config's small-chunk (BSON stream) parameters.
    pub small_chunks: bool,
    /// The parent snapshot's entry, when the source vouches the content is unchanged
    /// since: stored as it is (its mtime too), `open` is not called.
    pub reuse: Option<crate::tree::Node>,
    /// Its mtime when it is not the snapshot's time: for an entry whose content the
    /// source vouches unchanged since an earlier snapshot read it, that snapshot's time,
    /// so that an unchanged entry, and the tree of its directory, stay byte for byte
    /// what they were (nothing rewritten for them).
    pub mtime: Option<crate::tree::Timestamp>,
}

/// A source that is not a directory tree (a database): it lists file-like entries under
/// one top-level directory of the snapshot and opens their content on demand.
pub trait VirtualSource: Send + Sync {
    /// Name of the top-level snapshot directory (e.g. "mongodb").
    fn root(&self) -> &str;
    /// Source kind recorded in the snapshot (e.g. "mongodb").
    fn kind(&self) -> &str;
    /// What it is, without secrets (e.g. a connection string without credentials); also
    /// one of the snapshot's `paths`, so each server is its own series.
    fn description(&self) -> String;
    /// Every entry, grouped by `dirs` (entries of one directory are consecutive).
    fn entries(&self) -> Vec<VirtualEntry>;
    /// Checks the snapshot tree `root` about to be committed reads back as what this
    /// source saved; an error stops the commit, a note goes into the report.
    #[cfg(feature = "local-index")]
    fn verify(
        &self,
        _repo: &crate::repository::Repository,
        _root: crate::id::TreeId,
    ) -> crate::error::Result<Option<String>> {
        Ok(None)
    }
    /// Learns the run's parent snapshot (found under the run's lock, before `entries`),
    /// so that it can vouch for unchanged entries; returns a note for the report.
    #[cfg(feature = "local-index")]
    fn use_parent(
        &self,
        _repo: &crate::repository::Repository,
        _parent: &crate::snapshot::Snapshot,
    ) -> Option<String> {
        None
    }
}
