//! User-defined casts (`CREATE CAST`). A cast belongs to no schema; it is
//! dumped when its function, or else one of its types, is in a dumped schema.
//! Casts internal to a type (range to multirange) are left out.

use super::obj::{class, Obj};
use super::sql::{not_extension_member, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

const CASTS: &str = "SELECT c.oid, pg_catalog.format_type(c.castsource, NULL) AS source, \
  pg_catalog.format_type(c.casttarget, NULL) AS target, c.castmethod::text AS method, \
  c.castcontext::text AS context, \
  CASE WHEN c.castfunc <> 0 THEN c.castfunc::pg_catalog.regprocedure::text END AS func, \
  COALESCE((SELECT n.nspname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
     WHERE p.oid = c.castfunc), \
    (SELECT n.nspname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
     WHERE t.oid = c.castsource AND n.nspname <> 'pg_catalog'), \
    (SELECT n.nspname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
     WHERE t.oid = c.casttarget)) AS schema \
  FROM pg_catalog.pg_cast c WHERE c.oid >= 16384 AND {ext} \
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend i \
    WHERE i.classid = 'pg_catalog.pg_cast'::pg_catalog.regclass AND i.objid = c.oid AND i.deptype = 'i') \
  ORDER BY 2, 3";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = CASTS.replace("{ext}", &not_extension_member("pg_cast", "c.oid"));
    for row in query(ctx.client, "casts", &sql, &[]).await? {
        let schema: Option<String> = row.val("schema")?;
        if !schema
            .as_deref()
            .is_some_and(|s| ctx.filter.schema_objects(s))
        {
            continue;
        }
        let name = format!(
            "({} AS {})",
            row.val::<String>("source")?,
            row.val::<String>("target")?
        );
        let how = match (
            row.val::<String>("method")?.as_str(),
            row.val::<Option<String>>("func")?,
        ) {
            ("f", Some(f)) => format!("WITH FUNCTION {f}"),
            ("i", _) => "WITH INOUT".to_string(),
            _ => "WITHOUT FUNCTION".to_string(),
        };
        let context = match row.val::<String>("context")?.as_str() {
            "a" => " AS ASSIGNMENT",
            "i" => " AS IMPLICIT",
            _ => "",
        };
        let sql = format!("CREATE CAST {name} {how}{context};\n");
        out.push(
            Obj::new(ObjectKind::Cast, Section::PreData, name.clone(), sql).creates(
                class::CAST,
                row.val("oid")?,
                "CAST",
                name,
            ),
        );
    }
    Ok(())
}
