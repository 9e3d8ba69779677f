//! Parses pack trailers read back from a backend; every byte here is untrusted.

use super::{decode_entries, table, PackEntry, TRAILER_MAGIC};
use crate::backend::Backend;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::PackId;

/// Decodes a plaintext trailer; `data_len` is where the blob area ends, for bounds checks.
pub fn decode_trailer(plain: &[u8], data_len: u64, what: &str) -> Result<Vec<PackEntry>> {
    let mut c = table::Cursor::new(plain, what);
    if plain.len() < 6 || c.take(4)? != TRAILER_MAGIC {
        return Err(c.corrupt("trailer magic missing"));
    }
    let version = c.u8()?;
    let entries = decode_entries(&mut c, version, data_len)?;
    if c.rest() != 0 {
        return Err(c.corrupt("trailing bytes after the trailer's entries"));
    }
    Ok(entries)
}

/// Splits a complete pack file into its trailer entries (decrypting the trailer).
pub fn parse_pack(key: &MasterKey, bytes: &[u8], what: &str) -> Result<Vec<PackEntry>> {
    if bytes.len() < 4 {
        return Err(Error::corrupt(what, "too short to hold a trailer length"));
    }
    let (rest, len_bytes) = bytes.split_at(bytes.len() - 4);
    let tlen = u32::from_le_bytes(
        len_bytes
            .try_into()
            .map_err(|_| Error::corrupt(what, "len"))?,
    ) as usize;
    if tlen > rest.len() {
        return Err(Error::corrupt(what, "trailer length exceeds the file"));
    }
    let (data, trailer) = rest.split_at(rest.len() - tlen);
    let plain = key.open(trailer, what)?;
    decode_trailer(&plain, data.len() as u64, what)
}

/// Reads only a pack's trailer from a backend with two range reads.
pub fn read_trailer(
    backend: &dyn Backend,
    key: &MasterKey,
    id: &PackId,
    size: u64,
) -> Result<Vec<PackEntry>> {
    let path = super::pack_path(id);
    let what = format!("pack {}", id.short());
    if size < 4 {
        return Err(Error::corrupt(&what, "too short to hold a trailer length"));
    }
    let len_bytes = backend.get_range(&path, size - 4, 4)?;
    let tlen = u32::from_le_bytes(
        len_bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::corrupt(&what, "short read of trailer length"))?,
    ) as u64;
    if tlen + 4 > size {
        return Err(Error::corrupt(&what, "trailer length exceeds the file"));
    }
    let trailer = backend.get_range(&path, size - 4 - tlen, tlen)?;
    let plain = key.open(&trailer, &what)?;
    decode_trailer(&plain, size - 4 - tlen, &what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobKind;
    use crate::id::BlobId;
    use crate::pack::writer::{encode_trailer, PackBuilder};
    use crate::pack::TABLE_VERSION;
    use proptest::prelude::*;

    #[test]
    fn build_and_parse() {
        let k = MasterKey::from_secret([1; 32]);
        for version in [1, 2, TABLE_VERSION] {
            let mut b = PackBuilder::new();
            b.add(BlobKind::Data, BlobId([1; 32]), b"sealed-one", 100);
            b.add(BlobKind::Tree, BlobId([2; 32]), b"sealed-two!", 7);
            let p = b.finish(&k, version).unwrap();
            let entries = parse_pack(&k, &p.bytes, "p").unwrap();
            assert_eq!(entries, p.entries);
            assert_eq!(entries[1].offset, 10);
            assert_eq!(&p.bytes[10..21], b"sealed-two!");
            let mut bad = p.bytes.clone();
            let n = bad.len();
            bad[n - 10] ^= 0xff;
            assert!(parse_pack(&k, &bad, "p").is_err());
            assert!(parse_pack(&k, &p.bytes[..n - 1], "p").is_err());
        }
    }

    #[test]
    fn version_3_states_units_and_checks_its_bounds() {
        let k = MasterKey::from_secret([1; 32]);
        let mut g = crate::unit::Grouper::with(&k, 3, true);
        let mut b = PackBuilder::new();
        b.add(BlobKind::Data, BlobId([1; 32]), b"sealed-one", 100);
        for (i, data) in [&b"first small blob"[..], b"", b"third"].iter().enumerate() {
            assert!(g
                .push(BlobKind::Data, BlobId([i as u8 + 5; 32]), data)
                .is_none());
        }
        b.add_unit(&g.flush().unwrap());
        let p = b.finish(&k, TABLE_VERSION).unwrap();
        let entries = parse_pack(&k, &p.bytes, "p").unwrap();
        assert_eq!(entries, p.entries);
        let units: Vec<_> = entries[1..]
            .iter()
            .map(|e| (e.unit_offset, e.raw_length, e.unit_length))
            .collect();
        assert_eq!(units, [(0, 16, 21), (16, 0, 21), (16, 5, 21)]);

        let plain = encode_trailer(&p.entries, TABLE_VERSION).unwrap();
        assert!(plain.len() < 5 + 4 * (33 + 4) + 12, "{} bytes", plain.len());
        let data_len = entries[1].offset + u64::from(entries[1].length);
        assert!(decode_trailer(&plain, data_len, "t").is_ok());
        assert!(
            decode_trailer(&plain, data_len - 1, "t").is_err(),
            "past the blob area"
        );
        let mut trailing = plain.clone();
        trailing.push(0);
        assert!(
            decode_trailer(&trailing, data_len, "t").is_err(),
            "trailing bytes"
        );
        assert!(decode_trailer(&plain[..plain.len() - 1], data_len, "t").is_err());
    }

    /// kind is tree, id, offset, length, raw length, unit offset, unit bytes after the blob.
    type RawEntry = (bool, [u8; 32], u64, u32, u32, u32, u32);

    fn entries(raw: &[RawEntry], solo: bool) -> Vec<PackEntry> {
        raw.iter()
            .map(|&(t, id, off, len, rl, uo, extra)| {
                let kind = if t { BlobKind::Tree } else { BlobKind::Data };
                let mut e = PackEntry::solo(kind, BlobId(id), off, len, rl);
                if !solo {
                    e.unit_offset = uo;
                    e.unit_length = rl + uo + extra;
                }
                e
            })
            .collect()
    }

    proptest! {
        #[test]
        fn trailer_round_trip(raw in proptest::collection::vec((any::<bool>(), any::<[u8; 32]>(), 0u64..1000, 0u32..1000, 0u32..1 << 20, 0u32..1 << 20, 0u32..1 << 20), 0..20)) {
            for version in [1u8, 2] {
                let entries = entries(&raw, version == 1);
                let enc = encode_trailer(&entries, version).unwrap();
                prop_assert_eq!(enc[4], version);
                prop_assert_eq!(decode_trailer(&enc, 2000, "t").unwrap(), entries);
            }
        }

        #[test]
        fn trailer_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), dl in any::<u64>()) {
            let _ = decode_trailer(&bytes, dl, "t");
        }
    }

    #[test]
    fn a_blob_past_its_unit_is_rejected() {
        let mut e = PackEntry::solo(BlobKind::Data, BlobId([1; 32]), 0, 10, 100);
        e.unit_offset = 50;
        e.unit_length = 120;
        let enc = encode_trailer(&[e], 2).unwrap();
        assert!(decode_trailer(&enc, 2000, "t").is_err());
        e.unit_length = 150;
        let enc = encode_trailer(&[e], 2).unwrap();
        assert_eq!(decode_trailer(&enc, 2000, "t").unwrap(), vec![e]);
    }
}
