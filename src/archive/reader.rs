//! Reading a backup back: the manifest, and each data stream as verified
//! plaintext. Frames are fetched with ranged reads (neighbouring frames of a
//! stream coalesced up to a read size), decoded on blocking threads with a
//! bounded read-ahead, and released only after every check passes. The
//! stream's end is checked too: frame count, last-frame flag, row count and
//! the stream digest. Restore and verify share this reader.

use super::layout;
use super::manifest::{FrameRef, Manifest, StreamInfo};
use crate::crypto::BackupKey;
use crate::error::{Error, Result};
use crate::keys::Unlock;
use crate::pipeline::codec::{decode_frame, ExpectedFrame};
use crate::pipeline::{FrameBuffers, StreamDigest};
use crate::store::Repo;
use bytes::Bytes;
use futures::{stream, Stream, StreamExt, TryStreamExt};
use std::sync::Arc;

/// Loads and checks a backup's manifest, opening it with `unlock` when the
/// backup is encrypted.
pub async fn read_manifest(repo: &Repo, id: &str, unlock: &Unlock) -> Result<Manifest> {
    let path = layout::manifest_path(id);
    let not_found = || Error::BackupNotFound(id.to_string());
    if !layout::is_backup_id(id) {
        return Err(not_found());
    }
    let bytes = repo.get_opt(&path).await?.ok_or_else(not_found)?;
    Manifest::decode(&bytes, path.as_ref(), unlock)
}

/// Resolves `latest` (or a given id) to an existing backup id. `latest`
/// checks backup prefixes newest first and stops at the first with a
/// manifest: one listing and usually one HEAD, however many backups the
/// repository holds.
pub async fn resolve_backup_id(repo: &Repo, id: &str) -> Result<String> {
    if id != "latest" {
        return Ok(id.to_string());
    }
    for dir in backup_dirs(repo).await?.into_iter().rev() {
        if repo.exists(&layout::manifest_path(&dir)).await? {
            return Ok(dir);
        }
    }
    Err(Error::BackupNotFound(
        "latest (the repository has no complete backup)".into(),
    ))
}

/// HEADs in flight while listing complete backups (each is a round trip to
/// a remote store; one after another, a long history takes seconds).
const LIST_CONCURRENCY: usize = 16;

