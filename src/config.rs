//! The repository config object (`config`): format version, repository id and the
//! parameters every client must share (chunking, packing, compression).

use serde::{Deserialize, Serialize};

use crate::chunk::ChunkerParams;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::RepoId;

/// The repository format version this build writes into new repositories. It reads and
/// writes every version from 1: version 2 adds compression units, version 3 states pack
/// trailers and index segments as entry tables (format-spec/pack.md, changes.md).
pub const FORMAT_VERSION: u32 = 3;
/// Object name of the config.
pub const CONFIG_PATH: &str = "config";

/// Contents of the config object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RepoConfig {
    /// Repository format version.
    pub version: u32,
    /// Random repository id (names the local cache directory).
    pub id: RepoId,
    /// When the repository was created (RFC 3339).
    pub created: String,
    /// Chunking parameters for file contents.
    pub chunker_files: ChunkerParams,
    /// Chunking parameters for BSON collection streams.
    pub chunker_bson: ChunkerParams,
    /// zstd level for blobs (0 stores everything raw).
    pub compression_level: i32,
    /// Target pack size in bytes.
    pub pack_size: u64,
}

impl RepoConfig {
    /// A config with default parameters and a fresh id.
    pub fn new_default() -> Self {
        Self {
            version: FORMAT_VERSION,
            id: RepoId::random(),
            created: chrono::Utc::now().to_rfc3339(),
            chunker_files: ChunkerParams::FILES,
            chunker_bson: ChunkerParams::BSON,
            compression_level: 3,
            pack_size: 32 << 20,
        }
    }

    /// Checks values a hostile or mistaken config could carry.
    pub fn validate(&self) -> Result<()> {
        if !(1..=FORMAT_VERSION).contains(&self.version) {
            return Err(Error::UnsupportedVersion {
                found: self.version,
                supported: FORMAT_VERSION,
            });
        }
        self.chunker_files.validate()?;
        self.chunker_bson.validate()?;
        if !(0..=22).contains(&self.compression_level) {
            return Err(Error::Invalid(format!(
                "compression level {} out of range 0..=22",
                self.compression_level
            )));
        }
        if !((1 << 20)..=(1 << 30)).contains(&self.pack_size) {
            return Err(Error::Invalid(format!(
                "pack size {} out of range 1 MiB..=1 GiB",
                self.pack_size
            )));
        }
        Ok(())
    }

    /// The version of packs trailers and index segments this repository's writers write:
    /// the format version (1, 2 or 3).
    pub fn structure_version(&self) -> u8 {
        self.version.min(FORMAT_VERSION) as u8
    }

    /// Whether writers may put several small blobs in one envelope (a compression unit);
    /// version 1 readers do not know units.
    pub fn groups_small_blobs(&self) -> bool {
        self.version >= 2 && self.compression_level > 0
    }

    /// Seals the config for storage.
    pub fn seal(&self, key: &MasterKey) -> Vec<u8> {
        key.seal(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// Opens and validates a stored config.
    pub fn open(key: &MasterKey, bytes: &[u8]) -> Result<Self> {
        let plain = key.open(bytes, "config")?;
        Self::decode(&plain)
    }

    /// Decodes and validates the config's plaintext JSON.
    pub fn decode(plain: &[u8]) -> Result<Self> {
        let c: RepoConfig =
            serde_json::from_slice(plain).map_err(|e| Error::corrupt("config", e.to_string()))?;
        c.validate()?;
        Ok(c)
    }
}
