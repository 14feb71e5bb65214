//! Schemas. `public` already exists in a new database, so for it only an
//! owner different from the initial one is emitted (its comment and ACL are
//! compared with their initial values like for any object; before 15 its
//! initial ACL is taken to be 15's, so a restore into 15+ keeps CREATE).

use super::obj::{class, Obj};
use super::sql::{acl_columns, not_extension_member, owner_columns, query, user_schema, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = format!(
        "SELECT n.oid, n.nspname, pg_catalog.quote_ident(n.nspname) AS qname, {owner}, {acl} \
         FROM pg_catalog.pg_namespace n WHERE {user} AND {ext} ORDER BY n.nspname",
        owner = owner_columns("n.nspowner"),
        acl = acl_columns("n.nspacl", 'n', "n.nspowner", "pg_namespace", "n.oid"),
        user = user_schema("n"),
        ext = not_extension_member("pg_namespace", "n.oid"),
    );
    // The owner `public` has in a freshly created database.
    let public_owner = if ctx.version >= 150000 {
        "pg_database_owner".to_string()
    } else {
        let rows = query(
            ctx.client,
            "bootstrap superuser",
            "SELECT rolname::text FROM pg_catalog.pg_roles WHERE oid = 10",
            &[],
        )
        .await?;
        rows.first()
            .map(|r| r.val::<String>("rolname"))
            .transpose()?
            .unwrap_or_default()
    };
    for row in query(ctx.client, "schemas", &sql, &[]).await? {
        let name: String = row.val("nspname")?;
        if !ctx.filter.schema_objects(&name) {
            continue;
        }
        let qname: String = row.val("qname")?;
        let owner: String = row.val("owner")?;
        let qowner: String = row.val("qowner")?;
        let sql = if name == "public" {
            if owner == public_owner {
                String::new()
            } else {
                format!("ALTER SCHEMA public OWNER TO {qowner};\n")
            }
        } else {
            format!("CREATE SCHEMA {qname};\nALTER SCHEMA {qname} OWNER TO {qowner};\n")
        };
        let mut obj = Obj::new(ObjectKind::Schema, Section::PreData, name.clone(), sql)
            .owner(owner.clone())
            .creates(class::NAMESPACE, row.val("oid")?, "SCHEMA", qname.clone())
            .grants(&row, "SCHEMA", qname)?;
        if name == "public" && ctx.version < 150000 {
            // From 15 on, `public` starts with USAGE only for PUBLIC; compare
            // with that (as pg_dump does) so CREATE survives a restore into 15+.
            if let Some(acl) = obj.acl.as_mut() {
                acl.base = vec![format!("{owner}=UC/{owner}"), format!("=U/{owner}")];
            }
        }
        out.push(obj);
    }
    Ok(())
}
