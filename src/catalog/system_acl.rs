//! Privileges changed on system objects, whose creation is not dumped
//! (functions, tables and views of `pg_catalog`, and their columns; not
//! `information_schema`, which pg_dump leaves alone too), as pg_dump dumps
//! them: the difference between the object's ACL in this database and its
//! initial one (`pg_init_privs`, else the built-in default). Whole-database
//! backups only. Members of extensions have theirs read with their
//! extension (`extensions.rs`).

use super::acl::changed_acl;
use super::obj::Obj;
use super::sql::{fill_acl_columns, query};
use super::Ctx;
use crate::error::Result;

/// Routines and relations (and columns) of `pg_catalog` whose privileges
/// differ from their initial ones; `on` as `GRANT ... ON` names them.
const CHANGED: &str = "SELECT * FROM ( \
  SELECT 'FUNCTION ' || pg_catalog.format('%I.%I', n.nspname, p.proname) \
      || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS on, NULL::text AS col, \
    n.nspname::text AS schema, pg_catalog.pg_get_userbyid(p.proowner)::text AS owner, {proc_acl} \
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
  WHERE n.nspname = 'pg_catalog' \
  UNION ALL \
  SELECT 'TABLE ' || pg_catalog.format('%I.%I', n.nspname, c.relname), NULL, n.nspname::text, \
    pg_catalog.pg_get_userbyid(c.relowner)::text, {class_acl} \
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE n.nspname = 'pg_catalog' AND c.relkind IN ('r', 'v', 'm') \
  UNION ALL \
  SELECT 'TABLE ' || pg_catalog.format('%I.%I', n.nspname, c.relname), pg_catalog.quote_ident(a.attname), \
    n.nspname::text, pg_catalog.pg_get_userbyid(c.relowner)::text, {column_acl} \
  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE n.nspname = 'pg_catalog' AND a.attnum > 0 AND a.attacl IS NOT NULL \
  ) x WHERE x.acl IS DISTINCT FROM x.acl_base ORDER BY 1, 2";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    if !ctx.filter.whole_database() {
        return Ok(());
    }
    let sql = fill_acl_columns(CHANGED);
    for row in query(ctx.client, "privileges on system objects", &sql, &[]).await? {
        out.extend(changed_acl(&row)?);
    }
    Ok(())
}
