//! `history` and `status`: the runs this host remembers, from their JSON reports.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RunReport, Status};
use crate::error::{Error, Result};

/// `history`: which runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryRequest {
    /// Only this plan's.
    pub plan: Option<String>,
    /// Only failed or skipped runs.
    pub failed: bool,
    /// Only runs started at or after this moment.
    pub since: Option<DateTime<Utc>>,
}

/// Every run report under `state_dir/runs`, oldest first (operation ids sort by time);
/// unreadable files are left out.
fn all(state_dir: &Path) -> Result<Vec<RunReport>> {
    let dir = state_dir.join("runs");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
    };
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    Ok(names
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect())
}

/// The runs `req` selects, oldest first.
pub fn history(state_dir: &Path, req: &HistoryRequest) -> Result<Vec<RunReport>> {
    Ok(all(state_dir)?
        .into_iter()
        .filter(|r| req.plan.as_ref().is_none_or(|p| &r.plan == p))
        .filter(|r| !req.failed || matches!(r.status, Status::Failed | Status::Skipped))
        .filter(|r| req.since.is_none_or(|t| r.started >= t))
        .collect())
}

/// The run whose operation id is `id` or starts with it (case-insensitive).
pub fn status(state_dir: &Path, id: &str) -> Result<RunReport> {
    let want = id.trim().to_ascii_uppercase();
    if want.is_empty() {
        return Err(Error::Selection("an operation id is empty".into()));
    }
    let mut found: Vec<RunReport> = all(state_dir)?
        .into_iter()
        .filter(|r| r.operation.starts_with(&want))
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::Selection(format!(
            "no operation {id} on this host (see `repo history`)"
        ))),
        n => Err(Error::Selection(format!(
            "{n} operations start with {id}; give more of the id"
        ))),
    }
}
