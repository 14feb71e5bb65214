//! Flags shared by several commands and their conversion to library types.

use clap::Args;
use pgkeep::config::{redact_conninfo, ConnSettings, Policy};
use pgkeep::error::{Error, Result};
use pgkeep::ops::job::Job;
use pgkeep::pipeline::budget::{DEFAULT_JOBS, DEFAULT_MEMORY};
use pgkeep::store::{OpenMode, Repo, RepoOptions};
use pgkeep::units::Size;
use std::path::PathBuf;

/// `--policy FILE --job NAME`: a job of a policy file stands in for
/// `--repo`, `--db`, `--jobs`, `--memory`, the key files and the keep
/// rules (flags still override).
#[derive(Args, Debug, Clone, Default)]
pub struct PolicyArgs {
    /// Policy file (pgkeep.toml, docs/policy.md).
    #[arg(long, value_name = "FILE", env = "PGKEEP_POLICY")]
    pub policy: Option<PathBuf>,
    /// A job of the policy ([[database]] or [[redis]] name).
    #[arg(long, value_name = "NAME", requires = "policy")]
    pub job: Option<String>,
}

impl PolicyArgs {
    pub fn load(&self) -> Result<Option<Policy>> {
        self.policy.as_deref().map(Policy::load).transpose()
    }

