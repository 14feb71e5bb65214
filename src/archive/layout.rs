//! Where things live in a repository:
//! `backups/<id>/manifest` (written last), `backups/<id>/data/<pack>`,
//! `backups/<id>/lease` (a running backup), `backups/<id>/holds/` (restores
//! and drills reading it), `backups/<id>/verified.json`, `keys/`, `pins/`
//! (backups retention never removes), `runs/` (a record of every run),
//! `drills/<drill-id>/proof.json` and `drill.log` (restore drills' evidence).
//! Backup ids sort by time.

use object_store::path::Path;
use rand::Rng;

pub const MANIFEST_NAME: &str = "manifest";

pub fn backups_prefix() -> Path {
    Path::from("backups")
}

pub fn backup_prefix(id: &str) -> Path {
    Path::from(format!("backups/{id}"))
}

pub fn manifest_path(id: &str) -> Path {
    Path::from(format!("backups/{id}/{MANIFEST_NAME}"))
}

pub fn pack_path(id: &str, pack: &str) -> Path {
    Path::from(format!("backups/{id}/data/{pack}"))
}

/// A new backup id: UTC time to the second plus 4 random hex digits,
/// e.g. `20261122T130501Z-9f3a`. Lexical order is time order.
pub fn new_backup_id(now: time::OffsetDateTime) -> String {
    let now = now.to_offset(time::UtcOffset::UTC);
    let suffix: u16 = rand::rng().random();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{suffix:04x}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Whether a string has the shape of a backup id (guards path injection).
pub fn is_backup_id(s: &str) -> bool {
    s.len() == 21
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            15 => b == b'Z',
            16 => b == b'-',
            17..=20 => b.is_ascii_hexdigit(),
            _ => b.is_ascii_digit(),
        })
}

/// The UTC start time a backup id encodes.
pub fn id_time(id: &str) -> Option<time::OffsetDateTime> {
    if !is_backup_id(id) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| id.get(r)?.parse::<u32>().ok();
    let date = time::Date::from_calendar_date(
        n(0..4)? as i32,
        time::Month::try_from(n(4..6)? as u8).ok()?,
        n(6..8)? as u8,
    )
    .ok()?;
    let t = time::Time::from_hms(n(9..11)? as u8, n(11..13)? as u8, n(13..15)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

/// Run records: `runs/<time>-<action>-<outcome>-<rand>.json`, one per run
/// of backup, copy, verify, prune or drill.
pub fn runs_prefix() -> Path {
    Path::from("runs")
}

/// Restore drills' evidence: `drills/<drill-id>/proof.json` and
/// `drills/<drill-id>/drill.log`, create-only. Drill ids have the shape of
/// backup ids.
pub fn drills_prefix() -> Path {
    Path::from("drills")
}

pub fn drill_proof_path(drill_id: &str) -> Path {
    Path::from(format!("drills/{drill_id}/proof.json"))
}

pub fn drill_log_path(drill_id: &str) -> Path {
    Path::from(format!("drills/{drill_id}/drill.log"))
}

/// Pins: `pins/<id>.json`, backups retention never removes.
pub fn pins_prefix() -> Path {
    Path::from("pins")
}

pub fn pin_path(id: &str) -> Path {
    Path::from(format!("pins/{id}.json"))
}

/// Master key records: `keys/<key-id>.json`.
pub fn keys_prefix() -> Path {
    Path::from("keys")
}

pub fn key_path(key_id: &str) -> Path {
    Path::from(format!("keys/{key_id}.json"))
}

/// The repository's encryption settings (default cipher): `keys/repository.json`.
pub fn repository_config_path() -> Path {
    Path::from("keys/repository.json")
}

/// The result of the latest `verify` of a backup.
pub fn verified_path(id: &str) -> Path {
    Path::from(format!("backups/{id}/verified.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_tell_their_time() {
        let t = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        assert_eq!(id_time(&new_backup_id(t)), Some(t));
        assert_eq!(id_time("20261302T000000Z-abcd"), None, "month 13");
        assert_eq!(id_time("not an id"), None);
    }

    #[test]
    fn ids_are_well_formed_and_sort_by_time() {
        let a = new_backup_id(time::macros::datetime!(2026-01-02 03:04:05 UTC));
        let b = new_backup_id(time::macros::datetime!(2026-01-02 03:04:06 UTC));
        assert!(is_backup_id(&a), "{a}");
        assert!(a < b);
        assert!(a.starts_with("20260102T030405Z-"));
        assert!(!is_backup_id("../../etc/passwd"));
    }
}
