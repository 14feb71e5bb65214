//! `verify`: proves a backup readable without a database. The full check
//! streams every frame through the same reader restore uses (stored-bytes
//! hash, AEAD tag, decompression, per-stream plaintext digest, frame and row
//! counts against the manifest), several streams at once within the memory
//! budget. The quick check opens the manifest and compares every pack's
//! presence and size. Each run's outcome is recorded beside the manifest so
//! `list` shows when a backup was last verified.

use crate::archive::reader::{read_manifest, read_stream};
use crate::archive::{layout, Manifest};
use crate::error::{Error, Result};
use crate::keys::Unlock;
use crate::pipeline::{Budget, FrameBuffers};
use crate::store::Repo;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct VerifyOptions {
    pub jobs: usize,
    pub memory: usize,
    /// Presence and sizes only; no data is downloaded.
    pub quick: bool,
    pub unlock: Arc<Unlock>,
}

impl VerifyOptions {
    pub fn new(unlock: Arc<Unlock>) -> VerifyOptions {
        VerifyOptions {
            jobs: 2,
            memory: 64 << 20,
            quick: false,
            unlock,
        }
    }
}

/// One thing that did not check out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyFailure {
    /// The stream (table or slice) it belongs to, when it is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The full error: names the object and the frame.
    pub error: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyReport {
    pub id: String,
    pub ok: bool,
    /// "full" or "quick".
    pub mode: String,
    /// RFC 3339 UTC, when the run finished.
    pub verified_at: String,
    pub duration_ms: u64,
    pub encrypted: bool,
    pub streams: u64,
    pub frames: u64,
    pub rows: u64,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    pub failures: Vec<VerifyFailure>,
}

/// Verifies one backup. Damage is reported in the report (not as an
/// error); an error means the check itself could not run (no key, no
/// repository) or the run was interrupted.
pub async fn verify_backup(
    repo: &Repo,
    id: &str,
    opts: &VerifyOptions,
    cancel: CancellationToken,
) -> Result<VerifyReport> {
    let t0 = Instant::now();
    let mut report = VerifyReport {
        id: id.to_string(),
        ok: false,
        mode: if opts.quick { "quick" } else { "full" }.into(),
        verified_at: String::new(),
        duration_ms: 0,
        encrypted: false,
        streams: 0,
        frames: 0,
        rows: 0,
        plain_bytes: 0,
        stored_bytes: 0,
        failures: Vec::new(),
    };
    match read_manifest(repo, id, &opts.unlock).await {
        Ok(m) => {
            let m = Arc::new(m);
            report.encrypted = m.key.is_some();
            report.streams = m.body.streams.len() as u64;
            report.stored_bytes = m.header.stored_bytes;
            if opts.quick {
                check_presence(repo, &m, &mut report).await?;
            } else {
                check_streams(repo, m, opts, &mut report, cancel).await?;
            }
        }
        Err(e) if !is_damage(&e) => return Err(e),
        Err(e) => report.failures.push(VerifyFailure {
            stream: None,
            table: None,
            error: e.to_string(),
        }),
    }
    report.ok = report.failures.is_empty();
    report.duration_ms = t0.elapsed().as_millis() as u64;
    report.verified_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    record(repo, &report).await;
    Ok(report)
}

async fn check_presence(repo: &Repo, m: &Manifest, report: &mut VerifyReport) -> Result<()> {
    let listed = repo.list_all(&layout::backup_prefix(&m.header.id)).await?;
    for p in &m.body.packs {
        let path = layout::pack_path(&m.header.id, &p.name);
        let error = match listed.iter().find(|(l, _)| *l == path) {
            None => Some(format!("{path}: missing")),
            Some((_, size)) if *size != p.size => Some(format!(
                "{path}: {size} bytes stored, manifest says {}",
                p.size
            )),
            Some(_) => None,
        };
        if let Some(error) = error {
            report.failures.push(VerifyFailure {
                stream: None,
                table: None,
                error,
            });
        }
    }
    report.frames = m.body.streams.iter().map(|s| s.frames.len() as u64).sum();
    report.rows = m.body.streams.iter().map(|s| s.rows).sum();
    report.plain_bytes = m.body.streams.iter().map(|s| s.plain_bytes).sum();
    Ok(())
}

