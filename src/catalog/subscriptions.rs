//! Logical-replication subscriptions, restored as pg_dump restores them:
//! created with `connect = false` (so disabled, and no slot is created or
//! used on the publisher) and the source's slot name recorded, to be
//! enabled by hand. The connection string keeps everything but its
//! password, which never goes into a backup (set it again with `ALTER
//! SUBSCRIPTION ... CONNECTION`). Reading a connection string needs a
//! superuser: without one, subscriptions are left out with a warning, as
//! pg_dump does.

use super::obj::{class, Obj};
use super::sql::{query, quote_ident, quote_literal, RowExt};
use super::toc::{ObjectKind, Section};
use super::Ctx;
use crate::error::Result;

const SUBSCRIPTIONS: &str = "SELECT s.oid, s.subname::text AS name, \
  pg_catalog.quote_ident(s.subname) AS qname, {owner}, s.subconninfo AS conninfo, \
  s.subslotname::text AS slot, s.subpublications::text[] AS publications, \
  s.subsynccommit AS synccommit, pg_catalog.to_jsonb(s) AS facts \
  FROM pg_catalog.pg_subscription s \
  WHERE s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()) \
  ORDER BY s.subname";

pub async fn read(ctx: &Ctx<'_>, out: &mut Vec<Obj>) -> Result<()> {
    if !ctx.filter.whole_database() {
        return Ok(());
    }
    let allowed: bool = query(
        ctx.client,
        "subscription privileges",
        "SELECT pg_catalog.has_column_privilege('pg_catalog.pg_subscription', 'subconninfo', 'SELECT') \
         OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_subscription) AS allowed",
        &[],
    )
    .await?
    .first()
    .map(|r| r.val::<bool>("allowed"))
    .transpose()?
    .unwrap_or(false);
    if !allowed {
        tracing::warn!(
            "subscriptions left out: reading their connection strings needs a superuser"
        );
        return Ok(());
    }
    let sql = SUBSCRIPTIONS.replace("{owner}", &super::sql::owner_columns("s.subowner"));
    for row in query(ctx.client, "subscriptions", &sql, &[]).await? {
        let qname: String = row.val("qname")?;
        let conninfo: String = row.val("conninfo")?;
        let kept = crate::redact::strip_conninfo_password(&conninfo);
        if kept != conninfo.trim() {
            tracing::warn!(subscription = %row.val::<String>("name")?, "the subscription's password is left out of the backup; set it after a restore");
        }
        let pubs: Vec<String> = row.val("publications")?;
        let facts: serde_json::Value = row.val("facts")?;
        let mut with = vec!["connect = false".to_string()];
        with.push(match row.val::<Option<String>>("slot")? {
            Some(s) => format!("slot_name = {}", quote_literal(&s)),
            None => "slot_name = NONE".to_string(),
        });
        with.extend(options(&facts));
        let sync: String = row.val("synccommit")?;
        if sync != "off" {
            with.push(format!("synchronous_commit = {}", quote_literal(&sync)));
        }
        let sql = format!(
            "CREATE SUBSCRIPTION {qname} CONNECTION {} PUBLICATION {} WITH ({});\nALTER SUBSCRIPTION {qname} OWNER TO {};\n",
            quote_literal(&kept),
            pubs.iter().map(|p| quote_ident(p)).collect::<Vec<_>>().join(", "),
            with.join(", "),
            row.val::<String>("qowner")?
        );
        let mut obj = Obj::new(
            ObjectKind::Subscription,
            Section::PostData,
            row.val::<String>("name")?,
            sql,
        )
        .owner(row.val::<String>("owner")?)
        .creates(
            class::SUBSCRIPTION,
            row.val("oid")?,
            "SUBSCRIPTION",
            qname.clone(),
        );
        // A subscription with a slot cannot be dropped without reaching the
        // publisher: detach the slot first.
        obj.drop = Some(format!(
            "DO $pgkeep_sub$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = {name} \
             AND subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())) THEN \
             EXECUTE {disable}; EXECUTE {detach}; END IF; END $pgkeep_sub$;\nDROP SUBSCRIPTION IF EXISTS {qname};\n",
            name = quote_literal(&row.val::<String>("name")?),
            disable = quote_literal(&format!("ALTER SUBSCRIPTION {qname} DISABLE")),
            detach = quote_literal(&format!("ALTER SUBSCRIPTION {qname} SET (slot_name = NONE)")),
        ));
        out.push(obj);
    }
    Ok(())
}

/// The version-dependent options that differ from their defaults.
fn options(facts: &serde_json::Value) -> Vec<String> {
    let get = |k: &str| {
        facts.get(k).and_then(|v| match v {
            serde_json::Value::Bool(b) => Some(if *b { "t".to_string() } else { "f".to_string() }),
            serde_json::Value::String(s) => Some(s.clone()),
            _ => None,
        })
    };
    let mut o = Vec::new();
    if get("subbinary").as_deref() == Some("t") {
        o.push("binary = true".to_string());
    }
    match get("substream").as_deref() {
        Some("t") => o.push("streaming = on".to_string()),
        Some("p") => o.push("streaming = parallel".to_string()),
        _ => {}
    }
    if get("subtwophasestate").is_some_and(|s| s != "d") {
        o.push("two_phase = on".to_string());
    }
    if get("subdisableonerr").as_deref() == Some("t") {
        o.push("disable_on_error = true".to_string());
    }
    if get("subpasswordrequired").as_deref() == Some("f") {
        o.push("password_required = false".to_string());
    }
    if get("subrunasowner").as_deref() == Some("t") {
        o.push("run_as_owner = true".to_string());
    }
    if get("suborigin").is_some_and(|s| s.eq_ignore_ascii_case("none")) {
        o.push("origin = none".to_string());
    }
    if get("subfailover").as_deref() == Some("t") {
        o.push("failover = true".to_string());
    }
    o
}

#[cfg(test)]
mod tests {
    use super::options;

    #[test]
    fn options_follow_the_catalog_of_each_major() {
        // 14: booleans; 16+: streaming as a letter, origin, password_required.
        let v14 = serde_json::json!({"subbinary": true, "substream": true});
        assert_eq!(options(&v14), ["binary = true", "streaming = on"]);
        let v17 = serde_json::json!({"subbinary": false, "substream": "p", "subtwophasestate": "p",
            "subdisableonerr": true, "subpasswordrequired": false, "subrunasowner": false,
            "suborigin": "none", "subfailover": true});
        assert_eq!(
            options(&v17),
            [
                "streaming = parallel",
                "two_phase = on",
                "disable_on_error = true",
                "password_required = false",
                "origin = none",
                "failover = true"
            ]
        );
        assert!(options(&serde_json::json!({})).is_empty());
    }
}
