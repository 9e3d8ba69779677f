//! `history` and `status`: the repository's operation log, from every host that uses it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::journal::Record;
use crate::repository::Repository;

/// `history`: which records.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryRequest {
    /// Only this plan's operations.
    pub plan: Option<String>,
    /// Only operations of this kind (snapshot, restore, run, …).
    pub kind: Option<String>,
    /// Only failed or skipped operations.
    pub failed: bool,
    /// Only operations started at or after this moment.
    pub since: Option<DateTime<Utc>>,
}

/// The records, oldest first, and log objects that could not be read.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryReport {
    pub records: Vec<Record>,
    /// (object name, why).
    pub unreadable: Vec<(String, String)>,
}

/// The operation log, filtered. Reads only; takes no lock.
pub fn run(repo: &Repository, req: &HistoryRequest) -> Result<HistoryReport> {
    let (records, unreadable) = repo.log_records()?;
    let records = records
        .into_iter()
        .filter(|r| req.plan.as_ref().is_none_or(|p| r.plan.as_ref() == Some(p)))
        .filter(|r| req.kind.as_ref().is_none_or(|k| &r.kind == k))
        .filter(|r| !req.failed || matches!(r.result.as_str(), "failed" | "skipped"))
        .filter(|r| req.since.is_none_or(|t| r.started >= t))
        .collect();
    Ok(HistoryReport {
        records,
        unreadable,
    })
}

/// The record whose id is `id` or starts with it (case-insensitive).
pub fn status(repo: &Repository, id: &str) -> Result<Record> {
    let want = id.trim().to_ascii_uppercase();
    if want.is_empty() {
        return Err(Error::Selection("the operation id is empty".into()));
    }
    let (records, _) = repo.log_records()?;
    let mut found: Vec<Record> = records
        .into_iter()
        .filter(|r| r.id.starts_with(&want))
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::Selection(format!(
            "no operation {id} in this repository's log (see `repo history`)"
        ))),
        n => Err(Error::Selection(format!(
            "{n} operations start with {id}; give more of the id"
        ))),
    }
}
