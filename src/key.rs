//! Key files (`keys/<id>`): the master secret wrapped by an Argon2id-derived key.
//!
//! Several key files may wrap the same master secret; any one password opens the repository.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::crypto::{open_with, seal_with, MasterKey};
use crate::error::{Error, Result};

/// Largest Argon2 memory a key file may ask for (256 MiB; new keys use 46 MiB).
pub const MAX_MEMORY_KIB: u32 = 256 * 1024;
/// Most passes a key file may ask for.
pub const MAX_ITERATIONS: u32 = 16;
/// Most lanes a key file may ask for.
pub const MAX_PARALLELISM: u32 = 16;
/// Largest memory × passes (about a second of work on one core).
pub const MAX_WORK_KIB: u64 = 512 * 1024;

/// Argon2id parameters recorded in each key file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Always "argon2id" in format version 1.
    pub algorithm: String,
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Degree of parallelism (lanes).
    pub parallelism: u32,
    /// 16 random bytes, hex.
    pub salt: String,
}

impl KdfParams {
    /// Defaults for new keys: 46 MiB, 1 pass, 1 lane — OWASP's first recommended Argon2id
    /// setting for interactive logins. Every command pays it on open (64 MiB × 3 passes
    /// cost 0.2 s here, most of a no-change incremental run); this costs about a third.
    pub fn new_default() -> Self {
        Self::with_costs(46 * 1024, 1, 1)
    }

    /// Parameters with explicit costs and a fresh salt.
    pub fn with_costs(memory_kib: u32, iterations: u32, parallelism: u32) -> Self {
        let salt: [u8; 16] = rand::random();
        Self {
            algorithm: "argon2id".into(),
            memory_kib,
            iterations,
            parallelism,
            salt: hex::encode(salt),
        }
    }

    /// Refuses costs no key of ours has before any memory is allocated for them: a
    /// hostile or damaged key file must not make every open of the repository slow.
    pub fn check_bounds(&self) -> Result<()> {
        let work = u64::from(self.memory_kib) * u64::from(self.iterations);
        if self.memory_kib > MAX_MEMORY_KIB
            || self.iterations == 0
            || self.iterations > MAX_ITERATIONS
            || self.parallelism == 0
            || self.parallelism > MAX_PARALLELISM
            || work > MAX_WORK_KIB
        {
            return Err(Error::corrupt(
                "key file",
                format!(
                    "KDF parameters out of range ({} KiB, {} passes, {} lanes; at most {} KiB, {} passes, {} lanes)",
                    self.memory_kib,
                    self.iterations,
                    self.parallelism,
                    MAX_MEMORY_KIB,
                    MAX_ITERATIONS,
                    MAX_PARALLELISM
                ),
            ));
        }
        Ok(())
    }

    /// Memory × passes: how long unwrapping takes, roughly.
    pub fn cost(&self) -> u64 {
        u64::from(self.memory_kib) * u64::from(self.iterations)
    }

    fn derive(&self, password: &[u8]) -> Result<[u8; 32]> {
        if self.algorithm != "argon2id" {
            return Err(Error::corrupt(
                "key file",
                format!("unknown KDF {:?}", self.algorithm),
            ));
        }
        self.check_bounds()?;
        let salt =
            hex::decode(&self.salt).map_err(|_| Error::corrupt("key file", "salt is not hex"))?;
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| Error::corrupt("key file", format!("bad KDF parameters: {e}")))?;
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password, &salt, &mut out)
            .map_err(|e| Error::corrupt("key file", format!("KDF failed: {e}")))?;
        Ok(out)
    }
}

/// The decoded contents of a key file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// Key file format version (1).
    pub version: u32,
    /// When the key was added (RFC 3339).
    pub created: String,
    /// Host that added it.
    pub host: String,
    /// User that added it.
    pub user: String,
    /// How the wrapping key is derived from the password.
    pub kdf: KdfParams,
    /// Envelope (hex) holding the 32-byte master secret.
    pub wrapped_master: String,
}

impl KeyFile {
    /// Wraps `master` under `password`.
    pub fn wrap(master: &MasterKey, password: &[u8], kdf: KdfParams) -> Result<Self> {
        let mut wrapping = kdf.derive(password)?;
        let wrapped = seal_with(&wrapping, master.secret());
        wrapping.zeroize();
        Ok(Self {
            version: 1,
            created: chrono::Utc::now().to_rfc3339(),
            host: crate::sysinfo::hostname(),
            user: crate::sysinfo::username(),
            kdf,
            wrapped_master: hex::encode(wrapped),
        })
    }

    /// Tries to unwrap the master key; `Ok(None)` means the password does not fit this key.
    pub fn unwrap_master(&self, password: &[u8]) -> Result<Option<MasterKey>> {
        let env = hex::decode(&self.wrapped_master)
            .map_err(|_| Error::corrupt("key file", "wrapped key is not hex"))?;
        let mut wrapping = self.kdf.derive(password)?;
        let opened = open_with(&wrapping, &env, "key file");
        wrapping.zeroize();
        match opened {
            Ok(mut secret) => {
                let arr: [u8; 32] = secret
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::corrupt("key file", "master secret is not 32 bytes"))?;
                secret.zeroize();
                Ok(Some(MasterKey::from_secret(arr)))
            }
            Err(_) => Ok(None),
        }
    }

    /// Encodes as the JSON stored on disk.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Decodes a key file read from the repository.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let kf: KeyFile =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt("key file", e.to_string()))?;
        if kf.version != 1 {
            return Err(Error::UnsupportedVersion {
                found: kf.version,
                supported: 1,
            });
        }
        Ok(kf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> KdfParams {
        KdfParams::with_costs(256, 1, 1)
    }

    #[test]
    fn wrap_unwrap() {
        let m = MasterKey::generate();
        let kf = KeyFile::wrap(&m, b"pw", cheap()).unwrap();
        let back = KeyFile::decode(&kf.encode()).unwrap();
        let m2 = back.unwrap_master(b"pw").unwrap().unwrap();
        assert_eq!(m.secret(), m2.secret());
        assert!(back.unwrap_master(b"nope").unwrap().is_none());
    }

    #[test]
    fn hostile_params_rejected_before_any_work() {
        let m = MasterKey::generate();
        let mut kf = KeyFile::wrap(&m, b"pw", cheap()).unwrap();
        // 4 GiB (would take many seconds and that much memory), and other extremes.
        for (mem, it, par) in [
            (4 << 20, 1, 1),
            (256, 0, 1),
            (256, 1000, 1),
            (256, 1, 0),
            (MAX_MEMORY_KIB, 16, 1),
        ] {
            kf.kdf.memory_kib = mem;
            kf.kdf.iterations = it;
            kf.kdf.parallelism = par;
            let started = std::time::Instant::now();
            let e = kf.unwrap_master(b"pw").err().expect("refused");
            assert!(matches!(e, Error::Corrupt { .. }), "{e}");
            assert!(started.elapsed() < std::time::Duration::from_millis(100));
        }
        assert!(KdfParams::new_default().check_bounds().is_ok());
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = KeyFile::decode(&bytes);
        }
    }
}
