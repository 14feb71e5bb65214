//! `pgkeep serve`: the scheduler daemon. Every PostgreSQL job runs on its
//! `schedule` (backup, then retention and offsite copies), its
//! `verify_schedule` and its drill's `schedule`, in the policy's time zone;
//! one run of a job at a time (a run still going when the next time comes
//! is skipped, logged and counted); a run missed while the daemon was down
//! runs once at start. Runs are recorded in the run history, so `status`
//! reads the same whether cron or `serve` ran them. Stale jobs (CRITICAL
//! for age) are found from the RPO between runs and notified, as is their
//! recovery. HTTP (`http`): `/metrics`, `/health`, `/status` and a status
//! page (`page`). Cancelling stops the schedule and the runs (within a
//! grace period); a reload request re-reads the policy, keeping the old one
//! when the new one does not validate.

mod http;
mod metrics;
mod page;
mod runner;

use crate::config::policy::{Event, Policy, Schedule};
use crate::error::{Error, Result};
use crate::keys::Unlock;
use crate::notify::{Delivery, Notice, Notifier, NotifyCounters};
use crate::ops::job::Job;
use crate::ops::runs;
use crate::ops::status::{status, State};
use crate::store::{OpenMode, Repo};
use jiff::Timestamp;
use runner::Task;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Where `serve` listens when the policy does not say: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9898";
/// How often the daemon wakes at least (`/health`).
const TICK: Duration = Duration::from_secs(15);
/// How often jobs are checked for staleness between runs (a status pass
/// lists each repository).
const STALE_EVERY: Duration = Duration::from_secs(60);
/// How long cancelled runs get to clean up after the grace period.
const CANCEL_WAIT: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub policy_path: PathBuf,
    /// Overrides `[serve] listen`.
    pub listen: Option<String>,
    /// How long running jobs get to stop after a shutdown request.
    pub grace: Duration,
    /// Secrets that open encrypted backups (verify, drills, copies).
    pub unlock: Arc<Unlock>,
    pub delivery: Delivery,
}

/// A validated policy and what the daemon made of it.
struct Loaded {
    jobs: Vec<Job>,
    notifier: Arc<Notifier>,
    token: Option<String>,
    listen: String,
    jitter: Duration,
}

fn load(path: &std::path::Path, delivery: Delivery, counters: &NotifyCounters) -> Result<Loaded> {
    let policy = Policy::load(path)?;
    let mut jobs = Vec::new();
    let names: Vec<String> = policy.jobs().iter().map(|j| j.name().to_string()).collect();
    for name in names {
        jobs.push(Job::resolve(&policy, &name)?);
    }
    let (listen, token, jitter) = match &policy.serve {
        Some(s) => (s.listen.clone(), s.token.clone(), s.jitter.map(|j| j.0)),
        None => (None, None, None),
    };
    let token = token
        .as_deref()
        .map(|t| crate::config::env::expand_env(t, "serve token"))
        .transpose()?;
    if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(Error::Config(
            "[serve] token is empty: set a token, or remove the key to serve without one".into(),
        ));
    }
    Ok(Loaded {
        jobs,
        notifier: Arc::new(Notifier::with_counters(
            policy.notify.clone(),
            delivery,
            counters,
        )),
        token,
        listen: listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
        jitter: jitter.unwrap_or(Duration::ZERO),
    })
}

