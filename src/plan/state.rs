//! What this host remembers of its plans' runs: the last run and the last success, for
//! `repo plans`, for the `recovered` event and for staleness. A small JSON file per
//! plan, replaced atomically; losing it only loses those three facts.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One plan's remembered runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PlanState {
    /// The last run, whatever its result.
    pub last_run: Option<RunRecord>,
    /// When a run last succeeded (with or without warnings).
    pub last_success: Option<DateTime<Utc>>,
    /// The last check on its own schedule (or `--task check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<RunRecord>,
    /// The last prune on its own schedule (or `--task prune`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_prune: Option<RunRecord>,
}

/// A run, briefly.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its operation id.
    pub id: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// ok, warnings, failed or skipped.
    pub status: String,
    /// The snapshot it made.
    pub snapshot: Option<String>,
    /// Why it failed (secrets already removed, as in the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// This host's state: `$XDG_STATE_HOME/repo` (or the data directory).
pub fn state_root() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_dir)
        .map(|d| d.join("repo"))
}

/// Where plan states live: `<state root>/plans`.
pub fn default_dir() -> Option<PathBuf> {
    state_root().map(|d| d.join("plans"))
}

fn file(dir: &Path, plan: &str) -> PathBuf {
    dir.join(format!("{plan}.json"))
}

impl PlanState {
    /// The last run of `task` ("backup", "check" or "prune").
    pub fn last(&self, task: &str) -> Option<&RunRecord> {
        match task {
            "check" => self.last_check.as_ref(),
            "prune" => self.last_prune.as_ref(),
            _ => self.last_run.as_ref(),
        }
    }

    /// Remembers the run of `task` that just ended.
    pub fn set_last(&mut self, task: &str, run: RunRecord) {
        match task {
            "check" => self.last_check = Some(run),
            "prune" => self.last_prune = Some(run),
            _ => self.last_run = Some(run),
        }
    }

    /// The state of `plan` (empty when there is none, or it cannot be read).
    pub fn load(dir: &Path, plan: &str) -> PlanState {
        std::fs::read(file(dir, plan))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the state of `plan` (a temporary file renamed into place).
    pub fn save(&self, dir: &Path, plan: &str) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let path = file(dir, plan);
        let tmp = dir.join(format!(".{plan}.json.tmp-{}", std::process::id()));
        let body = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Internal(format!("encoding plan state: {e}")))?;
        std::fs::write(&tmp, body)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }
}
