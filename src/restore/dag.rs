//! Runs work on a pool of connections in dependency order: a task starts
//! once every task it depends on is done. Post-data entries run this way,
//! where index builds and constraint checks go in parallel, and so do a
//! restore's data units with them (`schedule.rs`). A statement that loses
//! a deadlock is retried.

use super::onerror::Failed;
use crate::catalog::TocEntry;
use crate::error::{Error, Result};
use crate::pg::Conn;
use crate::progress::Progress;
use std::collections::BTreeSet;
use std::sync::Arc;

const DEADLOCK: &str = "40P01";
const MAX_RETRIES: usize = 5;

/// Something the scheduler runs on one connection.
pub trait Job: Send + Sync + 'static {
    /// What it builds, for progress steps; `None` for work that reports
    /// progress of its own (a data unit).
    fn step(&self) -> Option<String>;
}

impl Job for TocEntry {
    fn step(&self) -> Option<String> {
        Some(describe(self))
    }
}

/// What runs one job: a connection to the target (or, in tests, a fake
/// that records what ran when).
#[async_trait::async_trait]
pub trait Runner<J>: Send + Sync + 'static {
    async fn run(&self, job: &J) -> Result<()>;
}

/// A job and the tasks (indexes into the same list) it waits for.
pub struct Task<J> {
    pub job: J,
    pub deps: Vec<usize>,
}

/// A connection to the target that records each entry it finishes when
/// `mark` (see `resume.rs`).
pub struct Tracked {
    pub conn: Conn,
    pub mark: bool,
}

#[async_trait::async_trait]
impl Runner<TocEntry> for Tracked {
    async fn run(&self, entry: &TocEntry) -> Result<()> {
        run_one(&self.conn, entry, self.mark).await?;
        crate::failpoint::hit("restore-post-entry");
        Ok(())
    }
}

