//! `status`: per job, the newest complete backup and its age against the
//! RPO, the last failed attempt, size and duration of recent backups, the
//! count and the oldest, the last verify and drill against their
//! schedules, offsite copy lag; a state in the monitoring-plugin
//! convention (OK, WARNING, CRITICAL, UNKNOWN). Reads only listings and a
//! few run records: one listing of the backups and one of the run history
//! per job, however many backups there are.

use super::job::Job;
use super::runs::{self, Action, Outcome, RunEntry, RunRecord};
use crate::archive::index::{resolve_backup_id, scan};
use crate::archive::layout;
use crate::error::Result;
use crate::store::Repo;
use crate::units::{format_duration, rfc3339};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

/// A job's state, and the exit code it maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl State {
    /// 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub fn exit_code(self) -> i32 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
            State::Unknown => 3,
        }
    }

    /// How bad: the overall state of several jobs is the worst of theirs
    /// (CRITICAL before UNKNOWN before WARNING).
    fn severity(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Unknown => 2,
            State::Critical => 3,
        }
    }

    pub fn worst(states: impl IntoIterator<Item = State>) -> State {
        states
            .into_iter()
            .max_by_key(|s| s.severity())
            .unwrap_or(State::Ok)
    }
}

/// One backup run, for trends.
#[derive(Clone, Debug, Serialize)]
pub struct TrendPoint {
    pub finished_at: String,
    pub duration_seconds: f64,
    pub size_bytes: Option<u64>,
}

/// An offsite copy's lag behind the job's repository.
#[derive(Clone, Debug, Serialize)]
pub struct CopyStatus {
    pub url: String,
    pub newest: Option<String>,
    /// How much older the copy's newest backup is than the repository's.
    pub lag_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A time, as a timestamp and as text.
#[derive(Clone, Copy, Debug)]
pub struct Stamp(pub OffsetDateTime);

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(self.0).unwrap_or_default())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct JobStatus {
    pub job: String,
    pub kind: String,
    pub state: State,
    /// Why the state is not OK (empty when it is).
    pub reasons: Vec<String>,
    pub repository: String,
    pub backups: u64,
    pub incomplete: u64,
    pub oldest_backup: Option<Stamp>,
    pub newest_backup_id: Option<String>,
    /// Start of the newest complete backup (its data's age).
    pub last_success: Option<Stamp>,
    pub last_success_age_seconds: Option<u64>,
    pub rpo_seconds: Option<u64>,
    pub stale: bool,
    pub last_failure: Option<Stamp>,
    pub last_failure_error: Option<String>,
    pub last_duration_seconds: Option<f64>,
    pub last_size_bytes: Option<u64>,
    /// The last ten successful backup runs, oldest first.
    pub trend: Vec<TrendPoint>,
    pub last_verify: Option<Stamp>,
    pub last_drill: Option<Stamp>,
    pub last_drill_rto_seconds: Option<f64>,
    pub rto_seconds: Option<u64>,
    pub drill_every_seconds: Option<u64>,
    pub copies: Vec<CopyStatus>,
    /// Run records by action and outcome (`backup/success`: 12).
    pub runs: BTreeMap<String, u64>,
}

impl JobStatus {
    fn empty(job: &Job) -> JobStatus {
        JobStatus {
            job: job.name.clone(),
            kind: job.kind.to_string(),
            state: State::Ok,
            reasons: Vec::new(),
            repository: String::new(),
            backups: 0,
            incomplete: 0,
            oldest_backup: None,
            newest_backup_id: None,
            last_success: None,
            last_success_age_seconds: None,
            rpo_seconds: job.rpo.map(|d| d.as_secs()),
            stale: false,
            last_failure: None,
            last_failure_error: None,
            last_duration_seconds: None,
            last_size_bytes: None,
            trend: Vec::new(),
            last_verify: None,
            last_drill: None,
            last_drill_rto_seconds: None,
            rto_seconds: job.rto.map(|d| d.as_secs()),
            drill_every_seconds: job
                .drill
                .as_ref()
                .and_then(|d| d.every)
                .map(|d| d.0.as_secs()),
            copies: Vec::new(),
            runs: BTreeMap::new(),
        }
    }