/// The daemon's shared state.
pub struct Daemon {
    loaded: RwLock<Arc<Loaded>>,
    /// (job, task) with a run in progress or waiting for its turn.
    running: Mutex<HashSet<(String, Task)>>,
    /// The last outcome of each (job, action), for `recovered`.
    outcomes: Mutex<HashMap<(String, &'static str), bool>>,
    /// Jobs last seen stale.
    stale: Mutex<HashSet<String>>,
    metrics: metrics::DaemonMetrics,
    /// Notification counts, kept across reloads.
    counters: NotifyCounters,
    /// Unix seconds of the scheduler's last pass (`/health`).
    last_tick: AtomicI64,
    unlock: Arc<Unlock>,
    /// Runs at once across jobs (`[serve] concurrency`, read at start).
    permits: Arc<tokio::sync::Semaphore>,
}

impl Daemon {
    fn current(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn notifier(&self) -> Arc<Notifier> {
        self.current().notifier.clone()
    }

    /// Records `ok` for (job, action); returns whether it had failed last.
    fn last_outcome(&self, job: &Job, action: runs::Action, ok: bool) -> bool {
        let Ok(mut m) = self.outcomes.lock() else {
            return false;
        };
        m.insert((job.name.clone(), action.name()), ok) == Some(false)
    }

    /// Whether the scheduler loop has run within the last few ticks.
    pub fn alive(&self) -> bool {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        now - self.last_tick.load(Ordering::Relaxed) <= 3 * TICK.as_secs() as i64
    }
}

/// What runs when: one entry per schedule of a job.
#[derive(Clone, Debug)]
struct Entry {
    job: String,
    task: Task,
    schedule: Schedule,
}

fn entries(jobs: &[Job]) -> Vec<Entry> {
    let mut out = Vec::new();
    for j in jobs {
        let mut add = |task, s: &Option<Schedule>| {
            if let Some(s) = s {
                out.push(Entry {
                    job: j.name.clone(),
                    task,
                    schedule: s.clone(),
                });
            }
        };
        add(Task::Backup, &j.schedule);
        add(Task::Verify, &j.verify_schedule);
        add(Task::Drill, &j.drill_schedule);
    }
    out
}

/// Runs the daemon until `cancel`; `reload` re-reads the policy.
pub async fn serve(
    opts: ServeOptions,
    cancel: CancellationToken,
    reload: Arc<Notify>,
) -> Result<()> {
    let policy = Policy::load(&opts.policy_path)?;
    let concurrency = policy
        .serve
        .as_ref()
        .and_then(|s| s.concurrency)
        .unwrap_or(1);
    if concurrency == 0 {
        return Err(Error::Config(
            "[serve] concurrency must be at least 1".into(),
        ));
    }
    let counters = NotifyCounters::default();
    let loaded = Arc::new(load(&opts.policy_path, opts.delivery, &counters)?);
    let listen = opts.listen.clone().unwrap_or_else(|| loaded.listen.clone());
    let daemon = Arc::new(Daemon {
        loaded: RwLock::new(loaded),
        running: Mutex::new(HashSet::new()),
        outcomes: Mutex::new(HashMap::new()),
        stale: Mutex::new(HashSet::new()),
        metrics: metrics::DaemonMetrics::new()?,
        counters,
        last_tick: AtomicI64::new(time::OffsetDateTime::now_utc().unix_timestamp()),
        unlock: opts.unlock.clone(),
        permits: Arc::new(tokio::sync::Semaphore::new(concurrency)),
    });
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| Error::Config(format!("serve: cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or(listen);
    tracing::warn!(listen = %addr, "pgkeep serve: scheduler running; /metrics /health /status / on http://{addr}");
    let server = tokio::spawn(http::serve(listener, daemon.clone(), cancel.clone()));
    let runs_stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    scheduler(&daemon, &cancel, &reload, &opts, &runs_stop, &mut tasks).await;
    // Shutdown: no new runs; running ones get the grace period, then are
    // cancelled (no manifest, uploads aborted, scratch databases dropped).
    let graceful = async { while tasks.join_next().await.is_some() {} };
    let in_time = tokio::time::timeout(opts.grace, graceful).await.is_ok();
    if !in_time {
        tracing::warn!("runs still going after the grace period: cancelling them");
        runs_stop.cancel();
        // A cancelled backup aborts its uploads and a drill drops its
        // scratch database: both take a moment. Whatever is still going
        // after that (a retention or copy step) is abandoned.
        let cancelled = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(CANCEL_WAIT, cancelled).await.is_err() {
            tracing::warn!("abandoning runs that did not stop when cancelled");
            tasks.abort_all();
        }
    }
    daemon.notifier().flush(Duration::from_secs(5)).await;
    let _ = server.await;
    Ok(())
}

async fn scheduler(
    d: &Arc<Daemon>,
    cancel: &CancellationToken,
    reload: &Notify,
    opts: &ServeOptions,
    runs_stop: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    let mut plan = planned(d);
    let mut next = first_times(d, &plan).await;
    let mut last_stale: Option<std::time::Instant> = None;
    loop {
        let now = Timestamp::now();
        d.last_tick.store(now.as_second(), Ordering::Relaxed);
        while tasks.try_join_next().is_some() {}
        for (i, e) in plan.iter().enumerate() {
            if next[i].is_some_and(|t| t <= now) {
                start(d, e, runs_stop, cancel, tasks);
                next[i] = e.schedule.next_after(now, &job_tz(d, &e.job));
            }
        }
        if last_stale.is_none_or(|t: std::time::Instant| t.elapsed() >= STALE_EVERY) {
            check_stale(d).await;
            last_stale = Some(std::time::Instant::now());
        }
        let wake = next
            .iter()
            .flatten()
            .map(|t| t.duration_since(now).unsigned_abs())
            .min()
            .unwrap_or(TICK)
            .min(TICK);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = reload.notified() => {
                match load(&opts.policy_path, opts.delivery, &d.counters) {
                    Ok(l) => {
                        tracing::warn!(jobs = l.jobs.len(), "policy reloaded");
                        if let Ok(mut w) = d.loaded.write() {
                            *w = Arc::new(l);
                        }
                        plan = planned(d);
                        let now = Timestamp::now();
                        next = plan.iter().map(|e| e.schedule.next_after(now, &job_tz(d, &e.job))).collect();
                    }
                    Err(e) => tracing::error!(error = %crate::redact::redact(&e.to_string()), "the new policy does not validate; keeping the running one"),
                }
            }
            _ = tokio::time::sleep(wake.max(Duration::from_millis(20))) => {}
        }
    }
}

/// The schedule entries of the current policy, their skip counters started.
fn planned(d: &Daemon) -> Vec<Entry> {
    let loaded = d.current();
    let plan = entries(&loaded.jobs);
    for e in &plan {
        if let Some(job) = loaded.jobs.iter().find(|j| j.name == e.job) {
            d.metrics.scheduled(job, e.task.action());
        }
    }
    plan
}

fn job_tz(d: &Daemon, name: &str) -> jiff::tz::TimeZone {
    d.current()
        .jobs
        .iter()
        .find(|j| j.name == name)
        .map(|j| j.timezone.clone())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

/// The first time of each entry: now when a run was missed (its last
/// scheduled time passed with no successful run after it: the daemon was
/// down, or the run then failed or was cancelled), else the next.
async fn first_times(d: &Daemon, plan: &[Entry]) -> Vec<Option<Timestamp>> {
    let now = Timestamp::now();
    let jobs = d.current().jobs.clone();
    let mut out = Vec::with_capacity(plan.len());
    for e in plan {
        let tz = job_tz(d, &e.job);
        let mut at = e.schedule.next_after(now, &tz);
        if let (Some(prev), Some(job)) = (
            e.schedule.last_at_or_before(now, &tz),
            jobs.iter().find(|j| j.name == e.job),
        ) {
            let newest =
                match Repo::open_with(&job.repo_url, &job.repo_options, 0, OpenMode::MustExist) {
                    Ok(repo) => runs::list(&repo)
                        .await
                        .ok()
                        .and_then(|l| {
                            l.into_iter().rev().find(|r| {
                                r.action == e.task.action() && r.outcome == runs::Outcome::Success
                            })
                        })
                        .map(|r| r.finished.unix_timestamp()),
                    Err(_) => None,
                };
            if newest.is_none_or(|t| t < prev.as_second()) {
                tracing::warn!(job = %e.job, action = e.task.action().name(), "a scheduled run was missed; running it now");
                at = Some(now);
            }
        }
        out.push(at);
    }
    out
}

/// Starts a run unless the job has one going.
fn start(
    d: &Arc<Daemon>,
    e: &Entry,
    stop: &CancellationToken,
    shutdown: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    let Some(job) = d.current().jobs.iter().find(|j| j.name == e.job).cloned() else {
        return;
    };
    {
        let Ok(mut running) = d.running.lock() else {
            return;
        };
        if !running.insert((job.name.clone(), e.task)) {
            tracing::warn!(job = %job.name, action = e.task.action().name(), "a run of this job is still going; this one is skipped");
            d.metrics.skipped(&job, e.task.action());
            return;
        }
    }
    let (d, task, stop, shutdown) = (d.clone(), e.task, stop.child_token(), shutdown.clone());
    let jitter = d.current().jitter;
    tasks.spawn(async move {
        let name = job.name.clone();
        let delay = if jitter.is_zero() {
            Duration::ZERO
        } else {
            jitter.mul_f64(rand::random::<f64>())
        };
        // Waits for its turn (and its jitter) as a run of its job: the job
        // is not started twice meanwhile. A shutdown ends the wait.
        let ready = async {
            tokio::time::sleep(delay).await;
            d.permits.clone().acquire_owned().await.ok()
        };
        // A run that has not started yet does not start after a shutdown.
        let permit = tokio::select! {
            p = ready => p,
            _ = shutdown.cancelled() => None,
        };
        if permit.is_some() {
            runner::run(d.clone(), job, task, stop).await;
        }
        drop(permit);
        if let Ok(mut running) = d.running.lock() {
            running.remove(&(name, task));
        }
    });
}

/// Notifies jobs that turned stale (CRITICAL for age) or recovered.
async fn check_stale(d: &Daemon) {
    let loaded = d.current();
    if !(loaded.notifier.wants(Event::Stale) || loaded.notifier.wants(Event::Recovered)) {
        return;
    }
    let report = status(&loaded.jobs, time::OffsetDateTime::now_utc()).await;
    let Ok(mut stale) = d.stale.lock() else {
        return;
    };
    for j in &report.jobs {
        let now_stale = j.stale && j.state == State::Critical;
        let was = stale.contains(&j.job);
        if now_stale == was {
            continue;
        }
        let event = if now_stale {
            stale.insert(j.job.clone());
            Event::Stale
        } else {
            stale.remove(&j.job);
            Event::Recovered
        };
        loaded.notifier.send(&Notice {
            event,
            job: j.job.clone(),
            kind: j.kind.clone(),
            action: "status".into(),
            ts: time::OffsetDateTime::now_utc().unix_timestamp(),
            backup_id: j.newest_backup_id.clone(),
            duration_s: None,
            bytes: j.last_size_bytes,
            rows: None,
            error: (!j.reasons.is_empty()).then(|| j.reasons.join("; ")),
        });
    }
}
