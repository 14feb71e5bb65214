//! Catalog reader: turns the system catalogs of the source database, read
//! inside the backup's snapshot, into a table of contents of SQL entries with
//! dependencies, split into pre-data, data and post-data sections.
//!
//! Two steps, so the backup leader can lock before it reads definitions:
//! 1. [`select_tables`]: which relations the backup dumps (to be locked);
//! 2. [`read_toc`]: every object's DDL, data entries, dependencies, sorted.
//!
//! Each object kind has its own reader module (one set-based query per
//! kind) producing [`obj::Obj`]s; `comments`, `acl` attach comments and
//! privileges, `depend` turns `pg_depend` into entry dependencies and `sort`
//! fixes the restore order.

mod access_methods;
mod acl;
mod basetypes;
mod casts;
mod collations;
mod comments;
mod constraints;
mod conversions;
mod cycles;
mod default_acl;
mod depend;
mod drop;
mod event_triggers;
mod extensions;
mod filter;
pub use filter::Filter;
mod foreign;
mod functions;
pub mod globals;
mod indexes;
mod languages;
mod largeobjects;
mod obj;
mod opclasses;
mod operators;
mod policies;
mod publications;
pub mod rls;
mod rules;
mod schemas;
mod sequences;
mod sort;
pub(crate) mod sql;
mod statistics;
mod subscriptions;
mod system_acl;
mod tables;
mod textsearch;
pub(crate) mod toc;
mod triggers;
mod types;
mod views;

pub use extensions::ConfigRelation;
pub use toc::{ObjRef, ObjectKind, Section, TableData, TocEntry};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sql::{not_extension_member, query, user_schema, RowExt};
use std::collections::{HashMap, HashSet};
use tokio_postgres::Client;

/// Which objects a backup includes (`--schema`, `--exclude-schema`, `--table`,
/// `--exclude-table`). Patterns are exact names, or `schema.name` for tables;
/// `*` and `?` wildcards as in pg_dump.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CatalogOptions {
    pub schemas: Vec<String>,
    pub exclude_schemas: Vec<String>,
    pub tables: Vec<String>,
    pub exclude_tables: Vec<String>,
}

/// A relation selected for the backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationRef {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// `pg_class.relkind` ('r', 'p', 'm', 'S', 'v', 'f').
    pub relkind: char,
}

/// Facts about the source server and database recorded in the manifest.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceInfo {
    pub server_version: String,
    pub server_version_num: i32,
    /// `pg_control_system().system_identifier`, when the role may read it.
    pub system_identifier: Option<String>,
    pub database: String,
    pub encoding: String,
}

/// What every reader needs: the connection, the filter and the selected
/// relations.
pub(crate) struct Ctx<'a> {
    pub client: &'a Client,
    pub filter: Filter,
    pub rels: HashSet<u32>,
    pub rel_oids: Vec<u32>,
    pub version: i32,
    /// Configuration relations of the included extensions.
    pub config: &'a [ConfigRelation],
}

/// Server version, database name and encoding, and the system identifier
/// when the role may call `pg_control_system()` (checked first, so no error
/// aborts the caller's transaction).
pub async fn source_info(client: &Client) -> Result<SourceInfo> {
    let rows = query(
        client,
        "server information",
        "SELECT pg_catalog.current_setting('server_version') AS version, \
         pg_catalog.current_setting('server_version_num')::int4 AS version_num, \
         pg_catalog.current_database()::text AS database, \
         pg_catalog.pg_encoding_to_char(d.encoding)::text AS encoding, \
         CASE WHEN pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE') \
           THEN (SELECT s.system_identifier::text FROM pg_catalog.pg_control_system() s) END AS sysid \
         FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()",
        &[],
    )
    .await?;
    let row = rows
        .first()
        .ok_or_else(|| Error::Internal("current database not found in pg_database".into()))?;
    Ok(SourceInfo {
        server_version: row.val("version")?,
        server_version_num: row.val("version_num")?,
        system_identifier: row.val("sysid")?,
        database: row.val("database")?,
        encoding: row.val("encoding")?,
    })
}

/// The relations the backup includes: tables, partitioned tables,
/// materialized views, sequences, views and foreign tables of user schemas,
/// not members of extensions, filtered by `opts`. A sequence owned by a
/// table (`OWNED BY` or identity) is included exactly when its table is.
pub async fn select_tables(client: &Client, opts: &CatalogOptions) -> Result<Vec<RelationRef>> {
    let filter = Filter::new(opts)?;
    let sql = format!(
        "SELECT c.oid, n.nspname, c.relname, c.relkind::text AS relkind, \
         (SELECT d.refobjid FROM pg_catalog.pg_depend d \
            WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid \
            AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjsubid > 0 \
            AND d.deptype IN ('a', 'i') AND c.relkind = 'S' LIMIT 1) AS owner_table \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'm', 'S', 'v', 'f') AND c.relpersistence <> 't' \
         AND {user} AND {ext} ORDER BY n.nspname, c.relname",
        user = user_schema("n"),
        ext = not_extension_member("pg_class", "c.oid"),
    );
    let rows = query(client, "relations", &sql, &[]).await?;
    let mut selected = HashMap::new();
    let mut rels = Vec::new();
    for row in &rows {
        let rel = RelationRef {
            oid: row.val("oid")?,
            schema: row.val("nspname")?,
            name: row.val("relname")?,
            relkind: row.val::<String>("relkind")?.chars().next().unwrap_or('r'),
        };
        selected.insert(rel.oid, filter.relation(&rel.schema, &rel.name));
        rels.push((rel, row.val::<Option<u32>>("owner_table")?));
    }
    Ok(rels
        .into_iter()
        .filter(|(rel, owner)| match owner {
            Some(table) => selected.get(table).copied().unwrap_or(false),
            None => selected.get(&rel.oid).copied().unwrap_or(false),
        })
        .map(|(rel, _)| rel)
        .collect())
}

