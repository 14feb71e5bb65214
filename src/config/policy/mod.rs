//! The policy file (`pgkeep.toml`): the runbook's knobs in one document,
//! the interface of the operations commands (`docs/policy.md`). Each
//! section is a struct with `deny_unknown_fields`, so a typo is an error
//! (with the nearest valid key) rather than a silently ignored setting.
//! `${VAR}` in strings is read from the environment when used
//! ([`crate::config::env`]), never when the policy is parsed or printed.

mod chain;
mod expect;
mod jobs;
mod notify;
mod schedule;

pub use chain::{Algorithm, ChainDef, Input, Output, Part, Recipe};
pub use expect::Expect;
pub use jobs::{CopyDef, DatabaseDef, DrillCheck, DrillDef, OptionValue, RedisDef, RepositoryDef};
pub use notify::{Event, NotifyDef, NotifyKind, ServeDef};
pub use schedule::Schedule;

use crate::error::{Error, Result};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// A parsed and validated policy file.
#[derive(Deserialize, Serialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// IANA zone of schedules and retention buckets (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositoryDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub database: Vec<DatabaseDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redis: Vec<RedisDef>,
    /// Hash-chained event tables (`[[chain]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<ChainDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serve: Option<ServeDef>,
}

/// A job of a policy, by kind.
#[derive(Clone, Copy, Debug)]
pub enum JobDef<'a> {
    Database(&'a DatabaseDef),
    Redis(&'a RedisDef),
}

impl JobDef<'_> {
    pub fn name(&self) -> &str {
        match self {
            JobDef::Database(d) => &d.name,
            JobDef::Redis(r) => &r.name,
        }
    }

    /// `postgres` or `redis` (the `kind` label of metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            JobDef::Database(_) => "postgres",
            JobDef::Redis(_) => "redis",
        }
    }
}

impl Policy {
    /// Parses and validates policy text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Policy> {
        let policy: Policy = toml::from_str(text).map_err(|e| {
            // One line: where, what, and the nearest valid key.
            let line = e
                .span()
                .and_then(|s| text.get(..s.start))
                .map(|before| before.matches('\n').count() + 1)
                .map(|l| format!(" line {l}"))
                .unwrap_or_default();
            let message = e.message().lines().collect::<Vec<_>>().join(" ");
            Error::Config(format!(
                "policy {origin}{line}: {}",
                suggest_key(message.trim())
            ))
        })?;
        policy.validate(origin)?;
        Ok(policy)
    }

    /// Reads, parses and validates a policy file.
    pub fn load(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::parse(&text, &path.display().to_string())
    }

    /// The zone of schedules and retention buckets (validated at parse
    /// time; UTC when not given).
    pub fn timezone(&self) -> TimeZone {
        self.timezone
            .as_deref()
            .and_then(|t| TimeZone::get(t).ok())
            .unwrap_or(TimeZone::UTC)
    }

    /// Every job, databases first, in file order.
    pub fn jobs(&self) -> Vec<JobDef<'_>> {
        self.database
            .iter()
            .map(JobDef::Database)
            .chain(self.redis.iter().map(JobDef::Redis))
            .collect()
    }

    /// The job called `name`, or an error naming the jobs there are.
    pub fn job(&self, name: &str) -> Result<JobDef<'_>> {
        let jobs = self.jobs();
        jobs.iter()
            .find(|j| j.name() == name)
            .copied()
            .ok_or_else(|| {
                let names: Vec<&str> = jobs.iter().map(|j| j.name()).collect();
                let hint = crate::config::suggest::nearest(name, names.iter().copied())
                    .map(|n| format!(" (did you mean {n}?)"))
                    .unwrap_or_default();
                Error::Config(format!(
                    "no job {name:?} in the policy{hint}; its jobs: {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
            })
    }

    fn validate(&self, origin: &str) -> Result<()> {
        let err = |m: String| Error::Config(format!("policy {origin}: {m}"));
        if let Some(tz) = &self.timezone {
            TimeZone::get(tz).map_err(|_| {
                err(format!(
                    "timezone {tz:?} is not an IANA zone name (e.g. UTC, Europe/Berlin)"
                ))
            })?;
        }
        let mut tables = HashSet::new();
        for (i, c) in self.chain.iter().enumerate() {
            c.validate()
                .map_err(|m| err(format!("[[chain]] #{}: {m}", i + 1)))?;
            if !tables.insert(c.table.as_str()) {
                return Err(err(format!(
                    "table {} is named by two [[chain]] entries",
                    c.table
                )));
            }
        }
        let mut names = HashSet::new();
        let jobs = self.jobs();
        for job in &jobs {
            let name = job.name();
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                || name.starts_with('.')
            {
                return Err(err(format!(
                    "job name {name:?}: letters, digits, '_', '-' and '.' (it names the job's folder in the repository)"
                )));
            }
            if !names.insert(name) {
                return Err(err(format!("two jobs are named {name:?}")));
            }
        }
        if !self.jobs().is_empty() && self.repository.is_none() {
            return Err(err("jobs need a [repository] (url = ...)".into()));
        }
        for d in &self.database {
            let what = |m: String| err(format!("database {}: {m}", d.name));
            if d.jobs == Some(0) {
                return Err(what("jobs must be at least 1".into()));
            }
            for r in d
                .retention
                .iter()
                .chain(d.copy.iter().filter_map(|c| c.retention.as_ref()))
            {
                r.validate().map_err(|e| what(schedule::strip_config(e)))?;
            }
            if let Some(drill) = &d.drill {
                for c in &drill.check {
                    c.expectation().map_err(&what)?;
                }
                if let Some(rls) = &drill.rls {
                    if !matches!(rls.as_str(), "as_source" | "off") {
                        return Err(what(format!(
                            "drill rls {rls:?}: use \"as_source\" or \"off\""
                        )));
                    }
                }
            }
        }
        for r in &self.redis {
            if let Some(k) = &r.retention {
                k.validate()
                    .map_err(|e| err(format!("redis {}: {}", r.name, schedule::strip_config(e))))?;
            }
        }
        for (i, n) in self.notify.iter().enumerate() {
            if let Some(m) = &n.method {
                if !matches!(
                    m.to_ascii_uppercase().as_str(),
                    "GET" | "POST" | "PUT" | "PATCH"
                ) {
                    return Err(err(format!(
                        "[[notify]] #{}: method {m:?}: GET, POST, PUT or PATCH",
                        i + 1
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The repository URL of a job: `<base>/<job>` (one bucket, or one folder,
/// serves many jobs).
pub fn job_repository(base: &str, job: &str) -> String {
    format!("{}/{job}", base.trim_end_matches('/'))
}

/// Adds "did you mean" to serde's unknown-field errors (which list the
/// valid keys but leave the reader to spot the typo).
fn suggest_key(message: &str) -> String {
    let Some((start, lead)) = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|lead| message.find(lead).map(|i| (i, lead.len())))
    else {
        return message.to_string();
    };
    let rest = &message[start + lead..];
    let Some(end) = rest.find('`') else {
        return message.to_string();
    };
    let unknown = &rest[..end];
    let valid: Vec<&str> = rest[end..].split('`').skip(2).step_by(2).collect();
    match crate::config::suggest::nearest(unknown, valid.iter().copied()) {
        Some(best) => format!("{message} (did you mean `{best}`?)"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests;
