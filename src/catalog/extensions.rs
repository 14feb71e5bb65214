//! Extensions: `CREATE EXTENSION IF NOT EXISTS ... WITH SCHEMA`. Their member
//! objects are left out of every other reader; extensions created by initdb
//! (plpgsql) are not dumped.

use super::obj::{class, oref, target, Obj};
use super::sql::{query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

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
            Obj::new(ObjectKind::Extension, Section::PreData, name, sql).owns(
                oref(class::EXTENSION, row.val("oid")?),
                target("EXTENSION", qname),
            ),
        );
    }
    Ok(())
}
