//! Parsing of the times, durations and sizes users type: `--at`, `--since`, `--until`,
//! rate limits and quotas (and sizes written back for them to read).
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

/// A size for people to read, in binary units: "512 B", "1.5 GiB" (what the CLI and the
/// dashboard show).
pub fn format_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
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

/// Parses a duration — one syntax for every flag and config key: `500ms`, `90s`, `15m`,
/// `2h`, `7d`, `2w`, `6mo`, `1y`, and sums of them (`1h30m`, `2h 15m`). Months are 30 days
/// and years 365 days (retention counts in calendar-free units); every other unit is read
/// by the `humantime` crate.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || {
        Error::Invalid(format!(
            "cannot read {s:?} as a duration; use e.g. 500ms, 90s, 30m, 2h, 7d, 4w, 6mo, 1y or 1h30m"
        ))
    };
    let t = s.trim();
    if t.is_empty() || !t.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad());
    }
    let mut total = Duration::zero();
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let (num, after) = rest.split_at(digits);
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let n: i64 = num.parse().map_err(|_| bad())?;
        if unit == "M" {
            // humantime's months, or minutes? Neither guess is safe.
            return Err(Error::Invalid(format!(
                "{s:?}: \"M\" is ambiguous; write m for minutes or mo for months"
            )));
        }
        let days = match unit.to_ascii_lowercase().as_str() {
            "mo" | "month" | "months" => Some(30),
            "y" | "yr" | "yrs" | "year" | "years" => Some(365),
            _ => None,
        };
        let part = match days {
            Some(d) => n
                .checked_mul(d * 86_400)
                .and_then(Duration::try_seconds)
                .ok_or_else(bad)?,
            // Units are read in lower case ("5H" is five hours); "M" was refused above.
            None if unit.is_empty() => return Err(bad()),
            None => {
                let std = humantime::parse_duration(&format!("{n}{}", unit.to_ascii_lowercase()))
                    .map_err(|_| bad())?;
                Duration::from_std(std).map_err(|_| bad())?
            }
        };
        total = total.checked_add(&part).ok_or_else(bad)?;
        rest = next.trim_start();
    }
    Ok(total)
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
    // "last week", "last 3 days": the same as "1w ago", "3d ago".
    if let Some(span) = t.to_ascii_lowercase().strip_prefix("last ") {
        let span = span.trim();
        let span = if span.starts_with(|c: char| c.is_ascii_digit()) {
            span.to_string()
        } else {
            format!("1{span}")
        };
        if let Ok(d) = parse_duration(&span) {
            return Ok(now - d);
        }
    }
    Err(Error::Invalid(format!(
        "cannot read {s:?} as a time; use RFC 3339 (2026-11-28T09:00:00Z), local \
         \"2026-11-28 09:00\" or 2026-11-28, now, today, yesterday, or a relative time \
         (2h ago, 7d, 1h30m ago, last week, last 3 days)"
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

    #[test]
    fn sizes_are_written_in_binary_units() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1024), "1.0 KiB");
        assert_eq!(format_size(1536 << 20), "1.5 GiB");
        assert_eq!(format_size(u64::MAX), "16384.0 PiB");
    }

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
        for s in ["ms", "5 parsecs", "1h30", "-5s", "5M"] {
            assert!(parse_duration(s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn one_duration_syntax() {
        let d = |s: &str| parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(d("500ms"), Duration::milliseconds(500));
        assert_eq!(d("90s"), Duration::seconds(90));
        assert_eq!(d("2h"), Duration::hours(2));
        assert_eq!(d("7d"), Duration::days(7));
        assert_eq!(d("1w"), Duration::days(7));
        assert_eq!(d("6mo"), Duration::days(180));
        assert_eq!(d("1y"), Duration::days(365));
        assert_eq!(d("1h30m"), Duration::minutes(90));
        assert_eq!(d("2h 15m"), Duration::minutes(135));
        assert_eq!(d("3 days"), Duration::days(3));
        assert_eq!(d("0s"), Duration::zero());
        let n = now();
        assert_eq!(parse_time("last week", n).ok(), Some(n - Duration::days(7)));
        assert_eq!(
            parse_time("last 3 days", n).ok(),
            Some(n - Duration::days(3))
        );
        assert_eq!(
            parse_time("1h30m ago", n).ok(),
            Some(n - Duration::minutes(90))
        );
        let e = parse_time("the day before", n).unwrap_err().to_string();
        assert!(e.contains("last week") && e.contains("2h ago"), "{e}");
    }
}
