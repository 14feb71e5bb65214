//! The lease a running backup holds on its prefix, so `prune --incomplete`
//! never removes a backup that is still being written.
//!
//! At start the backup writes `backups/<id>/lease` (create-only) with an
//! expiry, and rewrites it every `ttl / 4` while it runs. `prune
//! --incomplete` skips a prefix whose lease has not expired (allowing
//! [`CLOCK_SKEW`] between the two machines' clocks). If the lease cannot be
//! renewed before it would expire, [`Lease::lost`] fires and the backup
//! fails rather than race a prune. The lease is deleted when the backup ends.
//!
//! Holds are the same kind of object under `backups/<id>/holds/`: a restore
//! or drill holds the complete backup it reads, and retention never removes
//! a backup with a live hold ([`live_holds`]).

use super::Repo;
use crate::error::{Error, Result};
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

pub const LEASE_NAME: &str = "lease";
/// Default lease lifetime.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Clock difference tolerated between a backup's host and a pruner's.
pub const CLOCK_SKEW: Duration = Duration::from_secs(120);

/// Where restores and drills hold a backup while they read it:
/// `backups/<id>/holds/<holder>`.
pub fn holds_prefix(backup_id: &str) -> Path {
    Path::from(format!("backups/{backup_id}/holds"))
}

fn hold_path(backup_id: &str, holder: &str) -> Path {
    Path::from(format!("backups/{backup_id}/holds/{holder}"))
}

pub fn lease_path(backup_id: &str) -> Path {
    Path::from(format!("backups/{backup_id}/{LEASE_NAME}"))
}

/// What a lease object holds (JSON).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeaseInfo {
    pub backup_id: String,
    pub host: String,
    pub pid: u32,
    /// RFC 3339, for people.
    pub started_at: String,
    pub renewed_at: String,
    pub expires_at: String,
    /// Expiry in Unix seconds: what [`LeaseInfo::is_fresh`] reads.
    pub expires_unix: i64,
}

use crate::units::rfc3339;

impl LeaseInfo {
    /// Whether the lease still protects its backup at `now` (the pruner's clock).
    pub fn is_fresh(&self, now: OffsetDateTime) -> bool {
        now.unix_timestamp() < self.expires_unix + CLOCK_SKEW.as_secs() as i64
    }

    fn set_times(&mut self, now: OffsetDateTime, ttl: Duration) -> Result<()> {
        self.renewed_at = rfc3339(now)?;
        self.expires_at = rfc3339(now + ttl)?;
        self.expires_unix = (now + ttl).unix_timestamp();
        Ok(())
    }

    /// Whether the process that holds this lease is known to be gone: it
    /// ran on this host (same host name) and no process has its PID any
    /// more (after `kill -9` or a power cut). A lease from another host,
    /// or whose PID is in use, is never judged stale this way (restic's
    /// lock check works the same).
    pub fn holder_is_gone(&self) -> bool {
        self.host == host_name() && !process_exists(self.pid)
    }

    fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::Internal(format!("lease json: {e}")))
    }
}

/// Whether a process with this PID exists on this host.
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // Signal 0 checks existence and permission only; EPERM means the
    // process exists but belongs to someone else.
    // SAFETY: kill(2) with signal 0 sends nothing and touches no memory.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().chars().take(64).collect())
        .unwrap_or_else(|| "unknown".into())
}

/// Reads a backup's lease: `Ok(None)` when there is none, `Err` when the
/// store fails; an unreadable lease is reported as a format error.
pub async fn read(repo: &Repo, backup_id: &str) -> Result<Option<LeaseInfo>> {
    let path = lease_path(backup_id);
    let Some(bytes) = repo.get_opt(&path).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::format(path.to_string(), format!("unreadable lease: {e}")))
}

