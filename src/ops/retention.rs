//! Retention: which backups a keep policy keeps, and why. The semantics
//! are restic's `forget` (its golden results are in
//! `tests/fixtures/restic-policy/` and a test reproduces them):
//!
//! - backups are taken newest first; `keep_last N` keeps the N newest;
//! - `keep_hourly/daily/weekly/monthly/yearly N` keep the newest backup of
//!   each of the N newest hours/days/ISO weeks/months/years that have a
//!   backup (buckets in the policy's time zone); while a rule still has
//!   count left when the oldest backup is reached, the oldest is kept too
//!   ("oldest"), so a young history is not cut short;
//! - `N = -1` means every bucket;
//! - `keep_within D` keeps every backup newer than the newest minus D
//!   (`1y2m3d4h`: calendar years, months, days, then hours, as restic);
//!   `keep_within_daily D` (and hourly, weekly, ...) keeps the newest backup
//!   of each bucket within D.
//!
//! This module plans only; `prune` adds what is never removed (the newest
//! complete and the newest verified backup, pinned ones, held ones) and
//! does the deleting.

pub use crate::config::keep::{KeepPolicy, Rule, Span};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The bucket of local time `t` (`nr`: position newest first, the
/// bucket of `last`) as a number, and as people read it.
fn bucket(rule: Rule, t: &Zoned, nr: usize) -> (i64, String) {
    let (y, m, d, h) = (
        i64::from(t.year()),
        i64::from(t.month()),
        i64::from(t.day()),
        i64::from(t.hour()),
    );
    match rule {
        Rule::Last => (nr as i64, (nr + 1).to_string()),
        Rule::Hourly => (
            y * 1_000_000 + m * 10_000 + d * 100 + h,
            format!("{y:04}-{m:02}-{d:02} {h:02}h"),
        ),
        Rule::Daily => (y * 10_000 + m * 100 + d, format!("{y:04}-{m:02}-{d:02}")),
        Rule::Weekly => {
            let w = t.date().iso_week_date();
            (
                i64::from(w.year()) * 100 + i64::from(w.week()),
                format!("{:04}-W{:02}", w.year(), w.week()),
            )
        }
        Rule::Monthly => (y * 100 + m, format!("{y:04}-{m:02}")),
        Rule::Yearly => (y, format!("{y:04}")),
    }
}

/// Why a backup is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// A counted rule: the bucket it stands for (`daily 2026-12-06`,
    /// `last 1`); `oldest` when kept as the oldest backup while the rule
    /// had count left.
    Rule {
        rule: Rule,
        bucket: String,
        oldest: bool,
    },
    /// Newer than the newest backup minus `within`.
    Within { within: Span },
    /// The newest backup of its bucket within `within`.
    RuleWithin {
        rule: Rule,
        within: Span,
        bucket: String,
        oldest: bool,
    },
}

impl fmt::Display for Reason {
    /// As people read it: `daily 2026-12-06`, `oldest monthly 2026-11`,
    /// `within 2d`, `daily within 7d 2026-12-06`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Rule {
                rule,
                bucket,
                oldest,
            } => write!(
                f,
                "{}{} {bucket}",
                if *oldest { "oldest " } else { "" },
                rule.name()
            ),
            Reason::Within { within } => write!(f, "within {within}"),
            Reason::RuleWithin {
                rule,
                within,
                bucket,
                oldest,
            } => write!(
                f,
                "{}{} within {within} {bucket}",
                if *oldest { "oldest " } else { "" },
                rule.name()
            ),
        }
    }
}

impl Reason {
    /// restic's words for the same reason (`daily snapshot`, `oldest
    /// monthly snapshot`, `within 1y1m1d`, `daily within 7d`).
    pub fn restic_words(&self) -> String {
        let oldest = |o: bool| if o { "oldest " } else { "" };
        match self {
            Reason::Rule {
                rule, oldest: o, ..
            } => {
                format!("{}{} snapshot", oldest(*o), rule.name())
            }
            Reason::Within { within } => format!("within {within}"),
            Reason::RuleWithin {
                rule,
                within,
                oldest: o,
                ..
            } => format!("{}{} within {within}", oldest(*o), rule.name()),
        }
    }
}

