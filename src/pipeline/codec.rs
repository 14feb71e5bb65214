//! Frame encoding and decoding: plaintext → zstd (with its content
//! checksum) → AEAD (when the backup is encrypted) → SHA-256 of the stored
//! bytes, and the reverse with every check (hash, tag, lengths, identity,
//! the content checksum) made before a byte of plaintext is released. Each
//! byte is hashed once on the way out: the stored bytes' SHA-256 proves
//! what was stored, zstd's checksum that decompression gave back what was
//! compressed (`docs/security.md`). The AEAD's associated data binds the frame to its backup,
//! stream, index, flags (incl. last-frame), row count and plaintext length. CPU-bound: call from blocking
//! threads, never from the async runtime.

use super::bufpool::BufferPool;
use super::frame::{
    flags, frame_digest, FrameHeader, FRAME_HEADER_LEN, FRAME_VERSION, HASHED_HEADER_LEN,
};
use super::framer::PlainFrame;
use crate::crypto::{BackupKey, DataCipher, TAG_LEN};
use crate::error::{Error, Result};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::cell::RefCell;

/// A frame ready to append to a pack: header and payload in one buffer.
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    pub header: FrameHeader,
    pub bytes: Bytes,
}

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Compresses `data` onto the end of `out` (which already holds the frame
/// header's room), reusing this thread's compressor.
fn compress_into(data: &[u8], level: i32, out: &mut Vec<u8>) -> Result<()> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            let mut c = zstd::bulk::Compressor::new(level)
                .map_err(|e| Error::Internal(format!("zstd init: {e}")))?;
            // XXH64 of the content in the frame's trailer, which the
            // decompressor checks.
            c.include_checksum(true)
                .map_err(|e| Error::Internal(format!("zstd checksum: {e}")))?;
            *slot = Some((level, c));
        }
        let (_, c) = slot
            .as_mut()
            .ok_or_else(|| Error::Internal("zstd compressor missing".into()))?;
        out.reserve(zstd::zstd_safe::compress_bound(data.len()));
        let start = out.len() as u64;
        let mut tail = std::io::Cursor::new(out);
        tail.set_position(start);
        c.compress_to_buffer(data, &mut tail)
            .map_err(|e| Error::Internal(format!("zstd compress: {e}")))?;
        Ok(())
    })
}

/// The capacity of a buffer that holds any encoded frame of up to
/// `frame_size` plaintext bytes (header, worst-case zstd output, tag).
pub fn frame_buffer_capacity(frame_size: usize) -> usize {
    FRAME_HEADER_LEN + zstd::zstd_safe::compress_bound(frame_size) + TAG_LEN
}

/// The buffers frames pass through, in three classes: plaintext, one
/// frame's stored bytes (encoded, or being opened), and ranged reads of
/// several stored frames. Separate classes, because a buffer keeps the
/// pages it has touched: a stored frame is usually a third of its
/// plaintext and a read several frames, and a buffer that once held a read
/// would stay that large in memory while it held one frame being opened.
#[derive(Clone, Debug)]
pub struct FrameBuffers {
    pub plain: BufferPool,
    pub stored: BufferPool,
    pub reads: BufferPool,
}

impl FrameBuffers {
    /// Pools for frames of up to `frame_size` plaintext bytes, keeping idle
    /// buffers up to `budget` bytes per class.
    pub fn new(frame_size: usize, budget: usize) -> FrameBuffers {
        FrameBuffers::for_reads(frame_size, 0, budget)
    }

    /// Pools for reading a backup in reads of up to `max_read` stored bytes
    /// (a read holds several frames, or one frame if larger).
    pub fn for_reads(frame_size: usize, max_read: usize, budget: usize) -> FrameBuffers {
        let stored = frame_buffer_capacity(frame_size);
        let read = stored.max(max_read);
        FrameBuffers {
            plain: BufferPool::new(frame_size, budget / frame_size.max(1)),
            stored: BufferPool::new(stored, budget / stored),
            reads: BufferPool::new(read, budget / read),
        }
    }

    /// No pooling: every buffer is its own allocation.
    pub fn unpooled() -> FrameBuffers {
        FrameBuffers {
            plain: BufferPool::unpooled(),
            stored: BufferPool::unpooled(),
            reads: BufferPool::unpooled(),
        }
    }
}

