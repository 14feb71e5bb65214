//! Rewrite rules other than views' `_RETURN` rules (`pg_get_ruledef`),
//! with their enabled state.

use super::obj::{class, oref, Obj};
use super::sql::{enabled_state, owner_columns, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

const RULES: &str = "SELECT r.oid, r.ev_class, r.rulename::text AS rulename, \
  pg_catalog.quote_ident(r.rulename) AS qname, pg_catalog.pg_get_ruledef(r.oid) AS def, \
  r.ev_enabled::text AS enabled, n.nspname, c.relname, \
  pg_catalog.format('%I.%I', n.nspname, c.relname) AS qtable, {owner} \
  FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class \
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE r.ev_class = ANY($1) AND r.rulename <> '_RETURN' ORDER BY n.nspname, c.relname, r.rulename";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = RULES.replace("{owner}", &owner_columns("c.relowner"));
    for row in query(ctx.client, "rules", &sql, &[&ctx.rel_oids]).await? {
        let qname: String = row.val("qname")?;
        let qtable: String = row.val("qtable")?;
        let mut sql = format!("{}\n", row.val::<String>("def")?.trim_end());
        if let Some(state) = enabled_state(&row.val::<String>("enabled")?) {
            sql.push_str(&format!("ALTER TABLE {qtable} {state} RULE {qname};\n"));
        }
        let name = format!(
            "{} {}",
            row.val::<String>("relname")?,
            row.val::<String>("rulename")?
        );
        out.push(
            Obj::new(ObjectKind::Rule, Section::PostData, name, sql)
                .schema(row.val::<String>("nspname")?)
                .owner(row.val::<String>("owner")?)
                .creates(
                    class::REWRITE,
                    row.val("oid")?,
                    "RULE",
                    format!("{qname} ON {qtable}"),
                )
                .after(oref(class::CLASS, row.val("ev_class")?)),
        );
    }
    Ok(())
}
