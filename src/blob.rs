//! The blob envelope: compress, then encrypt (format-spec/crypto.md, "Blob envelope").
//!
//! Sealed form: `nonce(12) || AEAD(flag(1) || payload) || tag(16)`, where `flag` says whether
//! `payload` is raw or one zstd frame. The flag sits inside the ciphertext so nothing about
//! compressibility leaks beyond the length.

use crate::compress;
use crate::crypto::MasterKey;
use crate::error::Result;

/// Whether a blob holds file/collection data or an encoded tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobKind {
    /// A content chunk.
    Data,
    /// An encoded tree.
    Tree,
}

impl BlobKind {
    /// The byte used in trailers and index segments.
    pub fn code(self) -> u8 {
        match self {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }

    /// Parses the trailer/segment byte.
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }
}

/// Compresses (at `level`, 0 = never) and encrypts one blob.
pub fn seal(key: &MasterKey, data: &[u8], level: i32) -> Vec<u8> {
    // Built in its final place, of its exact size: nonce room, flag, payload; then
    // encrypted in place.
    compress::compress_with(data, level, |flag, payload| {
        let mut buf = Vec::with_capacity(crate::crypto::ENVELOPE_OVERHEAD + 1 + payload.len());
        buf.resize(crate::crypto::NONCE_LEN, 0);
        buf.push(flag);
        buf.extend_from_slice(payload);
        key.seal_in_place(&mut buf);
        buf
    })
}

/// Decrypts and decompresses one blob; `raw_len` is the length the index promises.
pub fn open(key: &MasterKey, envelope: &[u8], raw_len: usize, what: &str) -> Result<Vec<u8>> {
    let plain = key.open(envelope, what)?;
    let (flag, payload) = plain
        .split_first()
        .ok_or_else(|| crate::error::Error::corrupt(what, "empty blob plaintext"))?;
    compress::decompress(*flag, payload, raw_len, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn seal_open(data in proptest::collection::vec(any::<u8>(), 0..4096), level in 0i32..6) {
            let k = MasterKey::from_secret([3; 32]);
            let env = seal(&k, &data, level);
            prop_assert_eq!(open(&k, &env, data.len(), "b").unwrap(), data);
        }

        #[test]
        fn open_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256), raw in 0usize..1000) {
            let k = MasterKey::from_secret([3; 32]);
            let _ = open(&k, &bytes, raw, "b");
        }
    }
}
