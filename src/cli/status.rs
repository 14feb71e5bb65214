//! `pgkeep status`: each job's freshness against its RPO, last failure,
//! sizes and durations, verify, drill and copy state; human text, `--json`
//! or `--prometheus` (node_exporter's textfile collector). The exit code
//! is the worst job's: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the
//! monitoring-plugin convention).

use super::common::{print_json, OutputArgs};
use clap::Args;
use pgkeep::config::Policy;
use pgkeep::error::Result;
use pgkeep::ops::job::Job;
use pgkeep::ops::metrics::prometheus_text;
use pgkeep::ops::status::{status, JobStatus, State};
use pgkeep::units::{format_duration, format_size};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The policy file.
    #[arg(long, value_name = "FILE", env = "PGKEEP_POLICY")]
    pub policy: PathBuf,
    /// Only this job (default: every job of the policy).
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// Print Prometheus text (for node_exporter's textfile collector).
    #[arg(long, conflicts_with = "json")]
    pub prometheus: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `status`; returns the exit code (a policy that cannot be read is an
/// error, exit 3 as UNKNOWN).
pub async fn run(args: StatusArgs) -> Result<i32> {
    let policy = Policy::load(&args.policy).map_err(unknown)?;
    let names: Vec<String> = match &args.job {
        Some(j) => vec![policy.job(j).map_err(unknown)?.name().to_string()],
        None => policy.jobs().iter().map(|j| j.name().to_string()).collect(),
    };
    let mut jobs = Vec::new();
    for n in &names {
        jobs.push(Job::resolve_repositories(&policy, n).map_err(unknown)?);
    }
    let report = status(&jobs, time::OffsetDateTime::now_utc()).await;
    if args.prometheus {
        print!("{}", prometheus_text(&report)?);
    } else if args.output.json {
        print_json(&report)?;
    } else {
        for j in &report.jobs {
            print_job(j);
        }
    }
    Ok(report.state.exit_code())
}

/// A policy or job that cannot be resolved: status UNKNOWN (exit 3).
fn unknown(e: pgkeep::Error) -> pgkeep::Error {
    pgkeep::Error::Unknown(e.to_string())
}

fn print_job(j: &JobStatus) {
    let state = match j.state {
        State::Ok => "OK",
        State::Warning => "WARNING",
        State::Critical => "CRITICAL",
        State::Unknown => "UNKNOWN",
    };
    let age = j
        .last_success_age_seconds
        .map(|s| format!("{} ago", format_duration(Duration::from_secs(s))))
        .unwrap_or_else(|| "none".into());
    let rpo = j
        .rpo_seconds
        .map(|s| format!(" (rpo {})", format_duration(Duration::from_secs(s))))
        .unwrap_or_default();
    println!(
        "{state} {} ({}): last backup {age}{rpo}, {} backups",
        j.job, j.kind, j.backups
    );
    if let (Some(d), Some(b)) = (j.last_duration_seconds, j.last_size_bytes) {
        println!("  last run {d:.1}s, {} stored", format_size(b));
    }
    for r in &j.reasons {
        println!("  {r}");
    }
}
