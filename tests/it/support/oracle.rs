//! Oracles: what a database holds, in comparable form — per-table row
//! digests, sequence values, large objects, RLS flags and policies — and
//! [`assert_same_database`], which compares two databases on all of them
//! plus `pg_dump --schema-only`.
//!
//! Queries run with pinned output settings (UTC, ISO dates, hex bytea) and
//! `row_security = off`, so a digest never silently skips rows.

use std::collections::BTreeMap;
use std::fmt::Debug;

use tokio_postgres::Client;

use super::TestCluster;

/// Session settings that make `row::text` deterministic.
const PINNED_SETTINGS: &str = "SET row_security = off; SET TimeZone = 'UTC'; \
    SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
    SET extra_float_digits = 1; SET bytea_output = 'hex'";

/// User relations (not system, not extension members) of the given kinds:
/// (display name `schema.rel`, quoted name, relkind, populated).
const USER_RELATIONS: &str = "SELECT n.nspname || '.' || c.relname, \
        quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
        c.relkind::text, c.relispopulated \
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind::text = ANY($1::text[]) \
      AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' \
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                      AND d.objid = c.oid AND d.deptype = 'e') \
    ORDER BY 1";

/// Row-level security as the catalogs show it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RlsState {
    /// `schema.table` → (relrowsecurity, relforcerowsecurity), for tables
    /// with either flag set.
    pub tables: BTreeMap<String, (bool, bool)>,
    /// `schema.table.policy` → "permissive cmd roles using check".
    pub policies: BTreeMap<String, String>,
}

impl TestCluster {
    async fn oracle_client(&self, db: &str) -> Client {
        let client = self.client(db).await;
        client.batch_execute(PINNED_SETTINGS).await.unwrap();
        client
    }

    /// Every user table (incl. partitions, unlogged and inheritance children,
    /// each read with `ONLY`) and materialized view → (row count,
    /// order-independent md5 of its rows). An unpopulated materialized view
    /// is `(-1, "not populated")`.
    pub async fn table_digests(&self, db: &str) -> BTreeMap<String, (i64, String)> {
        let client = self.oracle_client(db).await;
        let kinds = vec!["r".to_owned(), "m".to_owned()];
        let mut out = BTreeMap::new();
        for rel in client.query(USER_RELATIONS, &[&kinds]).await.unwrap() {
            let (name, quoted): (String, String) = (rel.get(0), rel.get(1));
            let digest = if rel.get::<_, bool>(3) {
                let sql = format!(
                    "SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h COLLATE \"C\"), '')) \
                     FROM (SELECT md5(t::text) AS h FROM ONLY {quoted} t) s"
                );
                let row = client.query_one(&sql, &[]).await.unwrap();
                (row.get(0), row.get(1))
            } else {
                (-1, "not populated".to_owned())
            };
            out.insert(name, digest);
        }
        out
    }

    /// Every user sequence (incl. identity and serial ones) → (last_value,
    /// is_called).
    pub async fn sequence_values(&self, db: &str) -> BTreeMap<String, (i64, bool)> {
        let client = self.oracle_client(db).await;
        let kinds = vec!["S".to_owned()];
        let mut out = BTreeMap::new();
        for rel in client.query(USER_RELATIONS, &[&kinds]).await.unwrap() {
            let quoted: String = rel.get(1);
            let sql = format!("SELECT last_value, is_called FROM {quoted}");
            let row = client.query_one(&sql, &[]).await.unwrap();
            out.insert(rel.get(0), (row.get(0), row.get(1)));
        }
        out
    }

    /// Large object oid → md5 of its contents.
    pub async fn large_objects(&self, db: &str) -> BTreeMap<u32, String> {
        self.oid_map(
            db,
            "SELECT oid, md5(lo_get(oid)) FROM pg_largeobject_metadata",
        )
        .await
    }

    /// Large object oid → "owner=… acl=… comment=…" (not in a schema dump).
    pub async fn large_object_meta(&self, db: &str) -> BTreeMap<u32, String> {
        self.oid_map(
            db,
            "SELECT oid, format('owner=%s acl=%s comment=%s', pg_get_userbyid(lomowner), \
                lomacl, obj_description(oid, 'pg_largeobject')) \
             FROM pg_largeobject_metadata",
        )
        .await
    }

