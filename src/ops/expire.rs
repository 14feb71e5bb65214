//! Expiring backups by a keep policy: plans with [`super::retention`],
//! then protects what is never removed — the newest complete backup, the
//! newest verified one, pinned ones ([`super::pins`]) and held ones (a
//! restore or drill reading them, `store::lease`) — and removes the rest.
//!
//! Only complete backups count; leftovers of failed ones are
//! `prune --incomplete`'s. Removal is crash-safe: a backup's manifest goes
//! first, so a half-removed backup is never listed as complete, and
//! `prune --incomplete` finishes what an interrupted removal left.

use super::pins::pins;
use super::retention::{plan, KeepPolicy};
use crate::archive::index::{scan, BackupScan};
use crate::archive::layout;
use crate::error::{Error, Result};
use crate::store::lease::live_holds;
use crate::store::Repo;
use crate::units::rfc3339;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Clone, Debug)]
pub struct ExpireOptions {
    pub keep: KeepPolicy,
    /// The zone of the calendar buckets (the policy's `timezone`).
    pub timezone: TimeZone,
    /// Evaluate as of this time: backups started later are left out of
    /// the plan (they did not exist yet). Default: now.
    pub now: Option<OffsetDateTime>,
    /// Report only; delete nothing.
    pub dry_run: bool,
}

/// One complete backup and what retention does with it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Planned {
    pub id: String,
    pub time: String,
    pub keep: bool,
    /// Why it is kept: retention rules (`daily 2026-12-06`) and
    /// protections (`newest`, `newest verified`, `pinned: audit`,
    /// `held by restore (pid 42 on host)`).
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExpireReport {
    pub repository: String,
    pub dry_run: bool,
    pub policy: String,
    pub timezone: String,
    pub now: String,
    /// Complete backups, newest first.
    pub backups: Vec<Planned>,
    pub kept: usize,
    pub removed: usize,
    /// Backups whose manifest is gone but whose other objects could not
    /// all be removed (`prune --incomplete` finishes them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unfinished: Vec<String>,
    /// Run records older than `ops::runs::KEEP_RECORDS` removed.
    pub run_records_removed: usize,
}

/// An instant as the planner takes it.
pub(crate) fn to_timestamp(t: OffsetDateTime) -> Timestamp {
    Timestamp::from_second(t.unix_timestamp()).unwrap_or(Timestamp::MIN)
}

/// Plans retention for the repository and, unless a dry run, removes the
/// backups it does not keep.
pub async fn expire(repo: &Repo, opts: &ExpireOptions) -> Result<ExpireReport> {
    if opts.keep.is_empty() {
        return Err(Error::Config(
            "no keep rule given: a policy that keeps nothing would remove every backup but the newest (give keep_last, keep_daily, ... or keep_within)".into(),
        ));
    }
    opts.keep.validate()?;
    let now = opts.now.unwrap_or_else(OffsetDateTime::now_utc);
    let scan = scan(repo).await?;
    let mut considered: Vec<(String, OffsetDateTime)> = scan
        .complete
        .iter()
        .cloned()
        .filter_map(|id| layout::id_time(&id).map(|t| (id, t)))
        .filter(|(_, t)| *t <= now)
        .collect();
    // Newest first; ids break ties the same way every time.
    considered.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let times: Vec<Timestamp> = considered.iter().map(|(_, t)| to_timestamp(*t)).collect();
    let decisions = plan(&times, &opts.keep, &opts.timezone);
    let mut planned: Vec<Planned> = Vec::with_capacity(decisions.len());
    for d in &decisions {
        let (id, t) = &considered[d.index];
        planned.push(Planned {
            id: id.clone(),
            time: rfc3339(*t)?,
            keep: d.keep,
            reasons: d.reasons.iter().map(ToString::to_string).collect(),
        });
    }
    protect(repo, &mut planned, &scan).await?;
    let mut report = ExpireReport {
        repository: repo.display().to_string(),
        dry_run: opts.dry_run,
        policy: opts.keep.describe(),
        timezone: opts.timezone.iana_name().unwrap_or("UTC").to_string(),
        now: rfc3339(now)?,
        kept: planned.iter().filter(|p| p.keep).count(),
        removed: planned.iter().filter(|p| !p.keep).count(),
        backups: planned,
        unfinished: Vec::new(),
        run_records_removed: 0,
    };
    if !opts.dry_run {
        remove(repo, &mut report).await?;
    }
    if !opts.dry_run {
        let bound =
            time::Duration::try_from(super::runs::KEEP_RECORDS).unwrap_or(time::Duration::MAX);
        report.run_records_removed =
            super::runs::expire(repo, OffsetDateTime::now_utc() - bound).await?;
    }
    Ok(report)
}

