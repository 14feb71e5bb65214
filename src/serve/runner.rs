//! One scheduled run of a job, as `serve` does it: a backup followed by
//! the job's retention and offsite copies, a full verify of the newest
//! backup, or a drill. Each step is recorded in the run history like the
//! one-shot commands record theirs, and reported to the notify targets.

use super::Daemon;
use crate::archive::index::resolve_backup_id;
use crate::archive::ManifestHeader;
use crate::backup::{backup, BackupOptions};
use crate::config::policy::Event;
use crate::drill::{drill, DrillOptions};
use crate::error::{Error, Result};
use crate::notify::Notice;
use crate::ops::copy::{offsite, CopyOptions, OffsiteReport, Selection};
use crate::ops::expire::{expire, ExpireOptions};
use crate::ops::job::Job;
use crate::ops::runs::{recorded, Action, RunContext, RunFacts};
use crate::pipeline::budget::{DEFAULT_JOBS, DEFAULT_MEMORY, MAX_READ_REQUEST};
use crate::progress::Silent;
use crate::redis::drill::{redis_drill, RedisDrillOptions};
use crate::redis::{redis_backup, RedisBackupOptions, RedisTarget};
use crate::store::{OpenMode, Repo};
use crate::verify::{verify_backup, VerifyOptions};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a schedule starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Task {
    /// Backup, then retention, then offsite copies.
    Backup,
    Verify,
    Drill,
}

impl Task {
    pub fn action(self) -> Action {
        match self {
            Task::Backup => Action::Backup,
            Task::Verify => Action::Verify,
            Task::Drill => Action::Drill,
        }
    }
}

fn notice(job: &Job, action: Action, event: Event) -> Notice {
    Notice {
        event,
        job: job.name.clone(),
        kind: job.kind.to_string(),
        action: action.name().to_string(),
        ts: time::OffsetDateTime::now_utc().unix_timestamp(),
        backup_id: None,
        duration_s: None,
        bytes: None,
        rows: None,
        error: None,
    }
}

/// Reports a finished step: success or failure, and `recovered` when the
/// same step of the job had failed last time.
fn report(
    d: &Daemon,
    job: &Job,
    action: Action,
    t0: Instant,
    facts: std::result::Result<&RunFacts, &Error>,
) {
    let notifier = d.notifier();
    let mut n = notice(job, action, Event::Success);
    n.duration_s = Some(t0.elapsed().as_secs_f64());
    let ok = facts.is_ok();
    match facts {
        Ok(f) => {
            n.backup_id = f.backup_id.clone();
            n.bytes = f.bytes;
            n.rows = f.rows;
        }
        Err(e) => {
            n.event = if action == Action::Drill {
                Event::DrillFailure
            } else {
                Event::Failure
            };
            n.error = Some(crate::redact::redact(&e.to_string()));
        }
    }
    d.metrics
        .observe(job, action, t0.elapsed().as_secs_f64(), &n, ok);
    let failed_before = d.last_outcome(job, action, ok);
    // `success` is a backup's heartbeat: a passing verify, copy or drill
    // must not stand in for a backup at a receiver that only sees `{ts}`.
    if !ok || action == Action::Backup {
        notifier.send(&n);
    }
    if ok && failed_before {
        n.event = Event::Recovered;
        notifier.send(&n);
    }
}

fn repo(job: &Job) -> Result<Repo> {
    Repo::open_with(
        &job.repo_url,
        &job.repo_options,
        MAX_READ_REQUEST,
        OpenMode::CreateIfMissing,
    )
}

fn ctx(job: &Job, action: Action) -> RunContext {
    RunContext {
        action,
        job: Some(job.name.clone()),
        kind: job.kind,
    }
}

