//! Arbitrary text as a `restore --use-list` file: no panic, and every id
//! it yields comes from a line that is not a comment.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgkeep::restore::select::parse_list;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ids) = parse_list(s) {
        for id in ids {
            assert!(s
                .lines()
                .any(|l| !l.trim().starts_with(';') && l.trim().starts_with(&id.to_string())));
        }
    }
});
