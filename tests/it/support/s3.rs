//! A real S3 API server for the tests: `moto_server` (PyPI `moto[server]`,
//! installed by `.ci/run`) on a free loopback port, one per test, killed on
//! drop. Plus [`CutProxy`], a TCP proxy the test controls to make the server
//! unreachable mid-backup without losing its state (moto keeps buckets in
//! memory: a restarted moto is an empty server, which would prove nothing
//! about leftovers), and [`RecordingStore`], which records every request and
//! each multipart upload's part sizes.

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};
use pgkeep::store::{OpenMode, Repo, RepoOptions};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::Range;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const INSTALL_HINT: &str =
    "moto_server is required for the S3 tests: install it with `pip install 'moto[server]'` (.ci/run does)";

/// A running `moto_server`.
pub struct MotoServer {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The `moto_server` executable, or a panic telling how to install it.
pub fn moto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PGKEEP_MOTO_SERVER") {
        return p.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let c = dir.join("moto_server");
        if c.is_file() {
            return c;
        }
    }
    panic!("{INSTALL_HINT}");
}

impl MotoServer {
    pub fn start() -> MotoServer {
        let bin = moto_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("moto.log");
        for _attempt in 0..3 {
            let port = free_port();
            let out = std::fs::File::create(&log).expect("log file");
            let err = out.try_clone().expect("log file");
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL_HINT}", bin.display()));
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(60) {
                if let Ok(Some(status)) = child.try_wait() {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if text.contains("Address already in use") {
                        break;
                    }
                    panic!("moto_server exited ({status}):\n{text}\n{INSTALL_HINT}");
                }
                if http(port, "GET", "/", b"").is_ok() {
                    return MotoServer {
                        child,
                        port,
                        log,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "moto_server did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (moto takes unsigned requests).
    pub fn create_bucket(&self, bucket: &str) {
        let status = http(self.port, "PUT", &format!("/{bucket}"), b"").expect("create bucket");
        assert!(status < 300, "create bucket {bucket}: HTTP {status}");
    }

    /// Multipart uploads moto holds open in a bucket (ListMultipartUploads).
    pub fn open_uploads(&self, bucket: &str) -> usize {
        let text = http_text(self.port, "GET", &format!("/{bucket}?uploads"), &[], b"")
            .expect("list uploads");
        assert!(
            text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200"),
            "{text}"
        );
        text.matches("<UploadId>").count()
    }

    /// Requests moto has logged so far, by method (werkzeug's access log).
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut m = BTreeMap::new();
        for line in text.lines() {
            if let Some(i) = line.find("\"") {
                if let Some(method) = line[i + 1..].split(' ').next() {
                    if ["GET", "PUT", "POST", "DELETE", "HEAD"].contains(&method) {
                        *m.entry(method.to_string()).or_insert(0) += 1;
                    }
                }
            }
        }
        m
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 request; returns the status code.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<u16> {
    let text = http_text(port, method, path, &[], body)?;
    let head = text.get(..text.len().min(64)).unwrap_or("");
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad HTTP response: {head:?}")))
}

/// A minimal HTTP/1.1 request with extra headers; returns the whole
/// response (status line, headers, body) as text.
pub fn http_text(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Repository options for a loopback S3 endpoint (dummy credentials, path
/// style, plain HTTP, few retries so failures surface quickly).
pub fn s3_options(endpoint: &str) -> RepoOptions {
    RepoOptions::from_pairs([
        format!("endpoint={endpoint}"),
        "region=us-east-1".into(),
        "access_key_id=testing".into(),
        "secret_access_key=testing".into(),
        "allow_http=true".into(),
        "virtual_hosted_style=false".into(),
        "max_retries=2".into(),
        "retry_timeout=5s".into(),
        "request_timeout=20s".into(),
    ])
    .expect("test options parse")
}

/// An S3 repository in a fresh bucket of `server`.
pub fn s3_repo(endpoint: &str, bucket: &str, prefix: &str) -> Repo {
    Repo::open_with(
        &format!("s3://{bucket}/{prefix}"),
        &s3_options(endpoint),
        5 << 20,
        OpenMode::CreateIfMissing,
    )
    .expect("s3 repository opens")
}

/// A TCP proxy in front of a server that the test can cut: every open
/// connection is dropped and new ones are closed at once, until restored.
/// It can also cut itself once a number of bytes went upstream.
pub struct CutProxy {
    pub port: u16,
    state: Arc<ProxyState>,
    _task: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    cut: tokio::sync::watch::Sender<bool>,
    upstream_bytes: AtomicU64,
    cut_after: AtomicU64,
    /// Request line and `x-amz-checksum-sha256` value of each request seen.
    requests: Mutex<Vec<(String, Option<String>)>>,
    /// Request line and `Range` value of each ranged request.
    ranges: Mutex<Vec<(String, String)>>,
}

/// Records the request line and checksum header of a chunk that starts a
/// request (hyper writes a request head in one piece).
fn note_request(st: &ProxyState, chunk: &[u8]) {
    let head = String::from_utf8_lossy(&chunk[..chunk.len().min(8192)]);
    let Some(line) = head.lines().next() else {
        return;
    };
    if !["GET ", "PUT ", "POST ", "HEAD ", "DELETE "]
        .iter()
        .any(|m| line.starts_with(m))
    {
        return;
    }
    let header = |name: &str| {
        head.split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
    };
    if let Some(range) = header("range") {
        if let Ok(mut r) = st.ranges.lock() {
            r.push((line.to_string(), range));
        }
    }
    if let Ok(mut r) = st.requests.lock() {
        r.push((line.to_string(), header("x-amz-checksum-sha256")));
    }
}

impl CutProxy {
    pub async fn start(target_port: u16) -> CutProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy binds");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(ProxyState {
            cut: tokio::sync::watch::channel(false).0,
            upstream_bytes: AtomicU64::new(0),
            cut_after: AtomicU64::new(u64::MAX),
            requests: Mutex::new(Vec::new()),
            ranges: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if *st.cut.borrow() {
                    drop(client);
                    continue;
                }
                let st = st.clone();
                tokio::spawn(async move {
                    let Ok(server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                    else {
                        return;
                    };
                    pipe(client, server, st).await;
                });
            }
        });
        CutProxy {
            port,
            state,
            _task: task,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Cuts once this many more bytes have gone upstream.
    pub fn cut_after(&self, bytes: u64) {
        let now = self.state.upstream_bytes.load(Ordering::SeqCst);
        self.state
            .cut_after
            .store(now.saturating_add(bytes), Ordering::SeqCst);
    }

    /// (request line, `x-amz-checksum-sha256`) of every request so far.
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// (request line, `Range` header) of every ranged request so far.
    pub fn ranged_requests(&self) -> Vec<(String, String)> {
        self.state
            .ranges
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    pub fn is_cut(&self) -> bool {
        *self.state.cut.borrow()
    }

    pub fn restore(&self) {
        self.state.cut_after.store(u64::MAX, Ordering::SeqCst);
        self.state.cut.send_replace(false);
    }
}

async fn pipe(client: tokio::net::TcpStream, server: tokio::net::TcpStream, st: Arc<ProxyState>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let mut cut_rx = st.cut.subscribe();
    let mut cut_rx2 = st.cut.subscribe();
    let st2 = st.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = tokio::select! {
                r = cr.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
                _ = cut_rx.wait_for(|c| *c) => return,
            };
            note_request(&st2, &buf[..n]);
            let total = st2.upstream_bytes.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= st2.cut_after.load(Ordering::SeqCst) {
                st2.cut.send_replace(true);
                return;
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = tokio::select! {
                r = sr.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
                _ = cut_rx2.wait_for(|c| *c) => return,
            };
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Either side ending (or a cut) drops both halves of both sockets.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Standard base64 (for comparing S3 checksum headers).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Records requests and part sizes; delegates everything.
#[derive(Debug)]
pub struct RecordingStore {
    inner: Arc<dyn ObjectStore>,
    pub log: Arc<Recording>,
}

#[derive(Debug, Default)]
pub struct Recording {
    pub requests: AtomicU64,
    pub uploads_aborted: AtomicU64,
    pub uploads_completed: AtomicU64,
    /// Part sizes of each multipart upload, by object path.
    pub parts: Mutex<BTreeMap<String, Vec<usize>>>,
    pub create_only_puts: AtomicU64,
    pub closed: AtomicBool,
}

impl RecordingStore {
    pub fn wrap(inner: Arc<dyn ObjectStore>, log: Arc<Recording>) -> Arc<dyn ObjectStore> {
        Arc::new(RecordingStore { inner, log })
    }

    fn count(&self) {
        self.log.requests.fetch_add(1, Ordering::SeqCst);
    }
}

impl std::fmt::Display for RecordingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recording({})", self.inner)
    }
}

pgkeep::delegate_object_store!(RecordingStore, {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.count();
        if matches!(opts.mode, object_store::PutMode::Create) {
            self.log.create_only_puts.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.count();
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        self.log
            .parts
            .lock()
            .expect("lock")
            .insert(location.to_string(), Vec::new());
        Ok(Box::new(RecordingUpload {
            inner,
            path: location.to_string(),
            log: self.log.clone(),
        }))
    }
});

#[derive(Debug)]
struct RecordingUpload {
    inner: Box<dyn MultipartUpload>,
    path: String,
    log: Arc<Recording>,
}

#[async_trait]
impl MultipartUpload for RecordingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.log.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(v) = self.log.parts.lock().expect("lock").get_mut(&self.path) {
            v.push(data.content_length());
        }
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.log.requests.fetch_add(1, Ordering::SeqCst);
        let r = self.inner.complete().await;
        if r.is_ok() {
            self.log.uploads_completed.fetch_add(1, Ordering::SeqCst);
        }
        r
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.log.requests.fetch_add(1, Ordering::SeqCst);
        self.log.uploads_aborted.fetch_add(1, Ordering::SeqCst);
        self.inner.abort().await
    }
}
