//! `pgkeep list`.

use super::common::{human_bytes, print_json, OutputArgs, RepoArgs};
use clap::Args;
use pgkeep::archive::reader::list_backup_ids;
use pgkeep::archive::{layout, Manifest};
use pgkeep::error::Result;
use pgkeep::store::OpenMode;

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: ListArgs) -> Result<()> {
    let repo = args.repo.open(0, OpenMode::MustExist)?;
    let mut headers = Vec::new();
    for id in list_backup_ids(&repo).await? {
        let path = layout::manifest_path(&id);
        let bytes = repo.get(&path).await?;
        headers.push(Manifest::decode_header(&bytes, &path.to_string())?);
    }
    if args.output.json {
        return print_json(&headers);
    }
    if headers.is_empty() {
        println!("no backups in {}", repo.display());
        return Ok(());
    }
    println!(
        "{:<22} {:<20} {:>9} {:>10} {:>10} {:>12}  source",
        "id", "finished", "duration", "data", "stored", "rows"
    );
    for h in headers {
        println!(
            "{:<22} {:<20} {:>8.1}s {:>10} {:>10} {:>12}  {} (PostgreSQL {})",
            h.id,
            h.finished_at.get(..19).unwrap_or(&h.finished_at),
            h.duration_ms as f64 / 1000.0,
            human_bytes(h.plain_bytes),
            human_bytes(h.stored_bytes),
            h.rows,
            h.source,
            h.server_version
        );
    }
    Ok(())
}