/// Runs `task` of `job`; failures are recorded and reported, not returned.
pub async fn run(d: Arc<Daemon>, job: Job, task: Task, cancel: CancellationToken) {
    let action = task.action();
    tracing::info!(job = %job.name, action = action.name(), "scheduled run starting");
    // `start` and `success` belong to backups (the heartbeat protocol of
    // a ping URL: a started verify would never see its success).
    if task == Task::Backup && d.notifier().wants(Event::Start) {
        d.notifier().send(&notice(&job, action, Event::Start));
    }
    let t0 = Instant::now();
    let r = match task {
        Task::Backup => run_backup(&d, &job, cancel).await,
        Task::Verify => run_verify(&d, &job, cancel).await,
        Task::Drill => run_drill(&d, &job, cancel).await,
    };
    match &r {
        Ok(()) => {
            tracing::info!(job = %job.name, action = action.name(), seconds = t0.elapsed().as_secs_f64(), "scheduled run done")
        }
        Err(e) => {
            tracing::warn!(job = %job.name, action = action.name(), error = %crate::redact::redact(&e.to_string()), "scheduled run failed")
        }
    }
}

/// What a run record and a notice say of a finished backup.
fn backup_facts(h: &ManifestHeader) -> RunFacts {
    RunFacts {
        backup_id: Some(h.id.clone()),
        bytes: Some(h.stored_bytes),
        rows: Some(h.rows),
        rto_ms: None,
    }
}

/// The job's backup: PostgreSQL, or a Redis snapshot (`auto` method).
async fn take_backup(job: &Job, repo: &Repo, cancel: CancellationToken) -> Result<ManifestHeader> {
    match (&job.db, &job.redis_url) {
        (Some(db), _) => {
            let mut opts = BackupOptions::new(db.clone());
            opts.jobs = job.jobs.unwrap_or(DEFAULT_JOBS);
            opts.memory = job.memory.unwrap_or(DEFAULT_MEMORY);
            opts.chains = job.chains.clone();
            backup(repo, &opts, Arc::new(Silent), cancel).await
        }
        (None, Some(url)) => {
            let mut opts = RedisBackupOptions::new(RedisTarget::parse(url)?);
            opts.memory = job.memory.unwrap_or(DEFAULT_MEMORY);
            redis_backup(repo, &opts, Arc::new(Silent), cancel).await
        }
        (None, None) => Err(Error::Internal(format!(
            "job {}: neither a database nor a Redis server",
            job.name
        ))),
    }
}

async fn run_backup(d: &Daemon, job: &Job, cancel: CancellationToken) -> Result<()> {
    let repo = repo(job)?;
    let t0 = Instant::now();
    let work = take_backup(job, &repo, cancel.clone());
    let header = recorded(&repo, &ctx(job, Action::Backup), work, backup_facts).await;
    let facts = header.as_ref().map(backup_facts);
    report(d, job, Action::Backup, t0, facts.as_ref().map_err(|e| *e));
    let header = header?;

    if let Some(keep) = &job.retention {
        let t0 = Instant::now();
        let eopts = ExpireOptions {
            keep: keep.clone(),
            timezone: job.timezone.clone(),
            now: None,
            dry_run: false,
        };
        let r = recorded(
            &repo,
            &ctx(job, Action::Prune),
            expire(&repo, &eopts),
            |_| RunFacts::default(),
        )
        .await;
        let facts = r.as_ref().map(|_| RunFacts::default());
        report(d, job, Action::Prune, t0, facts.as_ref().map_err(|e| *e));
    }
    if !job.copies.is_empty() {
        let t0 = Instant::now();
        let selection = Selection::One(header.id.clone());
        let unlock = d.unlock.clone();
        let copy_opts = CopyOptions::default();
        let work = offsite(job, &repo, &selection, unlock.as_ref(), &copy_opts, &Silent);
        let r = recorded(
            &repo,
            &ctx(job, Action::Copy),
            work,
            |r: &Vec<OffsiteReport>| RunFacts {
                backup_id: Some(header.id.clone()),
                bytes: Some(r.iter().flat_map(|o| &o.copy.copied).map(|c| c.bytes).sum()),
                ..RunFacts::default()
            },
        )
        .await;
        let facts = r.as_ref().map(|r| RunFacts {
            backup_id: Some(header.id.clone()),
            bytes: Some(r.iter().flat_map(|o| &o.copy.copied).map(|c| c.bytes).sum()),
            ..RunFacts::default()
        });
        report(d, job, Action::Copy, t0, facts.as_ref().map_err(|e| *e));
        r?;
    }
    Ok(())
}

