//! `pgkeep bench`: restore throughput per job count (and, from `--db`,
//! backup throughput beside a raw parallel COPY).

use super::common::{human_bytes, print_json, OutputArgs, RepoArgs};
use super::secrets::KeyArgs;
use clap::Args;
use pgkeep::bench::{bench_database, bench_restore, BenchOptions, BenchReport, DEFAULT_SCALE};
use pgkeep::config::ConnSettings;
use pgkeep::error::{Error, Result};
use pgkeep::pipeline::budget::{DEFAULT_MEMORY, MAX_READ_REQUEST};
use pgkeep::store::OpenMode;
use pgkeep::units::Size;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Backup id, or `latest` (with --repo).
    #[arg(default_value = "latest")]
    pub backup: String,
    /// Back up this database into a temporary repository first, and measure
    /// that backup beside a raw parallel COPY of the same tables (instead of --repo).
    #[arg(long, conflicts_with = "repo")]
    pub db: Option<String>,
    /// The server scratch databases are restored into (and dropped from) [default: the policy job's drill target].
    #[arg(long)]
    pub target: Option<String>,
    /// Job counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = pgkeep::bench::DEFAULT_JOBS)]
    pub jobs: Vec<usize>,
    #[arg(long, help = format!("Memory budget of each run [default: {}]", Size(DEFAULT_MEMORY)))]
    pub memory: Option<Size>,
    /// Project the restore time of a database this many times larger.
    #[arg(long, default_value_t = DEFAULT_SCALE)]
    pub scale: f64,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn conn(raw: &str, what: &str) -> Result<ConnSettings> {
    ConnSettings::resolve(raw).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("{what}: {m}")),
        other => other,
    })
}

pub async fn run(mut args: BenchArgs, cancel: CancellationToken) -> Result<()> {
    let job = args.repo.policy.job()?;
    args.keys.default_from(job.as_ref());
    let from_job = match (&args.target, job.as_ref()) {
        (None, Some(j)) => j.drill_target()?,
        _ => None,
    };
    let target = match (&args.target, from_job) {
        (Some(t), _) => conn(t, "--target")?,
        (None, Some(t)) => t,
        (None, None) => {
            return Err(Error::Config(
                "bench needs --target URL: the server its scratch databases are restored into"
                    .into(),
            ))
        }
    };
    if !(args.scale.is_finite() && args.scale > 0.0) {
        return Err(Error::Config("--scale must be a positive number".into()));
    }
    let opts = BenchOptions {
        jobs: args.jobs.clone(),
        memory: args
            .memory
            .map(|m| m.0)
            .or(job.as_ref().and_then(|j| j.memory))
            .unwrap_or(DEFAULT_MEMORY),
        target,
        scale: args.scale,
        unlock: Default::default(),
    };
    let progress = |verb: &'static str| -> std::sync::Arc<dyn pgkeep::progress::Progress> {
        pgkeep::progress::for_stderr(verb).into()
    };
    let report = match &args.db {
        Some(db) => bench_database(&conn(db, "--db")?, &opts, &progress, cancel).await?,
        None => {
            let repo = args
                .repo
                .open_for(job.as_ref(), MAX_READ_REQUEST, OpenMode::MustExist)?;
            args.keys
                .with_unlock(|unlock| {
                    let mut opts = opts.clone();
                    opts.unlock = unlock;
                    let (repo, cancel, id) = (repo.clone(), cancel.clone(), args.backup.clone());
                    async move { bench_restore(&repo, &id, &opts, &progress, cancel).await }
                })
                .await?
        }
    };
    if args.output.json {
        return print_json(&report);
    }
    print_human(&report);
    Ok(())
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn rss(b: Option<u64>) -> String {
    b.map_or("-".into(), |b| format!("{} MiB", b >> 20))
}

fn print_human(r: &BenchReport) {
    println!(
        "backup {}: {} tables, {} rows, {} of COPY data ({} stored), PostgreSQL {}",
        r.backup_id,
        r.tables,
        r.rows,
        human_bytes(r.plain_bytes),
        human_bytes(r.stored_bytes),
        r.server_version
    );
    if !r.backups.is_empty() {
        println!("\nbackup (into a temporary local repository) vs raw parallel COPY TO STDOUT of the same tables:");
        println!(
            "{:>5} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9}",
            "jobs", "backup", "MB/s", "peak RSS", "raw COPY", "MB/s", "ratio"
        );
        for b in &r.backups {
            println!(
                "{:>5} {:>9} {:>9.1} {:>10} {:>9} {:>9.1} {:>8.2}x",
                b.jobs,
                secs(b.wall_ms),
                b.mb_per_s,
                rss(b.peak_rss_bytes),
                secs(b.raw_copy_ms),
                b.raw_copy_mb_per_s,
                b.ratio_to_raw_copy
            );
        }
    }
    println!("\nrestore into a scratch database (created and dropped per run):");
    println!(
        "{:>5} {:>9} {:>9} {:>11} {:>9} {:>9} {:>10} {:>10} {:>14}",
        "jobs",
        "wall",
        "MB/s",
        "rows/s",
        "pre-data",
        "data",
        "post-data",
        "peak RSS",
        format!("at {}x size", r.scale)
    );
    for x in &r.restores {
        println!(
            "{:>5} {:>9} {:>9.1} {:>11.0} {:>9} {:>9} {:>10} {:>10} {:>14}",
            x.jobs,
            secs(x.wall_ms),
            x.mb_per_s,
            x.rows_per_s,
            secs(x.pre_data_ms),
            secs(x.data_ms),
            secs(x.post_data_ms),
            rss(x.peak_rss_bytes),
            pgkeep::units::format_duration(std::time::Duration::from_millis(x.projected_ms))
        );
    }
    if let Some(best) = r.restores.iter().min_by_key(|x| x.wall_ms) {
        println!(
            "\nfastest: --jobs {} ({}); the projection scales data and post-data linearly and keeps pre-data as measured.",
            best.jobs,
            secs(best.wall_ms)
        );
    }
}
