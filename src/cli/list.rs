//! `pgkeep list`.

use super::common::{human_bytes, print_json, OutputArgs, RepoArgs};
use clap::Args;
use pgkeep::archive::index::list_backup_ids;
use pgkeep::archive::{layout, Manifest};
use pgkeep::error::Result;
use pgkeep::store::OpenMode;
use pgkeep::verify::{last_verified, LastVerified};

#[derive(serde::Serialize)]
struct Listed {
    #[serde(flatten)]
    header: pgkeep::archive::ManifestHeader,
    last_verified: Option<LastVerified>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// List restore drills (with their verdicts) instead of backups.
    #[arg(long)]
    pub drills: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

async fn list_drills(repo: &pgkeep::store::Repo, json: bool) -> Result<()> {
    let proofs = pgkeep::drill::proof::list(repo).await?;
    if json {
        return print_json(&proofs);
    }
    if proofs.is_empty() {
        println!("no drills in {}", repo.display());
        return Ok(());
    }
    println!(
        "{:<22} {:<20} {:<22} {:<8} {:>9} {:<8} {:>7}  failed",
        "drill", "started", "backup", "verdict", "rto", "(rto)", "checks"
    );
    for p in proofs {
        let passed = p.checks.iter().filter(|c| c.passed()).count();
        println!(
            "{:<22} {:<20} {:<22} {:<8} {:>8.1}s {:<8} {:>7}  {}",
            p.drill_id,
            p.started_at.get(..19).unwrap_or(&p.started_at),
            p.backup.id,
            p.verdict.name(),
            p.timings.rto_ms as f64 / 1000.0,
            p.rto.verdict,
            format!("{passed}/{}", p.checks.len()),
            match (&p.error, p.failed_checks()) {
                (Some(e), _) => e.clone(),
                (None, f) if f.is_empty() => "-".into(),
                (None, f) => f.join("; "),
            }
        );
    }
    Ok(())
}

pub async fn run(args: ListArgs) -> Result<()> {
    let repo = args.repo.open(0, OpenMode::MustExist)?;
    if args.drills {
        return list_drills(&repo, args.output.json).await;
    }
    let mut headers = Vec::new();
    for id in list_backup_ids(&repo).await? {
        let path = layout::manifest_path(&id);
        let bytes = repo.get(&path).await?;
        headers.push(Listed {
            header: Manifest::decode_header(&bytes, path.as_ref())?,
            last_verified: last_verified(&repo, &id).await?,
        });
    }
    if args.output.json {
        return print_json(&headers);
    }
    if headers.is_empty() {
        println!("no backups in {}", repo.display());
        return Ok(());
    }
    println!(
        "{:<22} {:<20} {:>9} {:>10} {:>10} {:>12}  {:<17} {:<27} source",
        "id", "finished", "duration", "data", "stored", "rows", "encryption", "last verified"
    );
    for Listed {
        header: h,
        last_verified: v,
    } in headers
    {
        let verified = match v {
            Some(v) => format!(
                "{} {}{}",
                v.verified_at.get(..19).unwrap_or(&v.verified_at),
                if v.ok { "ok" } else { "FAILED" },
                if v.mode == "quick" { " (quick)" } else { "" }
            ),
            None => "never".into(),
        };
        println!(
            "{:<22} {:<20} {:>8.1}s {:>10} {:>10} {:>12}  {:<17} {:<27} {} ({})",
            h.id,
            h.finished_at.get(..19).unwrap_or(&h.finished_at),
            h.duration_ms as f64 / 1000.0,
            human_bytes(h.plain_bytes),
            human_bytes(h.stored_bytes),
            h.rows,
            h.cipher.map(|c| c.name()).unwrap_or("none"),
            verified,
            h.source,
            h.server_label()
        );
    }
    Ok(())
}