    fn raise(&mut self, to: State, why: String) {
        if to.severity() > self.state.severity() {
            self.state = to;
        }
        self.reasons.push(why);
    }
}

/// Everything `status` reports.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    pub checked_at: Stamp,
    pub state: State,
    pub jobs: Vec<JobStatus>,
}

/// The status of every job given, at `now`.
pub async fn status(jobs: &[Job], now: OffsetDateTime) -> StatusReport {
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.push(job_status(job, now).await);
    }
    StatusReport {
        checked_at: Stamp(now),
        state: State::worst(out.iter().map(|j| j.state)),
        jobs: out,
    }
}

/// One job's status: UNKNOWN with the reason when its repository cannot be
/// read.
pub async fn job_status(job: &Job, now: OffsetDateTime) -> JobStatus {
    let mut s = JobStatus::empty(job);
    let repo = match Repo::open_if_present(&job.repo_url, &job.repo_options) {
        Ok(Some(r)) => r,
        Ok(None) => {
            s.repository = job.repo_url.clone();
            s.stale = true;
            s.raise(
                State::Critical,
                format!(
                    "no complete backup (repository folder {} does not exist yet)",
                    job.repo_url
                ),
            );
            return s;
        }
        Err(e) => {
            s.raise(State::Unknown, format!("repository unreadable: {e}"));
            return s;
        }
    };
    s.repository = repo.display().to_string();
    if let Err(e) = fill(&mut s, job, &repo, now).await {
        s.raise(State::Unknown, format!("repository unreadable: {e}"));
    }
    s
}

fn secs(d: time::Duration) -> u64 {
    d.whole_seconds().max(0) as u64
}

async fn newest_run(
    repo: &Repo,
    runs: &[RunEntry],
    action: Action,
    outcome: Outcome,
) -> Result<Option<(RunEntry, Option<RunRecord>)>> {
    match runs
        .iter()
        .rev()
        .find(|r| r.action == action && r.outcome == outcome)
    {
        Some(e) => Ok(Some((e.clone(), runs::read(repo, e).await?))),
        None => Ok(None),
    }
}

