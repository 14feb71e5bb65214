//! Restore orchestration: check or prepare the target, replay pre-data in
//! dependency order, then load data streams (biggest first, many streams of
//! one split table at once) and run post-data (indexes, constraints,
//! triggers, policies, matview refresh) in one schedule over `--jobs`
//! connections (`schedule.rs`): post-data after all data, or with
//! `--overlap` each entry as soon as the data it needs is in.
//! Row counts are checked per stream before its transaction commits.

mod dag;
mod data;
pub mod globals;
mod onerror;
mod resume;
mod schedule;
pub mod scratch;
pub mod select;
mod target;

use crate::archive::index::{read_manifest, resolve_backup_id};
use crate::archive::Manifest;
use crate::catalog::{ObjectKind, Section, TocEntry};
use crate::config::ConnSettings;
use crate::error::{Error, Result};
use crate::keys::Unlock;
use crate::pg::snapshot::session_setup;
use crate::pg::{connect, Conn};
use crate::pipeline::{Budget, FrameBuffers};
use crate::progress::Progress;
use crate::store::lease::Lease;
use crate::store::Repo;
use data::{LoadContext, Unit, UnitStream};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

use onerror::Failed;
pub use onerror::OnError;
pub use target::{count_user_objects, guard_cluster};

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub db: ConnSettings,
    pub jobs: usize,
    pub memory: usize,
    /// Drop the target's user objects first (or drop and recreate with `create`).
    pub clean: bool,
    /// Create the target database.
    pub create: bool,
    /// `maintenance_work_mem` for index builds on each connection; `None`:
    /// sized from the server (see [`maintenance_work_mem`]).
    pub maintenance_work_mem: Option<String>,
    /// Restore even into the backup's own source database (same cluster,
    /// same database name), which is refused otherwise.
    pub force_source: bool,
    /// What to leave out (`--no-owner`, `--no-acl`, `--no-comments`).
    pub omit: select::Omit,
    /// Which sections run (`--schema-only`, `--data-only`, `--section`).
    pub sections: select::Sections,
    /// Only these entries (`--use-list`), with their data streams.
    pub only: Option<std::collections::HashSet<u32>>,
    /// Only what these patterns select (`-t/-n/-T/-N`, the backup's
    /// pattern syntax), with what is attached to it.
    pub select: Option<crate::catalog::CatalogOptions>,
    /// With `clean`: drop only what the backup holds (what this restore
    /// creates), with `IF EXISTS`, instead of every user object.
    pub if_exists: bool,
    /// Create the roles and tablespaces the backup holds that the target
    /// cluster lacks (`--globals`).
    pub globals: bool,
    /// Continue an interrupted restore of the same backup into the same
    /// target, skipping what it finished (`--resume`).
    pub resume: bool,
    /// Stop at the first failure (default) or go on and report every one.
    pub on_error: OnError,
    /// The whole restore in one transaction on one connection: all or
    /// nothing (`--single-transaction`; `jobs` 1, no `create`).
    pub single_transaction: bool,
    /// Start each table's post-data as soon as its data is loaded, while
    /// other tables still load (`--overlap`; see `schedule.rs`). Off: all
    /// post-data after all data.
    pub overlap: bool,
    /// Restore a backup of a newer PostgreSQL major into an older server,
    /// which is refused otherwise.
    pub allow_downgrade: bool,
    /// Secrets that open an encrypted backup.
    pub unlock: Arc<Unlock>,
}

impl RestoreOptions {
    /// Whether only some entries are restored (`-t/-n/-T/-N`,
    /// `--use-list`).
    pub fn selective(&self) -> bool {
        self.only.is_some() || self.select.is_some()
    }

