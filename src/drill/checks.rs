//! A drill's checks of the restored copy, each recorded with its name,
//! outcome, measured value and duration: row counts against the manifest,
//! `non_empty` tables, row-level security as the source had it, the
//! policy's SQL checks (read-only), and the hash chains.

use crate::archive::Manifest;
use crate::catalog::{rls, ObjectKind};
use crate::chain::{verify_live, StreamFilter};
use crate::config::policy::DrillCheck;
use crate::config::{ChainDef, ConnSettings};
use crate::error::{Error, Result};
use crate::pg::{connect, quote_ident, Conn};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    Passed,
    Failed,
}

/// One check of a drill, as its proof records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    /// `row_counts`, `non_empty`, `rls`, `sql`, `chains`, `command`, `rto`,
    /// `rpo`, `integrity`.
    pub kind: String,
    pub outcome: CheckOutcome,
    /// What was measured (`12 tables, 10400 rows`, `3`, `exit 0`).
    pub value: String,
    /// What the policy asked for, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// Why it failed, one line per finding (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    pub duration_ms: u64,
}

/// At most this many findings are kept per check.
const MAX_DETAILS: usize = 50;

impl CheckResult {
    pub fn new(name: impl Into<String>, kind: &str, t0: Instant) -> CheckResult {
        CheckResult {
            name: name.into(),
            kind: kind.into(),
            outcome: CheckOutcome::Passed,
            value: String::new(),
            expected: None,
            details: Vec::new(),
            duration_ms: t0.elapsed().as_millis() as u64,
        }
    }

    pub fn passed(&self) -> bool {
        self.outcome == CheckOutcome::Passed
    }

    /// Sets the value; failed when `details` has findings.
    fn with(mut self, value: String, mut details: Vec<String>) -> CheckResult {
        self.value = value;
        if !details.is_empty() {
            self.outcome = CheckOutcome::Failed;
            let n = details.len();
            if n > MAX_DETAILS {
                details.truncate(MAX_DETAILS);
                details.push(format!("... and {} more", n - MAX_DETAILS));
            }
        }
        self.details = details;
        self
    }

    pub fn fail(mut self, value: String, detail: String) -> CheckResult {
        self.outcome = CheckOutcome::Failed;
        self.value = value;
        self.details = vec![detail];
        self
    }

    fn timed(mut self, t0: Instant) -> CheckResult {
        self.duration_ms = t0.elapsed().as_millis() as u64;
        self
    }
}

/// A table with data in the backup: its name and the rows the manifest
/// recorded.
#[derive(Clone, Debug)]
struct DataTable {
    schema: String,
    name: String,
    rows: u64,
}

