//! The repository's storage, through `object_store` only.
//!
//! - [`location`]: `--repo` URL parsing (local path, `file://`, `s3://`,
//!   `gs://`, `az://`); its display is scheme/bucket/prefix only.
//! - [`options`]: `--repo-option key=value` (and policy-file tables),
//!   validated, secrets redacted.
//! - [`backend`]: building S3/GCS/Azure clients with pgkeep's timeouts and
//!   retries.
//! - [`bandwidth`]: the `--max-bandwidth` upload pacer.
//! - [`lease`]: the lease a running backup holds on its prefix.
//! - [`Repo`] (here): the calls pgkeep makes (create-only put, ranged get,
//!   list, delete), and the mapping of storage errors to messages a user can
//!   act on, without secrets or endpoints.

pub(crate) mod backend;
pub mod bandwidth;
pub mod delegate;
pub mod lease;
pub(crate) mod location;
pub mod options;
pub(crate) mod private;

pub use location::{BucketKind, Location};
pub use options::{RepoOptions, Secret};

use crate::error::{Error, Result};
use crate::redact::scrub_urls;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::client::HttpError;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    GetOptions, GetResultPayload, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, WriteMultipart,
};
use std::ops::Range;
use std::sync::Arc;

/// An open repository.
#[derive(Clone)]
pub struct Repo {
    store: Arc<dyn ObjectStore>,
    /// Single-part puts (manifest, lease): may send store-side checksums.
    put_store: Arc<dyn ObjectStore>,
    /// Printable location (scheme, bucket and prefix; never credentials).
    display: String,
    /// Whether the store takes `PutMode::Create` (If-None-Match).
    conditional_put: bool,
    remote: bool,
}

impl std::fmt::Debug for Repo {
    /// The location only: store clients' own `Debug` may show key ids.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repo({})", self.display)
    }
}

/// Whether opening may create the repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Backups create the directory of a new local repository.
    CreateIfMissing,
    /// Everything else requires it to exist.
    MustExist,
}

/// Installs ring as the process's rustls provider (object_store is built
/// with `reqwest/rustls-no-provider`, see docs/dependencies.md). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The causes of an error, joined (innermost last), scrubbed.
fn chain_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    scrub_urls(&s)
}

/// Whether a storage error means the store could not be reached (after
/// object_store's retries), as opposed to an answer from it: decided by
/// the error's type, never its text. object_store reports every transport
/// failure (connect, send, timeout, a connection cut mid-request or
/// mid-body, and ones reqwest does not classify) as an [`HttpError`]
/// somewhere in the cause chain; an answer from the store (an HTTP status
/// with its body) is a different error.
pub(crate) fn is_unreachable(e: &object_store::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<HttpError>().is_some() {
            return true;
        }
        cause = c.source();
    }
    false
}

impl Repo {
    /// Opens a local repository (plain path or `file://` URL), or a bucket
    /// with options from the environment only.
    pub fn open(location: &str, mode: OpenMode) -> Result<Repo> {
        Repo::open_with(location, &RepoOptions::default(), 0, mode)
    }

    /// Opens a repository to read it, or `None` when it is a local folder
    /// that does not exist (yet): a job that has not run has no backups,
    /// which its status says, rather than an unreadable repository.
    pub fn open_if_present(location: &str, options: &RepoOptions) -> Result<Option<Repo>> {
        if let Location::Local(dir) = Location::parse(location)? {
            if !dir.exists() {
                return Ok(None);
            }
        }
        Repo::open_with(location, options, 0, OpenMode::MustExist).map(Some)
    }

    /// Opens any repository. `request_bytes` is the largest request body
    /// the caller will send (its part size), which sizes the default request
    /// timeout of remote stores.
    pub fn open_with(
        location: &str,
        options: &RepoOptions,
        request_bytes: usize,
        mode: OpenMode,
    ) -> Result<Repo> {
        let loc = Location::parse(location)?;
        match &loc {
            Location::Local(dir) => {
                options.check_applies(None)?;
                Repo::open_local(dir, mode)
            }
            Location::Bucket {
                kind,
                bucket,
                prefix,
            } => {
                options.check_applies(Some(*kind))?;
                let c = backend::build(
                    *kind,
                    bucket,
                    options,
                    request_bytes.max(crate::units::MIN_PART_SIZE),
                )?;
                let (store, put_store): (Arc<dyn ObjectStore>, Arc<dyn ObjectStore>) =
                    if prefix.is_empty() {
                        (c.store, c.put_store)
                    } else {
                        (
                            Arc::new(PrefixStore::new(c.store, prefix.as_str())),
                            Arc::new(PrefixStore::new(c.put_store, prefix.as_str())),
                        )
                    };
                Ok(Repo {
                    store,
                    put_store,
                    display: loc.to_string(),
                    conditional_put: c.conditional_put,
                    remote: true,
                })
            }
        }
    }

