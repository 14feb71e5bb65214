//! A pack's frames in pack order ([`frames_in_pack`]), and [`PackScan`]:
//! the check of a pack of format 3 as its bytes stream past (an offsite
//! copy), with no decoding. Such a pack has no hash of its own: its frames
//! must tile it, and each frame's hash covers all of its bytes but the hash
//! field, which must equal the manifest's.

use super::manifest::{Manifest, StreamInfo};
use crate::error::{Error, Result};
use crate::pipeline::frame::{FRAME_HEADER_LEN, HASHED_HEADER_LEN};
use sha2::{Digest, Sha256};

/// One frame of a pack: bytes `start..end`, frame `frame` of the stream at
/// `stream` in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PackedFrame {
    pub start: u64,
    pub end: u64,
    pub stream: usize,
    pub frame: u32,
}

/// The frames of pack `pack`, sorted by offset (not checked for overlap).
pub fn frames_in_pack(streams: &[StreamInfo], pack: u32) -> Vec<PackedFrame> {
    let mut frames: Vec<PackedFrame> = streams
        .iter()
        .enumerate()
        .flat_map(|(si, s)| {
            s.frames
                .iter()
                .enumerate()
                .filter(|(_, f)| f.pack == pack)
                .map(move |(fi, f)| PackedFrame {
                    start: f.offset,
                    end: f.offset.saturating_add(u64::from(f.len)),
                    stream: si,
                    frame: fi as u32,
                })
        })
        .collect();
    frames.sort_unstable();
    frames
}

/// Checks the bytes of one pack of format 3, fed front to back in chunks of
/// any size: every byte belongs to exactly one frame, and each frame's
/// bytes hash to the manifest's frame hash (which its header must carry).
#[derive(Debug)]
pub struct PackScan {
    object: String,
    /// (start, end, expected hash, stream id, frame index), in pack order.
    frames: Vec<(u64, u64, [u8; 32], u32, u32)>,
    next: usize,
    pos: u64,
    hasher: Sha256,
    /// The frame's own hash field, as it streams past.
    carried: [u8; 32],
}

impl PackScan {
    /// The scan of pack `pack` of `manifest`, `size` bytes long; an error
    /// when its frames do not tile `0..size`.
    pub fn new(manifest: &Manifest, pack: u32, size: u64, object: &str) -> Result<PackScan> {
        let streams = &manifest.body.streams;
        let mut frames = Vec::new();
        let mut pos = 0u64;
        for f in frames_in_pack(streams, pack) {
            let s = &streams[f.stream];
            if f.start != pos || f.end > size || f.end - f.start < FRAME_HEADER_LEN as u64 {
                return Err(Error::format(
                    object,
                    format!(
                        "frame {} of stream {} at bytes {}..{}: frames do not tile the pack ({size} bytes)",
                        f.frame, s.id, f.start, f.end
                    ),
                ));
            }
            let sha = s.frames[f.frame as usize].sha256.0;
            frames.push((f.start, f.end, sha, s.id, f.frame));
            pos = f.end;
        }
        if pos != size {
            return Err(Error::format(
                object,
                format!("bytes {pos}..{size} of the pack no frame claims"),
            ));
        }
        Ok(PackScan {
            object: object.to_string(),
            frames,
            next: 0,
            pos: 0,
            hasher: Sha256::new(),
            carried: [0; 32],
        })
    }

    /// Feeds the next bytes of the pack.
    pub fn update(&mut self, mut chunk: &[u8]) -> Result<()> {
        while !chunk.is_empty() {
            let Some(&(start, end, sha, stream, index)) = self.frames.get(self.next) else {
                return Err(Error::integrity(&self.object, "bytes past the pack's end"));
            };
            let take = (end - self.pos).min(chunk.len() as u64) as usize;
            let (now, rest) = chunk.split_at(take);
            let at = (self.pos - start) as usize;
            // Bytes `at..at + take` of the frame: the hash field goes aside,
            // the rest into the hash.
            let (hf_lo, hf_hi) = (HASHED_HEADER_LEN, FRAME_HEADER_LEN);
            let lo = hf_lo.saturating_sub(at).min(take);
            let hi = hf_hi.saturating_sub(at).min(take);
            self.hasher.update(&now[..lo]);
            if hi > lo {
                let field = at + lo - hf_lo;
                self.carried[field..field + hi - lo].copy_from_slice(&now[lo..hi]);
            }
            self.hasher.update(&now[hi..]);
            self.pos += take as u64;
            chunk = rest;
            if self.pos == end {
                let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
                if digest != sha || self.carried != sha {
                    return Err(Error::integrity(
                        &self.object,
                        format!(
                            "frame {index} of stream {stream}: SHA-256 mismatch (corrupted bytes)"
                        ),
                    ));
                }
                self.next += 1;
            }
        }
        Ok(())
    }

