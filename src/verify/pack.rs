//! The whole-pack scan `verify` makes: every pack read once, front to
//! back, every frame in it checked as restore checks it
//! ([`crate::archive::stream::check_frame`]), and the object as a whole:
//! its size, and either its SHA-256 (formats 1 and 2) or that its frames
//! tile it with no byte left over (format 3, whose frame hashes cover
//! every byte of a frame).

use crate::archive::layout;
use crate::archive::scan::frames_in_pack;
use crate::archive::stream::{check_frame, read_exact, FrameAt, FrameSummary, StreamRules};
use crate::archive::{Manifest, StreamInfo};
use crate::error::{Error, Result};
use crate::pipeline::FrameBuffers;
use crate::store::Repo;
use bytes::Bytes;
use futures::{stream, StreamExt};
use sha2::{Digest, Sha256};
use std::sync::Arc;

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
/// covers them; without that hash (`tiled`) they are an error. Frames that
/// overlap or reach past the end are an error.
fn pack_reads(
    streams: &[StreamInfo],
    pack: u32,
    size: u64,
    max_read: u64,
    tiled: bool,
) -> std::result::Result<Vec<PackRead>, String> {
    let unclaimed = |from: u64, to: u64| {
        if tiled && from < to {
            Err(format!("bytes {from}..{to} of the pack no frame claims"))
        } else {
            Ok(())
        }
    };
    let max_read = max_read.max(1);
    let frames = frames_in_pack(streams, pack).into_iter().map(|f| {
        let plain = u64::from(streams[f.stream].frames[f.frame as usize].plain_len);
        (f.start, f.end, plain, f.stream, f.frame)
    });
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
        unclaimed(pos, start)?;
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
    unclaimed(pos, size)?;
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
    /// The object as a whole: its size and its SHA-256 or tiling against
    /// the manifest, or why it could not be read to its end (frames past
    /// that point are in neither list).
    pub object: Option<Error>,
}

/// Reads pack `pack` once, front to back, with ranged reads of at most
/// `max_read` bytes (`read_ahead` in flight, decoded on blocking threads),
/// checking every frame in it as restore does ([`check_frame`]), and its
/// size against the manifest. A pack of format 1 or 2 is hashed as it
/// passes and its SHA-256 checked too: that covers what their frame checks
/// leave out (header fields, bytes between or after frames). In format 3
/// each frame's hash covers its header, and frames must tile the pack.
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
    let tiled = info.sha256.is_none();
    let reads = match pack_reads(
        &manifest.body.streams,
        pack as u32,
        info.size,
        max_read,
        tiled,
    ) {
        Ok(r) => r,
        Err(m) => {
            out.object = Some(Error::format(&object, m));
            return out;
        }
    };
    let hasher = info.sha256.is_some().then(Sha256::new);
    let walked = walk_pack(
        &repo,
        &manifest,
        &path,
        reads,
        (read_ahead, hasher),
        &bufs,
        &mut out,
    )
    .await;
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
        (_, Ok(Some(sha))) if Some(hex::encode(sha)) != info.sha256 => Some(Error::integrity(
            &object,
            "SHA-256 of the stored object differs from the manifest",
        )),
        (_, Ok(_)) => None,
    };
    out
}

/// Reads the planned reads in order, hashing every byte when given a
/// `hasher`, and returns the SHA-256 of the bytes read. The object's stored size (learnt from the
/// first read) goes to `out.stored_size`: a size that differs from the
/// manifest's is the caller's to report, and frames are still checked when
/// bytes were appended.
async fn walk_pack(
    repo: &Repo,
    manifest: &Arc<Manifest>,
    path: &object_store::path::Path,
    reads: Vec<PackRead>,
    (read_ahead, mut hasher): (usize, Option<Sha256>),
    bufs: &FrameBuffers,
    out: &mut PackCheck,
) -> Result<Option<[u8; 32]>> {
    let digest = |h: Option<Sha256>| h.map(|h| h.finalize().into());
    if reads.is_empty() {
        let meta = repo
            .head(path)
            .await?
            .ok_or_else(|| Error::integrity(path.to_string(), "missing"))?;
        out.stored_size = Some(meta.size);
        return Ok(digest(hasher));
    }
    // Every read also tells the object's size; a read of bytes an object
    // cut short no longer has reads as truncated (`read_exact`).
    let mut all = stream::iter(reads)
        .map(|r| fetch_pack_read(repo, manifest, path, r, bufs))
        .buffered(read_ahead.max(1));
    while let Some(r) = all.next().await {
        let (size, bytes, frames) = r?;
        out.stored_size = Some(size);
        if let Some(h) = hasher.take() {
            hasher = Some(hash_blocking(h, bytes).await?);
        }
        out.record(frames);
    }
    Ok(digest(hasher))
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
                    .and_then(|s| Some((s, s.frames.get(fi as usize)?)))
                    .ok_or_else(|| Error::Internal(format!("no frame {fi} in stream #{si}")))
                    .and_then(|(s, f)| {
                        let lo = (f.offset - read.start) as usize;
                        let hi = lo + f.len as usize;
                        let at = FrameAt {
                            object: &object,
                            index: fi,
                            stream: StreamRules::of(&manifest, s),
                        };
                        check_frame(&data[lo..hi], &at, key, f, &bufs)
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
    use crate::archive::stream::tests::stream;
    use crate::archive::FrameRef;
    use proptest::prelude::*;

    fn frame(pack: u32, offset: u64, len: u32, plain_len: u32) -> FrameRef {
        FrameRef {
            pack,
            offset,
            len,
            rows: 1,
            plain_len,
            sha256: Default::default(),
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
        assert_eq!(pack_reads(&s, 0, size, 1000, false).unwrap().len(), 1);
        assert!(pack_reads(&s, 0, size - 1, 1000, true)
            .unwrap_err()
            .contains("past the pack"));
        s[1].frames[0].offset = 50;
        assert!(pack_reads(&s, 0, size, 1000, false)
            .unwrap_err()
            .contains("overlaps"));
        // An empty pack needs no read; bytes no frame claims are read too.
        assert!(pack_reads(&[], 0, 0, 1000, true).unwrap().is_empty());
        let r = pack_reads(&[], 0, 2500, 1000, false).unwrap();
        assert_eq!(
            r.iter().map(|r| (r.start, r.end)).collect::<Vec<_>>(),
            [(0, 1000), (1000, 2000), (2000, 2500)]
        );
        // Unless the pack has no hash of its own (format 3).
        assert!(pack_reads(&[], 0, 2500, 1000, true)
            .unwrap_err()
            .contains("bytes 0..2500 of the pack no frame claims"));
    }

    proptest! {
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
            let reads = pack_reads(&s, 0, size, max_read, false).unwrap();
            // Without a pack hash, a plan exists only when frames tile the pack.
            let tiles = tail == 0 && items.iter().all(|&(gap, ..)| gap == 0);
            prop_assert_eq!(pack_reads(&s, 0, size, max_read, true).is_ok(), tiles);
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
