//! User-defined collations. Version-specific columns (`colliculocale` in 15
//! and 16, `colllocale` from 17) are read through `to_jsonb` so one query
//! serves every server version.

use super::obj::{class, Obj};
use super::sql::{fill_query, query, quote_literal, RowExt};
use super::toc::ObjectKind;
use super::Ctx;
use crate::error::Result;

const COLLATIONS: &str = "SELECT c.oid, n.nspname, c.collname AS name, \
         pg_catalog.format('%I.%I', n.nspname, c.collname) AS qname, {owner}, \
         c.collprovider::text AS provider, c.collisdeterministic AS deterministic, \
         j->>'collcollate' AS collate, j->>'collctype' AS ctype, \
         COALESCE(j->>'colllocale', j->>'colliculocale') AS locale, j->>'collicurules' AS rules \
         FROM pg_catalog.pg_collation c JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace, \
         LATERAL pg_catalog.to_jsonb(c) j \
         WHERE {user} AND {ext} ORDER BY n.nspname, c.collname";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = fill_query(COLLATIONS, "c.collowner", "pg_collation", "c.oid");
    for row in query(ctx.client, "collations", &sql, &[]).await? {
        let schema: String = row.val("nspname")?;
        if !ctx.filter.schema_objects(&schema) {
            continue;
        }
        let qname: String = row.val("qname")?;
        let provider = match row.val::<String>("provider")?.as_str() {
            "i" => "icu",
            "b" => "builtin",
            "c" => "libc",
            _ => "default",
        };
        let mut opts = vec![format!("provider = {provider}")];
        let locale: Option<String> = row.val("locale")?;
        let collate: Option<String> = row.val("collate")?;
        let ctype: Option<String> = row.val("ctype")?;
        match (locale, collate, ctype) {
            (Some(l), _, _) => opts.push(format!("locale = {}", quote_literal(&l))),
            (None, Some(c), Some(t)) if c == t => {
                opts.push(format!("locale = {}", quote_literal(&c)))
            }
            (None, c, t) => {
                opts.extend(c.map(|c| format!("lc_collate = {}", quote_literal(&c))));
                opts.extend(t.map(|t| format!("lc_ctype = {}", quote_literal(&t))));
            }
        }
        if let Some(rules) = row.val::<Option<String>>("rules")? {
            opts.push(format!("rules = {}", quote_literal(&rules)));
        }
        if !row.val::<bool>("deterministic")? {
            opts.push("deterministic = false".into());
        }
        let qowner: String = row.val("qowner")?;
        let sql = format!(
            "CREATE COLLATION {qname} ({});\nALTER COLLATION {qname} OWNER TO {qowner};\n",
            opts.join(", ")
        );
        out.push(Obj::in_schema(ObjectKind::Collation, &row, sql)?.creates(
            class::COLLATION,
            row.val("oid")?,
            "COLLATION",
            qname,
        ));
    }
    Ok(())
}
