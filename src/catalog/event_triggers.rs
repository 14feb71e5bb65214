//! Event triggers: last in post-data, so they do not fire during the
//! restore itself. Dumped only for whole-database backups.

use super::obj::{class, Obj};
use super::sql::{enabled_state, not_extension_member, owner_columns, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    if !ctx.filter.whole_database() {
        return Ok(());
    }
    let sql = format!(
        "SELECT e.oid, e.evtname::text AS evtname, pg_catalog.quote_ident(e.evtname) AS qname, \
         e.evtevent::text AS event, {owner}, e.evtfoid::pg_catalog.regproc::text AS func, \
         e.evtenabled::text AS enabled, \
         (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(t), ', ') \
            FROM pg_catalog.unnest(e.evttags) t) AS tags \
         FROM pg_catalog.pg_event_trigger e WHERE {ext} ORDER BY e.evtname",
        owner = owner_columns("e.evtowner"),
        ext = not_extension_member("pg_event_trigger", "e.oid"),
    );
    for row in query(ctx.client, "event triggers", &sql, &[]).await? {
        let qname: String = row.val("qname")?;
        let mut sql = format!(
            "CREATE EVENT TRIGGER {qname} ON {}",
            row.val::<String>("event")?
        );
        if let Some(tags) = row.val::<Option<String>>("tags")? {
            sql.push_str(&format!("\n    WHEN TAG IN ({tags})"));
        }
        sql.push_str(&format!(
            "\n    EXECUTE FUNCTION {}();\nALTER EVENT TRIGGER {qname} OWNER TO {};\n",
            row.val::<String>("func")?,
            row.val::<String>("qowner")?
        ));
        if let Some(state) = enabled_state(&row.val::<String>("enabled")?) {
            sql.push_str(&format!("ALTER EVENT TRIGGER {qname} {state};\n"));
        }
        out.push(
            Obj::new(
                ObjectKind::EventTrigger,
                Section::PostData,
                row.val::<String>("evtname")?,
                sql,
            )
            .owner(row.val::<String>("owner")?)
            .creates(
                class::EVENT_TRIGGER,
                row.val("oid")?,
                "EVENT TRIGGER",
                qname,
            ),
        );
    }
    Ok(())
}
