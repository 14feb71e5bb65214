//! Table constraints restored after the data: primary keys, unique and
//! exclusion constraints (each owning its index) and foreign keys. Foreign
//! keys cloned onto partitions are left out: they come back when the
//! parent's constraint is added. CHECK and (PostgreSQL 18+) not-null
//! constraints live in `tables.rs`.

use super::indexes::index_settings;
use super::obj::{class, oref, Obj};
use super::sql::{owner_columns, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

const CONSTRAINTS: &str = "SELECT c.oid, c.conrelid, c.contype::text AS contype, c.conindid, \
  c.conname::text AS conname, pg_catalog.quote_ident(c.conname) AS qname, \
  pg_catalog.pg_get_constraintdef(c.oid) AS def, n.nspname, r.relname, r.relkind::text AS relkind, \
  pg_catalog.format('%I.%I', n.nspname, r.relname) AS qtable, {owner}, \
  (SELECT pg_catalog.format('%I.%I', inn.nspname, ic.relname) FROM pg_catalog.pg_class ic \
     JOIN pg_catalog.pg_namespace inn ON inn.oid = ic.relnamespace WHERE ic.oid = c.conindid) AS qindex, \
  (SELECT pg_catalog.quote_ident(ic.relname) FROM pg_catalog.pg_class ic WHERE ic.oid = c.conindid) AS qindexrel, \
  COALESCE(i.indisclustered, false) AS indisclustered, COALESCE(i.indisreplident, false) AS indisreplident \
  FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class r ON r.oid = c.conrelid \
  JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace \
  LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.conindid AND c.contype <> 'f' \
  WHERE c.contype IN ('p', 'u', 'x', 'f') AND c.conrelid = ANY($1) \
    AND NOT (c.contype = 'f' AND c.conparentid <> 0) \
  ORDER BY n.nspname, r.relname, c.conname";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = CONSTRAINTS.replace("{owner}", &owner_columns("r.relowner"));
    for row in query(ctx.client, "constraints", &sql, &[&ctx.rel_oids]).await? {
        let qtable: String = row.val("qtable")?;
        let qname: String = row.val("qname")?;
        let foreign = row.val::<String>("contype")? == "f";
        let partitioned = row.val::<String>("relkind")? == "p";
        let only = if foreign && partitioned { "" } else { "ONLY " };
        let mut sql = format!(
            "ALTER TABLE {only}{qtable}\n    ADD CONSTRAINT {qname} {};\n",
            row.val::<String>("def")?
        );
        let kind = if foreign {
            ObjectKind::ForeignKey
        } else {
            ObjectKind::Constraint
        };
        let name = format!(
            "{} {}",
            row.val::<String>("relname")?,
            row.val::<String>("conname")?
        );
        let mut obj = Obj::new(kind, Section::PostData, name, String::new())
            .schema(row.val::<String>("nspname")?)
            .owner(row.val::<String>("owner")?)
            .creates(
                class::CONSTRAINT,
                row.val("oid")?,
                "CONSTRAINT",
                format!("{qname} ON {qtable}"),
            )
            .after(oref(class::CLASS, row.val("conrelid")?));
        if !foreign {
            if let (Some(qindex), Some(qrel)) = (
                row.val::<Option<String>>("qindex")?,
                row.val::<Option<String>>("qindexrel")?,
            ) {
                sql.push_str(&index_settings(
                    &qtable,
                    &qrel,
                    row.val("indisclustered")?,
                    row.val("indisreplident")?,
                ));
                obj = obj.creates(class::CLASS, row.val("conindid")?, "INDEX", qindex);
            }
        }
        obj.sql = sql;
        out.push(obj);
    }
    Ok(())
}