    async fn oid_map(&self, db: &str, sql: &str) -> BTreeMap<u32, String> {
        let client = self.oracle_client(db).await;
        let rows = client.query(sql, &[]).await.unwrap();
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    }

    /// RLS flags of user tables and every policy.
    pub async fn rls_state(&self, db: &str) -> RlsState {
        let client = self.oracle_client(db).await;
        let kinds = vec!["r".to_owned(), "p".to_owned()];
        let flagged = format!(
            "SELECT r.name, c.relrowsecurity, c.relforcerowsecurity \
             FROM ({USER_RELATIONS}) r(name, quoted, kind, populated) \
             JOIN pg_class c ON c.oid = r.quoted::regclass \
             WHERE c.relrowsecurity OR c.relforcerowsecurity"
        );
        let tables = client.query(&flagged, &[&kinds]).await.unwrap();
        let policies = client
            .query(
                "SELECT schemaname || '.' || tablename || '.' || policyname, \
                    format('%s %s roles=%s using=%s check=%s', permissive, cmd, roles, qual, with_check) \
                 FROM pg_policies",
                &[],
            )
            .await
            .unwrap();
        RlsState {
            tables: tables
                .iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2))))
                .collect(),
            policies: policies.iter().map(|r| (r.get(0), r.get(1))).collect(),
        }
    }
}

/// Assert that `dst_db` holds the same schema (`pg_dump --schema-only`),
/// table data, sequence values, large objects (contents and metadata) and
/// RLS state as `src_db`; on failure, show only what differs.
pub async fn assert_same_database(cluster: &TestCluster, src_db: &str, dst_db: &str) {
    let mut problems = Vec::new();
    let (src, dst) = (
        cluster.pg_dump_schema(src_db),
        cluster.pg_dump_schema(dst_db),
    );
    if src != dst {
        problems.push(format!("schema dumps differ:\n{}", line_diff(&src, &dst)));
    }
    problems.extend(map_diff(
        "table digests",
        &cluster.table_digests(src_db).await,
        &cluster.table_digests(dst_db).await,
    ));
    problems.extend(map_diff(
        "sequence values",
        &cluster.sequence_values(src_db).await,
        &cluster.sequence_values(dst_db).await,
    ));
    problems.extend(map_diff(
        "large objects",
        &cluster.large_objects(src_db).await,
        &cluster.large_objects(dst_db).await,
    ));
    problems.extend(map_diff(
        "large object metadata",
        &cluster.large_object_meta(src_db).await,
        &cluster.large_object_meta(dst_db).await,
    ));
    let (src_rls, dst_rls) = (
        cluster.rls_state(src_db).await,
        cluster.rls_state(dst_db).await,
    );
    problems.extend(map_diff("RLS flags", &src_rls.tables, &dst_rls.tables));
    problems.extend(map_diff(
        "RLS policies",
        &src_rls.policies,
        &dst_rls.policies,
    ));
    assert!(
        problems.is_empty(),
        "database {dst_db} differs from {src_db}:\n{}",
        problems.join("\n")
    );
}

/// The entries that differ between two maps, one line each; `None` if equal.
pub fn map_diff<K: Ord + Debug, V: PartialEq + Debug>(
    what: &str,
    src: &BTreeMap<K, V>,
    dst: &BTreeMap<K, V>,
) -> Option<String> {
    let mut lines = Vec::new();
    for (k, v) in src {
        match dst.get(k) {
            None => lines.push(format!("  - {k:?}: {v:?} (missing in dst)")),
            Some(w) if w != v => lines.push(format!("  ~ {k:?}: src {v:?} != dst {w:?}")),
            _ => {}
        }
    }
    for (k, w) in dst.iter().filter(|(k, _)| !src.contains_key(k)) {
        lines.push(format!("  + {k:?}: {w:?} (only in dst)"));
    }
    (!lines.is_empty()).then(|| format!("{what} differ:\n{}", lines.join("\n")))
}

/// A unified diff (src → dst) with 3 lines of context.
pub fn line_diff(src: &str, dst: &str) -> String {
    similar::TextDiff::from_lines(src, dst)
        .unified_diff()
        .context_radius(3)
        .header("src", "dst")
        .to_string()
}
