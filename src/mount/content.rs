//! Reading file content through the mount: a file's chunk offsets (from the index's
//! plaintext lengths, so a read at any offset fetches only the chunks it touches), a small
//! byte-bounded chunk cache shared by all open files, and the streamed JSON-lines view of
//! a collection's BSON stream.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::{BlobId, ChunkId};
use crate::repository::Repository;

/// Bytes of decoded chunks kept for reads that come back to them.
pub const CACHE_BYTES: usize = 64 << 20;

/// What the mount fetched from the repository.
#[derive(Debug, Default, Serialize)]
pub struct Fetched {
    /// Chunks read from the repository (cache misses).
    pub chunks: AtomicU64,
    /// Their plaintext bytes.
    pub bytes: AtomicU64,
    /// Reads answered.
    pub reads: AtomicU64,
}

/// The cached chunks, their use order (least recent first) and their bytes.
#[derive(Default)]
struct Kept {
    chunks: HashMap<ChunkId, Arc<Vec<u8>>>,
    order: VecDeque<ChunkId>,
    bytes: usize,
}

/// Decoded chunks, least recently used dropped first once over [`CACHE_BYTES`].
pub struct ChunkCache {
    repo: Arc<Repository>,
    inner: Mutex<Kept>,
    pub fetched: Fetched,
}

impl ChunkCache {
    pub fn new(repo: Arc<Repository>) -> Self {
        ChunkCache {
            repo,
            inner: Mutex::new(Kept::default()),
            fetched: Fetched::default(),
        }
    }

    /// Chunk `id`'s plaintext, from the cache or the repository.
    pub fn get(&self, id: &ChunkId) -> Result<Arc<Vec<u8>>> {
        {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(b) = g.chunks.get(id).cloned() {
                g.order.retain(|c| c != id);
                g.order.push_back(*id);
                return Ok(b);
            }
        }
        let b = Arc::new(self.repo.read_blob(BlobKind::Data, &BlobId::from(*id))?);
        self.fetched.chunks.fetch_add(1, Ordering::Relaxed);
        self.fetched
            .bytes
            .fetch_add(b.len() as u64, Ordering::Relaxed);
        tracing::debug!(chunk = %id.short(), bytes = b.len(), "mount: fetched a chunk");
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.chunks.insert(*id, b.clone()).is_none() {
            g.order.push_back(*id);
            g.bytes += b.len();
        }
        while g.bytes > CACHE_BYTES {
            let Some(old) = g.order.pop_front() else {
                break;
            };
            if let Some(v) = g.chunks.remove(&old) {
                g.bytes -= v.len();
            }
        }
        Ok(b)
    }

    /// Where each chunk of `content` starts, and the total (one index lookup per chunk,
    /// no chunk read).
    pub fn offsets(&self, content: &[ChunkId]) -> Result<(Vec<u64>, u64)> {
        let mut starts = Vec::with_capacity(content.len());
        let mut at = 0u64;
        for c in content {
            starts.push(at);
            at += u64::from(
                self.repo
                    .locate(BlobKind::Data, &BlobId::from(*c))?
                    .raw_length,
            );
        }
        Ok((starts, at))
    }

    /// Up to `size` bytes of the file made of `content` (chunks starting at `starts`,
    /// `total` bytes in all) from `offset`.
    pub fn read(
        &self,
        content: &[ChunkId],
        starts: &[u64],
        total: u64,
        offset: u64,
        size: usize,
    ) -> Result<Vec<u8>> {
        self.fetched.reads.fetch_add(1, Ordering::Relaxed);
        let end = total.min(offset.saturating_add(size as u64));
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        if offset >= end {
            return Ok(out);
        }
        // The chunk holding `offset`: the last one starting at or before it.
        let mut i = starts.partition_point(|&s| s <= offset).saturating_sub(1);
        let mut at = offset;
        while at < end && i < content.len() {
            let chunk = self.get(&content[i])?;
            let from = (at - starts[i]) as usize;
            let want = ((end - at) as usize).min(chunk.len().saturating_sub(from));
            if want == 0 {
                return Err(Error::corrupt(
                    "a file read through the mount",
                    "its chunks are shorter than the index says",
                ));
            }
            out.extend_from_slice(&chunk[from..from + want]);
            at += want as u64;
            i += 1;
        }
        Ok(out)
    }
}

/// A collection's documents as canonical extended JSON lines, produced as a reader asks
/// for them: sequential reads continue where the last stopped; a read behind the produced
/// window starts over (the size is unknown until the end, so these files are opened with
/// direct I/O and report size 0).
pub struct JsonLines {
    content: Vec<ChunkId>,
    ns: String,
    /// Next chunk to decode.
    next: usize,
    /// BSON bytes not yet a whole document.
    pending: Vec<u8>,
    /// JSON produced and not yet read, starting at file offset `start`.
    out: Vec<u8>,
    start: u64,
}

impl JsonLines {
    pub fn new(content: Vec<ChunkId>, ns: String) -> Self {
        JsonLines {
            content,
            ns,
            next: 0,
            pending: Vec::new(),
            out: Vec::new(),
            start: 0,
        }
    }

    /// Up to `size` bytes from `offset`.
    pub fn read(&mut self, cache: &ChunkCache, offset: u64, size: usize) -> Result<Vec<u8>> {
        cache.fetched.reads.fetch_add(1, Ordering::Relaxed);
        if offset < self.start {
            *self = JsonLines::new(std::mem::take(&mut self.content), self.ns.clone());
        }
        // Drop what lies before `offset`, then produce until `size` bytes are there.
        loop {
            let have_end = self.start + self.out.len() as u64;
            if offset >= self.start && offset <= have_end {
                let skip = (offset - self.start) as usize;
                self.out.drain(..skip);
                self.start = offset;
            } else if offset > have_end {
                self.start = have_end;
                self.out.clear();
            }
            if self.out.len() >= size || !self.produce(cache)? {
                break;
            }
        }
        let n = size.min(self.out.len());
        Ok(self.out[..n].to_vec())
    }

    /// Converts the documents of one more chunk; false at the end.
    fn produce(&mut self, cache: &ChunkCache) -> Result<bool> {
        let bad = |why: String| Error::corrupt(format!("saved documents of {}", self.ns), why);
        let Some(id) = self.content.get(self.next) else {
            if !self.pending.is_empty() {
                return Err(bad("truncated document".into()));
            }
            return Ok(false);
        };
        self.pending.extend_from_slice(&cache.get(id)?);
        self.next += 1;
        let out = &mut self.out;
        let at = crate::mongo::layout::whole_documents(&self.pending, &self.ns, |d| {
            let doc = mongodb::bson::Document::from_reader(d).map_err(|e| bad(e.to_string()))?;
            let line = mongodb::bson::Bson::Document(doc).into_canonical_extjson();
            serde_json::to_writer(&mut *out, &line)
                .map_err(|e| Error::Internal(format!("a document as JSON: {e}")))?;
            out.push(b'\n');
            Ok(())
        })?;
        self.pending.drain(..at);
        Ok(true)
    }
}
