//! Builds one pack in memory: append sealed blobs, then seal the trailer and name the pack.

use super::{PackEntry, ENTRY_LEN, TRAILER_MAGIC, TRAILER_VERSION};
use crate::blob::BlobKind;
use crate::crypto::MasterKey;
use crate::hash::content_hash;
use crate::id::{BlobId, PackId};

/// A pack under construction.
#[derive(Default)]
pub struct PackBuilder {
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

/// A finished pack, ready to be stored under its id.
pub struct FinishedPack {
    /// BLAKE3 of `bytes`.
    pub id: PackId,
    /// The complete file.
    pub bytes: Vec<u8>,
    /// Its blobs, as the trailer lists them.
    pub entries: Vec<PackEntry>,
}

impl PackBuilder {
    /// An empty pack.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one sealed blob.
    pub fn add(&mut self, kind: BlobKind, id: BlobId, sealed: &[u8], raw_length: u32) {
        self.entries.push(PackEntry {
            kind,
            id,
            offset: self.buf.len() as u64,
            length: sealed.len() as u32,
            raw_length,
        });
        self.buf.extend_from_slice(sealed);
    }

    /// Bytes of blob data so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Seals the trailer, appends it and its length, and names the pack by its hash.
    pub fn finish(mut self, key: &MasterKey) -> FinishedPack {
        let trailer = key.seal(&encode_trailer(&self.entries));
        self.buf.extend_from_slice(&trailer);
        self.buf
            .extend_from_slice(&(trailer.len() as u32).to_le_bytes());
        FinishedPack {
            id: PackId(content_hash(&self.buf)),
            bytes: self.buf,
            entries: self.entries,
        }
    }
}

/// Plaintext trailer: magic, version, count, then fixed-size entries.
pub fn encode_trailer(entries: &[PackEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + entries.len() * ENTRY_LEN);
    out.extend_from_slice(TRAILER_MAGIC);
    out.push(TRAILER_VERSION);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        out.push(e.kind.code());
        out.extend_from_slice(e.id.as_bytes());
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.length.to_le_bytes());
        out.extend_from_slice(&e.raw_length.to_le_bytes());
    }
    out
}
