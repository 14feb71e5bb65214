//! Pack writer: appends encoded frames to one pack object through a
//! multipart upload, with backpressure (`wait_for_capacity`) so a slow store
//! slows the COPY instead of filling memory. Hashes the whole object as it
//! goes. [`PackSink`] rotates a writer's packs; [`PackSet`] numbers them
//! across a backup's writers.

use super::layout;
use super::manifest::{FrameRef, PackInfo};
use crate::error::{Error, Result};
use crate::pipeline::EncodedFrame;
use crate::store::Repo;
use object_store::WriteMultipart;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

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

/// What every pack of one backup shares: where packs go, how they upload,
/// when they rotate, and the next pack number (packs are numbered across
/// all of a backup's workers).
pub struct PackSet {
    pub repo: Repo,
    pub backup_id: String,
    /// A pack is closed once it holds this many bytes (checked before each
    /// frame, so a pack never exceeds it by more than a frame).
    pub pack_bytes: u64,
    pub part_size: usize,
    pub upload_concurrency: usize,
    next: AtomicU32,
}

impl PackSet {
    pub fn new(
        repo: Repo,
        backup_id: String,
        pack_bytes: u64,
        part_size: usize,
        upload_concurrency: usize,
    ) -> PackSet {
        PackSet {
            repo,
            backup_id,
            pack_bytes,
            part_size,
            upload_concurrency,
            next: AtomicU32::new(0),
        }
    }
}

/// One writer's current pack and the packs it has completed. Packs rotate
/// at frame boundaries once they reach `pack_bytes`, also in the middle of
/// a stream (a frame records its pack), so no object outgrows the part
/// limit.
pub struct PackSink {
    set: Arc<PackSet>,
    current: Option<PackWriter>,
    done: Vec<(u32, PackInfo)>,
}

impl PackSink {
    pub fn new(set: Arc<PackSet>) -> PackSink {
        PackSink {
            set,
            current: None,
            done: Vec::new(),
        }
    }

    /// Appends a frame to the current pack (starting one, or rotating to a
    /// new one when full) and returns where it landed.
    pub async fn append(&mut self, frame: &EncodedFrame) -> Result<FrameRef> {
        if self
            .current
            .as_ref()
            .is_some_and(|p| p.len() >= self.set.pack_bytes)
        {
            self.close().await?;
        }
        let pack = match &mut self.current {
            Some(p) => p,
            None => {
                let set = &self.set;
                let idx = set.next.fetch_add(1, Ordering::SeqCst);
                self.current.insert(
                    PackWriter::create(
                        &set.repo,
                        &set.backup_id,
                        idx,
                        set.part_size,
                        set.upload_concurrency,
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

    /// Completes the current pack and returns every pack this sink wrote,
    /// with its number.
    pub async fn finish(mut self) -> Result<Vec<(u32, PackInfo)>> {
        self.close().await?;
        Ok(std::mem::take(&mut self.done))
    }

    /// Abandons the current upload (failed backup).
    pub async fn abort(&mut self) {
        if let Some(p) = self.current.take() {
            p.abort().await;
        }
    }
}
