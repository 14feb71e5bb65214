//! Base types (`CREATE TYPE name (INPUT = ..., OUTPUT = ...)`) and shell
//! types. A base type and its I/O functions need each other, so, as
//! pg_dump does, a shell (`CREATE TYPE name;`) comes first, then the
//! functions, then the full definition; `depend.rs` points the functions
//! at the shell. A type that is still only a shell is dumped as one.
//! Array types are created with their element type.

use super::obj::{class, oref, Obj};
use super::sql::{fill_query_acl, query, quote_literal, RowExt};
use super::toc::{ObjRef, ObjectKind};
use super::Ctx;
use crate::error::Result;

const BASE_TYPES: &str = "SELECT t.oid, n.nspname, t.typname::text AS name, \
  pg_catalog.format('%I.%I', n.nspname, t.typname) AS qname, {owner}, {acl}, \
  t.typisdefined, t.typlen, \
  t.typinput::pg_catalog.regproc::text AS input, t.typoutput::pg_catalog.regproc::text AS output, \
  CASE WHEN t.typreceive <> 0 THEN t.typreceive::pg_catalog.regproc::text END AS receive, \
  CASE WHEN t.typsend <> 0 THEN t.typsend::pg_catalog.regproc::text END AS send, \
  CASE WHEN t.typmodin <> 0 THEN t.typmodin::pg_catalog.regproc::text END AS typmod_in, \
  CASE WHEN t.typmodout <> 0 THEN t.typmodout::pg_catalog.regproc::text END AS typmod_out, \
  CASE WHEN t.typanalyze <> 0 THEN t.typanalyze::pg_catalog.regproc::text END AS analyze, \
  NULLIF(pg_catalog.to_jsonb(t)->>'typsubscript', '-') AS subscript, \
  t.typcategory::text AS category, t.typispreferred, t.typdefault, \
  CASE WHEN t.typelem <> 0 THEN pg_catalog.format_type(t.typelem, NULL) END AS element, \
  t.typdelim::text AS delim, t.typalign::text AS align, t.typstorage::text AS storage, \
  t.typbyval, t.typcollation <> 0 AS collatable \
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
  WHERE {user} AND {ext} AND t.oid >= 16384 \
  AND (t.typtype = 'b' OR (t.typtype = 'p' AND NOT t.typisdefined)) \
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid) \
  ORDER BY n.nspname, t.typname";

/// The address a shell entry stands for: no catalog row of its own (the
/// full definition owns the type's), so a catalog id no row has.
pub fn shell_ref(type_oid: u32) -> ObjRef {
    oref(0, type_oid)
}

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = fill_query_acl(
        BASE_TYPES,
        "t.typowner",
        "t.typacl",
        'T',
        "pg_type",
        "t.oid",
    );
    for row in query(ctx.client, "base types", &sql, &[]).await? {
        let schema: String = row.val("nspname")?;
        if !ctx.filter.schema_objects(&schema) {
            continue;
        }
        let oid: u32 = row.val("oid")?;
        let qname: String = row.val("qname")?;
        let owner = format!(
            "ALTER TYPE {qname} OWNER TO {};\n",
            row.val::<String>("qowner")?
        );
        let shell = Obj::in_schema(
            ObjectKind::ShellType,
            &row,
            format!("CREATE TYPE {qname};\n"),
        )?;
        if !row.val::<bool>("typisdefined")? {
            out.push(
                Obj {
                    sql: format!("CREATE TYPE {qname};\n{owner}"),
                    ..shell
                }
                .creates(class::TYPE, oid, "TYPE", qname.clone()),
            );
            continue;
        }
        out.push(shell.owns(shell_ref(oid), None));
        let sql = format!(
            "CREATE TYPE {qname} (\n    {}\n);\n{owner}",
            options(&row)?.join(",\n    ")
        );
        let mut full = Obj::in_schema(ObjectKind::Type, &row, sql)?
            .creates(class::TYPE, oid, "TYPE", qname.clone())
            .after(shell_ref(oid))
            .grants(&row, "TYPE", qname.clone())?;
        // Its I/O functions depend on it: dropping it takes them along.
        full.drop = Some(format!("DROP TYPE IF EXISTS {qname} CASCADE;\n"));
        out.push(full);
    }
    Ok(())
}

/// The `CREATE TYPE` options of a base type, in pg_dump's order.
fn options(row: &tokio_postgres::Row) -> Result<Vec<String>> {
    let len: i16 = row.val("typlen")?;
    let mut o = vec![format!(
        "INTERNALLENGTH = {}",
        if len < 0 {
            "variable".to_string()
        } else {
            len.to_string()
        }
    )];
    o.push(format!("INPUT = {}", row.val::<String>("input")?));
    o.push(format!("OUTPUT = {}", row.val::<String>("output")?));
    for (key, col) in [
        ("RECEIVE", "receive"),
        ("SEND", "send"),
        ("TYPMOD_IN", "typmod_in"),
        ("TYPMOD_OUT", "typmod_out"),
        ("ANALYZE", "analyze"),
        ("SUBSCRIPT", "subscript"),
    ] {
        o.extend(
            row.val::<Option<String>>(col)?
                .map(|f| format!("{key} = {f}")),
        );
    }
    let category: String = row.val("category")?;
    if category != "U" {
        o.push(format!("CATEGORY = {}", quote_literal(&category)));
    }
    if row.val::<bool>("typispreferred")? {
        o.push("PREFERRED = true".into());
    }
    if let Some(d) = row.val::<Option<String>>("typdefault")? {
        o.push(format!("DEFAULT = {}", quote_literal(&d)));
    }
    o.extend(
        row.val::<Option<String>>("element")?
            .map(|e| format!("ELEMENT = {e}")),
    );
    let delim: String = row.val("delim")?;
    if delim != "," {
        o.push(format!("DELIMITER = {}", quote_literal(&delim)));
    }
    o.push(format!(
        "ALIGNMENT = {}",
        match row.val::<String>("align")?.as_str() {
            "c" => "char",
            "s" => "int2",
            "d" => "double",
            _ => "int4",
        }
    ));
    o.push(format!(
        "STORAGE = {}",
        match row.val::<String>("storage")?.as_str() {
            "e" => "external",
            "x" => "extended",
            "m" => "main",
            _ => "plain",
        }
    ));
    if row.val::<bool>("typbyval")? {
        o.push("PASSEDBYVALUE".into());
    }
    if row.val::<bool>("collatable")? {
        o.push("COLLATABLE = true".into());
    }
    Ok(o)
}