/// Decompresses `data`, which must yield exactly `plain_len` bytes, into
/// `out` (empty, with room for `plain_len`).
fn decompress_into(data: &[u8], plain_len: usize, out: &mut Vec<u8>, object: &str) -> Result<()> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(
                zstd::bulk::Decompressor::new()
                    .map_err(|e| Error::Internal(format!("zstd init: {e}")))?,
            );
        }
        let d = slot
            .as_mut()
            .ok_or_else(|| Error::Internal("zstd decompressor missing".into()))?;
        out.reserve(plain_len);
        let n = d
            .decompress_to_buffer(data, out)
            .map_err(|e| Error::integrity(object, format!("zstd decompression failed: {e}")))?;
        if n != plain_len {
            return Err(Error::integrity(
                object,
                format!("frame decompressed to {n} bytes, header says {plain_len}"),
            ));
        }
        Ok(())
    })
}

/// The associated data of a sealed frame: everything in its header that
/// says where it belongs and what it holds.
fn frame_aad(key: &BackupKey, h: &FrameHeader) -> Vec<u8> {
    let mut a = Vec::with_capacity(48 + key.backup_id.len());
    a.extend_from_slice(b"pgkeep frame v1\0");
    a.extend_from_slice(key.backup_id.as_bytes());
    a.push(0);
    a.push(h.version);
    a.push(h.flags);
    for v in [h.stream, h.index, h.rows, h.plain_len] {
        a.extend_from_slice(&v.to_le_bytes());
    }
    a
}

/// Encodes one frame of stream `stream` at position `index` into a stored
/// buffer from `bufs`. `level` 0 stores the plaintext uncompressed; `key` seals the
/// payload.
pub fn encode_frame(
    frame: &PlainFrame,
    stream: u32,
    index: u32,
    level: i32,
    key: Option<&BackupKey>,
    bufs: &FrameBuffers,
) -> Result<EncodedFrame> {
    let mut out = bufs.stored.take(frame_buffer_capacity(frame.data.len()));
    out.resize(FRAME_HEADER_LEN, 0);
    let mut f = if level == 0 {
        out.extend_from_slice(&frame.data);
        0
    } else {
        compress_into(&frame.data, level, &mut out)?;
        flags::ZSTD
    };
    if frame.row_boundary {
        f |= flags::ROW_BOUNDARY;
    }
    if frame.last {
        f |= flags::LAST;
    }
    if key.is_some() {
        f |= flags::ENCRYPTED;
    }
    let payload_len = out.len() - FRAME_HEADER_LEN;
    let mut header = FrameHeader {
        version: FRAME_VERSION,
        flags: f,
        stream,
        index,
        rows: frame.rows,
        plain_len: len_u32(frame.data.len())?,
        stored_len: len_u32(payload_len + if key.is_some() { TAG_LEN } else { 0 })?,
        nonce: [0; 12],
        sha256: [0; 32],
    };
    if let Some(key) = key {
        header.nonce = DataCipher::random_nonce();
        let tag = key.cipher.seal_detached(
            &header.nonce,
            &frame_aad(key, &header),
            &mut out[FRAME_HEADER_LEN..],
        )?;
        out.extend_from_slice(&tag);
    }
    out[..FRAME_HEADER_LEN].copy_from_slice(&header.encode());
    header.sha256 = frame_digest(header.version, &out);
    out[HASHED_HEADER_LEN..FRAME_HEADER_LEN].copy_from_slice(&header.sha256);
    Ok(EncodedFrame {
        header,
        bytes: out.freeze(),
    })
}

fn len_u32(n: usize) -> Result<u32> {
    u32::try_from(n)
        .map_err(|_| Error::Internal(format!("frame of {n} bytes exceeds the format's limit")))
}

/// What the reader expects of a frame (from the manifest).
#[derive(Clone, Debug)]
pub struct ExpectedFrame<'a> {
    pub object: &'a str,
    pub stream: u32,
    pub index: u32,
    pub sha256: &'a [u8; 32],
    /// The frame version the archive's format writes: a frame of another
    /// version is refused (a version 1 frame's hash leaves its header out).
    pub version: u8,
    /// The backup's key when it is encrypted: then every frame must be sealed.
    pub key: Option<&'a BackupKey>,
    /// Hash the plaintext too (backups of format 1, whose streams carry a
    /// digest of their frames' plaintext).
    pub plain_digest: bool,
}

/// A decoded, verified frame.
#[derive(Debug)]
pub struct DecodedFrame {
    pub header: FrameHeader,
    pub plain: Bytes,
    /// SHA-256 of the plaintext, when [`ExpectedFrame::plain_digest`] asks.
    pub plain_sha256: Option<[u8; 32]>,
}

