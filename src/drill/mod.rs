//! Restore drills: the monthly "restore into staging, count rows, check
//! RLS, run the app's tests, time it against the RTO, write it down" done by
//! pgkeep. A drill picks a backup and holds it (retention cannot remove it
//! mid-drill), restores it into a scratch database `pgkeep_drill_<id>` on
//! a staging server, runs the checks (`checks`, `command`), measures RTO
//! and RPO, writes the evidence into the repository (`proof`), records
//! the run, and drops the scratch database whatever happened.

pub mod checks;
pub mod command;
pub mod proof;

use crate::archive::index::{list_backup_ids, read_manifest_hashed, resolve_backup_id};
use crate::archive::{layout, Manifest};
use crate::config::policy::DrillDef;
use crate::config::{ChainDef, ConnSettings};
use crate::error::{Error, Result};
use crate::keys::Unlock;
use crate::ops::runs::{Action, RunClock, RunContext, RunFacts};
use crate::pg::connect;
use crate::progress::Progress;
use crate::restore::scratch::Scratch;
use crate::restore::{guard_cluster, restore_manifest, RestoreOptions};
use crate::store::lease::{Lease, DEFAULT_TTL};
use crate::store::Repo;
use crate::units::rfc3339;
use checks::{CheckOutcome, CheckResult};
use proof::{Objective, Proof, ProofBackup, TableRows, Timings, Verdict};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// Which backup a drill restores: an id, `latest`, or `latest-verified`
/// (the newest whose last full `verify` passed).
pub const LATEST_VERIFIED: &str = "latest-verified";

/// What a drill needs: the job's drill section, objectives and sizes.
#[derive(Clone, Debug)]
pub struct DrillOptions {
    pub job: Option<String>,
    /// A backup id, `latest` or `latest-verified`.
    pub backup: String,
    /// The staging server (its database name is not used: the scratch
    /// database gets its own).
    pub target: ConnSettings,
    pub def: DrillDef,
    pub chains: Vec<ChainDef>,
    pub rto: Option<Duration>,
    pub rpo: Option<Duration>,
    pub jobs: usize,
    pub memory: usize,
    /// Keep the scratch database after the drill (not after an interrupt).
    pub keep: bool,
    /// Environment variables the command must not see (the source's
    /// connection: `${PROD_DIRECT_URL}`); pgkeep's own key variables and
    /// every `PG*` are never passed on.
    pub hidden_variables: Vec<String>,
    pub unlock: Arc<Unlock>,
}

/// A finished drill: its proof and log (stored in the repository), and
/// the scratch database when kept.
#[derive(Debug)]
pub struct DrillResult {
    pub proof: Proof,
    pub log: String,
    pub kept: Option<ConnSettings>,
    /// What stopped the drill (verdict `error`).
    pub stopped: Option<Error>,
    /// The failed checks and objectives (verdict `failed`).
    pub failed: Option<Error>,
}

/// The drill's log: timestamped lines, also sent to the tracing log.
pub(crate) struct Log {
    pub(crate) t0: Instant,
    pub(crate) text: String,
}

impl Log {
    pub(crate) fn line(&mut self, msg: impl AsRef<str>) {
        let msg = crate::redact::redact(msg.as_ref());
        tracing::info!("{msg}");
        self.text.push_str(&format!(
            "[{:>8.3}s] {msg}\n",
            self.t0.elapsed().as_secs_f64()
        ));
    }
}

/// The backup `which` names.
pub(crate) async fn select_backup(repo: &Repo, which: &str) -> Result<String> {
    if which != LATEST_VERIFIED {
        return resolve_backup_id(repo, which).await;
    }
    for id in list_backup_ids(repo).await?.into_iter().rev() {
        if crate::verify::last_verified(repo, &id)
            .await?
            .is_some_and(|v| v.ok && v.mode == "full")
        {
            return Ok(id);
        }
    }
    Err(Error::BackupNotFound(
        "latest-verified (no backup has passed a full `pgkeep verify`)".into(),
    ))
}

