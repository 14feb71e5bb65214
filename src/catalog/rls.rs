//! Row-level security as facts: which tables have RLS enabled or forced,
//! and each one's policies in a comparable form. A backup records them in
//! its manifest (read inside its snapshot); a drill reads the same facts
//! from the restored copy with the same query and compares.

use super::sql::{query, user_schema, RowExt};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

/// A table with row-level security on, or with policies.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RlsTable {
    /// `schema.table`, each part quoted as SQL needs it.
    pub table: String,
    pub enabled: bool,
    pub forced: bool,
    /// By name.
    pub policies: Vec<PolicyFact>,
}

/// One policy as the catalog describes it (expressions deparsed with an
/// empty `search_path`, so names are qualified the same way in any
/// database).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PolicyFact {
    pub name: String,
    pub permissive: bool,
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    pub command: String,
    /// Role names; `PUBLIC` for everyone.
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub using: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_check: Option<String>,
}

impl std::fmt::Display for PolicyFact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} FOR {} TO {}",
            self.name,
            if self.permissive {
                "PERMISSIVE"
            } else {
                "RESTRICTIVE"
            },
            self.command,
            self.roles.join(", ")
        )?;
        if let Some(u) = &self.using {
            write!(f, " USING ({u})")?;
        }
        if let Some(c) = &self.with_check {
            write!(f, " WITH CHECK ({c})")?;
        }
        Ok(())
    }
}