/// Verifies and decodes one frame (header + payload bytes, as stored); the
/// plaintext lands in a buffer from `bufs`.
pub fn decode_frame(
    bytes: &[u8],
    expect: &ExpectedFrame<'_>,
    bufs: &FrameBuffers,
) -> Result<DecodedFrame> {
    let object = expect.object;
    let where_ = || format!("frame {} of stream {}", expect.index, expect.stream);
    let header = FrameHeader::decode(bytes, object).map_err(|e| match e {
        Error::Format { object, message } => Error::Format {
            object,
            message: format!("{}: {message}", where_()),
        },
        other => other,
    })?;
    if header.stream != expect.stream || header.index != expect.index {
        return Err(Error::integrity(
            object,
            format!(
                "{}: found frame {} of stream {} instead (frames reordered or spliced)",
                where_(),
                header.index,
                header.stream
            ),
        ));
    }
    if bytes.len() != header.total_len() {
        return Err(Error::integrity(
            object,
            format!(
                "{}: {} bytes stored, header says {}",
                where_(),
                bytes.len(),
                header.total_len()
            ),
        ));
    }
    if header.version != expect.version {
        return Err(Error::integrity(
            object,
            format!(
                "{}: frame version {} in an archive of frame version {}",
                where_(),
                header.version,
                expect.version
            ),
        ));
    }
    if &header.sha256 != expect.sha256 {
        return Err(Error::integrity(
            object,
            format!("{}: header hash differs from the manifest", where_()),
        ));
    }
    let payload = &bytes[FRAME_HEADER_LEN..];
    if frame_digest(header.version, bytes) != header.sha256 {
        return Err(Error::integrity(
            object,
            format!("{}: SHA-256 mismatch (corrupted bytes)", where_()),
        ));
    }
    let mut opened;
    let payload = match (header.flags & flags::ENCRYPTED != 0, expect.key) {
        (false, None) => payload,
        (true, Some(key)) => {
            opened = bufs.stored.take(payload.len());
            opened.extend_from_slice(payload);
            let len = key
                .cipher
                .open_detached(&header.nonce, &frame_aad(key, &header), &mut opened)
                .map_err(|_| {
                    Error::integrity(
                        object,
                        format!(
                            "{}: authentication failed (tampered, moved, or sealed with another key)",
                            where_()
                        ),
                    )
                })?;
            &opened[..len]
        }
        (true, None) => {
            return Err(Error::integrity(
                object,
                format!(
                    "{}: encrypted frame in a backup recorded as unencrypted",
                    where_()
                ),
            ))
        }
        (false, Some(_)) => {
            return Err(Error::integrity(
                object,
                format!("{}: unencrypted frame in an encrypted backup", where_()),
            ))
        }
    };
    let plain_len = header.plain_len as usize;
    let compressed = header.flags & flags::ZSTD != 0;
    if !compressed && payload.len() != plain_len {
        return Err(Error::integrity(
            object,
            format!("{}: length mismatch", where_()),
        ));
    }
    let mut plain = bufs.plain.take(plain_len);
    if compressed {
        decompress_into(
            payload,
            plain_len,
            &mut plain,
            &format!("{object} ({})", where_()),
        )?;
    } else {
        plain.extend_from_slice(payload);
    }
    let plain_sha256 = expect
        .plain_digest
        .then(|| Sha256::digest(&plain[..]).into());
    Ok(DecodedFrame {
        header,
        plain: plain.freeze(),
        plain_sha256,
    })
}

/// Digest of a whole stream's plaintext as backups of format 1 record it:
/// SHA-256 over the frames' plaintext SHA-256 digests in order. Checked
/// when reading those backups; format 2 hashes each byte once instead.
#[derive(Clone, Default)]
pub struct StreamDigest {
    hasher: Sha256,
    frames: u32,
}