/// The live holds on a backup (restores and drills reading it) at `now`:
/// those not expired and whose holder is not known to be gone.
pub async fn live_holds(
    repo: &Repo,
    backup_id: &str,
    now: OffsetDateTime,
) -> Result<Vec<LeaseInfo>> {
    let mut out = Vec::new();
    for meta in repo.list_meta(&holds_prefix(backup_id)).await? {
        let Some(bytes) = repo.get_opt(&meta.location).await? else {
            continue;
        };
        // An unreadable hold still holds: better a kept backup than a
        // restore losing its data.
        let info: LeaseInfo = serde_json::from_slice(&bytes).unwrap_or(LeaseInfo {
            backup_id: backup_id.to_string(),
            host: "?".into(),
            pid: 0,
            started_at: String::new(),
            renewed_at: String::new(),
            expires_at: "unknown".into(),
            expires_unix: i64::MAX,
        });
        if info.is_fresh(now) && !info.holder_is_gone() {
            out.push(info);
        }
    }
    Ok(out)
}

/// A held lease; renewal runs in the background until [`Lease::release`].
pub struct Lease {
    repo: Repo,
    backup_id: String,
    path: Path,
    stop: CancellationToken,
    lost: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Lease {
    /// Writes the lease of a new backup (create-only: an id in use fails)
    /// and starts renewing it.
    pub async fn acquire(repo: &Repo, backup_id: &str, ttl: Duration) -> Result<Lease> {
        Lease::write(repo, backup_id, lease_path(backup_id), ttl)
            .await
            .map_err(|e| match e {
                Error::Store {
                    source: object_store::Error::AlreadyExists { .. },
                    ..
                }
                | Error::Store {
                    source: object_store::Error::Precondition { .. },
                    ..
                } => Error::Busy(format!(
                    "backup id {backup_id} is already in use in {} (another backup holds its lease)",
                    repo.display()
                )),
                other => other,
            })
    }

    /// Holds a complete backup while a restore or drill (`purpose`) reads
    /// it: retention never removes a backup with a live hold. Released (or
    /// left to expire) like a backup's lease.
    pub async fn hold(repo: &Repo, backup_id: &str, purpose: &str, ttl: Duration) -> Result<Lease> {
        let suffix: u32 = rand::random();
        let holder = format!("{purpose}-{}-{suffix:08x}", std::process::id());
        Lease::write(repo, backup_id, hold_path(backup_id, &holder), ttl).await
    }

    /// Runs `work` while holding backup `backup_id` for `purpose`. A
    /// repository the caller may not write to (read-only credentials)
    /// still lets the work run, unheld, with a warning.
    pub async fn while_held<T>(
        repo: &Repo,
        backup_id: &str,
        purpose: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let hold = match Lease::hold(repo, backup_id, purpose, DEFAULT_TTL).await {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(backup = %backup_id, error = %e, "could not hold the backup; retention could remove it during this {purpose}");
                None
            }
        };
        let r = work.await;
        if let Some(h) = hold {
            h.release().await;
        }
        r
    }

    async fn write(repo: &Repo, backup_id: &str, path: Path, ttl: Duration) -> Result<Lease> {
        let ttl = ttl.max(Duration::from_secs(4));
        let now = OffsetDateTime::now_utc();
        let mut info = LeaseInfo {
            backup_id: backup_id.to_string(),
            host: host_name(),
            pid: std::process::id(),
            started_at: rfc3339(now)?,
            renewed_at: String::new(),
            expires_at: String::new(),
            expires_unix: 0,
        };
        info.set_times(now, ttl)?;
        repo.put_new(&path, info.encode()?).await?;
        let stop = CancellationToken::new();
        let lost = CancellationToken::new();
        let task = tokio::spawn(renew(
            repo.clone(),
            path.clone(),
            info,
            ttl,
            stop.clone(),
            lost.clone(),
        ));
        Ok(Lease {
            repo: repo.clone(),
            backup_id: backup_id.to_string(),
            path,
            stop,
            lost,
            task: Some(task),
        })
    }

    /// Resolves if the lease could not be renewed in time: the backup must
    /// stop, since a prune may now treat its prefix as abandoned.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    /// Stops renewing and deletes the lease (best effort: a leftover lease
    /// expires on its own).
    pub async fn release(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Err(e) = self.repo.store().delete(&self.path).await {
            if !matches!(e, object_store::Error::NotFound { .. }) {
                tracing::warn!(backup = %self.backup_id, error = %crate::redact::scrub_urls(&e.to_string()), "could not delete the backup's lease; it expires on its own");
            }
        }
    }
}

