//! Arbitrary text through the repository URL and option parsers: `--repo`
//! locations, `--repo-option key=value` lists and a policy-file table (as
//! JSON). Checks: no panic, a parsed bucket location re-parses to itself,
//! and no error message ever contains an option value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgkeep::store::{Location, RepoOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(l) = Location::parse(s) {
        if !l.is_local() {
            assert_eq!(Location::parse(&l.to_string()).ok(), Some(l));
        }
    }
    let pairs: Vec<String> = s.split('\n').map(|p| format!("{p}SECRETVALUE")).collect();
    match RepoOptions::from_pairs(&pairs) {
        Ok(o) => {
            if let Err(e) = o.check_applies(None) {
                assert!(!e.to_string().contains("SECRETVALUE"), "{e}");
            }
        }
        Err(e) => assert!(!e.to_string().contains("SECRETVALUE"), "{e}"),
    }
    let _ = serde_json::from_str::<RepoOptions>(s);
});
