//! User-defined types: enums, composites, domains (with their CHECK
//! constraints) and ranges. Array types and table row types are created with
//! their element type or table; base types (written in C) are not dumped.

use super::obj::{class, Obj};
use super::sql::{fill_query_acl, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;
use std::collections::HashMap;

const TYPES: &str = "SELECT t.oid, t.typrelid, t.typtype::text AS typtype, n.nspname, t.typname, \
  pg_catalog.format('%I.%I', n.nspname, t.typname) AS qname, {owner}, {acl}, \
  (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) \
     FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid) AS labels, \
  (SELECT pg_catalog.string_agg(pg_catalog.format('    %I %s', a.attname, \
       pg_catalog.format_type(a.atttypid, a.atttypmod)) || \
       CASE WHEN a.attcollation <> at.typcollation THEN \
         ' COLLATE ' || pg_catalog.format('%I.%I', cn.nspname, co.collname) ELSE '' END, \
       E',\\n' ORDER BY a.attnum) \
     FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type at ON at.oid = a.atttypid \
     LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation \
     LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace \
     WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS attrs, \
  pg_catalog.format_type(t.typbasetype, t.typtypmod) AS basetype, t.typnotnull, \
  pg_catalog.pg_get_expr(t.typdefaultbin, 0) AS typdefault, \
  (SELECT pg_catalog.format('%I.%I', cn.nspname, co.collname) \
     FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace \
     WHERE co.oid = t.typcollation AND t.typcollation <> \
       (SELECT bt.typcollation FROM pg_catalog.pg_type bt WHERE bt.oid = t.typbasetype)) AS collation, \
  pg_catalog.format_type(r.rngsubtype, NULL) AS subtype, \
  (SELECT pg_catalog.format('%I.%I', on_.nspname, opc.opcname) FROM pg_catalog.pg_opclass opc \
     JOIN pg_catalog.pg_namespace on_ ON on_.oid = opc.opcnamespace \
     WHERE opc.oid = r.rngsubopc AND NOT opc.opcdefault) AS subopclass, \
  (SELECT pg_catalog.format('%I.%I', cn.nspname, co.collname) \
     FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace \
     WHERE co.oid = r.rngcollation) AS rngcollation, \
  CASE WHEN r.rngcanonical <> 0 THEN r.rngcanonical::pg_catalog.regproc::text END AS canonical, \
  CASE WHEN r.rngsubdiff <> 0 THEN r.rngsubdiff::pg_catalog.regproc::text END AS subdiff, \
  (SELECT pg_catalog.format('%I.%I', mn.nspname, mt.typname) FROM pg_catalog.pg_type mt \
     JOIN pg_catalog.pg_namespace mn ON mn.oid = mt.typnamespace \
     WHERE mt.oid = (pg_catalog.to_jsonb(r)->>'rngmultitypid')::oid) AS multirange \
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
  LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid \
  WHERE {user} AND {ext} AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND \
    (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')) \
  ORDER BY n.nspname, t.typname";

const DOMAIN_CHECKS: &str =
    "SELECT c.oid, c.contypid, pg_catalog.quote_ident(c.conname) AS qname, \
  pg_catalog.pg_get_constraintdef(c.oid) AS def FROM pg_catalog.pg_constraint c \
  WHERE c.contypid <> 0 AND c.contype = 'c' ORDER BY c.contypid, c.conname";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let mut checks: HashMap<u32, Vec<(u32, String, String)>> = HashMap::new();
    for row in query(ctx.client, "domain constraints", DOMAIN_CHECKS, &[]).await? {
        checks.entry(row.val("contypid")?).or_default().push((
            row.val("oid")?,
            row.val("qname")?,
            row.val("def")?,
        ));
    }
    let sql = fill_query_acl(TYPES, "t.typowner", "t.typacl", 'T', "pg_type", "t.oid");
    for row in query(ctx.client, "types", &sql, &[]).await? {
        let schema: String = row.val("nspname")?;
        if !ctx.filter.schema_objects(&schema) {
            continue;
        }
        let oid: u32 = row.val("oid")?;
        let qname: String = row.val("qname")?;
        let qowner: String = row.val("qowner")?;
        let opt = |c: &str| row.val::<Option<String>>(c);
        let (kind, keyword, mut sql) = match row.val::<String>("typtype")?.as_str() {
            "e" => (
                ObjectKind::Type,
                "TYPE",
                format!(
                    "CREATE TYPE {qname} AS ENUM ({});\n",
                    opt("labels")?.unwrap_or_default()
                ),
            ),
            "c" => (
                ObjectKind::Type,
                "TYPE",
                format!(
                    "CREATE TYPE {qname} AS (\n{}\n);\n",
                    opt("attrs")?.unwrap_or_default()
                ),
            ),
            "d" => {
                let mut s = format!(
                    "CREATE DOMAIN {qname} AS {}",
                    row.val::<String>("basetype")?
                );
                if let Some(c) = opt("collation")? {
                    s.push_str(&format!(" COLLATE {c}"));
                }
                if let Some(d) = opt("typdefault")? {
                    s.push_str(&format!(" DEFAULT {d}"));
                }
                if row.val::<bool>("typnotnull")? {
                    s.push_str(" NOT NULL");
                }
                s.push_str(";\n");
                (ObjectKind::Domain, "DOMAIN", s)
            }
            "r" => {
                let mut opts = vec![format!("subtype = {}", row.val::<String>("subtype")?)];
                let named = [
                    ("multirange_type_name", "multirange"),
                    ("subtype_opclass", "subopclass"),
                    ("collation", "rngcollation"),
                    ("canonical", "canonical"),
                    ("subtype_diff", "subdiff"),
                ];
                for (key, col) in named {
                    opts.extend(opt(col)?.map(|v| format!("{key} = {v}")));
                }
                let s = format!(
                    "CREATE TYPE {qname} AS RANGE (\n    {}\n);\n",
                    opts.join(",\n    ")
                );
                (ObjectKind::Type, "TYPE", s)
            }
            _ => continue,
        };
        sql.push_str(&format!("ALTER {keyword} {qname} OWNER TO {qowner};\n"));
        let owner: String = row.val("owner")?;
        let mut obj = Obj::new(
            kind,
            Section::PreData,
            row.val::<String>("typname")?,
            String::new(),
        )
        .schema(schema)
        .owner(owner.clone())
        .creates(class::TYPE, oid, keyword, qname.clone())
        .grants(&row, keyword, qname.clone())?;
        let typrelid: u32 = row.val("typrelid")?;
        if typrelid != 0 {
            obj = obj.creates(class::CLASS, typrelid, keyword, qname.clone());
        }
        for (con, cname, def) in checks.remove(&oid).unwrap_or_default() {
            sql.push_str(&format!(
                "ALTER DOMAIN {qname} ADD CONSTRAINT {cname} {def};\n"
            ));
            obj = obj.creates(
                class::CONSTRAINT,
                con,
                "CONSTRAINT",
                format!("{cname} ON DOMAIN {qname}"),
            );
        }
        obj.sql = sql;
        out.push(obj);
    }
    Ok(())
}
