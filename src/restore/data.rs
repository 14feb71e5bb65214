//! Loading one data stream: verified frames from the archive reader are fed
//! to `COPY ... FROM STDIN` inside a transaction that commits only after the
//! whole stream checked out (hashes, frame count, rows). A table restored
//! from a single stream takes the fast path: `TRUNCATE` + `COPY ... FREEZE`
//! in one transaction (no later hint-bit or freeze work, and no WAL for the
//! data when `wal_level = minimal`).

use crate::archive::reader::read_stream;
use crate::archive::Manifest;
use crate::catalog::{ObjectKind, TableData};
use crate::error::{Error, Result};
use crate::pg::{qualified, quote_ident, Conn};
use crate::progress::Progress;
use crate::store::Repo;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;

/// One stream to load and how.
#[derive(Clone, Debug)]
pub struct Unit {
    pub stream_index: usize,
    pub kind: ObjectKind,
    pub table: TableData,
    /// The table has no other stream: use the TRUNCATE + FREEZE path.
    pub freeze: bool,
    pub label: String,
    pub stored_bytes: u64,
    pub rows: u64,
}

pub struct LoadContext {
    pub repo: Repo,
    pub manifest: Arc<Manifest>,
    pub read_ahead: usize,
    pub max_read: u64,
    pub progress: Arc<dyn Progress>,
}

fn copy_target(t: &TableData) -> String {
    let table = qualified(&t.schema, &t.name);
    if t.columns.is_empty() {
        table
    } else {
        let cols: Vec<String> = t.columns.iter().map(|c| quote_ident(c)).collect();
        format!("{table} ({})", cols.join(", "))
    }
}

/// Loads one unit; returns the rows the server loaded.
pub async fn load_unit(conn: &Conn, unit: &Unit, ctx: &LoadContext, stream_id: u32) -> Result<u64> {
    let ctx_err = |what: &str| Error::db(format!("{what} {}", unit.label));
    let (prelude, copy_sql, epilogue) = match unit.kind {
        ObjectKind::LargeObjectData => (
            "CREATE TEMP TABLE pgkeep_lo (loid pg_catalog.oid, data pg_catalog.bytea) ON COMMIT DROP".to_string(),
            "COPY pgkeep_lo (loid, data) FROM STDIN".to_string(),
            Some("SELECT pg_catalog.lo_put(loid, 0, data) FROM pgkeep_lo".to_string()),
        ),
        _ if unit.freeze => (
            format!("TRUNCATE ONLY {}", qualified(&unit.table.schema, &unit.table.name)),
            format!("COPY {} FROM STDIN WITH (FREEZE)", copy_target(&unit.table)),
            None,
        ),
        _ => (String::new(), format!("COPY {} FROM STDIN", copy_target(&unit.table)), None),
    };
    conn.client
        .batch_execute("BEGIN")
        .await
        .map_err(ctx_err("starting the load of"))?;
    if !prelude.is_empty() {
        conn.client
            .batch_execute(&prelude)
            .await
            .map_err(ctx_err("preparing"))?;
    }
    let sink = conn
        .client
        .copy_in::<_, bytes::Bytes>(&copy_sql)
        .await
        .map_err(ctx_err("starting COPY into"))?;
    futures::pin_mut!(sink);
    let frames = read_stream(
        ctx.repo.clone(),
        ctx.manifest.clone(),
        unit.stream_index,
        ctx.read_ahead,
        ctx.max_read,
    );
    futures::pin_mut!(frames);
    while let Some(chunk) = frames.next().await {
        // An archive error drops the sink: the server gets CopyFail and the
        // transaction rolls back, so nothing unverified is committed.
        let chunk = chunk?;
        if chunk.is_empty() {
            continue;
        }
        let n = chunk.len() as u64;
        sink.send(chunk)
            .await
            .map_err(ctx_err("sending data for"))?;
        ctx.progress.stream_advanced(stream_id, n, 0);
    }
    let loaded = sink
        .as_mut()
        .finish()
        .await
        .map_err(ctx_err("completing COPY into"))?;
    if let Some(sql) = epilogue {
        conn.client
            .batch_execute(&sql)
            .await
            .map_err(ctx_err("finishing"))?;
    }
    if loaded != unit.rows {
        let _ = conn.client.batch_execute("ROLLBACK").await;
        return Err(Error::Verification(format!(
            "{}: server loaded {loaded} rows, the backup holds {}",
            unit.label, unit.rows
        )));
    }
    conn.client
        .batch_execute("COMMIT")
        .await
        .map_err(ctx_err("committing"))?;
    Ok(loaded)
}
