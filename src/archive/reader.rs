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
use sha2::{Digest, Sha256};
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
    frames: Vec<(u32, FrameRef)>,
}

/// Groups neighbouring frames of a stream into reads of at most `max_read`
/// stored bytes (a frame larger than that is read alone). Frames are then
/// decoded one at a time, so a read of well-compressed frames never turns
/// into several frames of plaintext at once.
fn batches(info: &StreamInfo, max_read: u64) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    for (i, f) in info.frames.iter().enumerate() {
        let idx = i as u32;
        let end = f.offset.saturating_add(u64::from(f.len));
        if let Some(b) = out.last_mut() {
            if b.pack == f.pack && b.end == f.offset && end - b.start <= max_read {
                b.end = end;
                b.frames.push((idx, f.clone()));
                continue;
            }
        }
        out.push(Batch {
            pack: f.pack,
            start: f.offset,
            end,
            frames: vec![(idx, f.clone())],
        });
    }
    out
}

/// Frames of one stream being decoded at once (each on a blocking thread).
const DECODE_AHEAD: usize = 2;

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
            let expected_frames = info.frames.len();
            let id = id.clone();
            let repo = repo.clone();
            let bufs = bufs.clone();
            let decode_bufs = bufs.clone();
            let fetched = stream::iter(batches(&info, max_read.max(1)))
                .map(move |b| fetch_batch(repo.clone(), id.clone(), packs.clone(), b, bufs.clone()))
                .buffered(read_ahead.max(1))
                .map_ok(|frames| stream::iter(frames.into_iter().map(Ok::<_, Error>)))
                .try_flatten()
                .map(move |frame| {
                    let (key, bufs) = (key.clone(), decode_bufs.clone());
                    async move { decode_stored(frame?, key, stream_id, bufs).await }
                })
                .buffered(DECODE_AHEAD);
            let mut check = StreamCheck::new(&info);
            let checked = fetched.map(move |r| {
                let (plain, frame) = r?;
                check.push(&frame)?;
                Ok(plain)
            });
            let empty_check = stream::once(async move {
                if expected_frames == 0 {
                    Err(StreamCheck::no_frames(stream_id))
                } else {
                    Ok(Bytes::new())
                }
            })
            .try_filter(|b| futures::future::ready(!b.is_empty()));
            checked.chain(empty_check)
        })
        .try_flatten()
}

/// A frame that passed every check, as the end-of-stream check needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSummary {
    /// SHA-256 of the frame's plaintext (folded into the stream digest).
    pub plain_sha256: [u8; 32],
    pub rows: u32,
    pub plain_len: u32,
    /// The frame carries the *last* flag.
    pub last: bool,
}

/// Decodes one frame from its stored bytes and checks it against its
/// manifest entry: everything [`decode_frame`] checks (identity, lengths,
/// stored hash, tag, decompression), then its row count and plaintext
/// length. Restore and verify both check every frame through here.
fn check_frame(
    bytes: &[u8],
    object: &str,
    key: Option<&BackupKey>,
    stream_id: u32,
    index: u32,
    f: &FrameRef,
    bufs: &FrameBuffers,
) -> Result<(Bytes, FrameSummary)> {
    let sha: [u8; 32] = hex::decode(&f.sha256)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| Error::format(object, "bad frame hash in manifest"))?;
    let d = decode_frame(
        bytes,
        &ExpectedFrame {
            object,
            stream: stream_id,
            index,
            sha256: &sha,
            key,
        },
        bufs,
    )?;
    if d.header.rows != f.rows || d.header.plain_len != f.plain_len {
        return Err(Error::integrity(
            object,
            format!("frame {index} of stream {stream_id}: header disagrees with the manifest"),
        ));
    }
    let summary = FrameSummary {
        plain_sha256: d.plain_sha256,
        rows: d.header.rows,
        plain_len: d.header.plain_len,
        last: d.header.flags & super::frame::flags::LAST != 0,
    };
    Ok((d.plain, summary))
}

/// The end-of-stream checks, fed each checked frame in stream order: no
/// frame after the one marked last; at the manifest's frame count, the last
/// flag, the row total and the plaintext digest. Restore feeds it as frames
/// arrive; verify, which reads frames in pack order, feeds it at the end.
pub struct StreamCheck {
    stream_id: u32,
    expected_frames: usize,
    expected_rows: u64,
    expected_digest: String,
    digest: StreamDigest,
    rows: u64,
    count: usize,
    seen_last: bool,
}

