//! Parsing of the times, durations and sizes users type: `--at`, `--since`, `--until`,
//! rate limits and quotas.
//!
//! Accepted times: RFC 3339 (`2026-11-28T09:00:00Z`), local wall-clock times
//! (`2026-11-28 09:00`, `2026-11-28 09:00:30`, `2026-11-28`), `now`, `today` (local
//! midnight), `yesterday` (24 hours ago) and relative forms (`2h ago`, `3 days ago`, or a
//! bare duration such as `7d`, which means the same as `7d ago`).

use chrono::{DateTime, Duration, Local, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::error::{Error, Result};

/// Reads a fraction written as a percentage ("5%") or a number ("0.05"), between 0 and 1;
/// `what` names the option in messages.
pub fn parse_fraction(text: &str, what: &str) -> Result<f64> {
    let s = text.trim();
    let v: f64 = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => s.parse::<f64>(),
    }
    .map_err(|_| Error::Invalid(format!("{what} {s:?}: expected a percentage like 5%")))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(Error::Invalid(format!(
            "{what} {s:?}: must be between 0% and 100%"
        )));
    }
    Ok(v)
}

/// Parses "500GiB", "2 TB", "10m", "4096".
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = || {
        Error::Invalid(format!(
            "cannot read {s:?} as a size; use e.g. 500GiB or 2TB"
        ))
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024f64.powi(2),
        "mb" => 1e6,
        "g" | "gib" => 1024f64.powi(3),
        "gb" => 1e9,
        "t" | "tib" => 1024f64.powi(4),
        "tb" => 1e12,
        _ => return Err(bad()),
    };
    Ok((n * mult) as u64)
}

/// Parses a duration like `90s`, `15m`, `2h`, `7d`, `2w`, `3 months`, `1y`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || {
        Error::Invalid(format!(
            "cannot read {s:?} as a duration; use e.g. 30m, 2h, 7d, 4w, 6mo, 1y"
        ))
    };
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs: i64 = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        "mo" | "month" | "months" => 30 * 86_400,
        "y" | "year" | "years" => 365 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs)
        .and_then(Duration::try_seconds)
        .ok_or_else(bad)
}

/// A duration as people write it: `1h`, `90s`, `2h30m`, `0s`.
pub fn format_duration(d: std::time::Duration) -> String {
    let mut left = d.as_secs();
    if left == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, secs) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if left >= secs {
            out.push_str(&format!("{}{unit}", left / secs));
            left %= secs;
        }
    }
    out
}

/// Parses a point in time relative to `now`.
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "now" => return Ok(now),
        "today" => return local_midnight(now),
        "yesterday" => return Ok(now - Duration::days(1)),
        _ => {}
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt) {
            return from_local(naive, s);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return from_local(d.and_hms_opt(0, 0, 0).unwrap_or_default(), s);
    }
    let rel = t.strip_suffix("ago").unwrap_or(t).trim();
    if rel.starts_with(|c: char| c.is_ascii_digit()) {
        if let Ok(d) = parse_duration(rel) {
            return Ok(now - d);
        }
    }
    Err(Error::Invalid(format!(
        "cannot read {s:?} as a time; use RFC 3339 (2026-11-28T09:00:00Z), local \
         \"2026-11-28 09:00\", or a relative time (2h ago, 7d, yesterday)"
    )))
}

fn local_midnight(now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let day = now.with_timezone(&Local).date_naive();
    from_local(day.and_hms_opt(0, 0, 0).unwrap_or_default(), "today")
}

/// Interprets a wall-clock time in the local time zone; a time skipped by a DST change is
/// an error, an ambiguous one takes the earlier instant.
fn from_local(naive: NaiveDateTime, s: &str) -> Result<DateTime<Utc>> {
    match Local.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t.with_timezone(&Utc)),
        LocalResult::None => Err(Error::Invalid(format!(
            "{s:?} does not exist in the local time zone (daylight saving change)"
        ))),
    }
}

/// Serde for a [`std::time::Duration`] as whole seconds (requests and reports).
pub mod secs {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes whole seconds.
    pub fn serialize<S: Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    /// Reads whole seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        u64::deserialize(d).map(std::time::Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("valid")
    }

    #[test]
    fn rfc3339_and_relative() {
        let n = now();
        assert_eq!(
            parse_time("2026-11-28T09:00:00Z", n).ok(),
            Some(n - Duration::hours(3))
        );
        assert_eq!(
            parse_time("2026-11-28T10:00:00+01:00", n).ok(),
            Some(n - Duration::hours(3))
        );
        assert_eq!(parse_time("2h ago", n).ok(), Some(n - Duration::hours(2)));
        assert_eq!(
            parse_time("3 days ago", n).ok(),
            Some(n - Duration::days(3))
        );
        assert_eq!(parse_time("7d", n).ok(), Some(n - Duration::days(7)));
        assert_eq!(parse_time("yesterday", n).ok(), Some(n - Duration::days(1)));
        assert_eq!(parse_time("now", n).ok(), Some(n));
    }

    #[test]
    fn local_forms_round_trip() {
        let n = now();
        let t = parse_time("2026-11-28 09:00", n).expect("parses");
        let local = t.with_timezone(&Local).naive_local();
        assert_eq!(local.to_string(), "2026-11-28 09:00:00");
        let d = parse_time("2026-11-28", n).expect("parses");
        assert_eq!(
            d.with_timezone(&Local).naive_local().to_string(),
            "2026-11-28 00:00:00"
        );
    }

    #[test]
    fn rejects_nonsense() {
        for s in ["", "tomorrowish", "5 parsecs ago", "2026-13-01", "ago"] {
            assert!(parse_time(s, now()).is_err(), "{s:?} accepted");
        }
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("99999999999999999y").is_err());
    }
}
