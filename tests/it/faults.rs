//! Faults during a backup: a disk that fills up mid-upload, a manifest
//! write that fails, and DDL queued behind the backup's locks. Each must end
//! in a clear error, no manifest, no leftover object or open upload — and
//! never a wait that cannot end.

use crate::pgkeep::*;
use crate::support::faulty_store::{FaultyStore, Gate};
use crate::support::{assert_same_database, cluster};
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use pgkeep::archive::index::list_backup_ids;
use pgkeep::backup::BackupOptions;
use pgkeep::store::Repo;
use pgkeep::Error;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

/// A database with `big` (`rows` rows of ~73 bytes of COPY text each) and
/// a two-row `victim`.
async fn source(prefix: &str, rows: u32) -> String {
    let c = cluster();
    let db = c.create_db(prefix).await;
    c.client(&db)
        .await
        .batch_execute(&format!(
            "CREATE TABLE big (id int PRIMARY KEY, a text, b text);
             INSERT INTO big SELECT g, md5(g::text), md5((-g)::text) FROM generate_series(1, {rows}) g;
             CREATE TABLE victim (id int); INSERT INTO victim VALUES (1), (2);
             ANALYZE;"
        ))
        .await
        .unwrap();
    db
}

/// Backup options with predictable upload sizes: stored frames (no
/// compression) and a budget that gives ~6 MiB parts, one in flight per job.
fn sized_options(db: &str, jobs: usize) -> BackupOptions {
    let mut o = BackupOptions::new(settings(db));
    o.jobs = jobs;
    o.memory = 12 * MIB * jobs;
    o.frame_size = Some(256 * 1024);
    o.compress_level = 0;
    o.split_bytes = 4 << 20;
    o
}

fn local_store(dir: &Path) -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap())
}

