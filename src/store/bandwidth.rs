//! `--max-bandwidth`: an `ObjectStore` wrapper that caps the upload rate
//! with one pacing schedule shared by every request of the process.
//!
//! Each upload (a single put or one multipart part) reserves its size on the
//! schedule and waits for its slot before its request starts, so over any
//! run the bytes sent are at most `rate × elapsed + one request`. Requests
//! themselves go at link speed: the cap is an average over a part, which is
//! what a shared uplink or an SD-card-bound device needs. Waiting parts count
//! against the pack writer's in-flight limit, so the backpressure reaches
//! the COPY and memory stays within the budget.

use async_trait::async_trait;
use object_store::path::Path;
use object_store::{
    MultipartUpload, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    UploadPart,
};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A pacing schedule: `bytes_per_sec` on average, first come first served.
#[derive(Debug)]
pub struct RateLimit {
    bytes_per_sec: u64,
    /// When the bytes reserved so far will have been "sent" at the rate.
    next: Mutex<Option<Instant>>,
}

impl RateLimit {
    pub fn new(bytes_per_sec: u64) -> RateLimit {
        RateLimit {
            bytes_per_sec: bytes_per_sec.max(1),
            next: Mutex::new(None),
        }
    }

    pub fn bytes_per_sec(&self) -> u64 {
        self.bytes_per_sec
    }

    /// Waits until `n` more bytes may be sent.
    pub async fn acquire(&self, n: u64) {
        let start = {
            let now = Instant::now();
            let mut next = match self.next.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let start = next.map_or(now, |t| t.max(now));
            let cost = Duration::from_secs_f64(n as f64 / self.bytes_per_sec as f64);
            *next = Some(start + cost);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

/// Parses an upload rate limit: a size per second, e.g. `10MiB`,
/// `10MiB/s`, `512KiB/s` (binary units, as everywhere in pgkeep); at least
/// 16 KiB/s, below which requests would time out.
pub fn parse_rate(s: &str) -> crate::Result<u64> {
    let n = crate::units::parse_rate(s).map_err(|_| {
        crate::Error::Config(format!(
            "invalid bandwidth limit {s:?} (examples: 10MiB/s, 512KiB/s)"
        ))
    })?;
    if n < 16 * 1024 {
        return Err(crate::Error::Config(format!(
            "bandwidth limit {s:?} is below 16KiB/s; requests would time out"
        )));
    }
    Ok(n)
}

/// Wraps a store so its uploads follow `limit`.
pub struct RateLimitedStore {
    inner: Arc<dyn ObjectStore>,
    limit: Arc<RateLimit>,
}

impl RateLimitedStore {
    pub fn new(inner: Arc<dyn ObjectStore>, limit: Arc<RateLimit>) -> RateLimitedStore {
        RateLimitedStore { inner, limit }
    }
}

impl fmt::Debug for RateLimitedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RateLimitedStore({} B/s, {})",
            self.limit.bytes_per_sec, self.inner
        )
    }
}

impl fmt::Display for RateLimitedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

crate::delegate_object_store!(RateLimitedStore, {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.limit.acquire(payload.content_length() as u64).await;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(LimitedUpload {
            inner,
            limit: self.limit.clone(),
        }))
    }
});

#[derive(Debug)]
struct LimitedUpload {
    inner: Box<dyn MultipartUpload>,
    limit: Arc<RateLimit>,
}

#[async_trait]
impl MultipartUpload for LimitedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let n = data.content_length() as u64;
        // The part keeps its number (assigned now); its request waits.
        let put = self.inner.put_part(data);
        let limit = self.limit.clone();
        Box::pin(async move {
            limit.acquire(n).await;
            put.await
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, WriteMultipart};

    #[tokio::test(start_paused = true)]
    async fn uploads_are_paced_to_the_rate() {
        let limit = Arc::new(RateLimit::new(1 << 20));
        let store = RateLimitedStore::new(Arc::new(InMemory::new()), limit);
        let t0 = Instant::now();
        let upload = store.put_multipart(&Path::from("a")).await.expect("starts");
        let mut w = WriteMultipart::new_with_chunk_size(upload, 1 << 20);
        for _ in 0..10 {
            w.wait_for_capacity(2).await.expect("part");
            w.put(bytes::Bytes::from(vec![0u8; 1 << 20]));
        }
        w.finish().await.expect("completes");
        store
            .put(&Path::from("b"), PutPayload::from(vec![0u8; 1 << 20]))
            .await
            .expect("put");
        let elapsed = t0.elapsed();
        // 11 MiB at 1 MiB/s: the last request may start at 10 s.
        assert!(elapsed >= Duration::from_secs(10), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(12), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_schedule() {
        let limit = Arc::new(RateLimit::new(1000));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let l = limit.clone();
                tokio::spawn(async move { l.acquire(1000).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("joins");
        }
        assert!(t0.elapsed() >= Duration::from_secs(4), "{:?}", t0.elapsed());
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("10MiB/s").unwrap(), 10 << 20);
        assert_eq!(parse_rate("512KiB").unwrap(), 512 << 10);
        assert!(parse_rate("1KiB/s").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
