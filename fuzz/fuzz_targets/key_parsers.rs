//! Key material parsers on arbitrary input: key files (raw or base64), key
//! records (`keys/<id>.json`), and wrapped keys opened with a fixed master
//! key. Must never panic; a wrapped key the fuzzer did not make must never
//! open.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgkeep::crypto::{CipherKind, SecretInput, WrappedKey};
use pgkeep::keys::KeyRecord;

fuzz_target!(|data: &[u8]| {
    let _ = SecretInput::parse_key(data, "fuzz");
    let _ = KeyRecord::decode(data, "fuzz");
    if let Ok(w) = serde_json::from_slice::<WrappedKey>(data) {
        let master = SecretInput::Raw(zeroize::Zeroizing::new([9; 32]))
            .derive(None)
            .expect("raw keys derive");
        for kind in [CipherKind::Aes256Gcm, CipherKind::ChaCha20Poly1305] {
            assert!(w.unwrap(&master, kind, "fuzz", "fuzz").is_err(), "forged wrap opened");
        }
    }
});
