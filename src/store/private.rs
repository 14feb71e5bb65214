//! Private local repositories: everything pgkeep writes into a local
//! directory is readable by its owner only, files `0600` and folders
//! `0700` (as restic does). A backup that is not encrypted is the
//! database's data in the clear, and a passphrase-wrapped key is something
//! to guess at offline: neither is for other local users. The folders of
//! an object are created `0700` before it is written (so its staging file
//! is never reachable by others) and the object is made `0600` once it is
//! complete. Reading needs no particular mode: a repository copied with
//! other modes still restores and verifies.

use crate::delegate_object_store;
use object_store::path::Path;
use object_store::{
    MultipartUpload, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    UploadPart,
};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

/// Mode of every file pgkeep writes into a local repository.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every folder pgkeep creates in a local repository.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parents with [`DIR_MODE`].
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// A local store (`inner`, rooted at `root`) whose writes are private.
#[derive(Debug)]
pub struct PrivateFiles {
    inner: Arc<dyn ObjectStore>,
    root: PathBuf,
}

impl std::fmt::Display for PrivateFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateFiles({})", self.inner)
    }
}

impl PrivateFiles {
    pub fn new(inner: Arc<dyn ObjectStore>, root: PathBuf) -> PrivateFiles {
        PrivateFiles { inner, root }
    }

    fn file(&self, location: &Path) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(location.parts().map(|part| part.as_ref().to_string()));
        p
    }

    /// Creates the object's folders with [`DIR_MODE`] before it is written.
    fn prepare(&self, location: &Path) -> object_store::Result<()> {
        if let Some(parent) = self.file(location).parent() {
            create_private_dir(parent).map_err(|e| generic(location, e))?;
        }
        Ok(())
    }
}

fn generic(location: &Path, e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("setting the mode of {location}: {e}").into(),
    }
}

/// Makes a written object readable by its owner only.
fn restrict(file: &std::path::Path, location: &Path) -> object_store::Result<()> {
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(FILE_MODE))
        .map_err(|e| generic(location, e))
}

delegate_object_store!(PrivateFiles, {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.prepare(location)?;
        let r = self.inner.put_opts(location, payload, opts).await?;
        restrict(&self.file(location), location)?;
        Ok(r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.prepare(location)?;
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(PrivateUpload {
            inner,
            file: self.file(location),
            location: location.clone(),
        }))
    }
});

/// A multipart upload whose object is made private when it completes.
#[derive(Debug)]
struct PrivateUpload {
    inner: Box<dyn MultipartUpload>,
    file: PathBuf,
    location: Path,
}

#[async_trait::async_trait]
impl MultipartUpload for PrivateUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let r = self.inner.complete().await?;
        restrict(&self.file, &self.location)?;
        Ok(r)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}
