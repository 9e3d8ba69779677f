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

/// Chunker stage: read each file, cut and hash chunks, hand new ones to the sealers.
pub(super) fn chunk_files(
    st: &Stages,
    chunkers: (Chunker, Chunker),
    jobs: &Receiver<FileJob>,
    done: &Sender<FileDone>,
    seal: &Sender<SealJob>,
) {
    for job in jobs {
        let seq = job.seq;
        let chunker = if job.small_chunks {
            chunkers.1
        } else {
            chunkers.0
        };
        let result = match chunk_one(st, chunker, job, seal) {
            Ok(r) => Ok(r),
            Err(ChunkError::Stopped) => return,
            Err(ChunkError::Failed(e)) => Err(e),
        };
        st.progress.done(1, 0);
        if done.send(FileDone { seq, result }).is_err() {
            return;
        }
    }
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
    seal: &Sender<SealJob>,
) -> std::result::Result<(Vec<ChunkId>, u64, bool), ChunkError> {
    let failed = |e: &dyn std::fmt::Display| ChunkError::Failed(e.to_string());
    let mut expect = None;
    let file: Box<dyn std::io::Read + Send> = match (job.file, job.open) {
        (Some((f, e)), _) => {
            let handle = f.try_clone().map_err(|e| failed(&e))?;
            expect = Some((handle, e));
            Box::new(f)
        }
        (None, Some(open)) => open().map_err(|e| failed(&e))?,
        (None, None) => return Err(ChunkError::Failed("nothing to read".into())),
    };
    let mut ids = Vec::new();
    let mut read = 0u64;
    for chunk in chunker.chunks_with_hint(file, job.size_hint) {
        if st.cancel.is_cancelled() {
            return Err(ChunkError::Stopped);
        }
        let data = chunk.map_err(|e| failed(&e))?;
        read += data.len() as u64;
        st.progress.bytes.fetch_add(data.len() as u64, Relaxed);
        let id = st.repo.hasher().chunk_id(&data);
        ids.push(id);
        let is_new = st
            .seen
            .claim(st.repo, BlobKind::Data, id.into())
            .map_err(|e| failed(&e))?;
        if is_new {
            let job = SealJob {
                kind: BlobKind::Data,
                id: id.into(),
                data,
            };
            seal.send(job).map_err(|_| ChunkError::Stopped)?;
        }
    }
    // Written to while we read: what we stored may mix old and new bytes. Say so.
    let changed = expect.is_some_and(|(f, e)| {
        read != e.size || crate::dirfd::fstat(&f).map_or(true, |now| walk::Expect::of(&now) != e)
    });
    Ok((ids, read, changed))
}

/// Sealer stage: compress and encrypt, small blobs in units (each sealer keeps its own
/// open units and seals what is left when the jobs end).
pub(super) fn seal_blobs(repo: &Repository, jobs: &Receiver<SealJob>, out: &Sender<SealedUnit>) {
    let mut grouper = Grouper::new(repo);
    for job in jobs {
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
