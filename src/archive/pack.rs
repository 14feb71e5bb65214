//! Pack writer: appends encoded frames to one pack object through a
//! multipart upload, with backpressure (`wait_for_capacity`) so a slow store
//! slows the COPY instead of filling memory. Hashes the whole object as it
//! goes.

use super::layout;
use super::manifest::{FrameRef, PackInfo};
use crate::error::{Error, Result};
use crate::pipeline::EncodedFrame;
use crate::store::Repo;
use object_store::WriteMultipart;
use sha2::{Digest, Sha256};

pub struct PackWriter {
    repo: Repo,
    name: String,
    index: u32,
    upload: Option<WriteMultipart>,
    hasher: Sha256,
    offset: u64,
    part_size: usize,
    concurrency: usize,
}

impl PackWriter {
    /// Starts pack `index` of backup `backup_id`.
    pub async fn create(
        repo: &Repo,
        backup_id: &str,
        index: u32,
        part_size: usize,
        concurrency: usize,
    ) -> Result<PackWriter> {
        let name = format!("pack-{index:05}");
        let upload = repo
            .multipart(&layout::pack_path(backup_id, &name), part_size)
            .await?;
        Ok(PackWriter {
            repo: repo.clone(),
            name,
            index,
            upload: Some(upload),
            hasher: Sha256::new(),
            offset: 0,
            part_size: part_size.max(1),
            concurrency: concurrency.max(1),
        })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn len(&self) -> u64 {
        self.offset
    }

    pub fn is_empty(&self) -> bool {
        self.offset == 0
    }

    /// Appends a frame and returns where it landed.
    pub async fn append(&mut self, frame: &EncodedFrame) -> Result<FrameRef> {
        let upload = self
            .upload
            .as_mut()
            .ok_or_else(|| Error::Internal("append to a finished pack".into()))?;
        // `put` starts a part upload once `part_size` bytes are buffered:
        // before a frame that completes a part, wait until fewer than
        // `concurrency` parts are in flight, so at most `concurrency` parts
        // upload while the next one fills (what the budget plans for).
        let buffered = (self.offset % self.part_size as u64) as usize;
        if buffered + frame.bytes.len() >= self.part_size {
            upload
                .wait_for_capacity(self.concurrency - 1)
                .await
                .map_err(self.repo.err(format!("uploading {}", self.name)))?;
        }
        upload.put(frame.bytes.clone());
        self.hasher.update(&frame.bytes);
        let r = FrameRef {
            pack: self.index,
            offset: self.offset,
            len: u32::try_from(frame.bytes.len())
                .map_err(|_| Error::Internal("frame too large".into()))?,
            rows: frame.header.rows,
            plain_len: frame.header.plain_len,
            sha256: hex::encode(frame.header.sha256),
        };
        self.offset += frame.bytes.len() as u64;
        Ok(r)
    }

    /// Completes the upload.
    pub async fn finish(mut self) -> Result<PackInfo> {
        let upload = self
            .upload
            .take()
            .ok_or_else(|| Error::Internal("pack finished twice".into()))?;
        upload
            .finish()
            .await
            .map_err(self.repo.err(format!("completing {}", self.name)))?;
        Ok(PackInfo {
            name: self.name.clone(),
            size: self.offset,
            sha256: hex::encode(std::mem::take(&mut self.hasher).finalize()),
        })
    }

    /// Abandons the upload (failed backup).
    pub async fn abort(mut self) {
        if let Some(u) = self.upload.take() {
            if let Err(e) = u.abort().await {
                tracing::warn!(pack = %self.name, error = %e, "could not abort upload");
            }
        }
    }
}

impl Drop for PackWriter {
    /// A pack dropped unfinished (task aborted, interrupted backup) aborts its
    /// upload in the background so no half-written object is left behind.
    fn drop(&mut self) {
        if let Some(u) = self.upload.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = u.abort().await;
                });
            }
        }
    }
}
