//! Arbitrary bytes through the frame reader: header parse, hash check,
//! decompression. Must never panic or allocate without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgkeep::pipeline::codec::{decode_frame, ExpectedFrame};

fuzz_target!(|data: &[u8]| {
    let _ = pgkeep::archive::frame::FrameHeader::decode(data, "fuzz");
    // Use the header's own hash as the expectation so fuzzing reaches the
    // decompression path, not only the hash mismatch.
    if data.len() >= 72 {
        let mut sha = [0u8; 32];
        sha.copy_from_slice(&data[40..72]);
        let idx = u32::from_le_bytes([data[12], data[13], data[14], data[15]]);
        let stream = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        let _ = decode_frame(data, &ExpectedFrame { object: "fuzz", stream, index: idx, sha256: &sha });
    }
});
