//! Arbitrary text through the policy file parser and validation, and the
//! `--part` flag syntax.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = pgkeep::config::Policy::parse(s, "fuzz") {
            for c in &p.chain {
                assert!(c.validate().is_ok());
                assert!(c.table_parts().is_some());
            }
        }
        let _ = pgkeep::config::policy::Part::from_flag(s);
    }
});
