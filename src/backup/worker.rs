//! A backup worker: takes work items from the shared queue and streams
//! each one COPY rows → framer → encoders (blocking pool, in order, at most
//! `encode_ahead` in flight) → its pack sink, recording the stream's
//! manifest entry as frames land. A chain table's rows also pass through
//! the chain verifier, collecting only heads: no second pass over the table.

use super::plan::{Source, WorkItem};
use crate::archive::pack::{PackSet, PackSink};
use crate::archive::{ChainRecord, FrameRef, PackInfo, StreamInfo};
use crate::chain::{ChainOptions, Verifier};
use crate::crypto::BackupKey;
use crate::error::{Error, Result};
use crate::pg::snapshot::Worker;
use crate::pg::wire::CopyOut;
use crate::pipeline::{encode_frame, Budget, EncodedFrame, FrameBuffers, Framer, PlainFrame};
use crate::progress::Progress;
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// What every worker of one backup shares.
pub struct Shared {
    pub budget: Budget,
    /// zstd level; 0 stores frames uncompressed.
    pub level: i32,
    /// The backup's keyed cipher when encrypting.
    pub key: Option<Arc<BackupKey>>,
    pub queue: Mutex<VecDeque<WorkItem>>,
    pub packs: Arc<PackSet>,
    pub progress: Arc<dyn Progress>,
    /// Frame buffers, reused across frames and workers.
    pub bufs: FrameBuffers,
}

impl Shared {
    /// The next work item, or `None` when the queue is empty. A queue whose
    /// lock was poisoned (a worker panicked while taking an item) is an
    /// error, never an empty queue: the backup must not complete without
    /// some of its streams.
    pub fn next_item(&self) -> Result<Option<WorkItem>> {
        self.queue
            .lock()
            .map(|mut q| q.pop_front())
            .map_err(|_| Error::Internal("backup work queue poisoned by a failed worker".into()))
    }
}

/// What a worker produced: its streams, packs and chain heads.
pub struct WorkerOutput {
    pub streams: Vec<StreamInfo>,
    pub packs: Vec<(u32, PackInfo)>,
    pub chains: Vec<ChainRecord>,
}

pub async fn worker_loop(
    mut worker: Worker,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> Result<WorkerOutput> {
    let mut out = WorkerOutput {
        streams: Vec::new(),
        packs: Vec::new(),
        chains: Vec::new(),
    };
    let mut sink = PackSink::new(shared.packs.clone());
    let r = tokio::select! {
        r = copy_items(&mut worker, &shared, &mut sink, &mut out) => r,
        _ = stop.cancelled() => Err(Error::Interrupted("stopped: another part of the backup failed".into())),
    };
    if let Err(e) = r {
        sink.abort().await;
        return Err(e);
    }
    out.packs = sink.finish().await?;
    worker.finish().await?;
    Ok(out)
}

/// Copies work items until the queue is empty.
async fn copy_items(
    worker: &mut Worker,
    shared: &Shared,
    sink: &mut PackSink,
    out: &mut WorkerOutput,
) -> Result<()> {
    while let Some(item) = shared.next_item()? {
        if let Source::Table { schema, name, .. } = &item.source {
            worker.lock_nowait(schema, name).await?;
        }
        let (info, chain) = copy_stream(worker, &item, sink, shared).await?;
        out.streams.push(info);
        out.chains.extend(chain);
    }
    Ok(())
}

/// Streams one work item: COPY rows → [`frame_stream`]. A chain table's
/// rows also pass through the chain verifier, collecting only heads: no
/// second pass over the table.
async fn copy_stream(
    worker: &mut Worker,
    item: &WorkItem,
    pack: &mut PackSink,
    shared: &Shared,
) -> Result<(StreamInfo, Option<ChainRecord>)> {
    let sql = item.copy_sql();
    let progress = &shared.progress;
    progress.stream_started(item.stream, &item.label, item.est_bytes);
    let context = format!("copying {}", item.label);
    let mut copy = worker.copy_out(&sql, &context).await?;
    let mut heads = item.chain.as_ref().map(|p| {
        let opts = ChainOptions {
            heads_only: true,
            ..ChainOptions::default()
        };
        (p.clone(), Verifier::new(p.clone(), opts))
    });
    let target = StreamTarget {
        stream: item.stream,
        toc_id: item.toc_id,
        pages: match &item.source {
            Source::Table {
                pages: Some((s, e)),
                ..
            } => Some((*s, e.unwrap_or(u64::MAX))),
            _ => None,
        },
        unit: Unit::Rows,
    };
    let inspect = |row: &[u8]| match heads.as_mut() {
        Some((_, v)) => v.feed(row),
        None => Ok(()),
    };
    let info = frame_stream(&mut copy, &target, inspect, pack, shared).await?;
    if let Some(sent) = copy.server_rows().filter(|n| *n != info.rows) {
        return Err(Error::integrity(
            &item.label,
            format!(
                "the server reported {sent} rows copied, {} arrived",
                info.rows
            ),
        ));
    }
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

/// How a stream's chunks become frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Each chunk is a row (COPY text, a scan record): frames end at row
    /// boundaries when rows fit, and rows are counted.
    Rows,
    /// A byte stream cut anywhere (an RDB file): frames filled to the brim.
    Bytes,
}

/// Where a stream's frames go in the manifest.
#[derive(Clone, Debug)]
pub struct StreamTarget {
    pub stream: u32,
    pub toc_id: u32,
    /// ctid page range of a table slice.
    pub pages: Option<(u64, u64)>,
    pub unit: Unit,
}

/// A stream's chunks, each lent until the next is asked for: COPY rows read
/// in place from the connection's buffer, or any stream of owned buffers
/// ([`Owned`]).
pub trait Chunks: Send {
    fn next_chunk(&mut self) -> impl std::future::Future<Output = Result<Option<&[u8]>>> + Send;
}

impl Chunks for CopyOut<'_> {
    async fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        self.next_row().await
    }
}

