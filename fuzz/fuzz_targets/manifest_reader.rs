//! Arbitrary bytes through the manifest reader.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pgkeep::archive::Manifest::decode(data, "fuzz");
    let _ = pgkeep::archive::Manifest::decode_header(data, "fuzz");
});
