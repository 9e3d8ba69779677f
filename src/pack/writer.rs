//! Builds one pack in memory: append sealed blobs, then seal the trailer and name the pack.

use super::{encode_entries, PackEntry, TRAILER_MAGIC};
use crate::blob::BlobKind;
use crate::crypto::MasterKey;
use crate::error::Result;
use crate::hash::content_hash;
use crate::id::{BlobId, PackId};
use crate::unit::SealedUnit;

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

    /// Appends one sealed blob, alone in its envelope.
    pub fn add(&mut self, kind: BlobKind, id: BlobId, sealed: &[u8], raw_length: u32) {
        let offset = self.buf.len() as u64;
        let entry = PackEntry::solo(kind, id, offset, sealed.len() as u32, raw_length);
        self.entries.push(entry);
        self.buf.extend_from_slice(sealed);
    }

    /// Appends one sealed unit: an envelope holding the blobs `unit` lists.
    pub fn add_unit(&mut self, unit: &SealedUnit) {
        let offset = self.buf.len() as u64;
        for b in &unit.blobs {
            self.entries.push(PackEntry {
                kind: unit.kind,
                id: b.id,
                offset,
                length: unit.bytes.len() as u32,
                raw_length: b.raw_length,
                unit_offset: b.offset,
                unit_length: unit.raw_length,
            });
        }
        self.buf.extend_from_slice(&unit.bytes);
    }

    /// Bytes of blob data so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Seals the trailer (structure `version`, the repository's), appends it and its
    /// length, and names the pack by its hash.
    pub fn finish(mut self, key: &MasterKey, version: u8) -> Result<FinishedPack> {
        let trailer = key.seal(&encode_trailer(&self.entries, version)?);
        self.buf.extend_from_slice(&trailer);
        self.buf
            .extend_from_slice(&(trailer.len() as u32).to_le_bytes());
        Ok(FinishedPack {
            id: PackId(content_hash(&self.buf)),
            bytes: self.buf,
            entries: self.entries,
        })
    }
}

/// Plaintext trailer: magic, version, then the entries — a count and fixed-size records
/// (versions 1, 2) or an entry table (3). Fails only on entries a table cannot state,
/// which this module's builder never produces.
pub fn encode_trailer(entries: &[PackEntry], version: u8) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(9 + entries.len() * super::ENTRY_LEN_V2);
    out.extend_from_slice(TRAILER_MAGIC);
    out.push(version);
    encode_entries(entries, version, &mut out)?;
    Ok(out)
}