    pub fn new(db: ConnSettings) -> RestoreOptions {
        RestoreOptions {
            db,
            jobs: 2,
            memory: 64 << 20,
            clean: false,
            create: false,
            maintenance_work_mem: None,
            force_source: false,
            omit: select::Omit::default(),
            sections: select::Sections::default(),
            only: None,
            select: None,
            if_exists: false,
            globals: false,
            resume: false,
            on_error: OnError::Exit,
            single_transaction: false,
            overlap: false,
            allow_downgrade: false,
            unlock: Arc::new(Unlock::default()),
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct RestoreSummary {
    pub backup_id: String,
    pub target: String,
    pub entries: usize,
    pub streams: usize,
    pub rows: u64,
    pub bytes: u64,
    pub duration_ms: u64,
    pub pre_data_ms: u64,
    /// From the first data unit to the last one finishing (with
    /// `--overlap`, post-data entries of loaded tables run meanwhile).
    pub data_ms: u64,
    /// Post-data left after the last data unit finished.
    pub post_data_ms: u64,
    /// Foreign keys left out by `-t/-n/-T/-N`: they point at a table not
    /// selected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_foreign_keys: Vec<String>,
    /// What `--globals` created and found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globals: Option<globals::GlobalsReport>,
    /// What failed and was gone past (`--continue-on-error`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// What `--clean` would drop in `opts.db` before restoring backup `id`
/// into it: the same checks as a restore (the backup exists, the target is
/// not its source unless forced), then the list (with `if_exists`, the drop
/// statements it would run, which skip what is not there); nothing is
/// changed.
pub async fn clean_preview(repo: &Repo, id: &str, opts: &RestoreOptions) -> Result<Vec<String>> {
    let id = resolve_backup_id(repo, id).await?;
    let manifest = read_manifest(repo, &id, opts.unlock.as_ref()).await?;
    target::guard_source(&opts.db, &manifest.header, opts.force_source).await?;
    check_options(opts)?;
    if opts.if_exists {
        let chosen = choose(&manifest, opts)?;
        return Ok(drop_statements(&chosen.toc, opts.sections)?
            .iter()
            .map(|d| d.trim_end().trim_end_matches(';').to_string())
            .collect());
    }
    let conn = connect(&opts.db).await?;
    target::clean_preview(&conn).await
}

/// Restores backup `id` (or `latest`) from `repo` into `opts.db`.
pub async fn restore(
    repo: &Repo,
    id: &str,
    opts: &RestoreOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<RestoreSummary> {
    let id = resolve_backup_id(repo, id).await?;
    // Retention never removes a held backup.
    Lease::while_held(repo, &id, "restore", async {
        let manifest = Arc::new(read_manifest(repo, &id, opts.unlock.as_ref()).await?);
        restore_manifest(repo, manifest, opts, progress, cancel).await
    })
    .await
}

/// Restores the backup `manifest` describes (read by the caller, who holds
/// the backup) into `opts.db`.
pub async fn restore_manifest(
    repo: &Repo,
    manifest: Arc<Manifest>,
    opts: &RestoreOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<RestoreSummary> {
    tokio::select! {
        r = run(repo, manifest, opts, progress) => r,
        _ = cancel.cancelled() => Err(Error::Interrupted("restore cancelled; the target database is incomplete".into())),
    }
}

async fn open_session(settings: &ConnSettings, encoding: &str) -> Result<Conn> {
    let conn = connect(settings).await?;
    session_setup(&conn, Some(encoding)).await?;
    conn.client
        .batch_execute("SET check_function_bodies = false; SET client_min_messages = warning; SET synchronous_commit = off")
        .await
        .map_err(Error::db("setting up the restore session"))?;
    Ok(conn)
}

async fn run(
    repo: &Repo,
    manifest: Arc<Manifest>,
    opts: &RestoreOptions,
    progress: Arc<dyn Progress>,
) -> Result<RestoreSummary> {
    let t0 = Instant::now();
    let id = manifest.header.id.clone();
    if manifest.header.kind != crate::archive::BackupKind::Postgres {
        return Err(Error::Refused(format!(
            "backup {id} is a {} backup: restore it with `pgkeep redis restore`",
            manifest.header.kind.as_str()
        )));
    }
    let encoding = manifest.body.source.encoding.clone();
    let budget = Budget::new(opts.memory, opts.jobs, None)?;
    check_options(opts)?;
    target::guard_source(&opts.db, &manifest.header, opts.force_source).await?;
    // One connection to the target's server (outside the target database)
    // serves every check and globals step.
    let admin = target::admin_connection(&opts.db).await?;
    target::guard_version(&admin, &manifest.header, opts.allow_downgrade).await?;
    let sections = opts.sections;

    // Everything that can refuse runs before anything in the target changes.
    let Chosen {
        toc,
        only,
        skipped_foreign_keys,
    } = choose(&manifest, opts)?;
    // With --create the database is new: nothing of the backup's is there.
    let drops: String = if opts.clean && opts.if_exists && !opts.create {
        drop_statements(&toc, sections)?.concat()
    } else {
        String::new()
    };
    if let Some(g) = &manifest.body.globals {
        globals::check_roles(&admin, g, opts).await?;
        if opts.globals {
            globals::check_create(&admin, g).await?;
        }
    } else if opts.globals {
        tracing::warn!("this backup records no globals (made by an older pgkeep): --globals has nothing to create");
    }
    // Progress is recorded in the target (not in one transaction: nothing
    // to resume there); --resume reads it back.
    let mark = !opts.single_transaction;
    let mut existing = 0;
    let mut done = resume::Done::default();
    let mut main = None;
    if !opts.create {
        let conn = open_session(&opts.db, &encoding).await?;
        // Only a restore that creates objects needs an empty target; data
        // or post-data alone go into the schema already there. A selection
        // (`-t/-n/-T/-N`, `--use-list`) goes into a target that holds what
        // the selected objects need, as with pg_restore.
        if sections.pre_data && !opts.selective() && !opts.if_exists && !opts.resume {
            existing = count_user_objects(&conn).await?;
        }
        let interrupted = resume::present(&conn).await?;
        if existing > 0 && !opts.clean {
            let hint = if interrupted {
                "; an interrupted restore left its progress there: continue it with --resume"
            } else {
                ""
            };
            return Err(Error::Refused(format!(
                "database {:?} is not empty ({existing} user objects); use --clean to drop its contents first, or --create with a new database name{hint}",
                opts.db.dbname
            )));
        }
        if opts.resume {
            done = resume::load(&conn, &id).await?;
        } else if mark && interrupted && existing == 0 {
            return Err(Error::Refused(format!(
                "an interrupted restore left its progress in database {:?} (schema {}): continue it with --resume, or drop that schema to start over",
                opts.db.dbname,
                resume::SCHEMA
            )));
        }
        main = Some(conn);
    }

    // From here on the target changes.
    let globals_report = match (&manifest.body.globals, opts.globals) {
        (Some(g), true) => Some(globals::create(&admin, g).await?),
        _ => None,
    };
    let failed = Failed::new(opts.on_error);
    let main = match main {
        Some(conn) => conn,
        None => {
            target::create_database(&opts.db, &encoding, opts.clean).await?;
            if let Some(g) = &manifest.body.globals {
                globals::apply_properties(&admin, g, opts).await?;
            }
            open_session(&opts.db, &encoding).await?
        }
    };
    if opts.single_transaction {
        // Dropping the connection on any failure rolls everything back.
        main.client
            .batch_execute("BEGIN")
            .await
            .map_err(Error::db("starting the restore's transaction"))?;
    }
    if existing > 0 {
        target::clean_database(&main).await?;
    }
    tracing::info!(backup = %id, target = %opts.db, "restoring");
    for fk in &skipped_foreign_keys {
        tracing::warn!(foreign_key = %fk, "left out: it points at a table the selection leaves out");
    }
    if !drops.is_empty() {
        // One implicit transaction: a failing drop (an object outside the
        // backup depending on one inside) drops nothing.
        main.client.batch_execute(&drops).await.map_err(Error::db(
            "dropping the backup's objects in the target (--clean --if-exists)",
        ))?;
    }
    if mark && !opts.resume {
        resume::begin(&main, &id).await?;
    }
    for e in toc
        .iter()
        .filter(|e| e.section == Section::PreData && sections.pre_data && !done.entry(e.id))
    {
        if let Err(err) = dag::run_one(&main, e, mark).await {
            failed.absorb(err)?;
        }
    }
    let pre_data_ms = t0.elapsed().as_millis() as u64;

    // Data-section entries without data (sequence values) first, on the
    // main connection: they need nothing but their objects.
    for e in toc.iter().filter(|e| {
        e.section == Section::Data && e.data.is_none() && sections.data && !done.entry(e.id)
    }) {
        if let Err(err) = dag::run_one(&main, e, mark).await {
            failed.absorb(err)?;
        }
    }

    // Data units and post-data in one schedule over --jobs connections
    // (with --overlap, a table's indexes build while other tables load).
    let t_data = Instant::now();
    let (units, ctx) = prepare_data(
        &manifest,
        opts,
        only.as_ref(),
        &budget,
        repo,
        progress.clone(),
        (&done, mark),
    )?;
    let post: Vec<TocEntry> = toc
        .iter()
        .filter(|e| e.section == Section::PostData && sections.post_data && !done.entry(e.id))
        .cloned()
        .collect();
    let mut conns = vec![main];
    if !opts.single_transaction {
        for _ in 1..opts.jobs.max(1) {
            conns.push(open_session(&opts.db, &encoding).await?);
        }
    }
    let mwm =
        maintenance_work_mem(&conns[0], opts.maintenance_work_mem.as_deref(), conns.len()).await?;
    tracing::debug!(maintenance_work_mem = %mwm, connections = conns.len(), "index builds");
    for c in &conns {
        c.client
            .batch_execute(&format!(
                "SET maintenance_work_mem = {}",
                crate::pg::quote_literal(&mwm)
            ))
            .await
            .map_err(Error::db("setting maintenance_work_mem"))?;
    }
    let tally = Arc::new(schedule::Tally::default());
    let workers: Vec<schedule::Worker> = conns
        .into_iter()
        .map(|conn| schedule::Worker {
            tracked: dag::Tracked { conn, mark },
            ctx: ctx.clone(),
            tally: tally.clone(),
        })
        .collect();
    if sections.data {
        progress.begin(manifest.body.streams.iter().map(|s| s.plain_bytes).sum());
    }
    let tasks = schedule::plan(units, post, &toc, opts.overlap);
    let workers = dag::run_tasks(workers, tasks, progress.as_ref(), "post-data", &failed).await;
    if sections.data {
        progress.end();
    }
    let workers = workers?;
    if let Some(last) = workers.first() {
        let conn = &last.tracked.conn;
        if opts.single_transaction {
            conn.client
                .batch_execute("COMMIT")
                .await
                .map_err(Error::db("committing the restore's transaction"))?;
        } else if failed.is_empty() {
            // Finished: the progress record goes (after failures gone past,
            // it stays, and --resume retries what failed).
            resume::finish(conn).await?;
        }
    }
    let rows = tally.rows.load(std::sync::atomic::Ordering::Relaxed);
    let bytes = tally.bytes.load(std::sync::atomic::Ordering::Relaxed);
    let streams = if sections.data {
        manifest.body.streams.len()
    } else {
        0
    };
    // Data time runs until the last unit finished; post-data time is what
    // ran after it.
    let data_end = tally
        .data_done
        .lock()
        .ok()
        .and_then(|t| *t)
        .unwrap_or(t_data);
    let data_ms = data_end.duration_since(t_data).as_millis() as u64;
    let post_data_ms = data_end.elapsed().as_millis() as u64;
    // The database's own settings last: a source's
    // `default_transaction_read_only` or `lock_timeout` must not govern
    // the restore's sessions.
    if opts.create {
        if let Some(g) = &manifest.body.globals {
            globals::apply_settings(&admin, g, opts).await?;
        }
    }

    Ok(RestoreSummary {
        backup_id: id,
        target: opts.db.to_string(),
        entries: toc.len(),
        streams,
        rows,
        bytes,
        duration_ms: t0.elapsed().as_millis() as u64,
        pre_data_ms,
        data_ms,
        post_data_ms,
        skipped_foreign_keys,
        globals: globals_report,
        failures: failed.list(),
    })
}

/// `maintenance_work_mem` for the restore's `connections`: `asked`, else
/// sized from what the server's administrator gave the server: an equal
/// share of `shared_buffers` per connection (so that index builds running
/// at once use no more than that together), between 64MB and 1GB, and
/// never below the server's own setting.
async fn maintenance_work_mem(
    conn: &Conn,
    asked: Option<&str>,
    connections: usize,
) -> Result<String> {
    if let Some(m) = asked {
        return Ok(m.to_string());
    }
    let row = conn
        .client
        .query_one(
            "SELECT pg_catalog.pg_size_bytes(pg_catalog.current_setting('shared_buffers')), \
             pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem'))",
            &[],
        )
        .await
        .map_err(Error::db("reading shared_buffers and maintenance_work_mem"))?;
    let (shared, current): (i64, i64) = (
        row.try_get(0)
            .map_err(Error::db("reading shared_buffers"))?,
        row.try_get(1)
            .map_err(Error::db("reading maintenance_work_mem"))?,
    );
    Ok(format!(
        "{}kB",
        auto_maintenance_work_mem(shared, current, connections) / 1024
    ))
}

/// See [`maintenance_work_mem`]: bytes.
fn auto_maintenance_work_mem(shared_buffers: i64, current: i64, connections: usize) -> i64 {
    const MIN: i64 = 64 << 20;
    const MAX: i64 = 1 << 30;
    let share = shared_buffers / i64::try_from(connections.max(1)).unwrap_or(i64::MAX);
    share.clamp(MIN, MAX).max(current)
}

/// What a restore runs: the TOC after `--no-*`, `--use-list` and
/// `-t/-n/-T/-N`; the ids kept (`None`: all); the foreign keys a selection
/// left out.
struct Chosen {
    toc: Vec<TocEntry>,
    only: Option<std::collections::HashSet<u32>>,
    skipped_foreign_keys: Vec<String>,
}

fn choose(manifest: &Manifest, opts: &RestoreOptions) -> Result<Chosen> {
    let mut only = opts.only.clone();
    let mut skipped_foreign_keys = Vec::new();
    if let Some(patterns) = &opts.select {
        let filter = crate::catalog::Filter::new(patterns)?;
        let chosen = select::by_patterns(&manifest.body.toc, &filter);
        skipped_foreign_keys = chosen.skipped_foreign_keys;
        only = Some(match only {
            Some(listed) => listed.intersection(&chosen.keep).copied().collect(),
            None => chosen.keep,
        });
    }
    if let Some(keep) = opts.only.as_ref() {
        // Dependencies in sections this restore does not run are expected
        // to be in the target already.
        let running: Vec<TocEntry> = manifest
            .body
            .toc
            .iter()
            .filter(|e| opts.sections.runs(e.section))
            .cloned()
            .collect();
        let missing = select::missing_dependencies(&running, keep);
        if !missing.is_empty() {
            return Err(Error::Config(format!(
                "--use-list leaves out entries that kept ones need: {}; keep them too, or comment out the entries that need them",
                missing.join("; ")
            )));
        }
    }
    let mut toc = opts.omit.apply(&manifest.body.toc);
    if let Some(keep) = &only {
        toc.retain(|e| keep.contains(&e.id));
    }
    Ok(Chosen {
        toc,
        only,
        skipped_foreign_keys,
    })
}

/// The drop statements `--clean --if-exists` runs for `toc`: its
/// standalone objects in reverse restore order (foreign keys first, then
/// what depends on something before what it depends on).
fn drop_statements(toc: &[TocEntry], sections: select::Sections) -> Result<Vec<&str>> {
    // Only what this restore creates again; foreign keys always, so that
    // tables drop in any order.
    let drops: Vec<&str> = toc
        .iter()
        .rev()
        .filter(|e| sections.runs(e.section) || e.kind == ObjectKind::ForeignKey)
        .filter_map(|e| e.drop.as_deref())
        .collect();
    if drops.is_empty() && toc.iter().any(|e| e.section == Section::PreData) {
        return Err(Error::Refused(
            "this backup records no drop statements (it was made by an older pgkeep), so --if-exists cannot tell what to drop: use --clean alone, which empties the whole target".into(),
        ));
    }
    Ok(drops)
}

/// Refuses option combinations that cannot work, before anything changes.
fn check_options(opts: &RestoreOptions) -> Result<()> {
    if opts.if_exists && !opts.clean {
        return Err(Error::Config("--if-exists needs --clean".into()));
    }
    if opts.resume && (opts.clean || opts.create) {
        return Err(Error::Config(
            "--resume continues a restore into the database it was interrupted in: it does not combine with --clean or --create".into(),
        ));
    }
    if opts.clean && !opts.sections.pre_data {
        return Err(Error::Config(
            "--clean drops objects for the restore to create again: it needs the pre-data section (not --data-only or --section data/post-data alone)".into(),
        ));
    }
    if opts.selective() && opts.clean && !opts.if_exists {
        // --clean alone drops every user object of the target, not only
        // the selected ones.
        return Err(Error::Config(
            "--clean drops the whole target's contents: with -t/-n/-T/-N or --use-list, add --if-exists to drop only what is selected".into(),
        ));
    }
    if !opts.single_transaction {
        return Ok(());
    }
    if opts.jobs > 1 {
        return Err(Error::Config(
            "--single-transaction runs on one connection: it does not combine with --jobs above 1"
                .into(),
        ));
    }
    if opts.create {
        return Err(Error::Config(
            "--single-transaction does not combine with --create (CREATE DATABASE cannot run inside a transaction): create the database first".into(),
        ));
    }
    if opts.on_error == OnError::Continue {
        return Err(Error::Config(
            "--single-transaction does not combine with --continue-on-error: any failure rolls the whole restore back".into(),
        ));
    }
    if opts.resume {
        return Err(Error::Config(
            "--single-transaction leaves nothing to resume: an interrupted one-transaction restore changed nothing".into(),
        ));
    }
    Ok(())
}

/// Groups streams into load units, biggest first. A table loads as one unit
/// (its slices one after another, TRUNCATE + COPY FREEZE, no WAL under
/// `wal_level = minimal`) unless it is so big that it alone would set the
/// pace: a table above `total / jobs` loads its slices in parallel, each in
/// its own transaction, giving up FREEZE for parallelism.
fn plan_units(manifest: &Manifest, jobs: usize) -> Result<Vec<Unit>> {
    let by_id: HashMap<u32, &TocEntry> = manifest.body.toc.iter().map(|e| (e.id, e)).collect();
    // Streams grouped by table, tables in order of their first stream:
    // one pass with a map from table to group.
    let mut groups: Vec<(u32, Vec<usize>)> = Vec::new();
    let mut group_of: HashMap<u32, usize> = HashMap::new();
    for (i, s) in manifest.body.streams.iter().enumerate() {
        match group_of.get(&s.toc_id) {
            Some(&g) => groups[g].1.push(i),
            None => {
                group_of.insert(s.toc_id, groups.len());
                groups.push((s.toc_id, vec![i]));
            }
        }
    }
    let total: u64 = manifest.body.streams.iter().map(|s| s.stored_bytes).sum();
    let share = total / jobs.max(1) as u64;
    let mut units = Vec::new();
    for (toc_id, indexes) in groups {
        let e = by_id.get(&toc_id).ok_or_else(|| {
            Error::format(
                "manifest",
                format!("a stream refers to unknown TOC entry {toc_id}"),
            )
        })?;
        let table = e.data.clone().ok_or_else(|| {
            Error::format(
                "manifest",
                format!("TOC entry {} has no data description", e.id),
            )
        })?;
        let streams: Vec<UnitStream> = indexes
            .iter()
            .map(|&i| {
                let s = &manifest.body.streams[i];
                let label = match s.pages {
                    Some((a, b)) if b != u64::MAX => {
                        format!("{}.{} [pages {a}..{b}]", table.schema, table.name)
                    }
                    Some((a, _)) => format!("{}.{} [pages {a}..]", table.schema, table.name),
                    None => format!("{}.{}", table.schema, table.name),
                };
                UnitStream {
                    index: i,
                    id: s.id,
                    rows: s.rows,
                    plain_bytes: s.plain_bytes,
                    label,
                }
            })
            .collect();
        let size: u64 = indexes
            .iter()
            .map(|&i| manifest.body.streams[i].stored_bytes)
            .sum();
        let heap_table = e.kind == ObjectKind::TableData && table.splittable;
        if streams.len() > 1 && size > share {
            for st in streams {
                let stored_bytes = manifest.body.streams[st.index].stored_bytes;
                units.push(Unit {
                    toc_id,
                    kind: e.kind,
                    table: table.clone(),
                    streams: vec![st],
                    freeze: false,
                    stored_bytes,
                });
            }
        } else {
            units.push(Unit {
                toc_id,
                kind: e.kind,
                table,
                streams,
                freeze: heap_table,
                stored_bytes: size,
            });
        }
    }
    units.sort_by(|a, b| {
        b.stored_bytes
            .cmp(&a.stored_bytes)
            .then(a.streams[0].index.cmp(&b.streams[0].index))
    });
    Ok(units)
}

/// The data units to load (none without the data section), with what
/// loading them shares. Streams in `done` (`--resume`) are left out; with
/// `mark`, each unit records its streams as it commits.
fn prepare_data(
    manifest: &Arc<Manifest>,
    opts: &RestoreOptions,
    only: Option<&std::collections::HashSet<u32>>,
    budget: &Budget,
    repo: &Repo,
    progress: Arc<dyn Progress>,
    (done, mark): (&resume::Done, bool),
) -> Result<(Vec<Unit>, Arc<LoadContext>)> {
    let mut units = if opts.sections.data {
        plan_units(manifest, opts.jobs)?
    } else {
        Vec::new()
    };
    for u in &mut units {
        let before = u.streams.len();
        u.streams.retain(|s| !done.stream(s.id));
        if u.streams.len() != before {
            // Part of the table is in: add the rest, never TRUNCATE.
            u.freeze = false;
        }
    }
    units.retain(|u| !u.streams.is_empty());
    if let Some(keep) = only {
        units.retain(|u| keep.contains(&u.toc_id));
    }
    // Into tables this restore did not create (data without pre-data),
    // rows are added to what is there, as pg_restore does: no TRUNCATE,
    // so no FREEZE.
    if !opts.sections.pre_data {
        for u in &mut units {
            u.freeze = false;
        }
    }
    let (read_ahead, max_read) =
        budget.read_plan(manifest.max_frame_plain(), manifest.key.is_some());
    let ctx = Arc::new(LoadContext {
        repo: repo.clone(),
        manifest: manifest.clone(),
        read_ahead,
        max_read,
        bufs: FrameBuffers::for_reads(
            manifest.max_frame_plain(),
            usize::try_from(max_read).unwrap_or(usize::MAX),
            budget.total,
        ),
        progress,
        in_transaction: opts.single_transaction,
        mark,
    });
    Ok((units, ctx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest::tests::sample;
    use crate::archive::StreamInfo;
    use crate::catalog::TableData;

    fn with_tables(sizes: &[(u32, &[u64])]) -> Manifest {
        let mut m = sample();
        m.body.toc.clear();
        m.body.streams.clear();
        for (toc_id, slices) in sizes {
            m.body.toc.push(TocEntry {
                id: *toc_id,
                kind: ObjectKind::TableData,
                section: Section::Data,
                schema: Some("public".into()),
                name: format!("t{toc_id}"),
                owner: None,
                sql: String::new(),
                deps: vec![],
                data: Some(TableData {
                    schema: "public".into(),
                    name: format!("t{toc_id}"),
                    columns: vec!["a".into()],
                    est_bytes: 0,
                    pages: 0,
                    splittable: true,
                    condition: None,
                }),
                drop: None,
            });
            for size in slices.iter() {
                let id = m.body.streams.len() as u32;
                m.body.streams.push(StreamInfo {
                    id,
                    toc_id: *toc_id,
                    pages: (slices.len() > 1).then_some((0, 1)),
                    rows: 1,
                    plain_bytes: *size,
                    stored_bytes: *size,
                    plain_sha256: None,
                    frames: vec![],
                });
            }
        }
        m
    }

    #[test]
    fn maintenance_work_mem_is_a_share_of_shared_buffers() {
        const MB: i64 = 1 << 20;
        assert_eq!(auto_maintenance_work_mem(256 * MB, 64 * MB, 2), 128 * MB);
        assert_eq!(
            auto_maintenance_work_mem(128 * MB, 64 * MB, 4),
            64 * MB,
            "at least 64MB"
        );
        assert_eq!(
            auto_maintenance_work_mem(8192 * MB, 64 * MB, 2),
            1024 * MB,
            "at most 1GB"
        );
        assert_eq!(
            auto_maintenance_work_mem(256 * MB, 512 * MB, 2),
            512 * MB,
            "never below the server's own"
        );
    }

    #[test]
    fn tables_load_whole_with_freeze_unless_one_dominates() {
        // Four equal split tables and two jobs: each table is one FREEZE unit.
        let m = with_tables(&[
            (1, &[50, 50]),
            (2, &[50, 50]),
            (3, &[50, 50]),
            (4, &[50, 50]),
        ]);
        let units = plan_units(&m, 2).unwrap();
        assert_eq!(units.len(), 4);
        assert!(units.iter().all(|u| u.freeze && u.streams.len() == 2));
        // One table holding most of the data: its slices load in parallel.
        let m = with_tables(&[(1, &[400, 400, 400]), (2, &[10])]);
        let units = plan_units(&m, 2).unwrap();
        assert_eq!(units.len(), 4);
        assert_eq!(units.iter().filter(|u| !u.freeze).count(), 3);
        assert!(units[3].freeze, "the small table still loads with FREEZE");
    }

    #[test]
    fn streams_of_a_table_group_together_wherever_they_are() {
        // Slices of table 1 around a stream of table 2 (chain tables and
        // large objects are numbered between slices): one unit per table,
        // its streams in manifest order, tables in order of first stream.
        let mut m = with_tables(&[(1, &[10, 10]), (2, &[10])]);
        m.body.streams.swap(1, 2);
        for (i, s) in m.body.streams.iter_mut().enumerate() {
            s.id = i as u32;
        }
        let units = plan_units(&m, 1).unwrap();
        let shape: Vec<Vec<usize>> = units
            .iter()
            .map(|u| u.streams.iter().map(|s| s.index).collect())
            .collect();
        assert_eq!(shape, [vec![0, 2], vec![1]]);
    }
}