    /// Ends the scan: every frame must have been seen whole.
    pub fn finish(self) -> Result<()> {
        if self.next != self.frames.len() {
            return Err(Error::integrity(
                &self.object,
                format!("pack ends at byte {}, inside its frames", self.pos),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest::tests::sample;
    use crate::archive::{FrameRef, Sha256Hex};
    use crate::pipeline::{encode_frame, FrameBuffers, PlainFrame};
    use bytes::Bytes;
    use proptest::prelude::*;

    /// A manifest whose pack 0 holds frames of `sizes` back to back.
    fn packed(sizes: &[usize]) -> (Manifest, Vec<u8>) {
        let mut m = sample();
        let mut pack = Vec::new();
        let mut frames = Vec::new();
        for (i, n) in sizes.iter().enumerate() {
            let plain = PlainFrame {
                data: Bytes::from(vec![b'a' + (i % 26) as u8; *n]),
                rows: 1,
                row_boundary: true,
                last: i + 1 == sizes.len(),
            };
            let f = encode_frame(&plain, 0, i as u32, 0, None, &FrameBuffers::unpooled()).unwrap();
            frames.push(FrameRef {
                pack: 0,
                offset: pack.len() as u64,
                len: f.bytes.len() as u32,
                rows: 1,
                plain_len: f.header.plain_len,
                sha256: Sha256Hex(f.header.sha256),
            });
            pack.extend_from_slice(&f.bytes);
        }
        m.body.streams[0].frames = frames;
        (m, pack)
    }

    fn scan(m: &Manifest, pack: &[u8], chunks: &[usize]) -> Result<()> {
        let mut s = PackScan::new(m, 0, pack.len() as u64, "p")?;
        let mut rest = pack;
        let mut i = 0;
        while !rest.is_empty() {
            let n = chunks[i % chunks.len()].clamp(1, rest.len());
            s.update(&rest[..n])?;
            rest = &rest[n..];
            i += 1;
        }
        s.finish()
    }

    proptest! {
        #[test]
        fn every_byte_of_a_pack_is_checked_in_chunks_of_any_size(
            sizes in proptest::collection::vec(0usize..400, 1..6),
            chunks in proptest::collection::vec(1usize..200, 1..8),
            pos in any::<proptest::sample::Index>(),
            bit in 0u8..8,
        ) {
            let (m, pack) = packed(&sizes);
            prop_assert!(scan(&m, &pack, &chunks).is_ok());
            let mut damaged = pack.clone();
            let i = pos.index(damaged.len());
            damaged[i] ^= 1 << bit;
            let e = scan(&m, &damaged, &chunks).unwrap_err().to_string();
            prop_assert!(e.contains("SHA-256 mismatch"), "flip at {}: {}", i, e);
        }
    }

    #[test]
    fn frames_must_tile_the_pack() {
        let (m, pack) = packed(&[10, 20]);
        let n = pack.len() as u64;
        let e = PackScan::new(&m, 0, n + 4, "p").unwrap_err().to_string();
        assert!(
            e.contains(&format!("bytes {n}..{} of the pack no frame claims", n + 4)),
            "{e}"
        );
        let (mut gapped, _) = packed(&[10, 20]);
        gapped.body.streams[0].frames[1].offset += 1;
        let e = PackScan::new(&gapped, 0, n + 1, "p")
            .unwrap_err()
            .to_string();
        assert!(e.contains("do not tile"), "{e}");
        // A pack cut short inside a frame.
        let mut s = PackScan::new(&m, 0, n, "p").unwrap();
        s.update(&pack[..pack.len() - 1]).unwrap();
        assert!(s
            .finish()
            .unwrap_err()
            .to_string()
            .contains("inside its frames"));
    }
}
