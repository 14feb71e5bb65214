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
        // Each id is the digits before the `;` of a line that is not a
        // comment.
        let line_ids: Vec<u32> = s
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with(';'))
            .filter_map(|l| l.split_once(';'))
            .filter_map(|(id, _)| id.trim().parse::<u32>().ok())
            .collect();
        for id in ids {
            assert!(line_ids.contains(&id), "{id} from {s:?}");
        }
    }
});