impl StreamCheck {
    pub fn new(info: &StreamInfo) -> StreamCheck {
        StreamCheck {
            stream_id: info.id,
            expected_frames: info.frames.len(),
            expected_rows: info.rows,
            expected_digest: info.plain_sha256.clone(),
            digest: StreamDigest::new(),
            rows: 0,
            count: 0,
            seen_last: false,
        }
    }

    /// The error for a stream the manifest gives no frame (every stream has
    /// at least its last frame).
    pub fn no_frames(stream_id: u32) -> Error {
        Error::integrity(format!("stream {stream_id}"), "stream has no frames")
    }

    /// Folds the next frame; at the last one the manifest lists, checks the
    /// stream's end.
    pub fn push(&mut self, frame: &FrameSummary) -> Result<()> {
        let what = || format!("stream {}", self.stream_id);
        if self.seen_last {
            return Err(Error::integrity(what(), "data after the frame marked last"));
        }
        self.digest.update(&frame.plain_sha256);
        self.rows += u64::from(frame.rows);
        self.count += 1;
        self.seen_last = frame.last;
        if self.count == self.expected_frames {
            let d = hex::encode(std::mem::take(&mut self.digest).finish());
            if !frame.last {
                return Err(Error::integrity(
                    what(),
                    "last frame missing (stream truncated)",
                ));
            }
            if self.rows != self.expected_rows {
                return Err(Error::integrity(
                    what(),
                    format!(
                        "{} rows in frames, manifest says {}",
                        self.rows, self.expected_rows
                    ),
                ));
            }
            if d != self.expected_digest {
                return Err(Error::integrity(what(), "plaintext digest mismatch"));
            }
        }
        Ok(())
    }
}

type FrameOut = (Bytes, FrameSummary);

/// One frame's stored bytes as read, with where they belong.
struct StoredFrame {
    object: Arc<str>,
    index: u32,
    frame: FrameRef,
    bytes: Bytes,
}

/// Reads one batch with one ranged request into a pooled buffer and cuts
/// it into its frames (slices of that buffer, which goes back to the pool
/// when the last of them is decoded).
async fn fetch_batch(
    repo: Repo,
    id: String,
    packs: Vec<super::PackInfo>,
    b: Batch,
    bufs: FrameBuffers,
) -> Result<Vec<StoredFrame>> {
    let pack = packs
        .get(b.pack as usize)
        .ok_or_else(|| missing_pack(&id, b.pack))?;
    let path = layout::pack_path(&id, &pack.name);
    let object: Arc<str> = path.to_string().into();
    let (bytes, _) = read_exact(&repo, &path, b.start..b.end, &bufs).await?;
    Ok(b.frames
        .into_iter()
        .map(|(index, frame)| {
            let lo = (frame.offset - b.start) as usize;
            let hi = lo + frame.len as usize;
            StoredFrame {
                object: object.clone(),
                index,
                bytes: bytes.slice(lo..hi),
                frame,
            }
        })
        .collect())
}

/// Reads `range` of a pack into a pooled stored buffer (grown by the read
/// itself to the bytes the object really has there, never to what a
/// manifest claims). Fewer bytes than the range is damage: the object was
/// cut short. Returns the bytes and the object's size.
async fn read_exact(
    repo: &Repo,
    path: &object_store::path::Path,
    range: std::ops::Range<u64>,
    bufs: &FrameBuffers,
) -> Result<(Bytes, u64)> {
    let (buf, size) = repo
        .get_range_into(path, range.clone(), bufs.stored.take(0))
        .await?;
    if buf.len() as u64 != range.end - range.start {
        return Err(Error::integrity(
            path.to_string(),
            format!(
                "short read at {}..{} (object truncated)",
                range.start, range.end
            ),
        ));
    }
    Ok((buf.freeze(), size))
}

/// Checks and decodes one stored frame on a blocking thread.
async fn decode_stored(
    s: StoredFrame,
    key: Option<Arc<BackupKey>>,
    stream_id: u32,
    bufs: FrameBuffers,
) -> Result<FrameOut> {
    tokio::task::spawn_blocking(move || {
        check_frame(
            &s.bytes,
            &s.object,
            key.as_deref(),
            stream_id,
            s.index,
            &s.frame,
            &bufs,
        )
    })
    .await
    .map_err(|e| Error::Internal(format!("decode task: {e}")))?
}

/// A frame's manifest entry names a pack the manifest does not list.
pub fn missing_pack(backup_id: &str, pack: u32) -> Error {
    Error::format(
        format!("backup {backup_id}"),
        format!("frame refers to missing pack #{pack}"),
    )
}

