//! `pgkeep redis backup` and `pgkeep redis restore`.

use super::backup::parse_compress;
use super::common::{human_bytes, print_json, recorded_backup, OutputArgs, RepoArgs};
use super::secrets::{EncryptArgs, KeyArgs};
use clap::{Args, Subcommand};
use pgkeep::archive::index::{read_manifest, resolve_backup_id};
use pgkeep::error::{Error, Result};
use pgkeep::ops::job::Job;
use pgkeep::pipeline::budget::DEFAULT_MEMORY;
use pgkeep::redis::restore::{restore_keys, restore_rdb};
use pgkeep::redis::{redis_backup, Method, RedisBackupOptions, RedisTarget};
use pgkeep::store::lease::Lease;
use pgkeep::store::OpenMode;
use pgkeep::units::Size;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct RedisArgs {
    #[command(subcommand)]
    pub command: RedisCommand,
}

#[derive(Subcommand, Debug)]
pub enum RedisCommand {
    /// Snapshot a Redis server into a repository (RDB over the replication protocol, or --method scan).
    Backup(RedisBackupArgs),
    /// Write a backup's RDB file (--out), or load a scan backup's keys into a server (--to).
    Restore(RedisRestoreArgs),
    /// Restore drill of a [[redis]] job: a scratch redis-server on the backup, keys per database checked, RTO, proof in the repository (exit 0 passed, 3 failed, 1 stopped).
    Drill(super::drill::DrillArgs),
}

/// The server: a URL and its TLS files.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// redis://[user:password@]host[:port][/db] or rediss://... (default:
    /// REDIS_URL, else the policy job's url). Prefer REDIS_URL for a
    /// password: a flag shows in `ps`.
    #[arg(long = "redis", env = "REDIS_URL", hide_env_values = true)]
    pub url: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// TLS files of a `rediss` server.
#[derive(Args, Debug, Clone)]
pub struct TlsArgs {
    /// rediss: the CA certificate (PEM) that signed the server's.
    #[arg(long = "redis-tls-ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// rediss: a client certificate (PEM), with --redis-tls-key.
    #[arg(long = "redis-tls-cert", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long = "redis-tls-key", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ServerArgs {
    fn target(&self, url: Option<&str>) -> Result<RedisTarget> {
        let url = url.ok_or_else(|| {
            Error::Config(
                "no Redis server: give --redis URL, REDIS_URL or --policy with --job".into(),
            )
        })?;
        let mut t = RedisTarget::parse(url)?;
        let tls = &self.tls;
        if tls.tls_ca.is_some() {
            t.tls_ca = tls.tls_ca.clone();
        }
        if tls.tls_cert.is_some() {
            t.tls_cert = tls.tls_cert.clone();
            t.tls_key = tls.tls_key.clone();
        }
        Ok(t)
    }
}

#[derive(Args, Debug)]
pub struct RedisBackupArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub repo: RepoArgs,
    /// auto (replication, else scan when the server refuses SYNC),
    /// replication (an RDB snapshot, point in time) or scan (SCAN + DUMP
    /// per key: not a point-in-time snapshot).
    #[arg(long, default_value = "auto")]
    pub method: Method,
    /// Memory budget for frames, encoders and uploads in flight.
    #[arg(long)]
    pub memory: Option<Size>,
    /// Record the dataset's DEBUG DIGEST (before and after, kept when they
    /// agree) for drills to compare. DEBUG DIGEST blocks the server while
    /// it reads every key: for quiet or small servers.
    #[arg(long)]
    pub digest: bool,
    /// Compression: zstd:LEVEL (1-19) or none (default zstd:1).
    #[arg(long)]
    pub compress: Option<String>,
    #[command(flatten)]
    pub encryption: EncryptArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct RedisRestoreArgs {
    /// Backup id, or `latest`.
    #[arg(default_value = "latest")]
    pub backup: String,
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Write the RDB file here (a replication backup), ready for the
    /// server's dir/dbfilename.
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "to",
        required_unless_present = "to"
    )]
    pub out: Option<PathBuf>,
    /// Replace an existing file at --out.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Load a scan backup's keys into this server with RESTORE
    /// (redis://...; a password is better given in REDIS_URL).
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Overwrite keys that exist in the --to server.
    #[arg(long, requires = "to")]
    pub replace: bool,
    /// TLS files of the --to server.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Memory for frames in flight.
    #[arg(long)]
    pub memory: Option<Size>,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: RedisArgs, cancel: CancellationToken) -> Result<()> {
    match args.command {
        RedisCommand::Backup(a) => backup(a, cancel).await,
        RedisCommand::Restore(a) => restore(a).await,
        RedisCommand::Drill(a) => {
            // Checked here too: `redis drill` of a database job is refused.
            if redis_job(&a.repo)?.is_none() {
                return Err(Error::Config(
                    "redis drill needs --policy FILE --job NAME (a [[redis]] job)".into(),
                ));
            }
            super::drill::run(a, cancel).await
        }
    }
}

