//! User-defined access methods (`CREATE ACCESS METHOD ... TYPE TABLE|INDEX
//! HANDLER`), database-wide like pg_dump's. Tables and indexes `USING` one
//! depend on it through `pg_depend`.

use super::obj::{class, Obj};
use super::sql::{not_extension_member, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

const ACCESS_METHODS: &str = "SELECT a.oid, a.amname::text AS name, \
  pg_catalog.quote_ident(a.amname) AS qname, a.amtype::text AS amtype, \
  a.amhandler::pg_catalog.regproc::text AS handler \
  FROM pg_catalog.pg_am a WHERE a.oid >= 16384 AND {ext} ORDER BY a.amname";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    if !ctx.filter.whole_database() {
        return Ok(());
    }
    let sql = ACCESS_METHODS.replace("{ext}", &not_extension_member("pg_am", "a.oid"));
    for row in query(ctx.client, "access methods", &sql, &[]).await? {
        let qname: String = row.val("qname")?;
        let kind = match row.val::<String>("amtype")?.as_str() {
            "t" => "TABLE",
            _ => "INDEX",
        };
        let sql = format!(
            "CREATE ACCESS METHOD {qname} TYPE {kind} HANDLER {};\n",
            row.val::<String>("handler")?
        );
        out.push(
            Obj::new(
                ObjectKind::AccessMethod,
                Section::PreData,
                row.val::<String>("name")?,
                sql,
            )
            .creates(class::AM, row.val("oid")?, "ACCESS METHOD", qname),
        );
    }
    Ok(())
}
