//! The one write path for blobs: is it new (the dedup rule, [`Claims`])? → seal (compress,
//! encrypt, small blobs in units: [`Grouper`]) → pack → durable pack → index segment ([`crate::packer`]).
//!
//! `snapshot` runs these stages on its own threads (claims from the chunkers, sealing on
//! the sealers, packing on the packer), with the same [`Claims`] and [`Grouper`]; every
//! other writer (`copy`, `mongodb follow`, prune's repack) goes through [`BlobWriter`].

use std::collections::HashSet;
use std::sync::Mutex;

use crate::blob::BlobKind;
use crate::chunk::Chunker;
use crate::error::Result;
use crate::id::{BlobId, ChunkId};
use crate::index::segment::PackRecord;
use crate::packer::{Packer, PackerStats};
use crate::repository::Repository;
use crate::unit::Grouper;

/// Blob ids a run is storing that the index does not list yet, so a blob met twice is
/// stored once. Ids leave once their segment is in the index ([`Claims::indexed`]), so
/// the set is bounded by what is in flight, not by the size of the backup.
#[derive(Default)]
pub struct Claims(Mutex<HashSet<BlobId>>);

impl Claims {
    /// Claims a blob for storing: false when the index or this run already has it. No
    /// segment lists a pack prune marked for deletion (it rewrites the segments first), so
    /// the index never offers such a pack to dedup against.
    ///
    /// Checks the set before the index, while the pack store adds to the index before it
    /// removes from the set: an id is always in at least one of the two places looked at.
    pub fn claim(&self, repo: &Repository, kind: BlobKind, id: BlobId) -> Result<bool> {
        if self.lock().contains(&id) {
            return Ok(false);
        }
        if repo.index()?.contains(kind, &id)? {
            return Ok(false);
        }
        Ok(self.lock().insert(id))
    }

    /// Forgets the blobs of packs the local index now lists.
    pub fn indexed(&self, packs: &[PackRecord]) {
        let mut set = self.lock();
        for e in packs.iter().flat_map(|p| &p.entries) {
            set.remove(&e.id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<BlobId>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Stores blobs one at a time: what the repository lacks is sealed and packed; packs are
/// written (and listed in segments) as they fill, the rest by [`BlobWriter::finish`].
/// Nothing stored is referenced until the caller writes the object that uses it (a
/// snapshot, a slice) after `finish`.
pub struct BlobWriter<'r> {
    repo: &'r Repository,
    grouper: Grouper<'r>,
    packer: Packer<'r>,
    claims: Claims,
}

impl<'r> BlobWriter<'r> {
    /// A writer into `repo`.
    pub fn new(repo: &'r Repository) -> Self {
        Self {
            repo,
            grouper: Grouper::new(repo),
            packer: Packer::new(repo),
            claims: Claims::default(),
        }
    }

    /// Stores `data` as blob `id` unless the repository or this writer has it already;
    /// true when it was stored.
    pub fn store(&mut self, kind: BlobKind, id: BlobId, data: &[u8]) -> Result<bool> {
        if !self.claims.claim(self.repo, kind, id)? {
            return Ok(false);
        }
        self.group(kind, id, data)?;
        Ok(true)
    }

    fn group(&mut self, kind: BlobKind, id: BlobId, data: &[u8]) -> Result<()> {
        match self.grouper.push(kind, id, data) {
            Some(sealed) => self.packer.add_unit(&sealed),
            None => Ok(()),
        }
    }

    /// Cuts `buf` into chunks with `chunker`, stores the new ones, and returns the ids
    /// in order.
    pub fn store_chunks(&mut self, chunker: &Chunker, buf: &[u8]) -> Result<Vec<ChunkId>> {
        let mut ids = Vec::new();
        let mut start = 0;
        for len in chunker.cut_points(buf) {
            let data = &buf[start..start + len];
            start += len;
            let id = self.repo.hasher().chunk_id(data);
            self.store(BlobKind::Data, BlobId::from(id), data)?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Moves a blob the index already lists (same repository, same key) into a new
    /// pack: prune's repack, repair's salvage. `data` is its plaintext as
    /// [`Repository::open_blob`] verified it from `sealed` (damage is never carried
    /// forward). A blob alone in its envelope is copied as it is; one from a unit joins a
    /// new unit (its old unit's other blobs may be dead).
    pub fn carry(
        &mut self,
        kind: BlobKind,
        id: BlobId,
        sealed: &[u8],
        loc: &crate::index::BlobLocation,
        data: &[u8],
    ) -> Result<()> {
        if loc.is_solo() {
            self.packer.add(kind, id, sealed, loc.raw_length)
        } else {
            self.group(kind, id, data)
        }
    }

    /// Writes the partial packs and the last segment; everything stored is then durable
    /// and listed by the index.
    pub fn finish(mut self) -> Result<PackerStats> {
        if let Some(sealed) = self.grouper.flush() {
            self.packer.add_unit(&sealed)?;
        }
        self.packer.finish()
    }
}
