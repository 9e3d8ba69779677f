//! Choosing snapshots: filters shared by `snapshots`, `restore --at`, `find`, `scan` and
//! retention, the grouping of snapshots into series, and point-in-time selection.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::snapshot::Snapshot;

/// Which snapshots a command looks at. Empty lists mean "any".
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotFilter {
    /// Snapshot host must be one of these.
    pub hosts: Vec<String>,
    /// Snapshot must cover each of these absolute paths (one of its paths is the path or an
    /// ancestor of it).
    pub paths: Vec<String>,
    /// Snapshot must carry every one of these tags.
    pub tags: Vec<String>,
    /// Source kind ("files", "mongodb").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Taken at or after this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Taken at or before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// Whether snapshot path `root` covers `path` (equal, or an ancestor of it).
pub fn covers(root: &str, path: &str) -> bool {
    let root = root.trim_end_matches('/');
    path == root
        || root.is_empty()
        || (path.starts_with(root) && path.as_bytes().get(root.len()) == Some(&b'/'))
}

impl SnapshotFilter {
    /// True when no filter is set (every snapshot matches).
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
            && self.paths.is_empty()
            && self.tags.is_empty()
            && self.source.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// Whether `s` passes every filter.
    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.host))
            && self
                .paths
                .iter()
                .all(|p| s.paths.iter().any(|root| covers(root, p)))
            && self.tags.iter().all(|t| s.tags.contains(t))
            && self
                .source
                .as_ref()
                .is_none_or(|k| s.source.kind.split('+').any(|p| p == k))
            && self.since.is_none_or(|t| s.time >= t)
            && self.until.is_none_or(|t| s.time <= t)
    }

    /// Keeps the matching snapshots, oldest first.
    pub fn apply(&self, mut snaps: Vec<Snapshot>) -> Vec<Snapshot> {
        snaps.retain(|s| self.matches(s));
        snaps.sort_by_key(|s| s.time);
        snaps
    }
}

/// The series a snapshot belongs to: same host, source kind and paths.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct SeriesKey {
    /// Host name.
    pub host: String,
    /// Source kind.
    pub source: String,
    /// Sorted snapshot paths (or the source description when there are none).
    pub paths: Vec<String>,
}

impl SeriesKey {
    /// The series of `s`.
    pub fn of(s: &Snapshot) -> Self {
        let mut paths = s.paths.clone();
        if paths.is_empty() {
            paths.push(s.source.description.clone());
        }
        paths.sort();
        SeriesKey {
            host: s.host.clone(),
            source: s.source.kind.clone(),
            paths,
        }
    }
}

impl std::fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}:{}", self.host, self.source, self.paths.join(" "))
    }
}

/// Splits snapshots (oldest first) into series, each oldest first.
pub fn group(snaps: Vec<Snapshot>) -> BTreeMap<SeriesKey, Vec<Snapshot>> {
    let mut out: BTreeMap<SeriesKey, Vec<Snapshot>> = BTreeMap::new();
    for s in snaps {
        out.entry(SeriesKey::of(&s)).or_default().push(s);
    }
    out
}

/// The moment a snapshot holds: a MongoDB snapshot's cluster time (the second its
/// collections were read at, which `coverage` shows), else when its run started.
pub fn moment(s: &Snapshot) -> DateTime<Utc> {
    s.mongodb
        .as_ref()
        .and_then(|m| m.cluster_time)
        .and_then(|t| DateTime::from_timestamp(i64::from(t.t), 0))
        .unwrap_or(s.time)
}

/// The newest snapshot whose moment is at or before `at` among `snaps` (already filtered).
/// When several series have one, the choice would be a guess, so it is an error listing
/// them.
pub fn at_or_before(snaps: Vec<Snapshot>, at: DateTime<Utc>) -> Result<Snapshot> {
    if snaps.is_empty() {
        return Err(Error::Selection(
            "no snapshot matches the given source filters".into(),
        ));
    }
    let first = snaps.iter().map(|s| s.time).min().unwrap_or(at);
    let mut newest: Vec<Snapshot> = group(snaps)
        .into_values()
        .filter_map(|series| series.into_iter().rev().find(|s| moment(s) <= at))
        .collect();
    match newest.len() {
        0 => Err(Error::Selection(format!(
            "no snapshot was taken at or before {}; the first matching one is from {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            first.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))),
        1 => Ok(newest.remove(0)),
        _ => {
            let list: Vec<String> = newest
                .iter()
                .map(|s| {
                    format!(
                        "  {} {} {}",
                        s.id.short(),
                        s.time.format("%Y-%m-%d %H:%M:%S"),
                        SeriesKey::of(s)
                    )
                })
                .collect();
            Err(Error::Selection(format!(
                "several sources have a snapshot at or before {}; narrow it with --host, \
                 --path or --tag:\n{}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                list.join("\n")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_is_component_wise() {
        assert!(covers("/home/u", "/home/u"));
        assert!(covers("/home/u", "/home/u/x"));
        assert!(covers("/home/u/", "/home/u/x"));
        assert!(!covers("/home/u", "/home/user"));
        assert!(covers("/", "/etc"));
    }
}