/// A stream of owned buffers as [`Chunks`].
pub struct Owned<S> {
    stream: std::pin::Pin<Box<S>>,
    current: bytes::Bytes,
}

impl<S> Owned<S> {
    pub fn new(stream: S) -> Owned<S> {
        Owned {
            stream: Box::pin(stream),
            current: bytes::Bytes::new(),
        }
    }
}

impl<S: futures::Stream<Item = Result<bytes::Bytes>> + Send> Chunks for Owned<S> {
    async fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        match self.stream.next().await.transpose()? {
            Some(b) => {
                self.current = b;
                Ok(Some(&self.current))
            }
            None => Ok(None),
        }
    }
}

/// Streams chunks → framer → encoders (blocking pool, in order, at most
/// `encode_ahead` in flight) → pack, and returns the stream's manifest
/// record. `inspect` sees every chunk on its way to the framer. Memory
/// never follows chunk size: a chunk larger than a frame is fed one frame
/// at a time, each handed to an encoder before the next is filled.
pub async fn frame_stream<C, F>(
    chunks: &mut C,
    target: &StreamTarget,
    mut inspect: F,
    pack: &mut PackSink,
    shared: &Shared,
) -> Result<StreamInfo>
where
    C: Chunks,
    F: FnMut(&[u8]) -> Result<()>,
{
    let mut framer = Framer::new(shared.budget.frame_size, shared.bufs.plain.clone());
    let mut ready: Vec<PlainFrame> = Vec::new();
    let mut out = Encoder::new(target);
    let ahead = shared.budget.encode_ahead.max(1);
    while let Some(chunk) = chunks.next_chunk().await? {
        inspect(chunk)?;
        // Room for the frame this chunk completes before the framer
        // starts the next one, so a finished frame never waits for an
        // encoder beside a fresh buffer.
        if framer.would_emit(chunk.len()) {
            out.drain(ahead - 1, pack, shared).await?;
        }
        let mut pos = 0;
        loop {
            let done = match target.unit {
                Unit::Rows => framer.feed_row(chunk, &mut pos, &mut ready),
                Unit::Bytes => framer.feed_bytes(chunk, &mut pos, &mut ready),
            };
            for frame in ready.drain(..) {
                out.encode(frame, pack, shared).await?;
            }
            if done {
                break;
            }
        }
    }
    out.encode(framer.finish(), pack, shared).await?;
    out.drain(0, pack, shared).await?;
    Ok(out.acc.finish())
}