/// One read of a pack in pack order: bytes `start..end`, holding whole
/// frames and any bytes between them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PackRead {
    start: u64,
    end: u64,
    /// Plaintext the frames decode to.
    plain: u64,
    /// (stream index in the manifest, frame index in the stream), in pack order.
    frames: Vec<(usize, u32)>,
}

/// Plans reads that cover pack `pack` (`size` bytes by the manifest) exactly
/// once, front to back: every byte of `0..size` in one read, each frame
/// whole in one read, and at most `max_read` bytes per read, stored and
/// decoded, unless one frame alone is larger. Bytes no frame claims (there
/// are none in packs pgkeep writes) are read too, so the whole-object hash
/// covers them. Frames that overlap or reach past the end are an error.
fn pack_reads(
    streams: &[StreamInfo],
    pack: u32,
    size: u64,
    max_read: u64,
) -> std::result::Result<Vec<PackRead>, String> {
    let max_read = max_read.max(1);
    let mut frames: Vec<(u64, u64, u64, usize, u32)> = streams
        .iter()
        .enumerate()
        .flat_map(|(si, s)| {
            s.frames
                .iter()
                .enumerate()
                .filter(|(_, f)| f.pack == pack)
                .map(move |(fi, f)| {
                    let end = f.offset.saturating_add(u64::from(f.len));
                    (f.offset, end, u64::from(f.plain_len), si, fi as u32)
                })
        })
        .collect();
    frames.sort_unstable();
    let mut reads = Vec::new();
    let mut cur: Option<PackRead> = None;
    let mut pos = 0u64;
    for (start, end, plain, si, fi) in frames {
        let name = || format!("frame {fi} of stream {}", streams[si].id);
        if start < pos {
            return Err(format!("{} overlaps the frame before it", name()));
        }
        if end > size {
            return Err(format!(
                "{} ends at byte {end}, past the pack's {size} bytes",
                name()
            ));
        }
        cover_gap(&mut reads, &mut cur, pos, start, max_read);
        match &mut cur {
            Some(r) if end - r.start <= max_read && r.plain + plain <= max_read => {
                r.end = end;
                r.plain += plain;
                r.frames.push((si, fi));
            }
            _ => {
                reads.extend(cur.take());
                cur = Some(PackRead {
                    start,
                    end,
                    plain,
                    frames: vec![(si, fi)],
                });
            }
        }
        pos = end;
    }
    cover_gap(&mut reads, &mut cur, pos, size, max_read);
    reads.extend(cur);
    Ok(reads)
}

/// Adds bytes `from..to`, which no frame claims, to the reads.
fn cover_gap(
    reads: &mut Vec<PackRead>,
    cur: &mut Option<PackRead>,
    mut from: u64,
    to: u64,
    max_read: u64,
) {
    while from < to {
        match cur {
            Some(r) if r.end - r.start < max_read => {
                let take = (max_read - (r.end - r.start)).min(to - from);
                r.end += take;
                from += take;
            }
            _ => {
                reads.extend(cur.take());
                let take = max_read.min(to - from);
                *cur = Some(PackRead {
                    start: from,
                    end: from + take,
                    plain: 0,
                    frames: Vec::new(),
                });
                from += take;
            }
        }
    }
}

/// What reading one pack front to back found.
#[derive(Debug, Default)]
pub struct PackCheck {
    /// Frames that passed: (stream index, frame index, summary).
    pub passed: Vec<(usize, u32, FrameSummary)>,
    /// Frames that did not: (stream index, frame index, why).
    pub failed: Vec<(usize, u32, Error)>,
    /// The object's size as the store reported it (with the first read).
    pub stored_size: Option<u64>,
    /// The object as a whole: its size and SHA-256 against the manifest, or
    /// why it could not be read to its end (frames past that point are in
    /// neither list).
    pub object: Option<Error>,
}

