//! Dev tool for the catalog module: reads the TOC of a source database and
//! replays its SQL (no table data) into a target database, entry by entry.
//!
//! `cargo run --example catalog_roundtrip -- SOURCE_URL TARGET_URL [SCRIPT_FILE]`
//! Compare `pg_dump --schema-only` of both databases afterwards.

use pgkeep::catalog::{read_toc, script, select_tables, source_info, CatalogOptions};
use tokio_postgres::NoTls;

async fn connect(url: &str) -> Result<tokio_postgres::Client, Box<dyn std::error::Error>> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("connection error: {e}");
        }
    });
    Ok(client)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: catalog_roundtrip SOURCE_URL TARGET_URL [SCRIPT_FILE]");
        std::process::exit(2);
    }
    let source = connect(&args[1]).await?;
    source
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let info = source_info(&source).await?;
    eprintln!("source: {info:?}");
    let opts = CatalogOptions::default();
    let started = std::time::Instant::now();
    let rels = select_tables(&source, &opts).await?;
    let toc = read_toc(&source, &opts, &rels).await?;
    source.batch_execute("COMMIT").await?;
    eprintln!(
        "{} relations, {} entries in {:?}",
        rels.len(),
        toc.len(),
        started.elapsed()
    );
    if let Some(path) = args.get(3) {
        std::fs::write(path, script(&toc, None))?;
    }
    let target = connect(&args[2]).await?;
    target
        .batch_execute(
            "SET check_function_bodies = false; SET client_min_messages = warning; \
             SET standard_conforming_strings = on; SELECT pg_catalog.set_config('search_path', '', false);",
        )
        .await?;
    let mut failed = 0;
    for e in toc.iter().filter(|e| !e.sql.is_empty()) {
        if let Err(err) = target.batch_execute(&e.sql).await {
            failed += 1;
            let detail = err
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| err.to_string());
            eprintln!(
                "FAILED {} {} {}: {detail}\n{}",
                e.id,
                e.kind.label(),
                e.name,
                e.sql
            );
        }
    }
    eprintln!("applied; {failed} entries failed");
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
