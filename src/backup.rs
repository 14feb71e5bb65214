//! Backup orchestration: snapshot leader + catalog → work queue (tables and
//! ctid slices, biggest first) → parallel workers streaming COPY through the
//! pipeline into pack objects → manifest, written last.
//!
//! A failed or interrupted backup cancels its server queries, aborts its
//! uploads, removes what it wrote and never writes a manifest.

use crate::archive::layout;
use crate::archive::pack::PackWriter;
use crate::archive::{
    ChainRecord, FrameRef, Manifest, ManifestBody, ManifestHeader, PackInfo, StreamInfo,
};
use crate::catalog::{self, CatalogOptions, ObjectKind, TocEntry};
use crate::chain::{ChainPlan, Verifier, VerifyOptions};
use crate::config::{ChainDef, ConnSettings};
use crate::crypto::{BackupKey, CipherKind, DataKey, WrappedKey};
use crate::error::{Error, Result};
use crate::keys::{self, EncryptMode};
use crate::pg::snapshot::{Leader, Worker};
use crate::pg::{qualified, quote_ident};
use crate::pipeline::{
    encode_frame, Budget, EncodedFrame, FrameBuffers, Framer, PlainFrame, StreamDigest,
};
use crate::progress::Progress;
use crate::store::lease::Lease;
use crate::store::Repo;
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Everything a backup needs besides the repository.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    pub db: ConnSettings,
    pub jobs: usize,
    /// Memory budget in bytes (`--memory`).
    pub memory: usize,
    /// Overrides the frame size derived from the budget.
    pub frame_size: Option<usize>,
    /// zstd level; 0 stores frames uncompressed.
    pub compress_level: i32,
    pub catalog: CatalogOptions,
    /// How long the leader waits for each `ACCESS SHARE` lock.
    pub lock_timeout: Duration,
    /// Tables larger than this are split into ctid slices of about this size.
    pub split_bytes: u64,
    /// A pack object is closed once it exceeds this many bytes (checked
    /// before each frame, so a pack never exceeds it by more than a frame).
    pub pack_bytes: u64,
    /// Whether to encrypt (by default: when the repository has master keys).
    pub encrypt: EncryptMode,
    /// Overrides the repository's default cipher.
    pub cipher: Option<CipherKind>,
    /// Hash-chained tables (policy `[[chain]]`): dumped whole in chain
    /// order, their stream heads recorded in the manifest.
    pub chains: Vec<ChainDef>,
    /// Lifetime of the backup's lease (renewed every quarter of it).
    pub lease_ttl: Duration,
    /// Overrides the multipart part size derived from the budget.
    pub part_size: Option<usize>,
}

impl BackupOptions {
    pub fn new(db: ConnSettings) -> BackupOptions {
        BackupOptions {
            db,
            jobs: 2,
            memory: 64 << 20,
            frame_size: None,
            compress_level: 1,
            catalog: CatalogOptions::default(),
            lock_timeout: Duration::from_secs(30),
            split_bytes: 256 << 20,
            pack_bytes: 1 << 30,
            encrypt: EncryptMode::Auto,
            cipher: None,
            chains: Vec::new(),
            lease_ttl: crate::store::lease::DEFAULT_TTL,
            part_size: None,
        }
    }
}

#[derive(Clone, Debug)]
enum Source {
    Table {
        schema: String,
        name: String,
        columns: Vec<String>,
        pages: Option<(u64, Option<u64>)>,
        /// `ORDER BY` of a chain table (never sliced).
        order: Option<String>,
    },
    LargeObjects,
}

#[derive(Clone, Debug)]
struct WorkItem {
    stream: u32,
    toc_id: u32,
    label: String,
    est_bytes: u64,
    source: Source,
    /// Set for a chain table: its heads are collected while it is copied.
    chain: Option<Arc<ChainPlan>>,
}