async fn run_verify(d: &Daemon, job: &Job, cancel: CancellationToken) -> Result<()> {
    let repo = repo(job)?;
    let t0 = Instant::now();
    let mut opts = VerifyOptions::new(d.unlock.clone());
    opts.jobs = job.jobs.unwrap_or(DEFAULT_JOBS);
    opts.memory = job.memory.unwrap_or(DEFAULT_MEMORY);
    let work = async {
        let id = resolve_backup_id(&repo, "latest").await?;
        let r = verify_backup(&repo, &id, &opts, cancel).await?;
        if r.ok {
            Ok(r)
        } else {
            Err(Error::Verification(format!(
                "backup {id}: {} failure(s), first: {}",
                r.failures.len(),
                r.failures.first().map(|f| f.error.as_str()).unwrap_or("")
            )))
        }
    };
    let r = recorded(&repo, &ctx(job, Action::Verify), work, |r| RunFacts {
        backup_id: Some(r.id.clone()),
        bytes: Some(r.stored_bytes),
        rows: Some(r.rows),
        rto_ms: None,
    })
    .await;
    let facts = r.as_ref().map(|r| RunFacts {
        backup_id: Some(r.id.clone()),
        bytes: Some(r.stored_bytes),
        rows: Some(r.rows),
        rto_ms: None,
    });
    report(d, job, Action::Verify, t0, facts.as_ref().map_err(|e| *e));
    r.map(|_| ())
}

async fn run_drill(d: &Daemon, job: &Job, cancel: CancellationToken) -> Result<()> {
    let repo = repo(job)?;
    let t0 = Instant::now();
    // The drill records its own run.
    let r = match job.kind {
        "redis" => {
            let mut opts = RedisDrillOptions::for_job(job, "latest");
            opts.unlock = d.unlock.clone();
            redis_drill(&repo, &opts, Arc::new(Silent), cancel).await
        }
        _ => postgres_drill(d, job, &repo, cancel).await,
    };
    match &r {
        Ok(res) => match res.failure() {
            None => report(
                d,
                job,
                Action::Drill,
                t0,
                Ok(&RunFacts {
                    backup_id: Some(res.proof.backup.id.clone()),
                    rto_ms: Some(res.proof.timings.rto_ms),
                    ..RunFacts::default()
                }),
            ),
            Some(e) => report(d, job, Action::Drill, t0, Err(e)),
        },
        Err(e) => report(d, job, Action::Drill, t0, Err(e)),
    }
    r.map(|_| ())
}

async fn postgres_drill(
    d: &Daemon,
    job: &Job,
    repo: &Repo,
    cancel: CancellationToken,
) -> Result<crate::drill::DrillResult> {
    let def = job
        .drill
        .clone()
        .ok_or_else(|| Error::Config(format!("job {} has no drill section", job.name)))?;
    let target = job
        .drill_target()?
        .ok_or_else(|| Error::Config(format!("job {}: the drill has no target", job.name)))?;
    let opts = DrillOptions {
        job: Some(job.name.clone()),
        backup: "latest".into(),
        target,
        def,
        chains: job.chains.clone(),
        rto: job.rto,
        rpo: job.rpo,
        jobs: job.jobs.unwrap_or(DEFAULT_JOBS),
        memory: job.memory.unwrap_or(DEFAULT_MEMORY),
        keep: false,
        hidden_variables: job.source_variables.clone(),
        unlock: d.unlock.clone(),
    };
    drill(repo, &opts, Arc::new(Silent), cancel).await
}
