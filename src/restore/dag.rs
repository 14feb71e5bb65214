//! Runs TOC entries on a pool of connections in dependency order: an entry
//! starts once every entry it depends on (within the same batch) is done.
//! Used for post-data, where index builds and constraint checks run in
//! parallel. A statement that loses a deadlock is retried.

use crate::catalog::TocEntry;
use crate::error::{Error, Result};
use crate::pg::Conn;
use crate::progress::Progress;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

const DEADLOCK: &str = "40P01";
const MAX_RETRIES: usize = 5;

/// Executes `entries` over `conns`, respecting `deps` among them, and
/// reports each entry as it starts and finishes to `progress` (as `phase`).
pub async fn run_entries(
    conns: Vec<Conn>,
    entries: Vec<TocEntry>,
    progress: &dyn Progress,
    phase: &'static str,
) -> Result<Vec<Conn>> {
    let ids: HashSet<u32> = entries.iter().map(|e| e.id).collect();
    let mut waiting_on: HashMap<u32, usize> = HashMap::new();
    let mut dependents: HashMap<u32, Vec<u32>> = HashMap::new();
    for e in &entries {
        let deps: HashSet<u32> = e
            .deps
            .iter()
            .copied()
            .filter(|d| ids.contains(d) && *d != e.id)
            .collect();
        waiting_on.insert(e.id, deps.len());
        for d in deps {
            dependents.entry(d).or_default().push(e.id);
        }
    }
    let by_id: HashMap<u32, Arc<TocEntry>> =
        entries.into_iter().map(|e| (e.id, Arc::new(e))).collect();
    // Ready entries, in TOC order (ids grow along the sorted TOC).
    let mut ready: VecDeque<u32> = {
        let mut v: Vec<u32> = waiting_on
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(id, _)| *id)
            .collect();
        v.sort_unstable();
        v.into()
    };
    let mut idle: Vec<Conn> = conns;
    let mut running = tokio::task::JoinSet::new();
    let mut done = 0usize;
    let total = by_id.len();
    let mut first_error: Option<Error> = None;
    while done < total {
        while first_error.is_none() && !idle.is_empty() {
            let Some(id) = ready.pop_front() else { break };
            let conn = idle
                .pop()
                .ok_or_else(|| Error::Internal("no idle connection".into()))?;
            let entry = by_id
                .get(&id)
                .cloned()
                .ok_or_else(|| Error::Internal("unknown entry".into()))?;
            progress.step(phase, done, total, Some(&describe(&entry)));
            running.spawn(async move {
                let r = run_one(&conn, &entry).await;
                (conn, entry.id, r)
            });
        }
        let Some(joined) = running.join_next().await else {
            if first_error.is_some() {
                break;
            }
            return Err(Error::Internal(format!(
                "dependency cycle among {} post-data entries",
                total - done
            )));
        };
        let (conn, id, r) = joined.map_err(|e| Error::Internal(format!("restore task: {e}")))?;
        idle.push(conn);
        done += 1;
        progress.step(phase, done, total, None);
        if let Err(e) = r {
            first_error.get_or_insert(e);
            continue;
        }
        if let Some(ds) = dependents.get(&id) {
            let mut newly: Vec<u32> = Vec::new();
            for d in ds {
                if let Some(n) = waiting_on.get_mut(d) {
                    *n -= 1;
                    if *n == 0 {
                        newly.push(*d);
                    }
                }
            }
            newly.sort_unstable();
            ready.extend(newly);
        }
    }
    while let Some(j) = running.join_next().await {
        if let Ok((conn, _, _)) = j {
            idle.push(conn);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(idle),
    }
}

/// What an entry builds, for progress: kind and qualified name.
fn describe(e: &TocEntry) -> String {
    match &e.schema {
        Some(s) => format!("{:?} {s}.{}", e.kind, e.name),
        None => format!("{:?} {}", e.kind, e.name),
    }
}

/// Runs one entry's SQL, retrying when it was chosen as a deadlock victim.
pub async fn run_one(conn: &Conn, entry: &TocEntry) -> Result<()> {
    if entry.sql.trim().is_empty() {
        return Ok(());
    }
    let mut attempt = 0;
    loop {
        match conn.client.batch_execute(&entry.sql).await {
            Ok(()) => return Ok(()),
            Err(e) if e.code().map(|c| c.code()) == Some(DEADLOCK) && attempt < MAX_RETRIES => {
                attempt += 1;
                tracing::debug!(entry = %entry.name, attempt, "deadlock victim; retrying");
            }
            Err(e) => {
                return Err(Error::Db {
                    context: format!(
                        "restoring {} {}{}",
                        entry.kind.label(),
                        entry
                            .schema
                            .as_deref()
                            .map(|s| format!("{s}."))
                            .unwrap_or_default(),
                        entry.name
                    ),
                    source: e,
                })
            }
        }
    }
}
