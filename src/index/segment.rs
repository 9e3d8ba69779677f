//! Index segments (`index/<id>`): immutable lists of packs and their blobs, written after
//! the packs they describe. The local RocksDB index is a materialisation of these.

use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::hash::content_hash;
use crate::id::{PackId, SegmentId};
use crate::pack::{entry_len, PackEntry, ENTRY_LEN_V2};

/// Magic bytes opening a decrypted segment.
pub const SEGMENT_MAGIC: &[u8; 4] = b"RIX1";

/// One pack as recorded in a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackRecord {
    /// The pack's id.
    pub id: PackId,
    /// Its total size in bytes.
    pub size: u64,
    /// Its blobs.
    pub entries: Vec<PackEntry>,
}

/// Object name of a segment.
pub fn segment_path(id: &SegmentId) -> String {
    format!("index/{}", id.to_hex())
}

/// Plaintext encoding of a segment in structure `version` (the repository's).
pub fn encode(version: u8, packs: &[PackRecord]) -> Vec<u8> {
    let blobs: usize = packs.iter().map(|p| p.entries.len()).sum();
    let mut out = Vec::with_capacity(9 + packs.len() * 44 + blobs * ENTRY_LEN_V2);
    out.extend_from_slice(SEGMENT_MAGIC);
    out.push(version);
    out.extend_from_slice(&(packs.len() as u32).to_le_bytes());
    for p in packs {
        out.extend_from_slice(p.id.as_bytes());
        out.extend_from_slice(&p.size.to_le_bytes());
        out.extend_from_slice(&(p.entries.len() as u32).to_le_bytes());
        for e in &p.entries {
            e.encode_into(version, &mut out);
        }
    }
    out
}

/// Seals an encoded segment and names it by the hash of the sealed bytes.
pub fn seal(key: &MasterKey, version: u8, packs: &[PackRecord]) -> (SegmentId, Vec<u8>) {
    let sealed = key.seal(&encode(version, packs));
    (SegmentId(content_hash(&sealed)), sealed)
}

/// Cursor over untrusted bytes that turns overruns into corruption errors.
struct Cursor<'a> {
    b: &'a [u8],
    what: &'a str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() < n {
            return Err(Error::corrupt(self.what, "truncated"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn id(&mut self) -> Result<[u8; 32]> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32)?);
        Ok(a)
    }
}

/// Decodes a segment's plaintext.
pub fn decode(plain: &[u8], what: &str) -> Result<Vec<PackRecord>> {
    let mut c = Cursor { b: plain, what };
    if c.take(4)? != SEGMENT_MAGIC {
        return Err(Error::corrupt(what, "segment magic missing"));
    }
    let v = c.take(1)?[0];
    let len =
        entry_len(v).ok_or_else(|| Error::corrupt(what, format!("segment version {v} unknown")))?;
    let npacks = c.u32()? as usize;
    let mut packs = Vec::with_capacity(npacks.min(1 << 16));
    for _ in 0..npacks {
        let id = PackId(c.id()?);
        let size = c.u64()?;
        let n = c.u32()? as usize;
        if n.saturating_mul(len) > c.b.len() {
            return Err(Error::corrupt(what, "entry count exceeds segment"));
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let e = PackEntry::decode(c.take(len)?, v, what)?;
            if e.offset
                .checked_add(u64::from(e.length))
                .is_none_or(|end| end > size)
            {
                return Err(Error::corrupt(what, "blob extends past its pack"));
            }
            entries.push(e);
        }
        packs.push(PackRecord { id, size, entries });
    }
    if !c.b.is_empty() {
        return Err(Error::corrupt(what, "trailing bytes after last pack"));
    }
    Ok(packs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobKind;
    use crate::id::BlobId;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(raw in proptest::collection::vec((any::<[u8; 32]>(), proptest::collection::vec((any::<bool>(), any::<[u8; 32]>(), 0u64..100, 0u32..100, 0u32..1 << 20, 0u32..1 << 20), 0..5)), 0..5)) {
            for version in [1u8, 2] {
                let packs: Vec<PackRecord> = raw.iter().map(|(id, es)| PackRecord {
                    id: PackId(*id),
                    size: 1000,
                    entries: es.iter().map(|&(t, id, o, l, r, uo)| {
                        let kind = if t { BlobKind::Tree } else { BlobKind::Data };
                        let mut e = PackEntry::solo(kind, BlobId(id), o, l, r);
                        if version == 2 {
                            e.unit_offset = uo;
                            e.unit_length = r + uo;
                        }
                        e
                    }).collect(),
                }).collect();
                let enc = encode(version, &packs);
                prop_assert_eq!(enc[4], version);
                prop_assert_eq!(decode(&enc, "s").unwrap(), packs);
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode(&bytes, "s");
        }
    }
}