impl DataTable {
    fn display(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

fn data_tables(manifest: &Manifest) -> Vec<DataTable> {
    let mut rows: HashMap<u32, u64> = HashMap::new();
    for s in &manifest.body.streams {
        *rows.entry(s.toc_id).or_default() += s.rows;
    }
    manifest
        .body
        .toc
        .iter()
        .filter(|e| e.kind == ObjectKind::TableData)
        .filter_map(|e| {
            let d = e.data.as_ref()?;
            Some(DataTable {
                schema: d.schema.clone(),
                name: d.name.clone(),
                rows: rows.get(&e.id).copied().unwrap_or(0),
            })
        })
        .collect()
}

/// Row counts of the copy, `schema.table` → rows, counted over `jobs`
/// connections (`ONLY`, each table's own rows, as its stream holds them;
/// with `row_security = off`, so a policy hiding rows is an error, never a
/// smaller count).
pub async fn count_rows(
    db: &ConnSettings,
    manifest: &Manifest,
    jobs: usize,
) -> Result<BTreeMap<String, i64>> {
    let tables = data_tables(manifest);
    let n = jobs.max(1).min(tables.len().max(1));
    let mut groups: Vec<Vec<DataTable>> = vec![Vec::new(); n];
    for (i, t) in tables.into_iter().enumerate() {
        groups[i % n].push(t);
    }
    let counts = futures::future::try_join_all(groups.into_iter().map(|group| async move {
        let conn = connect(db).await?;
        conn.client
            .batch_execute("SET row_security = off")
            .await
            .map_err(Error::db("setting row_security"))?;
        let mut out = Vec::with_capacity(group.len());
        for t in group {
            let sql = format!(
                "SELECT count(*) FROM ONLY {}.{}",
                quote_ident(&t.schema),
                quote_ident(&t.name)
            );
            let n: i64 = conn
                .client
                .query_one(&sql, &[])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(Error::db(format!("counting rows of {}", t.display())))?;
            out.push((t.display(), n));
        }
        Ok::<_, Error>(out)
    }))
    .await?;
    Ok(counts.into_iter().flatten().collect())
}

/// Every table's rows in the copy equal the manifest's.
pub fn row_counts(
    manifest: &Manifest,
    counted: &BTreeMap<String, i64>,
    t0: Instant,
) -> CheckResult {
    let tables = data_tables(manifest);
    let mut details = Vec::new();
    for t in &tables {
        let name = t.display();
        match counted.get(&name) {
            Some(&n) if u64::try_from(n).ok() == Some(t.rows) => {}
            Some(&n) => details.push(format!(
                "{name}: {n} rows in the copy, {} in the backup",
                t.rows
            )),
            None => details.push(format!("{name}: not counted in the copy")),
        }
    }
    let total: u64 = tables.iter().map(|t| t.rows).sum();
    CheckResult::new("row counts", "row_counts", t0)
        .with(format!("{} tables, {total} rows", tables.len()), details)
        .timed(t0)
}

/// Resolves a `non_empty` name (`Event`, `audit.Event`) to a counted
/// table: an exact `schema.table`, else the one table of that name (in
/// `public` when several schemas have one).
pub(crate) fn find<'a>(
    name: &str,
    counted: &'a BTreeMap<String, i64>,
) -> Option<(&'a String, i64)> {
    if let Some(hit) = counted.get_key_value(name) {
        return Some((hit.0, *hit.1));
    }
    let matches: Vec<(&String, &i64)> = counted
        .iter()
        .filter(|(k, _)| k.split_once('.').is_some_and(|(_, t)| t == name))
        .collect();
    match matches.as_slice() {
        [one] => Some((one.0, *one.1)),
        _ => matches
            .iter()
            .find(|(k, _)| k.starts_with("public."))
            .map(|(k, v)| (*k, **v)),
    }
}

/// Each `non_empty` table has rows in the copy.
pub fn non_empty(
    names: &[String],
    counted: &BTreeMap<String, i64>,
    t0: Instant,
) -> Vec<CheckResult> {
    names
        .iter()
        .map(|name| {
            let c = CheckResult::new(format!("non-empty {name}"), "non_empty", t0);
            let mut c = match find(name, counted) {
                Some((_, n)) if n > 0 => c.with(n.to_string(), vec![]),
                Some((table, n)) => {
                    c.fail(n.to_string(), format!("{table} has no rows in the copy"))
                }
                None => c.fail(
                    "absent".into(),
                    format!("{name} is not a table with data in the backup"),
                ),
            };
            c.expected = Some("> 0".into());
            c
        })
        .collect()
}

/// RLS flags and policies of the copy equal the source's (as recorded in
/// the manifest).
pub async fn rls_as_source(conn: &Conn, manifest: &Manifest) -> Result<CheckResult> {
    let t0 = Instant::now();
    let c = CheckResult::new("row-level security as in the source", "rls", t0);
    let Some(source) = &manifest.body.rls else {
        return Ok(c.fail(
            "unknown".into(),
            "the backup has no record of its row-level security (taken by an older pgkeep); drill a newer backup".into(),
        ));
    };
    let copy = rls::read(&conn.client, None).await?;
    let policies: usize = source.iter().map(|t| t.policies.len()).sum();
    let value = format!(
        "{} tables with RLS ({} forced), {policies} policies",
        source.iter().filter(|t| t.enabled).count(),
        source.iter().filter(|t| t.forced).count()
    );
    Ok(c.with(value, rls::differences(source, &copy)).timed(t0))
}

/// The policy's SQL checks, each one statement in a read-only
/// transaction; the value is the first column of the first row, as text.
pub async fn sql_checks(conn: &Conn, checks: &[DrillCheck]) -> Result<Vec<CheckResult>> {
    let mut out = Vec::with_capacity(checks.len());
    for check in checks {
        let t0 = Instant::now();
        let expect = check.expectation().map_err(Error::Config)?;
        let mut c = CheckResult::new(check.name.clone(), "sql", t0);
        c.expected = Some(expect.to_string());
        conn.client
            .batch_execute("BEGIN TRANSACTION READ ONLY")
            .await
            .map_err(Error::db("starting a read-only transaction"))?;
        // Prepared first: the server refuses several statements in one, so
        // a check cannot end the read-only transaction and go on writing.
        // Then run as a simple query, which returns every type as text.
        let result = match conn.client.prepare(&check.sql).await {
            Ok(_) => conn.client.simple_query(&check.sql).await,
            Err(e) => Err(e),
        };
        conn.client
            .batch_execute("ROLLBACK")
            .await
            .map_err(Error::db("ending a read-only transaction"))?;
        let c = match result {
            Ok(messages) => {
                let value = messages.iter().find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        Some(r.get(0).map(str::to_string))
                    }
                    _ => None,
                });
                let shown = match &value {
                    None => "no row".to_string(),
                    Some(None) => "NULL".to_string(),
                    Some(Some(v)) => v.clone(),
                };
                if expect.holds(value.flatten().as_deref()) {
                    c.with(shown, vec![])
                } else {
                    c.fail(shown.clone(), format!("got {shown}, expected {expect}"))
                }
            }
            Err(e) => c.fail(
                "error".into(),
                crate::redact::redact(&Error::db("running the check")(e).to_string()),
            ),
        };
        out.push(c.timed(t0));
    }
    Ok(out)
}

