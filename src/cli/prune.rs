//! `pgkeep prune`: retention by keep rules (`--keep-*`, restic's `forget`
//! semantics, docs/retention.md) and `--incomplete` leftovers of failed
//! backups; `pgkeep pin` / `unpin`.

use super::common::{human_bytes, print_json, run_context, OutputArgs, RepoArgs};
use clap::Args;
use pgkeep::error::{Error, Result};
use pgkeep::ops::expire::{expire, ExpireOptions, ExpireReport};
use pgkeep::ops::pins::{pin, unpin};
use pgkeep::ops::prune::{prune_incomplete, PruneOptions, PruneReport};
use pgkeep::ops::retention::{KeepPolicy, Span};
use pgkeep::ops::runs::{recorded, Action, RunFacts};
use pgkeep::store::options::parse_duration;
use pgkeep::store::OpenMode;

/// The keep rules, as `prune` flags (the policy file's `retention` keys).
#[derive(Args, Debug, Clone, Default)]
pub struct KeepArgs {
    /// Keep the N newest backups (-1: all).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub keep_last: Option<i64>,
    /// Keep the newest backup of each of the N newest hours with one (-1: all).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub keep_hourly: Option<i64>,
    /// ... of each of the N newest days.
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub keep_daily: Option<i64>,
    /// ... of each of the N newest ISO weeks.
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub keep_weekly: Option<i64>,
    /// ... of each of the N newest months.
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub keep_monthly: Option<i64>,
    /// ... of each of the N newest years.
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub keep_yearly: Option<i64>,
    /// Keep every backup newer than the newest minus DURATION (1y2m3d4h).
    #[arg(long, value_name = "DURATION", value_parser = parse_span)]
    pub keep_within: Option<Span>,
    /// Keep the newest backup of each hour within DURATION of the newest.
    #[arg(long, value_name = "DURATION", value_parser = parse_span)]
    pub keep_within_hourly: Option<Span>,
    /// ... of each day within DURATION.
    #[arg(long, value_name = "DURATION", value_parser = parse_span)]
    pub keep_within_daily: Option<Span>,
    /// ... of each ISO week within DURATION.
    #[arg(long, value_name = "DURATION", value_parser = parse_span)]
    pub keep_within_weekly: Option<Span>,
    /// ... of each month within DURATION.
    #[arg(long, value_name = "DURATION", value_parser = parse_span)]
    pub keep_within_monthly: Option<Span>,
    /// ... of each year within DURATION.
    #[arg(long, value_name = "DURATION", value_parser = parse_span)]
    pub keep_within_yearly: Option<Span>,
}

fn parse_span(s: &str) -> std::result::Result<Span, String> {
    Span::parse(s).map_err(|e| e.to_string())
}

impl KeepArgs {
    pub fn policy(&self) -> KeepPolicy {
        KeepPolicy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            keep_within: self.keep_within,
            keep_within_hourly: self.keep_within_hourly,
            keep_within_daily: self.keep_within_daily,
            keep_within_weekly: self.keep_within_weekly,
            keep_within_monthly: self.keep_within_monthly,
            keep_within_yearly: self.keep_within_yearly,
        }
    }
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Time zone of the calendar buckets (IANA name, e.g. Europe/Berlin)
    /// [default: the policy's `timezone`, else UTC].
    #[arg(long)]
    pub timezone: Option<String>,
    /// Evaluate the keep rules as of this time (RFC 3339): backups started
    /// later are left out of the plan.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Also remove leftovers of failed or interrupted backups (prefixes
    /// without a manifest whose lease has expired).
    #[arg(long)]
    pub incomplete: bool,
    /// Show what would be removed and why each backup is kept; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Clock skew tolerated between backup hosts and this one (--incomplete).
    #[arg(long, default_value = "2m")]
    pub grace: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The outcome of one `prune`.
#[derive(serde::Serialize)]
struct Outcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<ExpireReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incomplete: Option<PruneReport>,
}