/// The configuration tables and sequences (`pg_extension_config_dump`) of
/// the extensions the backup includes: their rows and values are data of
/// the backup.
pub async fn extension_config(
    client: &Client,
    opts: &CatalogOptions,
) -> Result<Vec<ConfigRelation>> {
    extensions::config_relations(client, &Filter::new(opts)?).await
}

/// The full table of contents of the selected objects, in restore order.
/// Meant to run inside the backup's snapshot transaction; sets
/// `search_path` to empty so every name in the SQL is schema-qualified.
pub async fn read_toc(
    client: &Client,
    opts: &CatalogOptions,
    rels: &[RelationRef],
    config: &[ConfigRelation],
) -> Result<Vec<TocEntry>> {
    client
        .batch_execute("SELECT pg_catalog.set_config('search_path', '', false)")
        .await
        .map_err(Error::db("setting search_path"))?;
    let version = query(
        client,
        "server version",
        "SELECT pg_catalog.current_setting('server_version_num')::int4 AS v",
        &[],
    )
    .await?
    .first()
    .map(|r| r.val::<i32>("v"))
    .transpose()?
    .unwrap_or(0);
    let rel_oids: Vec<u32> = rels.iter().map(|r| r.oid).collect();
    let ctx = Ctx {
        client,
        filter: Filter::new(opts)?,
        rels: rel_oids.iter().copied().collect(),
        rel_oids,
        version,
        config,
    };
    let mut objs = Vec::new();
    schemas::read(&ctx, &mut objs).await?;
    extensions::read(&ctx, &mut objs).await?;
    languages::read(&ctx, &mut objs).await?;
    foreign::read(&ctx, &mut objs).await?;
    collations::read(&ctx, &mut objs).await?;
    basetypes::read(&ctx, &mut objs).await?;
    types::read(&ctx, &mut objs).await?;
    functions::read(&ctx, &mut objs).await?;
    access_methods::read(&ctx, &mut objs).await?;
    operators::read(&ctx, &mut objs).await?;
    opclasses::read(&ctx, &mut objs).await?;
    conversions::read(&ctx, &mut objs).await?;
    casts::read(&ctx, &mut objs).await?;
    textsearch::read(&ctx, &mut objs).await?;
    let seqs = sequences::load(&ctx).await?;
    sequences::definitions(&ctx, &seqs, &mut objs);
    tables::read(&ctx, &sequences::identities(&seqs), &mut objs).await?;
    views::read(&ctx, &mut objs).await?;
    constraints::read(&ctx, &mut objs).await?;
    indexes::read(&ctx, &mut objs).await?;
    triggers::read(&ctx, &mut objs).await?;
    rules::read(&ctx, &mut objs).await?;
    policies::read(&ctx, &mut objs).await?;
    statistics::read(&ctx, &mut objs).await?;
    publications::read(&ctx, &mut objs).await?;
    subscriptions::read(&ctx, &mut objs).await?;
    event_triggers::read(&ctx, &mut objs).await?;
    largeobjects::read(&ctx, &mut objs).await?;
    sequences::values(&ctx, &seqs, &mut objs).await?;
    comments::read(&ctx, &mut objs).await?;
    comments::read_labels(&ctx, &mut objs).await?;
    acl::read(&ctx, &mut objs).await?;
    system_acl::read(&ctx, &mut objs).await?;
    default_acl::read(&ctx, &mut objs).await?;
    let edges = depend::load(client).await?;
    let deps = depend::resolve(&mut objs, &edges);
    Ok(sort::finish(objs, deps))
}

/// The SQL of the entries in order (all sections, or one), each preceded by
/// a `-- Name: ...; Type: ...` header like pg_dump's.
pub fn script(entries: &[TocEntry], section: Option<Section>) -> String {
    let mut out = String::new();
    for e in entries
        .iter()
        .filter(|e| section.is_none_or(|s| e.section == s))
    {
        out.push_str(&format!(
            "--\n-- Name: {}; Type: {}; Schema: {}; Owner: {}\n--\n\n",
            e.name,
            e.kind.label(),
            e.schema.as_deref().unwrap_or("-"),
            e.owner.as_deref().unwrap_or("")
        ));
        if e.sql.is_empty() {
            out.push_str("-- (data loaded with COPY)\n");
        } else {
            out.push_str(&e.sql);
        }
        out.push('\n');
    }
    out
}