/// The policy's hash chains verified in the copy.
pub async fn chains(db: &ConnSettings, defs: &[ChainDef]) -> Result<CheckResult> {
    let t0 = Instant::now();
    let c = CheckResult::new("hash chains", "chains", t0);
    if defs.is_empty() {
        return Ok(c.fail(
            "none".into(),
            "verify_chains is set but the policy has no [[chain]] table".into(),
        ));
    }
    let report = verify_live(db, defs, &StreamFilter::All).await?;
    let details = report
        .chains
        .iter()
        .flat_map(|ch| {
            ch.failures.iter().map(move |f| {
                format!(
                    "{} stream {} seq {}: {:?}: expected {}, found {}",
                    ch.table,
                    f.stream,
                    f.seq.map_or("-".to_string(), |s| s.to_string()),
                    f.check,
                    f.expected,
                    f.found
                )
            })
        })
        .collect();
    Ok(c.with(
        format!(
            "{} tables, {} streams, {} events, {} broken",
            report.chains.len(),
            report.streams,
            report.events,
            report.broken
        ),
        details,
    )
    .timed(t0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_empty_names_resolve_by_schema_or_alone() {
        let counted: BTreeMap<String, i64> = [
            ("public.Event".to_string(), 3),
            ("audit.Event".to_string(), 0),
            ("audit.Log".to_string(), 0),
            ("public.User".to_string(), 2),
        ]
        .into();
        let t0 = Instant::now();
        let names: Vec<String> = ["Event", "audit.Event", "Log", "User", "Missing"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = non_empty(&names, &counted, t0);
        let outcomes: Vec<bool> = r.iter().map(CheckResult::passed).collect();
        assert_eq!(outcomes, [true, false, false, true, false]);
        assert_eq!(r[0].value, "3", "ambiguous names mean the public table");
        assert!(r[2].details[0].contains("audit.Log has no rows"));
        assert!(r[4].details[0].contains("not a table with data"));
    }

    #[test]
    fn findings_are_bounded() {
        let c = CheckResult::new("x", "row_counts", Instant::now())
            .with("v".into(), (0..80).map(|i| i.to_string()).collect());
        assert!(!c.passed());
        assert_eq!(c.details.len(), MAX_DETAILS + 1);
        assert!(c.details[MAX_DETAILS].contains("30 more"));
    }
}