/// The decision for one backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Index of the backup in the caller's list.
    pub index: usize,
    pub keep: bool,
    pub reasons: Vec<Reason>,
    /// Counts left per counted rule after this backup (-1: every bucket),
    /// rules without count left omitted, as restic reports them.
    pub counters: Vec<(Rule, i64)>,
}

/// Applies `policy` to backups taken at `times` (any order; equal times
/// keep their order), in time zone `tz`. Returns one decision per backup,
/// newest first. An empty policy keeps nothing: callers refuse it.
pub fn plan(times: &[Timestamp], policy: &KeepPolicy, tz: &TimeZone) -> Vec<Decision> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    // Newest first; a stable sort keeps equal times in the caller's order.
    order.sort_by(|a, b| times[*b].cmp(&times[*a]));
    let Some(&newest) = order.first() else {
        return Vec::new();
    };
    let latest = times[newest];
    let n = order.len();
    struct Counted {
        rule: Rule,
        count: i64,
        last: Option<i64>,
    }
    let mut counted: Vec<Counted> = policy
        .counts()
        .into_iter()
        .filter_map(|(rule, c)| {
            c.filter(|c| *c != 0).map(|count| Counted {
                rule,
                count,
                last: None,
            })
        })
        .collect();
    struct Within {
        rule: Rule,
        within: Span,
        since: Timestamp,
        last: Option<i64>,
    }
    let mut withins: Vec<Within> = policy
        .withins()
        .into_iter()
        .filter_map(|(rule, s)| {
            s.filter(|s| !s.is_zero()).map(|within| Within {
                rule,
                within,
                since: within.before(latest, tz),
                last: None,
            })
        })
        .collect();
    let within = policy
        .keep_within
        .filter(|s| !s.is_zero())
        .map(|s| (s, s.before(latest, tz)));

    let mut out = Vec::with_capacity(n);
    for (nr, &i) in order.iter().enumerate() {
        let t = times[i];
        let local = t.to_zoned(tz.clone());
        let is_oldest = nr + 1 == n;
        let mut reasons = Vec::new();
        if let Some((span, since)) = within {
            if t > since {
                reasons.push(Reason::Within { within: span });
            }
        }
        for b in counted.iter_mut() {
            if b.count > 0 || b.count == -1 {
                let (val, bucket) = bucket(b.rule, &local, nr);
                let same = b.last == Some(val);
                if !same || is_oldest {
                    b.last = Some(val);
                    if b.count > 0 {
                        b.count -= 1;
                    }
                    reasons.push(Reason::Rule {
                        rule: b.rule,
                        bucket,
                        oldest: same,
                    });
                }
            }
        }
        for w in withins.iter_mut() {
            if t > w.since {
                let (val, bucket) = bucket(w.rule, &local, nr);
                let same = w.last == Some(val);
                if !same || is_oldest {
                    w.last = Some(val);
                    reasons.push(Reason::RuleWithin {
                        rule: w.rule,
                        within: w.within,
                        bucket,
                        oldest: same,
                    });
                }
            }
        }
        let counters = counted
            .iter()
            .filter(|b| b.count != 0)
            .map(|b| (b.rule, b.count))
            .collect();
        out.push(Decision {
            index: i,
            keep: !reasons.is_empty(),
            reasons,
            counters,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashMap};

    /// A time written as restic's fixtures write it, UTC.
    fn utc(s: &str) -> Timestamp {
        let civil = s.trim_end_matches('Z').replacen(' ', "T", 1);
        civil
            .parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    #[test]
    fn spans_parse_and_print_as_restic() {
        let s = Span::parse("1y1d1m").unwrap();
        assert_eq!(
            s,
            Span {
                years: 1,
                months: 1,
                days: 1,
                hours: 0
            }
        );
        assert_eq!(s.to_string(), "1y1m1d");
        assert_eq!(Span::parse("13d23h").unwrap().to_string(), "13d23h");
        for bad in ["", "2", "2w", "d", "1d1d", "-1d", "1.5d"] {
            assert!(Span::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn months_overflow_like_gos_add_date() {
        // 2015-03-31 minus one month: February 31st, that is March 3rd.
        let t = utc("2015-03-31 12:00:00");
        let m = Span::parse("1m").unwrap().before(t, &TimeZone::UTC);
        assert_eq!(m, utc("2015-03-03 12:00:00"));
        // Leap year: 2016-03-30 minus 1m = Feb 30 = March 1st.
        let m = Span::parse("1m")
            .unwrap()
            .before(utc("2016-03-30 00:00:00"), &TimeZone::UTC);
        assert_eq!(m, utc("2016-03-01 00:00:00"));
        let h = Span::parse("1y2m3d3h")
            .unwrap()
            .before(utc("2016-01-18 12:02:03"), &TimeZone::UTC);
        assert_eq!(h, utc("2014-11-15 09:02:03"));
    }

    /// The fixture's snapshots and restic's golden result for policy `i`.
    struct Golden {
        times: Vec<Timestamp>,
        policies: Vec<serde_json::Value>,
    }

    fn golden() -> Golden {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/restic-policy");
        let snaps: Vec<serde_json::Value> = serde_json::from_str(
            &std::fs::read_to_string(format!("{dir}/snapshots.json")).unwrap(),
        )
        .unwrap();
        let times = snaps
            .iter()
            .map(|s| utc(s["time"].as_str().unwrap()))
            .collect();
        let policies =
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/policies.json")).unwrap())
                .unwrap();
        Golden { times, policies }
    }

    /// restic's `ExpirePolicy` (JSON field names) as a keep policy; `None`
    /// for policies on tags, which pgkeep does not have (pins serve).
    fn from_restic(p: &serde_json::Value) -> Option<KeepPolicy> {
        if p.get("Tags").is_some() {
            return None;
        }
        let n = |k: &str| p.get(k).and_then(|v| v.as_i64());
        let s = |k: &str| {
            p.get(k)
                .and_then(|v| v.as_str())
                .map(|s| Span::parse(s).unwrap())
        };
        Some(KeepPolicy {
            keep_last: n("Last"),
            keep_hourly: n("Hourly"),
            keep_daily: n("Daily"),
            keep_weekly: n("Weekly"),
            keep_monthly: n("Monthly"),
            keep_yearly: n("Yearly"),
            keep_within: s("Within"),
            keep_within_hourly: s("WithinHourly"),
            keep_within_daily: s("WithinDaily"),
            keep_within_weekly: s("WithinWeekly"),
            keep_within_monthly: s("WithinMonthly"),
            keep_within_yearly: s("WithinYearly"),
        })
    }

    #[test]
    fn reproduces_restics_golden_results() {
        let g = golden();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/restic-policy");
        let mut compared = Vec::new();
        let mut not_applicable = Vec::new();
        for (i, p) in g.policies.iter().enumerate() {
            let want: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(format!("{dir}/policy_keep_snapshots_{i}")).unwrap(),
            )
            .unwrap();
            let Some(policy) = from_restic(p) else {
                not_applicable.push(i);
                continue;
            };
            let decisions = plan(&g.times, &policy, &TimeZone::UTC);
            if policy.is_empty() {
                // restic's empty policy: its golden keeps nothing listed;
                // pgkeep's prune refuses an empty policy outright.
                assert!(want["keep"].is_null(), "policy {i}");
                assert!(decisions.iter().all(|d| !d.keep), "policy {i}");
                compared.push(i);
                continue;
            }
            let kept: Vec<&Decision> = decisions.iter().filter(|d| d.keep).collect();
            let want_keep: Vec<Timestamp> = want["keep"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| utc(s["time"].as_str().unwrap()))
                .collect();
            let got_keep: Vec<Timestamp> = kept.iter().map(|d| g.times[d.index]).collect();
            assert_eq!(got_keep, want_keep, "policy {i} {p}: kept backups");
            let reasons = want["reasons"].as_array().unwrap();
            assert_eq!(reasons.len(), kept.len(), "policy {i}");
            for (d, r) in kept.iter().zip(reasons) {
                let words: Vec<String> = d.reasons.iter().map(Reason::restic_words).collect();
                let want_words: Vec<String> = r["matches"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_str().unwrap().to_string())
                    .collect();
                assert_eq!(
                    words, want_words,
                    "policy {i} {p}: reasons at {}",
                    g.times[d.index]
                );
                let counters: HashMap<String, i64> = d
                    .counters
                    .iter()
                    .map(|(rule, n)| (rule.name().to_string(), *n))
                    .collect();
                let want_counters: HashMap<String, i64> = r["counters"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(
                    counters, want_counters,
                    "policy {i} {p}: counters at {}",
                    g.times[d.index]
                );
            }
            compared.push(i);
        }
        // Every golden is compared except restic's tag policies (18-20).
        assert_eq!(not_applicable, [18, 19, 20]);
        assert_eq!(compared.len(), g.policies.len() - 3);
    }

    /// The reference model: each rule on its own, by definition rather
    /// than by restic's single pass, then the union.
    fn reference(times: &[Timestamp], p: &KeepPolicy, tz: &TimeZone) -> BTreeSet<usize> {
        let mut order: Vec<usize> = (0..times.len()).collect();
        order.sort_by(|a, b| times[*b].cmp(&times[*a]));
        let mut keep = BTreeSet::new();
        let Some(&newest) = order.first() else {
            return keep;
        };
        let oldest = *order.last().unwrap();
        let latest = times[newest];
        // Newest backup of each distinct bucket (newest buckets first).
        let firsts = |rule: Rule, among: &[usize]| -> Vec<usize> {
            let mut seen = Vec::new();
            let mut out = Vec::new();
            for &i in among {
                let pos = order.iter().position(|x| *x == i).unwrap();
                let b = bucket(rule, &times[i].to_zoned(tz.clone()), pos).0;
                if !seen.contains(&b) {
                    seen.push(b);
                    out.push(i);
                }
            }
            out
        };
        for (rule, n) in p.counts() {
            let Some(n) = n.filter(|n| *n != 0) else {
                continue;
            };
            let f = firsts(rule, &order);
            let take = if n == -1 {
                f.len()
            } else {
                (n as usize).min(f.len())
            };
            keep.extend(&f[..take]);
            if n == -1 || (n as usize) > f.len() {
                keep.insert(oldest);
            }
        }
        if let Some(s) = p.keep_within.filter(|s| !s.is_zero()) {
            let since = s.before(latest, tz);
            keep.extend(order.iter().filter(|i| times[**i] > since));
        }
        for (rule, s) in p.withins() {
            let Some(s) = s.filter(|s| !s.is_zero()) else {
                continue;
            };
            let since = s.before(latest, tz);
            let inside: Vec<usize> = order
                .iter()
                .copied()
                .filter(|i| times[*i] > since)
                .collect();
            keep.extend(firsts(rule, &inside));
            if times[oldest] > since {
                keep.insert(oldest);
            }
        }
        keep
    }

    fn arb_policy() -> impl Strategy<Value = KeepPolicy> {
        let count =
            prop_oneof![3 => Just(None), 1 => Just(Some(-1i64)), 4 => (0i64..6).prop_map(Some)];
        let span = prop_oneof![
            3 => Just(None),
            1 => (0i32..2, 0i32..3, 0i32..10, 0i32..30).prop_map(|(y, m, d, h)| Some(Span { years: y, months: m, days: d, hours: h })),
        ];
        (
            (
                count.clone(),
                count.clone(),
                count.clone(),
                count.clone(),
                count.clone(),
                count,
            ),
            (
                span.clone(),
                span.clone(),
                span.clone(),
                span.clone(),
                span.clone(),
                span,
            ),
        )
            .prop_map(
                |((l, h, d, w, m, y), (wi, wh, wd, ww, wm, wy))| KeepPolicy {
                    keep_last: l,
                    keep_hourly: h,
                    keep_daily: d,
                    keep_weekly: w,
                    keep_monthly: m,
                    keep_yearly: y,
                    keep_within: wi,
                    keep_within_hourly: wh,
                    keep_within_daily: wd,
                    keep_within_weekly: ww,
                    keep_within_monthly: wm,
                    keep_within_yearly: wy,
                },
            )
    }

    /// Timelines around what breaks calendars: daylight-saving changes in
    /// the zone, month ends, 29 February, and equal timestamps.
    fn arb_times() -> impl Strategy<Value = Vec<Timestamp>> {
        let anchors = [
            utc("2024-02-29 12:00:00"),
            utc("2024-03-31 00:30:00"), // DST starts in Europe the night before
            utc("2024-10-27 00:30:00"), // DST ends in Europe
            utc("2024-03-10 06:30:00"), // DST starts in New York
            utc("2023-12-31 23:30:00"), // year and ISO-week boundary
        ];
        proptest::collection::vec(
            (0usize..anchors.len(), -2_000_000i64..2_000_000, 0u8..4),
            0..40,
        )
        .prop_map(move |v| {
            let mut out = Vec::new();
            for (a, secs, dup) in v {
                let t = anchors[a] + jiff::SignedDuration::from_secs(secs);
                out.push(t);
                if dup == 0 {
                    out.push(t); // an equal timestamp
                }
            }
            out
        })
    }

    proptest! {
        #[test]
        fn plan_matches_the_reference_model(
            times in arb_times(),
            policy in arb_policy(),
            zone_name in prop_oneof![Just("UTC"), Just("Europe/Berlin"), Just("America/New_York"), Just("Australia/Lord_Howe")],
        ) {
            let tz = zone(zone_name);
            let decisions = plan(&times, &policy, &tz);
            prop_assert_eq!(decisions.len(), times.len());
            let got: BTreeSet<usize> = decisions.iter().filter(|d| d.keep).map(|d| d.index).collect();
            prop_assert_eq!(got, reference(&times, &policy, &tz));
            // Every kept backup says why; no removed one does.
            for d in &decisions {
                prop_assert_eq!(d.keep, !d.reasons.is_empty());
            }
            // Newest first.
            for w in decisions.windows(2) {
                prop_assert!(times[w[0].index] >= times[w[1].index]);
            }
        }

        #[test]
        fn span_parse_never_panics(s in "\\PC{0,12}") {
            let _ = Span::parse(&s);
        }
    }

    #[test]
    fn reasons_read_as_the_runbook_writes_them() {
        let times = [
            utc("2026-12-06 03:00:00"),
            utc("2026-12-05 03:00:00"),
            utc("2026-11-20 03:00:00"),
        ];
        let p = KeepPolicy {
            keep_last: Some(1),
            keep_daily: Some(2),
            keep_monthly: Some(3),
            ..KeepPolicy::default()
        };
        let d = plan(&times, &p, &TimeZone::UTC);
        let words = |i: usize| {
            d[i].reasons
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(words(0), ["last 1", "daily 2026-12-06", "monthly 2026-12"]);
        assert_eq!(words(1), ["daily 2026-12-05"]);
        // The oldest is kept by monthly 2026-11; monthly still had count left.
        assert_eq!(words(2), ["monthly 2026-11"]);
        assert_eq!(p.describe(), "last 1, daily 2, monthly 3");
        // Buckets follow the zone: 00:30 UTC on Dec 6 is Dec 5 in New York.
        let ny = plan(&[utc("2026-12-06 00:30:00")], &p, &zone("America/New_York"));
        assert_eq!(ny[0].reasons[1].to_string(), "daily 2026-12-05");
    }
}
