//! Flags shared by several commands and their conversion to library types.

use clap::Args;
use pgkeep::config::{redact_conninfo, ConnSettings};
use pgkeep::error::{Error, Result};
use pgkeep::pipeline::budget::{DEFAULT_JOBS, DEFAULT_MEMORY};
use pgkeep::store::{OpenMode, Repo, RepoOptions};
use pgkeep::units::Size;

#[derive(Args, Debug, Clone)]
pub struct RepoArgs {
    /// Repository: a local directory, file://PATH, s3://BUCKET/PREFIX,
    /// gs://BUCKET/PREFIX or az://CONTAINER/PREFIX (docs/storage.md).
    #[arg(long, env = "PGKEEP_REPO")]
    pub repo: String,
    /// Repository option KEY=VALUE (repeatable): endpoint, region,
    /// allow_http, virtual_hosted_style, request_timeout, max_retries, ...
    /// Credentials also come from the usual environment variables.
    #[arg(long = "repo-option", value_name = "KEY=VALUE")]
    pub repo_options: Vec<String>,
}

impl RepoArgs {
    /// Opens the repository; `request_bytes` is the largest request the
    /// command sends (sizes remote request timeouts).
    pub fn open(&self, request_bytes: usize, mode: OpenMode) -> Result<Repo> {
        let options = RepoOptions::from_pairs(&self.repo_options)?;
        Repo::open_with(&self.repo, &options, request_bytes, mode)
    }
}

#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// Database: a postgres:// URL or libpq key=value string. Defaults to
    /// DATABASE_URL, then the PG* environment variables.
    #[arg(long)]
    pub db: Option<String>,
}

impl DbArgs {
    pub fn resolve(&self) -> Result<ConnSettings> {
        let raw = match &self.db {
            Some(s) => s.clone(),
            None => std::env::var("DATABASE_URL").unwrap_or_default(),
        };
        ConnSettings::resolve(&raw).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!(
                "{m} in connection string {}",
                redact_conninfo(&raw)
            )),
            other => other,
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct ParallelArgs {
    /// Parallel workers (connections), at least 1.
    #[arg(long, short = 'j', default_value_t = DEFAULT_JOBS, value_parser = parse_jobs)]
    pub jobs: usize,
    /// Memory budget for everything in flight (e.g. 64MiB, 1GiB).
    #[arg(long, default_value_t = Size(DEFAULT_MEMORY))]
    pub memory: Size,
}

impl ParallelArgs {
    pub fn memory_bytes(&self) -> Result<usize> {
        Ok(self.memory.0)
    }
}

/// `--jobs`: a whole number of at least 1.
fn parse_jobs(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

#[derive(Args, Debug, Clone, Copy)]
pub struct OutputArgs {
    /// Print machine-readable JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Formats a byte count for people.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::Internal(format!("json: {e}")))?;
    println!("{s}");
    Ok(())
}
