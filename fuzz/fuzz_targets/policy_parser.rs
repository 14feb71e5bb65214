//! Arbitrary text through the policy file parser and validation (every
//! section: jobs, schedules, durations, keep rules, notify), the `--part`
//! flag syntax, `${VAR}` expansion, keep-rule spans and run-record names.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = pgkeep::config::Policy::parse(s, "fuzz") {
            for c in &p.chain {
                assert!(c.validate().is_ok());
                assert!(c.table_parts().is_some());
            }
            for j in p.jobs() {
                // Every job of a valid policy has a name the repository can hold.
                assert!(!j.name().is_empty() && !j.name().contains('/'));
            }
            let _ = p.timezone();
        }
        let _ = pgkeep::config::policy::Part::from_flag(s);
        let _ = pgkeep::config::env::expand(s, "fuzz", &|k| (k.len() < 4).then(|| k.to_string()));
        let _ = pgkeep::config::keep::Span::parse(s);
        let _ = pgkeep::ops::runs::parse_entry(&object_store::path::Path::from(s));
    }
});
