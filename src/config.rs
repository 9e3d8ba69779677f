//! The repository config object (`config`): format version, repository id and the
//! parameters every client must share (chunking, packing, compression).

use serde::{Deserialize, Serialize};

use crate::chunk::{ChunkerParams, FileChunkers, SmallFiles};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::RepoId;

/// The repository format version this build writes into new repositories. It reads and
/// writes every version from 1: version 2 adds compression units, version 3 states pack
/// trailers and index segments as entry tables (format-spec/pack.md, changes.md),
/// version 4 cuts small files finer (`chunker_small_files`, format-spec/chunking.md).
pub const FORMAT_VERSION: u32 = 4;
/// The first version whose config may state `chunker_small_files`.
pub const SMALL_FILES_VERSION: u32 = 4;
/// Object name of the config.
pub const CONFIG_PATH: &str = "config";

/// What a location holds now, against the sealed `config` a client opened there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Still {
    /// The same repository.
    Same,
    /// Another repository (deleted and created again at the location).
    Replaced,
    /// No repository.
    Removed,
}

/// Reads `config` at `backend` again and compares it with `sealed` (one small read): a
/// long-lived client checks it before writing (format-spec/layout.md, Locks).
pub fn still_there(backend: &dyn crate::backend::Backend, sealed: &[u8]) -> Result<Still> {
    match backend.get(CONFIG_PATH) {
        Ok(now) if now == sealed => Ok(Still::Same),
        Ok(_) => Ok(Still::Replaced),
        Err(Error::Missing(_)) => Ok(Still::Removed),
        Err(e) => Err(e),
    }
}

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
    /// Finer chunking for small files (version 4 on; absent: every file by
    /// `chunker_files`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunker_small_files: Option<SmallFiles>,
    /// zstd level for blobs (0 stores everything raw).
    pub compression_level: i32,
    /// Target pack size in bytes.
    pub pack_size: u64,
}

/// zstd level of new repositories. Level 4 keeps level 3's match finder (dfast) with
/// larger tables: on source-like data (the kernel tree plus unpacked binary packages)
/// the repository is 1% smaller for 5% more backup CPU, and reading is as fast.
pub const DEFAULT_COMPRESSION: i32 = 4;

impl RepoConfig {
    /// A config with default parameters and a fresh id.
    pub fn new_default() -> Self {
        Self {
            version: FORMAT_VERSION,
            id: RepoId::random(),
            created: chrono::Utc::now().to_rfc3339(),
            chunker_files: ChunkerParams::FILES,
            chunker_bson: ChunkerParams::BSON,
            chunker_small_files: Some(SmallFiles::DEFAULT),
            compression_level: DEFAULT_COMPRESSION,
            pack_size: 32 << 20,
        }
    }

    /// This config at format `version`, without what that version does not know.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        if version < SMALL_FILES_VERSION {
            self.chunker_small_files = None;
        }
        self
    }

    /// The file chunkers every writer must cut files with.
    pub fn file_chunkers(&self, seed: u64) -> FileChunkers {
        FileChunkers::new(self.chunker_files, self.chunker_small_files, seed)
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
        if let Some(small) = &self.chunker_small_files {
            if self.version < SMALL_FILES_VERSION {
                return Err(Error::Invalid(format!(
                    "chunker_small_files needs format version {SMALL_FILES_VERSION} (the config says {})",
                    self.version
                )));
            }
            small.validate()?;
        }
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
    /// the format version (1, 2 or 3); version 4 writes version 3's.
    pub fn structure_version(&self) -> u8 {
        self.version.min(u32::from(crate::pack::TABLE_VERSION)) as u8
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

#[cfg(test)]
mod tests {
    use super::*;

    fn json(c: &RepoConfig) -> serde_json::Value {
        serde_json::to_value(c).unwrap()
    }

    #[test]
    fn version_4_states_small_file_chunking_and_older_versions_do_not() {
        let c = RepoConfig::new_default();
        assert_eq!(c.version, 4);
        let j = json(&c);
        assert_eq!(
            j["chunker_small_files"],
            serde_json::json!({"below": 1048576, "min": 8192, "avg": 32768, "max": 131072, "normalization": 1})
        );
        let back = RepoConfig::decode(&serde_json::to_vec(&j).unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.structure_version(), 3);
        for v in 1..=3 {
            let old = RepoConfig::new_default().with_version(v);
            assert!(json(&old).get("chunker_small_files").is_none());
            assert_eq!(old.structure_version(), v as u8);
            let chunker = old.file_chunkers(1).for_size(Some(10));
            assert_eq!(chunker.params(), ChunkerParams::FILES);
        }
    }

    #[test]
    fn a_config_stating_what_its_version_does_not_know_is_refused() {
        let mut j = json(&RepoConfig::new_default());
        j["version"] = 3.into();
        let e = RepoConfig::decode(&serde_json::to_vec(&j).unwrap()).unwrap_err();
        assert!(e.to_string().contains("chunker_small_files"), "{e}");
        j["version"] = 4.into();
        j["chunker_small_files"]["below"] = 0.into();
        assert!(RepoConfig::decode(&serde_json::to_vec(&j).unwrap()).is_err());
        j["chunker_small_files"]["below"] = 4096.into();
        j["chunker_small_files"]["max"] = 100.into();
        assert!(RepoConfig::decode(&serde_json::to_vec(&j).unwrap()).is_err());
        // Version 4 without the field cuts every file by chunker_files.
        let mut j = json(&RepoConfig::new_default());
        j.as_object_mut().unwrap().remove("chunker_small_files");
        let c = RepoConfig::decode(&serde_json::to_vec(&j).unwrap()).unwrap();
        assert_eq!(c.chunker_small_files, None);
        j["version"] = 5.into();
        assert!(RepoConfig::decode(&serde_json::to_vec(&j).unwrap()).is_err());
    }
}
