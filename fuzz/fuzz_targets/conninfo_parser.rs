//! Arbitrary strings through the connection-string parser and redaction.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = pgkeep::config::ConnSettings::resolve_with(s, &|_| None);
        let _ = pgkeep::config::redact_conninfo(s);
        let _ = pgkeep::config::redact(s);
    }
});
