//! The job sections of a policy: `[repository]`, `[[database]]` (with its
//! `[[database.copy]]` offsite copies and `[database.drill]`) and
//! `[[redis]]`. Strings may hold `${VAR}`, expanded when used
//! (`config::env`).

use super::expect::Expect;
use super::schedule::Schedule;
use crate::config::keep::KeepPolicy;
use crate::units::{HumanDuration, Size};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A scalar in an options table (`allow_http = true`, `region = "auto"`).
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(untagged)]
pub enum OptionValue {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl OptionValue {
    pub fn as_text(&self) -> String {
        match self {
            OptionValue::Bool(b) => b.to_string(),
            OptionValue::Int(i) => i.to_string(),
            OptionValue::Str(s) => s.clone(),
        }
    }
}

/// Where the jobs keep their backups: each job under `<url>/<job name>/`.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RepositoryDef {
    /// A local path, `file://`, `s3://`, `gs://` or `az://` URL.
    pub url: String,
    /// Repository options (the `--repo-option` keys).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, OptionValue>,
    /// A file holding the passphrase of a master key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<String>,
    /// A file holding a raw master key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
}

/// An offsite copy of a job's backups, with its own retention.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CopyDef {
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, OptionValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<KeepPolicy>,
}

/// A PostgreSQL database job.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseDef {
    pub name: String,
    /// Connection string (URL or key=value); usually `${VAR}`.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_schedule: Option<Schedule>,
    /// `status` is CRITICAL when the newest complete backup is older.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo: Option<HumanDuration>,
    /// The drill's restore-time objective.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<KeepPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy: Vec<CopyDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillDef>,
}

/// A restore drill of a database job.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DrillDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// `status` warns when the last passed drill is older.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<HumanDuration>,
    /// The server the scratch database is created on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default)]
    pub allow_source_cluster: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_empty: Vec<String>,
    /// `as_source`: RLS flags and policies must equal the source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rls: Option<String>,
    #[serde(default)]
    pub verify_chains: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_timeout: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check: Vec<DrillCheck>,
}

/// An SQL check of a drill: `expect` is `> N`, `>= N`, `= VALUE` or `true`.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DrillCheck {
    pub name: String,
    pub sql: String,
    pub expect: String,
}

impl DrillCheck {
    /// The parsed `expect`.
    pub fn expectation(&self) -> std::result::Result<Expect, String> {
        Expect::parse(&self.expect).map_err(|e| format!("check {:?}: {e}", self.name))
    }
}

/// A Redis job.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisDef {
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo: Option<HumanDuration>,
    /// The drill's restore-time objective (time to a loaded server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<HumanDuration>,
    /// The `redis-server` a drill starts (default: `redis-server` from PATH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_server: Option<String>,
    /// When `serve` runs a drill of the newest backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<KeepPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy: Vec<CopyDef>,
}