type Encoding = tokio::task::JoinHandle<Result<EncodedFrame>>;

/// One stream's frames on their way to the pack: encodings in flight (in
/// order) and the stream's manifest record as they land.
struct Encoder {
    inflight: FuturesOrdered<Encoding>,
    /// Index of the next frame.
    index: u32,
    acc: StreamAcc,
}

impl Encoder {
    fn new(target: &StreamTarget) -> Encoder {
        Encoder {
            inflight: FuturesOrdered::new(),
            index: 0,
            acc: StreamAcc::new(target),
        }
    }

    /// Starts encoding the next frame on the blocking pool once fewer than
    /// `encode_ahead` encodings are in flight.
    async fn encode(
        &mut self,
        frame: PlainFrame,
        pack: &mut PackSink,
        shared: &Shared,
    ) -> Result<()> {
        self.drain(shared.budget.encode_ahead.max(1) - 1, pack, shared)
            .await?;
        let (stream, level, i) = (self.acc.stream, shared.level, self.index);
        let (key, bufs) = (shared.key.clone(), shared.bufs.clone());
        self.inflight
            .push_back(tokio::task::spawn_blocking(move || {
                encode_frame(&frame, stream, i, level, key.as_deref(), &bufs)
            }));
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| Error::Internal("too many frames in one stream".into()))?;
        Ok(())
    }

    /// Appends encoded frames, in order, until at most `keep` encodings are
    /// in flight.
    async fn drain(&mut self, keep: usize, pack: &mut PackSink, shared: &Shared) -> Result<()> {
        while self.inflight.len() > keep {
            if let Some(enc) = self.inflight.next().await {
                self.acc.append(pack, shared, join_encode(enc)?).await?;
            }
        }
        Ok(())
    }
}

fn join_encode(
    r: std::result::Result<Result<EncodedFrame>, tokio::task::JoinError>,
) -> Result<EncodedFrame> {
    r.map_err(|e| Error::Internal(format!("encode task: {e}")))?
}

/// Accumulates a stream's manifest record as its frames land.
struct StreamAcc {
    stream: u32,
    toc_id: u32,
    pages: Option<(u64, u64)>,
    rows: u64,
    plain: u64,
    stored: u64,
    frames: Vec<FrameRef>,
}

impl StreamAcc {
    fn new(target: &StreamTarget) -> StreamAcc {
        StreamAcc {
            stream: target.stream,
            toc_id: target.toc_id,
            pages: target.pages,
            rows: 0,
            plain: 0,
            stored: 0,
            frames: Vec::new(),
        }
    }

    async fn append(
        &mut self,
        pack: &mut PackSink,
        shared: &Shared,
        enc: EncodedFrame,
    ) -> Result<()> {
        let r = pack.append(&enc).await?;
        let progress = shared.progress.as_ref();
        self.rows += u64::from(enc.header.rows);
        self.plain += u64::from(enc.header.plain_len);
        self.stored += enc.bytes.len() as u64;
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
            plain_sha256: None,
            frames: self.frames,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Repo;

    fn shared() -> Shared {
        let budget = Budget::new(64 << 20, 1, None).unwrap();
        let repo = Repo::from_store(Arc::new(object_store::memory::InMemory::new()), "memory");
        Shared {
            budget,
            level: 1,
            key: None,
            queue: Mutex::new(VecDeque::new()),
            packs: Arc::new(PackSet::new(
                repo,
                "id".into(),
                1 << 30,
                budget.part_size,
                1,
            )),
            progress: Arc::new(crate::progress::Silent),
            bufs: FrameBuffers::unpooled(),
        }
    }

    #[test]
    fn a_poisoned_queue_is_an_error_not_an_empty_queue() {
        let s = Arc::new(shared());
        assert!(matches!(s.next_item(), Ok(None)));
        let poisoner = s.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.queue.lock().unwrap();
            panic!("a worker dies holding the queue");
        })
        .join();
        let e = s.next_item().unwrap_err();
        assert!(e.to_string().contains("poisoned"), "{e}");
    }
}
