#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Dev tool for the catalog module: reads the TOC of a source database and
//! replays it into a target database, section by section, copying table and
//! large-object data straight from the source for the data section.
//!
//! `cargo run --example catalog_roundtrip -- SOURCE_URL TARGET_URL [SCRIPT_FILE]`
//!
//! With `ORDER=reverse`, each section runs in the *last* order its
//! dependencies allow (ready entries by descending id), which exposes
//! missing dependencies that the sorted order would hide. Compare
//! `pg_dump` of both databases afterwards. `CAT_SCHEMAS`, `CAT_XSCHEMAS`,
//! `CAT_TABLES`, `CAT_XTABLES` (comma-separated patterns) set the filters.

use futures::{pin_mut, SinkExt, StreamExt};
use pgkeep::catalog::{
    extension_config, read_toc, script, select_tables, source_info, CatalogOptions, ObjectKind,
    Section, TocEntry,
};
use pgkeep::pg::quote_ident;
use std::collections::HashSet;
use tokio_postgres::{Client, NoTls};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

async fn connect(url: &str) -> Res<Client> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("connection error: {e}");
        }
    });
    Ok(client)
}

/// The entries of one section in an order their dependencies allow.
fn schedule(toc: &[TocEntry], section: Section, reverse: bool) -> Res<Vec<&TocEntry>> {
    let mut done: HashSet<u32> = toc
        .iter()
        .filter(|e| e.section < section)
        .map(|e| e.id)
        .collect();
    let mut left: Vec<&TocEntry> = toc.iter().filter(|e| e.section == section).collect();
    let mut out = Vec::new();
    while !left.is_empty() {
        let ready = left
            .iter()
            .enumerate()
            .filter(|(_, e)| e.deps.iter().all(|d| done.contains(d)));
        let pick = if reverse {
            ready.max_by_key(|(_, e)| e.id)
        } else {
            ready.min_by_key(|(_, e)| e.id)
        };
        let Some((i, _)) = pick else {
            return Err(format!(
                "unsatisfiable dependencies in {section:?}: {:?}",
                left.iter().map(|e| (e.id, &e.deps)).collect::<Vec<_>>()
            )
            .into());
        };
        let e = left.remove(i);
        done.insert(e.id);
        out.push(e);
    }
    Ok(out)
}

async fn copy_data(source: &Client, target: &Client, e: &TocEntry) -> Res<()> {
    let Some(d) = &e.data else { return Ok(()) };
    if e.kind == ObjectKind::LargeObjectData {
        for row in source.query("SELECT oid, pg_catalog.lo_get(oid) AS data FROM pg_catalog.pg_largeobject_metadata", &[]).await? {
            let (oid, data): (u32, Vec<u8>) = (row.get(0), row.get(1));
            target.execute("SELECT pg_catalog.lo_put($1, 0, $2)", &[&oid, &data]).await?;
        }
        return Ok(());
    }
    let table = format!("{}.{}", quote_ident(&d.schema), quote_ident(&d.name));
    let cols = d
        .columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let out = source
        .copy_out(&format!("COPY {table} ({cols}) TO STDOUT"))
        .await?;
    let sink = target
        .copy_in(&format!("COPY {table} ({cols}) FROM STDIN"))
        .await?;
    pin_mut!(out);
    pin_mut!(sink);
    while let Some(chunk) = out.next().await {
        sink.send(chunk?).await?;
    }
    sink.finish().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: catalog_roundtrip SOURCE_URL TARGET_URL [SCRIPT_FILE]");
        std::process::exit(2);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let reverse = std::env::var("ORDER").is_ok_and(|v| v == "reverse");
    let source = connect(&args[1]).await?;
    source
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let info = source_info(&source).await?;
    eprintln!("source: {info:?}");
    let list = |var: &str| -> Vec<String> {
        std::env::var(var)
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let opts = CatalogOptions {
        schemas: list("CAT_SCHEMAS"),
        exclude_schemas: list("CAT_XSCHEMAS"),
        tables: list("CAT_TABLES"),
        exclude_tables: list("CAT_XTABLES"),
    };
    let started = std::time::Instant::now();
    let rels = select_tables(&source, &opts).await?;
    let config = extension_config(&source, &opts).await?;
    let toc = read_toc(&source, &opts, &rels, &config).await?;
    eprintln!(
        "{} relations, {} entries in {:?}",
        rels.len(),
        toc.len(),
        started.elapsed()
    );
    for e in &toc {
        if e.deps.iter().any(|d| *d >= e.id) {
            eprintln!(
                "TOC INVARIANT: entry {} depends on a later entry {:?}",
                e.id, e.deps
            );
        }
    }
    if let Some(path) = args.get(3) {
        std::fs::write(path, script(&toc, None))?;
    }
    if std::env::var("SHOW_TOC").is_ok() {
        for e in &toc {
            let schema = e.schema.as_deref().unwrap_or("-");
            let (section, kind) = (e.section, e.kind.label());
            println!(
                "{:>5} {section:?} {kind} {schema} {} <- {:?}",
                e.id, e.name, e.deps
            );
        }
    }
    let target = connect(&args[2]).await?;
    target
        .batch_execute(
            "SET check_function_bodies = false; SET client_min_messages = warning; \
             SET standard_conforming_strings = on; SELECT pg_catalog.set_config('search_path', '', false);",
        )
        .await?;
    let mut failed = 0;
    for section in [Section::PreData, Section::Data, Section::PostData] {
        for e in schedule(&toc, section, reverse)? {
            let result = if e.sql.is_empty() {
                copy_data(&source, &target, e).await
            } else {
                target.batch_execute(&e.sql).await.map_err(Into::into)
            };
            if let Err(err) = result {
                failed += 1;
                let detail = match err
                    .downcast_ref::<tokio_postgres::Error>()
                    .and_then(|e| e.as_db_error())
                {
                    Some(db) => db.message().to_string(),
                    None => err.to_string(),
                };
                eprintln!(
                    "FAILED {} {} {}: {detail}\n{}",
                    e.id,
                    e.kind.label(),
                    e.name,
                    e.sql
                );
            }
        }
    }
    source.batch_execute("COMMIT").await?;
    eprintln!("applied; {failed} entries failed");
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
