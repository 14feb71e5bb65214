//! `pgkeep verify`: check backups without a database.

use super::common::{human_bytes, print_json, run_context, OutputArgs, ParallelArgs, RepoArgs};
use super::secrets::KeyArgs;
use clap::Args;
use pgkeep::archive::index::{list_backup_ids, resolve_backup_id};
use pgkeep::error::{Error, Result};
use pgkeep::ops::runs::{Action, RunClock, RunFacts};
use pgkeep::pipeline::budget::MAX_READ_REQUEST;
use pgkeep::store::OpenMode;
use pgkeep::verify::{verify_backup, VerifyOptions, VerifyReport};
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Backup id, or `latest`.
    #[arg(default_value = "latest", conflicts_with = "all")]
    pub backup: String,
    /// Verify every backup of the repository.
    #[arg(long)]
    pub all: bool,
    /// Only the manifest and each pack's presence and size (downloads no data).
    #[arg(long)]
    pub quick: bool,
    #[command(flatten)]
    pub parallel: ParallelArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(mut args: VerifyArgs, cancel: CancellationToken) -> Result<()> {
    let job = args.repo.policy.job()?;
    let job = job.as_ref();
    args.keys.default_from(job);
    let repo = args
        .repo
        .open_for(job, MAX_READ_REQUEST, OpenMode::MustExist)?;
    let ids = if args.all {
        list_backup_ids(&repo).await?
    } else {
        vec![resolve_backup_id(&repo, &args.backup).await?]
    };
    let (jobs, memory) = (args.parallel.jobs_for(job), args.parallel.memory_for(job));
    let clock = RunClock::start(&run_context(Action::Verify, job));
    let reports: Result<Vec<VerifyReport>> = args
        .keys
        .with_unlock(|unlock| {
            let (repo, ids, cancel) = (repo.clone(), ids.clone(), cancel.clone());
            let mut opts = VerifyOptions::new(unlock);
            opts.jobs = jobs;
            opts.memory = memory;
            opts.quick = args.quick;
            async move {
                let mut out = Vec::new();
                for id in &ids {
                    out.push(verify_backup(&repo, id, &opts, cancel.clone()).await?);
                }
                Ok(out)
            }
        })
        .await;
    let reports = match reports {
        Ok(r) => r,
        Err(e) => {
            clock.finish(&repo, Err(&e)).await;
            return Err(e);
        }
    };
    if args.output.json {
        print_json(&reports)?;
    } else {
        for r in &reports {
            let status = if r.ok { "OK" } else { "FAILED" };
            println!(
                "backup {}: {status} ({} check; {} streams, {} frames, {} rows, {} of data, {} stored{}; {:.1}s)",
                r.id,
                r.mode,
                r.streams,
                r.frames,
                r.rows,
                human_bytes(r.plain_bytes),
                human_bytes(r.stored_bytes),
                if r.encrypted { ", encrypted" } else { "" },
                r.duration_ms as f64 / 1000.0
            );
            for f in &r.failures {
                match &f.table {
                    Some(t) => println!("  {t}: {}", f.error),
                    None => println!("  {}", f.error),
                }
            }
        }
    }
    let failed = reports.iter().filter(|r| !r.ok).count();
    if failed > 0 {
        let e = Error::Verification(format!(
            "{failed} of {} backup(s) failed verification",
            reports.len()
        ));
        clock.finish(&repo, Err(&e)).await;
        return Err(e);
    }
    let facts = RunFacts {
        backup_id: (reports.len() == 1).then(|| reports[0].id.clone()),
        bytes: Some(reports.iter().map(|r| r.stored_bytes).sum()),
        rows: Some(reports.iter().map(|r| r.rows).sum()),
        rto_ms: None,
    };
    clock.finish(&repo, Ok(facts)).await;
    Ok(())
}