impl StreamDigest {
    pub fn new() -> StreamDigest {
        StreamDigest::default()
    }
    pub fn update(&mut self, frame_plain_sha256: &[u8; 32]) {
        self.hasher.update(frame_plain_sha256);
        self.frames += 1;
    }
    pub fn frames(&self) -> u32 {
        self.frames
    }
    pub fn finish(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An unencrypted frame as archives of format 1 and 2 wrote it: frame
    /// version 1, its hash over the payload only.
    pub(crate) fn as_frame_version_1(frame: &[u8]) -> Vec<u8> {
        let mut v1 = frame.to_vec();
        v1[4] = 1;
        let sha = frame_digest(1, &v1);
        v1[HASHED_HEADER_LEN..FRAME_HEADER_LEN].copy_from_slice(&sha);
        v1
    }

    fn pf(data: Vec<u8>, rows: u32, last: bool) -> PlainFrame {
        PlainFrame {
            data: Bytes::from(data),
            rows,
            row_boundary: true,
            last,
        }
    }

    fn pool() -> FrameBuffers {
        FrameBuffers::new(1 << 12, 4 << 12)
    }

    fn key(backup: &str) -> BackupKey {
        BackupKey::new(
            crate::crypto::CipherKind::Aes256Gcm,
            &crate::crypto::DataKey::from_bytes(zeroize::Zeroizing::new([9; 32])),
            backup,
        )
    }

    fn expect<'a>(
        sha: &'a [u8; 32],
        stream: u32,
        index: u32,
        key: Option<&'a BackupKey>,
    ) -> ExpectedFrame<'a> {
        ExpectedFrame {
            object: "o",
            stream,
            index,
            sha256: sha,
            version: FRAME_VERSION,
            key,
            plain_digest: true,
        }
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(data in proptest::collection::vec(any::<u8>(), 0..5000), level in 0i32..6, stream in any::<u32>(), index in any::<u32>(), rows in any::<u32>(), sealed in any::<bool>()) {
            let k = key("b1");
            let k = sealed.then_some(&k);
            let e = encode_frame(&pf(data.clone(), rows, index % 2 == 0), stream, index, level, k, &pool()).unwrap();
            let d = decode_frame(&e.bytes, &expect(&e.header.sha256, stream, index, k), &pool()).unwrap();
            prop_assert_eq!(d.plain.as_ref(), &data[..]);
            prop_assert_eq!(d.header.rows, rows);
            prop_assert_eq!(d.plain_sha256, Some(Sha256::digest(&data).into()));
            let quiet = ExpectedFrame { plain_digest: false, ..expect(&e.header.sha256, stream, index, k) };
            prop_assert_eq!(decode_frame(&e.bytes, &quiet, &pool()).unwrap().plain_sha256, None);
            if sealed && data.len() > 16 {
                prop_assert!(e.bytes.windows(data.len()).all(|w| w != &data[..]), "plaintext visible in a sealed frame");
            }
        }

