//! Privileges changed on system objects, whose creation is not dumped
//! (functions, tables and views of `pg_catalog`, and their columns; not
//! `information_schema`, which pg_dump leaves alone too), as pg_dump dumps
//! them: the difference between the object's ACL in this database and its
//! initial one (`pg_init_privs`, else the built-in default). Whole-database
//! backups only. Members of extensions have theirs read with their
//! extension (`extensions.rs`).

use super::acl::commands;
use super::obj::Obj;
use super::sql::{query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

/// Routines and relations (and columns) of `pg_catalog` whose privileges
/// differ from their initial ones; `on` as `GRANT ... ON` names them.
const CHANGED: &str = "SELECT * FROM ( \
  SELECT 'FUNCTION ' || pg_catalog.format('%I.%I', n.nspname, p.proname) \
      || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS on, NULL::text AS col, \
    n.nspname::text AS schema, pg_catalog.pg_get_userbyid(p.proowner)::text AS owner, \
    COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))::text[] AS acl, \
    COALESCE((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip WHERE ip.objoid = p.oid \
      AND ip.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND ip.objsubid = 0), \
      pg_catalog.acldefault('f', p.proowner))::text[] AS acl_base \
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
  WHERE n.nspname = 'pg_catalog' \
  UNION ALL \
  SELECT 'TABLE ' || pg_catalog.format('%I.%I', n.nspname, c.relname), NULL, \
    n.nspname::text, \
    pg_catalog.pg_get_userbyid(c.relowner)::text, \
    COALESCE(c.relacl, pg_catalog.acldefault('r', c.relowner))::text[], \
    COALESCE((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip WHERE ip.objoid = c.oid \
      AND ip.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ip.objsubid = 0), \
      pg_catalog.acldefault('r', c.relowner))::text[] \
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE n.nspname = 'pg_catalog' \
    AND c.relkind IN ('r', 'v', 'm') \
  UNION ALL \
  SELECT 'TABLE ' || pg_catalog.format('%I.%I', n.nspname, c.relname), pg_catalog.quote_ident(a.attname), \
    n.nspname::text, pg_catalog.pg_get_userbyid(c.relowner)::text, \
    COALESCE(a.attacl, '{}')::text[], \
    COALESCE((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip WHERE ip.objoid = c.oid \
      AND ip.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ip.objsubid = a.attnum), '{}')::text[] \
  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE n.nspname = 'pg_catalog' \
    AND a.attnum > 0 AND a.attacl IS NOT NULL \
  ) x WHERE x.acl IS DISTINCT FROM x.acl_base ORDER BY 1, 2";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    if !ctx.filter.whole_database() {
        return Ok(());
    }
    for row in query(ctx.client, "privileges on system objects", CHANGED, &[]).await? {
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
        obj.schema = Some(row.val("schema")?);
        out.push(obj);
    }
    Ok(())
}
