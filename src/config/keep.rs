//! Keep rules: the `retention` table of a policy and the `--keep-*` flags
//! of `prune` (same names), and the calendar spans they take (`1y2m3d4h`,
//! restic's `ParseDuration`). What the rules keep is `ops::retention`.

use crate::error::{Error, Result};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A calendar span as restic writes it: `1y2m3d4h` (years, calendar
/// months, days, hours; each part optional, at least one given).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub years: i32,
    pub months: i32,
    pub days: i32,
    pub hours: i32,
}

impl Span {
    pub fn parse(s: &str) -> Result<Span> {
        let bad = || {
            Error::Config(format!(
                "invalid duration {s:?} (e.g. 2d, 12h, 1m14d, 1y: y years, m months, d days, h hours)"
            ))
        };
        let t = s.trim();
        if t.is_empty() {
            return Err(bad());
        }
        let mut span = Span::default();
        let mut num = String::new();
        let mut seen = String::new();
        for c in t.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let n: i32 = num.parse().map_err(|_| bad())?;
            num.clear();
            if seen.contains(c) {
                return Err(bad());
            }
            seen.push(c);
            match c {
                'y' => span.years = n,
                'm' => span.months = n,
                'd' => span.days = n,
                'h' => span.hours = n,
                _ => return Err(bad()),
            }
        }
        if !num.is_empty() {
            return Err(bad());
        }
        Ok(span)
    }

    pub fn is_zero(&self) -> bool {
        *self == Span::default()
    }

    /// `t` minus this span, in the wall-clock time of `tz`: years, months
    /// and days as Go's `AddDate` (overflowing days roll into the next
    /// month: March 31 minus one month is March 3 in a non-leap year), then
    /// the hours as elapsed time.
    pub fn before(&self, t: Timestamp, tz: &TimeZone) -> Timestamp {
        let local = t.to_zoned(tz.clone()).datetime();
        let months0 = i64::from(local.year()) * 12 + i64::from(local.month())
            - 1
            - i64::from(self.years) * 12
            - i64::from(self.months);
        let (year, month0) = (months0.div_euclid(12), months0.rem_euclid(12));
        let shifted = i16::try_from(year)
            .ok()
            .and_then(|y| Date::new(y, month0 as i8 + 1, 1).ok())
            .and_then(|first| {
                first
                    .checked_add(
                        jiff::Span::new().days(i64::from(local.day()) - 1 - i64::from(self.days)),
                    )
                    .ok()
            });
        let Some(date) = shifted else {
            return Timestamp::MIN;
        };
        let wall = date.to_datetime(local.time());
        resolve_local(tz, wall)
            .checked_sub(SignedDuration::from_hours(i64::from(self.hours)))
            .unwrap_or(Timestamp::MIN)
    }
}

/// A wall-clock time in `tz` as an instant: the earlier of two in a
/// repeated hour, the time just after a skipped hour.
fn resolve_local(tz: &TimeZone, wall: DateTime) -> Timestamp {
    tz.to_ambiguous_timestamp(wall)
        .compatible()
        .unwrap_or(Timestamp::MIN)
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Span, D::Error> {
        let s = String::deserialize(d)?;
        Span::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A keep policy: the `retention` table of a policy file, or the `--keep-*`
/// flags of `prune` (same names). Counts: `-1` keeps every bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within_hourly: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within_daily: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within_weekly: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within_monthly: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within_yearly: Option<Span>,
}

impl KeepPolicy {
    /// Whether no rule is given (such a policy would remove everything it
    /// may, so `prune` refuses it).
    pub fn is_empty(&self) -> bool {
        self.counts().iter().all(|(_, n)| n.unwrap_or(0) == 0)
            && self.keep_within.is_none_or(|s| s.is_zero())
            && self
                .withins()
                .iter()
                .all(|(_, s)| s.is_none_or(|s| s.is_zero()))
    }

    /// Checks the counts (a whole number, or -1 for every bucket).
    pub fn validate(&self) -> Result<()> {
        for (rule, n) in self.counts() {
            if let Some(n) = n {
                if n < -1 {
                    return Err(Error::Config(format!(
                        "keep_{} = {n}: a count is 0 or more, or -1 for every {}",
                        rule.name(),
                        rule.unit()
                    )));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn counts(&self) -> [(Rule, Option<i64>); 6] {
        [
            (Rule::Last, self.keep_last),
            (Rule::Hourly, self.keep_hourly),
            (Rule::Daily, self.keep_daily),
            (Rule::Weekly, self.keep_weekly),
            (Rule::Monthly, self.keep_monthly),
            (Rule::Yearly, self.keep_yearly),
        ]
    }

    pub(crate) fn withins(&self) -> [(Rule, Option<Span>); 5] {
        [
            (Rule::Hourly, self.keep_within_hourly),
            (Rule::Daily, self.keep_within_daily),
            (Rule::Weekly, self.keep_within_weekly),
            (Rule::Monthly, self.keep_within_monthly),
            (Rule::Yearly, self.keep_within_yearly),
        ]
    }

    /// The policy in words, e.g. `last 3, daily 14, within 2d`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for (rule, n) in self.counts() {
            match n {
                Some(-1) => parts.push(format!("{} all", rule.name())),
                Some(n) if n > 0 => parts.push(format!("{} {n}", rule.name())),
                _ => {}
            }
        }
        if let Some(s) = self.keep_within.filter(|s| !s.is_zero()) {
            parts.push(format!("within {s}"));
        }
        for (rule, s) in self.withins() {
            if let Some(s) = s.filter(|s| !s.is_zero()) {
                parts.push(format!("{} within {s}", rule.name()));
            }
        }
        parts.join(", ")
    }
}

/// A keep rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Last => "last",
            Rule::Hourly => "hourly",
            Rule::Daily => "daily",
            Rule::Weekly => "weekly",
            Rule::Monthly => "monthly",
            Rule::Yearly => "yearly",
        }
    }

    pub(crate) fn unit(self) -> &'static str {
        match self {
            Rule::Last => "backup",
            Rule::Hourly => "hour",
            Rule::Daily => "day",
            Rule::Weekly => "week",
            Rule::Monthly => "month",
            Rule::Yearly => "year",
        }
    }
}