/// What the drill learned before it ended (also when it was stopped).
#[derive(Default)]
pub(crate) struct Findings {
    pub(crate) timings: Timings,
    pub(crate) checks: Vec<CheckResult>,
    pub(crate) key_tables: Vec<TableRows>,
    pub(crate) created: bool,
}

/// Runs a drill of `repo`'s backup `opts.backup`, records it (`runs/`)
/// and stores its evidence (`drills/<id>/`). Returns the proof whatever
/// the verdict; an error only when no backup could be chosen or held, or
/// the evidence could not be written. A drill stopped by an error or an
/// interrupt has verdict `error` and its proof names the cause.
pub async fn drill(
    repo: &Repo,
    opts: &DrillOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<DrillResult> {
    recorded(
        repo,
        opts.job.clone(),
        "postgres",
        run(repo, opts, progress, cancel),
    )
    .await
}

/// Runs a drill (`kind` `postgres` or `redis`) as a recorded run: its
/// record says passed only when the drill passed.
pub(crate) async fn recorded(
    repo: &Repo,
    job: Option<String>,
    kind: &'static str,
    work: impl std::future::Future<Output = Result<DrillResult>>,
) -> Result<DrillResult> {
    let ctx = RunContext {
        action: Action::Drill,
        job,
        kind,
    };
    let clock = RunClock::start(&ctx);
    let result = work.await;
    match &result {
        Ok(r) => match r.failure() {
            None => {
                let facts = RunFacts {
                    backup_id: Some(r.proof.backup.id.clone()),
                    rows: Some(r.proof.backup.rows),
                    rto_ms: Some(r.proof.timings.rto_ms),
                    ..RunFacts::default()
                };
                clock.finish(repo, Ok(facts)).await
            }
            Some(e) => clock.finish(repo, Err(e)).await,
        },
        Err(e) => clock.finish(repo, Err(e)).await,
    }
    result
}

impl DrillResult {
    /// Why the drill did not pass: what stopped it (its own exit code: 1,
    /// or 130 for an interrupt), or the failed checks and objectives
    /// ([`Error::Verification`], exit 3). `None` when it passed.
    pub fn failure(&self) -> Option<&Error> {
        self.stopped.as_ref().or(self.failed.as_ref())
    }
}

async fn run(
    repo: &Repo,
    opts: &DrillOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<DrillResult> {
    let Begun {
        started,
        t0,
        drill_id,
        mut log,
        hold,
        manifest,
        manifest_sha,
    } = begin(repo, opts.job.as_deref(), &opts.backup, &opts.unlock).await?;
    let scratch = Scratch::on(&opts.target, "pgkeep_drill", &drill_id);
    let mut found = Findings::default();
    let h = &manifest.header;
    log.line(format!(
        "manifest read and checked: sha256 {manifest_sha}, {} tables, {} rows, source {} ({})",
        h.tables,
        h.rows,
        h.source,
        h.server_label()
    ));
    let stopped = tokio::select! {
        r = steps(repo, opts, &manifest, &scratch, &mut found, &mut log, progress, cancel.clone()) => r.err(),
        _ = cancel.cancelled() => Some(Error::Interrupted("the drill was cancelled".into())),
    };
    // RTO: from backup selection to checks done (cleanup is not restore time).
    found.timings.rto_ms = t0.elapsed().as_millis() as u64;
    let interrupted = matches!(stopped, Some(Error::Interrupted(_)));
    let dropped = if found.created && (!opts.keep || interrupted) {
        let gone = scratch.drop_quietly().await;
        log.line(if gone {
            format!("dropped scratch database {}", scratch.name())
        } else {
            format!(
                "could NOT drop scratch database {}; drop it by hand",
                scratch.name()
            )
        });
        gone
    } else {
        if found.created {
            log.line(format!("kept scratch database {} (--keep)", scratch.name()));
        }
        !found.created
    };
    hold.release().await;

    let ending = Ending {
        drill_id,
        job: opts.job.clone(),
        started,
        header: h,
        manifest_sha,
        target: opts.target.with_dbname(scratch.name()).to_string(),
        scratch_name: scratch.name().to_string(),
        dropped,
        stopped: stopped.as_ref(),
        rto: opts.rto,
        rpo: opts.rpo,
    };
    let created = found.created;
    let (proof, failed) = conclude(repo, ending, found, &mut log).await?;
    let kept = (created && !dropped).then(|| scratch.settings.clone());
    Ok(DrillResult {
        proof,
        log: log.text,
        kept,
        stopped,
        failed,
    })
}

/// A drill under way: its id and log, the backup chosen, held and read.
pub(crate) struct Begun {
    pub(crate) started: OffsetDateTime,
    pub(crate) t0: Instant,
    pub(crate) drill_id: String,
    pub(crate) log: Log,
    pub(crate) hold: Lease,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) manifest_sha: String,
}

/// Starts a drill: its id and log, then the backup `which` names, held
/// (retention cannot remove it mid-drill) and its manifest read.
pub(crate) async fn begin(
    repo: &Repo,
    job: Option<&str>,
    which: &str,
    keys: &Unlock,
) -> Result<Begun> {
    let started = OffsetDateTime::now_utc();
    let t0 = Instant::now();
    let drill_id = layout::new_backup_id(started);
    let mut log = Log {
        t0,
        text: String::new(),
    };
    log.line(format!(
        "drill {drill_id}{} on {} by pgkeep {}",
        job.map(|j| format!(" of job {j}")).unwrap_or_default(),
        crate::store::lease::host_name(),
        env!("CARGO_PKG_VERSION")
    ));
    let id = select_backup(repo, which).await?;
    let hold = Lease::hold(repo, &id, "drill", DEFAULT_TTL).await?;
    log.line(format!("chose backup {id} ({which}); holding it"));
    match read_manifest_hashed(repo, &id, keys).await {
        Ok((manifest, manifest_sha)) => Ok(Begun {
            started,
            t0,
            drill_id,
            log,
            hold,
            manifest: Arc::new(manifest),
            manifest_sha,
        }),
        Err(e) => {
            hold.release().await;
            Err(e)
        }
    }
}

/// How a drill ended, for its proof: what was restored from where into
/// which scratch, and what stopped it, if anything.
pub(crate) struct Ending<'a> {
    pub(crate) drill_id: String,
    pub(crate) job: Option<String>,
    pub(crate) started: OffsetDateTime,
    pub(crate) header: &'a crate::archive::ManifestHeader,
    pub(crate) manifest_sha: String,
    /// The scratch's server, without a password.
    pub(crate) target: String,
    pub(crate) scratch_name: String,
    pub(crate) dropped: bool,
    pub(crate) stopped: Option<&'a Error>,
    pub(crate) rto: Option<Duration>,
    pub(crate) rpo: Option<Duration>,
}

