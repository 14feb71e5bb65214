//! Arbitrary bytes through the manifest reader. The trailing checksum is
//! recomputed so fuzzing reaches the header and body parsers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let _ = pgkeep::archive::Manifest::decode(data, "fuzz");
    let mut fixed = data.to_vec();
    fixed.extend_from_slice(&Sha256::digest(data));
    let _ = pgkeep::archive::Manifest::decode(&fixed, "fuzz");
    let _ = pgkeep::archive::Manifest::decode_header(&fixed, "fuzz");
});
