//! Where sealed blobs become packs: fills data and tree packs ([`Packer`]), then stores
//! each finished pack and records groups of packs in index segments ([`PackStore`]).
//!
//! Order per pack: pack object durable → (after a few packs) segment object durable →
//! local index updated. A crash in between leaves packs no segment lists; they are
//! unreferenced garbage that `prune` removes, never a dangling reference.
//!
//! The two halves can run on different threads ([`Packer::queued`]), so building the next
//! pack overlaps with writing (and fsyncing, or uploading) the previous ones; object stores
//! take several pack uploads at once.

use std::collections::VecDeque;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::backend::Backend;
use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::index::segment::{self, PackRecord};
use crate::pack::pack_path;
use crate::pack::writer::{FinishedPack, PackBuilder};
use crate::repository::Repository;
use crate::unit::SealedUnit;

/// Packs per index segment: bounds how much a crash can orphan and how often we write.
const PACKS_PER_SEGMENT: usize = 8;

/// Blob entries per index segment: packs of tiny blobs hold ~50,000 each, and until its
/// segment is written every entry waits in memory twice (here, and in the run's claims),
/// so a segment is also written once this many are waiting.
const ENTRIES_PER_SEGMENT: usize = 1 << 16;

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

/// Where finished packs go: stored right away, or queued for a [`PackStore`] thread.
enum Sink<'r> {
    Inline(PackStore<'r>),
    Queue(Sender<FinishedPack>),
}

/// Accumulates sealed blobs into packs for one repository.
pub struct Packer<'r> {
    repo: &'r Repository,
    data: PackBuilder,
    tree: PackBuilder,
    sink: Sink<'r>,
    stats: PackerStats,
    budget: Option<u64>,
}

impl<'r> Packer<'r> {
    /// A packer that stores each pack itself.
    pub fn new(repo: &'r Repository) -> Self {
        Self::with_sink(repo, Sink::Inline(PackStore::new(repo)))
    }

    /// A packer that hands finished packs to a [`PackStore`] running elsewhere; that
    /// store's `finish` completes the run.
    pub fn queued(repo: &'r Repository, packs: Sender<FinishedPack>) -> Self {
        Self::with_sink(repo, Sink::Queue(packs))
    }

    fn with_sink(repo: &'r Repository, sink: Sink<'r>) -> Self {
        Self {
            repo,
            data: PackBuilder::new(),
            tree: PackBuilder::new(),
            sink,
            stats: PackerStats::default(),
            budget: None,
        }
    }

    /// Refuses to write more than `bytes` of packs (the repository quota's headroom).
    pub fn with_budget(mut self, bytes: Option<u64>) -> Self {
        self.budget = bytes;
        self
    }

    /// Adds one sealed blob alone in its envelope (copied as it is: prune's repack,
    /// repair's salvage); writes a pack when it reaches the target size.
    pub fn add(&mut self, kind: BlobKind, id: BlobId, sealed: &[u8], raw_len: u32) -> Result<()> {
        self.stats.blobs += 1;
        self.stats.raw_bytes += u64::from(raw_len);
        self.stats.sealed_bytes += sealed.len() as u64;
        self.builder(kind).add(kind, id, sealed, raw_len);
        self.fill_check(kind)
    }

    /// Adds one envelope from a [`crate::unit::Grouper`]: a lone blob or a unit.
    pub fn add_unit(&mut self, unit: &SealedUnit) -> Result<()> {
        self.stats.blobs += unit.blobs.len() as u64;
        self.stats.raw_bytes += u64::from(unit.raw_length);
        self.stats.sealed_bytes += unit.bytes.len() as u64;
        self.builder(unit.kind).add_unit(unit);
        self.fill_check(unit.kind)
    }

    fn builder(&mut self, kind: BlobKind) -> &mut PackBuilder {
        match kind {
            BlobKind::Data => &mut self.data,
            BlobKind::Tree => &mut self.tree,
        }
    }

    /// Writes the pack of `kind` once it reaches the target size.
    fn fill_check(&mut self, kind: BlobKind) -> Result<()> {
        let target = self.repo.config().pack_size as usize;
        let builder = self.builder(kind);
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
        let p = builder.finish(self.repo.key(), self.repo.config().structure_version())?;
        let after = self.stats.pack_bytes + p.bytes.len() as u64;
        if let Some(budget) = self.budget.filter(|b| after > *b) {
            return Err(Error::Refused(format!(
                "the repository quota would be exceeded: this run needs more than the \
                 {budget} bytes left (raise it with `repo settings --quota`, or forget \
                 and prune old snapshots); nothing of this run was committed"
            )));
        }
        self.stats.packs += 1;
        self.stats.pack_bytes = after;
        match &mut self.sink {
            Sink::Inline(store) => store.store(p),
            Sink::Queue(tx) => tx
                .send(p)
                .map_err(|_| Error::Internal("pack store stopped early".into())),
        }
    }