async fn fill(s: &mut JobStatus, job: &Job, repo: &Repo, now: OffsetDateTime) -> Result<()> {
    let scan = scan(repo).await?;
    s.backups = scan.complete.len() as u64;
    s.incomplete = scan.incomplete.len() as u64;
    s.oldest_backup = scan
        .complete
        .first()
        .and_then(|id| layout::id_time(id))
        .map(Stamp);
    s.newest_backup_id = scan.complete.last().cloned();
    let newest = scan.complete.last().and_then(|id| layout::id_time(id));
    s.last_success = newest.map(Stamp);
    s.last_success_age_seconds = newest.map(|t| secs(now - t));
    let history = runs::list(repo).await?;
    for r in &history {
        *s.runs
            .entry(format!("{}/{}", r.action.name(), r.outcome.name()))
            .or_default() += 1;
    }
    // Backups: the newest succeeded run gives duration and size, ten give a trend.
    let backups_ok: Vec<&RunEntry> = history
        .iter()
        .filter(|r| r.action == Action::Backup && r.outcome == Outcome::Success)
        .collect();
    for e in backups_ok.iter().rev().take(10).rev() {
        if let Some(rec) = runs::read(repo, e).await? {
            s.trend.push(TrendPoint {
                finished_at: rec.finished_at.clone(),
                duration_seconds: rec.duration_ms as f64 / 1000.0,
                size_bytes: rec.facts.bytes,
            });
        }
    }
    if let Some(last) = s.trend.last() {
        s.last_duration_seconds = Some(last.duration_seconds);
        s.last_size_bytes = last.size_bytes;
    }
    if let Some((e, rec)) = newest_run(repo, &history, Action::Backup, Outcome::Failure).await? {
        s.last_failure = Some(Stamp(e.finished));
        s.last_failure_error = rec.and_then(|r| r.error);
        // The latest attempt failed: no backup has started since.
        if newest.is_none_or(|t| e.finished > t) {
            let why = s
                .last_failure_error
                .clone()
                .unwrap_or_else(|| "no error recorded".into());
            s.raise(State::Critical, format!("the last backup failed: {why}"));
        }
    }
    match (newest, job.rpo) {
        (None, _) => {
            s.stale = true;
            s.raise(State::Critical, "no complete backup".into());
        }
        (Some(t), Some(rpo))
            if now - t > time::Duration::try_from(rpo).unwrap_or(time::Duration::MAX) =>
        {
            s.stale = true;
            s.raise(
                State::Critical,
                format!(
                    "newest complete backup is {} old, over the RPO of {}",
                    format_duration(Duration::from_secs(secs(now - t))),
                    format_duration(rpo)
                ),
            );
        }
        _ => {}
    }
    if let Some((e, _)) = newest_run(repo, &history, Action::Verify, Outcome::Success).await? {
        s.last_verify = Some(Stamp(e.finished));
    }
    if let Some(sched) = &job.verify_schedule {
        let due = sched
            .last_at_or_before(super::expire::to_timestamp(now), &job.timezone)
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t.as_second()).ok());
        // An hour's grace for the verify that is running now.
        if let Some(due) = due.filter(|d| now - *d > time::Duration::HOUR) {
            if s.last_verify.is_none_or(|v| v.0 < due) {
                s.raise(
                    State::Warning,
                    format!(
                        "verify overdue: none has passed since its run due at {}",
                        rfc3339(due)?
                    ),
                );
            }
        }
    }
    if let Some((e, rec)) = newest_run(repo, &history, Action::Drill, Outcome::Success).await? {
        s.last_drill = Some(Stamp(e.finished));
        s.last_drill_rto_seconds = rec
            .and_then(|r| r.facts.rto_ms)
            .map(|ms| ms as f64 / 1000.0);
    }
    if let Some(every) = job.drill.as_ref().and_then(|d| d.every) {
        let limit = time::Duration::try_from(every.0).unwrap_or(time::Duration::MAX);
        match s.last_drill {
            None => s.raise(State::Warning, "no drill has passed yet".into()),
            Some(d) if now - d.0 > limit => s.raise(
                State::Warning,
                format!(
                    "drill overdue: the last passed {} ago (every {})",
                    format_duration(Duration::from_secs(secs(now - d.0))),
                    every
                ),
            ),
            _ => {}
        }
    }
    for c in &job.copies {
        let cs = copy_status(c, newest).await;
        let limit = job.rpo.map_or(86_400, |r| r.as_secs());
        if let Some(lag) = cs.lag_seconds.filter(|l| *l > limit) {
            s.raise(
                State::Warning,
                format!(
                    "copy {} lags {} behind",
                    cs.url,
                    format_duration(Duration::from_secs(lag))
                ),
            );
        }
        if let Some(e) = &cs.error {
            s.raise(State::Warning, format!("copy {} unreadable: {e}", cs.url));
        }
        s.copies.push(cs);
    }
    Ok(())
}

async fn copy_status(
    c: &super::job::CopyTarget,
    source_newest: Option<OffsetDateTime>,
) -> CopyStatus {
    let mut cs = CopyStatus {
        url: crate::redact::redact_conninfo(&c.url),
        newest: None,
        lag_seconds: None,
        error: None,
    };
    let found = async {
        let Some(repo) = Repo::open_if_present(&c.url, &c.options)? else {
            return Ok(None);
        };
        match resolve_backup_id(&repo, "latest").await {
            Ok(id) => Ok(Some(id)),
            Err(crate::Error::BackupNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
    .await;
    match found {
        Ok(newest) => {
            let copied = newest.as_deref().and_then(layout::id_time);
            cs.newest = newest;
            cs.lag_seconds = match (source_newest, copied) {
                (Some(src), Some(dst)) => Some(secs(src - dst)),
                (Some(src), None) => Some(secs(OffsetDateTime::now_utc() - src)),
                (None, _) => None,
            };
        }
        Err(e) => cs.error = Some(e.to_string()),
    }
    cs
}