impl Lease {
    /// Stops renewing and leaves the lease object to expire (a failed
    /// backup deletes it with the rest of its prefix).
    pub async fn abandon(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

use object_store::ObjectStoreExt;

async fn renew(
    repo: Repo,
    path: Path,
    mut info: LeaseInfo,
    ttl: Duration,
    stop: CancellationToken,
    lost: CancellationToken,
) {
    let every = ttl / 4;
    let mut last_ok = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let bytes = match info
            .set_times(OffsetDateTime::now_utc(), ttl)
            .and_then(|()| info.encode())
        {
            Ok(b) => b,
            Err(_) => continue,
        };
        let put = tokio::select! {
            _ = stop.cancelled() => return,
            r = repo.put(&path, bytes) => r,
        };
        match put {
            Ok(()) => last_ok = tokio::time::Instant::now(),
            Err(e) => {
                tracing::warn!(backup = %info.backup_id, error = %e, "could not renew the backup's lease");
                // Give up one renewal period before the old lease expires.
                if last_ok.elapsed() + every >= ttl {
                    lost.cancel();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn lease_is_written_renewed_and_released() {
        let repo = Repo::from_store(Arc::new(InMemory::new()), "mem");
        let id = "20260101T000000Z-0001";
        let lease = Lease::acquire(&repo, id, Duration::from_secs(40))
            .await
            .unwrap();
        let first = read(&repo, id).await.unwrap().unwrap();
        assert!(first.is_fresh(OffsetDateTime::now_utc()));
        assert!(Lease::acquire(&repo, id, Duration::from_secs(40))
            .await
            .is_err());
        tokio::time::sleep(Duration::from_secs(11)).await;
        let renewed = read(&repo, id).await.unwrap().unwrap();
        assert!(renewed.expires_unix >= first.expires_unix);
        lease.release().await;
        assert!(read(&repo, id).await.unwrap().is_none());
    }

    /// A store whose puts fail once `broken` is set.
    #[derive(Debug)]
    struct Breakable {
        inner: Arc<dyn object_store::ObjectStore>,
        broken: Arc<std::sync::atomic::AtomicBool>,
    }

    impl std::fmt::Display for Breakable {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Breakable")
        }
    }

    crate::delegate_object_store!(Breakable, {
        async fn put_opts(
            &self,
            location: &Path,
            payload: object_store::PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(object_store::Error::Generic {
                    store: "Breakable",
                    source: "connection refused".into(),
                });
            }
            self.inner.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
    });

    #[tokio::test(start_paused = true)]
    async fn a_lease_that_cannot_be_renewed_is_lost_before_it_expires() {
        let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let store = Breakable {
            inner: Arc::new(InMemory::new()),
            broken: broken.clone(),
        };
        let repo = Repo::from_store(Arc::new(store), "breakable");
        let ttl = Duration::from_secs(40);
        let lease = Lease::acquire(&repo, "20260101T000000Z-0002", ttl)
            .await
            .unwrap();
        broken.store(true, std::sync::atomic::Ordering::SeqCst);
        let t0 = tokio::time::Instant::now();
        tokio::time::timeout(ttl, lease.lost())
            .await
            .expect("lost fires before the lease expires");
        // Renewals every 10 s: the third failure (at 30 s) is the last
        // moment that still leaves a renewal period before expiry.
        assert!(
            t0.elapsed() >= Duration::from_secs(20),
            "{:?}",
            t0.elapsed()
        );
        assert!(t0.elapsed() < ttl);
    }

    #[test]
    fn freshness_allows_for_clock_skew() {
        let now = OffsetDateTime::now_utc();
        let mut l = LeaseInfo {
            backup_id: "x".into(),
            host: "h".into(),
            pid: 1,
            started_at: rfc3339(now).unwrap(),
            renewed_at: String::new(),
            expires_at: String::new(),
            expires_unix: 0,
        };
        l.set_times(now, Duration::ZERO).unwrap();
        assert!(l.is_fresh(now + Duration::from_secs(60)));
        assert!(!l.is_fresh(now + CLOCK_SKEW + Duration::from_secs(1)));
    }
}