pub async fn run(args: PruneArgs) -> Result<()> {
    let policy = args.repo.policy.load()?;
    let job = args.repo.policy.job()?;
    // Flags replace the job's retention as a whole (a rule given alone
    // means that rule alone).
    let keep = match (
        args.keep.policy(),
        job.as_ref().and_then(|j| j.retention.clone()),
    ) {
        (flags, _) if !flags.is_empty() => flags,
        (_, Some(from_policy)) => from_policy,
        (flags, None) => flags,
    };
    if keep.is_empty() && !args.incomplete {
        return Err(Error::Config(
            "prune needs keep rules (--keep-last, --keep-daily, ..., --keep-within, or a policy job's retention) or --incomplete".into(),
        ));
    }
    let timezone = match (&args.timezone, &policy) {
        (Some(t), _) => jiff::tz::TimeZone::get(t).map_err(|_| {
            Error::Config(format!(
                "unknown time zone {t:?} (an IANA name, e.g. Europe/Berlin)"
            ))
        })?,
        (None, Some(p)) => p.timezone(),
        (None, None) => jiff::tz::TimeZone::UTC,
    };
    let now =
        args.now
            .as_deref()
            .map(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        Error::Config(format!(
                            "invalid --now {s:?} (RFC 3339, e.g. 2027-01-07T00:00:00Z)"
                        ))
                    })
            })
            .transpose()?;
    let grace = parse_duration(&args.grace)
        .ok_or_else(|| Error::Config(format!("invalid --grace {:?} (e.g. 2m)", args.grace)))?;
    let repo = args.repo.open_for(job.as_ref(), 0, OpenMode::MustExist)?;
    let ctx = run_context(Action::Prune, job.as_ref());
    let dry_run = args.dry_run;
    let work = async {
        let mut outcome = Outcome {
            retention: None,
            incomplete: None,
        };
        if !keep.is_empty() {
            let opts = ExpireOptions {
                keep,
                timezone,
                now,
                dry_run,
            };
            outcome.retention = Some(expire(&repo, &opts).await?);
        }
        if args.incomplete {
            let opts = PruneOptions { dry_run, grace };
            outcome.incomplete = Some(prune_incomplete(&repo, &opts).await?);
        }
        Ok::<_, Error>(outcome)
    };
    // A dry run changes nothing and leaves no record.
    let outcome = if dry_run {
        work.await?
    } else {
        recorded(&repo, &ctx, work, |_| RunFacts::default()).await?
    };
    if args.output.json {
        return print_json(&outcome);
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    if let Some(r) = &outcome.retention {
        print_retention(r, verb);
    }
    if let Some(r) = &outcome.incomplete {
        print_incomplete(r, verb);
    }
    Ok(())
}

fn print_retention(r: &ExpireReport, verb: &str) {
    println!(
        "{}: keep {} ({}), as of {}",
        r.repository, r.policy, r.timezone, r.now
    );
    for b in &r.backups {
        let action = if b.keep { "keep  " } else { "remove" };
        println!("  {action} {}  {}  {}", b.id, b.time, b.reasons.join(", "));
    }
    println!("{} kept, {} {verb}", r.kept, r.removed);
    for id in &r.unfinished {
        println!("  {id}: manifest removed, other objects left for `pgkeep prune --incomplete`");
    }
}

fn print_incomplete(report: &PruneReport, verb: &str) {
    for r in &report.removed {
        println!(
            "{verb} incomplete backup {}: {} objects, {}{}",
            r.id,
            r.objects,
            human_bytes(r.bytes),
            r.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
    }
    for s in &report.skipped {
        println!("kept {}: {}", s.id, s.reason);
    }
    println!(
        "{}: {} complete backups untouched, {} incomplete {verb}, {} kept",
        report.repository,
        report.complete,
        report.removed.len(),
        report.skipped.len()
    );
}

#[derive(Args, Debug)]
pub struct PinArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The backup to pin (an id, or latest).
    pub backup: String,
    /// Why it is kept (shown by prune: `pinned: REASON`).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run_pin(args: PinArgs) -> Result<()> {
    let repo = args.repo.open(0, OpenMode::MustExist)?;
    let id = pgkeep::archive::index::resolve_backup_id(&repo, &args.backup).await?;
    let p = pin(&repo, &id, args.reason).await?;
    if args.output.json {
        return print_json(&p);
    }
    match &p.reason {
        Some(r) => println!("pinned {} ({r}): retention never removes it", p.backup_id),
        None => println!("pinned {}: retention never removes it", p.backup_id),
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct UnpinArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The backup to unpin.
    pub backup: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run_unpin(args: UnpinArgs) -> Result<()> {
    let repo = args.repo.open(0, OpenMode::MustExist)?;
    let was = unpin(&repo, &args.backup).await?;
    if args.output.json {
        return print_json(&serde_json::json!({ "backup_id": args.backup, "was_pinned": was }));
    }
    if was {
        println!("unpinned {}", args.backup);
    } else {
        println!("{} was not pinned", args.backup);
    }
    Ok(())
}
