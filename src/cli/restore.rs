//! `pgkeep restore`.

use super::common::{human_bytes, print_json, DbArgs, OutputArgs, ParallelArgs, RepoArgs};
use clap::Args;
use pgkeep::error::Result;
use pgkeep::restore::{restore, RestoreOptions};
use pgkeep::store::OpenMode;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Backup id, or `latest`.
    #[arg(default_value = "latest")]
    pub backup: String,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub parallel: ParallelArgs,
    /// Drop the target's existing objects first (with --create: drop and recreate the database).
    #[arg(long)]
    pub clean: bool,
    /// Create the target database (named in --db) first.
    #[arg(long)]
    pub create: bool,
    /// maintenance_work_mem for index builds.
    #[arg(long, default_value = "128MB")]
    pub maintenance_work_mem: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: RestoreArgs, cancel: CancellationToken) -> Result<()> {
    let mut opts = RestoreOptions::new(args.db.resolve()?);
    opts.jobs = args.parallel.jobs.max(1);
    opts.memory = args.parallel.memory_bytes()?;
    opts.clean = args.clean;
    opts.create = args.create;
    opts.maintenance_work_mem = args.maintenance_work_mem;
    // Reads are at most one frame (≤ 32 MiB) per request.
    let repo = args.repo.open(32 << 20, OpenMode::MustExist)?;
    let progress = pgkeep::progress::for_stderr("restore").into();
    let s = restore(&repo, &args.backup, &opts, progress, cancel).await?;
    if args.output.json {
        print_json(&s)?;
    } else {
        println!(
            "restored {} into {}: {} streams, {} rows, {} in {:.1}s (pre-data {:.1}s, data {:.1}s, post-data {:.1}s); row counts verified",
            s.backup_id,
            s.target,
            s.streams,
            s.rows,
            human_bytes(s.bytes),
            s.duration_ms as f64 / 1000.0,
            s.pre_data_ms as f64 / 1000.0,
            s.data_ms as f64 / 1000.0,
            s.post_data_ms as f64 / 1000.0
        );
    }
    Ok(())
}
