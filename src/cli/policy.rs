//! `pgkeep policy check`: validates a policy, resolves every job (each
//! `${VAR}` must be set; values are never shown) and prints the plan:
//! jobs, repositories, schedules with their next three runs, objectives,
//! retention, copies, drills, notify targets, `[serve]`.

use super::common::{print_json, OutputArgs};
use clap::{Args, Subcommand};
use pgkeep::config::env::uses_env;
use pgkeep::config::policy::{job_repository, JobDef, Policy, Schedule};
use pgkeep::config::redact_conninfo;
use pgkeep::error::{Error, Result};
use pgkeep::ops::job::Job;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PolicyCmdArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy and print its plan (secrets redacted).
    Check(CheckArgs),
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The policy file.
    #[arg(long, value_name = "FILE", env = "PGKEEP_POLICY")]
    pub policy: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Serialize)]
struct ScheduleView {
    cron: String,
    next: Vec<String>,
}

#[derive(Serialize)]
struct JobView {
    name: String,
    kind: &'static str,
    repository: String,
    repository_options: Vec<String>,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify_schedule: Option<ScheduleView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rpo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rto: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<String>,
    copies: Vec<CopyView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drill: Option<DrillView>,
}

#[derive(Serialize)]
struct CopyView {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<String>,
}

#[derive(Serialize)]
struct DrillView {
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    every: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    checks: usize,
    non_empty: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    rls: Option<String>,
    verify_chains: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<String>,
}

#[derive(Serialize)]
struct NotifyView {
    kind: String,
    on: Vec<String>,
    url: String,
    headers: Vec<String>,
}

#[derive(Serialize)]
struct PlanView {
    policy: String,
    timezone: String,
    jobs: Vec<JobView>,
    chains: Vec<String>,
    notify: Vec<NotifyView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    serve: Option<String>,
    /// What would stop a job from running (unset variables, bad options).
    problems: Vec<String>,
}

/// A value as the plan may show it: a `${VAR}` template as written, a
/// connection string with its password replaced.
fn shown(v: &str) -> String {
    if uses_env(v) {
        v.to_string()
    } else {
        redact_conninfo(v)
    }
}

/// A webhook URL is a secret (Slack's carries its token in the path):
/// only the scheme and host are shown, unless it is a `${VAR}` template.
fn shown_url(v: &str) -> String {
    if uses_env(v) {
        return v.to_string();
    }
    match v.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            if rest.len() > host.len() {
                format!("{scheme}://{host}/***")
            } else {
                format!("{scheme}://{host}")
            }
        }
        None => "***".into(),
    }
}

fn schedule(s: Option<&Schedule>, tz: &jiff::tz::TimeZone) -> Option<ScheduleView> {
    s.map(|s| ScheduleView {
        cron: s.as_str().to_string(),
        next: s
            .upcoming(jiff::Timestamp::now(), tz, 3)
            .iter()
            .map(|t| {
                t.to_zoned(tz.clone())
                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                    .to_string()
            })
            .collect(),
    })
}

fn plan(p: &Policy, origin: &str) -> PlanView {
    let tz = p.timezone();
    let base = p.repository.as_ref().map(|r| r.url.as_str()).unwrap_or("");
    let mut problems = Vec::new();
    let mut jobs = Vec::new();
    for def in p.jobs() {
        if let Err(e) = Job::resolve(p, def.name()) {
            problems.push(format!("job {}: {}", def.name(), strip(e)));
        }
        let repo_options: Vec<String> = p
            .repository
            .iter()
            .flat_map(|r| r.options.keys().cloned())
            .collect();
        let mut view = JobView {
            name: def.name().to_string(),
            kind: def.kind(),
            repository: shown(&job_repository(base, def.name())),
            repository_options: repo_options,
            source: String::new(),
            jobs: None,
            memory: None,
            schedule: None,
            verify_schedule: None,
            rpo: None,
            rto: None,
            retention: None,
            copies: Vec::new(),
            drill: None,
        };
        let copies = match def {
            JobDef::Database(d) => {
                view.source = shown(&d.url);
                view.jobs = d.jobs;
                view.memory = d.memory.map(|m| m.to_string());
                view.schedule = schedule(d.schedule.as_ref(), &tz);
                view.verify_schedule = schedule(d.verify_schedule.as_ref(), &tz);
                view.rpo = d.rpo.map(|r| r.to_string());
                view.rto = d.rto.map(|r| r.to_string());
                view.retention = d.retention.as_ref().map(|k| k.describe());
                view.drill = d.drill.as_ref().map(|dr| DrillView {
                    schedule: schedule(dr.schedule.as_ref(), &tz),
                    every: dr.every.map(|e| e.to_string()),
                    target: dr.target.as_deref().map(shown),
                    checks: dr.check.len(),
                    non_empty: dr.non_empty.len(),
                    rls: dr.rls.clone(),
                    verify_chains: dr.verify_chains,
                    command: (!dr.command.is_empty()).then(|| dr.command.join(" ")),
                });
                &d.copy
            }
            JobDef::Redis(r) => {
                view.source = shown_url(&r.url);
                view.memory = r.memory.map(|m| m.to_string());
                view.schedule = schedule(r.schedule.as_ref(), &tz);
                view.verify_schedule = schedule(r.verify_schedule.as_ref(), &tz);
                view.rpo = r.rpo.map(|r| r.to_string());
                view.rto = r.rto.map(|r| r.to_string());
                view.retention = r.retention.as_ref().map(|k| k.describe());
                &r.copy
            }
        };
        view.copies = copies
            .iter()
            .map(|c| CopyView {
                url: shown(&c.url),
                retention: c.retention.as_ref().map(|k| k.describe()),
            })
            .collect();
        jobs.push(view);
    }
    PlanView {
        policy: origin.to_string(),
        timezone: tz.iana_name().unwrap_or("UTC").to_string(),
        jobs,
        chains: p.chain.iter().map(|c| c.table.clone()).collect(),
        notify: p
            .notify
            .iter()
            .map(|n| NotifyView {
                kind: serde_name(&n.kind),
                on: n.on.iter().map(serde_name).collect(),
                url: shown_url(&n.url),
                headers: n.headers.keys().cloned().collect(),
            })
            .collect(),
        serve: p
            .serve
            .as_ref()
            .map(|s| s.listen.clone().unwrap_or_else(|| "127.0.0.1:9898".into())),
        problems,
    }
}

