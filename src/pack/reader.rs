//! Parses pack trailers read back from a backend; every byte here is untrusted.

use super::{PackEntry, ENTRY_LEN, TRAILER_MAGIC, TRAILER_VERSION};
use crate::backend::Backend;
use crate::blob::BlobKind;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::{BlobId, PackId};

/// Decodes a plaintext trailer; `data_len` is where the blob area ends, for bounds checks.
pub fn decode_trailer(plain: &[u8], data_len: u64, what: &str) -> Result<Vec<PackEntry>> {
    let bad = |d: &str| Error::corrupt(what, d.to_string());
    if plain.len() < 9 || &plain[..4] != TRAILER_MAGIC {
        return Err(bad("trailer magic missing"));
    }
    if plain[4] != TRAILER_VERSION {
        return Err(bad(&format!("trailer version {} unknown", plain[4])));
    }
    let count = u32::from_le_bytes([plain[5], plain[6], plain[7], plain[8]]) as usize;
    let body = &plain[9..];
    if body.len() != count.saturating_mul(ENTRY_LEN) {
        return Err(bad("trailer length does not match its entry count"));
    }
    let mut out = Vec::with_capacity(count);
    for e in body.chunks_exact(ENTRY_LEN) {
        let kind = BlobKind::from_code(e[0]).ok_or_else(|| bad("unknown blob kind"))?;
        let id = BlobId::from_slice(&e[1..33]).ok_or_else(|| bad("short id"))?;
        let offset = u64::from_le_bytes(e[33..41].try_into().map_err(|_| bad("offset"))?);
        let length = u32::from_le_bytes(e[41..45].try_into().map_err(|_| bad("length"))?);
        let raw_length = u32::from_le_bytes(e[45..49].try_into().map_err(|_| bad("raw length"))?);
        if offset
            .checked_add(u64::from(length))
            .is_none_or(|end| end > data_len)
        {
            return Err(bad("blob extends past the blob area"));
        }
        out.push(PackEntry {
            kind,
            id,
            offset,
            length,
            raw_length,
        });
    }
    Ok(out)
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
    use crate::pack::writer::{encode_trailer, PackBuilder};
    use proptest::prelude::*;

    #[test]
    fn build_and_parse() {
        let k = MasterKey::from_secret([1; 32]);
        let mut b = PackBuilder::new();
        b.add(BlobKind::Data, BlobId([1; 32]), b"sealed-one", 100);
        b.add(BlobKind::Tree, BlobId([2; 32]), b"sealed-two!", 7);
        let p = b.finish(&k);
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

    proptest! {
        #[test]
        fn trailer_round_trip(raw in proptest::collection::vec((any::<bool>(), any::<[u8; 32]>(), 0u64..1000, 0u32..1000, any::<u32>()), 0..20)) {
            let entries: Vec<PackEntry> = raw.iter().map(|(t, id, off, len, rl)| PackEntry {
                kind: if *t { BlobKind::Tree } else { BlobKind::Data },
                id: BlobId(*id), offset: *off, length: *len, raw_length: *rl,
            }).collect();
            let enc = encode_trailer(&entries);
            prop_assert_eq!(decode_trailer(&enc, 2000, "t").unwrap(), entries);
        }

        #[test]
        fn trailer_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), dl in any::<u64>()) {
            let _ = decode_trailer(&bytes, dl, "t");
        }
    }
}
