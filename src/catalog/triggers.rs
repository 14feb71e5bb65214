//! Triggers (`pg_get_triggerdef`) with their enabled state. Internal
//! triggers (foreign keys) and triggers cloned onto partitions are left out
//! (the parent's creates them), except for a clone whose enabled state
//! differs from its parent's: an `ALTER TABLE ... TRIGGER` entry sets it,
//! after the parent's trigger.

use super::obj::{class, oref, Obj};
use super::sql::{enabled_state, owner_columns, query, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

const TRIGGERS: &str = "SELECT t.oid, t.tgrelid, t.tgname::text AS tgname, \
  pg_catalog.quote_ident(t.tgname) AS qname, pg_catalog.pg_get_triggerdef(t.oid) AS def, \
  t.tgenabled::text AS enabled, n.nspname, c.relname, \
  pg_catalog.format('%I.%I', n.nspname, c.relname) AS qtable, {owner} \
  FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE t.tgrelid = ANY($1) AND NOT t.tgisinternal AND t.tgparentid = 0 \
  ORDER BY n.nspname, c.relname, t.tgname";

/// Pseudo catalog id for the address of a clone's state entry.
const CLONE_STATE: u32 = 1;

/// Clones on partitions whose enabled state differs from their parent's
/// (before 15 a clone is marked internal, like a foreign key's triggers,
/// which are left out by their constraint).
/// `root`: the trigger the clone descends from, on the top partitioned
/// table (its entry creates every clone).
const CLONE_STATES: &str = "WITH RECURSIVE up(oid, anc) AS ( \
    SELECT t.oid, t.tgparentid FROM pg_catalog.pg_trigger t WHERE t.tgparentid <> 0 \
    UNION ALL SELECT up.oid, p.tgparentid FROM up JOIN pg_catalog.pg_trigger p ON p.oid = up.anc \
    WHERE p.tgparentid <> 0) \
  SELECT t.oid, t.tgrelid, t.tgparentid, t.tgname::text AS tgname, \
  (SELECT u.anc FROM up u JOIN pg_catalog.pg_trigger r ON r.oid = u.anc \
     WHERE u.oid = t.oid AND r.tgparentid = 0) AS root, \
  pg_catalog.quote_ident(t.tgname) AS qname, t.tgenabled::text AS enabled, n.nspname, c.relname, \
  pg_catalog.format('%I.%I', n.nspname, c.relname) AS qtable, {owner} \
  FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_trigger p ON p.oid = t.tgparentid \
  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  WHERE t.tgrelid = ANY($1) AND t.tgenabled <> p.tgenabled \
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.oid = t.tgconstraint AND k.contype = 'f') \
  ORDER BY n.nspname, c.relname, t.tgname";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    clone_states(ctx, out).await?;
    let sql = TRIGGERS.replace("{owner}", &owner_columns("c.relowner"));
    for row in query(ctx.client, "triggers", &sql, &[&ctx.rel_oids]).await? {
        let qname: String = row.val("qname")?;
        let qtable: String = row.val("qtable")?;
        let mut sql = format!("{};\n", row.val::<String>("def")?);
        if let Some(state) = enabled_state(&row.val::<String>("enabled")?) {
            sql.push_str(&format!("ALTER TABLE {qtable} {state} TRIGGER {qname};\n"));
        }
        out.push(trigger_entry(&row, sql)?.creates(
            class::TRIGGER,
            row.val("oid")?,
            "TRIGGER",
            format!("{qname} ON {qtable}"),
        ));
    }
    Ok(())
}

async fn clone_states(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    let sql = CLONE_STATES.replace("{owner}", &owner_columns("c.relowner"));
    for row in query(
        ctx.client,
        "trigger states on partitions",
        &sql,
        &[&ctx.rel_oids],
    )
    .await?
    {
        let state = match row.val::<String>("enabled")?.as_str() {
            "D" => "DISABLE",
            "A" => "ENABLE ALWAYS",
            "R" => "ENABLE REPLICA",
            _ => "ENABLE",
        };
        let sql = format!(
            "ALTER TABLE ONLY {} {state} TRIGGER {};\n",
            row.val::<String>("qtable")?,
            row.val::<String>("qname")?
        );
        // After the trigger that creates the clone, and after the state
        // entry of the clone's parent when it has one: `ONLY`, so none of
        // them changes another's.
        out.push(
            trigger_entry(&row, sql)?
                .owns(oref(CLONE_STATE, row.val("oid")?), None)
                .after(oref(CLONE_STATE, row.val("tgparentid")?))
                .after(oref(
                    class::TRIGGER,
                    row.val::<Option<u32>>("root")?.unwrap_or(0),
                )),
        );
    }
    Ok(())
}

/// A trigger entry on the row's table (`relname tgname`), after the table.
fn trigger_entry(row: &tokio_postgres::Row, sql: String) -> Result<Obj> {
    let name = format!(
        "{} {}",
        row.val::<String>("relname")?,
        row.val::<String>("tgname")?
    );
    Ok(Obj::new(ObjectKind::Trigger, Section::PostData, name, sql)
        .schema(row.val::<String>("nspname")?)
        .owner(row.val::<String>("owner")?)
        .after(oref(class::CLASS, row.val("tgrelid")?)))
}
