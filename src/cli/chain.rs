//! `pgkeep chain verify`: hash-chain verification from a live database or a
//! backup, with the chain definition from `--policy` or from flags.

use super::common::{print_json, DbArgs, OutputArgs};
use super::secrets::KeyArgs;
use clap::{Args, Subcommand};
use pgkeep::chain::{verify_archive, verify_live, ChainsReport, StreamFilter};
use pgkeep::config::policy::{Algorithm, Part, Recipe};
use pgkeep::config::{ChainDef, Policy};
use pgkeep::error::{Error, Result};
use pgkeep::ops::job::Job;
use pgkeep::store::{OpenMode, Repo, RepoOptions};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ChainArgs {
    #[command(subcommand)]
    pub command: ChainCommand,
}

#[derive(Subcommand, Debug)]
pub enum ChainCommand {
    /// Verify hash chains: live (--db) or from a backup (--repo).
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Database to verify (URL or key=value).
    #[arg(long, conflicts_with = "repo", required_unless_present_any = ["repo", "job"])]
    pub db: Option<String>,
    /// A job of the policy: its database (live), or, with a BACKUP, that
    /// backup in its repository.
    #[arg(long, value_name = "NAME", requires = "policy")]
    pub job: Option<String>,
    /// Repository: verify a backup without a database.
    #[arg(long)]
    pub repo: Option<String>,
    /// Repository option KEY=VALUE for --repo (repeatable; see docs/storage.md).
    #[arg(long = "repo-option", value_name = "KEY=VALUE", requires = "repo")]
    pub repo_options: Vec<String>,
    /// Backup id or `latest` (with --repo, or --job to read the job's repository).
    pub backup: Option<String>,
    /// Older backup whose chain heads must still be present (from a backup).
    #[arg(long)]
    pub against: Option<String>,
    /// Only this stream: its key values joined with '/' (TYPE/ID).
    #[arg(long, conflicts_with = "stream_type")]
    pub stream: Option<String>,
    /// Only streams whose first key column is TYPE.
    #[arg(long)]
    pub stream_type: Option<String>,
    #[command(flatten)]
    pub chain: ChainFlags,
    /// Key of an encrypted backup (with --repo).
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A chain definition: a policy file, or flags for a one-off check.
#[derive(Args, Debug, Default)]
pub struct ChainFlags {
    /// Policy file (TOML) with [[chain]] entries.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Chain table, schema-qualified (with --policy: check only this chain).
    #[arg(long)]
    pub table: Option<String>,
    /// Stream key columns, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub stream_key: Vec<String>,
    /// Sequence column.
    #[arg(long)]
    pub seq: Option<String>,
    /// Previous-hash column.
    #[arg(long)]
    pub prev_hash: Option<String>,
    /// Hash column.
    #[arg(long)]
    pub hash: Option<String>,
    /// Recipe part, in order (repeat): COLUMN, bytea:COLUMN, text:COLUMN or lit:TEXT.
    #[arg(long = "part")]
    pub parts: Vec<String>,
    /// Separator between recipe parts.
    #[arg(long, default_value = "")]
    pub separator: String,
    /// How NULL renders in the recipe.
    #[arg(long = "null", default_value = "")]
    pub null: String,
    /// Leave NULL parts out, with their separator (concat_ws).
    #[arg(long)]
    pub skip_nulls: bool,
    /// Default input of column parts: text or bytea.
    #[arg(long, default_value = "text")]
    pub input: String,
    /// How hashes are stored: hex, base64 or bytea.
    #[arg(long, default_value = "hex")]
    pub hash_format: String,
    /// prev_hash of a stream's first event (default: NULL).
    #[arg(long)]
    pub genesis: Option<String>,
    /// Sequence number of a stream's first event.
    #[arg(long, default_value_t = 1)]
    pub first_seq: i64,
}

impl ChainFlags {
    fn has_definition_flags(&self) -> bool {
        !self.stream_key.is_empty()
            || self.seq.is_some()
            || self.prev_hash.is_some()
            || self.hash.is_some()
            || !self.parts.is_empty()
            || self.genesis.is_some()
    }