/// The RLS facts of the tables `rel_oids` (all user tables with `None`),
/// ordered by table and policy name. Expressions are deparsed with an
/// empty `search_path`; the session's own is put back afterwards (works
/// inside the backup's snapshot transaction too).
pub async fn read(client: &Client, rel_oids: Option<&[u32]>) -> Result<Vec<RlsTable>> {
    let saved: String = client
        .query_one("SELECT pg_catalog.current_setting('search_path')", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(Error::db("reading search_path"))?;
    client
        .batch_execute("SELECT pg_catalog.set_config('search_path', '', false)")
        .await
        .map_err(Error::db("setting search_path"))?;
    let facts = read_facts(client, rel_oids).await;
    client
        .execute(
            "SELECT pg_catalog.set_config('search_path', $1, false)",
            &[&saved],
        )
        .await
        .map_err(Error::db("restoring search_path"))?;
    facts
}

async fn read_facts(client: &Client, rel_oids: Option<&[u32]>) -> Result<Vec<RlsTable>> {
    let sql = format!(
        "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS qtable, \
           c.relrowsecurity, c.relforcerowsecurity, p.polname::text AS polname, p.polpermissive, \
           p.polcmd::text AS cmd, \
           (SELECT pg_catalog.array_agg(CASE WHEN r.role = 0 THEN 'PUBLIC' \
              ELSE pg_catalog.pg_get_userbyid(r.role)::text END ORDER BY r.ord) \
              FROM pg_catalog.unnest(p.polroles) WITH ORDINALITY AS r(role, ord)) AS roles, \
           pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual, \
           pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS withcheck \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_catalog.pg_policy p ON p.polrelid = c.oid \
         WHERE c.relkind IN ('r', 'p') AND {user} \
           AND ($1::pg_catalog.oid[] IS NULL OR c.oid = ANY($1)) \
           AND (c.relrowsecurity OR c.relforcerowsecurity OR p.oid IS NOT NULL) \
         ORDER BY n.nspname, c.relname, p.polname",
        user = user_schema("n")
    );
    let oids: Option<Vec<u32>> = rel_oids.map(<[u32]>::to_vec);
    let mut out: Vec<RlsTable> = Vec::new();
    for row in query(client, "row-level security", &sql, &[&oids]).await? {
        let table: String = row.val("qtable")?;
        if out.last().is_none_or(|t| t.table != table) {
            out.push(RlsTable {
                table,
                enabled: row.val("relrowsecurity")?,
                forced: row.val("relforcerowsecurity")?,
                policies: Vec::new(),
            });
        }
        let Some(name) = row.val::<Option<String>>("polname")? else {
            continue;
        };
        let command = match row.val::<String>("cmd")?.as_str() {
            "r" => "SELECT",
            "a" => "INSERT",
            "w" => "UPDATE",
            "d" => "DELETE",
            _ => "ALL",
        };
        let policy = PolicyFact {
            name,
            permissive: row.val("polpermissive")?,
            command: command.into(),
            roles: row.val::<Option<Vec<String>>>("roles")?.unwrap_or_default(),
            using: row.val("qual")?,
            with_check: row.val("withcheck")?,
        };
        if let Some(t) = out.last_mut() {
            t.policies.push(policy);
        }
    }
    Ok(out)
}

/// How `copy` differs from `source`: one line per difference (a table
/// whose RLS or FORCE flag differs in the copy, a policy missing, extra or
/// changed). Empty when the copy has RLS exactly as the source had it.
pub fn differences(source: &[RlsTable], copy: &[RlsTable]) -> Vec<String> {
    use std::collections::BTreeMap;
    let by_table = |ts: &[RlsTable]| -> BTreeMap<String, RlsTable> {
        ts.iter().map(|t| (t.table.clone(), t.clone())).collect()
    };
    let (src, dst) = (by_table(source), by_table(copy));
    let mut out = Vec::new();
    let none = RlsTable {
        table: String::new(),
        enabled: false,
        forced: false,
        policies: Vec::new(),
    };
    for (name, s) in &src {
        let d = dst.get(name).unwrap_or(&none);
        let on = |b: bool| if b { "on" } else { "off" };
        if s.enabled != d.enabled {
            out.push(format!(
                "{name}: row-level security is {} in the copy, {} in the source",
                on(d.enabled),
                on(s.enabled)
            ));
        }
        if s.forced != d.forced {
            out.push(format!(
                "{name}: FORCE ROW LEVEL SECURITY is {} in the copy, {} in the source",
                on(d.forced),
                on(s.forced)
            ));
        }
        let policies = |t: &RlsTable| -> BTreeMap<String, PolicyFact> {
            t.policies
                .iter()
                .map(|p| (p.name.clone(), p.clone()))
                .collect()
        };
        let (sp, dp) = (policies(s), policies(d));
        for (pname, p) in &sp {
            match dp.get(pname) {
                None => out.push(format!("{name}: policy {pname:?} is missing in the copy")),
                Some(q) if q != p => out.push(format!(
                    "{name}: policy {pname:?} differs: source {p}; copy {q}"
                )),
                Some(_) => {}
            }
        }
        for pname in dp.keys().filter(|n| !sp.contains_key(*n)) {
            out.push(format!(
                "{name}: policy {pname:?} is in the copy but not in the source"
            ));
        }
    }
    for (name, d) in dst.iter().filter(|(n, _)| !src.contains_key(*n)) {
        if d.enabled || d.forced || !d.policies.is_empty() {
            out.push(format!(
                "{name}: row-level security or policies in the copy that the source did not have"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, enabled: bool, forced: bool, policies: &[&str]) -> RlsTable {
        RlsTable {
            table: name.into(),
            enabled,
            forced,
            policies: policies
                .iter()
                .map(|p| PolicyFact {
                    name: (*p).into(),
                    permissive: true,
                    command: "ALL".into(),
                    roles: vec!["PUBLIC".into()],
                    using: Some("(tenant = 1)".into()),
                    with_check: None,
                })
                .collect(),
        }
    }

    #[test]
    fn equal_facts_have_no_difference_and_each_loss_is_named() {
        let src = vec![
            table("public.a", true, true, &["p1", "p2"]),
            table("public.b", true, false, &[]),
        ];
        assert!(differences(&src, &src).is_empty());
        let copy = vec![
            table("public.a", true, false, &["p1"]),
            table("public.c", false, false, &["x"]),
        ];
        let d = differences(&src, &copy);
        assert_eq!(d.len(), 4, "{d:#?}");
        assert!(d[0]
            .contains("public.a: FORCE ROW LEVEL SECURITY is off in the copy, on in the source"));
        assert!(d[1].contains("\"p2\" is missing"));
        assert!(d[2].contains("public.b: row-level security is off in the copy"));
        assert!(d[3].contains("public.c"));
        // A flag turned on in the copy is a difference too.
        let mut more = src.clone();
        more[1].forced = true;
        assert_eq!(differences(&src, &more).len(), 1);
        let mut changed = src.clone();
        changed[0].policies[0].using = Some("true".into());
        let d = differences(&src, &changed);
        assert_eq!(d.len(), 1);
        assert!(
            d[0].contains("differs") && d[0].contains("USING (true)"),
            "{d:?}"
        );
    }
}