/// Ids of complete backups (those with a manifest), oldest first.
pub async fn list_backup_ids(repo: &Repo) -> Result<Vec<String>> {
    let checked: Vec<(String, bool)> = stream::iter(backup_dirs(repo).await?)
        .map(|dir| async move {
            let complete = repo.exists(&layout::manifest_path(&dir)).await?;
            Ok::<_, Error>((dir, complete))
        })
        .buffered(LIST_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(checked
        .into_iter()
        .filter_map(|(dir, complete)| complete.then_some(dir))
        .collect())
}

/// Backup prefixes (named like backup ids), oldest first, complete or not.
async fn backup_dirs(repo: &Repo) -> Result<Vec<String>> {
    let mut dirs: Vec<String> = repo
        .list_dirs(&layout::backups_prefix())
        .await?
        .into_iter()
        .filter(|d| layout::is_backup_id(d))
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Consecutive frames of one pack read with one ranged request.
struct Batch {
    pack: u32,
    start: u64,
    end: u64,
    /// Plaintext the batch decodes to.
    plain: u64,
    frames: Vec<(u32, FrameRef)>,
}

/// Groups neighbouring frames into reads of at most `max_read` bytes, both
/// stored and decoded: a read of compressed frames must not decode into
/// more plaintext than the budget planned for (highly compressible tables
/// would otherwise multiply it by their compression ratio).
fn batches(info: &StreamInfo, max_read: u64) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    for (i, f) in info.frames.iter().enumerate() {
        let idx = i as u32;
        let end = f.offset + u64::from(f.len);
        let plain = u64::from(f.plain_len);
        if let Some(b) = out.last_mut() {
            if b.pack == f.pack
                && b.end == f.offset
                && end - b.start <= max_read
                && b.plain + plain <= max_read
            {
                b.end = end;
                b.plain += plain;
                b.frames.push((idx, f.clone()));
                continue;
            }
        }
        out.push(Batch {
            pack: f.pack,
            start: f.offset,
            end,
            plain,
            frames: vec![(idx, f.clone())],
        });
    }
    out
}

/// Reads one stream as verified plaintext chunks (one per frame). The last
/// item is an error if any end-of-stream check fails, so a consumer that
/// commits only after the stream ends never commits bad data.
pub fn read_stream(
    repo: Repo,
    manifest: Arc<Manifest>,
    stream_index: usize,
    read_ahead: usize,
    max_read: u64,
    bufs: FrameBuffers,
) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
    let info = manifest.body.streams.get(stream_index).cloned();
    let id = manifest.header.id.clone();
    let body = async move {
        let info = info.ok_or_else(|| Error::Internal(format!("no stream #{stream_index}")))?;
        Ok::<_, Error>(info)
    };
    stream::once(body)
        .map_ok(move |info| {
            let packs = manifest.body.packs.clone();
            let key = manifest.key.clone();
            let stream_id = info.id;
            let expected_rows = info.rows;
            let expected_frames = info.frames.len();
            let expected_digest = info.plain_sha256.clone();
            let id = id.clone();
            let repo = repo.clone();
            let bufs = bufs.clone();
            let fetched = stream::iter(batches(&info, max_read.max(1)))
                .map(move |b| {
                    fetch_batch(
                        repo.clone(),
                        id.clone(),
                        packs.clone(),
                        key.clone(),
                        stream_id,
                        b,
                        bufs.clone(),
                    )
                })
                .buffered(read_ahead.max(1))
                .map_ok(|frames| stream::iter(frames.into_iter().map(Ok::<_, Error>)))
                .try_flatten();
            let mut digest = StreamDigest::new();
            let mut rows = 0u64;
            let mut seen_last = false;
            let mut count = 0usize;
            let checked = fetched.map(move |r| {
                let (plain, sha, frame_rows, last) = r?;
                if seen_last {
                    return Err(Error::integrity(
                        format!("stream {stream_id}"),
                        "data after the frame marked last",
                    ));
                }
                digest.update(&sha);
                rows += u64::from(frame_rows);
                count += 1;
                seen_last = last;
                if count == expected_frames {
                    let d = hex::encode(std::mem::take(&mut digest).finish());
                    let what = format!("stream {stream_id}");
                    if !last {
                        return Err(Error::integrity(
                            what,
                            "last frame missing (stream truncated)",
                        ));
                    }
                    if rows != expected_rows {
                        return Err(Error::integrity(
                            what,
                            format!("{rows} rows in frames, manifest says {expected_rows}"),
                        ));
                    }
                    if d != expected_digest {
                        return Err(Error::integrity(what, "plaintext digest mismatch"));
                    }
                }
                Ok(plain)
            });
            let empty_check = stream::once(async move {
                if expected_frames == 0 {
                    Err(Error::integrity(
                        format!("stream {stream_id}"),
                        "stream has no frames",
                    ))
                } else {
                    Ok(Bytes::new())
                }
            })
            .try_filter(|b| futures::future::ready(!b.is_empty()));
            checked.chain(empty_check)
        })
        .try_flatten()
}

type FrameOut = (Bytes, [u8; 32], u32, bool);

