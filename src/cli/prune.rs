//! `pgkeep prune --incomplete`.

use super::common::{human_bytes, print_json, OutputArgs, RepoArgs};
use clap::Args;
use pgkeep::error::{Error, Result};
use pgkeep::ops::prune::{prune_incomplete, PruneOptions};
use pgkeep::store::options::parse_duration;
use pgkeep::store::OpenMode;

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Remove leftovers of failed or interrupted backups (prefixes without
    /// a manifest whose lease has expired).
    #[arg(long)]
    pub incomplete: bool,
    /// Show what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Clock skew tolerated between backup hosts and this one.
    #[arg(long, default_value = "2m")]
    pub grace: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: PruneArgs) -> Result<()> {
    if !args.incomplete {
        return Err(Error::Config(
            "prune needs --incomplete (retention with --keep-* is not implemented yet)".into(),
        ));
    }
    let grace = parse_duration(&args.grace)
        .ok_or_else(|| Error::Config(format!("invalid --grace {:?} (e.g. 2m)", args.grace)))?;
    let repo = args.repo.open(0, OpenMode::MustExist)?;
    let opts = PruneOptions {
        dry_run: args.dry_run,
        grace,
    };
    let report = prune_incomplete(&repo, &opts).await?;
    if args.output.json {
        return print_json(&report);
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
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
    Ok(())
}