/// Executes `tasks` over `conns`: a task starts once its dependencies
/// finished, the ready task listed first going first. Each task with a
/// step is reported as it starts and finishes to `progress` (as `phase`).
/// The first failure stops new tasks from starting; the ones running
/// finish, and the failure is returned. When `failed` keeps going
/// (`--continue-on-error`), a failure is recorded there instead and the
/// tasks after it still run (they may fail in turn, as with pg_restore).
pub async fn run_tasks<J: Job, R: Runner<J>>(
    conns: Vec<R>,
    tasks: Vec<Task<J>>,
    progress: &dyn Progress,
    phase: &'static str,
    failed: &Failed,
) -> Result<Vec<R>> {
    let mut waiting_on: Vec<usize> = Vec::with_capacity(tasks.len());
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    let mut jobs: Vec<Option<Arc<J>>> = Vec::with_capacity(tasks.len());
    for (i, t) in tasks.into_iter().enumerate() {
        let deps: BTreeSet<usize> = t.deps.into_iter().filter(|&d| d != i).collect();
        waiting_on.push(deps.len());
        for d in deps {
            if let Some(list) = dependents.get_mut(d) {
                list.push(i);
            }
        }
        jobs.push(Some(Arc::new(t.job)));
    }
    let total = jobs.len();
    let steps_total = jobs.iter().flatten().filter(|j| j.step().is_some()).count();
    let mut ready: BTreeSet<usize> = (0..total).filter(|&i| waiting_on[i] == 0).collect();
    let mut idle: Vec<R> = conns;
    let mut running = tokio::task::JoinSet::new();
    let (mut done, mut steps_done) = (0usize, 0usize);
    let mut first_error: Option<Error> = None;
    while done < total {
        while first_error.is_none() && !idle.is_empty() {
            let Some(i) = ready.pop_first() else { break };
            let conn = idle
                .pop()
                .ok_or_else(|| Error::Internal("no idle connection".into()))?;
            let job = jobs[i]
                .take()
                .ok_or_else(|| Error::Internal("a task became ready twice".into()))?;
            let step = job.step();
            if let Some(s) = &step {
                progress.step(phase, steps_done, steps_total, Some(s));
            }
            running.spawn(async move {
                let r = conn.run(&job).await;
                (conn, i, step.is_some(), r)
            });
        }
        let Some(joined) = running.join_next().await else {
            if first_error.is_some() {
                break;
            }
            return Err(Error::Internal(format!(
                "dependency cycle among {} restore tasks",
                total - done
            )));
        };
        let (conn, i, stepped, r) =
            joined.map_err(|e| Error::Internal(format!("restore task: {e}")))?;
        idle.push(conn);
        done += 1;
        if stepped {
            steps_done += 1;
            progress.step(phase, steps_done, steps_total, None);
        }
        if let Err(e) = r {
            if let Err(e) = failed.absorb(e) {
                first_error.get_or_insert(e);
                continue;
            }
        }
        for &d in &dependents[i] {
            waiting_on[d] -= 1;
            if waiting_on[d] == 0 {
                ready.insert(d);
            }
        }
    }
    while let Some(j) = running.join_next().await {
        if let Ok((conn, ..)) = j {
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

/// Runs one entry's SQL, retrying when it was chosen as a deadlock victim;
/// with `mark`, records it as done in the same implicit transaction.
pub async fn run_one(conn: &Conn, entry: &TocEntry, mark: bool) -> Result<()> {
    if entry.sql.trim().is_empty() {
        return Ok(());
    }
    let marked;
    let sql = if mark {
        marked = format!(
            "{}\n{}",
            entry.sql,
            super::resume::mark_sql(
                &[super::resume::entry_mark(entry.id)],
                entry.sql.contains("SESSION AUTHORIZATION")
            )
        );
        &marked
    } else {
        &entry.sql
    };
    retrying_deadlocks(
        || conn.client.batch_execute(sql),
        |e: &tokio_postgres::Error| e.code().map(|c| c.code()) == Some(DEADLOCK),
        &entry.name,
    )
    .await
    .map_err(|source| Error::Db {
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
        source,
    })
}

/// Runs `attempt` until it succeeds, fails with something other than a
/// deadlock, or lost [`MAX_RETRIES`] deadlocks in a row (then the last
/// deadlock is the error).
async fn retrying_deadlocks<E, F, Fut>(
    mut attempt: F,
    is_deadlock: impl Fn(&E) -> bool,
    name: &str,
) -> std::result::Result<(), E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), E>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(e) if is_deadlock(&e) && retries < MAX_RETRIES => {
                retries += 1;
                tracing::debug!(entry = %name, attempt = retries, "deadlock victim; retrying");
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ObjectKind, Section};
    use crate::progress::Silent;
    use std::collections::HashMap;
    use std::sync::Mutex;

    fn entry(id: u32, deps: &[u32]) -> TocEntry {
        TocEntry {
            id,
            kind: ObjectKind::Index,
            section: Section::PostData,
            schema: Some("public".into()),
            name: format!("e{id}"),
            owner: None,
            sql: format!("-- {id}"),
            deps: deps.to_vec(),
            data: None,
            drop: None,
        }
    }

    /// Executes `entries` over `conns`, respecting `deps` among them (a
    /// dependency outside `entries` counts as done); see [`run_tasks`].
    async fn run_entries<R: Runner<TocEntry>>(
        conns: Vec<R>,
        entries: Vec<TocEntry>,
        progress: &dyn Progress,
        phase: &'static str,
        failed: &Failed,
    ) -> Result<Vec<R>> {
        let index: HashMap<u32, usize> =
            entries.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
        let tasks = entries
            .into_iter()
            .map(|e| {
                let deps = e
                    .deps
                    .iter()
                    .filter(|d| **d != e.id)
                    .filter_map(|d| index.get(d).copied())
                    .collect();
                Task { job: e, deps }
            })
            .collect();
        run_tasks(conns, tasks, progress, phase, failed).await
    }

    /// Starts (`'s'`) and finishes (`'f'`) of entries, in order.
    type Log = Arc<Mutex<Vec<(char, u32)>>>;

    /// Records what ran, in order of start and of finish; fails the ids
    /// in `fail`.
    #[derive(Debug)]
    struct Fake {
        log: Log,
        fail: Vec<u32>,
    }

    #[async_trait::async_trait]
    impl Runner<TocEntry> for Fake {
        async fn run(&self, e: &TocEntry) -> Result<()> {
            self.log.lock().unwrap().push(('s', e.id));
            tokio::task::yield_now().await;
            self.log.lock().unwrap().push(('f', e.id));
            if self.fail.contains(&e.id) {
                return Err(Error::Internal(format!("entry {} failed", e.id)));
            }
            Ok(())
        }
    }

    fn fakes(n: usize, fail: &[u32]) -> (Vec<Fake>, Log) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let conns = (0..n)
            .map(|_| Fake {
                log: log.clone(),
                fail: fail.to_vec(),
            })
            .collect();
        (conns, log)
    }

    #[tokio::test]
    async fn entries_start_only_after_their_dependencies_finish() {
        // 1 <- 2 <- 4, 1 <- 3, 5 alone; a dependency outside the batch (99)
        // is already done.
        let entries = vec![
            entry(1, &[]),
            entry(2, &[1]),
            entry(3, &[1, 99]),
            entry(4, &[2, 3]),
            entry(5, &[]),
        ];
        let (conns, log) = fakes(3, &[]);
        let back = run_entries(
            conns,
            entries.clone(),
            &Silent,
            "post-data",
            &Failed::default(),
        )
        .await
        .unwrap();
        assert_eq!(back.len(), 3, "every connection comes back");
        let log = log.lock().unwrap();
        let at = |k: char, id: u32| log.iter().position(|&x| x == (k, id)).unwrap();
        for e in &entries {
            for d in e.deps.iter().filter(|d| **d != 99) {
                assert!(
                    at('f', *d) < at('s', e.id),
                    "{} started before {d} finished: {log:?}",
                    e.id
                );
            }
        }
        assert_eq!(log.len(), 10, "each entry ran once: {log:?}");
    }

    #[tokio::test]
    async fn a_failure_stops_new_entries_and_is_returned() {
        let entries = vec![entry(1, &[]), entry(2, &[1]), entry(3, &[2])];
        let (conns, log) = fakes(1, &[1]);
        let e = run_entries(conns, entries, &Silent, "post-data", &Failed::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("entry 1 failed"), "{e}");
        assert_eq!(*log.lock().unwrap(), [('s', 1), ('f', 1)]);
    }

    #[tokio::test]
    async fn going_on_past_failures_runs_everything_and_records_each() {
        let entries = vec![entry(1, &[]), entry(2, &[1]), entry(3, &[]), entry(4, &[3])];
        let (conns, log) = fakes(2, &[1, 3]);
        let failed = Failed::new(super::super::onerror::OnError::Continue);
        let back = run_entries(conns, entries, &Silent, "post-data", &failed)
            .await
            .unwrap();
        assert_eq!(back.len(), 2);
        let started: Vec<u32> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k == 's')
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(started.len(), 4, "every entry ran: {started:?}");
        let list = failed.list();
        assert_eq!(list.len(), 2, "{list:?}");
        assert!(list.iter().any(|f| f.contains("entry 1 failed")));
        assert!(list.iter().any(|f| f.contains("entry 3 failed")));
    }

    /// Task 0 finishes only once task 2 has run; 2 waits for 1 alone.
    struct Gated {
        gate: Arc<tokio::sync::Notify>,
    }

    #[async_trait::async_trait]
    impl Runner<TocEntry> for Gated {
        async fn run(&self, e: &TocEntry) -> Result<()> {
            match e.id {
                0 => self.gate.notified().await,
                2 => self.gate.notify_one(),
                _ => {}
            }
            Ok(())
        }
    }

    /// A task runs as soon as its own dependencies are done, while an
    /// unrelated task listed before it is still running (a table's index
    /// builds while another table loads).
    #[tokio::test]
    async fn ready_tasks_run_beside_a_long_one() {
        let gate = Arc::new(tokio::sync::Notify::new());
        let conns = (0..2)
            .map(|_| Gated { gate: gate.clone() })
            .collect::<Vec<_>>();
        let tasks = vec![
            Task {
                job: entry(0, &[]),
                deps: vec![],
            },
            Task {
                job: entry(1, &[]),
                deps: vec![],
            },
            Task {
                job: entry(2, &[]),
                deps: vec![1],
            },
        ];
        let failed = Failed::default();
        let run = run_tasks(conns, tasks, &Silent, "post-data", &failed);
        let back = tokio::time::timeout(std::time::Duration::from_secs(30), run)
            .await
            .expect("task 2 ran while task 0 was still running")
            .unwrap();
        assert_eq!(back.len(), 2);
    }

    #[tokio::test]
    async fn a_cycle_is_an_error_not_a_hang() {
        let entries = vec![entry(1, &[2]), entry(2, &[1])];
        let (conns, _) = fakes(2, &[]);
        let e = run_entries(conns, entries, &Silent, "post-data", &Failed::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("dependency cycle"), "{e}");
    }

    #[tokio::test]
    async fn deadlock_victims_are_retried_a_bounded_number_of_times() {
        // Two deadlocks, then success.
        let calls = Mutex::new(0);
        let r = retrying_deadlocks(
            || {
                let n = {
                    let mut c = calls.lock().unwrap();
                    *c += 1;
                    *c
                };
                async move {
                    if n <= 2 {
                        Err("deadlock")
                    } else {
                        Ok(())
                    }
                }
            },
            |e: &&str| *e == "deadlock",
            "x",
        )
        .await;
        assert_eq!(r, Ok(()));
        assert_eq!(*calls.lock().unwrap(), 3);
        // Deadlocks forever: given up after MAX_RETRIES retries.
        let calls = Mutex::new(0);
        let r = retrying_deadlocks(
            || {
                *calls.lock().unwrap() += 1;
                async { Err("deadlock") }
            },
            |e: &&str| *e == "deadlock",
            "x",
        )
        .await;
        assert_eq!(r, Err("deadlock"));
        assert_eq!(*calls.lock().unwrap(), MAX_RETRIES + 1);
        // Any other error is not retried.
        let calls = Mutex::new(0);
        let r = retrying_deadlocks(
            || {
                *calls.lock().unwrap() += 1;
                async { Err("syntax error") }
            },
            |e: &&str| *e == "deadlock",
            "x",
        )
        .await;
        assert_eq!(r, Err("syntax error"));
        assert_eq!(*calls.lock().unwrap(), 1);
    }
}