/// The policy-file spelling of an enum value (`drill_failure`).
fn serde_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn strip(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}

pub async fn run(args: PolicyCmdArgs) -> Result<()> {
    let PolicyCommand::Check(a) = args.command;
    let origin = a.policy.display().to_string();
    let p = Policy::load(&a.policy)?;
    let view = plan(&p, &origin);
    if a.output.json {
        print_json(&view)?;
    } else {
        print_plan(&view);
    }
    if view.problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "policy {origin}: {} problem(s): {}",
            view.problems.len(),
            view.problems.join("; ")
        )))
    }
}

fn print_plan(v: &PlanView) {
    println!(
        "policy {}: {} job(s), time zone {}",
        v.policy,
        v.jobs.len(),
        v.timezone
    );
    let sched = |label: &str, s: &Option<ScheduleView>| {
        if let Some(s) = s {
            println!("  {label:<12}{}   next: {}", s.cron, s.next.join(", "));
        }
    };
    for j in &v.jobs {
        println!("job {} ({})", j.name, j.kind);
        println!("  {:<12}{}", "repository", j.repository);
        if !j.repository_options.is_empty() {
            println!("  {:<12}{}", "options", j.repository_options.join(", "));
        }
        println!("  {:<12}{}", "source", j.source);
        if j.jobs.is_some() || j.memory.is_some() {
            println!(
                "  {:<12}jobs {}, memory {}",
                "sizes",
                j.jobs.map_or("default".into(), |n| n.to_string()),
                j.memory.clone().unwrap_or_else(|| "default".into())
            );
        }
        sched("schedule", &j.schedule);
        sched("verify", &j.verify_schedule);
        if j.rpo.is_some() || j.rto.is_some() {
            println!(
                "  {:<12}rpo {}, rto {}",
                "objectives",
                j.rpo.as_deref().unwrap_or("-"),
                j.rto.as_deref().unwrap_or("-")
            );
        }
        if let Some(r) = &j.retention {
            println!("  {:<12}{r}", "retention");
        }
        for c in &j.copies {
            println!(
                "  {:<12}{}{}",
                "copy",
                c.url,
                c.retention
                    .as_deref()
                    .map(|r| format!("  retention {r}"))
                    .unwrap_or_default()
            );
        }
        if let Some(d) = &j.drill {
            sched("drill", &d.schedule);
            println!(
                "  {:<12}every {}, target {}, {} SQL check(s), {} non-empty table(s), rls {}, chains {}{}",
                "drill",
                d.every.as_deref().unwrap_or("-"),
                d.target.as_deref().unwrap_or("-"),
                d.checks,
                d.non_empty,
                d.rls.as_deref().unwrap_or("off"),
                if d.verify_chains { "verified" } else { "not verified" },
                d.command.as_deref().map(|c| format!(", command `{c}`")).unwrap_or_default()
            );
        }
    }
    if !v.chains.is_empty() {
        println!("chains: {}", v.chains.join(", "));
    }
    for n in &v.notify {
        println!(
            "notify {} on {}: {}{}",
            n.kind,
            n.on.join(", "),
            n.url,
            if n.headers.is_empty() {
                String::new()
            } else {
                format!(" (headers: {})", n.headers.join(", "))
            }
        );
    }
    if let Some(s) = &v.serve {
        println!("serve on {s}");
    }
    for p in &v.problems {
        println!("problem: {p}");
    }
}
