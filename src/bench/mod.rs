//! `pgkeep bench`: restore throughput as a number. Restores one backup
//! into a fresh scratch database at each job count and reports wall time,
//! MB/s, rows/s, the phase breakdown, the client's peak RSS and a
//! projection for a database N times larger; the scratch databases are
//! dropped. From a live database it first backs up into a temporary
//! repository at each job count and sets the backup beside a raw parallel
//! `COPY ... TO STDOUT` of the same tables (the floor).

mod floor;
pub mod rss;

use crate::archive::index::{read_manifest, resolve_backup_id};
use crate::archive::Manifest;
use crate::backup::{backup, BackupOptions};
use crate::config::ConnSettings;
use crate::error::{Error, Result};
use crate::keys::Unlock;
use crate::progress::Progress;
use crate::restore::scratch::Scratch;
use crate::restore::{restore_manifest, RestoreOptions};
use crate::store::lease::{Lease, DEFAULT_TTL};
use crate::store::Repo;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Makes the progress display of one measured run (`backup`, `restore`).
pub type NewProgress = dyn Fn(&'static str) -> Arc<dyn Progress> + Send + Sync;

/// The job counts measured when none are given.
pub const DEFAULT_JOBS: [usize; 3] = [1, 2, 4];
/// The projection's default scale: a database this many times larger.
pub const DEFAULT_SCALE: f64 = 10.0;

#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Job counts, measured in this order.
    pub jobs: Vec<usize>,
    pub memory: usize,
    /// The server scratch databases are created on.
    pub target: ConnSettings,
    /// Projection: a database this many times larger.
    pub scale: f64,
    pub unlock: Arc<Unlock>,
}

/// One restore at one job count.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreRun {
    pub jobs: usize,
    pub wall_ms: u64,
    /// COPY text bytes (what `pg_dump` would have moved) per second, MB = 10^6.
    pub mb_per_s: f64,
    pub rows_per_s: f64,
    pub pre_data_ms: u64,
    pub data_ms: u64,
    pub post_data_ms: u64,
    /// The client's peak RSS during this restore (Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Pre-data as measured plus data and post-data times `scale`.
    pub projected_ms: u64,
}

/// One backup at one job count, beside the raw copy of the same tables.
#[derive(Clone, Debug, Serialize)]
pub struct BackupRun {
    pub jobs: usize,
    pub wall_ms: u64,
    pub mb_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    pub stored_bytes: u64,
    /// The floor: raw parallel `COPY ... TO STDOUT` of the same slices.
    pub raw_copy_ms: u64,
    pub raw_copy_mb_per_s: f64,
    /// Backup time over raw copy time (1.0 = as fast as the floor).
    pub ratio_to_raw_copy: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub backup_id: String,
    pub server_version: String,
    pub tables: u64,
    pub rows: u64,
    /// COPY text bytes of the backup.
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    pub scale: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<BackupRun>,
    pub restores: Vec<RestoreRun>,
}

fn rate(amount: u64, ms: u64) -> f64 {
    amount as f64 / (ms.max(1) as f64 / 1000.0)
}

/// A short random tag for scratch names.
fn tag() -> String {
    format!("{:08x}", rand::random::<u32>())
}

fn check_jobs(jobs: &[usize]) -> Result<()> {
    if jobs.is_empty() || jobs.contains(&0) {
        return Err(Error::Config(
            "bench --jobs: give job counts of at least 1, e.g. 1,2,4".into(),
        ));
    }
    Ok(())
}

/// Restores backup `id` of `repo` once per job count (held for the whole
/// benchmark).
pub async fn bench_restore(
    repo: &Repo,
    id: &str,
    opts: &BenchOptions,
    progress: &NewProgress,
    cancel: CancellationToken,
) -> Result<BenchReport> {
    check_jobs(&opts.jobs)?;
    let id = resolve_backup_id(repo, id).await?;
    // As for a restore: a repository this may not write to still benchmarks, unheld.
    let hold = match Lease::hold(repo, &id, "bench", DEFAULT_TTL).await {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(backup = %id, error = %e, "could not hold the backup; retention could remove it during the benchmark");
            None
        }
    };
    let r = async {
        let manifest = Arc::new(read_manifest(repo, &id, opts.unlock.as_ref()).await?);
        let restores = restores(repo, &manifest, opts, progress, cancel).await?;
        Ok(report(&manifest, opts.scale, Vec::new(), restores))
    }
    .await;
    if let Some(h) = hold {
        h.release().await;
    }
    r
}

