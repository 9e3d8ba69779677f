//! Repository-wide settings that may change after `init`: the default retention policy
//! (so every host and schedule applies the same one) and an optional size quota.
//! Stored sealed as the `settings` object; absent means defaults.

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::retention::RetentionPolicy;

/// Object name of the settings.
pub const SETTINGS_PATH: &str = "settings";

/// The settings object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Applied by `repo forget` when no `--keep-*` option is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionPolicy>,
    /// Maximum repository size in bytes; a snapshot that would exceed it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<u64>,
}

impl Settings {
    /// Loads the settings (defaults when the object does not exist).
    pub fn load(backend: &dyn Backend, key: &MasterKey) -> Result<Self> {
        match backend.get(SETTINGS_PATH) {
            Ok(bytes) => Self::decode(&key.open(&bytes, "settings")?),
            Err(Error::Missing(_)) => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Decodes the settings' plaintext.
    pub fn decode(plain: &[u8]) -> Result<Self> {
        serde_json::from_slice(plain).map_err(|e| Error::corrupt("settings", e.to_string()))
    }

    /// Replaces the stored settings.
    pub fn save(&self, backend: &dyn Backend, key: &MasterKey) -> Result<()> {
        let plain = serde_json::to_vec(self)
            .map_err(|e| Error::Invalid(format!("encoding settings: {e}")))?;
        backend.put(SETTINGS_PATH, &key.seal(&plain))
    }
}
