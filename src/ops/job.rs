//! A policy job resolved for running: its repository (`<repository
//! url>/<job>`) and options, its database, its sizes, retention and
//! objectives, with `${VAR}` read from the environment now. The CLI turns
//! `--policy FILE --job NAME` into this; flags still override.

use crate::config::env::expand;
use crate::config::keep::KeepPolicy;
use crate::config::policy::{job_repository, DrillDef, JobDef, OptionValue, Policy, Schedule};
use crate::config::{ChainDef, ConnSettings};
use crate::error::Result;
use crate::store::RepoOptions;
use jiff::tz::TimeZone;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// An offsite copy target of a job.
#[derive(Clone, Debug)]
pub struct CopyTarget {
    /// `<copy url>` as written (the job's backups go straight under it).
    pub url: String,
    pub options: RepoOptions,
    pub retention: Option<KeepPolicy>,
}

/// A job ready to run.
#[derive(Clone, Debug)]
pub struct Job {
    pub name: String,
    /// `postgres` or `redis`.
    pub kind: &'static str,
    pub repo_url: String,
    pub repo_options: RepoOptions,
    /// Database jobs: the connection (the `url`, expanded).
    pub db: Option<ConnSettings>,
    /// Redis jobs: the server URL (expanded; a secret).
    pub redis_url: Option<String>,
    /// Redis jobs: the `redis-server` a drill starts.
    pub drill_server: Option<PathBuf>,
    pub jobs: Option<usize>,
    pub memory: Option<usize>,
    pub retention: Option<KeepPolicy>,
    pub timezone: TimeZone,
    pub rpo: Option<Duration>,
    pub rto: Option<Duration>,
    pub drill: Option<DrillDef>,
    /// The drill's staging server (`[database.drill] target`) as written:
    /// expanded only when a drill or benchmark uses it
    /// ([`Job::drill_target`]), so other commands need none of its variables.
    pub drill_target_template: Option<String>,
    /// Environment variables the job's source connection reads
    /// (`${PROD_DIRECT_URL}`): kept from a drill's command.
    pub source_variables: Vec<String>,
    pub schedule: Option<Schedule>,
    /// When `serve` drills the newest backup (`[database.drill] schedule`,
    /// or a `[[redis]]` job's `drill_schedule`).
    pub drill_schedule: Option<Schedule>,
    pub verify_schedule: Option<Schedule>,
    pub copies: Vec<CopyTarget>,
    pub passphrase_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub chains: Vec<ChainDef>,
}

