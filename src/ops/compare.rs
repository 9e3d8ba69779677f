//! Whether a live file holds a stored file's content: read it in the lengths of the stored
//! chunks and hash each piece. Re-cutting it with this repository's chunker instead would
//! only work for files this repository cut: a snapshot copied from another repository was
//! cut with that repository's seed (and perhaps its parameters), and so is a file that
//! changed size while it was read (format-spec/chunking.md).

use std::io::Read;

use crate::blob::BlobKind;
use crate::id::{BlobId, ChunkId};
use crate::repository::Repository;

/// Whether `live` holds exactly the chunks `content`, in order, and nothing after them.
/// A chunk the index does not know, a short read or an I/O error all answer "no": the
/// callers then rewrite the file (restore) or report it (scan).
pub fn holds_content(repo: &Repository, mut live: impl Read, content: &[ChunkId]) -> bool {
    let mut buf = Vec::new();
    for id in content {
        let Ok(loc) = repo.locate(BlobKind::Data, &BlobId::from(*id)) else {
            return false;
        };
        let len = loc.raw_length as usize;
        // A length no config allows is damage, not a reason to allocate it.
        if len > crate::chunk::MAX_CHUNK_LIMIT as usize {
            return false;
        }
        buf.resize(len, 0);
        if live.read_exact(&mut buf).is_err() || repo.hasher().chunk_id(&buf) != *id {
            return false;
        }
    }
    // Nothing may follow the last chunk.
    matches!(live.read(&mut [0u8; 1]), Ok(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::chunk::{Chunker, ChunkerParams};
    use crate::config::RepoConfig;
    use crate::key::KdfParams;
    use crate::writer::BlobWriter;

    #[test]
    fn content_cut_with_another_seed_or_other_limits_still_compares_equal() {
        let dir = tempfile::tempdir().unwrap();
        let backend = std::sync::Arc::new(MemoryBackend::new());
        let kdf = KdfParams::with_costs(256, 1, 1);
        Repository::init(&*backend, b"pw", RepoConfig::new_default(), kdf).unwrap();
        let repo = Repository::open(backend, b"pw", dir.path()).unwrap();
        let data: Vec<u8> = (0..600_000u32)
            .flat_map(|i| (i * 2654435761).to_le_bytes())
            .collect();
        for (params, seed) in [
            (ChunkerParams::SMALL_FILES, 1),
            (ChunkerParams::SMALL_FILES, 99),
            (ChunkerParams::FILES, 5),
        ] {
            let chunker = Chunker::new(params, seed);
            let mut w = BlobWriter::new(&repo);
            let ids = w.store_chunks(&chunker, &data).unwrap();
            w.finish().unwrap();
            assert!(holds_content(&repo, &data[..], &ids));
            let mut other = data.clone();
            other[300_000] ^= 1;
            assert!(!holds_content(&repo, &other[..], &ids));
            assert!(!holds_content(&repo, &data[..data.len() - 1], &ids));
            let mut longer = data.clone();
            longer.push(0);
            assert!(!holds_content(&repo, &longer[..], &ids));
        }
        assert!(!holds_content(&repo, &b"x"[..], &[ChunkId([7; 32])]));
        assert!(holds_content(&repo, &b""[..], &[]));
        assert!(!holds_content(&repo, &b"x"[..], &[]));
    }
}