/// The policy job, if any, checked to be a Redis job.
fn redis_job(repo: &RepoArgs) -> Result<Option<Job>> {
    let job = repo.policy.job()?;
    if let Some(j) = job.as_ref().filter(|j| j.kind != "redis") {
        return Err(Error::Config(format!(
            "job {} is a {} job: `pgkeep redis` backs up [[redis]] jobs",
            j.name, j.kind
        )));
    }
    Ok(job)
}

async fn backup(mut args: RedisBackupArgs, cancel: CancellationToken) -> Result<()> {
    let job = redis_job(&args.repo)?;
    let job = job.as_ref();
    args.keys.default_from(job);
    // The flag (or REDIS_URL) wins over the job's url.
    let url = args
        .server
        .url
        .clone()
        .or_else(|| job.and_then(|j| j.redis_url.clone()));
    let mut opts = RedisBackupOptions::new(args.server.target(url.as_deref())?);
    opts.method = args.method;
    opts.digest = args.digest;
    opts.memory = args
        .memory
        .map(|m| m.0)
        .or(job.and_then(|j| j.memory))
        .unwrap_or(DEFAULT_MEMORY);
    if let Some(c) = &args.compress {
        opts.compress_level = parse_compress(c)?;
    }
    opts.keys = args.encryption.choice(&args.keys)?;
    let budget = opts.budget()?;
    let repo = args
        .repo
        .open_for(job, budget.part_size, OpenMode::CreateIfMissing)?;
    let policy = args.repo.policy.load()?;
    let progress = pgkeep::progress::for_stderr("redis backup").into();
    let work = redis_backup(&repo, &opts, progress, cancel);
    let header = recorded_backup(&repo, policy.as_ref(), job, "redis", work).await;
    let header = header?;
    if args.output.json {
        print_json(&header)?;
    } else {
        println!(
            "redis backup {} complete: {} keys, {} stored as {} in {:.1}s",
            header.id,
            header.rows,
            human_bytes(header.plain_bytes),
            human_bytes(header.stored_bytes),
            header.duration_ms as f64 / 1000.0
        );
    }
    super::backup::copy_after_backup(job, &repo, &header.id, &args.keys, args.output.json).await
}

async fn restore(mut args: RedisRestoreArgs) -> Result<()> {
    let job = redis_job(&args.repo)?;
    let job = job.as_ref();
    args.keys.default_from(job);
    let memory = args
        .memory
        .map(|m| m.0)
        .or(job.and_then(|j| j.memory))
        .unwrap_or(DEFAULT_MEMORY);
    let to = match &args.to {
        Some(url) => {
            let server = ServerArgs {
                url: Some(url.clone()),
                tls: args.tls.clone(),
            };
            Some(server.target(Some(url))?)
        }
        None => None,
    };
    let repo = args.repo.open_for(
        job,
        pgkeep::pipeline::budget::MAX_READ_REQUEST,
        OpenMode::MustExist,
    )?;
    let id = resolve_backup_id(&repo, &args.backup).await?;
    let progress: Arc<dyn pgkeep::progress::Progress> =
        pgkeep::progress::for_stderr("redis restore").into();
    let (out, force, replace) = (args.out.clone(), args.force, args.replace);
    let work = args.keys.with_unlock(|unlock| {
        let (repo, id, progress, out, to) = (
            repo.clone(),
            id.clone(),
            progress.clone(),
            out.clone(),
            to.clone(),
        );
        async move {
            let manifest = Arc::new(read_manifest(&repo, &id, unlock.as_ref()).await?);
            match (out, to) {
                (Some(out), _) => restore_rdb(&repo, manifest, &out, force, memory, progress)
                    .await
                    .map(Restored::File),
                (None, Some(to)) => restore_keys(&repo, manifest, &to, replace, memory, progress)
                    .await
                    .map(Restored::Keys),
                (None, None) => Err(Error::Config("give --out PATH or --to URL".into())),
            }
        }
    });
    let report = Lease::while_held(&repo, &id, "restore", work).await?;
    match report {
        Restored::File(r) if args.output.json => print_json(&r)?,
        Restored::Keys(r) if args.output.json => print_json(&r)?,
        Restored::File(r) => {
            println!(
                "wrote backup {id} to {} ({}, CRC64 {}, every frame verified) in {:.1}s",
                r.path.display(),
                human_bytes(r.bytes),
                r.crc64,
                r.duration_ms as f64 / 1000.0
            );
            println!("to load it: stop redis-server, copy the file to its `dir` as its `dbfilename` (CONFIG GET dir / dbfilename),");
            println!("turn appendonly off for the first start (or the AOF wins over the RDB), start the server, check DBSIZE per database.");
        }
        Restored::Keys(r) => println!(
            "restored {} keys of backup {id} into {} ({} expired since the backup, not created) in {:.1}s",
            r.keys,
            r.target,
            r.expired,
            r.duration_ms as f64 / 1000.0
        ),
    }
    Ok(())
}

/// What `redis restore` did: a file written, or keys loaded.
enum Restored {
    File(pgkeep::redis::restore::RdbRestored),
    Keys(pgkeep::redis::restore::KeysRestored),
}