/// The objectives measured, the verdict, the proof stored in the
/// repository (`drills/<id>/`); also the error a failed drill exits with.
pub(crate) async fn conclude(
    repo: &Repo,
    e: Ending<'_>,
    mut found: Findings,
    log: &mut Log,
) -> Result<(Proof, Option<Error>)> {
    let (h, stopped) = (e.header, e.stopped);
    let finished = OffsetDateTime::now_utc();
    // RPO: the data is as of the backup's snapshot, taken when it started
    // (what `status` measures freshness by, too).
    let snapshot = OffsetDateTime::parse(
        &h.started_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|e| Error::format("manifest", format!("started_at {:?}: {e}", h.started_at)))?;
    let age = (e.started - snapshot).as_seconds_f64().max(0.0);
    let mut rto = Objective::new(e.rto, found.timings.rto_ms as f64 / 1000.0);
    let mut rpo = Objective::new(e.rpo, age);
    if stopped.is_some() {
        rto.verdict = "not measured".into();
        rpo.verdict = "not measured".into();
    }
    let error = stopped.map(|e| crate::redact::redact(&e.to_string()));
    if stopped.is_none() {
        for (kind, name, o) in [("rto", "RTO", &rto), ("rpo", "RPO", &rpo)] {
            if let Some(obj) = o.objective_seconds {
                let mut c = CheckResult::new(name, kind, Instant::now());
                c.value = format!("{:.1}s", o.measured_seconds);
                c.expected = Some(format!("<= {obj}s"));
                if o.missed() {
                    c.outcome = CheckOutcome::Failed;
                    c.details = vec![format!(
                        "{name} missed: {:.1}s measured, objective {}",
                        o.measured_seconds,
                        crate::units::format_duration(Duration::from_secs(obj))
                    )];
                }
                found.checks.push(c);
            }
        }
    }
    let verdict = match &stopped {
        Some(_) => Verdict::Error,
        None if found.checks.iter().all(CheckResult::passed) => Verdict::Passed,
        None => Verdict::Failed,
    };
    match &error {
        Some(e) => log.line(format!("stopped: {e}")),
        None => log.line(format!(
            "verdict {}: {} of {} checks passed; RTO {:.1}s ({}), RPO {:.0}s ({})",
            verdict.name(),
            found.checks.iter().filter(|c| c.passed()).count(),
            found.checks.len(),
            rto.measured_seconds,
            rto.verdict,
            rpo.measured_seconds,
            rpo.verdict
        )),
    }
    let proof = Proof {
        drill_id: e.drill_id,
        verdict,
        job: e.job,
        backup: ProofBackup {
            id: h.id.clone(),
            manifest_sha256: e.manifest_sha,
            finished_at: h.finished_at.clone(),
            source: crate::redact::redact(&h.source),
            server_version: h.server_version.clone(),
            system_identifier: h.system_identifier.clone(),
            rows: h.rows,
            plain_bytes: h.plain_bytes,
        },
        target: e.target,
        scratch_database: e.scratch_name,
        scratch_dropped: e.dropped,
        pgkeep_version: env!("CARGO_PKG_VERSION").to_string(),
        host: crate::store::lease::host_name(),
        started_at: rfc3339(e.started)?,
        finished_at: rfc3339(finished)?,
        timings: found.timings,
        rto,
        rpo,
        checks: found.checks,
        key_tables: found.key_tables,
        error,
    };
    proof::store(repo, &proof, &log.text).await?;
    let failed = (proof.verdict == Verdict::Failed).then(|| {
        Error::Verification(format!(
            "drill {} of backup {} failed: {}",
            proof.drill_id,
            proof.backup.id,
            proof.failed_checks().join("; ")
        ))
    });
    Ok((proof, failed))
}

