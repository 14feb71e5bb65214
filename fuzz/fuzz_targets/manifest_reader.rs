//! Arbitrary bytes through the manifest reader, with no key and with a
//! fixed master key (the sealed-body path). The trailing checksum is
//! recomputed so fuzzing reaches the header and body parsers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let none = pgkeep::keys::Unlock::default();
    let keyed = pgkeep::keys::Unlock::new(vec![pgkeep::crypto::SecretInput::Raw(
        zeroize::Zeroizing::new([9; 32]),
    )]);
    let _ = pgkeep::archive::Manifest::decode(data, "fuzz", &none);
    let mut fixed = data.to_vec();
    fixed.extend_from_slice(&Sha256::digest(data));
    let _ = pgkeep::archive::Manifest::decode(&fixed, "fuzz", &none);
    let _ = pgkeep::archive::Manifest::decode(&fixed, "fuzz", &keyed);
    let _ = pgkeep::archive::Manifest::decode_header(&fixed, "fuzz");
});
