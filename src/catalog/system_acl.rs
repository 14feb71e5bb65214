//! Privileges changed on objects whose creation is not dumped: system
//! objects (functions, tables and views of `pg_catalog`, and their
//! columns; not `information_schema`, which pg_dump leaves alone too) and
//! members of extensions
//! (created by `CREATE EXTENSION`, which records their initial privileges),
//! as pg_dump dumps them: the difference between the object's ACL in this
//! database and its initial one (`pg_init_privs`, else the built-in
//! default). An extension member's entry comes after its extension's.
//! Whole-database backups only.

use super::acl::commands;
use super::obj::{class, oref, Obj};
use super::sql::{query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

/// Routines and relations (and columns) of the system schemas and of
/// extensions whose privileges differ from their initial ones; `on` as
/// `GRANT ... ON` names them, `ext` the extension of a member.
const CHANGED: &str = "SELECT * FROM ( \
  SELECT 'FUNCTION ' || pg_catalog.format('%I.%I', n.nspname, p.proname) \
      || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS on, NULL::text AS col, \
    (SELECT e.refobjid FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND e.objid = p.oid AND e.deptype = 'e' LIMIT 1) AS ext, \
    n.nspname::text AS schema, pg_catalog.pg_get_userbyid(p.proowner)::text AS owner, \
    COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))::text[] AS acl, \
    COALESCE((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip WHERE ip.objoid = p.oid \
      AND ip.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND ip.objsubid = 0), \
      pg_catalog.acldefault('f', p.proowner))::text[] AS acl_base \
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
  WHERE (n.nspname = 'pg_catalog' OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND e.objid = p.oid AND e.deptype = 'e')) \
  UNION ALL \
  SELECT 'TABLE ' || pg_catalog.format('%I.%I', n.nspname, c.relname), NULL, (SELECT e.refobjid FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid AND e.deptype = 'e' LIMIT 1), \
    n.nspname::text, \
    pg_catalog.pg_get_userbyid(c.relowner)::text, \
    COALESCE(c.relacl, pg_catalog.acldefault('r', c.relowner))::text[], \
    COALESCE((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip WHERE ip.objoid = c.oid \
      AND ip.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ip.objsubid = 0), \
      pg_catalog.acldefault('r', c.relowner))::text[] \
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE (n.nspname = 'pg_catalog' OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid AND e.deptype = 'e')) \
    AND c.relkind IN ('r', 'v', 'm') \
  UNION ALL \
  SELECT 'TABLE ' || pg_catalog.format('%I.%I', n.nspname, c.relname), pg_catalog.quote_ident(a.attname), \
    (SELECT e.refobjid FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid AND e.deptype = 'e' LIMIT 1), \
    n.nspname::text, pg_catalog.pg_get_userbyid(c.relowner)::text, \
    COALESCE(a.attacl, '{}')::text[], \
    COALESCE((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip WHERE ip.objoid = c.oid \
      AND ip.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ip.objsubid = a.attnum), '{}')::text[] \
  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE (n.nspname = 'pg_catalog' OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid AND e.deptype = 'e')) \
    AND a.attnum > 0 AND a.attacl IS NOT NULL \
  ) x WHERE x.acl IS DISTINCT FROM x.acl_base ORDER BY 1, 2";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    if !ctx.filter.whole_database() {
        return Ok(());
    }
    for row in query(
        ctx.client,
        "privileges on system objects and extension members",
        CHANGED,
        &[],
    )
    .await?
    {
        let on: String = row.val("on")?;
        let col: Option<String> = row.val("col")?;
        let owner: String = row.val("owner")?;
        let acl: Vec<String> = row.val("acl")?;
        let base: Vec<String> = row.val("acl_base")?;
        let sql = commands(&acl, &base, &owner, &on, col.as_deref(), "");
        if sql.is_empty() {
            continue;
        }
        let name = match &col {
            Some(c) => format!("{on} ({c})"),
            None => on,
        };
        let mut obj = Obj::new(ObjectKind::Acl, Section::PostData, name, sql).owner(owner);
        if let Some(ext) = row.val::<Option<u32>>("ext")? {
            obj = obj.after(oref(class::EXTENSION, ext));
        }
        obj.schema = Some(row.val("schema")?);
        out.push(obj);
    }
    Ok(())
}