    /// The chains to check.
    pub fn resolve(&self) -> Result<Vec<ChainDef>> {
        if let Some(path) = &self.policy {
            if self.has_definition_flags() {
                return Err(Error::Config(
                    "give the chain either in --policy or as flags, not both (with --policy, --table picks one chain)".into(),
                ));
            }
            let mut chains = Policy::load(path)?.chain;
            if let Some(t) = &self.table {
                chains.retain(|c| &c.table == t);
                if chains.is_empty() {
                    return Err(Error::Config(format!(
                        "policy {} has no [[chain]] for table {t}",
                        path.display()
                    )));
                }
            }
            if chains.is_empty() {
                return Err(Error::Config(format!(
                    "policy {} defines no [[chain]]",
                    path.display()
                )));
            }
            return Ok(chains);
        }
        let missing = |what: &str| Error::Config(format!("{what} is required without --policy"));
        let def = ChainDef {
            table: self.table.clone().ok_or_else(|| missing("--table"))?,
            stream: self.stream_key.clone(),
            seq: self.seq.clone().ok_or_else(|| missing("--seq"))?,
            prev_hash: self
                .prev_hash
                .clone()
                .ok_or_else(|| missing("--prev-hash"))?,
            hash: self.hash.clone().ok_or_else(|| missing("--hash"))?,
            first_seq: self.first_seq,
            genesis: self.genesis.clone(),
            recipe: Recipe {
                algorithm: Algorithm::Sha256,
                separator: self.separator.clone(),
                null: self.null.clone(),
                skip_nulls: self.skip_nulls,
                input: self.input.parse()?,
                output: self.hash_format.parse()?,
                parts: self.parts.iter().map(|p| Part::from_flag(p)).collect(),
            },
        };
        def.validate()
            .map_err(|m| Error::Config(format!("chain flags: {m}")))?;
        Ok(vec![def])
    }
}

pub async fn run(args: ChainArgs) -> Result<()> {
    let ChainCommand::Verify(a) = args.command;
    let chains = a.chain.resolve()?;
    let filter = match (&a.stream, &a.stream_type) {
        (Some(s), _) => StreamFilter::Stream(s.clone()),
        (None, Some(t)) => StreamFilter::Type(t.clone()),
        (None, None) => StreamFilter::All,
    };
    let job = match (&a.chain.policy, &a.job) {
        (Some(p), Some(name)) => Some(Job::resolve(&pgkeep::config::Policy::load(p)?, name)?),
        _ => None,
    };
    let repo = match (&a.repo, &job) {
        (Some(url), _) => Some(Repo::open_with(
            url,
            &RepoOptions::from_pairs(&a.repo_options)?,
            pgkeep::pipeline::budget::MAX_READ_REQUEST,
            OpenMode::MustExist,
        )?),
        (None, Some(j)) if a.backup.is_some() => Some(Repo::open_with(
            &j.repo_url,
            &j.repo_options,
            pgkeep::pipeline::budget::MAX_READ_REQUEST,
            OpenMode::MustExist,
        )?),
        _ => None,
    };
    if repo.is_none() && (a.backup.is_some() || a.against.is_some()) {
        return Err(Error::Config(
            "a backup to verify needs its repository: --repo URL, or --policy FILE --job NAME"
                .into(),
        ));
    }
    let mut keys = a.keys.clone();
    keys.default_from(job.as_ref());
    let report = match (repo, &a.db) {
        (Some(repo), _) => {
            let id = a.backup.as_deref().unwrap_or("latest");
            keys.with_unlock(|unlock| {
                let (repo, chains, filter) = (repo.clone(), chains.clone(), filter.clone());
                let against = a.against.clone();
                async move {
                    verify_archive(&repo, id, &chains, &filter, against.as_deref(), &unlock).await
                }
            })
            .await?
        }
        (None, db) => {
            let db = DbArgs { db: db.clone() };
            verify_live(&db.resolve_for(job.as_ref())?, &chains, &filter).await?
        }
    };
    finish(&report, a.output.json)
}

/// Prints a report (human or JSON) and turns broken chains into the
/// integrity exit code.
pub fn finish(report: &ChainsReport, json: bool) -> Result<()> {
    if json {
        print_json(report)?;
    } else {
        print_human(report);
    }
    check(report)
}

/// `Ok` when every chain holds, else the integrity error (exit code 3).
pub fn check(report: &ChainsReport) -> Result<()> {
    if report.ok {
        Ok(())
    } else {
        Err(Error::Verification(format!(
            "{} of {} chain streams broken",
            report.broken, report.streams
        )))
    }
}

pub fn print_human(report: &ChainsReport) {
    for c in &report.chains {
        println!(
            "chain {}: {} streams, {} events, {} broken",
            c.table, c.streams, c.events, c.broken
        );
        for f in &c.failures {
            let seq = f.seq.map(|s| format!(" seq {s}")).unwrap_or_default();
            println!(
                "  stream {}{seq}: {}: expected {}, found {}",
                f.stream,
                f.check.describe(),
                f.expected,
                f.found
            );
        }
    }
    if report.ok {
        println!(
            "all chains hold ({} streams, {} events)",
            report.streams, report.events
        );
    }
}