/// Removes the backups the report does not keep, in bulk: a fresh listing
/// (a restore may have taken a hold since the plan), then every manifest
/// (from here on those backups are incomplete, never listed as complete),
/// then everything else under their prefixes.
async fn remove(repo: &Repo, report: &mut ExpireReport) -> Result<()> {
    let fresh = scan(repo).await?;
    let now = OffsetDateTime::now_utc();
    let mut doomed = Vec::new();
    for p in report.backups.iter_mut().filter(|p| !p.keep) {
        if fresh.held.contains(&p.id) {
            if let Some(h) = live_holds(repo, &p.id, now).await?.first() {
                p.keep = true;
                p.reasons.push(held_reason(h));
                report.kept += 1;
                report.removed -= 1;
                continue;
            }
        }
        doomed.push(p.id.clone());
    }
    if doomed.is_empty() {
        return Ok(());
    }
    let manifests = doomed.iter().map(|id| layout::manifest_path(id)).collect();
    repo.delete_paths(manifests, "manifests of expired backups")
        .await?;
    let rest: Vec<object_store::path::Path> = doomed
        .iter()
        .flat_map(|id| fresh.objects.get(id).cloned().unwrap_or_default())
        .collect();
    if let Err(e) = repo.delete_paths(rest, "expired backups").await {
        tracing::warn!(error = %e, "manifests removed, other objects left for `prune --incomplete`");
        report.unfinished = doomed.clone();
    }
    for id in &doomed {
        tracing::info!(backup = %id, "removed by retention");
    }
    Ok(())
}

fn held_reason(h: &crate::store::lease::LeaseInfo) -> String {
    format!("held by a restore or drill (pid {} on {})", h.pid, h.host)
}

/// Adds the protections to the plan (newest first): the newest complete
/// backup, the newest verified one, pins, live holds.
async fn protect(repo: &Repo, planned: &mut [Planned], scan: &BackupScan) -> Result<()> {
    let keep = |p: &mut Planned, why: String| {
        p.keep = true;
        p.reasons.push(why);
    };
    if let Some(p) = planned.first_mut() {
        keep(p, "newest".into());
    }
    for p in planned.iter_mut() {
        if !scan.verified.contains(&p.id) {
            continue;
        }
        let ok = crate::verify::last_verified(repo, &p.id)
            .await?
            .is_some_and(|v| v.ok);
        if ok {
            keep(p, "newest verified".into());
            break;
        }
    }
    let pins = pins(repo).await?;
    for p in planned.iter_mut() {
        if let Some(pin) = pins.get(&p.id) {
            let why = match &pin.reason {
                Some(r) => format!("pinned: {r}"),
                None => "pinned".into(),
            };
            keep(p, why);
        }
    }
    // Holds are live or not now, whatever time the plan is evaluated at.
    let real_now = OffsetDateTime::now_utc();
    for p in planned
        .iter_mut()
        .filter(|p| !p.keep && scan.held.contains(&p.id))
    {
        if let Some(h) = live_holds(repo, &p.id, real_now).await?.first() {
            let why = held_reason(h);
            keep(p, why);
        }
    }
    Ok(())
}
