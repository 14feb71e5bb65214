//! Row-level security: `ENABLE`/`FORCE ROW LEVEL SECURITY` per table and
//! `CREATE POLICY` entries, all post-data.

use super::obj::{class, oref, Obj};
use super::sql::{owner_columns, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

const RLS: &str = "SELECT c.oid, n.nspname, c.relname, \
  pg_catalog.format('%I.%I', n.nspname, c.relname) AS qtable, {owner}, \
  c.relrowsecurity, c.relforcerowsecurity \
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE c.oid = ANY($1) AND (c.relrowsecurity OR c.relforcerowsecurity) ORDER BY n.nspname, c.relname";

const POLICIES: &str = "SELECT p.oid, p.polrelid, p.polname::text AS polname, \
  pg_catalog.quote_ident(p.polname) AS qname, p.polcmd::text AS cmd, p.polpermissive, \
  (SELECT pg_catalog.string_agg(CASE WHEN r.role = 0 THEN 'PUBLIC' \
     ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.role)) END, ', ' ORDER BY r.ord) \
     FROM pg_catalog.unnest(p.polroles) WITH ORDINALITY AS r(role, ord)) AS roles, \
  pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual, \
  pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS withcheck, n.nspname, c.relname, \
  pg_catalog.format('%I.%I', n.nspname, c.relname) AS qtable, {owner} \
  FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid \
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE p.polrelid = ANY($1) ORDER BY n.nspname, c.relname, p.polname";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = RLS.replace("{owner}", &owner_columns("c.relowner"));
    for row in query(ctx.client, "row security", &sql, &[&ctx.rel_oids]).await? {
        let qtable: String = row.val("qtable")?;
        let mut sql = String::new();
        if row.val::<bool>("relrowsecurity")? {
            sql.push_str(&format!(
                "ALTER TABLE {qtable} ENABLE ROW LEVEL SECURITY;\n"
            ));
        }
        if row.val::<bool>("relforcerowsecurity")? {
            sql.push_str(&format!("ALTER TABLE {qtable} FORCE ROW LEVEL SECURITY;\n"));
        }
        out.push(
            Obj::new(
                ObjectKind::RowSecurity,
                Section::PostData,
                row.val::<String>("relname")?,
                sql,
            )
            .schema(row.val::<String>("nspname")?)
            .owner(row.val::<String>("owner")?)
            .after(oref(class::CLASS, row.val("oid")?)),
        );
    }
    let sql = POLICIES.replace("{owner}", &owner_columns("c.relowner"));
    for row in query(ctx.client, "policies", &sql, &[&ctx.rel_oids]).await? {
        let qname: String = row.val("qname")?;
        let qtable: String = row.val("qtable")?;
        let mut sql = format!("CREATE POLICY {qname} ON {qtable}");
        if !row.val::<bool>("polpermissive")? {
            sql.push_str(" AS RESTRICTIVE");
        }
        let cmd = match row.val::<String>("cmd")?.as_str() {
            "r" => "SELECT",
            "a" => "INSERT",
            "w" => "UPDATE",
            "d" => "DELETE",
            _ => "ALL",
        };
        sql.push_str(&format!(" FOR {cmd}"));
        if let Some(roles) = row.val::<Option<String>>("roles")? {
            sql.push_str(&format!(" TO {roles}"));
        }
        if let Some(qual) = row.val::<Option<String>>("qual")? {
            sql.push_str(&format!(" USING ({qual})"));
        }
        if let Some(check) = row.val::<Option<String>>("withcheck")? {
            sql.push_str(&format!(" WITH CHECK ({check})"));
        }
        sql.push_str(";\n");
        let name = format!(
            "{} {}",
            row.val::<String>("relname")?,
            row.val::<String>("polname")?
        );
        out.push(
            Obj::new(ObjectKind::Policy, Section::PostData, name, sql)
                .schema(row.val::<String>("nspname")?)
                .owner(row.val::<String>("owner")?)
                .creates(
                    class::POLICY,
                    row.val("oid")?,
                    "POLICY",
                    format!("{qname} ON {qtable}"),
                )
                .after(oref(class::CLASS, row.val("polrelid")?)),
        );
    }
    Ok(())
}
