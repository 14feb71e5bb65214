//! [`FaultyStore`]: an `ObjectStore` wrapper that injects storage failures
//! ("a disk that fills up", a failing manifest write) and records what
//! became of every multipart upload, so tests can check that a failed
//! backup leaves nothing behind.
//!
//! Everything is delegated to the inner store; only writes are checked:
//! `put_opts` and each multipart part count against a byte capacity, and a
//! write that would exceed it fails with ENOSPC (`io::ErrorKind::StorageFull`
//! inside `object_store::Error::Generic`) without reaching the inner store.
//! A [`Gate`] can also hold every part upload until the test opens it, which
//! pauses a backup mid-table without any timing assumption.

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Counters shared by the store and its uploads.
#[derive(Debug, Default)]
pub struct Stats {
    /// Bytes accepted so far (puts and parts).
    pub written: AtomicU64,
    /// Writes refused with ENOSPC.
    pub refused: AtomicUsize,
    pub uploads_started: AtomicUsize,
    pub uploads_completed: AtomicUsize,
    pub uploads_aborted: AtomicUsize,
}

impl Stats {
    /// Multipart uploads neither completed nor aborted.
    pub fn uploads_open(&self) -> usize {
        self.uploads_started.load(Ordering::SeqCst)
            - self.uploads_completed.load(Ordering::SeqCst)
            - self.uploads_aborted.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    /// Total bytes the "disk" takes before it is full.
    capacity: u64,
    /// `put_opts` of a path ending with this fails (e.g. `/manifest`).
    fail_put_suffix: Option<String>,
    gate: Option<Arc<Gate>>,
    pub stats: Arc<Stats>,
}

/// Holds part uploads until opened; tells how many are waiting.
#[derive(Debug)]
pub struct Gate {
    open: tokio::sync::watch::Sender<bool>,
    waiting: tokio::sync::watch::Sender<usize>,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate {
            open: tokio::sync::watch::channel(false).0,
            waiting: tokio::sync::watch::channel(0).0,
        })
    }

    /// Lets every held and future part through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Resolves once at least one part upload is held at the gate.
    pub async fn wait_for_a_held_part(&self) {
        let mut rx = self.waiting.subscribe();
        rx.wait_for(|n| *n > 0).await.expect("gate alive");
    }

    async fn pass(&self) {
        let mut rx = self.open.subscribe();
        if *rx.borrow() {
            return;
        }
        self.waiting.send_modify(|n| *n += 1);
        let _ = rx.wait_for(|open| *open).await;
        self.waiting.send_modify(|n| *n -= 1);
    }
}

impl FaultyStore {
    /// A store whose disk fills up after `capacity` bytes.
    pub fn disk_full_after(inner: Arc<dyn ObjectStore>, capacity: u64) -> FaultyStore {
        FaultyStore {
            inner,
            capacity,
            fail_put_suffix: None,
            gate: None,
            stats: Arc::default(),
        }
    }

    /// A store with room for everything whose part uploads wait at `gate`.
    pub fn gated(inner: Arc<dyn ObjectStore>, gate: Arc<Gate>) -> FaultyStore {
        FaultyStore {
            inner,
            capacity: u64::MAX,
            fail_put_suffix: None,
            gate: Some(gate),
            stats: Arc::default(),
        }
    }

    /// A store with room for everything except single-put objects whose
    /// path ends with `suffix`.
    pub fn failing_put(inner: Arc<dyn ObjectStore>, suffix: &str) -> FaultyStore {
        FaultyStore {
            inner,
            capacity: u64::MAX,
            fail_put_suffix: Some(suffix.to_owned()),
            gate: None,
            stats: Arc::default(),
        }
    }
}

/// The error a full disk gives (ENOSPC, kind `StorageFull`).
pub fn enospc() -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultyStore",
        source: Box::new(std::io::Error::from_raw_os_error(libc::ENOSPC)),
    }
}

/// Reserves `n` bytes of `capacity`; false (and nothing reserved) when full.
fn reserve(stats: &Stats, capacity: u64, n: u64) -> bool {
    let ok = stats
        .written
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
            w.checked_add(n).filter(|t| *t <= capacity)
        })
        .is_ok();
    if !ok {
        stats.refused.fetch_add(1, Ordering::SeqCst);
    }
    ok
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

pgkeep::delegate_object_store!(FaultyStore, {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let fail = self
            .fail_put_suffix
            .as_deref()
            .is_some_and(|s| location.as_ref().ends_with(s));
        if fail || !reserve(&self.stats, self.capacity, payload.content_length() as u64) {
            if fail {
                self.stats.refused.fetch_add(1, Ordering::SeqCst);
            }
            return Err(enospc());
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        self.stats.uploads_started.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(FaultyUpload {
            inner: upload,
            capacity: self.capacity,
            gate: self.gate.clone(),
            stats: self.stats.clone(),
        }))
    }
});

#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    capacity: u64,
    gate: Option<Arc<Gate>>,
    stats: Arc<Stats>,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        if !reserve(&self.stats, self.capacity, data.content_length() as u64) {
            return Box::pin(async { Err(enospc()) });
        }
        let put = self.inner.put_part(data);
        match self.gate.clone() {
            None => put,
            Some(gate) => Box::pin(async move {
                gate.pass().await;
                put.await
            }),
        }
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let r = self.inner.complete().await;
        if r.is_ok() {
            self.stats.uploads_completed.fetch_add(1, Ordering::SeqCst);
        }
        r
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let r = self.inner.abort().await;
        self.stats.uploads_aborted.fetch_add(1, Ordering::SeqCst);
        r
    }
}
