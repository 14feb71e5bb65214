//! The repository's storage, through `object_store` only: URL → store, the
//! calls pgkeep makes (create-only put, ranged get, list, delete), and the
//! mapping of storage errors to messages a user can act on.

use crate::error::{Error, Result};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use std::ops::Range;
use std::sync::Arc;

/// An open repository.
#[derive(Clone, Debug)]
pub struct Repo {
    store: Arc<dyn ObjectStore>,
    /// Printable location (never carries credentials).
    display: String,
}

/// Whether opening may create the repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Backups create the directory of a new local repository.
    CreateIfMissing,
    /// Everything else requires it to exist.
    MustExist,
}

impl Repo {
    /// Opens a repository from a plain path or `file://` URL.
    pub fn open(location: &str, mode: OpenMode) -> Result<Repo> {
        let path = if let Some(rest) = location.strip_prefix("file://") {
            rest.to_string()
        } else if location.contains("://") {
            let scheme = location.split("://").next().unwrap_or("");
            return Err(Error::Config(format!(
                "repository scheme {scheme}:// is not supported yet (use a local path or file:// URL)"
            )));
        } else {
            location.to_string()
        };
        if path.is_empty() {
            return Err(Error::Config("empty repository path".into()));
        }
        let dir = std::path::PathBuf::from(&path);
        if !dir.is_dir() {
            match mode {
                OpenMode::CreateIfMissing => {
                    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
                        path: dir.clone(),
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
        let fs = LocalFileSystem::new_with_prefix(&dir).map_err(Error::store(format!(
            "opening repository {}",
            dir.display()
        )))?;
        Ok(Repo {
            store: Arc::new(fs),
            display: dir.display().to_string(),
        })
    }

    /// Wraps any store (in-memory, throttled, ...), for tests and embedding.
    pub fn from_store(store: Arc<dyn ObjectStore>, display: impl Into<String>) -> Repo {
        Repo {
            store,
            display: display.into(),
        }
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Writes a small object only if it does not exist yet (manifests).
    pub async fn put_new(&self, path: &Path, bytes: Vec<u8>) -> Result<()> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.store
            .put_opts(path, PutPayload::from(bytes), opts)
            .await
            .map_err(Error::store(format!("writing {path}")))?;
        Ok(())
    }

    /// Writes a small object, replacing any previous version atomically
    /// (key records, manifests re-wrapped by key rotation).
    pub async fn put(&self, path: &Path, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(path, PutPayload::from(bytes))
            .await
            .map_err(Error::store(format!("writing {path}")))?;
        Ok(())
    }

    pub async fn delete(&self, path: &Path) -> Result<()> {
        self.store
            .delete(path)
            .await
            .map_err(Error::store(format!("deleting {path}")))
    }

    pub async fn get(&self, path: &Path) -> Result<Bytes> {
        let r = self
            .store
            .get(path)
            .await
            .map_err(Error::store(format!("reading {path}")))?;
        r.bytes()
            .await
            .map_err(Error::store(format!("reading {path}")))
    }

    pub async fn get_range(&self, path: &Path, range: Range<u64>) -> Result<Bytes> {
        self.store
            .get_range(path, range.clone())
            .await
            .map_err(Error::store(format!(
                "reading {path} bytes {}..{}",
                range.start, range.end
            )))
    }

    pub async fn exists(&self, path: &Path) -> Result<bool> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Error::store(format!("checking {path}"))(e)),
        }
    }

    /// Immediate children (directories) of a prefix.
    pub async fn list_dirs(&self, prefix: &Path) -> Result<Vec<String>> {
        let r = self
            .store
            .list_with_delimiter(Some(prefix))
            .await
            .map_err(Error::store(format!("listing {prefix}")))?;
        Ok(r.common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Every object under a prefix, with sizes.
    pub async fn list_all(&self, prefix: &Path) -> Result<Vec<(Path, u64)>> {
        self.store
            .list(Some(prefix))
            .map_ok(|m| (m.location, m.size))
            .try_collect()
            .await
            .map_err(Error::store(format!("listing {prefix}")))
    }

    /// Deletes every object under a prefix (best effort on each, first error returned).
    pub async fn delete_prefix(&self, prefix: &Path) -> Result<()> {
        let objects = self.list_all(prefix).await?;
        let mut first_err = None;
        for (p, _) in objects {
            if let Err(e) = self.store.delete(&p).await {
                if first_err.is_none() {
                    first_err = Some(Error::store(format!("deleting {p}"))(e));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Starts a multipart upload with the given part size.
    pub async fn multipart(&self, path: &Path, part_size: usize) -> Result<WriteMultipart> {
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(Error::store(format!("starting upload of {path}")))?;
        Ok(WriteMultipart::new_with_chunk_size(upload, part_size))
    }
}