/// Reads pack `pack` once, front to back, with ranged reads of at most
/// `max_read` bytes (`read_ahead` in flight, decoded on blocking threads),
/// checking every frame in it as restore does ([`check_frame`]) and hashing
/// every byte as it passes, so the object's size and SHA-256 are checked
/// against the manifest too: that also covers bytes no frame check reads
/// (header fields the frame checks ignore, bytes between or after frames).
/// Memory: `read_ahead` reads plus one decoded frame per read.
pub async fn check_pack(
    repo: Repo,
    manifest: Arc<Manifest>,
    pack: usize,
    read_ahead: usize,
    max_read: u64,
    bufs: FrameBuffers,
) -> PackCheck {
    let mut out = PackCheck::default();
    let Some(info) = manifest.body.packs.get(pack).cloned() else {
        out.object = Some(Error::Internal(format!("no pack #{pack}")));
        return out;
    };
    let path = layout::pack_path(&manifest.header.id, &info.name);
    let object = path.to_string();
    let reads = match pack_reads(&manifest.body.streams, pack as u32, info.size, max_read) {
        Ok(r) => r,
        Err(m) => {
            out.object = Some(Error::format(&object, m));
            return out;
        }
    };
    let walked = walk_pack(&repo, &manifest, &path, reads, read_ahead, &bufs, &mut out).await;
    out.object = match (out.stored_size, walked) {
        (Some(stored), _) if stored != info.size => Some(Error::integrity(
            &object,
            format!(
                "{stored} bytes stored, manifest says {}{}",
                info.size,
                if stored < info.size {
                    " (object truncated)"
                } else {
                    " (bytes appended)"
                }
            ),
        )),
        (_, Err(e)) => Some(e),
        (_, Ok(sha)) if hex::encode(sha) != info.sha256 => Some(Error::integrity(
            &object,
            "SHA-256 of the stored object differs from the manifest",
        )),
        (_, Ok(_)) => None,
    };
    out
}

/// Reads the planned reads in order, hashing every byte, and returns the
/// SHA-256 of the bytes read. The object's stored size (learnt from the
/// first read) goes to `out.stored_size`: a size that differs from the
/// manifest's is the caller's to report, and frames are still checked when
/// bytes were appended.
async fn walk_pack(
    repo: &Repo,
    manifest: &Arc<Manifest>,
    path: &object_store::path::Path,
    reads: Vec<PackRead>,
    read_ahead: usize,
    bufs: &FrameBuffers,
    out: &mut PackCheck,
) -> Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    if reads.is_empty() {
        let meta = repo
            .head(path)
            .await?
            .ok_or_else(|| Error::integrity(path.to_string(), "missing"))?;
        out.stored_size = Some(meta.size);
        return Ok(hasher.finalize().into());
    }
    // Every read also tells the object's size; a read of bytes an object
    // cut short no longer has reads as truncated (`read_exact`).
    let mut all = stream::iter(reads)
        .map(|r| fetch_pack_read(repo, manifest, path, r, bufs))
        .buffered(read_ahead.max(1));
    while let Some(r) = all.next().await {
        let (size, bytes, frames) = r?;
        out.stored_size = Some(size);
        hasher = hash_blocking(hasher, bytes).await?;
        out.record(frames);
    }
    Ok(hasher.finalize().into())
}

type FrameOutcome = (usize, u32, Result<FrameSummary>);

impl PackCheck {
    fn record(&mut self, frames: Vec<FrameOutcome>) {
        for (si, fi, r) in frames {
            match r {
                Ok(s) => self.passed.push((si, fi, s)),
                Err(e) => self.failed.push((si, fi, e)),
            }
        }
    }
}

async fn hash_blocking(mut hasher: Sha256, bytes: Bytes) -> Result<Sha256> {
    tokio::task::spawn_blocking(move || {
        hasher.update(&bytes);
        hasher
    })
    .await
    .map_err(|e| Error::Internal(format!("hash task: {e}")))
}