/// Every object the inner store lists.
async fn objects(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

/// The `io::ErrorKind` somewhere in an error's source chain.
fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = e.source();
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_mid_backup_is_a_store_error_and_leaves_nothing() {
    let src = source("fault_enospc", 250_000).await; // ~18 MB of COPY text
    let dir = tempfile::tempdir().unwrap();
    let inner = local_store(dir.path());
    // Room for one ~6 MiB part, not two: the second part (of either job)
    // hits ENOSPC while the COPY is still running.
    let faulty = Arc::new(FaultyStore::disk_full_after(inner.clone(), 8 * MIB as u64));
    let stats = faulty.stats.clone();
    let repo = Repo::from_store(faulty, "faulty");

    let err = backup_with(&repo, &sized_options(&src, 2))
        .await
        .unwrap_err();
    let msg = err.to_string();
    // Both workers may hit the full disk: the first failure leads.
    let err = err.headline();
    assert!(matches!(err, Error::Store { .. }), "{msg}");
    assert!(msg.contains("No space left on device"), "{msg}");
    assert!(msg.contains("pack-"), "the message names the object: {msg}");
    assert_eq!(
        io_kind(err),
        Some(std::io::ErrorKind::StorageFull),
        "the io::Error stays in the source chain: {msg}"
    );
    assert!(
        stats.written.load(Ordering::SeqCst) > 0,
        "the disk filled up mid-backup, not at the first write"
    );
    assert!(stats.refused.load(Ordering::SeqCst) > 0);

    // Nothing is left: no open upload (checked the moment backup returns),
    // no manifest, no object, not even a staging file on disk.
    assert_eq!(
        stats.uploads_open(),
        0,
        "every multipart upload is completed or aborted before backup returns"
    );
    assert!(list_backup_ids(&repo).await.unwrap().is_empty());
    assert_eq!(objects(&inner).await, Vec::<String>::new());
    assert_eq!(files_under(dir.path()), Vec::<std::path::PathBuf>::new());

    // Once there is room again, the same repository takes a backup.
    let repo = Repo::from_store(inner.clone(), "local");
    let header = backup_with(&repo, &sized_options(&src, 2)).await.unwrap();
    assert_eq!(list_backup_ids(&repo).await.unwrap(), vec![header.id]);
    assert_eq!(header.rows, 250_002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_manifest_write_leaves_no_backup() {
    let src = source("fault_manifest", 5_000).await;
    let dir = tempfile::tempdir().unwrap();
    let inner = local_store(dir.path());
    let faulty = Arc::new(FaultyStore::failing_put(inner.clone(), "/manifest"));
    let stats = faulty.stats.clone();
    let repo = Repo::from_store(faulty, "faulty");

    let err = backup_with(&repo, &small_backup_options(&src))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Store { .. }), "{msg}");
    assert!(
        msg.contains("writing backups/") && msg.contains("/manifest"),
        "{msg}"
    );
    assert!(msg.contains("No space left on device"), "{msg}");
    // The packs were complete when the manifest failed; they are removed.
    assert!(stats.uploads_completed.load(Ordering::SeqCst) > 0);
    assert_eq!(stats.uploads_open(), 0);
    assert!(list_backup_ids(&repo).await.unwrap().is_empty());
    assert_eq!(objects(&inner).await, Vec::<String>::new());
    assert_eq!(files_under(dir.path()), Vec::<std::path::PathBuf>::new());
}

/// Waits (bounded) until some session waits for ACCESS EXCLUSIVE on `table`.
async fn wait_for_queued_exclusive_lock(db: &str, table: &str) {
    let client = cluster().client(db).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE relation = $1::text::regclass \
                 AND mode = 'AccessExclusiveLock' AND NOT granted",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no session queued for ACCESS EXCLUSIVE on {table} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_queued_after_the_snapshot_fails_the_backup_without_deadlock() {
    let c = cluster();
    // ~14 MB: more than two parts. With one upload in flight, the worker
    // blocks before the frame that completes the second part while the
    // first is held at the gate, so it is still copying `big` (and has not
    // locked `victim`) when the ALTER queues. (At ~9 MB the whole table fit
    // in the part being filled: the worker could reach `victim` first.)
    let src = source("fault_ddl", 200_000).await;
    let dir = tempfile::tempdir().unwrap();
    let inner = local_store(dir.path());
    let gate = Gate::new();
    let gated = Arc::new(FaultyStore::gated(inner.clone(), gate.clone()));
    let stats = gated.stats.clone();
    let repo = Repo::from_store(gated, "gated");

    // One job: `big` (largest first) is copied, then `victim`. The first
    // part of `big` is held at the gate, so the backup is paused mid-COPY
    // with the leader's ACCESS SHARE locks on both tables.
    let mut opts = sized_options(&src, 1);
    opts.split_bytes = u64::MAX;
    let backup = tokio::spawn({
        let repo = repo.clone();
        async move { backup_with(&repo, &opts).await }
    });
    tokio::time::timeout(Duration::from_secs(60), gate.wait_for_a_held_part())
        .await
        .expect("the backup reaches its first part upload");

    // An ALTER TABLE queues for ACCESS EXCLUSIVE behind the leader's lock.
    let alter = tokio::spawn({
        let client = c.client(&src).await;
        async move {
            client
                .batch_execute("ALTER TABLE victim ADD COLUMN added int")
                .await
        }
    });
    wait_for_queued_exclusive_lock(&src, "victim").await;

    // The worker's LOCK ... NOWAIT on `victim` now conflicts with the queued
    // request: the backup fails instead of queueing behind the ALTER (which
    // waits for the leader: a wait that would never end).
    gate.open();
    let err = tokio::time::timeout(Duration::from_secs(60), backup)
        .await
        .expect("the backup ends")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains("public.victim"), "{err}");

    // The leader's locks are gone with the failed backup: the ALTER completes.
    tokio::time::timeout(Duration::from_secs(60), alter)
        .await
        .expect("the ALTER completes once the backup has failed")
        .unwrap()
        .expect("ALTER TABLE succeeds");
    let n: i64 = c
        .client(&src)
        .await
        .query_one(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_name = 'victim' AND column_name = 'added'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    assert_eq!(stats.uploads_open(), 0);
    assert!(list_backup_ids(&repo).await.unwrap().is_empty());
    assert_eq!(objects(&inner).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restore_over_a_previous_restore_is_identical() {
    // The kitchen sink has ALTER DEFAULT PRIVILEGES (global and per schema):
    // `--clean` must reset them too, or objects created by the second
    // restore (extension functions, ...) get the first restore's defaults.
    let c = cluster();
    let src = c.create_db("fault_reclean_src").await;
    c.load_kitchen_sink(&src);
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    backup_with(&repo, &small_backup_options(&src))
        .await
        .unwrap();
    let name = format!("fault_reclean_dst_{}", std::process::id());
    c.client("postgres")
        .await
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
        .await
        .unwrap();
    let mut opts = restore_options(&name);
    opts.create = true;
    restore_with(&repo, "latest", &opts).await.unwrap();
    assert_same_database(c, &src, &name).await;

    let mut opts = restore_options(&name);
    opts.clean = true;
    restore_with(&repo, "latest", &opts)
        .await
        .expect("restore --clean over the previous restore");
    assert_same_database(c, &src, &name).await;
}
