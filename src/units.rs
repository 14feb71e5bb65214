//! Sizes and units: parsing and printing byte sizes and rates (binary
//! units everywhere), times as pgkeep records them (RFC 3339, UTC), and
//! the size limits object stores impose on multipart uploads. Depends on nothing but the error type, so every
//! layer (pipeline budget, storage, CLI) reads sizes the same way.

use crate::error::{Error, Result};

pub const KIB: usize = 1 << 10;
pub const MIB: usize = 1 << 20;
pub const GIB: usize = 1 << 30;
/// S3's smallest non-final multipart part.
pub const MIN_PART_SIZE: usize = 5 * MIB;
/// S3's (and R2's, GCS's XML API's) largest part count per object.
pub const MAX_PARTS: u64 = 10_000;

/// Parses sizes like `64MiB`, `1GiB`, `512k`, `4096` (binary units).
pub fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| {
        Error::Config(format!(
            "invalid size {s:?} (examples: 64MiB, 1GiB, 512KiB)"
        ))
    })?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        _ => {
            return Err(Error::Config(format!(
                "invalid size unit in {s:?} (use KiB, MiB or GiB)"
            )))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| Error::Config(format!("size {s:?} is too large")))
}

/// Parses a rate: a size per second, e.g. `10MiB`, `10MiB/s`, `512KiB/s`.
pub fn parse_rate(s: &str) -> Result<u64> {
    let t = s.trim();
    let t = t
        .strip_suffix("/s")
        .or_else(|| t.strip_suffix("ps"))
        .unwrap_or(t);
    let n = parse_size(t)
        .map_err(|_| Error::Config(format!("invalid rate {s:?} (examples: 10MiB/s, 512KiB/s)")))?;
    Ok(n as u64)
}

/// A byte count for people: the largest binary unit that keeps one
/// significant decimal (`512 B`, `1.5 KiB`, `64 MiB`), never rounding a
/// non-zero size down to zero.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut scaled = bytes as f64;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 || scaled.fract() < 0.05 || scaled >= 100.0 {
        format!("{} {}", scaled.round() as u64, UNITS[unit])
    } else {
        format!("{scaled:.1} {}", UNITS[unit])
    }
}

/// A byte size given on a command line or in a policy (`64MiB`), printed
/// back the same way: lets flag defaults be the library's constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub usize);

impl std::str::FromStr for Size {
    type Err = Error;
    fn from_str(s: &str) -> Result<Size> {
        parse_size(s).map(Size)
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0;
        for (unit, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
            if n >= unit && n % unit == 0 {
                return write!(f, "{}{name}", n / unit);
            }
        }
        write!(f, "{n}")
    }
}

/// Parses a duration like `30s`, `500ms`, `5m`, `6h`, `31d` (one number
/// and one unit; a bare number is seconds).
pub fn parse_duration(v: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    let t = v.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let d = match unit.trim() {
        "" | "s" | "sec" | "secs" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        "d" => Duration::from_secs(n.checked_mul(86_400)?),
        _ => return None,
    };
    Some(d)
}

/// A duration for people: `6h`, `31d`, `90s`, `1h30m`.
pub fn format_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    let mut rest = s;
    for (unit, name) in [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")] {
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    out
}

/// A duration written for people in a policy (`6h`, `31d`, `20m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub std::time::Duration);

impl std::str::FromStr for HumanDuration {
    type Err = Error;
    fn from_str(s: &str) -> Result<HumanDuration> {
        parse_duration(s)
            .filter(|d| !d.is_zero())
            .map(HumanDuration)
            .ok_or_else(|| {
                Error::Config(format!("invalid duration {s:?} (e.g. 90s, 20m, 6h, 31d)"))
            })
    }
}

impl std::fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A time as pgkeep records it (RFC 3339). A time that cannot be written
/// is an error, never an empty field.
pub fn rfc3339(t: time::OffsetDateTime) -> Result<String> {
    t.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::Internal(format!("formatting time {t}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 * MIB);
        assert_eq!(parse_size("1g").unwrap(), GIB);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert_eq!(parse_rate("10MiB/s").unwrap(), 10 * MIB as u64);
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn durations_parse_and_print() {
        use std::time::Duration;
        assert_eq!(parse_duration("6h"), Some(Duration::from_secs(6 * 3600)));
        assert_eq!(
            parse_duration("31d"),
            Some(Duration::from_secs(31 * 86_400))
        );
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2w"), None);
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(31 * 86_400)), "31d");
    }

    #[test]
    fn times_are_written_in_full() {
        let t = time::macros::datetime!(2026-12-07 03:04:05.5 UTC);
        assert_eq!(rfc3339(t).unwrap(), "2026-12-07T03:04:05.5Z");
        // A year RFC 3339 cannot hold is an error, not an empty string.
        let far = time::macros::datetime!(-0001-01-01 0:00 UTC);
        assert!(rfc3339(far).is_err());
    }

    #[test]
    fn sizes_print_without_rounding_to_zero() {
        assert_eq!(format_size(1024), "1 KiB");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(64 * MIB as u64), "64 MiB");
        assert_eq!(format_size(700), "700 B");
    }

    proptest! {
        #[test]
        fn sizes_print_and_parse_back(n in 0usize..(1 << 40)) {
            let printed = Size(n).to_string();
            prop_assert_eq!(printed.parse::<Size>().unwrap(), Size(n));
        }

        #[test]
        fn printed_sizes_parse_back_close(n in 0u64..(1 << 40)) {
            let s = format_size(n);
            prop_assert!(!s.starts_with("0 ") || n == 0, "{} -> {}", n, s);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = parse_size(&s);
            let _ = parse_rate(&s);
        }
    }
}
