//! When the service runs a plan: a standard five-field cron expression in local time
//! ("0 * * * *" hourly, "30 2 * * 1-5" at 02:30 on weekdays), or six fields with seconds
//! first ("*/10 * * * * *": every ten seconds).

use chrono::{DateTime, Local, Utc};
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};

/// A checked cron expression.
#[derive(Clone, Debug)]
pub struct Schedule {
    text: String,
    cron: croner::Cron,
}

impl Schedule {
    /// Parses five fields (minute hour day-of-month month day-of-week), six with seconds
    /// first, or a nickname such as `@daily`.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
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
            text: text.to_string(),
            cron,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first moment after `after` that matches.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&Local);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
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
        assert!(Schedule::parse("@daily").is_ok());
    }
}
