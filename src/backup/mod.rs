//! Backup orchestration: snapshot leader + catalog → work plan (tables and
//! ctid slices, biggest first, [`plan`]) → parallel workers streaming COPY
//! through the pipeline into pack objects ([`worker`]) → manifest, written
//! last ([`manifest`]).
//!
//! A failed or interrupted backup cancels its server queries, aborts its
//! uploads, removes what it wrote and never writes a manifest.

mod manifest;
mod plan;
pub(crate) mod worker;

pub(crate) use manifest::{write as write_manifest, Written};

use crate::archive::layout;
use crate::archive::pack::PackSet;
use crate::archive::ManifestHeader;
use crate::catalog::{self, CatalogOptions};
use crate::config::{ChainDef, ConnSettings};
use crate::crypto::{BackupKey, CipherKind, DataKey, SecretInput, WrappedKey};
use crate::error::{Error, Failures, Result};
use crate::keys::{self, EncryptMode, Unlock};
use crate::pg::snapshot::{Leader, Worker};
use crate::pipeline::budget::{DEFAULT_JOBS, DEFAULT_MEMORY};
use crate::pipeline::{Budget, FrameBuffers};
use crate::progress::Progress;
use crate::store::lease::Lease;
use crate::store::Repo;
use crate::units::MIB;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use worker::{worker_loop, Shared};

/// zstd level of a backup unless told otherwise (on COPY text, level 1 is
/// ~2.5× faster than level 3 at a similar ratio; docs/benchmarks.md).
pub const DEFAULT_COMPRESS_LEVEL: i32 = 1;
/// How long the leader waits for each table's `ACCESS SHARE` lock.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Tables larger than this are dumped as parallel ctid slices.
pub const DEFAULT_SPLIT_BYTES: u64 = 256 * MIB as u64;
/// A pack object is closed once it reaches this size.
pub const DEFAULT_PACK_BYTES: u64 = 1 << 30;

/// Everything a backup needs besides the repository.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    pub db: ConnSettings,
    pub jobs: usize,
    /// Memory budget in bytes.
    pub memory: usize,
    /// Overrides the frame size derived from the budget.
    pub frame_size: Option<usize>,
    /// zstd level; 0 stores frames uncompressed.
    pub compress_level: i32,
    pub catalog: CatalogOptions,
    /// How long the leader waits for each `ACCESS SHARE` lock.
    pub lock_timeout: Duration,
    /// Tables larger than this are split into ctid slices of about this size.
    pub split_bytes: u64,
    /// A pack object is closed once it exceeds this many bytes (checked
    /// before each frame, so a pack never exceeds it by more than a frame).
    pub pack_bytes: u64,
    /// Whether and how to encrypt.
    pub keys: KeyChoice,
    /// Hash-chained tables (policy `[[chain]]`): dumped whole in chain
    /// order, their stream heads recorded in the manifest.
    pub chains: Vec<ChainDef>,
    /// Lifetime of the backup's lease (renewed every quarter of it).
    pub lease_ttl: Duration,
    /// Overrides the multipart part size derived from the budget.
    pub part_size: Option<usize>,
    /// Globals beyond what the objects need: every role and tablespace
    /// (`--globals`), password hashes (`--with-role-passwords`).
    pub globals: crate::catalog::globals::GlobalsOptions,
}

impl BackupOptions {
    pub fn new(db: ConnSettings) -> BackupOptions {
        BackupOptions {
            db,
            jobs: DEFAULT_JOBS,
            memory: DEFAULT_MEMORY,
            frame_size: None,
            compress_level: DEFAULT_COMPRESS_LEVEL,
            catalog: CatalogOptions::default(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            split_bytes: DEFAULT_SPLIT_BYTES,
            pack_bytes: DEFAULT_PACK_BYTES,
            keys: KeyChoice::default(),
            chains: Vec::new(),
            lease_ttl: crate::store::lease::DEFAULT_TTL,
            part_size: None,
            globals: Default::default(),
        }
    }

    /// The memory plan of this backup: frames, parts and uploads sized
    /// from the budget. Also the size of the largest request a backup
    /// sends (a part), which sizes remote request timeouts.
    pub fn budget(&self) -> Result<Budget> {
        let mut budget = Budget::new(self.memory, self.jobs, self.frame_size)?;
        if let Some(p) = self.part_size {
            budget = budget.with_part_size(p)?;
        }
        budget.check_object_size(max_pack_size(self.pack_bytes, &budget))?;
        Ok(budget)
    }
}

/// Whether and how a backup is encrypted (Postgres and Redis alike).
#[derive(Clone, Debug, Default)]
pub struct KeyChoice {
    /// Whether to encrypt (by default: when the repository has master keys).
    pub encrypt: EncryptMode,
    /// Overrides the repository's default cipher.
    pub cipher: Option<CipherKind>,
    /// With [`EncryptMode::On`] in a repository without master keys: this
    /// secret becomes the repository's first master key.
    pub first_key: Option<Arc<SecretInput>>,
}

/// One backup in progress: what every step of it needs.
struct Run<'a> {
    repo: &'a Repo,
    opts: &'a BackupOptions,
    budget: Budget,
    id: String,
    started: time::OffsetDateTime,
    t0: Instant,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
}

