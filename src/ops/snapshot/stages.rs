//! The snapshot pipeline's parallel stages: chunkers (read a file, cut and hash chunks,
//! claim the new ones) and sealers (compress and encrypt), and what flows between them.

use super::*;

/// A new blob on its way to the sealers.
pub(super) struct SealJob {
    pub kind: BlobKind,
    pub id: BlobId,
    pub data: Vec<u8>,
}

/// A chunker's answer for one file: its chunks, the bytes read, and whether it changed
/// while being read.
pub(super) struct FileDone {
    pub seq: u64,
    pub result: std::result::Result<(Vec<ChunkId>, u64, bool), String>,
}

/// What the chunker stage works with.
pub(super) struct Stages<'a> {
    pub repo: &'a Repository,
    pub seen: &'a Seen,
    pub progress: &'a Progress,
    pub cancel: &'a CancelToken,
}

/// New blobs travel to the sealers in batches of about this many bytes (a message per
/// tiny blob would cost more than sealing it); a larger chunk travels alone.
const SEAL_BATCH_BYTES: usize = 512 << 10;

/// New blobs a chunker has claimed and not yet handed to the sealers.
pub(super) struct SealBatch<'a> {
    out: &'a Sender<Vec<SealJob>>,
    jobs: Vec<SealJob>,
    bytes: usize,
}

impl<'a> SealBatch<'a> {
    pub fn new(out: &'a Sender<Vec<SealJob>>) -> Self {
        Self {
            out,
            jobs: Vec::new(),
            bytes: 0,
        }
    }

    pub fn push(&mut self, job: SealJob) -> std::result::Result<(), ChunkError> {
        self.bytes += job.data.len();
        self.jobs.push(job);
        if self.bytes >= SEAL_BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> std::result::Result<(), ChunkError> {
        self.bytes = 0;
        if self.jobs.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.jobs);
        self.out.send(batch).map_err(|_| ChunkError::Stopped)
    }
}

/// Chunker stage: read each file, cut and hash chunks, hand new ones to the sealers. A
/// batch of files gets one answer, sent before the next batch is awaited (the assembler
/// may be waiting for it).
pub(super) fn chunk_files(
    st: &Stages,
    chunkers: (FileChunkers, Chunker),
    jobs: &Receiver<Vec<FileJob>>,
    done: &Sender<Vec<FileDone>>,
    seal: &Sender<Vec<SealJob>>,
) {
    let mut seal = SealBatch::new(seal);
    for batch in jobs {
        let mut answers = Vec::with_capacity(batch.len());
        for job in batch {
            let seq = job.seq;
            let chunker = if job.small_chunks {
                chunkers.1
            } else {
                // A file on disk by its size when opened; other content by the large one.
                chunkers
                    .0
                    .for_size(job.file.is_some().then_some(job.size_hint))
            };
            let result = match chunk_one(st, chunker, job, &mut seal) {
                Ok(r) => Ok(r),
                Err(ChunkError::Stopped) => return,
                Err(ChunkError::Failed(e)) => Err(e),
            };
            st.progress.done(1, 0);
            answers.push(FileDone { seq, result });
        }
        if done.send(answers).is_err() {
            return;
        }
    }
    // A closed channel means the pipeline stopped: the run is failing anyway.
    let _ = seal.flush();
}

pub(super) enum ChunkError {
    /// The pipeline is shutting down (or was cancelled).
    Stopped,
    /// This file could not be read; the snapshot goes on without it.
    Failed(String),
}

fn chunk_one(
    st: &Stages,
    chunker: Chunker,
    job: FileJob,
    seal: &mut SealBatch,
) -> std::result::Result<(Vec<ChunkId>, u64, bool), ChunkError> {
    let failed = |e: &dyn std::fmt::Display| ChunkError::Failed(e.to_string());
    let mut expect = None;
    let file: Box<dyn std::io::Read + Send> = match (job.file, job.open) {
        (Some((f, e)), _) => {
            let handle = f.try_clone().map_err(|e| failed(&e))?;
            // No further than the size the walk saw: a file appended to faster than it is
            // read (a busy log) would otherwise be read for ever, filling the repository's
            // disk; the growth shows as a change while read.
            let size = e.size;
            expect = Some((handle, e));
            if job.size_hint >= crate::source::sparse::SPARSE_MIN {
                Box::new(std::io::Read::take(
                    crate::source::sparse::SparseFile::new(f),
                    size,
                ))
            } else {
                Box::new(std::io::Read::take(f, size))
            }
        }
        (None, Some(open)) => open().map_err(|e| failed(&e))?,
        (None, None) => return Err(ChunkError::Failed("nothing to read".into())),
    };
    let mut ids = Vec::new();
    let mut read = 0u64;
    // The id of the last all-zero chunk: a hole or preallocated region is a run of equal
    // chunks, hashed once.
    let mut zero: Option<(usize, ChunkId)> = None;
    let mut chunks = chunker.chunks_with_hint(file, job.size_hint);
    while let Some(chunk) = chunks.next_chunk() {
        if st.cancel.is_cancelled() {
            return Err(ChunkError::Stopped);
        }
        // Lent, not copied: only a chunk the repository lacks is taken.
        let data = chunk.map_err(|e| failed(&e))?;
        read += data.len() as u64;
        st.progress.bytes.fetch_add(data.len() as u64, Relaxed);
        let id = match zero {
            Some((len, id)) if len == data.len() && crate::chunk::is_zero(data) => id,
            _ => {
                let id = st.repo.hasher().chunk_id(data);
                if data.len() >= 1 << 16 && crate::chunk::is_zero(data) {
                    zero = Some((data.len(), id));
                }
                id
            }
        };
        ids.push(id);
        let is_new = st
            .seen
            .claim(st.repo, BlobKind::Data, id.into())
            .map_err(|e| failed(&e))?;
        if is_new {
            let job = SealJob {
                kind: BlobKind::Data,
                id: id.into(),
                data: chunks.take_chunk(),
            };
            seal.push(job)?;
        }
    }
    // Written to while we read: what we stored may mix old and new bytes. Say so. Bytes
    // past what was read count too, even when the size did not change (a pseudo-file that
    // reports size 0 yet has content).
    let changed = expect.is_some_and(|(f, e)| {
        read != e.size
            || crate::dirfd::fstat(&f).map_or(true, |now| walk::Expect::of(&now) != e)
            || std::os::unix::fs::FileExt::read_at(&f, &mut [0u8], read).map_or(true, |n| n > 0)
    });
    Ok((ids, read, changed))
}

/// Sealer stage: compress and encrypt, small blobs in units (each sealer keeps its own
/// open units and seals what is left when the jobs end).
pub(super) fn seal_blobs(
    repo: &Repository,
    jobs: &Receiver<Vec<SealJob>>,
    out: &Sender<SealedUnit>,
) {
    let mut grouper = Grouper::new(repo);
    for job in jobs.iter().flatten() {
        if let Some(sealed) = grouper.push(job.kind, job.id, &job.data) {
            if out.send(sealed).is_err() {
                return;
            }
        }
    }
    if let Some(sealed) = grouper.flush() {
        // A closed channel means the packer stopped: the run is failing anyway.
        let _ = out.send(sealed);
    }
}