/// Repository options from a policy table, `${VAR}` expanded.
pub fn options_from(
    table: &BTreeMap<String, OptionValue>,
    what: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RepoOptions> {
    let mut pairs = Vec::with_capacity(table.len());
    for (k, v) in table {
        pairs.push(format!(
            "{k}={}",
            expand(&v.as_text(), &format!("{what} option {k}"), env)?
        ));
    }
    RepoOptions::from_pairs(pairs)
}

/// A connection string of the policy, `${VAR}` expanded and resolved
/// (libpq defaults); errors name `what`, never the value.
fn connection(raw: &str, what: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<ConnSettings> {
    let url = expand(raw, what, env)?;
    ConnSettings::resolve_with(&url, env).map_err(|e| match e {
        crate::Error::Config(m) => crate::Error::Config(format!("{what}: {m}")),
        other => other,
    })
}

impl Job {
    /// The drill's staging server, `${VAR}` read from the environment now.
    pub fn drill_target(&self) -> Result<Option<ConnSettings>> {
        self.drill_target_template
            .as_deref()
            .map(|t| {
                connection(t, &format!("database {} drill target", self.name), &|k| {
                    std::env::var(k).ok()
                })
            })
            .transpose()
    }

    /// Resolves job `name` of `policy` with the process environment.
    pub fn resolve(policy: &Policy, name: &str) -> Result<Job> {
        Job::resolve_with(policy, name, &|k| std::env::var(k).ok())
    }

    /// Resolves what reading the job's repositories needs (no database or
    /// Redis URL: `status` never connects to the source).
    pub fn resolve_repositories(policy: &Policy, name: &str) -> Result<Job> {
        Job::resolve_inner(policy, name, &|k| std::env::var(k).ok(), false)
    }

    /// Resolves job `name` with an explicit environment (tests).
    pub fn resolve_with(
        policy: &Policy,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Job> {
        Job::resolve_inner(policy, name, env, true)
    }

    /// Resolves job `name`; the database or Redis URL only with `sources`.
    fn resolve_inner(
        policy: &Policy,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
        sources: bool,
    ) -> Result<Job> {
        let def = policy.job(name)?;
        let repo = policy
            .repository
            .as_ref()
            .ok_or_else(|| crate::Error::Config("the policy has no [repository]".into()))?;
        let base = expand(&repo.url, "repository url", env)?;
        let mut job = Job {
            name: name.to_string(),
            kind: def.kind(),
            repo_url: job_repository(&base, name),
            repo_options: options_from(&repo.options, "repository", env)?,
            db: None,
            redis_url: None,
            drill_server: None,
            jobs: None,
            memory: None,
            retention: None,
            timezone: policy.timezone(),
            rpo: None,
            rto: None,
            drill: None,
            drill_target_template: None,
            source_variables: Vec::new(),
            schedule: None,
            drill_schedule: None,
            verify_schedule: None,
            copies: Vec::new(),
            passphrase_file: match &repo.passphrase_file {
                Some(p) => Some(expand(p, "repository passphrase_file", env)?.into()),
                None => None,
            },
            key_file: match &repo.key_file {
                Some(p) => Some(expand(p, "repository key_file", env)?.into()),
                None => None,
            },
            chains: policy.chain.clone(),
        };
        let copies = match def {
            JobDef::Database(d) => {
                if sources {
                    job.db = Some(connection(&d.url, &format!("database {name} url"), env)?);
                }
                job.source_variables = crate::config::env::names(&d.url);
                job.drill_target_template = d.drill.as_ref().and_then(|dr| dr.target.clone());
                job.jobs = d.jobs;
                job.memory = d.memory.map(|m| m.0);
                job.retention = d.retention.clone();
                job.rpo = d.rpo.map(|r| r.0);
                job.rto = d.rto.map(|r| r.0);
                job.drill = d.drill.clone();
                job.drill_schedule = d.drill.as_ref().and_then(|x| x.schedule.clone());
                job.schedule = d.schedule.clone();
                job.verify_schedule = d.verify_schedule.clone();
                &d.copy
            }
            JobDef::Redis(r) => {
                if sources {
                    job.redis_url = Some(expand(&r.url, &format!("redis {name} url"), env)?);
                }
                job.memory = r.memory.map(|m| m.0);
                job.retention = r.retention.clone();
                job.rpo = r.rpo.map(|r| r.0);
                job.rto = r.rto.map(|r| r.0);
                job.drill_server = r.drill_server.as_ref().map(PathBuf::from);
                job.drill_schedule = r.drill_schedule.clone();
                job.schedule = r.schedule.clone();
                job.verify_schedule = r.verify_schedule.clone();
                &r.copy
            }
        };
        for (i, c) in copies.iter().enumerate() {
            let what = format!("{name} copy #{}", i + 1);
            job.copies.push(CopyTarget {
                url: expand(&c.url, &format!("{what} url"), env)?,
                options: options_from(&c.options, &what, env)?,
                retention: c.retention.clone(),
            });
        }
        Ok(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
timezone = "Europe/Berlin"
[repository]
url = "s3://bucket/${ENVIRONMENT}"
options = { region = "auto", secret_access_key = "${S3_SECRET}", allow_http = true }
passphrase_file = "/etc/pgkeep/passphrase"

[[database]]
name = "app"
url = "postgres://app:${DB_PASSWORD}@db.internal:5433/app"
jobs = 3
memory = "32MiB"
rpo = "6h"
retention = { keep_daily = 7 }

[[database.copy]]
url = "/mnt/offsite/app"
retention = { keep_daily = 30 }
"#;

    fn env(k: &str) -> Option<String> {
        match k {
            "ENVIRONMENT" => Some("prod".into()),
            "S3_SECRET" => Some("s3-secret-value".into()),
            "DB_PASSWORD" => Some("db-secret-value".into()),
            _ => None,
        }
    }

    #[test]
    fn a_job_resolves_with_its_repository_folder_and_secrets_kept_out_of_display() {
        let p = Policy::parse(POLICY, "t").unwrap();
        let job = Job::resolve_with(&p, "app", &env).unwrap();
        assert_eq!(job.repo_url, "s3://bucket/prod/app");
        assert_eq!(job.kind, "postgres");
        assert_eq!((job.jobs, job.memory), (Some(3), Some(32 << 20)));
        assert_eq!(job.timezone.iana_name(), Some("Europe/Berlin"));
        assert_eq!(job.rpo, Some(Duration::from_secs(6 * 3600)));
        let db = job.db.as_ref().unwrap();
        assert_eq!((db.user.as_str(), db.dbname.as_str()), ("app", "app"));
        assert_eq!(db.password(), Some("db-secret-value"));
        assert!(!db.to_string().contains("db-secret-value"));
        assert!(!format!("{:?}", job.repo_options).contains("s3-secret-value"));
        assert_eq!(job.copies[0].url, "/mnt/offsite/app");
        assert_eq!(
            job.passphrase_file.as_deref(),
            Some(std::path::Path::new("/etc/pgkeep/passphrase"))
        );
        // An unset variable is named, its value never shown.
        let e = Job::resolve_with(&p, "app", &|k| {
            if k == "DB_PASSWORD" {
                None
            } else {
                env(k)
            }
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("DB_PASSWORD is not set") && e.contains("database app url"),
            "{e}"
        );
    }
}