    /// Writes partial packs; inline, also the last segment and the durable local index.
    pub fn finish(mut self) -> Result<PackerStats> {
        let data = std::mem::take(&mut self.data);
        self.write_pack(data)?;
        let tree = std::mem::take(&mut self.tree);
        self.write_pack(tree)?;
        if let Sink::Inline(store) = self.sink {
            self.stats.segments = store.finish()?;
        }
        Ok(self.stats)
    }
}

/// Called with the packs of each segment once the local index lists them.
type IndexedHook<'r> = Box<dyn FnMut(&[PackRecord]) + Send + 'r>;

/// One pack upload running on its own thread; yields the pack's record once durable.
type Upload = JoinHandle<Result<PackRecord>>;

/// Stores finished packs durably and lists them in index segments.
///
/// Up to [`Backend::parallel_puts`](crate::backend::Backend::parallel_puts) packs are
/// uploaded at once; a segment only ever lists packs whose upload has returned.
pub struct PackStore<'r> {
    repo: &'r Repository,
    uploads: VecDeque<Upload>,
    parallel: usize,
    pending: Vec<PackRecord>,
    pending_entries: usize,
    segments: u64,
    indexed: Option<IndexedHook<'r>>,
}

impl<'r> PackStore<'r> {
    /// A store writing into `repo`.
    pub fn new(repo: &'r Repository) -> Self {
        Self {
            repo,
            uploads: VecDeque::new(),
            parallel: repo.backend().parallel_puts().max(1),
            pending: Vec::new(),
            pending_entries: 0,
            segments: 0,
            indexed: None,
        }
    }

    /// Runs `hook` after each segment's packs are in the local index.
    pub fn on_indexed(mut self, hook: impl FnMut(&[PackRecord]) + Send + 'r) -> Self {
        self.indexed = Some(Box::new(hook));
        self
    }

    /// Starts making one pack durable (waiting for an earlier one when enough are in
    /// flight); every few durable packs, writes their segment.
    pub fn store(&mut self, p: FinishedPack) -> Result<()> {
        if self.parallel == 1 {
            let record = upload(self.repo.backend(), p)?;
            return self.stored(record);
        }
        while self.uploads.len() >= self.parallel {
            self.wait_oldest()?;
        }
        let backend = self.repo.shared_backend();
        self.uploads
            .push_back(std::thread::spawn(move || upload(backend.as_ref(), p)));
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<()> {
        let Some(h) = self.uploads.pop_front() else {
            return Ok(());
        };
        let record = h
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("pack upload thread panicked".into())))?;
        self.stored(record)
    }

    fn stored(&mut self, record: PackRecord) -> Result<()> {
        self.pending_entries += record.entries.len();
        self.pending.push(record);
        if self.pending.len() >= PACKS_PER_SEGMENT || self.pending_entries >= ENTRIES_PER_SEGMENT {
            self.write_segment()?;
        }
        Ok(())
    }

    fn write_segment(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (id, bytes) = segment::seal(
            self.repo.key(),
            self.repo.config().structure_version(),
            &self.pending,
        )?;
        self.repo
            .backend()
            .put(&segment::segment_path(&id), &bytes)?;
        self.repo.index()?.insert(Some(&id), &self.pending)?;
        if let Some(hook) = &mut self.indexed {
            hook(&self.pending);
        }
        self.pending.clear();
        self.pending_entries = 0;
        self.segments += 1;
        Ok(())
    }

    /// Waits for every upload, writes the last segment and makes the local index durable;
    /// returns segments written.
    pub fn finish(mut self) -> Result<u64> {
        while !self.uploads.is_empty() {
            self.wait_oldest()?;
        }
        self.write_segment()?;
        self.repo.index()?.flush()?;
        Ok(self.segments)
    }
}

impl Drop for PackStore<'_> {
    /// On an error path, lets running uploads end before the caller reports and exits, so
    /// none is cut off half-way (harmless for the repository, but untidy on SFTP).
    fn drop(&mut self) {
        for h in self.uploads.drain(..) {
            let _ = h.join();
        }
    }
}

fn upload(backend: &dyn Backend, p: FinishedPack) -> Result<PackRecord> {
    backend.put(&pack_path(&p.id), &p.bytes)?;
    tracing::debug!(
        "wrote pack {} ({} bytes, {} blobs)",
        p.id.short(),
        p.bytes.len(),
        p.entries.len()
    );
    Ok(PackRecord {
        id: p.id,
        size: p.bytes.len() as u64,
        entries: p.entries,
    })
}
