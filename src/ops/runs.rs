//! The run history: one small record per run of backup, copy, verify,
//! prune or drill, written into the job's repository (`runs/`,
//! create-only), whatever ran it (a one-shot command, cron, `serve`). The
//! time, action and outcome are in the object's name, so `status` finds the
//! newest success and failure of each action from one listing and reads
//! only those records. Errors are stored redacted.

use crate::archive::layout;
use crate::error::{Error, Result};
use crate::store::Repo;
use crate::units::rfc3339;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Instant;
use time::OffsetDateTime;

/// What ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Backup,
    Copy,
    Verify,
    Prune,
    Drill,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Backup => "backup",
            Action::Copy => "copy",
            Action::Verify => "verify",
            Action::Prune => "prune",
            Action::Drill => "drill",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        [
            Action::Backup,
            Action::Copy,
            Action::Verify,
            Action::Prune,
            Action::Drill,
        ]
        .into_iter()
        .find(|a| a.name() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// What a run produced, for its record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// Bytes stored (backup), copied (copy) or checked (verify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// A drill's measured restore time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_ms: Option<u64>,
}

/// One run, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub action: Action,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// `postgres` or `redis`.
    pub kind: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    #[serde(flatten)]
    pub facts: RunFacts,
    /// The error of a failed run, redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub host: String,
    pub pgkeep_version: String,
}

/// A run record's name in a listing: when, what, how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunEntry {
    pub path: Path,
    pub finished: OffsetDateTime,
    pub action: Action,
    pub outcome: Outcome,
}

fn compact(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn record_path(finished: OffsetDateTime, action: Action, outcome: Outcome) -> Path {
    let suffix: u32 = rand::random();
    Path::from(format!(
        "runs/{}-{}-{}-{suffix:08x}.json",
        compact(finished),
        action.name(),
        outcome.name()
    ))
}

/// Parses a record's object name (`runs/20261207T030000Z-backup-success-1a2b3c4d.json`).
pub fn parse_entry(path: &Path) -> Option<RunEntry> {
    let name = path.filename()?.strip_suffix(".json")?;
    let mut parts = name.splitn(4, '-');
    let (ts, action, outcome) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next()?;
    let finished = crate::archive::layout::id_time(&format!("{ts}-0000"))?;
    let outcome = match outcome {
        "success" => Outcome::Success,
        "failure" => Outcome::Failure,
        _ => return None,
    };
    Some(RunEntry {
        path: path.clone(),
        finished,
        action: Action::parse(action)?,
        outcome,
    })
}

/// Writes a run record (create-only).
pub async fn write(repo: &Repo, record: &RunRecord) -> Result<()> {
    let finished = OffsetDateTime::parse(
        &record.finished_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|e| Error::Internal(format!("run record time: {e}")))?;
    let bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::Internal(format!("run record json: {e}")))?;
    repo.put_new(&record_path(finished, record.action, record.outcome), bytes)
        .await
}

/// Every run record in the repository, oldest first (one listing).
pub async fn list(repo: &Repo) -> Result<Vec<RunEntry>> {
    let mut out: Vec<RunEntry> = repo
        .list_meta(&layout::runs_prefix())
        .await?
        .iter()
        .filter_map(|m| parse_entry(&m.location))
        .collect();
    out.sort_by(|a, b| {
        a.finished
            .cmp(&b.finished)
            .then(a.path.as_ref().cmp(b.path.as_ref()))
    });
    Ok(out)
}

