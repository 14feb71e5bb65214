//! Cron schedules of policy jobs: 5 fields, or 6 with seconds first
//! (`0 */6 * * *`, `*/10 * * * * *`, `0 3 * * SUN#1` for the first Sunday
//! of a month), evaluated in the policy's time zone (croner).

use crate::error::{Error, Result};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A parsed cron schedule and the text it came from.
#[derive(Clone, Debug)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.text == other.text
    }
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule> {
        let t = text.trim();
        let fields = t.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(Error::Config(format!(
                "schedule {t:?}: 5 fields (minute hour day month weekday), or 6 with seconds first"
            )));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(t)
            .map_err(|e| Error::Config(format!("schedule {t:?}: {e}")))?;
        Ok(Schedule {
            text: t.to_string(),
            cron,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first run strictly after `t`, in zone `tz`.
    pub fn next_after(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        self.cron
            .find_next_occurrence(&t.to_zoned(tz.clone()), false)
            .ok()
            .map(|n| n.timestamp())
    }

    /// The last run at or before `t`, in zone `tz`.
    pub fn last_at_or_before(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        self.cron
            .find_previous_occurrence(&t.to_zoned(tz.clone()), true)
            .ok()
            .map(|n| n.timestamp())
    }

    /// The next `n` runs after `t`.
    pub fn upcoming(&self, t: Timestamp, tz: &TimeZone, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            match self.next_after(at, tz) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Schedule::parse(&s).map_err(|e| serde::de::Error::custom(strip_config(e)))
    }
}

/// The message of a configuration error without its "invalid
/// configuration:" prefix (the policy loader adds its own).
pub(crate) fn strip_config(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn utc(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Timestamp {
        jiff::civil::date(y, mo, d)
            .at(h, mi, 0, 0)
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp()
    }

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    #[test]
    fn five_or_six_fields_in_the_policy_zone() {
        let s = Schedule::parse("0 */6 * * *").unwrap();
        let next = s.upcoming(utc(2026, 12, 7, 3, 10), &TimeZone::UTC, 3);
        assert_eq!(
            next,
            [
                utc(2026, 12, 7, 6, 0),
                utc(2026, 12, 7, 12, 0),
                utc(2026, 12, 7, 18, 0)
            ]
        );
        // 03:00 in Berlin is 02:00 UTC in winter.
        let s = Schedule::parse("0 3 * * *").unwrap();
        assert_eq!(
            s.next_after(utc(2026, 12, 7, 0, 0), &berlin()),
            Some(utc(2026, 12, 7, 2, 0))
        );
        // Seconds first.
        let s = Schedule::parse("*/10 * * * * *").unwrap();
        let t = utc(2026, 12, 7, 3, 0);
        assert_eq!(
            s.next_after(t, &TimeZone::UTC),
            Some(t + jiff::SignedDuration::from_secs(10))
        );
        // The first Sunday of the month.
        let s = Schedule::parse("0 3 * * SUN#1").unwrap();
        assert_eq!(
            s.next_after(utc(2026, 12, 7, 0, 0), &TimeZone::UTC),
            Some(utc(2027, 1, 3, 3, 0))
        );
        assert_eq!(
            s.last_at_or_before(utc(2026, 12, 7, 0, 0), &TimeZone::UTC),
            Some(utc(2026, 12, 6, 3, 0))
        );
        for bad in ["", "* * * *", "61 * * * *", "0 0 * * * * *", "every day"] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
