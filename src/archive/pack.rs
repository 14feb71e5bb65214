//! Pack writer: appends encoded frames to one pack object through a
//! multipart upload, with backpressure (`wait_for_capacity`) so a slow store
//! slows the COPY instead of filling memory. Frames are copied into
//! part-sized pooled buffers, so the upload holds `part_size` bytes per part
//! however well the frames compressed, and each frame's buffer is free as
//! soon as it is appended. A pack is its frames back to back and has no
//! hash of its own: each frame's hash covers all of its bytes.
//! [`PackSink`] rotates a writer's packs; [`PackSet`] numbers them across a
//! backup's writers.

use super::layout;
use super::manifest::{FrameRef, PackInfo, Sha256Hex};
use crate::error::{Error, Result};
use crate::pipeline::{BufferPool, EncodedFrame, PooledBuf};
use crate::store::Repo;
use object_store::WriteMultipart;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

pub struct PackWriter {
    repo: Repo,
    name: String,
    index: u32,
    upload: Option<WriteMultipart>,
    /// The part being filled, taken from `parts` when the first byte comes.
    part: Option<PooledBuf>,
    parts: BufferPool,
    offset: u64,
    part_size: usize,
    concurrency: usize,
}

impl PackWriter {
    /// Starts pack `index` of backup `backup_id`, its parts from `parts`
    /// (a pool of `part_size` buffers).
    pub async fn create(
        repo: &Repo,
        backup_id: &str,
        index: u32,
        parts: BufferPool,
        concurrency: usize,
    ) -> Result<PackWriter> {
        let part_size = parts.buffer_capacity().max(1);
        let name = format!("pack-{index:05}");
        let upload = repo
            .multipart(&layout::pack_path(backup_id, &name), part_size)
            .await?;
        Ok(PackWriter {
            repo: repo.clone(),
            name,
            index,
            upload: Some(upload),
            part: None,
            parts,
            offset: 0,
            part_size,
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
        let mut rest = &frame.bytes[..];
        while !rest.is_empty() {
            let parts = &self.parts;
            let part = self.part.get_or_insert_with(|| parts.take(self.part_size));
            let take = rest.len().min(self.part_size - part.len());
            part.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if part.len() == self.part_size {
                self.send_part().await?;
            }
        }
        let r = FrameRef {
            pack: self.index,
            offset: self.offset,
            len: u32::try_from(frame.bytes.len())
                .map_err(|_| Error::Internal("frame too large".into()))?,
            rows: frame.header.rows,
            plain_len: frame.header.plain_len,
            sha256: Sha256Hex(frame.header.sha256),
        };
        self.offset += frame.bytes.len() as u64;
        Ok(r)
    }

    /// Hands the full part to the upload once fewer than `concurrency`
    /// parts are in flight, so at most `concurrency` parts upload while the
    /// next one fills (what the budget plans for).
    async fn send_part(&mut self) -> Result<()> {
        let upload = self
            .upload
            .as_mut()
            .ok_or_else(|| Error::Internal("append to a finished pack".into()))?;
        upload
            .wait_for_capacity(self.concurrency - 1)
            .await
            .map_err(self.repo.err(format!("uploading {}", self.name)))?;
        if let Some(part) = self.part.take() {
            upload.put(part.freeze());
        }
        Ok(())
    }

    /// Completes the upload.
    pub async fn finish(mut self) -> Result<PackInfo> {
        let mut upload = self
            .upload
            .take()
            .ok_or_else(|| Error::Internal("pack finished twice".into()))?;
        if let Some(part) = self.part.take() {
            upload.put(part.freeze());
        }
        upload
            .finish()
            .await
            .map_err(self.repo.err(format!("completing {}", self.name)))?;
        Ok(PackInfo {
            name: self.name.clone(),
            size: self.offset,
            sha256: None,
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

/// Idle part buffers kept for reuse; never more than were in flight at once.
const PART_BUFFERS_IDLE: usize = 64;

/// What every pack of one backup shares: where packs go, how they upload,
/// when they rotate, and the next pack number (packs are numbered across
/// all of a backup's workers).
pub struct PackSet {
    pub repo: Repo,
    pub backup_id: String,
    /// A pack is closed once it holds this many bytes (checked before each
    /// frame, so a pack never exceeds it by more than a frame).
    pub pack_bytes: u64,
    pub upload_concurrency: usize,
    /// Part buffers of `part_size` bytes, shared by the backup's writers.
    parts: BufferPool,
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
            upload_concurrency,
            parts: BufferPool::new(part_size, PART_BUFFERS_IDLE),
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
                        set.parts.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{encode_frame, FrameBuffers, PlainFrame};
    use bytes::Bytes;
    use object_store::local::LocalFileSystem;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Frames of any size, cut into parts of any size: the object is
        /// the frames back to back, each frame's reference points at its
        /// bytes, and the part buffers in use never exceed the parts
        /// in flight plus the one filling.
        #[test]
        fn frames_land_whole_across_parts(sizes in proptest::collection::vec(0usize..3000, 1..24), part_size in 64usize..2048, concurrency in 1usize..3) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                // A local store, which (as S3 or Azure, unlike the in-memory
                // one) lets go of a part once it is written.
                let dir = tempfile::tempdir().unwrap();
                let repo = Repo::from_store(Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap()), "local");
                let parts = BufferPool::new(part_size, 8);
                let mut w = PackWriter::create(&repo, "b1", 0, parts.clone(), concurrency).await.unwrap();
                let bufs = FrameBuffers::new(4096, 1 << 20);
                let mut expected = Vec::new();
                let mut refs = Vec::new();
                for (i, n) in sizes.iter().enumerate() {
                    let plain = PlainFrame { data: Bytes::from(vec![i as u8; *n]), rows: 1, row_boundary: true, last: false };
                    let f = encode_frame(&plain, 0, i as u32, 0, None, &bufs).unwrap();
                    expected.extend_from_slice(&f.bytes);
                    refs.push((w.append(&f).await.unwrap(), f.bytes.clone()));
                }
                let info = w.finish().await.unwrap();
                let stored = repo.get(&layout::pack_path("b1", &info.name)).await.unwrap();
                assert_eq!(&stored[..], &expected[..]);
                assert_eq!(info.size, expected.len() as u64);
                assert_eq!(info.sha256, None);
                for (r, bytes) in refs {
                    let at = r.offset as usize;
                    assert_eq!(&stored[at..at + r.len as usize], &bytes[..]);
                }
                assert!(parts.allocated() <= concurrency + 1, "{} part buffers", parts.allocated());
            });
        }
    }
}
