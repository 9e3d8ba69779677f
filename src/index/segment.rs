//! Index segments (`index/<id>`): immutable lists of packs and their blobs, written after
//! the packs they describe. The local RocksDB index is a materialisation of these.

use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::hash::content_hash;
use crate::id::{PackId, SegmentId};
use crate::pack::table::Cursor;
use crate::pack::{
    decode_entries, encode_entries, entry_len, PackEntry, ENTRY_LEN_V2, TABLE_VERSION,
};

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

/// Plaintext encoding of a segment in structure `version` (the repository's). Fails only
/// on entries an entry table cannot state (version 3), which no pack writer produces.
pub fn encode(version: u8, packs: &[PackRecord]) -> Result<Vec<u8>> {
    let blobs: usize = packs.iter().map(|p| p.entries.len()).sum();
    let mut out = Vec::with_capacity(9 + packs.len() * 44 + blobs * ENTRY_LEN_V2);
    out.extend_from_slice(SEGMENT_MAGIC);
    out.push(version);
    out.extend_from_slice(&(packs.len() as u32).to_le_bytes());
    for p in packs {
        out.extend_from_slice(p.id.as_bytes());
        out.extend_from_slice(&p.size.to_le_bytes());
        encode_entries(&p.entries, version, &mut out)?;
    }
    Ok(out)
}

/// Seals an encoded segment and names it by the hash of the sealed bytes.
pub fn seal(key: &MasterKey, version: u8, packs: &[PackRecord]) -> Result<(SegmentId, Vec<u8>)> {
    let sealed = key.seal(&encode(version, packs)?);
    Ok((SegmentId(content_hash(&sealed)), sealed))
}

/// Decodes a segment's plaintext.
pub fn decode(plain: &[u8], what: &str) -> Result<Vec<PackRecord>> {
    let mut c = Cursor::new(plain, what);
    if c.take(4)? != SEGMENT_MAGIC {
        return Err(Error::corrupt(what, "segment magic missing"));
    }
    let v = c.u8()?;
    if entry_len(v).is_none() && v != TABLE_VERSION {
        return Err(Error::corrupt(what, format!("segment version {v} unknown")));
    }
    let npacks = c.u32()? as usize;
    let mut packs = Vec::with_capacity(npacks.min(1 << 16));
    for _ in 0..npacks {
        let id = PackId(c.id()?);
        let size = c.u64()?;
        let entries = decode_entries(&mut c, v, size)?;
        packs.push(PackRecord { id, size, entries });
    }
    if c.rest() != 0 {
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
                let enc = encode(version, &packs).unwrap();
                prop_assert_eq!(enc[4], version);
                prop_assert_eq!(decode(&enc, "s").unwrap(), packs);
            }
        }

        #[test]
        fn round_trip_tables(raw in proptest::collection::vec((any::<[u8; 32]>(), proptest::collection::vec((any::<bool>(), 1u32..1000, proptest::collection::vec(0u32..1 << 16, 1..4)), 0..5)), 0..4)) {
            let packs: Vec<PackRecord> = raw.iter().map(|(id, envs)| laid_out(*id, envs)).collect();
            let enc = encode(TABLE_VERSION, &packs).unwrap();
            prop_assert_eq!(enc[4], TABLE_VERSION);
            prop_assert_eq!(decode(&enc, "s").unwrap(), packs);
            // Trailing garbage and a truncation are both refused.
            let mut longer = enc.clone();
            longer.push(0);
            prop_assert!(decode(&longer, "s").is_err());
            prop_assert!(decode(&enc[..enc.len() - 1], "s").is_err());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode(&bytes, "s");
        }
    }

    /// A pack as a writer lays it out: envelopes back to back, a unit's blobs back to back.
    fn laid_out(id: [u8; 32], envs: &[(bool, u32, Vec<u32>)]) -> PackRecord {
        let envs: Vec<_> = envs
            .iter()
            .map(|(t, l, r)| (*t, 0, *l, r.clone()))
            .collect();
        let entries = crate::pack::table::layout(&envs);
        let end = entries.last().map_or(0, |e| e.offset + u64::from(e.length));
        PackRecord {
            id: PackId(id),
            size: end + 100,
            entries,
        }
    }

    #[test]
    fn a_table_entry_is_its_id_and_a_few_bytes() {
        let rec = laid_out(
            [3; 32],
            &[(false, 40_000, vec![700; 60]), (true, 900, vec![2000])],
        );
        let v2 = encode(2, std::slice::from_ref(&rec)).unwrap().len();
        let v3 = encode(TABLE_VERSION, std::slice::from_ref(&rec))
            .unwrap()
            .len();
        assert_eq!(v2, 9 + 44 + 61 * ENTRY_LEN_V2);
        assert_eq!(v3, 9 + 40 + 1 + 6 + 5 + 61 * 34, "{v3} bytes");
        let mut small = rec.clone();
        small.size = 40_000; // the tree's envelope now ends past the pack
        let enc = encode(TABLE_VERSION, &[small]).unwrap();
        assert!(decode(&enc, "s").is_err());
    }
}
