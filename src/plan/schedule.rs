//! When the service runs a plan: a standard five-field cron expression in local time
//! ("0 * * * *" hourly, "30 2 * * 1-5" at 02:30 on weekdays), or six fields with seconds
//! first ("*/10 * * * * *": every ten seconds). A `TZ=Area/City` (or `CRON_TZ=`) prefix
//! reads the fields in that time zone instead ("TZ=America/New_York 0 2 * * *"), with
//! the IANA database built in, so daylight-saving changes follow that zone's rules.

use chrono::{DateTime, Local, Utc};
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};

/// A checked cron expression.
#[derive(Clone, Debug)]
pub struct Schedule {
    text: String,
    cron: croner::Cron,
    /// `None`: local time.
    tz: Option<chrono_tz::Tz>,
}

impl Schedule {
    /// Parses five fields (minute hour day-of-month month day-of-week), six with seconds
    /// first, or a nickname such as `@daily`.
    pub fn parse(text: &str) -> Result<Self> {
        let written = text.trim();
        let (tz, text) = match written.split_once(char::is_whitespace) {
            Some((head, rest)) if head.starts_with("TZ=") || head.starts_with("CRON_TZ=") => {
                let name = head.split_once('=').map_or("", |(_, n)| n);
                let tz = name.parse::<chrono_tz::Tz>().map_err(|_| {
                    Error::Invalid(format!(
                        "schedule {written:?}: unknown time zone {name:?} (an IANA name such as Europe/Paris, or UTC)"
                    ))
                })?;
                (Some(tz), rest.trim())
            }
            _ => (None, written),
        };
        if !text.starts_with('@') && !(5..=6).contains(&text.split_whitespace().count()) {
            return Err(Error::Invalid(format!(
                "schedule {text:?}: want five fields, minute hour day-of-month month day-of-week (e.g. \"0 * * * *\"), or six with seconds first"
            )));
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(text)
            .map_err(|e| Error::Invalid(format!("schedule {text:?}: {e}")))?;
        Ok(Self {
            text: written.to_string(),
            cron,
            tz,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first moment after `after` that matches.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.tz {
            Some(tz) => self
                .cron
                .find_next_occurrence(&after.with_timezone(&tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            None => self
                .cron
                .find_next_occurrence(&after.with_timezone(&Local), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_expressions() {
        let s = Schedule::parse("0 * * * *").unwrap();
        let now = Utc::now();
        let next = s.next_after(now).unwrap();
        assert!(next > now && next - now <= chrono::Duration::hours(1));
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("* * *").is_err());
        let every2 = Schedule::parse("*/2 * * * * *").unwrap();
        let next = every2.next_after(now).unwrap();
        assert!(next > now && next - now <= chrono::Duration::seconds(2));
        assert!(Schedule::parse("0 0 * * * * *").is_err(), "seven fields");
        let tokyo = Schedule::parse("TZ=Asia/Tokyo 0 9 * * *").unwrap();
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            tokyo.next_after(t("2025-12-31T23:00:00Z")),
            Some(t("2026-01-01T00:00:00Z")),
            "09:00 in Tokyo is midnight UTC"
        );
        let ny = Schedule::parse("CRON_TZ=America/New_York 30 2 * * *").unwrap();
        // Daylight time in July: 02:30 in New York is 06:30 UTC (in January, 07:30).
        assert_eq!(
            ny.next_after(t("2026-07-01T00:00:00Z")),
            Some(t("2026-07-01T06:30:00Z"))
        );
        assert_eq!(
            ny.next_after(t("2026-01-01T00:00:00Z")),
            Some(t("2026-01-01T07:30:00Z"))
        );
        assert_eq!(ny.as_str(), "CRON_TZ=America/New_York 30 2 * * *");
        let e = Schedule::parse("TZ=Mars/Olympus 0 * * * *")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown time zone"), "{e}");
        assert!(Schedule::parse("@daily").is_ok());
    }
}