    fn open_local(dir: &std::path::Path, mode: OpenMode) -> Result<Repo> {
        if !dir.is_dir() {
            match mode {
                OpenMode::CreateIfMissing => {
                    private::create_private_dir(dir).map_err(|source| Error::Io {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                OpenMode::MustExist => {
                    return Err(Error::Config(format!(
                        "repository {} does not exist (a backup creates it)",
                        dir.display()
                    )))
                }
            }
        }
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(Error::store(format!(
            "opening repository {}",
            dir.display()
        )))?;
        let store: Arc<dyn ObjectStore> =
            Arc::new(private::PrivateFiles::new(Arc::new(fs), dir.to_path_buf()));
        Ok(Repo {
            put_store: store.clone(),
            store,
            display: dir.display().to_string(),
            conditional_put: true,
            remote: false,
        })
    }

    /// Wraps any store (in-memory, throttled, ...), for tests and embedding.
    pub fn from_store(store: Arc<dyn ObjectStore>, display: impl Into<String>) -> Repo {
        Repo {
            put_store: store.clone(),
            store,
            display: display.into(),
            conditional_put: true,
            remote: false,
        }
    }

    /// The same repository with data uploads paced to `bytes_per_sec`.
    /// Small single puts (manifest, lease renewals) are not paced: a lease
    /// renewal must not wait behind queued parts.
    pub fn with_max_bandwidth(mut self, bytes_per_sec: u64) -> Repo {
        let limit = Arc::new(bandwidth::RateLimit::new(bytes_per_sec));
        self.store = Arc::new(bandwidth::RateLimitedStore::new(self.store, limit));
        self
    }

    /// The same repository with every client wrapped by `wrap` (counting,
    /// fault injection, throttling in tests).
    pub fn map_store(
        mut self,
        wrap: impl Fn(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>,
    ) -> Repo {
        let same = Arc::ptr_eq(&self.store, &self.put_store);
        self.store = wrap(self.store);
        self.put_store = if same {
            self.store.clone()
        } else {
            wrap(self.put_store)
        };
        self
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Whether the repository is reached over the network.
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// Maps a storage error to pgkeep's, naming what was being done.
    pub fn err(&self, context: impl Into<String>) -> impl FnOnce(object_store::Error) -> Error {
        let context = context.into();
        let repo = self.display.clone();
        move |source| {
            if is_unreachable(&source) {
                Error::StoreUnavailable {
                    repo,
                    context,
                    detail: chain_text(&source),
                }
            } else {
                Error::Store { context, source }
            }
        }
    }

    /// Writes a small object only if it does not exist yet (manifests).
    /// Where the store has no create-only put (`conditional_put=false`), it
    /// checks first and then writes: two writers racing within that window
    /// could both succeed (docs/storage.md).
    pub async fn put_new(&self, path: &Path, bytes: Vec<u8>) -> Result<()> {
        if !self.conditional_put {
            if self.exists(path).await? {
                return Err(Error::Store {
                    context: format!("writing {path}"),
                    source: object_store::Error::AlreadyExists {
                        path: path.to_string(),
                        source: "the object already exists".into(),
                    },
                });
            }
            self.put(path, bytes).await?;
            return Ok(());
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.put_store
            .put_opts(path, PutPayload::from(bytes), opts)
            .await
            .map_err(self.err(format!("writing {path}")))?;
        Ok(())
    }

    /// Writes (or atomically replaces) a small object: leases, key records,
    /// manifests re-wrapped by key rotation, verification records.
    pub async fn put(&self, path: &Path, bytes: Vec<u8>) -> Result<()> {
        self.put_store
            .put_opts(path, PutPayload::from(bytes), PutOptions::default())
            .await
            .map_err(self.err(format!("writing {path}")))?;
        Ok(())
    }

    pub async fn delete(&self, path: &Path) -> Result<()> {
        self.store
            .delete(path)
            .await
            .map_err(self.err(format!("deleting {path}")))
    }

    pub async fn get(&self, path: &Path) -> Result<Bytes> {
        let r = self
            .store
            .get(path)
            .await
            .map_err(self.err(format!("reading {path}")))?;
        r.bytes().await.map_err(self.err(format!("reading {path}")))
    }

    /// Reads a small object that may not exist: one request, `None` when it
    /// is absent (instead of a `head` before every `get`).
    pub async fn get_opt(&self, path: &Path) -> Result<Option<Bytes>> {
        match self.get(path).await {
            Ok(b) => Ok(Some(b)),
            Err(Error::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A ranged read that also returns the object's full size, taken from
    /// the same response (`Content-Range`), so a reader learns of bytes cut
    /// off or appended without another request.
    pub async fn get_range_sized(&self, path: &Path, range: Range<u64>) -> Result<(Bytes, u64)> {
        let (bytes, size) = self.get_range_into(path, range, Vec::new()).await?;
        Ok((Bytes::from(bytes), size))
    }

    /// [`Repo::get_range_sized`] into a buffer of the caller's (appended
    /// to `out`, typically a pooled frame buffer, so reads cost no fresh
    /// allocation): a local file is read straight into it, a remote body is
    /// copied in chunk by chunk. Returns the buffer and the object's size; a
    /// range past the end yields the bytes there are.
    pub async fn get_range_into<B>(
        &self,
        path: &Path,
        range: Range<u64>,
        mut out: B,
    ) -> Result<(B, u64)>
    where
        B: AsMut<Vec<u8>> + Send + 'static,
    {
        let context = || format!("reading {path} bytes {}..{}", range.start, range.end);
        let r = match self
            .store
            .get_opts(path, GetOptions::new().with_range(Some(range.clone())))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // Stores refuse a range that starts at or past the end (an
                // object cut short): then there are no bytes to return, and
                // the caller reports the short read as damage.
                if let Ok(Some(meta)) = self.head(path).await {
                    if meta.size <= range.start {
                        return Ok((out, meta.size));
                    }
                }
                return Err(self.err(context())(e));
            }
        };
        let size = r.meta.size;
        let got = r.range.clone();
        match r.payload {
            GetResultPayload::File(mut file, local) => {
                let len = got.end.saturating_sub(got.start);
                out = tokio::task::spawn_blocking(move || {
                    use std::io::{Read, Seek, SeekFrom};
                    let read = file.seek(SeekFrom::Start(got.start)).and_then(|_| {
                        let buf = out.as_mut();
                        buf.reserve(usize::try_from(len).unwrap_or(usize::MAX));
                        (&mut file).take(len).read_to_end(buf)
                    });
                    read.map(|_| out).map_err(|source| Error::Io {
                        path: local,
                        source,
                    })
                })
                .await
                .map_err(|e| Error::Internal(format!("read task: {e}")))??;
            }
            GetResultPayload::Stream(mut body) => {
                while let Some(chunk) = body.next().await {
                    out.as_mut()
                        .extend_from_slice(&chunk.map_err(self.err(context()))?);
                }
            }
        }
        Ok((out, size))
    }

    pub async fn head(&self, path: &Path) -> Result<Option<ObjectMeta>> {
        match self.store.head(path).await {
            Ok(m) => Ok(Some(m)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(format!("checking {path}"))(e)),
        }
    }

    pub async fn exists(&self, path: &Path) -> Result<bool> {
        Ok(self.head(path).await?.is_some())
    }

    /// Immediate children (directories) of a prefix.
    pub async fn list_dirs(&self, prefix: &Path) -> Result<Vec<String>> {
        let r = self
            .store
            .list_with_delimiter(Some(prefix))
            .await
            .map_err(self.err(format!("listing {prefix}")))?;
        Ok(r.common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Every object under a prefix, with sizes.
    pub async fn list_all(&self, prefix: &Path) -> Result<Vec<(Path, u64)>> {
        Ok(self
            .list_meta(prefix)
            .await?
            .into_iter()
            .map(|m| (m.location, m.size))
            .collect())
    }

    /// Every object under a prefix, with its metadata.
    pub async fn list_meta(&self, prefix: &Path) -> Result<Vec<ObjectMeta>> {
        self.store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(self.err(format!("listing {prefix}")))
    }

    /// Deletes every object under a prefix (bulk deletes where the store
    /// has them); returns how many were deleted. Objects already gone are
    /// not an error; the first other error is returned after trying all.
    pub async fn delete_prefix(&self, prefix: &Path) -> Result<u64> {
        let objects = self.list_all(prefix).await?;
        self.delete_paths(
            objects.into_iter().map(|(p, _)| p).collect(),
            &format!("under {prefix}"),
        )
        .await
    }

    /// Deletes many objects with the store's bulk delete (S3: up to 1,000
    /// a request); an object already gone counts as deleted. `what` names
    /// them in an error.
    pub async fn delete_paths(&self, paths: Vec<Path>, what: &str) -> Result<u64> {
        let paths = futures::stream::iter(paths.into_iter().map(Ok)).boxed();
        let mut results = self.store.delete_stream(paths);
        let mut deleted = 0u64;
        let mut first_err = None;
        while let Some(r) = results.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(self.err(format!("deleting {what}"))(e));
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }

    /// Starts a multipart upload with the given part size. Every part but
    /// the last is exactly `part_size` bytes (`WriteMultipart` cuts its
    /// buffer at that size), as R2 requires.
    pub async fn multipart(&self, path: &Path, part_size: usize) -> Result<WriteMultipart> {
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(self.err(format!("starting upload of {path}")))?;
        Ok(WriteMultipart::new_with_chunk_size(upload, part_size))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unreachable_is_told_by_the_error_type() {
        use object_store::client::{HttpError, HttpErrorKind};
        let transport = |kind| object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(
                kind,
                std::io::Error::other("connection reset"),
            )),
        };
        for kind in [
            HttpErrorKind::Connect,
            HttpErrorKind::Request,
            HttpErrorKind::Timeout,
            HttpErrorKind::Interrupted,
            HttpErrorKind::Decode,
            HttpErrorKind::Unknown,
        ] {
            assert!(is_unreachable(&transport(kind)), "{kind:?}");
        }
        // An answer from the store, or a text that merely sounds like a
        // transport failure, is not.
        let answered = object_store::Error::NotFound {
            path: "x".into(),
            source: "404 connection refused in the body".into(),
        };
        assert!(!is_unreachable(&answered));
        let text = object_store::Error::Generic {
            store: "S3",
            source: "error sending request: timed out".into(),
        };
        assert!(!is_unreachable(&text));
    }

    use super::*;

    #[test]
    fn remote_options_on_a_local_repo_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let o = RepoOptions::from_pairs(["region=eu"]).unwrap();
        let e =
            Repo::open_with(dir.path().to_str().unwrap(), &o, 0, OpenMode::MustExist).unwrap_err();
        assert!(e.to_string().contains("local directory"), "{e}");
    }

    #[test]
    fn bucket_repos_display_without_secrets() {
        let o = RepoOptions::from_pairs([
            "endpoint=http://127.0.0.1:1",
            "allow_http=true",
            "access_key_id=AKIAEXAMPLE",
            "secret_access_key=hunter2",
            "region=us-east-1",
        ])
        .unwrap();
        let r = Repo::open_with("s3://bucket/some/prefix", &o, 0, OpenMode::MustExist).unwrap();
        assert_eq!(r.display(), "s3://bucket/some/prefix");
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(r.is_remote());
    }

    #[tokio::test]
    async fn ranged_reads_land_in_reused_pool_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::open_with(
            dir.path().to_str().unwrap(),
            &RepoOptions::default(),
            0,
            OpenMode::CreateIfMissing,
        )
        .unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let path = Path::from("obj");
        repo.put(&path, data.clone()).await.unwrap();
        let pool = crate::pipeline::BufferPool::new(64 * 1024, 2);
        // A buffer that held other bytes comes back empty and is filled
        // with exactly the range, also when the range runs past the end.
        let mut stale = pool.take(0);
        stale.extend_from_slice(&[0xee; 5000]);
        drop(stale);
        for range in [10..5010u64, 99_000..100_500] {
            let (buf, size) = repo
                .get_range_into(&path, range.clone(), pool.take(0))
                .await
                .unwrap();
            assert_eq!(size, 100_000);
            assert_eq!(
                &buf[..],
                &data[range.start as usize..range.end.min(100_000) as usize]
            );
        }
        assert_eq!(pool.allocated(), 1, "every read reused the one buffer");
    }
}