/// The drill's work on the scratch database: guard, create, restore,
/// checks. Fills `found` as it goes, so a stop keeps what was learned.
#[allow(clippy::too_many_arguments)]
async fn steps(
    repo: &Repo,
    opts: &DrillOptions,
    manifest: &Arc<Manifest>,
    scratch: &Scratch,
    found: &mut Findings,
    log: &mut Log,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<()> {
    let t0 = log.t0;
    if scratch.name() == manifest.header.database {
        return Err(Error::Refused(format!(
            "the scratch database name {:?} is the backup's source database",
            scratch.name()
        )));
    }
    guard_cluster(
        &scratch.settings,
        &manifest.header,
        opts.def.allow_source_cluster,
    )
    .await?;
    scratch.create(&manifest.body.source.encoding).await?;
    found.created = true;
    found.timings.fetch_and_verify_ms = t0.elapsed().as_millis() as u64;
    log.line(format!(
        "created scratch database {} on {}",
        scratch.name(),
        opts.target
    ));

    let mut ropts = RestoreOptions::new(scratch.settings.clone());
    ropts.jobs = opts.jobs;
    ropts.memory = opts.memory;
    ropts.unlock = opts.unlock.clone();
    match restore_manifest(repo, manifest.clone(), &ropts, progress, cancel).await {
        Ok(s) => {
            let t = &mut found.timings;
            t.pre_data_ms = s.pre_data_ms;
            t.data_ms = s.data_ms;
            t.post_data_ms = s.post_data_ms;
            log.line(format!(
                "restored {} streams, {} rows, {} bytes in {:.1}s (pre-data {:.1}s, data {:.1}s, post-data {:.1}s); every frame's hash and tag checked",
                s.streams, s.rows, s.bytes,
                s.duration_ms as f64 / 1000.0,
                s.pre_data_ms as f64 / 1000.0,
                s.data_ms as f64 / 1000.0,
                s.post_data_ms as f64 / 1000.0
            ));
        }
        // Damage in the archive is a failed drill, not a stopped one.
        Err(e) if e.exit_code() == 3 => {
            let msg = crate::redact::redact(&e.to_string());
            log.line(format!("restore failed its integrity checks: {msg}"));
            found.checks.push(
                CheckResult::new("restore integrity", "integrity", Instant::now())
                    .fail("failed".into(), msg),
            );
            return Ok(());
        }
        Err(e) => return Err(e),
    }

    let t_checks = Instant::now();
    let result = run_checks(opts, manifest, scratch, found, log).await;
    found.timings.checks_ms = t_checks.elapsed().as_millis() as u64;
    result
}

/// The checks, in order: the application's command first (so the
/// database checks describe the copy as the application left it), then
/// row counts, `non_empty`, RLS, SQL checks and chains.
async fn run_checks(
    opts: &DrillOptions,
    manifest: &Manifest,
    scratch: &Scratch,
    found: &mut Findings,
    log: &mut Log,
) -> Result<()> {
    let def = &opts.def;
    let record = |c: CheckResult, log: &mut Log, found: &mut Findings| {
        log.line(format!(
            "check {:?}: {} ({}{}) in {} ms",
            c.name,
            if c.passed() { "passed" } else { "FAILED" },
            c.value,
            c.details
                .first()
                .map(|d| format!("; {d}"))
                .unwrap_or_default(),
            c.duration_ms
        ));
        found.checks.push(c);
    };
    if !def.command.is_empty() {
        let timeout = def
            .command_timeout
            .map_or(command::DEFAULT_TIMEOUT, |t| t.0);
        log.line(format!("running command: {}", def.command.join(" ")));
        let run = command::run(
            &def.command,
            timeout,
            &scratch.settings,
            &opts.hidden_variables,
        )
        .await?;
        for l in run.output.lines() {
            log.line(format!("  | {l}"));
        }
        record(run.check, log, found);
    }
    let t = Instant::now();
    let counted: BTreeMap<String, i64> =
        checks::count_rows(&scratch.settings, manifest, opts.jobs).await?;
    record(checks::row_counts(manifest, &counted, t), log, found);
    for c in checks::non_empty(&def.non_empty, &counted, Instant::now()) {
        record(c, log, found);
    }
    found.key_tables = key_tables(&def.non_empty, &counted);
    let conn = connect(&scratch.settings).await?;
    if def.rls.as_deref() == Some("as_source") {
        record(checks::rls_as_source(&conn, manifest).await?, log, found);
    }
    for c in checks::sql_checks(&conn, &def.check).await? {
        record(c, log, found);
    }
    if def.verify_chains {
        record(
            checks::chains(&scratch.settings, &opts.chains).await?,
            log,
            found,
        );
    }
    Ok(())
}

/// The tables a drill report shows: the `non_empty` ones, then the
/// largest, at most ten.
fn key_tables(non_empty: &[String], counted: &BTreeMap<String, i64>) -> Vec<TableRows> {
    let mut out: Vec<TableRows> = Vec::new();
    let mut push = |table: &String, rows: i64| {
        if out.len() < 10 && !out.iter().any(|t| &t.table == table) {
            out.push(TableRows {
                table: table.clone(),
                rows,
            });
        }
    };
    for name in non_empty {
        if let Some((t, n)) = checks::find(name, counted) {
            push(t, n);
        }
    }
    let mut largest: Vec<(&String, &i64)> = counted.iter().collect();
    largest.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (t, n) in largest.into_iter().take(5) {
        push(t, *n);
    }
    out
}
