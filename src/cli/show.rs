//! `pgkeep show`: a backup's table of contents, like `pg_restore -l`, with
//! row counts and sizes of the data entries.

use super::common::{human_bytes, print_json, OutputArgs, RepoArgs};
use super::secrets::KeyArgs;
use clap::Args;
use pgkeep::archive::index::{read_manifest, resolve_backup_id};
use pgkeep::error::Result;
use pgkeep::store::OpenMode;
use std::collections::HashMap;

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Backup id, or `latest`.
    #[arg(default_value = "latest")]
    pub backup: String,
    /// Print the SQL of every entry too.
    #[arg(long)]
    pub sql: bool,
    /// One entry a line (id; section KIND schema name owner), like
    /// `pg_restore -l`: comment lines out with `;` and give the file to
    /// `restore --use-list`.
    #[arg(long, short = 'l', conflicts_with_all = ["sql", "json"])]
    pub list: bool,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(serde::Serialize)]
struct Entry<'a> {
    #[serde(flatten)]
    toc: &'a pgkeep::catalog::TocEntry,
    rows: Option<u64>,
    plain_bytes: Option<u64>,
    stored_bytes: Option<u64>,
}

pub async fn run(mut args: ShowArgs) -> Result<()> {
    let job = args.repo.policy.job()?;
    args.keys.default_from(job.as_ref());
    let repo = args.repo.open_for(job.as_ref(), 0, OpenMode::MustExist)?;
    let id = resolve_backup_id(&repo, &args.backup).await?;
    let m = args
        .keys
        .with_unlock(|unlock| {
            let (repo, id) = (repo.clone(), id.clone());
            async move { read_manifest(&repo, &id, &unlock).await }
        })
        .await?;
    let mut sizes: HashMap<u32, (u64, u64, u64)> = HashMap::new();
    for s in &m.body.streams {
        let e = sizes.entry(s.toc_id).or_default();
        e.0 += s.rows;
        e.1 += s.plain_bytes;
        e.2 += s.stored_bytes;
    }
    if args.output.json {
        let entries: Vec<Entry> = m
            .body
            .toc
            .iter()
            .map(|t| {
                let s = sizes.get(&t.id);
                Entry {
                    toc: t,
                    rows: s.map(|s| s.0),
                    plain_bytes: s.map(|s| s.1),
                    stored_bytes: s.map(|s| s.2),
                }
            })
            .collect();
        return print_json(
            &serde_json::json!({ "header": m.header, "entries": entries, "redis": m.body.redis }),
        );
    }
    let h = &m.header;
    println!(";");
    println!(
        "; Backup {} of database {} ({})",
        h.id,
        h.database,
        h.server_label()
    );
    println!("; Source: {}", h.source);
    println!(
        "; Started {}, finished {} ({:.1}s)",
        h.started_at,
        h.finished_at,
        h.duration_ms as f64 / 1000.0
    );
    println!(
        "; {} tables, {} rows, {} of data, {} stored ({})",
        h.tables,
        h.rows,
        human_bytes(h.plain_bytes),
        human_bytes(h.stored_bytes),
        h.compression
    );
    if let Some(r) = &m.body.redis {
        let method = match r.method {
            pgkeep::archive::RedisMethod::Replication => "replication snapshot (point in time)",
            pgkeep::archive::RedisMethod::Scan => "scan (SCAN + DUMP per key; not point in time)",
        };
        println!("; Method: {method}; server role {}", r.role);
        if let (Some(magic), Some(crc)) = (&r.rdb_magic, &r.crc64) {
            let version = r.rdb_version.map(|v| v.to_string()).unwrap_or_default();
            println!("; RDB {magic} {version}, CRC64 {crc}");
        }
        let dbs: Vec<String> = r
            .keyspace
            .iter()
            .map(|(db, keys)| format!("db{db}={keys}"))
            .collect();
        println!("; Keys at the start: {}", dbs.join(" "));
        println!(";");
        return Ok(());
    }
    println!("; TOC entries: {}", m.body.toc.len());
    println!(";");
    for e in &m.body.toc {
        let owner = e.owner.as_deref().unwrap_or("-");
        let schema = e.schema.as_deref().unwrap_or("-");
        let extra = match sizes.get(&e.id) {
            Some((rows, plain, stored)) => format!(
                "  [{rows} rows, {} → {}]",
                human_bytes(*plain),
                human_bytes(*stored)
            ),
            None => String::new(),
        };
        if args.list {
            let section = match e.section {
                pgkeep::catalog::Section::PreData => "pre-data",
                pgkeep::catalog::Section::Data => "data",
                pgkeep::catalog::Section::PostData => "post-data",
            };
            println!(
                "{}; {section} {} {schema} {} {owner}",
                e.id,
                e.kind.label(),
                e.name
            );
            continue;
        }
        println!(
            "{}; {} {} {} {}{extra}",
            e.id,
            e.kind.label(),
            schema,
            e.name,
            owner
        );
        if args.sql && !e.sql.is_empty() {
            for line in e.sql.lines() {
                println!("    {line}");
            }
        }
    }
    Ok(())
}
