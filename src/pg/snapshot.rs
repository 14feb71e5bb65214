//! The consistent-snapshot protocol of a parallel backup.
//!
//! The leader opens `REPEATABLE READ READ ONLY`, exports its snapshot, takes
//! `ACCESS SHARE` locks on everything it will dump (under a lock timeout, so
//! conflicting DDL fails the backup early instead of queueing behind it) and
//! holds them until the backup ends. Workers import the snapshot with
//! `SET TRANSACTION SNAPSHOT` and take `LOCK ... NOWAIT` on each table before
//! copying it: if someone is queued for an exclusive lock, waiting would
//! deadlock against the leader, so the backup fails instead (as pg_dump does).

use super::wire::{CopyOut, WireConn};
use super::{connect, qualified, CancelHandle, Conn};
use crate::config::ConnSettings;
use crate::error::{Error, Result};
use std::time::Duration;

/// Settings every pgkeep session uses, so COPY text is portable and names
/// are always schema-qualified.
pub async fn session_setup(conn: &Conn, encoding: Option<&str>) -> Result<()> {
    conn.client
        .batch_execute(&session_sql(encoding))
        .await
        .map_err(Error::db(SETUP))
}

const SETUP: &str = "setting up the session";

/// The statements of [`session_setup`].
fn session_sql(encoding: Option<&str>) -> String {
    let mut sql = String::from(
        "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; \
         SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; \
         SET standard_conforming_strings = on; SET row_security = off; \
         SELECT pg_catalog.set_config('search_path', '', false);",
    );
    if let Some(enc) = encoding {
        sql.push_str(&format!(
            " SET client_encoding = {};",
            super::quote_literal(enc)
        ));
    }
    sql
}

/// The connection that owns the snapshot and the locks.
pub struct Leader {
    pub conn: Conn,
    pub snapshot: String,
}

impl Leader {
    /// Connects, opens the snapshot transaction and exports it.
    pub async fn begin(settings: &ConnSettings) -> Result<Leader> {
        let conn = connect(settings).await?;
        session_setup(&conn, None).await?;
        conn.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(Error::db("starting the snapshot transaction"))?;
        let row = conn
            .client
            .query_one("SELECT pg_catalog.pg_export_snapshot()", &[])
            .await
            .map_err(Error::db("exporting the snapshot"))?;
        let snapshot: String = row
            .try_get(0)
            .map_err(Error::db("exporting the snapshot"))?;
        Ok(Leader { conn, snapshot })
    }

    /// Takes `ACCESS SHARE` locks on `tables` (schema, name), waiting at most
    /// `timeout` for each.
    pub async fn lock_tables(&self, tables: &[(String, String)], timeout: Duration) -> Result<()> {
        self.conn
            .client
            .batch_execute(&format!(
                "SET LOCAL lock_timeout = '{}ms'",
                timeout.as_millis()
            ))
            .await
            .map_err(Error::db("setting lock_timeout"))?;
        for (schema, name) in tables {
            let sql = format!(
                "LOCK TABLE ONLY {} IN ACCESS SHARE MODE",
                qualified(schema, name)
            );
            if let Err(e) = self.conn.client.batch_execute(&sql).await {
                let context = format!("locking {schema}.{name}");
                return Err(lock_error(schema, name, Error::db(context)(e), timeout));
            }
        }
        Ok(())
    }

    /// Ends the transaction, releasing locks and the snapshot.
    pub async fn finish(self) -> Result<()> {
        self.conn
            .client
            .batch_execute("COMMIT")
            .await
            .map_err(Error::db("ending the snapshot transaction"))
    }
}

/// A failed `LOCK` as a conflict the user can act on, when it is one.
fn lock_error(schema: &str, name: &str, e: Error, timeout: Duration) -> Error {
    match e.sqlstate() {
        Some("42P01") => Error::Conflict(format!(
            "table {schema}.{name} was dropped while the backup started; run the backup again"
        )),
        Some("55P03") => Error::Conflict(format!(
            "table {schema}.{name} is locked by another session (waited {} ms for ACCESS SHARE); \
             a concurrent ALTER/DROP/TRUNCATE/VACUUM FULL holds it — retry later or raise --lock-timeout",
            timeout.as_millis()
        )),
        _ => e,
    }
}

/// A worker connection inside the leader's snapshot: pgkeep's own wire
/// connection, whose COPY rows go to the framer without a copy per row.
pub struct Worker {
    conn: WireConn,
}

impl Worker {
    pub async fn join(settings: &ConnSettings, snapshot: &str, encoding: &str) -> Result<Worker> {
        let mut conn = WireConn::connect(settings).await?;
        conn.simple(&session_sql(Some(encoding)), SETUP).await?;
        conn.simple(
            &format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
                super::quote_literal(snapshot)
            ),
            "importing the backup snapshot",
        )
        .await?;
        Ok(Worker { conn })
    }

    /// What cancels this worker's running COPY from another task.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle::Wire(self.conn.cancel_key())
    }

    /// `LOCK ... NOWAIT` before copying a table.
    pub async fn lock_nowait(&mut self, schema: &str, name: &str) -> Result<()> {
        let sql = format!(
            "LOCK TABLE ONLY {} IN ACCESS SHARE MODE NOWAIT",
            qualified(schema, name)
        );
        let context = format!("locking {schema}.{name}");
        self.conn
            .simple(&sql, &context)
            .await
            .map_err(|e| lock_error(schema, name, e, Duration::ZERO))
    }

    /// Starts a `COPY ... TO STDOUT` in the snapshot.
    pub async fn copy_out<'a>(&'a mut self, sql: &str, context: &'a str) -> Result<CopyOut<'a>> {
        self.conn.copy_out(sql, context).await
    }

    pub async fn finish(mut self) -> Result<()> {
        self.conn
            .simple("COMMIT", "ending a worker transaction")
            .await?;
        self.conn.close().await;
        Ok(())
    }
}
