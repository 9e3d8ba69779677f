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

/// Whether `s` holds a state at or before the moment asked for: `at`, or with `ordinal`
/// exactly oplog timestamp (`at`'s second, `ordinal`). A MongoDB snapshot's moment is its
/// cluster time (the second and ordinal its collections were read at, as `coverage`
/// shows it), else a snapshot's moment is when its run started. In `at`'s own second a
/// cluster time qualifies only where that is certain: a whole second means its end, an
/// ordinal is compared, but a fractional time cuts the oplog by its entries' wall clock,
/// which a cluster time does not tell — a snapshot of that second may hold writes made
/// after it, so an earlier one answers (rolled forward).
pub fn not_after(s: &Snapshot, at: DateTime<Utc>, ordinal: Option<u32>) -> bool {
    let Some(ct) = s.mongodb.as_ref().and_then(|m| m.cluster_time) else {
        return s.time <= at;
    };
    match i64::from(ct.t).cmp(&at.timestamp()) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => match ordinal {
            Some(i) => ct.i <= i,
            None => at.timestamp_subsec_nanos() == 0,
        },
    }
}

/// The newest snapshot whose moment is at or before `at` ([`not_after`]) among `snaps`
/// (already filtered).
/// When several series have one, the choice would be a guess, so it is an error listing
/// them.
pub fn at_or_before(
    snaps: Vec<Snapshot>,
    at: DateTime<Utc>,
    ordinal: Option<u32>,
) -> Result<Snapshot> {
    if snaps.is_empty() {
        return Err(Error::Selection(
            "no snapshot matches the given source filters".into(),
        ));
    }
    let first = snaps.iter().map(|s| s.time).min().unwrap_or(at);
    let mut newest: Vec<Snapshot> = group(snaps)
        .into_values()
        .filter_map(|series| series.into_iter().rev().find(|s| not_after(s, at, ordinal)))
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

    /// A snapshot whose run started at `time` and, for MongoDB, whose collections were
    /// read at cluster time `ct`.
    fn snap(time: DateTime<Utc>, ct: Option<(u32, u32)>) -> Snapshot {
        Snapshot {
            version: 1,
            id: crate::id::SnapshotId::random(),
            time,
            host: "h".into(),
            user: "u".into(),
            source: crate::snapshot::Source {
                kind: if ct.is_some() { "mongodb" } else { "files" }.into(),
                description: "d".into(),
            },
            paths: Vec::new(),
            tags: Vec::new(),
            parent: None,
            tree: crate::id::TreeId::random(),
            summary: Default::default(),
            excludes: Default::default(),
            mongodb: ct.map(|(t, i)| crate::snapshot::MongoRecord {
                cluster_time: Some(crate::snapshot::ClusterTime { t, i }),
                consistency: "snapshot".into(),
                ..Default::default()
            }),
            repaired: None,
        }
    }

    #[test]
    fn a_snapshot_qualifies_for_a_moment_only_when_it_is_surely_not_after_it() {
        let t = 1_780_000_000u32;
        let sec = |s: i64, nanos: u32| DateTime::from_timestamp(s, nanos).unwrap();
        let at = sec(i64::from(t), 0);
        // Files: when the run started.
        assert!(not_after(&snap(at, None), at, None));
        assert!(!not_after(&snap(sec(i64::from(t), 1), None), at, None));
        // MongoDB: its cluster time, (second, ordinal).
        let m = snap(sec(i64::from(t) - 5, 0), Some((t, 5)));
        assert!(not_after(&m, at, None), "a whole second means its end");
        assert!(not_after(&m, at, Some(5)));
        assert!(
            !not_after(&m, at, Some(4)),
            "an earlier ordinal of its second"
        );
        assert!(
            !not_after(&m, sec(i64::from(t), 500_000_000), None),
            "which part of the second is unknown"
        );
        assert!(not_after(&m, sec(i64::from(t) + 1, 1), None));
        assert!(!not_after(&m, sec(i64::from(t) - 1, 0), Some(9)));
    }

    #[test]
    fn covers_is_component_wise() {
        assert!(covers("/home/u", "/home/u"));
        assert!(covers("/home/u", "/home/u/x"));
        assert!(covers("/home/u/", "/home/u/x"));
        assert!(!covers("/home/u", "/home/user"));
        assert!(covers("/", "/etc"));
    }
}
