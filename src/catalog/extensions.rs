//! Extensions: `CREATE EXTENSION IF NOT EXISTS ... WITH SCHEMA`. Their member
//! objects are left out of every other reader; extensions created by initdb
//! (plpgsql) are not dumped. Privileges of member objects that differ from
//! their initial ones (`pg_init_privs`) become `ACL` entries, as in pg_dump.
//! An extension's configuration tables (`pg_extension_config_dump`) keep
//! their rows, those the extension's filter selects, as data entries loaded
//! after the extension creates the table; its configuration sequences keep
//! their values.

use super::acl::changed_acl;
use super::filter::Filter;
use super::obj::{class, oref, Obj};
use super::sql::{fill_acl_columns, query, RowExt};
use super::toc::TableData;
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;
use tokio_postgres::Client;

/// A configuration table or sequence of an extension the backup includes.
#[derive(Clone, Debug)]
pub struct ConfigRelation {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// `schema.name` quoted by the server.
    pub qname: String,
    /// `pg_class.relkind`: 'r' (a table) or 'S' (a sequence).
    pub relkind: char,
    /// The filter given to `pg_extension_config_dump` (`WHERE ...`), if any.
    pub condition: Option<String>,
    /// Columns in COPY order (no generated or dropped columns).
    pub columns: Vec<String>,
    pub bytes: u64,
}

const CONFIG: &str = "SELECT en.nspname AS ext_schema, c.oid, n.nspname, c.relname, \
  c.relkind::text AS relkind, x.cond, \
  pg_catalog.format('%I.%I', n.nspname, c.relname) AS qname, pg_catalog.pg_relation_size(c.oid) AS bytes, \
  ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 \
    AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum) AS columns \
  FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace en ON en.oid = e.extnamespace \
  CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(e.extconfig), pg_catalog.unnest(e.extcondition)) AS x(reloid, cond) \
  JOIN pg_catalog.pg_class c ON c.oid = x.reloid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE e.oid >= 16384 AND c.relkind IN ('r', 'S') ORDER BY n.nspname, c.relname";

/// The configuration relations of the extensions `filter` includes.
pub async fn config_relations(client: &Client, filter: &Filter) -> Result<Vec<ConfigRelation>> {
    let mut out = Vec::new();
    for row in query(client, "extension configuration tables", CONFIG, &[]).await? {
        if !filter.schema_objects(&row.val::<String>("ext_schema")?) {
            continue;
        }
        let cond: Option<String> = row.val("cond")?;
        out.push(ConfigRelation {
            oid: row.val("oid")?,
            schema: row.val("nspname")?,
            name: row.val("relname")?,
            qname: row.val("qname")?,
            relkind: row.val::<String>("relkind")?.chars().next().unwrap_or('r'),
            condition: cond.filter(|c| !c.trim().is_empty()),
            columns: row.val("columns")?,
            bytes: u64::try_from(row.val::<i64>("bytes")?).unwrap_or(0),
        });
    }
    Ok(out)
}

/// Data entries of the configuration tables, value entries of the
/// configuration sequences. Each waits for its relation, which belongs to
/// the extension's entry.
async fn config_data(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let mut seqs = Vec::new();
    for c in ctx.config {
        if c.relkind == 'S' {
            seqs.push(super::sequences::SeqRef {
                oid: c.oid,
                schema: &c.schema,
                name: &c.name,
                qname: &c.qname,
                owner: None,
            });
            continue;
        }
        let data = TableData {
            schema: c.schema.clone(),
            name: c.name.clone(),
            columns: c.columns.clone(),
            est_bytes: c.bytes,
            pages: 0,
            splittable: false,
            condition: c.condition.clone(),
        };
        out.push(
            Obj::new(
                ObjectKind::TableData,
                Section::Data,
                c.name.clone(),
                String::new(),
            )
            .schema(c.schema.clone())
            .after(oref(class::CLASS, c.oid))
            .data(data),
        );
    }
    super::sequences::set_values(ctx, &seqs, out).await
}

/// Member objects (and columns of member relations) with an ACL, as
/// (extension, GRANT keyword and target, column, schema, owner, acl, base).
const MEMBER_ACLS: &str = "SELECT d.refobjid AS ext, m.keyword || ' ' || m.name AS on, m.col, m.schema, m.owner, m.acl, m.acl_base \
  FROM pg_catalog.pg_depend d CROSS JOIN LATERAL ( \
    SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS keyword, \
      pg_catalog.format('%I.%I', n.nspname, c.relname) AS name, NULL::text AS col, n.nspname::text AS schema, \
      pg_catalog.pg_get_userbyid(c.relowner) AS owner, {class_acl} \
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = d.objid AND c.relacl IS NOT NULL \
    UNION ALL \
    SELECT 'TABLE', pg_catalog.format('%I.%I', n.nspname, c.relname), pg_catalog.quote_ident(a.attname), \
      n.nspname::text, pg_catalog.pg_get_userbyid(c.relowner), {column_acl} \
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = d.objid AND a.attacl IS NOT NULL \
    UNION ALL \
    SELECT 'FUNCTION', \
      pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)), \
      NULL, n.nspname::text, pg_catalog.pg_get_userbyid(p.proowner), {proc_acl} \
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
    WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = d.objid AND p.proacl IS NOT NULL \
    UNION ALL \
    SELECT 'TYPE', pg_catalog.format('%I.%I', n.nspname, t.typname), NULL, n.nspname::text, \
      pg_catalog.pg_get_userbyid(t.typowner), {type_acl} \
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
    WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = d.objid AND t.typacl IS NOT NULL \
  ) m \
  WHERE d.deptype = 'e' AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass \
    AND d.refobjid >= 16384 \
  ORDER BY m.keyword, m.name, m.col NULLS FIRST";

async fn member_acls(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = fill_acl_columns(MEMBER_ACLS);
    for row in query(ctx.client, "extension member privileges", &sql, &[]).await? {
        let ext: u32 = row.val("ext")?;
        if !out
            .iter()
            .any(|o| o.owns.first() == Some(&oref(class::EXTENSION, ext)))
        {
            continue;
        }
        if let Some(acl) = changed_acl(&row)? {
            out.push(acl.after(oref(class::EXTENSION, ext)));
        }
    }
    Ok(())
}

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let rows = query(
        ctx.client,
        "extensions",
        "SELECT e.oid, e.extname, pg_catalog.quote_ident(e.extname) AS qname, n.nspname, \
         pg_catalog.quote_ident(n.nspname) AS qschema \
         FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace \
         WHERE e.oid >= 16384 ORDER BY e.extname",
        &[],
    )
    .await?;
    for row in rows {
        let schema: String = row.val("nspname")?;
        if !ctx.filter.schema_objects(&schema) {
            continue;
        }
        let name: String = row.val("extname")?;
        let qname: String = row.val("qname")?;
        let qschema: String = row.val("qschema")?;
        let sql = format!("CREATE EXTENSION IF NOT EXISTS {qname} WITH SCHEMA {qschema};\n");
        out.push(
            Obj::new(ObjectKind::Extension, Section::PreData, name, sql).creates(
                class::EXTENSION,
                row.val("oid")?,
                "EXTENSION",
                qname,
            ),
        );
    }
    member_acls(ctx, out).await?;
    config_data(ctx, out).await
}
