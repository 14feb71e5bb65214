//! Default privileges (`pg_default_acl`) as `ALTER DEFAULT PRIVILEGES`
//! entries. They come last in post-data so they do not change the privileges
//! of objects the restore itself creates. Their drop statement (`restore
//! --clean --if-exists`) undoes them, back to the built-in defaults.

use super::acl::commands;
use super::obj::Obj;
use super::sql::{query, quote_ident, quote_literal, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let rows = query(
        ctx.client,
        "default privileges",
        "SELECT pg_catalog.pg_get_userbyid(d.defaclrole) AS role, n.nspname, \
         pg_catalog.quote_ident(n.nspname) AS qschema, d.defaclobjtype::text AS objtype, \
         d.defaclacl::text[] AS acl, \
         CASE WHEN d.defaclnamespace = 0 THEN pg_catalog.acldefault( \
           CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END, d.defaclrole) \
         ELSE '{}' END::text[] AS acl_base \
         FROM pg_catalog.pg_default_acl d \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace \
         ORDER BY 1, 2, 4",
        &[],
    )
    .await?;
    for row in &rows {
        let role: String = row.val("role")?;
        let schema: Option<String> = row.val("nspname")?;
        if !schema.as_deref().map_or(ctx.filter.whole_database(), |s| {
            ctx.filter.schema_objects(s)
        }) {
            continue;
        }
        let on = match row.val::<String>("objtype")?.as_str() {
            "r" => "TABLES",
            "S" => "SEQUENCES",
            "f" => "FUNCTIONS",
            "T" => "TYPES",
            "n" => "SCHEMAS",
            _ => continue,
        };
        let qschema: Option<String> = row.val("qschema")?;
        let prefix = match &qschema {
            Some(s) => format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {s} ",
                quote_ident(&role)
            ),
            None => format!("ALTER DEFAULT PRIVILEGES FOR ROLE {} ", quote_ident(&role)),
        };
        let acl: Vec<String> = row.val("acl")?;
        let base: Vec<String> = row.val("acl_base")?;
        let sql = commands(&acl, &base, &role, on, None, &prefix);
        if sql.is_empty() {
            continue;
        }
        // `--clean --if-exists` turns them back into the built-in ones, so
        // the objects the restore creates are not given the target's.
        // In a schema, only while the schema is there.
        let mut undo = commands(&base, &acl, &role, on, None, &prefix);
        if let Some(s) = &schema {
            undo = format!(
                "DO $pgkeep_undo$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = {}) THEN EXECUTE {}; END IF; END $pgkeep_undo$;\n",
                quote_literal(s),
                quote_literal(&undo)
            );
        }
        let mut obj = Obj::new(
            ObjectKind::DefaultAcl,
            Section::PostData,
            format!("DEFAULT PRIVILEGES FOR {on}"),
            sql,
        )
        .owner(role);
        obj.schema = schema;
        obj.drop = Some(undo);
        out.push(obj);
    }
    Ok(())
}
