//! `pgkeep backup`.

use super::common::{
    human_bytes, print_json, recorded_backup, run_context, DbArgs, OutputArgs, ParallelArgs,
    RepoArgs, SelectArgs,
};
use super::secrets::{EncryptArgs, KeyArgs};
use clap::Args;
use pgkeep::backup::{backup, BackupOptions, DEFAULT_LOCK_TIMEOUT, DEFAULT_SPLIT_BYTES};
use pgkeep::error::{Error, Result};
use pgkeep::ops::copy::{offsite, CopyOptions, OffsiteReport, Selection};
use pgkeep::ops::runs::{recorded, Action, RunFacts};
use pgkeep::store::bandwidth::parse_rate;
use pgkeep::store::OpenMode;
use pgkeep::units::{parse_size, Size};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct BackupArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub parallel: ParallelArgs,
    /// Compression: zstd:LEVEL (1-19) or none (default zstd:1: on COPY text
    /// ~2.5x faster than level 3 at a similar ratio; docs/benchmarks.md).
    #[arg(long)]
    pub compress: Option<String>,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Seconds to wait for each table lock before failing the backup.
    #[arg(long, default_value_t = DEFAULT_LOCK_TIMEOUT.as_secs())]
    pub lock_timeout: u64,
    /// Split tables larger than this into slices dumped in parallel.
    #[arg(long, default_value_t = Size(DEFAULT_SPLIT_BYTES as usize))]
    pub split_size: Size,
    /// Frame size (default derived from --memory, at most 4MiB).
    #[arg(long)]
    pub frame_size: Option<String>,
    #[command(flatten)]
    pub encryption: EncryptArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Record every role and tablespace of the cluster, not only those the
    /// database's objects need (pg_dumpall --globals-only's part).
    #[arg(long)]
    pub globals: bool,
    /// Record the roles' password hashes too (needs a superuser; encrypted
    /// backups only).
    #[arg(long)]
    pub with_role_passwords: bool,
    /// Cap the upload rate, e.g. 10MiB/s (an average over each part).
    #[arg(long, value_name = "RATE")]
    pub max_bandwidth: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn parse_compress(s: &str) -> Result<i32> {
    if s == "none" {
        return Ok(0);
    }
    let level = s
        .strip_prefix("zstd:")
        .or(if s == "zstd" { Some("1") } else { None })
        .and_then(|l| l.parse::<i32>().ok())
        .filter(|l| (1..=19).contains(l))
        .ok_or_else(|| {
            Error::Config(format!("invalid --compress {s:?} (use zstd:1..19 or none)"))
        })?;
    Ok(level)
}

pub async fn run(mut args: BackupArgs, cancel: CancellationToken) -> Result<()> {
    let job = args.repo.policy.job()?;
    let job = job.as_ref();
    if let Some(j) = job.filter(|j| j.kind != "postgres") {
        return Err(Error::Config(format!(
            "job {} is a {} job: `pgkeep backup` backs up PostgreSQL databases",
            j.name, j.kind
        )));
    }
    args.keys.default_from(job);
    let mut opts = BackupOptions::new(args.db.resolve_for(job)?);

    opts.jobs = args.parallel.jobs_for(job);
    opts.memory = args.parallel.memory_for(job);
    if let Some(c) = &args.compress {
        opts.compress_level = parse_compress(c)?;
    }
    opts.lock_timeout = Duration::from_secs(args.lock_timeout);
    opts.split_bytes = args.split_size.0 as u64;
    opts.frame_size = args.frame_size.as_deref().map(parse_size).transpose()?;
    opts.catalog = args.select.patterns();
    opts.globals = pgkeep::catalog::globals::GlobalsOptions {
        all: args.globals,
        passwords: args.with_role_passwords,
    };
    let policy = args.repo.policy.load()?;
    if let Some(p) = &policy {
        opts.chains = p.chain.clone();
    }
    let budget = opts.budget()?;
    let mut repo = args
        .repo
        .open_for(job, budget.part_size, OpenMode::CreateIfMissing)?;
    if let Some(rate) = args.max_bandwidth.as_deref() {
        repo = repo.with_max_bandwidth(parse_rate(rate)?);
    }
    opts.keys = args.encryption.choice(&args.keys)?;
    let progress = pgkeep::progress::for_stderr("backup").into();
    let work = backup(&repo, &opts, progress, cancel);
    let header = recorded_backup(&repo, policy.as_ref(), job, "postgres", work).await;
    let header = header?;
    if args.output.json {
        print_json(&header)?;
    } else {
        println!(
            "backup {} complete: {} tables, {} rows, {} of data stored as {} in {:.1}s",
            header.id,
            header.tables,
            header.rows,
            human_bytes(header.plain_bytes),
            human_bytes(header.stored_bytes),
            header.duration_ms as f64 / 1000.0
        );
    }
    copy_after_backup(job, &repo, &header.id, &args.keys, args.output.json).await?;
    Ok(())
}

/// The job's offsite copies follow each backup (`backup` and `redis
/// backup`), each with its retention; recorded as a copy run.
pub async fn copy_after_backup(
    job: Option<&pgkeep::ops::job::Job>,
    repo: &pgkeep::store::Repo,
    backup_id: &str,
    keys: &KeyArgs,
    json: bool,
) -> Result<()> {
    let Some(job) = job.filter(|j| !j.copies.is_empty()) else {
        return Ok(());
    };
    let unlock = pgkeep::keys::Unlock::new(keys.inputs()?);
    let ctx = run_context(Action::Copy, Some(job));
    let selection = Selection::One(backup_id.to_string());
    let (silent, copy_opts) = (pgkeep::progress::Silent, CopyOptions::default());
    let work = offsite(job, repo, &selection, &unlock, &copy_opts, &silent);
    let reports = recorded(repo, &ctx, work, |r: &Vec<OffsiteReport>| RunFacts {
        backup_id: Some(backup_id.to_string()),
        bytes: Some(r.iter().flat_map(|o| &o.copy.copied).map(|c| c.bytes).sum()),
        ..RunFacts::default()
    })
    .await
    .inspect_err(|_| {
        eprintln!("pgkeep: backup {backup_id} is complete, but its offsite copy failed:")
    })?;
    if !json {
        for r in &reports {
            let removed = r.retention.as_ref().map_or(0, |x| x.removed);
            println!(
                "copied {backup_id} to {} ({} removed there by its retention)",
                r.target, removed
            );
        }
    }
    Ok(())
}