impl WorkItem {
    fn copy_sql(&self) -> String {
        match &self.source {
            Source::LargeObjects => "COPY (SELECT oid, pg_catalog.lo_get(oid) FROM pg_catalog.pg_largeobject_metadata ORDER BY oid) TO STDOUT".to_string(),
            Source::Table { schema, name, columns, pages, order } => {
                let table = qualified(schema, name);
                let cols = columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
                if let Some(order) = order {
                    return format!("COPY (SELECT {cols} FROM ONLY {table} {order}) TO STDOUT");
                }
                match pages {
                    None if columns.is_empty() => format!("COPY {table} TO STDOUT"),
                    None => format!("COPY {table} ({cols}) TO STDOUT"),
                    Some((start, end)) => {
                        let select = if columns.is_empty() { "".to_string() } else { cols };
                        let mut w = format!("ctid >= '({start},0)'::pg_catalog.tid");
                        if let Some(end) = end {
                            w.push_str(&format!(" AND ctid < '({end},0)'::pg_catalog.tid"));
                        }
                        format!("COPY (SELECT {select} FROM ONLY {table} WHERE {w}) TO STDOUT")
                    }
                }
            }
        }
    }
}

/// Splits data entries into work items, biggest first. Chain tables stay
/// whole and are copied in chain order.
fn plan_work(toc: &[TocEntry], split_bytes: u64, chains: &[ChainDef]) -> Result<Vec<WorkItem>> {
    let mut items = Vec::new();
    let mut next_stream = 0u32;
    for e in toc {
        let Some(d) = &e.data else { continue };
        let label = format!("{}.{}", d.schema, d.name);
        if e.kind == ObjectKind::LargeObjectData {
            items.push(WorkItem {
                stream: next_stream,
                toc_id: e.id,
                label,
                est_bytes: d.est_bytes,
                source: Source::LargeObjects,
                chain: None,
            });
            next_stream += 1;
            continue;
        }
        if e.kind != ObjectKind::TableData {
            continue;
        }
        let chain = chains
            .iter()
            .find(|c| c.table_parts() == Some((&d.schema, &d.name)));
        let plan = match chain {
            Some(c) => Some(Arc::new(ChainPlan::new(c, &d.columns)?)),
            None => None,
        };
        let slices = if chain.is_none()
            && d.splittable
            && split_bytes > 0
            && d.est_bytes > split_bytes
            && d.pages > 1
        {
            d.est_bytes.div_ceil(split_bytes).min(d.pages)
        } else {
            1
        };
        for s in 0..slices {
            let pages = (slices > 1).then(|| {
                let per = d.pages.div_ceil(slices);
                let start = s * per;
                let end = (s + 1 < slices).then_some((s + 1) * per);
                (start, end)
            });
            let label = match pages {
                Some(_) => format!("{label} [{}/{slices}]", s + 1),
                None => label.clone(),
            };
            items.push(WorkItem {
                stream: next_stream,
                toc_id: e.id,
                label,
                est_bytes: d.est_bytes / slices,
                source: Source::Table {
                    schema: d.schema.clone(),
                    name: d.name.clone(),
                    columns: d.columns.clone(),
                    pages,
                    order: chain.map(crate::chain::order_by),
                },
                chain: plan.clone(),
            });
            next_stream += 1;
        }
    }
    items.sort_by(|a, b| b.est_bytes.cmp(&a.est_bytes).then(a.stream.cmp(&b.stream)));
    Ok(items)
}

struct Shared {
    backup_id: String,
    repo: Repo,
    budget: Budget,
    level: i32,
    /// The backup's keyed cipher when encrypting.
    key: Option<Arc<BackupKey>>,
    pack_bytes: u64,
    queue: Mutex<VecDeque<WorkItem>>,
    next_pack: AtomicU32,
    progress: Arc<dyn Progress>,
    /// Frame buffers, reused across frames and workers.
    bufs: FrameBuffers,
}

impl Shared {
    fn next_item(&self) -> Option<WorkItem> {
        self.queue.lock().ok().and_then(|mut q| q.pop_front())
    }
}

