//! `repo settings`: the repository-wide quota and stored retention policy.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ops::context::Ctx;
use crate::repository::Repository;
use crate::settings::Settings;

/// `settings`: changes to make (none: just show them).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsRequest {
    /// Set the size quota, in bytes.
    pub set_quota: Option<u64>,
    /// Remove the quota.
    pub remove_quota: bool,
    /// Remove the stored retention policy.
    pub clear_policy: bool,
}

/// The settings after the change, and the space used.
#[derive(Clone, Debug, Serialize)]
pub struct SettingsReport {
    /// The settings.
    #[serde(flatten)]
    pub settings: Settings,
    /// Bytes the repository occupies.
    pub used_bytes: u64,
}

/// Changes (then shows) the settings.
pub fn run(repo: &Repository, req: &SettingsRequest, _ctx: &Ctx) -> Result<SettingsReport> {
    if req.set_quota.is_some() && req.remove_quota {
        return Err(Error::Invalid(
            "set the quota or remove it, not both".into(),
        ));
    }
    let mut s = Settings::load(repo.backend(), repo.key())?;
    let mut changed = false;
    if let Some(q) = req.set_quota {
        if q == 0 {
            return Err(Error::Invalid("a quota of 0 bytes allows nothing".into()));
        }
        s.quota_bytes = Some(q);
        changed = true;
    }
    if req.remove_quota {
        s.quota_bytes = None;
        changed = true;
    }
    if req.clear_policy {
        s.retention = None;
        changed = true;
    }
    if changed {
        s.save(repo.backend(), repo.key())?;
    }
    Ok(SettingsReport {
        settings: s,
        used_bytes: repo.total_size()?,
    })
}
