//! Keys and the sealed envelope every encrypted object uses (format-spec/crypto.md).
//!
//! One 32-byte master secret per repository; every other key is derived from it with
//! BLAKE3's key-derivation mode, so adding a new use never touches the key files.

use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroize;

use crate::error::{Error, Result};

/// Bytes of the random nonce that opens every envelope.
pub const NONCE_LEN: usize = 12;
/// Bytes of the Poly1305 tag that closes every envelope.
pub const TAG_LEN: usize = 16;
/// Bytes an envelope adds to its plaintext.
pub const ENVELOPE_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

const CTX_ENCRYPTION: &str = "repo v1 2026-11-28 encryption key";
const CTX_ID: &str = "repo v1 2026-11-28 blob id key";
const CTX_CHUNKER: &str = "repo v1 2026-11-28 chunker seed";

/// The repository master secret and the keys derived from it.
#[derive(Clone)]
pub struct MasterKey {
    secret: [u8; 32],
    encryption: [u8; 32],
    id_key: [u8; 32],
    chunker_seed: u64,
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.secret.zeroize();
        self.encryption.zeroize();
        self.id_key.zeroize();
    }
}

impl MasterKey {
    /// Derives all sub-keys from a master secret.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let encryption = blake3::derive_key(CTX_ENCRYPTION, &secret);
        let id_key = blake3::derive_key(CTX_ID, &secret);
        let seed_bytes = blake3::derive_key(CTX_CHUNKER, &secret);
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&seed_bytes[..8]);
        Self {
            secret,
            encryption,
            id_key,
            chunker_seed: u64::from_le_bytes(seed),
        }
    }

    /// A fresh random master key for a new repository.
    pub fn generate() -> Self {
        Self::from_secret(rand::random())
    }

    /// The master secret itself (only key files need it).
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// Key for the keyed BLAKE3 that names blobs.
    pub fn id_key(&self) -> &[u8; 32] {
        &self.id_key
    }

    /// Seed for the FastCDC gear table.
    pub fn chunker_seed(&self) -> u64 {
        self.chunker_seed
    }

    /// Encrypts `plaintext` into a fresh envelope.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.encryption, plaintext)
    }

    /// Encrypts in place; see [`seal_in_place`] for the buffer layout.
    pub fn seal_in_place(&self, buf: &mut Vec<u8>) {
        seal_in_place(&self.encryption, buf)
    }

    /// Authenticates and decrypts an envelope; `what` names the object for errors.
    pub fn open(&self, envelope: &[u8], what: &str) -> Result<Vec<u8>> {
        open_with(&self.encryption, envelope, what)
    }
}

/// Seals with an explicit 32-byte key: `nonce || ChaCha20-Poly1305(plaintext) || tag`.
pub fn seal_with(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let nonce: [u8; NONCE_LEN] = rand::random();
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Seals in place: `buf` holds [`NONCE_LEN`] placeholder bytes followed by the plaintext
/// and becomes the same envelope [`seal_with`] makes, without copying the plaintext.
pub fn seal_in_place(key: &[u8; 32], buf: &mut Vec<u8>) {
    debug_assert!(buf.len() >= NONCE_LEN);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let nonce: [u8; NONCE_LEN] = rand::random();
    buf[..NONCE_LEN].copy_from_slice(&nonce);
    // Encryption of an in-memory buffer cannot fail short of a >256 GiB plaintext.
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut buf[NONCE_LEN..])
        .unwrap_or_default();
    buf.extend_from_slice(&tag);
}

/// Opens an envelope sealed by [`seal_with`].
pub fn open_with(key: &[u8; 32], envelope: &[u8], what: &str) -> Result<Vec<u8>> {
    if envelope.len() < ENVELOPE_OVERHEAD {
        return Err(Error::corrupt(
            what,
            format!("{} bytes is too short for an envelope", envelope.len()),
        ));
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let (nonce, ct) = envelope.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), ct)
        .map_err(|_| Error::corrupt(what, "authentication failed (data altered or wrong key)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = MasterKey::generate();
        let env = k.seal(b"hello");
        assert_eq!(env.len(), 5 + ENVELOPE_OVERHEAD);
        assert_eq!(k.open(&env, "t").unwrap(), b"hello");
        let mut bad = env.clone();
        bad[NONCE_LEN] ^= 1;
        assert!(k.open(&bad, "t").is_err());
        assert!(k.open(&env[..10], "t").is_err());
        let other = MasterKey::generate();
        assert!(other.open(&env, "t").is_err());
    }

    #[test]
    fn derivation_is_stable() {
        let k = MasterKey::from_secret([7u8; 32]);
        let k2 = MasterKey::from_secret([7u8; 32]);
        assert_eq!(k.id_key(), k2.id_key());
        assert_eq!(k.chunker_seed(), k2.chunker_seed());
        assert_ne!(k.id_key(), &k.encryption);
    }
}