/// Fetches one planned read and checks its frames on a blocking thread. Returns the object's
/// size, the bytes (for the hash) and each frame's outcome.
async fn fetch_pack_read(
    repo: &Repo,
    manifest: &Arc<Manifest>,
    path: &object_store::path::Path,
    read: PackRead,
    bufs: &FrameBuffers,
) -> Result<(u64, Bytes, Vec<FrameOutcome>)> {
    let object = path.to_string();
    let (bytes, size) = read_exact(repo, path, read.start..read.end, bufs).await?;
    let manifest = manifest.clone();
    let data = bytes.clone();
    let bufs = bufs.clone();
    let frames = tokio::task::spawn_blocking(move || {
        let key = manifest.key.as_deref();
        read.frames
            .iter()
            .map(|&(si, fi)| {
                let r = manifest
                    .body
                    .streams
                    .get(si)
                    .and_then(|s| Some((s.id, s.frames.get(fi as usize)?)))
                    .ok_or_else(|| Error::Internal(format!("no frame {fi} in stream #{si}")))
                    .and_then(|(stream_id, f)| {
                        let lo = (f.offset - read.start) as usize;
                        let hi = lo + f.len as usize;
                        check_frame(&data[lo..hi], &object, key, stream_id, fi, f, &bufs)
                    })
                    .map(|(_, summary)| summary);
                (si, fi, r)
            })
            .collect()
    })
    .await
    .map_err(|e| Error::Internal(format!("decode task: {e}")))?;
    Ok((size, bytes, frames))
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
    fn compressed_frames_batch_by_stored_bytes() {
        // Ten frames that compress 10:1: reads are planned by stored bytes
        // (frames are decoded one at a time, so plaintext never piles up).
        let s = stream(&[(100, 1000); 10]);
        assert_eq!(batches(&s, 1000).len(), 1);
        let b = batches(&s, 250);
        assert_eq!(
            b.iter().map(|b| b.frames.len()).collect::<Vec<_>>(),
            [2, 2, 2, 2, 2]
        );
        // A frame larger than the read size is read alone.
        let s = stream(&[(100, 100), (900, 900), (100, 100)]);
        assert_eq!(batches(&s, 500).len(), 3);
    }

    fn frame(pack: u32, offset: u64, len: u32, plain_len: u32) -> FrameRef {
        FrameRef {
            pack,
            offset,
            len,
            rows: 1,
            plain_len,
            sha256: String::new(),
        }
    }

    /// Streams whose frames lie in pack 0 as laid out by `items` (gap
    /// before, length, plaintext length, stream), with a frame of pack 1
    /// after each, which a plan of pack 0 must ignore.
    fn packed(items: &[(u64, u32, u32, usize)], streams: usize) -> (Vec<StreamInfo>, u64) {
        let mut out: Vec<StreamInfo> = (0..streams)
            .map(|i| StreamInfo {
                id: 100 + i as u32,
                ..stream(&[])
            })
            .collect();
        let mut pos = 0u64;
        for &(gap, len, plain, s) in items {
            pos += gap;
            out[s].frames.push(frame(0, pos, len, plain));
            out[s].frames.push(frame(1, pos, len, plain));
            pos += u64::from(len);
        }
        (out, pos)
    }

    #[test]
    fn pack_reads_reject_overlapping_frames_and_frames_past_the_end() {
        let (mut s, size) = packed(&[(0, 100, 100, 0), (0, 100, 100, 1)], 2);
        assert_eq!(pack_reads(&s, 0, size, 1000).unwrap().len(), 1);
        assert!(pack_reads(&s, 0, size - 1, 1000)
            .unwrap_err()
            .contains("past the pack"));
        s[1].frames[0].offset = 50;
        assert!(pack_reads(&s, 0, size, 1000)
            .unwrap_err()
            .contains("overlaps"));
        // An empty pack needs no read; bytes no frame claims are read too.
        assert!(pack_reads(&[], 0, 0, 1000).unwrap().is_empty());
        let r = pack_reads(&[], 0, 2500, 1000).unwrap();
        assert_eq!(
            r.iter().map(|r| (r.start, r.end)).collect::<Vec<_>>(),
            [(0, 1000), (1000, 2000), (2000, 2500)]
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
                }
            }
        }

        #[test]
        fn pack_reads_cover_every_byte_once_and_every_frame_whole(
            items in proptest::collection::vec(
                (prop_oneof![3 => Just(0u64), 1 => 0u64..3000], 1u32..5000, 0u32..20000, 0usize..3),
                0..60,
            ),
            tail in prop_oneof![3 => Just(0u64), 1 => 0u64..3000],
            max_read in 1u64..40000,
        ) {
            let (s, end) = packed(&items, 3);
            let size = end + tail;
            let reads = pack_reads(&s, 0, size, max_read).unwrap();
            // Contiguous, front to back, exactly 0..size.
            let mut pos = 0;
            for r in &reads {
                prop_assert_eq!(r.start, pos);
                prop_assert!(r.end > r.start);
                pos = r.end;
                // Within the read size, stored and decoded, unless one frame
                // alone is larger (then the read is that frame).
                if r.end - r.start > max_read {
                    prop_assert_eq!(r.frames.len(), 1);
                    let (si, fi) = r.frames[0];
                    let f = &s[si].frames[fi as usize];
                    prop_assert_eq!((f.offset, f.offset + u64::from(f.len)), (r.start, r.end));
                }
                prop_assert!(r.plain <= max_read || r.frames.len() == 1);
            }
            prop_assert_eq!(pos, size);
            // Every frame of pack 0 exactly once, whole, in pack order; none of pack 1.
            let mut seen = Vec::new();
            for r in &reads {
                for &(si, fi) in &r.frames {
                    let f = &s[si].frames[fi as usize];
                    prop_assert_eq!(f.pack, 0);
                    prop_assert!(f.offset >= r.start && f.offset + u64::from(f.len) <= r.end);
                    seen.push(f.offset);
                }
            }
            let mut want: Vec<u64> = s.iter().flat_map(|s| &s.frames).filter(|f| f.pack == 0).map(|f| f.offset).collect();
            want.sort_unstable();
            prop_assert_eq!(seen, want);
        }
    }
}