async fn fetch_batch(
    repo: Repo,
    id: String,
    packs: Vec<super::PackInfo>,
    key: Option<Arc<BackupKey>>,
    stream_id: u32,
    b: Batch,
    bufs: FrameBuffers,
) -> Result<Vec<FrameOut>> {
    let pack = packs.get(b.pack as usize).ok_or_else(|| {
        Error::format(
            format!("backup {id}"),
            format!("frame refers to missing pack #{}", b.pack),
        )
    })?;
    let path = layout::pack_path(&id, &pack.name);
    let object = path.to_string();
    let bytes = repo.get_range(&path, b.start..b.end).await?;
    if bytes.len() as u64 != b.end - b.start {
        return Err(Error::integrity(
            &object,
            format!("short read at {}..{} (object truncated)", b.start, b.end),
        ));
    }
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::with_capacity(b.frames.len());
        for (index, f) in &b.frames {
            let lo = (f.offset - b.start) as usize;
            let hi = lo + f.len as usize;
            let sha: [u8; 32] = hex::decode(&f.sha256)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| Error::format(&object, "bad frame hash in manifest"))?;
            let d = decode_frame(
                &bytes[lo..hi],
                &ExpectedFrame {
                    object: &object,
                    stream: stream_id,
                    index: *index,
                    sha256: &sha,
                    key: key.as_deref(),
                },
                &bufs,
            )?;
            if d.header.rows != f.rows || d.header.plain_len != f.plain_len {
                return Err(Error::integrity(
                    &object,
                    format!(
                        "frame {index} of stream {stream_id}: header disagrees with the manifest"
                    ),
                ));
            }
            let last = d.header.flags & super::frame::flags::LAST != 0;
            out.push((d.plain, d.plain_sha256, d.header.rows, last));
        }
        Ok(out)
    })
    .await
    .map_err(|e| Error::Internal(format!("decode task: {e}")))?
}

/// Streams every pack of a backup whole and checks its size and SHA-256
/// against the manifest (upload verification: what the store holds is what
/// pgkeep hashed while writing). Holds one network chunk at a time.
pub async fn check_packs(repo: &Repo, manifest: &Manifest) -> Result<()> {
    for p in &manifest.body.packs {
        let path = layout::pack_path(&manifest.header.id, &p.name);
        repo.check_object(&path, p.size, &p.sha256).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream(frames: &[(u32, u32)]) -> StreamInfo {
        let mut offset = 0u64;
        let frames = frames
            .iter()
            .map(|&(len, plain_len)| {
                let f = FrameRef {
                    pack: 0,
                    offset,
                    len,
                    rows: 1,
                    plain_len,
                    sha256: String::new(),
                };
                offset += u64::from(len);
                f
            })
            .collect();
        StreamInfo {
            id: 0,
            toc_id: 0,
            pages: None,
            rows: 0,
            plain_bytes: 0,
            stored_bytes: offset,
            plain_sha256: String::new(),
            frames,
        }
    }

    #[test]
    fn compressed_frames_batch_by_plaintext_too() {
        // Ten frames that compress 10:1: stored bytes alone would put all
        // ten in one 1000-byte read, decoding to 10 frames of plaintext.
        let s = stream(&[(100, 1000); 10]);
        let b = batches(&s, 1000);
        assert_eq!(b.len(), 10);
        let b = batches(&s, 2500);
        assert_eq!(
            b.iter().map(|b| b.frames.len()).collect::<Vec<_>>(),
            [2, 2, 2, 2, 2]
        );
    }

    proptest! {
        #[test]
        fn batches_cover_every_frame_in_order_within_the_read_size(
            frames in proptest::collection::vec((1u32..5000, 0u32..20000), 0..60),
            max_read in 1u64..40000,
        ) {
            let s = stream(&frames);
            let b = batches(&s, max_read);
            let order: Vec<u32> = b.iter().flat_map(|b| b.frames.iter().map(|(i, _)| *i)).collect();
            prop_assert_eq!(order, (0..frames.len() as u32).collect::<Vec<_>>());
            for batch in &b {
                if batch.frames.len() > 1 {
                    prop_assert!(batch.end - batch.start <= max_read);
                    prop_assert!(batch.plain <= max_read);
                }
            }
        }
    }
}