struct WorkerOutput {
    streams: Vec<StreamInfo>,
    packs: Vec<(u32, PackInfo)>,
    chains: Vec<ChainRecord>,
}

/// Runs a backup into `repo`. Returns the header of the written manifest.
pub async fn backup(
    repo: &Repo,
    opts: &BackupOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<ManifestHeader> {
    let mut budget = Budget::new(opts.memory, opts.jobs, opts.frame_size)?;
    if let Some(p) = opts.part_size {
        budget = budget.with_part_size(p)?;
    }
    budget.check_object_size(max_pack_size(opts.pack_bytes, &budget))?;
    let started = time::OffsetDateTime::now_utc();
    let t0 = Instant::now();
    let backup_id = layout::new_backup_id(started);
    // The lease comes first: from here on, a prune sees a running backup.
    let lease = Lease::acquire(repo, &backup_id, opts.lease_ttl).await?;
    let result = tokio::select! {
        r = run(repo, opts, budget, &backup_id, started, t0, progress.clone(), cancel) => r,
        _ = lease.lost() => {
            progress.end();
            Err(Error::Busy(format!(
                "backup {backup_id} stopped: its lease in {} could not be renewed, so `pgkeep prune --incomplete` could remove it while it runs",
                repo.display()
            )))
        }
    };
    match &result {
        Ok(_) => lease.release().await,
        Err(_) => {
            // Keep the lease object (it expires on its own) until the
            // prefix is gone, so a prune never races this cleanup.
            lease.abandon().await;
            // Nothing half-written may look like a backup: remove what we wrote.
            if let Err(e) = repo.delete_prefix(&layout::backup_prefix(&backup_id)).await {
                tracing::warn!(backup = %backup_id, error = %e, "could not remove the failed backup's objects; `pgkeep prune --incomplete` will");
            }
        }
    }
    result
}

/// The largest a pack object can get: packs rotate before a frame once
/// they reach `pack_bytes`, and a stored frame is at most a frame of
/// plaintext plus zstd's worst-case expansion and its header.
fn max_pack_size(pack_bytes: u64, budget: &Budget) -> u64 {
    let frame = budget.frame_size as u64;
    pack_bytes + frame + frame / 128 + 64 * 1024
}

#[allow(clippy::too_many_arguments)]
async fn run(
    repo: &Repo,
    opts: &BackupOptions,
    budget: Budget,
    backup_id: &str,
    started: time::OffsetDateTime,
    t0: Instant,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<ManifestHeader> {
    // Decided before touching the database: a key problem fails at once.
    let (key, wraps) = match keys::recipients(repo, opts.encrypt, opts.cipher).await? {
        None => (None, Vec::new()),
        Some(r) => {
            let data_key = DataKey::generate();
            let wraps = r
                .keys
                .iter()
                .map(|k| WrappedKey::wrap(&data_key, k, r.cipher, backup_id))
                .collect::<Result<Vec<_>>>()?;
            let ids: Vec<&str> = r.keys.iter().map(|k| k.id.as_str()).collect();
            tracing::info!(backup = %backup_id, cipher = %r.cipher, keys = ?ids, "encrypting");
            (
                Some(Arc::new(BackupKey::new(r.cipher, &data_key, backup_id))),
                wraps,
            )
        }
    };
    let leader = Leader::begin(&opts.db).await?;
    let source = catalog::source_info(&leader.conn.client).await?;
    let rels = catalog::select_tables(&leader.conn.client, &opts.catalog).await?;
    let lockable: Vec<(String, String)> = rels
        .iter()
        .filter(|r| matches!(r.relkind, 'r' | 'p' | 'f'))
        .map(|r| (r.schema.clone(), r.name.clone()))
        .collect();
    leader.lock_tables(&lockable, opts.lock_timeout).await?;
    let toc = catalog::read_toc(&leader.conn.client, &opts.catalog, &rels).await?;
    let items = plan_work(&toc, opts.split_bytes, &opts.chains)?;
    for c in &opts.chains {
        if !items
            .iter()
            .any(|i| i.chain.as_ref().is_some_and(|p| p.table == c.table))
        {
            tracing::warn!(table = %c.table, "chain table of the policy is not in this backup");
        }
    }
    let total_est: u64 = items.iter().map(|i| i.est_bytes).sum();
    tracing::info!(backup = %backup_id, source = %opts.db, entries = toc.len(), streams = items.len(), "snapshot taken, catalog read");
    progress.begin(total_est);

    let shared = Arc::new(Shared {
        backup_id: backup_id.to_string(),
        repo: repo.clone(),
        budget,
        level: opts.compress_level,
        key: key.clone(),
        pack_bytes: opts.pack_bytes,
        queue: Mutex::new(items.iter().cloned().collect()),
        next_pack: AtomicU32::new(0),
        progress: progress.clone(),
        bufs: FrameBuffers::new(budget.frame_size, budget.total),
    });

    let jobs = opts.jobs.max(1).min(items.len().max(1));
    let mut set = tokio::task::JoinSet::new();
    let mut tokens = Vec::new();
    // Stops the workers on the first failure; each aborts its open upload
    // (awaited) before it returns, so none is left when the backup does.
    let stop = CancellationToken::new();
    // Every worker joins the snapshot before any starts copying, so a failed
    // connection ends the backup before a single upload has begun.
    let mut workers = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        workers.push(Worker::join(&opts.db, &leader.snapshot, &source.encoding).await?);
    }
    for w in workers {
        tokens.push(w.conn.cancel_handle());
        set.spawn(worker_loop(w, shared.clone(), stop.clone()));
    }

    let mut outputs = Vec::new();
    let mut failure: Option<Error> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled(), if failure.is_none() => {
                failure = Some(Error::Interrupted("backup cancelled".into()));
                stop.cancel();
            }
            joined = set.join_next() => {
                match joined {
                    None => break,
                    Some(Ok(Ok(out))) => outputs.push(out),
                    Some(Ok(Err(e))) => {
                        if failure.is_none() { failure = Some(e); }
                        stop.cancel();
                    }
                    Some(Err(join)) if join.is_cancelled() => {}
                    Some(Err(join)) => {
                        if failure.is_none() { failure = Some(Error::Internal(format!("backup worker panicked: {join}"))); }
                        stop.cancel();
                    }
                }
            }
        }
    }
    if let Some(e) = failure {
        for t in &tokens {
            t.cancel().await;
        }
        progress.end();
        return Err(e);
    }
    leader.finish().await?;
    progress.end();
    tracing::debug!(
        plain_buffers = shared.bufs.plain.allocated(),
        stored_buffers = shared.bufs.stored.allocated(),
        "frame buffers allocated"
    );

    let mut streams: Vec<StreamInfo> = outputs
        .iter_mut()
        .flat_map(|o| std::mem::take(&mut o.streams))
        .collect();
    streams.sort_by_key(|s| s.id);
    let mut packs: Vec<(u32, PackInfo)> = outputs
        .iter_mut()
        .flat_map(|o| std::mem::take(&mut o.packs))
        .collect();
    packs.sort_by_key(|(i, _)| *i);
    if packs.iter().enumerate().any(|(n, (i, _))| n as u32 != *i) {
        return Err(Error::Internal("pack numbering has gaps".into()));
    }
    let packs: Vec<PackInfo> = packs.into_iter().map(|(_, p)| p).collect();
    let mut chains: Vec<ChainRecord> = outputs
        .iter_mut()
        .flat_map(|o| std::mem::take(&mut o.chains))
        .collect();
    chains.sort_by(|a, b| a.table.cmp(&b.table));
    let finished = time::OffsetDateTime::now_utc();
    let fmt = &time::format_description::well_known::Rfc3339;
    let tables = toc
        .iter()
        .filter(|e| e.kind == ObjectKind::TableData)
        .count() as u64;
    let mut manifest = Manifest {
        header: ManifestHeader {
            format_version: crate::archive::manifest::FORMAT_VERSION,
            id: backup_id.to_string(),
            pgkeep_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: started.format(fmt).unwrap_or_default(),
            finished_at: finished.format(fmt).unwrap_or_default(),
            duration_ms: t0.elapsed().as_millis() as u64,
            source: opts.db.to_string(),
            server_version: source.server_version.clone(),
            system_identifier: source.system_identifier.clone(),
            database: source.database.clone(),
            tables,
            rows: streams.iter().map(|s| s.rows).sum(),
            plain_bytes: streams.iter().map(|s| s.plain_bytes).sum(),
            stored_bytes: packs.iter().map(|p| p.size).sum(),
            compression: if opts.compress_level == 0 {
                "none".into()
            } else {
                format!("zstd:{}", opts.compress_level)
            },
            body_encoding: String::new(),
            body_sha256: String::new(),
            cipher: key.as_ref().map(|k| k.cipher.kind()),
            key_ids: vec![],
            wrapped_keys: wraps,
        },
        body: ManifestBody {
            source,
            options: opts.catalog.clone(),
            toc,
            packs,
            streams,
            chains,
        },
        key,
    };
    let bytes = manifest.encode()?;
    // Create-only: two backups can never claim the same id.
    repo.put_new(&layout::manifest_path(backup_id), bytes)
        .await
        .map_err(|e| match e {
            Error::Store {
                source:
                    object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
                ..
            } => Error::Busy(format!(
                "backup id {backup_id} already has a manifest in {}: another backup claimed it",
                repo.display()
            )),
            other => other,
        })?;
    tracing::info!(backup = %backup_id, rows = manifest.header.rows, stored_bytes = manifest.header.stored_bytes, "manifest written; backup complete");
    Ok(manifest.header)
}

