//! User-defined encoding conversions (`CREATE [DEFAULT] CONVERSION`).

use super::obj::{class, Obj};
use super::sql::{fill_query, query, RowExt};
use super::toc::ObjectKind;
use super::Ctx;
use crate::error::Result;

const CONVERSIONS: &str = "SELECT c.oid, n.nspname, c.conname::text AS name, \
  pg_catalog.format('%I.%I', n.nspname, c.conname) AS qname, {owner}, c.condefault, \
  pg_catalog.pg_encoding_to_char(c.conforencoding) AS src, \
  pg_catalog.pg_encoding_to_char(c.contoencoding) AS dst, \
  c.conproc::pg_catalog.regproc::text AS func \
  FROM pg_catalog.pg_conversion c JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace \
  WHERE {user} AND {ext} AND c.oid >= 16384 ORDER BY n.nspname, c.conname";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = fill_query(CONVERSIONS, "c.conowner", "pg_conversion", "c.oid");
    for row in query(ctx.client, "conversions", &sql, &[]).await? {
        let schema: String = row.val("nspname")?;
        if !ctx.filter.schema_objects(&schema) {
            continue;
        }
        let qname: String = row.val("qname")?;
        let default = if row.val::<bool>("condefault")? {
            "DEFAULT "
        } else {
            ""
        };
        let sql = format!(
            "CREATE {default}CONVERSION {qname} FOR {} TO {} FROM {};\nALTER CONVERSION {qname} OWNER TO {};\n",
            super::sql::quote_literal(&row.val::<String>("src")?),
            super::sql::quote_literal(&row.val::<String>("dst")?),
            row.val::<String>("func")?,
            row.val::<String>("qowner")?
        );
        out.push(Obj::in_schema(ObjectKind::Conversion, &row, sql)?.creates(
            class::CONVERSION,
            row.val("oid")?,
            "CONVERSION",
            qname,
        ));
    }
    Ok(())
}
