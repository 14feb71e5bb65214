//! Resuming an interrupted restore (`--resume`). Every restore but a
//! `--single-transaction` one records in the target what it finished, in
//! the table `pgkeep_restore.done`, inside the same transaction as the work
//! itself: each pre-data, data-section and post-data entry, and each data
//! stream as its unit commits. An interrupted restore leaves the table
//! behind; `--resume` skips what it lists, so no statement runs twice and no
//! row is loaded twice (a unit that did not commit left nothing), and the
//! schema is dropped once the restore has finished without a failure.

use crate::error::{Error, Result};
use crate::pg::Conn;
use std::collections::HashSet;

/// The schema holding the state while a restore runs.
pub const SCHEMA: &str = "pgkeep_restore";

/// What an interrupted restore finished.
#[derive(Debug, Default)]
pub struct Done(HashSet<String>);

impl Done {
    pub fn entry(&self, id: u32) -> bool {
        self.0.contains(&entry_mark(id))
    }

    pub fn stream(&self, id: u32) -> bool {
        self.0.contains(&stream_mark(id))
    }
}

pub fn entry_mark(id: u32) -> String {
    format!("e{id}")
}

pub fn stream_mark(id: u32) -> String {
    format!("s{id}")
}

/// Statements recording `items` as done, appended to the work's own batch
/// (one implicit transaction), as the restoring role.
pub fn mark_sql(items: &[String], switched_role: bool) -> String {
    let values: Vec<String> = items.iter().map(|i| format!("('{i}')")).collect();
    format!(
        "{}INSERT INTO {SCHEMA}.done (item) VALUES {};\n",
        if switched_role {
            "RESET SESSION AUTHORIZATION;\n"
        } else {
            ""
        },
        values.join(", ")
    )
}

/// Starts recording a restore of `backup_id` into the connected database.
pub async fn begin(conn: &Conn, backup_id: &str) -> Result<()> {
    conn.client
        .batch_execute(&format!(
            "CREATE SCHEMA {SCHEMA};\n\
             CREATE TABLE {SCHEMA}.done (item text PRIMARY KEY);\n\
             INSERT INTO {SCHEMA}.done (item) VALUES ({});\n\
             COMMENT ON SCHEMA {SCHEMA} IS 'pgkeep: state of a restore in progress or interrupted (pgkeep restore --resume continues it)';",
            crate::pg::quote_literal(&format!("backup:{backup_id}"))
        ))
        .await
        .map_err(Error::db("recording the restore's progress in the target"))
}

/// Whether the connected database holds a restore's state.
pub async fn present(conn: &Conn) -> Result<bool> {
    conn.client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
            &[&SCHEMA],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(Error::db("looking for an interrupted restore"))
}

/// What the interrupted restore of `backup_id` finished; refuses a target
/// without one, or with one of another backup.
pub async fn load(conn: &Conn, backup_id: &str) -> Result<Done> {
    if !present(conn).await? {
        return Err(Error::Refused(
            "--resume: the target holds no interrupted restore (no pgkeep_restore schema); restore without --resume".into(),
        ));
    }
    let rows = conn
        .client
        .query(&format!("SELECT item FROM {SCHEMA}.done"), &[])
        .await
        .map_err(Error::db("reading the interrupted restore's progress"))?;
    let mut done = HashSet::new();
    for r in rows {
        done.insert(
            r.try_get::<_, String>(0)
                .map_err(Error::db("reading the interrupted restore's progress"))?,
        );
    }
    let want = format!("backup:{backup_id}");
    if !done.contains(&want) {
        let other = done
            .iter()
            .find_map(|i| i.strip_prefix("backup:"))
            .unwrap_or("unknown");
        return Err(Error::Refused(format!(
            "--resume: the target holds an interrupted restore of backup {other}, not {backup_id}; resume that one, or start over with --clean"
        )));
    }
    Ok(Done(done))
}

/// Drops the state once the restore has finished.
pub async fn finish(conn: &Conn) -> Result<()> {
    conn.client
        .batch_execute(&format!("DROP SCHEMA {SCHEMA} CASCADE"))
        .await
        .map_err(Error::db("removing the restore's progress from the target"))
}