async fn worker_loop(
    worker: Worker,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> Result<WorkerOutput> {
    let mut out = WorkerOutput {
        streams: Vec::new(),
        packs: Vec::new(),
        chains: Vec::new(),
    };
    let mut sink = PackSink::default();
    let r = tokio::select! {
        r = copy_items(&worker, &shared, &mut sink, &mut out) => r,
        _ = stop.cancelled() => Err(Error::Interrupted("stopped: another part of the backup failed".into())),
    };
    if let Err(e) = r {
        sink.abort().await;
        return Err(e);
    }
    sink.close().await?;
    out.packs = std::mem::take(&mut sink.done);
    worker.finish().await?;
    Ok(out)
}

/// A worker's current pack and the packs it has completed. Packs rotate at
/// frame boundaries once they reach `pack_bytes`, also in the middle of a
/// stream (a frame records its pack), so no object outgrows the part limit.
#[derive(Default)]
struct PackSink {
    current: Option<PackWriter>,
    done: Vec<(u32, PackInfo)>,
}

impl PackSink {
    async fn append(&mut self, shared: &Shared, frame: &EncodedFrame) -> Result<FrameRef> {
        if self
            .current
            .as_ref()
            .is_some_and(|p| p.len() >= shared.pack_bytes)
        {
            self.close().await?;
        }
        let pack = match &mut self.current {
            Some(p) => p,
            None => {
                let idx = shared.next_pack.fetch_add(1, Ordering::SeqCst);
                self.current.insert(
                    PackWriter::create(
                        &shared.repo,
                        &shared.backup_id,
                        idx,
                        shared.budget.part_size,
                        shared.budget.upload_concurrency,
                    )
                    .await?,
                )
            }
        };
        pack.append(frame).await
    }

    /// Completes the current pack, if any.
    async fn close(&mut self) -> Result<()> {
        if let Some(p) = self.current.take() {
            let idx = p.index();
            self.done.push((idx, p.finish().await?));
        }
        Ok(())
    }

    async fn abort(&mut self) {
        if let Some(p) = self.current.take() {
            p.abort().await;
        }
    }
}

/// Copies work items until the queue is empty.
async fn copy_items(
    worker: &Worker,
    shared: &Shared,
    sink: &mut PackSink,
    out: &mut WorkerOutput,
) -> Result<()> {
    while let Some(item) = shared.next_item() {
        if let Source::Table { schema, name, .. } = &item.source {
            worker.lock_nowait(schema, name).await?;
        }
        let (info, chain) = copy_stream(worker, &item, sink, shared).await?;
        out.streams.push(info);
        out.chains.extend(chain);
    }
    Ok(())
}

/// Streams one work item: COPY rows → frames → encode (blocking pool, in
/// order, at most `encode_ahead` in flight) → pack. A chain table's rows
/// also pass through the chain verifier, collecting only heads: no second
/// pass over the table.
async fn copy_stream(
    worker: &Worker,
    item: &WorkItem,
    pack: &mut PackSink,
    shared: &Shared,
) -> Result<(StreamInfo, Option<ChainRecord>)> {
    let sql = item.copy_sql();
    let progress = &shared.progress;
    progress.stream_started(item.stream, &item.label, item.est_bytes);
    let copy = worker
        .conn
        .client
        .copy_out(&sql)
        .await
        .map_err(|e| copy_error(&item.label, e))?;
    futures::pin_mut!(copy);
    let mut framer = Framer::new(shared.budget.frame_size, shared.bufs.plain.clone());
    let mut ready: Vec<PlainFrame> = Vec::new();
    let mut inflight = FuturesOrdered::new();
    let mut acc = StreamAcc::new(item);
    let mut index = 0u32;
    let mut done = false;
    let mut heads = item.chain.as_ref().map(|p| {
        let opts = VerifyOptions {
            heads_only: true,
            ..VerifyOptions::default()
        };
        (p.clone(), Verifier::new(p.clone(), opts))
    });
    let ahead = shared.budget.encode_ahead.max(1);
    while !done {
        match copy.next().await {
            Some(Ok(row)) => {
                if let Some((_, v)) = heads.as_mut() {
                    v.feed(&row)?;
                }
                // Room for the frame this row completes before the framer
                // starts the next one, so a finished frame never waits for
                // an encoder beside a fresh buffer.
                if framer.would_emit(row.len()) {
                    drain_encoded(&mut inflight, ahead - 1, &mut acc, pack, shared).await?;
                }
                framer.push_row(&row, &mut ready)
            }
            Some(Err(e)) => return Err(copy_error(&item.label, e)),
            None => {
                ready.push(framer.finish());
                done = true;
            }
        }
        for frame in ready.drain(..) {
            drain_encoded(&mut inflight, ahead - 1, &mut acc, pack, shared).await?;
            let (stream, level, i) = (item.stream, shared.level, index);
            let (key, bufs) = (shared.key.clone(), shared.bufs.clone());
            inflight.push_back(tokio::task::spawn_blocking(move || {
                encode_frame(&frame, stream, i, level, key.as_deref(), &bufs)
            }));
            index = index
                .checked_add(1)
                .ok_or_else(|| Error::Internal("too many frames in one stream".into()))?;
        }
    }
    drain_encoded(&mut inflight, 0, &mut acc, pack, shared).await?;
    let info = acc.finish();
    progress.stream_finished(item.stream, info.rows, info.plain_bytes);
    let chain = match heads {
        Some((plan, v)) => Some(ChainRecord {
            table: plan.table.clone(),
            stream: item.stream,
            order: plan.order.clone(),
            heads: v.finish()?.1,
        }),
        None => None,
    };
    Ok((info, chain))
}

type Encoding = tokio::task::JoinHandle<Result<EncodedFrame>>;

/// Appends encoded frames, in order, until at most `keep` encodings are in
/// flight.
async fn drain_encoded(
    inflight: &mut FuturesOrdered<Encoding>,
    keep: usize,
    acc: &mut StreamAcc,
    pack: &mut PackSink,
    shared: &Shared,
) -> Result<()> {
    while inflight.len() > keep {
        if let Some(enc) = inflight.next().await {
            acc.append(pack, shared, join_encode(enc)?).await?;
        }
    }
    Ok(())
}

fn join_encode(
    r: std::result::Result<Result<EncodedFrame>, tokio::task::JoinError>,
) -> Result<EncodedFrame> {
    r.map_err(|e| Error::Internal(format!("encode task: {e}")))?
}

fn copy_error(label: &str, e: tokio_postgres::Error) -> Error {
    Error::Db {
        context: format!("copying {label}"),
        source: e,
    }
}

/// Accumulates a stream's manifest record as its frames land.
struct StreamAcc {
    stream: u32,
    toc_id: u32,
    pages: Option<(u64, u64)>,
    rows: u64,
    plain: u64,
    stored: u64,
    digest: StreamDigest,
    frames: Vec<FrameRef>,
}

impl StreamAcc {
    fn new(item: &WorkItem) -> StreamAcc {
        let pages = match &item.source {
            Source::Table {
                pages: Some((s, e)),
                ..
            } => Some((*s, e.unwrap_or(u64::MAX))),
            _ => None,
        };
        StreamAcc {
            stream: item.stream,
            toc_id: item.toc_id,
            pages,
            rows: 0,
            plain: 0,
            stored: 0,
            digest: StreamDigest::new(),
            frames: Vec::new(),
        }
    }

    async fn append(
        &mut self,
        pack: &mut PackSink,
        shared: &Shared,
        enc: EncodedFrame,
    ) -> Result<()> {
        let r = pack.append(shared, &enc).await?;
        let progress = shared.progress.as_ref();
        self.rows += u64::from(enc.header.rows);
        self.plain += u64::from(enc.header.plain_len);
        self.stored += enc.bytes.len() as u64;
        self.digest.update(&enc.plain_sha256);
        progress.stream_advanced(
            self.stream,
            u64::from(enc.header.plain_len),
            u64::from(enc.header.rows),
        );
        self.frames.push(r);
        Ok(())
    }

    fn finish(self) -> StreamInfo {
        StreamInfo {
            id: self.stream,
            toc_id: self.toc_id,
            pages: self.pages,
            rows: self.rows,
            plain_bytes: self.plain,
            stored_bytes: self.stored,
            plain_sha256: hex::encode(self.digest.finish()),
            frames: self.frames,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Section, TableData};

    fn data_entry(id: u32, name: &str, est: u64, pages: u64) -> TocEntry {
        TocEntry {
            id,
            kind: ObjectKind::TableData,
            section: Section::Data,
            schema: Some("public".into()),
            name: name.into(),
            owner: None,
            sql: String::new(),
            deps: vec![],
            data: Some(TableData {
                schema: "public".into(),
                name: name.into(),
                columns: vec!["a".into()],
                est_bytes: est,
                pages,
                splittable: true,
            }),
        }
    }

    #[test]
    fn big_tables_are_sliced_and_scheduled_first() {
        let toc = vec![
            data_entry(1, "small", 10, 1),
            data_entry(2, "big", 1000, 100),
        ];
        let items = plan_work(&toc, 300, &[]).unwrap();
        assert_eq!(items.len(), 5);
        assert!(items[..4].iter().all(|i| i.toc_id == 2));
        assert_eq!(items[4].toc_id, 1);
        let ranges: Vec<_> = items[..4]
            .iter()
            .map(|i| match &i.source {
                Source::Table { pages, .. } => *pages,
                _ => None,
            })
            .collect();
        assert!(ranges.contains(&Some((0, Some(25)))));
        assert!(
            ranges.contains(&Some((75, None))),
            "last slice is open-ended: {ranges:?}"
        );
        assert!(items[0].copy_sql().contains("ctid >= '("));
    }
}
