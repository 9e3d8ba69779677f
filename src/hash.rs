//! Blob naming: keyed BLAKE3, so ids reveal nothing about content to anyone without the key.

use crate::id::{ChunkId, TreeId};

/// Computes blob ids with the repository's id key.
#[derive(Clone)]
pub struct IdHasher {
    key: [u8; 32],
}

impl IdHasher {
    /// A hasher for the given 32-byte id key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self { key: *key }
    }

    /// Id of a data chunk.
    pub fn chunk_id(&self, data: &[u8]) -> ChunkId {
        ChunkId(*blake3::keyed_hash(&self.key, data).as_bytes())
    }

    /// Id of an encoded tree.
    pub fn tree_id(&self, encoded: &[u8]) -> TreeId {
        TreeId(*blake3::keyed_hash(&self.key, encoded).as_bytes())
    }
}

/// Unkeyed BLAKE3 of whole files (packs, index segments), which are ciphertext already.
pub fn content_hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}
