//! Extensions: `CREATE EXTENSION IF NOT EXISTS ... WITH SCHEMA`. Their member
//! objects are left out of every other reader; extensions created by initdb
//! (plpgsql) are not dumped. Privileges of member objects that differ from
//! their initial ones (`pg_init_privs`) become `ACL` entries, as in pg_dump.

use super::acl::commands;
use super::obj::{class, oref, Obj};
use super::sql::{acl_columns, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

/// Member objects with an ACL, as (extension, GRANT target, owner, acl, base).
const MEMBER_ACLS: &str = "SELECT d.refobjid AS ext, m.keyword, m.name, m.owner, m.acl, m.acl_base \
  FROM pg_catalog.pg_depend d CROSS JOIN LATERAL ( \
    SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS keyword, \
      pg_catalog.format('%I.%I', n.nspname, c.relname) AS name, \
      pg_catalog.pg_get_userbyid(c.relowner) AS owner, {class_acl} \
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = d.objid AND c.relacl IS NOT NULL \
    UNION ALL \
    SELECT 'FUNCTION', \
      pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)), \
      pg_catalog.pg_get_userbyid(p.proowner), {proc_acl} \
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
    WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = d.objid AND p.proacl IS NOT NULL \
    UNION ALL \
    SELECT 'TYPE', pg_catalog.format('%I.%I', n.nspname, t.typname), \
      pg_catalog.pg_get_userbyid(t.typowner), {type_acl} \
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
    WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = d.objid AND t.typacl IS NOT NULL \
  ) m \
  WHERE d.deptype = 'e' AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass \
    AND d.refobjid >= 16384 \
  ORDER BY m.keyword, m.name";

async fn member_acls(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = MEMBER_ACLS
        .replace(
            "{class_acl}",
            &acl_columns("c.relacl", 'r', "c.relowner", "pg_class", "c.oid"),
        )
        .replace(
            "{proc_acl}",
            &acl_columns("p.proacl", 'f', "p.proowner", "pg_proc", "p.oid"),
        )
        .replace(
            "{type_acl}",
            &acl_columns("t.typacl", 'T', "t.typowner", "pg_type", "t.oid"),
        );
    for row in query(ctx.client, "extension member privileges", &sql, &[]).await? {
        let ext: u32 = row.val("ext")?;
        if !out
            .iter()
            .any(|o| o.owns.first() == Some(&oref(class::EXTENSION, ext)))
        {
            continue;
        }
        let on = format!(
            "{} {}",
            row.val::<String>("keyword")?,
            row.val::<String>("name")?
        );
        let owner: String = row.val("owner")?;
        let acl: Vec<String> = row.val("acl")?;
        let base: Vec<String> = row.val("acl_base")?;
        let sql = commands(&acl, &base, &owner, &on, None, "");
        if !sql.is_empty() {
            out.push(
                Obj::new(ObjectKind::Acl, Section::PostData, on, sql)
                    .owner(owner)
                    .after(oref(class::EXTENSION, ext)),
            );
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
    member_acls(ctx, out).await
}