    /// The job named by `--job`, resolved (environment read now).
    pub fn job(&self) -> Result<Option<Job>> {
        match (&self.policy, &self.job) {
            (Some(p), Some(name)) => Job::resolve(&Policy::load(p)?, name).map(Some),
            _ => Ok(None),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct RepoArgs {
    /// Repository: a local directory, file://PATH, s3://BUCKET/PREFIX,
    /// gs://BUCKET/PREFIX or az://CONTAINER/PREFIX (docs/storage.md).
    /// Default: the policy job's (`<repository url>/<job>`).
    #[arg(long, env = "PGKEEP_REPO")]
    pub repo: Option<String>,
    /// Repository option KEY=VALUE (repeatable): endpoint, region,
    /// allow_http, virtual_hosted_style, request_timeout, max_retries, ...
    /// Credentials also come from the usual environment variables.
    #[arg(long = "repo-option", value_name = "KEY=VALUE")]
    pub repo_options: Vec<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

impl RepoArgs {
    /// Opens the repository; `request_bytes` is the largest request the
    /// command sends (sizes remote request timeouts).
    pub fn open(&self, request_bytes: usize, mode: OpenMode) -> Result<Repo> {
        self.open_for(self.policy.job()?.as_ref(), request_bytes, mode)
    }

    /// Opens `--repo`, or else the job's repository with its options
    /// (`--repo-option` adds to and overrides them).
    pub fn open_for(
        &self,
        job: Option<&Job>,
        request_bytes: usize,
        mode: OpenMode,
    ) -> Result<Repo> {
        match (&self.repo, job) {
            (Some(url), _) => {
                let options = RepoOptions::from_pairs(&self.repo_options)?;
                Repo::open_with(url, &options, request_bytes, mode)
            }
            (None, Some(job)) => {
                let mut options = job.repo_options.clone();
                options.merge_pairs(&self.repo_options)?;
                Repo::open_with(&job.repo_url, &options, request_bytes, mode)
            }
            (None, None) => Err(Error::Config(
                "no repository: give --repo URL (or PGKEEP_REPO), or --policy FILE --job NAME"
                    .into(),
            )),
        }
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
    /// `--db`, else the policy job's database, else `DATABASE_URL` and the
    /// `PG*` variables.
    pub fn resolve_for(&self, job: Option<&Job>) -> Result<ConnSettings> {
        if self.db.is_none() {
            if let Some(db) = job.and_then(|j| j.db.clone()) {
                return Ok(db);
            }
        }
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

fn jobs_help() -> String {
    format!("Parallel workers (connections), at least 1 [default: the policy job's `jobs`, else {DEFAULT_JOBS}]")
}

fn memory_help() -> String {
    format!(
        "Memory budget for everything in flight, e.g. 64MiB, 1GiB [default: the policy job's `memory`, else {}]",
        Size(DEFAULT_MEMORY)
    )
}

#[derive(Args, Debug, Clone)]
pub struct ParallelArgs {
    #[arg(long, short = 'j', value_parser = parse_jobs, help = jobs_help())]
    pub jobs: Option<usize>,
    #[arg(long, help = memory_help())]
    pub memory: Option<Size>,
}

impl ParallelArgs {
    /// `--jobs`, else the job's, else the library default.
    pub fn jobs_for(&self, job: Option<&Job>) -> usize {
        self.jobs
            .or(job.and_then(|j| j.jobs))
            .unwrap_or(DEFAULT_JOBS)
    }

    /// `--memory`, else the job's, else the library default.
    pub fn memory_for(&self, job: Option<&Job>) -> usize {
        self.memory
            .map(|m| m.0)
            .or(job.and_then(|j| j.memory))
            .unwrap_or(DEFAULT_MEMORY)
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

/// Who a run record says ran: the policy job, if any.
pub fn run_context(
    action: pgkeep::ops::runs::Action,
    job: Option<&Job>,
) -> pgkeep::ops::runs::RunContext {
    pgkeep::ops::runs::RunContext {
        action,
        job: job.map(|j| j.name.clone()),
        kind: job.map_or("postgres", |j| j.kind),
    }
}

/// Runs a backup (`kind` `postgres` or `redis`) as a recorded run of the
/// policy job, if any; the policy's `[[notify]]` targets hear of its start,
/// then of its success or failure.
pub async fn recorded_backup(
    repo: &pgkeep::store::Repo,
    policy: Option<&pgkeep::config::Policy>,
    job: Option<&Job>,
    kind: &'static str,
    work: impl std::future::Future<Output = Result<pgkeep::archive::ManifestHeader>>,
) -> Result<pgkeep::archive::ManifestHeader> {
    use pgkeep::ops::runs::{recorded, Action, RunFacts};
    let mut ctx = run_context(Action::Backup, job);
    ctx.kind = kind;
    let facts = |h: &pgkeep::archive::ManifestHeader| RunFacts {
        backup_id: Some(h.id.clone()),
        bytes: Some(h.stored_bytes),
        rows: Some(h.rows),
        rto_ms: None,
    };
    let notices = match (policy, job) {
        (Some(p), Some(j)) => {
            pgkeep::notify::RunNotices::start(&p.notify, &j.name, j.kind, Action::Backup)
        }
        _ => None,
    };
    let header = recorded(repo, &ctx, work, facts).await;
    if let Some(n) = notices {
        n.finish(header.as_ref().map(facts).as_ref().map_err(|e| *e))
            .await;
    }
    header
}

/// `-t/-n/-T/-N`: the backup's patterns, for `backup` (what is dumped) and
/// `restore` (what is restored).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SelectArgs {
    /// Only these tables (pattern, may be schema-qualified; repeatable).
    #[arg(long = "table", short = 't')]
    pub tables: Vec<String>,
    /// Only these schemas (repeatable).
    #[arg(long = "schema", short = 'n')]
    pub schemas: Vec<String>,
    /// Skip these tables (repeatable).
    #[arg(long = "exclude-table", short = 'T')]
    pub exclude_tables: Vec<String>,
    /// Skip these schemas (repeatable).
    #[arg(long = "exclude-schema", short = 'N')]
    pub exclude_schemas: Vec<String>,
}

impl SelectArgs {
    pub fn patterns(&self) -> pgkeep::catalog::CatalogOptions {
        pgkeep::catalog::CatalogOptions {
            schemas: self.schemas.clone(),
            exclude_schemas: self.exclude_schemas.clone(),
            tables: self.tables.clone(),
            exclude_tables: self.exclude_tables.clone(),
        }
    }
}
