//! Command-line surface: clap option structs (one file per command) that
//! turn flags into library option structs, and output formatting (human or
//! `--json`). No backup logic lives here.

pub mod backup;
pub mod bench;
pub mod chain;
pub mod common;
pub mod copy;
pub mod drill;
pub mod key;
pub mod list;
pub mod policy;
pub mod prune;
pub mod redis;
pub mod restore;
pub mod secrets;
pub mod serve;
pub mod show;
pub mod status;
pub mod verify;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "pgkeep",
    version,
    about = "Native PostgreSQL backup and restore: consistent, parallel, verified"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format for stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Back up a database into a repository.
    Backup(backup::BackupArgs),
    /// Restore a backup into a database.
    Restore(restore::RestoreArgs),
    /// List the backups of a repository.
    List(list::ListArgs),
    /// Show a backup's table of contents.
    Show(show::ShowArgs),
    /// Check backups without a database: every pack hash, frame, tag and count.
    Verify(verify::VerifyArgs),
    /// Manage the repository's master keys (encryption).
    Key(key::KeyCmdArgs),
    /// Event-store hash chains.
    Chain(chain::ChainArgs),
    /// Remove backups by keep rules (--keep-*), and leftovers of failed backups (--incomplete).
    Prune(prune::PruneArgs),
    /// Policy files: `policy check` validates one and prints its plan.
    Policy(policy::PolicyCmdArgs),
    /// Each job's state against its RPO, drills and copies (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
    Status(status::StatusArgs),
    /// Copy complete backups to another repository (offsite), bytes unchanged.
    Copy(copy::CopyArgs),
    /// Restore drill: restore into a scratch database, run the policy's checks, measure RTO/RPO, store the proof (exit 0 passed; 3 a check, objective or integrity failed; 1 an error stopped it, 2 bad configuration, 130 interrupted).
    Drill(drill::DrillArgs),
    /// Restore throughput per job count into scratch databases (--db: also backup vs a raw parallel COPY).
    Bench(bench::BenchArgs),
    /// The scheduler daemon: every job on its schedules, /metrics, /health, /status and a status page, notifications.
    Serve(serve::ServeArgs),
    /// Redis: snapshot a server into a repository, restore an RDB file or keys.
    Redis(redis::RedisArgs),
    /// Pin a backup: retention never removes it.
    Pin(prune::PinArgs),
    /// Remove a backup's pin.
    Unpin(prune::UnpinArgs),
}