fn report(
    m: &Manifest,
    scale: f64,
    backups: Vec<BackupRun>,
    restores: Vec<RestoreRun>,
) -> BenchReport {
    BenchReport {
        backup_id: m.header.id.clone(),
        server_version: m.header.server_version.clone(),
        tables: m.header.tables,
        rows: m.header.rows,
        plain_bytes: m.header.plain_bytes,
        stored_bytes: m.header.stored_bytes,
        scale,
        backups,
        restores,
    }
}

async fn restores(
    repo: &Repo,
    manifest: &Arc<Manifest>,
    opts: &BenchOptions,
    progress: &NewProgress,
    cancel: CancellationToken,
) -> Result<Vec<RestoreRun>> {
    let mut out = Vec::new();
    let bench = tag();
    for &jobs in &opts.jobs {
        let scratch = Scratch::on(&opts.target, "pgkeep_bench", &format!("{bench}_j{jobs}"));
        scratch.create(&manifest.body.source.encoding).await?;
        let mut ropts = RestoreOptions::new(scratch.settings.clone());
        ropts.jobs = jobs;
        ropts.memory = opts.memory;
        ropts.unlock = opts.unlock.clone();
        rss::reset_peak();
        let t0 = Instant::now();
        let r = restore_manifest(
            repo,
            manifest.clone(),
            &ropts,
            progress("restore"),
            cancel.clone(),
        )
        .await;
        let wall_ms = t0.elapsed().as_millis() as u64;
        let peak = rss::peak_bytes();
        scratch.drop_quietly().await;
        let s = r?;
        let scaled = (s.data_ms + s.post_data_ms) as f64 * opts.scale;
        tracing::info!(jobs, wall_ms, "restore measured");
        out.push(RestoreRun {
            jobs,
            wall_ms,
            mb_per_s: rate(s.bytes, wall_ms) / 1e6,
            rows_per_s: rate(s.rows, wall_ms),
            pre_data_ms: s.pre_data_ms,
            data_ms: s.data_ms,
            post_data_ms: s.post_data_ms,
            peak_rss_bytes: peak,
            projected_ms: s.pre_data_ms + scaled as u64,
        });
    }
    Ok(out)
}

/// Backs `db` up into a temporary local repository at each job count
/// (beside a raw copy of the same tables), then restores the last backup
/// at each job count. The repository is removed at the end.
pub async fn bench_database(
    db: &ConnSettings,
    opts: &BenchOptions,
    progress: &NewProgress,
    cancel: CancellationToken,
) -> Result<BenchReport> {
    check_jobs(&opts.jobs)?;
    let dir = std::env::temp_dir().join(format!("pgkeep-bench-{}", tag()));
    let result = async {
        let repo = Repo::open_with(
            &dir.to_string_lossy(),
            &Default::default(),
            0,
            crate::store::OpenMode::CreateIfMissing,
        )?;
        let mut backups = Vec::new();
        let mut last = None;
        for &jobs in &opts.jobs {
            let mut bopts = BackupOptions::new(db.clone());
            bopts.jobs = jobs;
            bopts.memory = opts.memory;
            rss::reset_peak();
            let t0 = Instant::now();
            let header = backup(&repo, &bopts, progress("backup"), cancel.clone()).await?;
            let wall_ms = t0.elapsed().as_millis() as u64;
            let peak = rss::peak_bytes();
            let manifest = read_manifest(&repo, &header.id, opts.unlock.as_ref()).await?;
            let t1 = Instant::now();
            let moved = tokio::select! {
                m = floor::raw_copy(db, &manifest, jobs) => m?,
                _ = cancel.cancelled() => return Err(Error::Interrupted("benchmark cancelled".into())),
            };
            let raw_ms = t1.elapsed().as_millis() as u64;
            tracing::info!(jobs, wall_ms, raw_ms, raw_bytes = moved.bytes, "backup measured");
            backups.push(BackupRun {
                jobs,
                wall_ms,
                mb_per_s: rate(header.plain_bytes, wall_ms) / 1e6,
                peak_rss_bytes: peak,
                stored_bytes: header.stored_bytes,
                raw_copy_ms: raw_ms,
                raw_copy_mb_per_s: rate(moved.bytes, raw_ms) / 1e6,
                ratio_to_raw_copy: wall_ms as f64 / raw_ms.max(1) as f64,
            });
            last = Some(Arc::new(manifest));
        }
        let manifest = last.ok_or_else(|| Error::Internal("no backup was measured".into()))?;
        let restores = restores(&repo, &manifest, opts, progress, cancel).await?;
        Ok(report(&manifest, opts.scale, backups, restores))
    }
    .await;
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove the benchmark's temporary repository");
    }
    result
}
