//! Indexes not backing a constraint (`pg_get_indexdef`), `CLUSTER ON` and
//! `REPLICA IDENTITY USING INDEX` settings, and the `ALTER INDEX ... ATTACH
//! PARTITION` entries that link partition indexes (constraint-backed or not)
//! to the index of their partitioned parent.

use super::obj::{class, oref, Obj};
use super::sql::{owner_columns, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;
use std::collections::HashMap;

const INDEXES: &str = "SELECT i.indexrelid AS oid, i.indrelid, n.nspname, ic.relname, \
  pg_catalog.format('%I.%I', n.nspname, ic.relname) AS qname, pg_catalog.quote_ident(ic.relname) AS qrel, \
  pg_catalog.format('%I.%I', tn.nspname, t.relname) AS qtable, {owner}, \
  pg_catalog.pg_get_indexdef(i.indexrelid) AS def, i.indisclustered, i.indisreplident, \
  (SELECT h.inhparent FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid LIMIT 1) AS parent_index, \
  EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
    AND d.objid = i.indexrelid AND d.refclassid = 'pg_catalog.pg_constraint'::pg_catalog.regclass \
    AND d.deptype = 'i') AS constraint_index \
  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
  JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace \
  JOIN pg_catalog.pg_class t ON t.oid = i.indrelid JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace \
  WHERE i.indrelid = ANY($1) AND (i.indisvalid OR t.relkind = 'p') \
  ORDER BY n.nspname, ic.relname";

/// `CLUSTER ON` / `REPLICA IDENTITY USING INDEX` for an index (by its
/// unqualified quoted name) on `qtable`.
pub fn index_settings(qtable: &str, qindex: &str, clustered: bool, replident: bool) -> String {
    let mut s = String::new();
    if clustered {
        s.push_str(&format!("ALTER TABLE {qtable} CLUSTER ON {qindex};\n"));
    }
    if replident {
        s.push_str(&format!(
            "ALTER TABLE ONLY {qtable} REPLICA IDENTITY USING INDEX {qindex};\n"
        ));
    }
    s
}

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = INDEXES.replace("{owner}", &owner_columns("t.relowner"));
    let rows = query(ctx.client, "indexes", &sql, &[&ctx.rel_oids]).await?;
    let mut names = HashMap::new();
    for row in &rows {
        names.insert(row.val::<u32>("oid")?, row.val::<String>("qname")?);
    }
    for row in &rows {
        let oid: u32 = row.val("oid")?;
        let schema: String = row.val("nspname")?;
        let name: String = row.val("relname")?;
        let qname: String = row.val("qname")?;
        let owner: String = row.val("owner")?;
        if !row.val::<bool>("constraint_index")? {
            let qtable: String = row.val("qtable")?;
            let mut sql = format!("{};\n", row.val::<String>("def")?);
            sql.push_str(&index_settings(
                &qtable,
                &row.val::<String>("qrel")?,
                row.val("indisclustered")?,
                row.val("indisreplident")?,
            ));
            out.push(
                Obj::new(ObjectKind::Index, Section::PostData, name.clone(), sql)
                    .schema(schema.clone())
                    .owner(owner.clone())
                    .creates(class::CLASS, oid, "INDEX", qname.clone())
                    .after(oref(class::CLASS, row.val("indrelid")?)),
            );
        }
        let parent: Option<u32> = row.val("parent_index")?;
        if let Some((parent, qparent)) = parent.and_then(|p| names.get(&p).map(|q| (p, q))) {
            let sql = format!("ALTER INDEX {qparent} ATTACH PARTITION {qname};\n");
            out.push(
                Obj::new(ObjectKind::IndexAttach, Section::PostData, name, sql)
                    .schema(schema)
                    .owner(owner)
                    .after(oref(class::CLASS, parent))
                    .after(oref(class::CLASS, oid)),
            );
        }
    }
    Ok(())
}
