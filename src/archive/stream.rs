//! Reading one data stream of a backup back as verified plaintext, in
//! stream order (restore, chain verification from an archive). Frames are
//! fetched with ranged reads (neighbouring frames of a stream coalesced up
//! to a read size), decoded on blocking threads with a bounded read-ahead,
//! and released only after every check passes. The stream's end is checked
//! too: frame count, last-frame flag, row count and the stream digest. The
//! per-frame and end-of-stream checks here are the ones `verify` applies in
//! pack order.

use super::layout;
use super::manifest::{FrameRef, Manifest, PackInfo, StreamInfo};
use crate::crypto::BackupKey;
use crate::error::{Error, Result};
use crate::pipeline::budget::DECODE_AHEAD;
use crate::pipeline::codec::{decode_frame, ExpectedFrame};
use crate::pipeline::frame::flags;
use crate::pipeline::{FrameBuffers, StreamDigest};
use crate::store::Repo;
use bytes::Bytes;
use futures::{stream, Stream, StreamExt, TryStreamExt};
use std::sync::Arc;

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
) -> impl Stream<Item = Result<Verified>> + Send + 'static {
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
            let rules = StreamRules::of(&manifest, &info);
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
                    async move { decode_stored(frame?, key, rules, bufs).await }
                })
                .buffered(DECODE_AHEAD);
            let mut check = StreamCheck::new(&info);
            let checked = fetched.map(move |r| {
                let (bytes, frame) = r?;
                check.push(&frame)?;
                Ok(Verified {
                    bytes,
                    rows: frame.rows,
                })
            });
            let empty_check = stream::once(async move {
                if expected_frames == 0 {
                    Err(StreamCheck::no_frames(rules.id))
                } else {
                    Ok(Verified::default())
                }
            })
            .try_filter(|v| futures::future::ready(!v.bytes.is_empty()));
            checked.chain(empty_check)
        })
        .try_flatten()
}

/// Stream `index` as verified plaintext chunks, one stored frame read at
/// a time (a read of several well-compressed frames would hold all their
/// plaintexts at once), within `memory` bytes of frames in flight: for
/// readers of one stream at a time (chain verification, Redis restores).
pub fn read_stream_bytes(
    repo: &Repo,
    manifest: Arc<Manifest>,
    index: usize,
    memory: usize,
) -> Result<impl Stream<Item = Result<Bytes>> + Send + 'static> {
    let frames = manifest
        .body
        .streams
        .get(index)
        .map(|s| s.frames.as_slice());
    let max = |f: fn(&FrameRef) -> u32| frames.and_then(|fs| fs.iter().map(f).max()).unwrap_or(0);
    let (read_ahead, _) = crate::pipeline::Budget::new(memory, 1, None)?
        .read_plan(max(|f| f.plain_len) as usize, manifest.key.is_some());
    let max_read = u64::from(max(|f| f.len));
    let bufs = FrameBuffers::new(max(|f| f.plain_len) as usize, memory);
    Ok(read_stream(repo.clone(), manifest, index, read_ahead, max_read, bufs).map_ok(|v| v.bytes))
}

/// One frame's plaintext that passed every check, and the rows that end in
/// it (for progress: a frame's bytes are COPY text, its rows the count the
/// manifest vouches for).
#[derive(Clone, Debug, Default)]
pub struct Verified {
    pub bytes: Bytes,
    pub rows: u32,
}

/// A frame that passed every check, as the end-of-stream check needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSummary {
    /// SHA-256 of the frame's plaintext, for streams of format 1 that
    /// record a digest of them.
    pub plain_sha256: Option<[u8; 32]>,
    pub rows: u32,
    pub plain_len: u32,
    /// The frame carries the *last* flag.
    pub last: bool,
}

/// Decodes one frame from its stored bytes and checks it against its
/// manifest entry: everything [`decode_frame`] checks (identity, lengths,
/// stored hash, tag, decompression), then its row count and plaintext
/// length. Restore and verify both check every frame through here.
pub(crate) fn check_frame(
    bytes: &[u8],
    at: &FrameAt<'_>,
    key: Option<&BackupKey>,
    f: &FrameRef,
    bufs: &FrameBuffers,
) -> Result<(Bytes, FrameSummary)> {
    let (object, stream_id, index) = (at.object, at.stream.id, at.index);
    let d = decode_frame(
        bytes,
        &ExpectedFrame {
            object,
            stream: stream_id,
            index,
            sha256: &f.sha256.0,
            version: at.stream.frame_version,
            key,
            plain_digest: at.stream.plain_digest,
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
        last: d.header.flags & flags::LAST != 0,
    };
    Ok((d.plain, summary))
}

/// Where a frame belongs: the object it is read from, its position in its
/// stream, and how that stream's frames are checked.
pub(crate) struct FrameAt<'a> {
    pub object: &'a str,
    pub index: u32,
    pub stream: StreamRules,
}

/// How one stream's frames are checked: the stream's id, the frame version
/// its archive writes ([`Manifest::frame_version`]) and whether the stream
/// records a plaintext digest (format 1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamRules {
    pub id: u32,
    pub frame_version: u8,
    pub plain_digest: bool,
}

impl StreamRules {
    pub fn of(manifest: &Manifest, stream: &StreamInfo) -> StreamRules {
        StreamRules {
            id: stream.id,
            frame_version: manifest.frame_version(),
            plain_digest: stream.plain_sha256.is_some(),
        }
    }
}

/// The end-of-stream checks, fed each checked frame in stream order: no
/// frame after the one marked last; at the manifest's frame count, the last
/// flag, the row total and the plaintext digest. Restore feeds it as frames
/// arrive; verify, which reads frames in pack order, feeds it at the end.
pub struct StreamCheck {
    stream_id: u32,
    expected_frames: usize,
    expected_rows: u64,
    /// Format 1 streams: the digest of their frames' plaintext, expected
    /// and as folded so far.
    digest: Option<(String, StreamDigest)>,
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
            digest: info
                .plain_sha256
                .clone()
                .map(|want| (want, StreamDigest::new())),
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
        if let Some((_, digest)) = self.digest.as_mut() {
            let sha = frame
                .plain_sha256
                .ok_or_else(|| Error::Internal("frame decoded without its digest".into()))?;
            digest.update(&sha);
        }
        self.rows += u64::from(frame.rows);
        self.count += 1;
        self.seen_last = frame.last;
        if self.count == self.expected_frames {
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
            if let Some((want, digest)) = self.digest.take() {
                if hex::encode(digest.finish()) != want {
                    return Err(Error::integrity(what(), "plaintext digest mismatch"));
                }
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
    packs: Vec<PackInfo>,
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
pub(crate) async fn read_exact(
    repo: &Repo,
    path: &object_store::path::Path,
    range: std::ops::Range<u64>,
    bufs: &FrameBuffers,
) -> Result<(Bytes, u64)> {
    let (buf, size) = repo
        .get_range_into(path, range.clone(), bufs.reads.take(0))
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
    stream: StreamRules,
    bufs: FrameBuffers,
) -> Result<FrameOut> {
    tokio::task::spawn_blocking(move || {
        let at = FrameAt {
            object: &s.object,
            index: s.index,
            stream,
        };
        check_frame(&s.bytes, &at, key.as_deref(), &s.frame, &bufs)
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A stream of frames laid end to end in pack 0: (stored, plaintext length).
    pub(crate) fn stream(frames: &[(u32, u32)]) -> StreamInfo {
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
                    sha256: Default::default(),
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
            plain_sha256: None,
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
    }
}
