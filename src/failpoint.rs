//! Failpoints for fault tests: with `PGKEEP_FAILPOINT=name:N` in the
//! environment the process aborts, as a crash or `kill -9` would, the Nth
//! time it passes the point `name` (points: `restore-data-unit` after a
//! data unit committed, `restore-post-entry` after a post-data entry).
//! Unset, a point costs a lookup of a value read once. Never set it in
//! production.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

fn armed() -> Option<&'static (String, u64)> {
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("PGKEEP_FAILPOINT").ok()?;
            let (name, n) = v.split_once(':')?;
            Some((name.to_string(), n.parse().ok()?))
        })
        .as_ref()
}

/// Aborts the process when the armed point is `name` and this is its Nth
/// pass.
pub fn hit(name: &str) {
    static HITS: AtomicU64 = AtomicU64::new(0);
    let Some((armed, n)) = armed() else {
        return;
    };
    if armed == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
        eprintln!("pgkeep: failpoint {name} reached ({n}): aborting");
        std::process::abort();
    }
}
