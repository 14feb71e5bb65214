//! Foreign-data objects outside schemas: foreign-data wrappers (those not
//! created by an extension), servers and user mappings. Foreign tables are
//! in `tables.rs`. Dumped only for whole-database backups.

use super::obj::{class, oref, Obj};
use super::sql::{acl_columns, fdw_options, not_extension_member, owner_columns, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

fn with_opts(sql: &mut String, options: Option<String>) {
    if let Some(o) = options {
        sql.push_str(&format!(" OPTIONS ({o})"));
    }
}

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    if !ctx.filter.whole_database() {
        return Ok(());
    }
    let sql = format!(
        "SELECT w.oid, w.fdwname::text AS name, pg_catalog.quote_ident(w.fdwname) AS qname, {owner}, {acl}, \
         CASE WHEN w.fdwhandler <> 0 THEN w.fdwhandler::pg_catalog.regproc::text END AS handler, \
         CASE WHEN w.fdwvalidator <> 0 THEN w.fdwvalidator::pg_catalog.regproc::text END AS validator, \
         {opts} AS options FROM pg_catalog.pg_foreign_data_wrapper w WHERE {ext} ORDER BY w.fdwname",
        owner = owner_columns("w.fdwowner"),
        acl = acl_columns("w.fdwacl", 'F', "w.fdwowner", "pg_foreign_data_wrapper", "w.oid"),
        opts = fdw_options("w.fdwoptions"),
        ext = not_extension_member("pg_foreign_data_wrapper", "w.oid"),
    );
    for row in query(ctx.client, "foreign-data wrappers", &sql, &[]).await? {
        let qname: String = row.val("qname")?;
        let mut sql = format!("CREATE FOREIGN DATA WRAPPER {qname}");
        if let Some(h) = row.val::<Option<String>>("handler")? {
            sql.push_str(&format!(" HANDLER {h}"));
        }
        if let Some(v) = row.val::<Option<String>>("validator")? {
            sql.push_str(&format!(" VALIDATOR {v}"));
        }
        with_opts(&mut sql, row.val("options")?);
        sql.push_str(&format!(
            ";\nALTER FOREIGN DATA WRAPPER {qname} OWNER TO {};\n",
            row.val::<String>("qowner")?
        ));
        let owner: String = row.val("owner")?;
        out.push(
            Obj::new(
                ObjectKind::ForeignDataWrapper,
                Section::PreData,
                row.val::<String>("name")?,
                sql,
            )
            .owner(owner.clone())
            .creates(
                class::FOREIGN_DATA_WRAPPER,
                row.val("oid")?,
                "FOREIGN DATA WRAPPER",
                qname.clone(),
            )
            .grants(&row, "FOREIGN DATA WRAPPER", qname)?,
        );
    }
    let sql = format!(
        "SELECT s.oid, s.srvname::text AS name, pg_catalog.quote_ident(s.srvname) AS qname, {owner}, {acl}, \
         pg_catalog.quote_ident(w.fdwname) AS fdw, s.srvtype, s.srvversion, {opts} AS options \
         FROM pg_catalog.pg_foreign_server s JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw \
         WHERE {ext} ORDER BY s.srvname",
        owner = owner_columns("s.srvowner"),
        acl = acl_columns("s.srvacl", 'S', "s.srvowner", "pg_foreign_server", "s.oid"),
        opts = fdw_options("s.srvoptions"),
        ext = not_extension_member("pg_foreign_server", "s.oid"),
    );
    for row in query(ctx.client, "foreign servers", &sql, &[]).await? {
        let qname: String = row.val("qname")?;
        let mut sql = format!("CREATE SERVER {qname}");
        if let Some(t) = row.val::<Option<String>>("srvtype")? {
            sql.push_str(&format!(" TYPE {}", super::sql::quote_literal(&t)));
        }
        if let Some(v) = row.val::<Option<String>>("srvversion")? {
            sql.push_str(&format!(" VERSION {}", super::sql::quote_literal(&v)));
        }
        sql.push_str(&format!(
            " FOREIGN DATA WRAPPER {}",
            row.val::<String>("fdw")?
        ));
        with_opts(&mut sql, row.val("options")?);
        sql.push_str(&format!(
            ";\nALTER SERVER {qname} OWNER TO {};\n",
            row.val::<String>("qowner")?
        ));
        let owner: String = row.val("owner")?;
        out.push(
            Obj::new(
                ObjectKind::ForeignServer,
                Section::PreData,
                row.val::<String>("name")?,
                sql,
            )
            .owner(owner.clone())
            .creates(
                class::FOREIGN_SERVER,
                row.val("oid")?,
                "SERVER",
                qname.clone(),
            )
            .grants(&row, "FOREIGN SERVER", qname)?,
        );
    }
    let sql = format!(
        "SELECT u.umid, u.srvid, u.srvname::text AS srvname, pg_catalog.quote_ident(u.srvname) AS qserver, \
         u.umuser, u.usename::text AS usename, pg_catalog.quote_ident(u.usename) AS quser, {opts} AS options \
         FROM pg_catalog.pg_user_mappings u ORDER BY u.srvname, u.usename",
        opts = fdw_options("u.umoptions"),
    );
    for row in query(ctx.client, "user mappings", &sql, &[]).await? {
        let user = if row.val::<u32>("umuser")? == 0 {
            "PUBLIC".to_string()
        } else {
            row.val::<String>("quser")?
        };
        let mut sql = format!(
            "CREATE USER MAPPING FOR {user} SERVER {}",
            row.val::<String>("qserver")?
        );
        with_opts(&mut sql, row.val("options")?);
        sql.push_str(";\n");
        let name = format!(
            "{} {}",
            row.val::<String>("usename")?,
            row.val::<String>("srvname")?
        );
        let mut obj = Obj::new(ObjectKind::UserMapping, Section::PreData, name, sql)
            .owns(oref(class::USER_MAPPING, row.val("umid")?), None)
            .after(oref(class::FOREIGN_SERVER, row.val("srvid")?));
        obj.drop = Some(format!(
            "DROP USER MAPPING IF EXISTS FOR {user} SERVER {};\n",
            row.val::<String>("qserver")?
        ));
        out.push(obj);
    }
    Ok(())
}
