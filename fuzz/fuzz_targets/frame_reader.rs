//! Arbitrary bytes through the frame reader: header parse, identity and
//! hash checks, decompression. The input's payload length and its hash (as
//! the frame version in its header defines it) are patched into its header
//! so fuzzing reaches the decompressor, not only the hash mismatch. Must never panic or allocate without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgkeep::pipeline::frame::{frame_digest, FRAME_HEADER_LEN};
use pgkeep::pipeline::codec::{decode_frame, ExpectedFrame};
use pgkeep::pipeline::FrameBuffers;

fuzz_target!(|data: &[u8]| {
    let _ = pgkeep::pipeline::frame::FrameHeader::decode(data, "fuzz");
    if data.len() < FRAME_HEADER_LEN {
        return;
    }
    let mut frame = data.to_vec();
    let payload_len = (frame.len() - FRAME_HEADER_LEN) as u32;
    frame[24..28].copy_from_slice(&payload_len.to_le_bytes());
    let version = frame[4];
    let sha = frame_digest(version, &frame);
    frame[40..72].copy_from_slice(&sha);
    let stream = u32::from_le_bytes([frame[8], frame[9], frame[10], frame[11]]);
    let index = u32::from_le_bytes([frame[12], frame[13], frame[14], frame[15]]);
    // A small pool, so decoding also runs in reused buffers.
    let bufs = FrameBuffers::new(1 << 12, 1 << 14);
    let _ = decode_frame(&frame, &ExpectedFrame { object: "fuzz", stream, index, sha256: &sha, version, key: None, plain_digest: true }, &bufs);
    let key = pgkeep::crypto::BackupKey::new(
        pgkeep::crypto::CipherKind::Aes256Gcm,
        &pgkeep::crypto::DataKey::from_bytes(zeroize::Zeroizing::new([3; 32])),
        "fuzz",
    );
    let _ = decode_frame(&frame, &ExpectedFrame { object: "fuzz", stream, index, sha256: &sha, version, key: Some(&key), plain_digest: true }, &bufs);
});
