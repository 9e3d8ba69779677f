//! Retention policies: which snapshots `repo forget` keeps, and by which rule.
//!
//! Rules follow the usual "grandfather-father-son" scheme: walking a group's snapshots
//! newest first, `keep_daily: 7` keeps the newest snapshot of each of the last 7 days that
//! have one, and so on for each period. A snapshot kept by any rule is kept. Periods are
//! calendar periods in local time (what a user means by "daily").

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Local, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::snapshot::Snapshot;

/// How many snapshots to keep per rule. `None` means the rule is off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Keep the newest N snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<u32>,
    /// The same per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    /// The same per ISO week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    /// The same per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
    /// The same per year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot taken within this duration (e.g. "30d") before the group's newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within: Option<String>,
    /// Keep every snapshot carrying one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_tags: Vec<String>,
}

/// What happens to one snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    /// The snapshot.
    #[serde(serialize_with = "short_snapshot")]
    pub snapshot: Snapshot,
    /// Kept or removed.
    pub keep: bool,
    /// The rules that keep it (empty when removed).
    pub reasons: Vec<String>,
}

fn short_snapshot<S: serde::Serializer>(
    s: &Snapshot,
    ser: S,
) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Short<'a> {
        id: String,
        time: DateTime<Utc>,
        host: &'a str,
        paths: &'a [String],
        tags: &'a [String],
    }
    Short {
        id: s.id.to_hex(),
        time: s.time,
        host: &s.host,
        paths: &s.paths,
        tags: &s.tags,
    }
    .serialize(ser)
}

impl RetentionPolicy {
    /// Whether no rule is set (such a policy would remove everything, so it is refused).
    pub fn is_empty(&self) -> bool {
        *self == RetentionPolicy::default()
    }

    /// One line, e.g. "last 3, daily 7, within 30d".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let counts = [
            ("last", self.keep_last),
            ("hourly", self.keep_hourly),
            ("daily", self.keep_daily),
            ("weekly", self.keep_weekly),
            ("monthly", self.keep_monthly),
            ("yearly", self.keep_yearly),
        ];
        for (name, n) in counts {
            if let Some(n) = n {
                parts.push(format!("{name} {n}"));
            }
        }
        if let Some(w) = &self.keep_within {
            parts.push(format!("within {w}"));
        }
        for t in &self.keep_tags {
            parts.push(format!("tag {t}"));
        }
        parts.join(", ")
    }

    /// Checks the policy can be applied (non-empty, durations readable).
    pub fn validate(&self) -> Result<()> {
        if self.is_empty() {
            return Err(Error::Invalid(
                "empty retention policy: give at least one --keep-* option (it would remove every snapshot)".into(),
            ));
        }
        if let Some(w) = &self.keep_within {
            crate::timespec::parse_duration(w)?;
        }
        Ok(())
    }

    /// Decides for one group of snapshots (any order); returns decisions newest first.
    pub fn apply(&self, mut snaps: Vec<Snapshot>) -> Result<Vec<Decision>> {
        self.validate()?;
        snaps.sort_by(|a, b| b.time.cmp(&a.time).then(b.id.cmp(&a.id)));
        let within = match &self.keep_within {
            Some(w) => Some(crate::timespec::parse_duration(w)?),
            None => None,
        };
        let newest = snaps.first().map(|s| s.time);
        type Bucket = fn(DateTime<Local>) -> i64;
        let periodic: [(&str, Option<u32>, Bucket); 6] = [
            ("last", self.keep_last, |_| 0),
            ("hourly", self.keep_hourly, |t| {
                day_number(t) * 24 + i64::from(t.hour())
            }),
            ("daily", self.keep_daily, day_number),
            ("weekly", self.keep_weekly, |t| {
                let w = t.iso_week();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }),
            ("monthly", self.keep_monthly, |t| {
                i64::from(t.year()) * 100 + i64::from(t.month())
            }),
            ("yearly", self.keep_yearly, |t| i64::from(t.year())),
        ];
        let mut left: Vec<u32> = periodic.iter().map(|(_, n, _)| n.unwrap_or(0)).collect();
        let mut last_bucket: Vec<Option<i64>> = vec![None; periodic.len()];
        let mut out = Vec::with_capacity(snaps.len());
        for (i, s) in snaps.into_iter().enumerate() {
            let local = s.time.with_timezone(&Local);
            let mut reasons = Vec::new();
            for (r, (name, _, bucket)) in periodic.iter().enumerate() {
                if left[r] == 0 {
                    continue;
                }
                // keep-last counts snapshots, not periods.
                let b = if *name == "last" {
                    i as i64
                } else {
                    bucket(local)
                };
                if last_bucket[r] != Some(b) {
                    last_bucket[r] = Some(b);
                    left[r] -= 1;
                    reasons.push(name.to_string());
                }
            }
            if let (Some(w), Some(newest)) = (within, newest) {
                if s.time >= newest - w {
                    reasons.push(format!(
                        "within {}",
                        self.keep_within.as_deref().unwrap_or("")
                    ));
                }
            }
            for t in &self.keep_tags {
                if s.tags.contains(t) {
                    reasons.push(format!("tag {t}"));
                }
            }
            out.push(Decision {
                keep: !reasons.is_empty(),
                reasons,
                snapshot: s,
            });
        }
        Ok(out)
    }
}

fn day_number(t: DateTime<Local>) -> i64 {
    i64::from(t.date_naive().num_days_from_ce())
}

