//! `prune --incomplete`: removes what failed or interrupted backups left
//! behind (backup prefixes without a manifest), never a backup that is
//! still running (one whose lease has not expired, see `store::lease`).
//!
//! Multipart uploads that could not be aborted (the store was unreachable
//! when the backup failed) are not objects yet and are invisible to listing
//! through object_store: a bucket lifecycle rule
//! (`AbortIncompleteMultipartUpload`) removes them (docs/storage.md).

use crate::archive::layout;
use crate::error::Result;
use crate::store::lease::{self, CLOCK_SKEW};
use crate::store::Repo;
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;

#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Report only; delete nothing.
    pub dry_run: bool,
    /// Clock difference tolerated between backup hosts and this one: a
    /// lease counts as live until `expires + grace`, and a prefix without
    /// a lease or manifest is left alone while its newest object is younger
    /// than `grace`.
    pub grace: Duration,
}

impl Default for PruneOptions {
    fn default() -> PruneOptions {
        PruneOptions {
            dry_run: false,
            grace: CLOCK_SKEW,
        }
    }
}

/// A prefix removed (or, on a dry run, to be removed).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Removed {
    pub id: String,
    pub objects: u64,
    pub bytes: u64,
    /// Why a prefix that still had a live lease was removed (its holder
    /// is gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An incomplete prefix left alone, and why.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub id: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PruneReport {
    pub repository: String,
    pub dry_run: bool,
    /// Complete backups (with a manifest): never touched.
    pub complete: usize,
    pub removed: Vec<Removed>,
    pub skipped: Vec<Skipped>,
}

/// Finds incomplete backups and removes those no backup is still writing.
pub async fn prune_incomplete(repo: &Repo, opts: &PruneOptions) -> Result<PruneReport> {
    let now = OffsetDateTime::now_utc();
    let grace = time::Duration::try_from(opts.grace).unwrap_or(time::Duration::MAX);
    let mut report = PruneReport {
        repository: repo.display().to_string(),
        dry_run: opts.dry_run,
        complete: 0,
        removed: Vec::new(),
        skipped: Vec::new(),
    };
    let mut dirs = repo.list_dirs(&layout::backups_prefix()).await?;
    dirs.sort();
    for id in dirs {
        if !layout::is_backup_id(&id) {
            report.skipped.push(Skipped {
                id,
                reason: "not a backup id: not pgkeep's, left alone".into(),
            });
            continue;
        }
        if repo.exists(&layout::manifest_path(&id)).await? {
            report.complete += 1;
            continue;
        }
        let lease = match lease::read(repo, &id).await {
            Ok(l) => l,
            Err(crate::Error::Format { message, .. }) => {
                report.skipped.push(Skipped {
                    id,
                    reason: format!("{message}; remove it by hand if no backup is running"),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut note = None;
        if let Some(l) = &lease {
            let live = now.unix_timestamp() < l.expires_unix + grace.whole_seconds();
            if live && l.holder_is_gone() {
                note = Some(format!(
                    "stale lease: its holder (pid {} on this host, {}) is gone",
                    l.pid, l.host
                ));
            } else if live {
                report.skipped.push(Skipped {
                    id,
                    reason: format!(
                        "running: lease held by {} (pid {}) until {}",
                        l.host, l.pid, l.expires_at
                    ),
                });
                continue;
            }
        }
        let objects = repo.list_meta(&layout::backup_prefix(&id)).await?;
        if lease.is_none() {
            if let Some(newest) = objects.iter().map(|m| m.last_modified.timestamp()).max() {
                let age = time::Duration::seconds((now.unix_timestamp() - newest).max(0));
                if age < grace {
                    report.skipped.push(Skipped {
                        id,
                        reason: format!(
                            "no lease, but written {}s ago: left for a later prune",
                            age.whole_seconds()
                        ),
                    });
                    continue;
                }
            }
        }
        let bytes = objects.iter().map(|m| m.size).sum();
        let count = objects.len() as u64;
        if !opts.dry_run {
            repo.delete_prefix(&layout::backup_prefix(&id)).await?;
            tracing::info!(backup = %id, objects = count, bytes, "removed incomplete backup");
        }
        report.removed.push(Removed {
            id,
            objects: count,
            bytes,
            note,
        });
    }
    Ok(report)
}