/// Reads one record (an unreadable record is `None`).
pub async fn read(repo: &Repo, entry: &RunEntry) -> Result<Option<RunRecord>> {
    Ok(repo
        .get_opt(&entry.path)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// How long `prune` keeps run records.
pub const KEEP_RECORDS: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

/// Removes run records that finished before `before`, except the newest
/// of each action and outcome (a quarterly drill stays known); returns how
/// many.
pub async fn expire(repo: &Repo, before: OffsetDateTime) -> Result<usize> {
    let all = list(repo).await?;
    let mut seen = std::collections::HashSet::new();
    let keep: std::collections::HashSet<Path> = all
        .iter()
        .rev()
        .filter(|e| seen.insert((e.action, e.outcome)))
        .map(|e| e.path.clone())
        .collect();
    let old: Vec<RunEntry> = all
        .into_iter()
        .filter(|e| e.finished < before && !keep.contains(&e.path))
        .collect();
    let n = old.len();
    repo.delete_paths(
        old.into_iter().map(|e| e.path).collect(),
        "expired run records",
    )
    .await?;
    Ok(n)
}

/// Who is running: a job and its kind.
#[derive(Clone, Debug)]
pub struct RunContext {
    pub action: Action,
    pub job: Option<String>,
    pub kind: &'static str,
}

/// A run being timed: start it, then [`RunClock::finish`] with its outcome.
pub struct RunClock {
    ctx: RunContext,
    started: OffsetDateTime,
    t0: Instant,
}

impl RunClock {
    pub fn start(ctx: &RunContext) -> RunClock {
        RunClock {
            ctx: ctx.clone(),
            started: OffsetDateTime::now_utc(),
            t0: Instant::now(),
        }
    }

    /// Records the run in `repo`: success with `facts`, or failure with
    /// the error (redacted). A record that cannot be written is a warning:
    /// the run's own result stands.
    pub async fn finish(self, repo: &Repo, outcome: std::result::Result<RunFacts, &Error>) {
        let finished = OffsetDateTime::now_utc();
        let (outcome, facts, error) = match outcome {
            Ok(facts) => (Outcome::Success, facts, None),
            Err(e) => (
                Outcome::Failure,
                RunFacts::default(),
                Some(crate::redact::redact(&e.to_string())),
            ),
        };
        let record = (|| -> Result<RunRecord> {
            Ok(RunRecord {
                action: self.ctx.action,
                outcome,
                job: self.ctx.job.clone(),
                kind: self.ctx.kind.to_string(),
                started_at: rfc3339(self.started)?,
                finished_at: rfc3339(finished)?,
                duration_ms: self.t0.elapsed().as_millis() as u64,
                facts,
                error,
                host: crate::store::lease::host_name(),
                pgkeep_version: env!("CARGO_PKG_VERSION").to_string(),
            })
        })();
        let written = match record {
            Ok(r) => write(repo, &r).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::warn!(action = self.ctx.action.name(), error = %e, "could not write the run record");
        }
    }
}

/// Runs `f` and records it in `repo` (success with the facts `facts` finds
/// in its result, or failure with the error).
pub async fn recorded<T, Fut>(
    repo: &Repo,
    ctx: &RunContext,
    f: Fut,
    facts: impl FnOnce(&T) -> RunFacts,
) -> Result<T>
where
    Fut: Future<Output = Result<T>>,
{
    let clock = RunClock::start(ctx);
    let result = f.await;
    clock.finish(repo, result.as_ref().map(facts)).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use std::sync::Arc;

    #[tokio::test]
    async fn runs_are_recorded_listed_by_name_and_expired() {
        let repo = Repo::from_store(Arc::new(InMemory::new()), "memory");
        let ctx = RunContext {
            action: Action::Backup,
            job: Some("app".into()),
            kind: "postgres",
        };
        let ok: Result<u64> = recorded(&repo, &ctx, async { Ok(42) }, |n| RunFacts {
            bytes: Some(*n),
            ..RunFacts::default()
        })
        .await;
        assert_eq!(ok.unwrap(), 42);
        let failed: Result<u64> = recorded(
            &repo,
            &ctx,
            async {
                Err(Error::Config(
                    "cannot connect to postgres://u:hunter2@h/db".into(),
                ))
            },
            |_| RunFacts::default(),
        )
        .await;
        assert!(failed.is_err());
        let runs = list(&repo).await.unwrap();
        assert_eq!(runs.len(), 2);
        let outcomes: Vec<Outcome> = runs.iter().map(|r| r.outcome).collect();
        assert!(outcomes.contains(&Outcome::Success) && outcomes.contains(&Outcome::Failure));
        let failure = runs.iter().find(|r| r.outcome == Outcome::Failure).unwrap();
        let rec = read(&repo, failure).await.unwrap().unwrap();
        assert_eq!(rec.job.as_deref(), Some("app"));
        let err = rec.error.unwrap();
        assert!(!err.contains("hunter2"), "{err}");
        let success = runs.iter().find(|r| r.outcome == Outcome::Success).unwrap();
        assert_eq!(
            read(&repo, success).await.unwrap().unwrap().facts.bytes,
            Some(42)
        );
        // Records older than a bound go, except the newest of each action
        // and outcome; younger ones stay.
        let ok2: Result<u64> =
            recorded(&repo, &ctx, async { Ok(7) }, |_| RunFacts::default()).await;
        assert!(ok2.is_ok());
        let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
        assert_eq!(
            expire(&repo, OffsetDateTime::now_utc() - time::Duration::hours(1))
                .await
                .unwrap(),
            0
        );
        assert_eq!(expire(&repo, later).await.unwrap(), 1);
        assert_eq!(list(&repo).await.unwrap().len(), 2);
        assert_eq!(parse_entry(&Path::from("runs/garbage.json")), None);
    }
}
