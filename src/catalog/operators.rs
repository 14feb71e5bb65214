//! User-defined operators (`CREATE OPERATOR`). An operator naming a
//! commutator or negator that does not exist yet creates a shell that the
//! later definition fills, so operators need no order among themselves.

use super::obj::{class, Obj};
use super::sql::{fill_query, query, RowExt};
use super::toc::ObjectKind;
use super::Ctx;
use crate::error::Result;

const OPERATORS: &str = "SELECT o.oid, n.nspname, o.oprname::text AS name, \
  pg_catalog.quote_ident(n.nspname) || '.' || o.oprname AS qname, {owner}, \
  o.oprcode::pg_catalog.regproc::text AS func, \
  CASE WHEN o.oprleft <> 0 THEN pg_catalog.format_type(o.oprleft, NULL) END AS leftarg, \
  CASE WHEN o.oprright <> 0 THEN pg_catalog.format_type(o.oprright, NULL) END AS rightarg, \
  (SELECT pg_catalog.format('OPERATOR(%I.%s)', cn.nspname, c.oprname) FROM pg_catalog.pg_operator c \
     JOIN pg_catalog.pg_namespace cn ON cn.oid = c.oprnamespace WHERE c.oid = o.oprcom) AS commutator, \
  (SELECT pg_catalog.format('OPERATOR(%I.%s)', cn.nspname, c.oprname) FROM pg_catalog.pg_operator c \
     JOIN pg_catalog.pg_namespace cn ON cn.oid = c.oprnamespace WHERE c.oid = o.oprnegate) AS negator, \
  CASE WHEN o.oprrest <> 0 THEN o.oprrest::pg_catalog.regproc::text END AS restrict, \
  CASE WHEN o.oprjoin <> 0 THEN o.oprjoin::pg_catalog.regproc::text END AS join, \
  o.oprcanhash, o.oprcanmerge \
  FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace \
  WHERE {user} AND {ext} AND o.oprcode <> 0 ORDER BY n.nspname, o.oprname, o.oid";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = fill_query(OPERATORS, "o.oprowner", "pg_operator", "o.oid");
    for row in query(ctx.client, "operators", &sql, &[]).await? {
        let schema: String = row.val("nspname")?;
        if !ctx.filter.schema_objects(&schema) {
            continue;
        }
        let qname: String = row.val("qname")?;
        let left: Option<String> = row.val("leftarg")?;
        let right: Option<String> = row.val("rightarg")?;
        let mut opts = vec![format!("FUNCTION = {}", row.val::<String>("func")?)];
        opts.extend(left.as_ref().map(|t| format!("LEFTARG = {t}")));
        opts.extend(right.as_ref().map(|t| format!("RIGHTARG = {t}")));
        for (key, col) in [
            ("COMMUTATOR", "commutator"),
            ("NEGATOR", "negator"),
            ("RESTRICT", "restrict"),
            ("JOIN", "join"),
        ] {
            opts.extend(
                row.val::<Option<String>>(col)?
                    .map(|v| format!("{key} = {v}")),
            );
        }
        if row.val::<bool>("oprcanhash")? {
            opts.push("HASHES".into());
        }
        if row.val::<bool>("oprcanmerge")? {
            opts.push("MERGES".into());
        }
        let signature = format!(
            "{qname} ({}, {})",
            left.as_deref().unwrap_or("NONE"),
            right.as_deref().unwrap_or("NONE")
        );
        let sql = format!(
            "CREATE OPERATOR {qname} (\n    {}\n);\nALTER OPERATOR {signature} OWNER TO {};\n",
            opts.join(",\n    "),
            row.val::<String>("qowner")?
        );
        out.push(Obj::in_schema(ObjectKind::Operator, &row, sql)?.creates(
            class::OPERATOR,
            row.val("oid")?,
            "OPERATOR",
            signature,
        ));
    }
    Ok(())
}