/// Runs a backup into `repo`. Returns the header of the written manifest.
pub async fn backup(
    repo: &Repo,
    opts: &BackupOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<ManifestHeader> {
    let budget = opts.budget()?;
    let started = time::OffsetDateTime::now_utc();
    let run = Run {
        repo,
        opts,
        budget,
        id: layout::new_backup_id(started),
        started,
        t0: Instant::now(),
        progress: progress.clone(),
        cancel,
    };
    let backup_id = run.id.clone();
    leased(repo, &backup_id, opts.lease_ttl, progress, run.execute()).await
}

/// Runs `work`, the backup `backup_id`, under its lease: the lease is
/// taken first (from then on a prune sees a running backup) and renewed
/// while `work` runs; a backup that cannot renew it stops. When `work`
/// fails, everything written under the backup's prefix is removed.
pub(crate) async fn leased(
    repo: &Repo,
    backup_id: &str,
    lease_ttl: Duration,
    progress: Arc<dyn Progress>,
    work: impl std::future::Future<Output = Result<ManifestHeader>>,
) -> Result<ManifestHeader> {
    let lease = Lease::acquire(repo, backup_id, lease_ttl).await?;
    let result = tokio::select! {
        r = work => r,
        _ = lease.lost() => {
            progress.end();
            Err(Error::Busy(format!(
                "backup {backup_id} stopped: its lease in {} could not be renewed, so `pgkeep prune --incomplete` could remove it while it runs",
                repo.display()
            )))
        }
    };
    match &result {
        Ok(_) => lease.release().await,
        Err(_) => {
            // Keep the lease object (it expires on its own) until the
            // prefix is gone, so a prune never races this cleanup.
            lease.abandon().await;
            // Nothing half-written may look like a backup: remove what we wrote.
            if let Err(e) = repo.delete_prefix(&layout::backup_prefix(backup_id)).await {
                tracing::warn!(backup = %backup_id, error = %e, "could not remove the failed backup's objects; `pgkeep prune --incomplete` will");
            }
        }
    }
    result
}

/// The largest a pack object can get: packs rotate before a frame once
/// they reach `pack_bytes`, and a stored frame is at most a frame of
/// plaintext plus zstd's worst-case expansion and its header.
fn max_pack_size(pack_bytes: u64, budget: &Budget) -> u64 {
    let frame = budget.frame_size as u64;
    pack_bytes + frame + frame / 128 + 64 * 1024
}

/// The backup's data key and its wraps to every master key of the
/// repository, or none when not encrypting. Adds the first master key
/// when asked to.
pub(crate) async fn prepare_keys(
    repo: &Repo,
    opts: &KeyChoice,
    backup_id: &str,
) -> Result<(Option<Arc<BackupKey>>, Vec<WrappedKey>)> {
    if opts.encrypt == EncryptMode::On {
        if let Some(first) = &opts.first_key {
            if keys::list_keys(repo).await?.is_empty() {
                let change = keys::add_key(repo, &Unlock::default(), first, opts.cipher).await?;
                if let Some(id) = change.added {
                    tracing::info!(key = %id, "added the repository's first master key");
                }
            }
        }
    }
    let Some(r) = keys::recipients(repo, opts.encrypt, opts.cipher).await? else {
        return Ok((None, Vec::new()));
    };
    let data_key = DataKey::generate();
    let wraps = r
        .keys
        .iter()
        .map(|k| WrappedKey::wrap(&data_key, k, r.cipher, backup_id))
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<&str> = r.keys.iter().map(|k| k.id.as_str()).collect();
    tracing::info!(backup = %backup_id, cipher = %r.cipher, keys = ?ids, "encrypting");
    Ok((
        Some(Arc::new(BackupKey::new(r.cipher, &data_key, backup_id))),
        wraps,
    ))
}

impl Run<'_> {
    async fn execute(self) -> Result<ManifestHeader> {
        let (repo, opts, backup_id) = (self.repo, self.opts, self.id.as_str());
        // Decided before touching the database: a key problem fails at once.
        let (key, wraps) = prepare_keys(repo, &opts.keys, backup_id).await?;
        if opts.globals.passwords && key.is_none() {
            return Err(Error::Config(
                "--with-role-passwords stores password hashes: only in an encrypted backup (add a key: pgkeep key add, docs/security.md)".into(),
            ));
        }
        let leader = Leader::begin(&opts.db).await?;
        let source = catalog::source_info(&leader.conn.client).await?;
        let rels = catalog::select_tables(&leader.conn.client, &opts.catalog).await?;
        // Tables with storage only: a foreign table cannot be locked (and
        // its data lives elsewhere; only its DDL is kept).
        // And the extensions' configuration tables, whose rows are kept.
        let config = catalog::extension_config(&leader.conn.client, &opts.catalog).await?;
        let lockable: Vec<(String, String)> = rels
            .iter()
            .filter(|r| matches!(r.relkind, 'r' | 'p'))
            .map(|r| (r.schema.clone(), r.name.clone()))
            .chain(
                config
                    .iter()
                    .filter(|c| c.relkind == 'r')
                    .map(|c| (c.schema.clone(), c.name.clone())),
            )
            .collect();
        leader.lock_tables(&lockable, opts.lock_timeout).await?;
        let toc = catalog::read_toc(&leader.conn.client, &opts.catalog, &rels, &config).await?;
        let rel_oids: Vec<u32> = rels.iter().map(|r| r.oid).collect();
        let rls = catalog::rls::read(&leader.conn.client, Some(&rel_oids)).await?;
        let owners: Vec<&str> = toc.iter().filter_map(|e| e.owner.as_deref()).collect();
        let globals = catalog::globals::read(&leader.conn.client, opts.globals, &owners).await?;
        let items = plan::plan_work(&toc, opts.split_bytes, &opts.chains)?;
        for c in &opts.chains {
            if !items
                .iter()
                .any(|i| i.chain.as_ref().is_some_and(|p| p.table == c.table))
            {
                tracing::warn!(table = %c.table, "chain table of the policy is not in this backup");
            }
        }
        let total_est: u64 = items.iter().map(|i| i.est_bytes).sum();
        tracing::info!(backup = %backup_id, source = %opts.db, entries = toc.len(), streams = items.len(), "snapshot taken, catalog read");
        let progress = self.progress.clone();
        progress.begin(total_est);

        let budget = self.budget;
        let shared = Arc::new(Shared {
            budget,
            level: opts.compress_level,
            key: key.clone(),
            queue: Mutex::new(items.iter().cloned().collect()),
            packs: Arc::new(PackSet::new(
                repo.clone(),
                backup_id.to_string(),
                opts.pack_bytes,
                budget.part_size,
                budget.upload_concurrency,
            )),
            progress: progress.clone(),
            bufs: FrameBuffers::new(budget.frame_size, budget.total),
        });

        let jobs = opts.jobs.max(1).min(items.len().max(1));
        let mut set = tokio::task::JoinSet::new();
        let mut tokens = Vec::new();
        // Stops the workers on the first failure; each aborts its open upload
        // (awaited) before it returns, so none is left when the backup does.
        let stop = CancellationToken::new();
        // Every worker joins the snapshot before any starts copying, so a failed
        // connection ends the backup before a single upload has begun.
        let mut workers = Vec::with_capacity(jobs);
        for _ in 0..jobs {
            workers.push(Worker::join(&opts.db, &leader.snapshot, &source.encoding).await?);
        }
        for w in workers {
            tokens.push(w.cancel_handle());
            set.spawn(worker_loop(w, shared.clone(), stop.clone()));
        }

        let mut outputs = Vec::new();
        let mut failures = Failures::default();
        loop {
            tokio::select! {
                _ = self.cancel.cancelled(), if failures.is_empty() => {
                    failures.push(Error::Interrupted("backup cancelled".into()));
                    stop.cancel();
                }
                joined = set.join_next() => {
                    match joined {
                        None => break,
                        Some(Ok(Ok(out))) => outputs.push(out),
                        Some(Ok(Err(e))) => {
                            failures.push(e);
                            stop.cancel();
                        }
                        Some(Err(join)) if join.is_cancelled() => {}
                        Some(Err(join)) => {
                            failures.push(Error::Internal(format!("backup worker panicked: {join}")));
                            stop.cancel();
                        }
                    }
                }
            }
        }
        if let Some(e) = failures.into_error() {
            for t in &tokens {
                t.cancel().await;
            }
            progress.end();
            return Err(e);
        }
        leader.finish().await?;
        progress.end();
        tracing::debug!(
            plain_buffers = shared.bufs.plain.allocated(),
            stored_buffers = shared.bufs.stored.allocated(),
            frame_size = budget.frame_size,
            "frame buffers allocated"
        );
        let facts = manifest::Facts {
            source,
            toc,
            rls,
            globals,
        };
        let manifest = manifest::assemble(&self, facts, outputs, key, wraps)?;
        manifest::write(repo, manifest).await
    }
}
