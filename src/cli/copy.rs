//! `pgkeep copy`: offsite copies of complete backups, bytes unchanged;
//! with `--policy --job` and no `--to`, to each of the job's copy targets
//! followed by their own retention.

use super::common::{human_bytes, print_json, run_context, OutputArgs, RepoArgs};
use super::secrets::KeyArgs;
use clap::Args;
use pgkeep::error::{Error, Result};
use pgkeep::ops::copy::{copy, offsite, CopyOptions, CopyReport, OffsiteReport, Selection};
use pgkeep::ops::runs::{recorded, Action, RunFacts};
use pgkeep::store::{OpenMode, Repo, RepoOptions};
use pgkeep::units::Size;

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// The source repository (`--repo` or the policy job's).
    #[command(flatten)]
    pub from: RepoArgs,
    /// The target repository (default: the policy job's copy targets).
    #[arg(long, value_name = "REPO")]
    pub to: Option<String>,
    /// Target repository option KEY=VALUE (repeatable).
    #[arg(long = "to-option", value_name = "KEY=VALUE", requires = "to")]
    pub to_options: Vec<String>,
    /// Backup id or `latest` (default: latest).
    #[arg(conflicts_with = "all")]
    pub backup: Option<String>,
    /// Every complete backup the target does not have yet.
    #[arg(long)]
    pub all: bool,
    /// Memory for pack parts in flight (e.g. 32MiB).
    #[arg(long)]
    pub memory: Option<Size>,
    /// Key of encrypted backups: lets the copy check every pack's hashes
    /// against the manifest (without it, only sizes are checked).
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Outcome {
    One(CopyReport),
    Targets(Vec<OffsiteReport>),
}

pub async fn run(mut args: CopyArgs) -> Result<()> {
    let job = args.from.policy.job()?;
    args.keys.default_from(job.as_ref());
    let from = args.from.open_for(job.as_ref(), 0, OpenMode::MustExist)?;
    let selection = match (&args.backup, args.all) {
        (_, true) => Selection::All,
        (Some(id), false) => Selection::One(id.clone()),
        (None, false) => Selection::One("latest".into()),
    };
    let mut opts = CopyOptions::default();
    if let Some(m) = args.memory {
        opts.memory = m.0;
    }
    let progress: std::sync::Arc<dyn pgkeep::progress::Progress> =
        pgkeep::progress::for_stderr("copy").into();
    let ctx = run_context(Action::Copy, job.as_ref());
    let unlock = std::sync::Arc::new(pgkeep::keys::Unlock::new(args.keys.inputs()?));
    let outcome =
        match (&args.to, &job) {
            (Some(to), _) => {
                let options = RepoOptions::from_pairs(&args.to_options)?;
                let to = Repo::open_with(to, &options, opts.memory, OpenMode::CreateIfMissing)?;
                let work = copy(
                    &from,
                    &to,
                    &selection,
                    unlock.as_ref(),
                    &opts,
                    progress.as_ref(),
                );
                Outcome::One(recorded(&from, &ctx, work, facts).await?)
            }
            (None, Some(job)) if !job.copies.is_empty() => {
                let work = offsite(
                    job,
                    &from,
                    &selection,
                    unlock.as_ref(),
                    &opts,
                    progress.as_ref(),
                );
                Outcome::Targets(
                    recorded(&from, &ctx, work, |r: &Vec<OffsiteReport>| {
                        let all: Vec<&CopyReport> = r.iter().map(|o| &o.copy).collect();
                        sum_facts(&all)
                    })
                    .await?,
                )
            }
            _ => return Err(Error::Config(
                "copy needs --to REPO, or --policy FILE --job NAME with [[database.copy]] targets"
                    .into(),
            )),
        };
    progress.end();
    if args.output.json {
        return print_json(&outcome);
    }
    match &outcome {
        Outcome::One(r) => print_report(r),
        Outcome::Targets(rs) => {
            for r in rs {
                print_report(&r.copy);
                if let Some(ret) = &r.retention {
                    println!(
                        "  retention on {}: {} kept, {} removed",
                        r.target, ret.kept, ret.removed
                    );
                }
            }
        }
    }
    Ok(())
}

fn facts(r: &CopyReport) -> RunFacts {
    sum_facts(&[r])
}

fn sum_facts(reports: &[&CopyReport]) -> RunFacts {
    let copied: Vec<_> = reports.iter().flat_map(|r| &r.copied).collect();
    RunFacts {
        backup_id: (copied.len() == 1).then(|| copied[0].id.clone()),
        bytes: Some(copied.iter().map(|c| c.bytes).sum()),
        rows: None,
        rto_ms: None,
    }
}

fn print_report(r: &CopyReport) {
    for c in &r.copied {
        println!(
            "copied {} to {}: {} pack(s), {}{}",
            c.id,
            r.to,
            c.packs,
            human_bytes(c.bytes),
            if c.checked_against_manifest {
                ", every pack's hash checked against the manifest"
            } else {
                " (encrypted, no key given: sizes checked)"
            }
        );
    }
    for s in &r.skipped {
        println!("{s}: already in {}", r.to);
    }
}
