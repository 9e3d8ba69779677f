//! `repo init`: a new repository at an empty location.

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::config::RepoConfig;
use crate::error::Result;
use crate::id::RepoId;
use crate::key::KdfParams;
use crate::repository::Repository;
use crate::secret::Password;

/// `init`: how new blobs are stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InitRequest {
    /// zstd level for new blobs (0 = store raw).
    pub compression: i32,
    /// Target pack size in MiB.
    pub pack_size_mib: u64,
    /// Format version (format-spec/changes.md): the newest by default; 1 for a repository
    /// that clients without compression units must also write to.
    pub format_version: u32,
}

impl Default for InitRequest {
    fn default() -> Self {
        let d = RepoConfig::new_default();
        Self {
            compression: d.compression_level,
            pack_size_mib: d.pack_size >> 20,
            format_version: d.version,
        }
    }
}

/// The new repository.
#[derive(Clone, Debug, Serialize)]
pub struct InitReport {
    /// Its id.
    pub id: RepoId,
    /// Where it is.
    pub location: String,
    /// Its format version.
    pub version: u32,
}

/// Creates a repository on `backend` opened by `password`; refuses a location that holds
/// one already, or anything else.
pub fn run(backend: &dyn Backend, password: &Password, req: &InitRequest) -> Result<InitReport> {
    let mut cfg = RepoConfig::new_default().with_version(req.format_version);
    cfg.compression_level = req.compression;
    cfg.pack_size = req.pack_size_mib.saturating_mul(1 << 20);
    let cfg = Repository::init(backend, password.expose(), cfg, KdfParams::new_default())?;
    Ok(InitReport {
        id: cfg.id,
        location: backend.location(),
        version: cfg.version,
    })
}