/// What snapshots are grouped by when a policy is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBy {
    /// Same host.
    pub host: bool,
    /// Same paths.
    pub paths: bool,
    /// Same source kind.
    pub source: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy {
            host: true,
            paths: true,
            source: true,
        }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let mut g = GroupBy {
            host: false,
            paths: false,
            source: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => g.host = true,
                "paths" | "path" => g.paths = true,
                "source" => g.source = true,
                other => {
                    return Err(Error::Invalid(format!(
                        "cannot group by {other:?}: use host, paths, source (comma-separated), or \"\" for one group"
                    )))
                }
            }
        }
        Ok(g)
    }
}

impl std::fmt::Display for GroupBy {
    /// The comma-separated form `FromStr` reads ("host,paths,source"; "" for one group).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<&str> = [
            (self.host, "host"),
            (self.paths, "paths"),
            (self.source, "source"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        f.write_str(&parts.join(","))
    }
}

impl Serialize for GroupBy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for GroupBy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A group's key: the parts of host/paths/source it is grouped by.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    /// Host, when grouped by host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Source kind, when grouped by source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Sorted paths, when grouped by paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(h) = &self.host {
            parts.push(format!("host {h}"));
        }
        if let Some(s) = &self.source {
            parts.push(format!("source {s}"));
        }
        if let Some(p) = &self.paths {
            parts.push(format!("paths {}", p.join(" ")));
        }
        if parts.is_empty() {
            parts.push("all snapshots".into());
        }
        write!(f, "{}", parts.join(", "))
    }
}

/// Splits snapshots into retention groups.
pub fn group(snaps: Vec<Snapshot>, by: GroupBy) -> BTreeMap<GroupKey, Vec<Snapshot>> {
    let mut out: BTreeMap<GroupKey, Vec<Snapshot>> = BTreeMap::new();
    for s in snaps {
        let series = crate::selection::SeriesKey::of(&s);
        let key = GroupKey {
            host: by.host.then_some(series.host),
            source: by.source.then_some(series.source),
            paths: by.paths.then_some(series.paths),
        };
        out.entry(key).or_default().push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{SnapshotId, TreeId};
    use chrono::TimeZone;

    fn snap_at(t: DateTime<Utc>, tags: &[&str]) -> Snapshot {
        Snapshot {
            version: 1,
            id: SnapshotId::random(),
            time: t,
            host: "h".into(),
            user: "u".into(),
            source: crate::snapshot::Source {
                kind: "files".into(),
                description: "/x".into(),
            },
            paths: vec!["/x".into()],
            tags: tags.iter().map(|t| t.to_string()).collect(),
            parent: None,
            tree: TreeId::random(),
            summary: Default::default(),
            excludes: Default::default(),
            mongodb: None,
            repaired: None,
        }
    }

    fn kept(p: &RetentionPolicy, snaps: &[Snapshot]) -> Vec<DateTime<Utc>> {
        let mut v: Vec<_> = p
            .apply(snaps.to_vec())
            .unwrap()
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| d.snapshot.time)
            .collect();
        v.sort();
        v
    }

    /// One snapshot every 6 hours for 60 days (local midday-aligned so days are unambiguous).
    fn series() -> Vec<Snapshot> {
        let start = Local
            .with_ymd_and_hms(2026, 1, 1, 1, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        (0..240)
            .map(|i| snap_at(start + chrono::Duration::hours(6 * i), &[]))
            .collect()
    }

    #[test]
    fn keep_last_and_daily_pick_the_newest_per_period() {
        let snaps = series();
        let newest = snaps.last().unwrap().time;
        let p = RetentionPolicy {
            keep_last: Some(2),
            ..Default::default()
        };
        assert_eq!(
            kept(&p, &snaps),
            vec![newest - chrono::Duration::hours(6), newest]
        );
        let p = RetentionPolicy {
            keep_daily: Some(3),
            ..Default::default()
        };
        let k = kept(&p, &snaps);
        assert_eq!(k.len(), 3);
        // Each kept snapshot is the last of its local day.
        for t in &k {
            let next = *t + chrono::Duration::hours(6);
            assert!(
                next > newest
                    || next.with_timezone(&Local).date_naive()
                        != t.with_timezone(&Local).date_naive()
            );
        }
    }

    #[test]
    fn rules_combine_and_report_reasons() {
        let snaps = series();
        let p = RetentionPolicy {
            keep_last: Some(1),
            keep_daily: Some(1),
            keep_weekly: Some(4),
            keep_monthly: Some(2),
            keep_tags: vec!["gold".into()],
            ..Default::default()
        };
        let mut with_tag = snaps.clone();
        with_tag[0].tags.push("gold".into());
        let d = p.apply(with_tag).unwrap();
        let newest = &d[0];
        assert_eq!(newest.reasons, vec!["last", "daily", "weekly", "monthly"]);
        let oldest = d.last().unwrap();
        assert!(oldest.keep && oldest.reasons == vec!["tag gold"]);
        let n_kept = d.iter().filter(|d| d.keep).count();
        // newest (all rules) + 3 more weeks + 1 more month (overlapping possible) + tag.
        assert!((5..=7).contains(&n_kept), "{n_kept}");
    }

    #[test]
    fn keep_within_is_relative_to_the_newest_snapshot() {
        let snaps = series();
        let p = RetentionPolicy {
            keep_within: Some("2d".into()),
            ..Default::default()
        };
        // 2 days of 6-hourly snapshots plus the boundary one.
        assert_eq!(kept(&p, &snaps).len(), 9);
    }

    #[test]
    fn empty_policy_is_refused() {
        assert!(RetentionPolicy::default().apply(series()).is_err());
        assert!("host,paths".parse::<GroupBy>().is_ok());
        assert!("colour".parse::<GroupBy>().is_err());
    }
}
