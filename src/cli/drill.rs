//! `pgkeep drill`: a restore drill of a policy job, with its evidence.

use super::common::{print_json, OutputArgs, ParallelArgs, RepoArgs};
use super::secrets::KeyArgs;
use clap::Args;
use pgkeep::config::ConnSettings;
use pgkeep::drill::{drill, DrillOptions};
use pgkeep::error::{Error, Result};
use pgkeep::pipeline::budget::MAX_READ_REQUEST;
use pgkeep::redis::drill::{redis_drill, RedisDrillOptions};
use pgkeep::store::OpenMode;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct DrillArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Backup id, `latest`, or `latest-verified` (the newest that passed a full verify).
    #[arg(default_value = "latest")]
    pub backup: String,
    /// The staging server the scratch database is created on [default: the
    /// policy's drill `target`]. Its database name is not used.
    #[arg(long)]
    pub target: Option<String>,
    /// Keep the scratch database after the drill and print its URL.
    #[arg(long)]
    pub keep: bool,
    /// Print a DRILL-<date> entry in Markdown for a decision log.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
    /// Also write restore-proof-<drill-id>.json, restore-result-<drill-id>.json
    /// and restore-test-<drill-id>.log into this directory (CI artifacts).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub parallel: ParallelArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(mut args: DrillArgs, cancel: CancellationToken) -> Result<()> {
    let job = args.repo.policy.job()?.ok_or_else(|| {
        Error::Config("drill needs --policy FILE --job NAME: its checks come from the job's [database.drill] section".into())
    })?;
    args.keys.default_from(Some(&job));
    let repo = args
        .repo
        .open_for(Some(&job), MAX_READ_REQUEST, OpenMode::MustExist)?;
    let plan = if job.kind == "redis" {
        if args.target.is_some() || args.keep {
            return Err(Error::Config(format!(
                "job {} is a Redis job: its drill starts a scratch redis-server of its own (no --target) and always stops it (no --keep)",
                job.name
            )));
        }
        let mut opts = RedisDrillOptions::for_job(&job, &args.backup);
        opts.memory = args.parallel.memory_for(Some(&job));
        Plan::Redis(opts)
    } else {
        Plan::Postgres(Box::new(postgres_plan(&args, &job)?))
    };
    let progress: std::sync::Arc<dyn pgkeep::progress::Progress> =
        pgkeep::progress::for_stderr("restore").into();
    let notices = match args.repo.policy.load()? {
        Some(p) => pgkeep::notify::RunNotices::start(
            &p.notify,
            &job.name,
            job.kind,
            pgkeep::ops::runs::Action::Drill,
        ),
        None => None,
    };
    let result = args
        .keys
        .with_unlock(|unlock| {
            let plan = plan.clone();
            let (repo, progress, cancel) = (repo.clone(), progress.clone(), cancel.clone());
            async move {
                let r = match plan {
                    Plan::Postgres(mut opts) => {
                        opts.unlock = unlock;
                        drill(&repo, &opts, progress, cancel).await?
                    }
                    Plan::Redis(mut opts) => {
                        opts.unlock = unlock;
                        redis_drill(&repo, &opts, progress, cancel).await?
                    }
                };
                // A key problem found while reading the backup asks for a
                // passphrase and tries again (see KeyArgs::with_unlock).
                match r.stopped {
                    Some(Error::Key(m)) => Err(Error::Key(m)),
                    _ => Ok(r),
                }
            }
        })
        .await;
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(n) = notices {
                n.finish(Err(&e)).await;
            }
            return Err(e);
        }
    };
    if let Some(n) = notices {
        let facts = pgkeep::ops::runs::RunFacts {
            backup_id: Some(result.proof.backup.id.clone()),
            rto_ms: Some(result.proof.timings.rto_ms),
            ..Default::default()
        };
        n.finish(match result.failure() {
            None => Ok(&facts),
            Some(e) => Err(e),
        })
        .await;
    }
    let p = &result.proof;
    if let Some(dir) = &args.out {
        for f in pgkeep::drill::proof::write_local(dir, p, &result.log)? {
            eprintln!("wrote {}", f.display());
        }
    }
    if args.output.json {
        print_json(p)?;
    } else if args.markdown {
        print!("{}", p.markdown());
    } else {
        print_human(p);
    }
    if let Some(kept) = &result.kept {
        eprintln!("scratch database kept: {kept}");
    }
    match result.failure() {
        None => Ok(()),
        Some(_) => Err(result
            .stopped
            .or(result.failed)
            .unwrap_or_else(|| Error::Internal("drill failure without a cause".into()))),
    }
}

/// A PostgreSQL drill or a Redis one.
#[derive(Clone)]
enum Plan {
    Postgres(Box<DrillOptions>),
    Redis(RedisDrillOptions),
}

/// A database job's drill: its `[database.drill]` section and staging
/// server.
fn postgres_plan(args: &DrillArgs, job: &pgkeep::ops::job::Job) -> Result<DrillOptions> {
    let def = job.drill.clone().ok_or_else(|| {
        Error::Config(format!(
            "job {} has no [database.drill] section in the policy",
            job.name
        ))
    })?;
    let target = match &args.target {
        Some(t) => Some(ConnSettings::resolve(t).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("--target: {m}")),
            other => other,
        })?),
        None => job.drill_target()?,
    };
    let target = target.ok_or_else(|| {
        Error::Config(format!(
            "job {}: no drill target: set `target` in [database.drill] or give --target URL (a staging server)",
            job.name
        ))
    })?;
    Ok(DrillOptions {
        job: Some(job.name.clone()),
        backup: args.backup.clone(),
        target,
        def,
        chains: job.chains.clone(),
        rto: job.rto,
        rpo: job.rpo,
        jobs: args.parallel.jobs_for(Some(job)),
        memory: args.parallel.memory_for(Some(job)),
        keep: args.keep,
        hidden_variables: job.source_variables.clone(),
        unlock: Default::default(),
    })
}

fn print_human(p: &pgkeep::drill::proof::Proof) {
    println!(
        "drill {} of backup {}: {}",
        p.drill_id,
        p.backup.id,
        p.verdict.name().to_uppercase()
    );
    let t = &p.timings;
    let s = |ms: u64| ms as f64 / 1000.0;
    println!(
        "  RTO {:.1}s ({}): fetch and verify {:.1}s, pre-data {:.1}s, data {:.1}s, post-data {:.1}s, checks {:.1}s",
        s(t.rto_ms),
        p.rto.verdict,
        s(t.fetch_and_verify_ms),
        s(t.pre_data_ms),
        s(t.data_ms),
        s(t.post_data_ms),
        s(t.checks_ms)
    );
    println!(
        "  RPO: backup age {} ({})",
        pgkeep::units::format_duration(std::time::Duration::from_secs_f64(p.rpo.measured_seconds)),
        p.rpo.verdict
    );
    for c in &p.checks {
        println!(
            "  [{}] {}: {}",
            if c.passed() { " ok " } else { "FAIL" },
            c.name,
            c.value
        );
        for d in &c.details {
            println!("         {d}");
        }
    }
    if let Some(e) = &p.error {
        println!("  stopped: {e}");
    }
    println!(
        "  proof: drills/{}/proof.json in the repository; scratch database {} {}",
        p.drill_id,
        p.scratch_database,
        if p.scratch_dropped { "dropped" } else { "kept" }
    );
}
