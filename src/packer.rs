//! Where sealed blobs become packs: fills data and tree packs, stores each finished pack,
//! then records groups of packs in index segments and merges them into the local index.
//!
//! Order per pack: pack object durable → (after a few packs) segment object durable →
//! local index updated. A crash in between leaves packs no segment lists; they are
//! unreferenced garbage that `prune` removes, never a dangling reference.

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::index::segment::{self, PackRecord};
use crate::pack::pack_path;
use crate::pack::writer::PackBuilder;
use crate::repository::Repository;

/// Packs per index segment: bounds how much a crash can orphan and how often we write.
const PACKS_PER_SEGMENT: usize = 8;

/// What a packer wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct PackerStats {
    /// Blobs stored.
    pub blobs: u64,
    /// Plaintext bytes of those blobs.
    pub raw_bytes: u64,
    /// Sealed bytes of those blobs.
    pub sealed_bytes: u64,
    /// Pack files written.
    pub packs: u64,
    /// Bytes of pack files written (blobs + trailers).
    pub pack_bytes: u64,
    /// Index segments written.
    pub segments: u64,
}

/// Accumulates sealed blobs into packs for one repository.
pub struct Packer<'r> {
    repo: &'r Repository,
    data: PackBuilder,
    tree: PackBuilder,
    pending: Vec<PackRecord>,
    stats: PackerStats,
    budget: Option<u64>,
}

impl<'r> Packer<'r> {
    /// A packer writing into `repo`.
    pub fn new(repo: &'r Repository) -> Self {
        Self {
            repo,
            data: PackBuilder::new(),
            tree: PackBuilder::new(),
            pending: Vec::new(),
            stats: PackerStats::default(),
            budget: None,
        }
    }

    /// Refuses to write more than `bytes` of packs (the repository quota's headroom).
    pub fn with_budget(mut self, bytes: Option<u64>) -> Self {
        self.budget = bytes;
        self
    }

    /// Adds one sealed blob; writes a pack when it reaches the target size.
    pub fn add(&mut self, kind: BlobKind, id: BlobId, sealed: &[u8], raw_len: u32) -> Result<()> {
        self.stats.blobs += 1;
        self.stats.raw_bytes += u64::from(raw_len);
        self.stats.sealed_bytes += sealed.len() as u64;
        let target = self.repo.config().pack_size as usize;
        let builder = match kind {
            BlobKind::Data => &mut self.data,
            BlobKind::Tree => &mut self.tree,
        };
        builder.add(kind, id, sealed, raw_len);
        if builder.len() >= target {
            let full = std::mem::take(builder);
            self.write_pack(full)?;
        }
        Ok(())
    }

    fn write_pack(&mut self, builder: PackBuilder) -> Result<()> {
        if builder.is_empty() {
            return Ok(());
        }
        let p = builder.finish(self.repo.key());
        if let Some(budget) = self.budget {
            let after = self.stats.pack_bytes + p.bytes.len() as u64;
            if after > budget {
                return Err(Error::Refused(format!(
                    "the repository quota would be exceeded: this run needs more than the \
                     {budget} bytes left (raise it with `repo settings --quota`, or forget \
                     and prune old snapshots); nothing of this run was committed"
                )));
            }
        }
        self.repo.backend().put(&pack_path(&p.id), &p.bytes)?;
        self.stats.packs += 1;
        self.stats.pack_bytes += p.bytes.len() as u64;
        self.pending.push(PackRecord {
            id: p.id,
            size: p.bytes.len() as u64,
            entries: p.entries,
        });
        if self.pending.len() >= PACKS_PER_SEGMENT {
            self.write_segment()?;
        }
        Ok(())
    }

    fn write_segment(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (id, bytes) = segment::seal(self.repo.key(), &self.pending);
        self.repo
            .backend()
            .put(&segment::segment_path(&id), &bytes)?;
        self.repo.index()?.insert(Some(&id), &self.pending)?;
        self.pending.clear();
        self.stats.segments += 1;
        Ok(())
    }

    /// Writes partial packs and the last segment, and makes the local index durable.
    pub fn finish(mut self) -> Result<PackerStats> {
        let data = std::mem::take(&mut self.data);
        self.write_pack(data)?;
        let tree = std::mem::take(&mut self.tree);
        self.write_pack(tree)?;
        self.write_segment()?;
        self.repo.index()?.flush()?;
        Ok(self.stats)
    }
}
