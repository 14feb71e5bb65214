//! Loading data: verified frames from the archive reader are fed to
//! `COPY ... FROM STDIN` inside a transaction that commits only after every
//! stream of the unit checked out (hashes, frame count, rows). A unit that
//! holds a whole table takes the fast path: `TRUNCATE` + `COPY ... FREEZE`
//! in one transaction (no later hint-bit or freeze work, and no WAL for the
//! data when `wal_level = minimal`). A returned error leaves the transaction
//! open; the caller drops the connection, which rolls it back.

use crate::archive::stream::read_stream;
use crate::archive::Manifest;
use crate::catalog::{ObjectKind, TableData};
use crate::error::{Error, Result};
use crate::pg::{copy, qualified, Conn};
use crate::pipeline::FrameBuffers;
use crate::progress::Progress;
use crate::store::Repo;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;

/// One stream of a unit.
#[derive(Clone, Debug)]
pub struct UnitStream {
    pub index: usize,
    pub id: u32,
    pub rows: u64,
    pub plain_bytes: u64,
    pub label: String,
}

/// What one transaction loads: a whole table (all its streams, in order)
/// or one slice of a table whose slices load in parallel.
#[derive(Clone, Debug)]
pub struct Unit {
    /// The data entry it loads (part of).
    pub toc_id: u32,
    pub kind: ObjectKind,
    pub table: TableData,
    pub streams: Vec<UnitStream>,
    /// The unit holds the whole table: TRUNCATE + COPY FREEZE in one transaction.
    pub freeze: bool,
    pub stored_bytes: u64,
}

pub struct LoadContext {
    pub repo: Repo,
    pub manifest: Arc<Manifest>,
    pub read_ahead: usize,
    pub max_read: u64,
    /// Frame buffers shared by every stream being loaded.
    pub bufs: FrameBuffers,
    pub progress: Arc<dyn Progress>,
    /// Units load inside the restore's one transaction
    /// (`--single-transaction`): no BEGIN/COMMIT of their own.
    pub in_transaction: bool,
    /// Record each unit's streams as done when it commits (`--resume`).
    pub mark: bool,
}

/// Loads one unit in one transaction; returns the rows the server loaded.
pub async fn load_unit(conn: &Conn, unit: &Unit, ctx: &LoadContext) -> Result<u64> {
    let label = unit
        .streams
        .first()
        .map(|s| s.label.as_str())
        .unwrap_or("?");
    let ctx_err = |what: &str| Error::db(format!("{what} {label}"));
    let t = &unit.table;
    let (prelude, copy_sql, epilogue) = match unit.kind {
        ObjectKind::LargeObjectData => {
            let (before, copy, after) = copy::large_objects_in(t.columns.len());
            (before, copy, Some(after))
        }
        _ if unit.freeze => (
            format!("TRUNCATE ONLY {}", qualified(&t.schema, &t.name)),
            copy::table_in(&t.schema, &t.name, &t.columns, true),
            None,
        ),
        _ => (
            String::new(),
            copy::table_in(&t.schema, &t.name, &t.columns, false),
            None,
        ),
    };
    if !ctx.in_transaction {
        conn.client
            .batch_execute("BEGIN")
            .await
            .map_err(ctx_err("starting the load of"))?;
    }
    if !prelude.is_empty() {
        conn.client
            .batch_execute(&prelude)
            .await
            .map_err(ctx_err("preparing"))?;
    }
    let mut total = 0;
    for s in &unit.streams {
        ctx.progress.stream_started(s.id, &s.label, s.plain_bytes);
        total += copy_stream(conn, &copy_sql, s, ctx).await?;
        ctx.progress.stream_finished(s.id, s.rows, s.plain_bytes);
    }
    if let Some(sql) = epilogue {
        conn.client
            .batch_execute(&sql)
            .await
            .map_err(ctx_err("finishing"))?;
    }
    if ctx.mark {
        let marks: Vec<String> = unit
            .streams
            .iter()
            .map(|s| super::resume::stream_mark(s.id))
            .collect();
        conn.client
            .batch_execute(&super::resume::mark_sql(&marks, false))
            .await
            .map_err(ctx_err("recording the progress of"))?;
    }
    if !ctx.in_transaction {
        conn.client
            .batch_execute("COMMIT")
            .await
            .map_err(ctx_err("committing"))?;
        crate::failpoint::hit("restore-data-unit");
    }
    Ok(total)
}

/// COPY data goes to the server in pieces of at most this size (slices of
/// the frame, no copy): the driver copies each message into its
/// connection's write buffer, which keeps its size, so a whole frame per
/// message would hold another frame of memory per connection.
const COPY_PIECE: usize = 128 * 1024;

/// One COPY FROM of one stream, inside the caller's transaction; fails
/// unless the server loaded exactly the rows the backup holds.
async fn copy_stream(
    conn: &Conn,
    copy_sql: &str,
    s: &UnitStream,
    ctx: &LoadContext,
) -> Result<u64> {
    let ctx_err = |what: &str| Error::db(format!("{what} {}", s.label));
    let sink = conn
        .client
        .copy_in::<_, bytes::Bytes>(copy_sql)
        .await
        .map_err(ctx_err("starting COPY into"))?;
    futures::pin_mut!(sink);
    let frames = read_stream(
        ctx.repo.clone(),
        ctx.manifest.clone(),
        s.index,
        ctx.read_ahead,
        ctx.max_read,
        ctx.bufs.clone(),
    );
    futures::pin_mut!(frames);
    while let Some(chunk) = frames.next().await {
        // An archive error drops the sink: the server gets CopyFail and the
        // transaction rolls back, so nothing unverified is committed.
        let chunk = chunk?;
        if chunk.bytes.is_empty() {
            continue;
        }
        let (n, rows) = (chunk.bytes.len() as u64, u64::from(chunk.rows));
        let mut rest = chunk.bytes;
        while !rest.is_empty() {
            let piece = rest.split_to(rest.len().min(COPY_PIECE));
            sink.feed(piece)
                .await
                .map_err(ctx_err("sending data for"))?;
        }
        ctx.progress.stream_advanced(s.id, n, rows);
    }
    let loaded = sink
        .as_mut()
        .finish()
        .await
        .map_err(ctx_err("completing COPY into"))?;
    if loaded != s.rows {
        return Err(Error::Verification(format!(
            "{}: server loaded {loaded} rows, the backup holds {}",
            s.label, s.rows
        )));
    }
    Ok(loaded)
}
