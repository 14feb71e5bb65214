//! Procedural languages not created by an extension (`CREATE PROCEDURAL
//! LANGUAGE ... HANDLER`), with owner and privileges, and transforms
//! (`CREATE TRANSFORM FOR type LANGUAGE`), both database-wide like
//! pg_dump's. Their handler and transform functions are ordinary functions
//! dumped before them.

use super::obj::{class, Obj};
use super::sql::{fill_query_acl, not_extension_member, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

const LANGUAGES: &str = "SELECT l.oid, l.lanname::text AS name, \
  pg_catalog.quote_ident(l.lanname) AS qname, l.lanpltrusted, {owner}, {acl}, \
  l.lanplcallfoid::pg_catalog.regproc::text AS handler, \
  CASE WHEN l.laninline <> 0 THEN l.laninline::pg_catalog.regproc::text END AS inline, \
  CASE WHEN l.lanvalidator <> 0 THEN l.lanvalidator::pg_catalog.regproc::text END AS validator \
  FROM pg_catalog.pg_language l \
  WHERE l.lanispl AND l.oid >= 16384 AND {ext} ORDER BY l.lanname";

const TRANSFORMS: &str = "SELECT t.oid, pg_catalog.format_type(t.trftype, NULL) AS type, \
  pg_catalog.quote_ident(l.lanname) AS lang, \
  CASE WHEN t.trffromsql <> 0 THEN t.trffromsql::pg_catalog.regprocedure::text END AS fromsql, \
  CASE WHEN t.trftosql <> 0 THEN t.trftosql::pg_catalog.regprocedure::text END AS tosql \
  FROM pg_catalog.pg_transform t JOIN pg_catalog.pg_language l ON l.oid = t.trflang \
  WHERE t.oid >= 16384 AND {ext} ORDER BY 2, 3";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    if !ctx.filter.whole_database() {
        return Ok(());
    }
    let sql = fill_query_acl(
        LANGUAGES,
        "l.lanowner",
        "l.lanacl",
        'l',
        "pg_language",
        "l.oid",
    );
    for row in query(ctx.client, "procedural languages", &sql, &[]).await? {
        let qname: String = row.val("qname")?;
        let trusted = if row.val::<bool>("lanpltrusted")? {
            "TRUSTED "
        } else {
            ""
        };
        let mut sql = format!(
            "CREATE {trusted}PROCEDURAL LANGUAGE {qname} HANDLER {}",
            row.val::<String>("handler")?
        );
        if let Some(f) = row.val::<Option<String>>("inline")? {
            sql.push_str(&format!(" INLINE {f}"));
        }
        if let Some(f) = row.val::<Option<String>>("validator")? {
            sql.push_str(&format!(" VALIDATOR {f}"));
        }
        sql.push_str(&format!(
            ";\nALTER LANGUAGE {qname} OWNER TO {};\n",
            row.val::<String>("qowner")?
        ));
        out.push(
            Obj::new(
                ObjectKind::Language,
                Section::PreData,
                row.val::<String>("name")?,
                sql,
            )
            .owner(row.val::<String>("owner")?)
            .creates(class::LANGUAGE, row.val("oid")?, "LANGUAGE", qname.clone())
            .grants(&row, "LANGUAGE", qname)?,
        );
    }
    let sql = TRANSFORMS.replace("{ext}", &not_extension_member("pg_transform", "t.oid"));
    for row in query(ctx.client, "transforms", &sql, &[]).await? {
        let name = format!(
            "FOR {} LANGUAGE {}",
            row.val::<String>("type")?,
            row.val::<String>("lang")?
        );
        let mut parts = Vec::new();
        if let Some(f) = row.val::<Option<String>>("fromsql")? {
            parts.push(format!("FROM SQL WITH FUNCTION {f}"));
        }
        if let Some(f) = row.val::<Option<String>>("tosql")? {
            parts.push(format!("TO SQL WITH FUNCTION {f}"));
        }
        let sql = format!("CREATE TRANSFORM {name} ({});\n", parts.join(", "));
        out.push(
            Obj::new(ObjectKind::Transform, Section::PreData, name.clone(), sql).creates(
                class::TRANSFORM,
                row.val("oid")?,
                "TRANSFORM",
                name,
            ),
        );
    }
    Ok(())
}