async fn check_streams(
    repo: &Repo,
    m: Arc<Manifest>,
    opts: &VerifyOptions,
    report: &mut VerifyReport,
    cancel: CancellationToken,
) -> Result<()> {
    let budget = Budget::new(opts.memory, opts.jobs, None)?;
    let (read_ahead, max_read) = budget.read_plan(m.max_frame_plain());
    let bufs = FrameBuffers::new(m.max_frame_plain(), budget.total);
    let labels: Vec<String> = m
        .body
        .streams
        .iter()
        .map(|s| {
            m.body
                .toc
                .iter()
                .find(|e| e.id == s.toc_id)
                .and_then(|e| e.data.as_ref())
                .map(|d| format!("{}.{}", d.schema, d.name))
                .unwrap_or_else(|| format!("toc entry {}", s.toc_id))
        })
        .collect();
    let runs = futures::stream::iter(0..m.body.streams.len())
        .map(|i| {
            let frames = read_stream(
                repo.clone(),
                m.clone(),
                i,
                read_ahead,
                max_read,
                bufs.clone(),
            );
            async move {
                let mut n = (0u64, 0u64);
                let r = frames
                    .try_for_each(|plain| {
                        n.0 += 1;
                        n.1 += plain.len() as u64;
                        futures::future::ready(Ok(()))
                    })
                    .await;
                (i, n, r)
            }
        })
        .buffer_unordered(opts.jobs.max(1));
    futures::pin_mut!(runs);
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return Err(Error::Interrupted("verify cancelled".into())),
            n = runs.next() => n,
        };
        let Some((i, (frames, bytes), r)) = next else {
            break;
        };
        let s = &m.body.streams[i];
        report.frames += frames;
        report.plain_bytes += bytes;
        match r {
            Ok(()) => report.rows += s.rows,
            Err(e) if !is_damage(&e) => return Err(e),
            Err(e) => report.failures.push(VerifyFailure {
                stream: Some(s.id),
                table: labels.get(i).cloned(),
                error: e.to_string(),
            }),
        }
    }
    report.failures.sort_by_key(|f| f.stream);
    Ok(())
}

/// Whether an error is damage to the backup (reported) rather than a reason
/// the check could not run (returned): a missing object is damage, an
/// unreachable store is not.
fn is_damage(e: &Error) -> bool {
    match e {
        Error::Store { source, .. } => matches!(source, object_store::Error::NotFound { .. }),
        Error::Integrity { .. }
        | Error::Format { .. }
        | Error::UnsupportedVersion { .. }
        | Error::Verification(_) => true,
        _ => false,
    }
}

/// Writes the outcome beside the manifest; a failure to record is logged,
/// not fatal (the check itself succeeded or failed on its own).
async fn record(repo: &Repo, report: &VerifyReport) {
    let summary = LastVerified {
        verified_at: report.verified_at.clone(),
        ok: report.ok,
        mode: report.mode.clone(),
        failures: report.failures.len() as u64,
    };
    let path = layout::verified_path(&report.id);
    let r = match serde_json::to_vec_pretty(&summary) {
        Ok(bytes) => repo.put(&path, bytes).await,
        Err(e) => Err(Error::Internal(e.to_string())),
    };
    if let Err(e) = r {
        tracing::warn!(backup = %report.id, error = %e, "could not record the verification result");
    }
}

/// What `list` shows of the latest verification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastVerified {
    pub verified_at: String,
    pub ok: bool,
    pub mode: String,
    pub failures: u64,
}

/// The latest recorded verification of a backup, if any (unreadable records
/// count as none).
pub async fn last_verified(repo: &Repo, id: &str) -> Result<Option<LastVerified>> {
    let path = layout::verified_path(id);
    Ok(repo
        .get_opt(&path)
        .await?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}
