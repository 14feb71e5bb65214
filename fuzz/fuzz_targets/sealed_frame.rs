//! Sealed frames under tampering: the input is split into a plaintext and a
//! list of byte positions; the plaintext is encoded with a fixed key, the
//! positions are flipped, and the stored-bytes hash is recomputed as an
//! attacker would. Decoding must fail whenever any byte outside the hash
//! field changed, and give back the plaintext exactly when none did.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pgkeep::pipeline::frame::{frame_digest, FRAME_VERSION};
use pgkeep::crypto::{BackupKey, CipherKind, DataKey};
use pgkeep::pipeline::codec::{decode_frame, encode_frame, ExpectedFrame};
use pgkeep::pipeline::{FrameBuffers, PlainFrame};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n_flips = (data[0] % 4) as usize;
    let kind = if data[1] & 1 == 0 {
        CipherKind::Aes256Gcm
    } else {
        CipherKind::ChaCha20Poly1305
    };
    let rest = &data[2..];
    let split = (n_flips * 2).min(rest.len());
    let (flips, plain) = rest.split_at(split);
    let key = BackupKey::new(kind, &DataKey::from_bytes(zeroize::Zeroizing::new([3; 32])), "fuzz");
    let frame = PlainFrame {
        data: Bytes::copy_from_slice(plain),
        rows: 1,
        row_boundary: true,
        last: true,
    };
    let Ok(enc) = encode_frame(&frame, 1, 2, 1, Some(&key), &FrameBuffers::unpooled()) else {
        return;
    };
    let mut bytes = enc.bytes.to_vec();
    for pair in flips.chunks(2) {
        let pos = (usize::from(pair[0]) << 8 | usize::from(*pair.get(1).unwrap_or(&0))) % bytes.len();
        if !(40..72).contains(&pos) {
            bytes[pos] ^= 0x01;
        }
    }
    // Two flips of one bit cancel out: compare with the original.
    let changed = bytes != enc.bytes.as_ref();
    let sha = frame_digest(FRAME_VERSION, &bytes);
    bytes[40..72].copy_from_slice(&sha);
    let r = decode_frame(
        &bytes,
        &ExpectedFrame { object: "fuzz", stream: 1, index: 2, sha256: &sha, version: FRAME_VERSION, key: Some(&key), plain_digest: true },
        &FrameBuffers::unpooled(),
    );
    match r {
        Ok(d) => {
            assert!(!changed, "tampered sealed frame accepted");
            assert_eq!(d.plain.as_ref(), plain);
        }
        Err(_) => assert!(changed, "untampered sealed frame rejected"),
    }
});
