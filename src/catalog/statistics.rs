//! Extended statistics objects (`CREATE STATISTICS`), post-data, with their
//! statistics target.

use super::obj::{class, oref, Obj};
use super::sql::{not_extension_member, owner_columns, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = format!(
        "SELECT s.oid, s.stxrelid, n.nspname, s.stxname::text AS stxname, \
         pg_catalog.format('%I.%I', n.nspname, s.stxname) AS qname, {owner}, \
         pg_catalog.pg_get_statisticsobjdef(s.oid) AS def, \
         (pg_catalog.to_jsonb(s)->>'stxstattarget')::int AS stattarget \
         FROM pg_catalog.pg_statistic_ext s JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace \
         WHERE s.stxrelid = ANY($1) AND {ext} ORDER BY n.nspname, s.stxname",
        owner = owner_columns("s.stxowner"),
        ext = not_extension_member("pg_statistic_ext", "s.oid"),
    );
    for row in query(ctx.client, "statistics objects", &sql, &[&ctx.rel_oids]).await? {
        let qname: String = row.val("qname")?;
        let mut sql = format!(
            "{};\nALTER STATISTICS {qname} OWNER TO {};\n",
            row.val::<String>("def")?,
            row.val::<String>("qowner")?
        );
        if let Some(n) = row.val::<Option<i32>>("stattarget")?.filter(|n| *n >= 0) {
            sql.push_str(&format!("ALTER STATISTICS {qname} SET STATISTICS {n};\n"));
        }
        out.push(
            Obj::new(
                ObjectKind::Statistics,
                Section::PostData,
                row.val::<String>("stxname")?,
                sql,
            )
            .schema(row.val::<String>("nspname")?)
            .owner(row.val::<String>("owner")?)
            .creates(class::STATISTIC_EXT, row.val("oid")?, "STATISTICS", qname)
            .after(oref(class::CLASS, row.val("stxrelid")?)),
        );
    }
    Ok(())
}