        #[test]
        fn reused_buffers_never_leak_an_earlier_frame(frames in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..3000), 0i32..3, any::<bool>()), 1..12)) {
            // One small pool for everything: buffers come back holding the
            // bytes of earlier (often longer) frames.
            let pool = FrameBuffers::new(2048, 2 * 4096);
            let k = key("b1");
            for (i, (data, level, sealed)) in frames.iter().enumerate() {
                let k = sealed.then_some(&k);
                let e = encode_frame(&pf(data.clone(), 1, true), 1, i as u32, *level, k, &pool).unwrap();
                let d = decode_frame(&e.bytes, &expect(&e.header.sha256, 1, i as u32, k), &pool).unwrap();
                prop_assert_eq!(d.plain.as_ref(), &data[..]);
                prop_assert_eq!(e.header.stored_len as usize + FRAME_HEADER_LEN, e.bytes.len());
            }
            // Idle buffers stay within the budget the pools were given.
            for p in [&pool.plain, &pool.stored, &pool.reads] {
                prop_assert!(p.idle() * p.buffer_capacity() <= 2 * 4096);
            }
        }

        #[test]
        fn every_bit_flip_is_detected(data in proptest::collection::vec(any::<u8>(), 1..2000), level in 0i32..4, pos in any::<proptest::sample::Index>(), bit in 0u8..8) {
            let e = encode_frame(&pf(data, 3, true), 7, 9, level, None, &pool()).unwrap();
            let mut bytes = e.bytes.to_vec();
            let i = pos.index(bytes.len());
            bytes[i] ^= 1 << bit;
            let r = decode_frame(&bytes, &expect(&e.header.sha256, 7, 9, None), &pool());
            // The hash covers the header before it (flags, rows and all)
            // and the payload, and is itself compared with the manifest's.
            prop_assert!(r.is_err(), "flip at {} undetected", i);
        }

        #[test]
        fn sealed_frames_detect_every_flip_even_with_a_recomputed_hash(data in proptest::collection::vec(any::<u8>(), 1..2000), level in 0i32..4, pos in any::<proptest::sample::Index>(), bit in 0u8..8) {
            // An attacker who also rewrites the stored hash (header and
            // manifest) still cannot change a byte: the tag covers it all.
            let k = key("b1");
            let e = encode_frame(&pf(data, 3, true), 7, 9, level, Some(&k), &pool()).unwrap();
            let mut bytes = e.bytes.to_vec();
            let i = pos.index(bytes.len());
            if (40..72).contains(&i) { return Ok(()); }
            bytes[i] ^= 1 << bit;
            let sha = frame_digest(FRAME_VERSION, &bytes);
            bytes[40..72].copy_from_slice(&sha);
            let r = decode_frame(&bytes, &expect(&sha, 7, 9, Some(&k)), &pool());
            prop_assert!(r.is_err(), "flip at {} undetected", i);
        }

        #[test]
        fn compressed_frames_never_decode_to_other_bytes(data in proptest::collection::vec(any::<u8>(), 1..3000), level in 1i32..4, pos in any::<proptest::sample::Index>(), bit in 0u8..8) {
            // Damage past the stored hash (a stored hash recomputed, as a
            // faulty compressor or buffer would produce it): zstd's content
            // checksum refuses every payload that decompresses to bytes
            // other than the frame's own.
            let e = encode_frame(&pf(data.clone(), 3, true), 7, 9, level, None, &pool()).unwrap();
            let mut bytes = e.bytes.to_vec();
            let i = FRAME_HEADER_LEN + pos.index(bytes.len() - FRAME_HEADER_LEN);
            bytes[i] ^= 1 << bit;
            let sha = frame_digest(FRAME_VERSION, &bytes);
            bytes[40..72].copy_from_slice(&sha);
            if let Ok(d) = decode_frame(&bytes, &expect(&sha, 7, 9, None), &pool()) {
                prop_assert_eq!(d.plain.as_ref(), &data[..], "flip at {} decoded to other bytes", i);
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), sealed in any::<bool>()) {
            let k = key("b");
            let _ = decode_frame(&bytes, &expect(&[0; 32], 0, 0, sealed.then_some(&k)), &pool());
        }
    }

    #[test]
    fn frames_compressed_without_a_content_checksum_still_decode() {
        // Format 1 frames: zstd without its checksum, frame version 1.
        let data = b"1\tone\n2\ttwo\n".repeat(50);
        let payload = zstd::bulk::compress(&data, 3).unwrap();
        let header = FrameHeader {
            version: 1,
            flags: flags::ZSTD | flags::ROW_BOUNDARY | flags::LAST,
            stream: 1,
            index: 0,
            rows: 100,
            plain_len: data.len() as u32,
            stored_len: payload.len() as u32,
            nonce: [0; 12],
            sha256: Sha256::digest(&payload).into(),
        };
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(&payload);
        let v1 = ExpectedFrame {
            version: 1,
            ..expect(&header.sha256, 1, 0, None)
        };
        let d = decode_frame(&bytes, &v1, &pool()).unwrap();
        assert_eq!(d.plain.as_ref(), &data[..]);
        // Where the archive's format writes version 2, a version 1 frame
        // (whose hash leaves its header out) is refused.
        let err = decode_frame(&bytes, &expect(&header.sha256, 1, 0, None), &pool()).unwrap_err();
        assert!(err.to_string().contains("frame version 1"), "{err}");
        // Frames written now carry it: 4 bytes more than without.
        let e = encode_frame(&pf(data.clone(), 100, true), 1, 0, 3, None, &pool()).unwrap();
        assert_eq!(e.header.stored_len as usize, payload.len() + 4);
    }

    #[test]
    fn wrong_position_is_reported() {
        let e = encode_frame(&pf(b"a\tb\n".to_vec(), 1, true), 1, 2, 3, None, &pool()).unwrap();
        let err =
            decode_frame(&e.bytes, &expect(&e.header.sha256, 1, 3, None), &pool()).unwrap_err();
        assert!(err.to_string().contains("reordered"), "{err}");
    }

    #[test]
    fn sealed_frames_do_not_open_in_another_backup_or_as_plaintext() {
        let (a, b) = (key("b1"), key("b2"));
        let e = encode_frame(&pf(b"a\tb\n".to_vec(), 1, true), 1, 2, 3, Some(&a), &pool()).unwrap();
        let sha = e.header.sha256;
        assert!(
            decode_frame(&e.bytes, &expect(&sha, 1, 2, Some(&b)), &pool())
                .unwrap_err()
                .to_string()
                .contains("authentication failed")
        );
        assert!(decode_frame(&e.bytes, &expect(&sha, 1, 2, None), &pool()).is_err());
        let plain = encode_frame(&pf(b"a\tb\n".to_vec(), 1, true), 1, 2, 3, None, &pool()).unwrap();
        let err = decode_frame(
            &plain.bytes,
            &expect(&plain.header.sha256, 1, 2, Some(&a)),
            &pool(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unencrypted frame"), "{err}");
    }
}
