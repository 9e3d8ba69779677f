//! Pack files: where sealed blobs are grouped into immutable, self-describing files.
//!
//! Layout (format-spec/pack.md): `envelope* || trailer envelope || trailer_len (u32 LE)`.
//! The trailer lists every blob, so the index can always be rebuilt from packs alone.
//! An envelope holds one blob, or (structure version 2) a *unit* of several small blobs
//! compressed together; each entry says where its blob sits inside its envelope. From
//! structure version 3 trailers and segments state entries as a [`table`].

pub mod reader;
pub mod runs;
pub mod table;
pub mod writer;

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::BlobId;

/// Magic bytes opening a decrypted trailer.
pub const TRAILER_MAGIC: &[u8; 4] = b"RPK1";
/// Encoded size of one trailer/segment entry in structure version 1.
pub const ENTRY_LEN_V1: usize = 1 + 32 + 8 + 4 + 4;
/// Encoded size of one trailer/segment entry in structure version 2 (unit offset and
/// unit length added).
pub const ENTRY_LEN_V2: usize = ENTRY_LEN_V1 + 4 + 4;

/// The structure version whose entries are an entry [`table`] (format version 3).
pub const TABLE_VERSION: u8 = 3;

/// The most trailer bytes one blob costs in structure `version`: its record (1, 2), or in
/// a table (3) its id and raw length plus, when alone, its envelope's kind, gap 0, length
/// and count. Plus 6 for a table's count varint, an upper bound of a pack's trailer, which
/// prune must not underestimate (it would take every pack for part garbage).
pub fn max_entry_bytes(version: u8) -> u64 {
    match entry_len(version) {
        Some(n) => n as u64,
        None => 32 + 5 + (1 + 1 + 5 + 1),
    }
}

/// Bytes of one fixed-size entry in structure `version` (1 or 2), or `None` for a version
/// whose entries are not fixed-size records (3, a [`table`]) or that we do not know.
pub fn entry_len(version: u8) -> Option<usize> {
    match version {
        1 => Some(ENTRY_LEN_V1),
        2 => Some(ENTRY_LEN_V2),
        _ => None,
    }
}

/// Where one blob sits inside a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    /// Data or tree.
    pub kind: BlobKind,
    /// The blob's id.
    pub id: BlobId,
    /// Byte offset of the blob's envelope from the start of the pack.
    pub offset: u64,
    /// Length of that envelope.
    pub length: u32,
    /// Length of the blob's plaintext.
    pub raw_length: u32,
    /// Where the blob starts in the envelope's decompressed payload (0 when alone).
    pub unit_offset: u32,
    /// Length of the envelope's decompressed payload (`raw_length` when alone).
    pub unit_length: u32,
}

impl PackEntry {
    /// A blob alone in its envelope.
    pub fn solo(kind: BlobKind, id: BlobId, offset: u64, length: u32, raw_length: u32) -> Self {
        Self {
            kind,
            id,
            offset,
            length,
            raw_length,
            unit_offset: 0,
            unit_length: raw_length,
        }
    }

    /// True when the envelope holds this blob and nothing else.
    pub fn is_solo(&self) -> bool {
        self.unit_offset == 0 && self.unit_length == self.raw_length
    }

    /// Appends the entry in structure `version` (1 only holds solo blobs).
    pub fn encode_into(&self, version: u8, out: &mut Vec<u8>) {
        out.push(self.kind.code());
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.length.to_le_bytes());
        out.extend_from_slice(&self.raw_length.to_le_bytes());
        if version >= 2 {
            out.extend_from_slice(&self.unit_offset.to_le_bytes());
            out.extend_from_slice(&self.unit_length.to_le_bytes());
        }
    }

    /// Decodes one entry of `entry_len(version)` bytes; the blob must lie inside its
    /// unit. Bounds against the pack are the caller's.
    pub fn decode(e: &[u8], version: u8, what: &str) -> Result<Self> {
        let bad = |d: &str| Error::corrupt(what, d.to_string());
        if Some(e.len()) != entry_len(version) {
            return Err(bad("entry of the wrong length"));
        }
        let u32_at = |at: usize| u32::from_le_bytes([e[at], e[at + 1], e[at + 2], e[at + 3]]);
        let kind = BlobKind::from_code(e[0]).ok_or_else(|| bad("unknown blob kind"))?;
        let id = BlobId::from_slice(&e[1..33]).ok_or_else(|| bad("short id"))?;
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&e[33..41]);
        let mut entry = Self::solo(kind, id, u64::from_le_bytes(offset), u32_at(41), u32_at(45));
        if version >= 2 {
            entry.unit_offset = u32_at(49);
            entry.unit_length = u32_at(53);
            let end = entry.unit_offset.checked_add(entry.raw_length);
            if end.is_none_or(|end| end > entry.unit_length) {
                return Err(bad("blob extends past its unit"));
            }
        }
        Ok(entry)
    }
}

/// Appends one pack's entries in structure `version`, as trailers and segments hold them:
/// a count and fixed-size records (1, 2) or an entry [`table`] (3).
pub fn encode_entries(entries: &[PackEntry], version: u8, out: &mut Vec<u8>) -> Result<()> {
    if version >= TABLE_VERSION {
        return table::encode(entries, out);
    }
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        e.encode_into(version, out);
    }
    Ok(())
}

/// Reads one pack's entries in structure `version` (see [`encode_entries`]); every
/// envelope must end by `limit` (the end of the blob area, or the pack's size).
pub fn decode_entries(
    c: &mut table::Cursor<'_>,
    version: u8,
    limit: u64,
) -> Result<Vec<PackEntry>> {
    let Some(len) = entry_len(version) else {
        if version == TABLE_VERSION {
            return table::decode(c, limit);
        }
        return Err(c.corrupt(&format!("structure version {version} unknown")));
    };
    let n = c.u32()? as usize;
    if n.saturating_mul(len) > c.rest() {
        return Err(c.corrupt("entry count exceeds the bytes"));
    }
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let e = PackEntry::decode(c.take(len)?, version, c.what())?;
        if e.offset
            .checked_add(u64::from(e.length))
            .is_none_or(|end| end > limit)
        {
            return Err(c.corrupt("blob extends past the blob area"));
        }
        entries.push(e);
    }
    Ok(entries)
}

/// Object name of a pack: `packs/<first two hex digits>/<64 hex digits>`.
pub fn pack_path(id: &crate::id::PackId) -> String {
    let h = id.to_hex();
    format!("packs/{}/{}", &h[..2], h)
}
