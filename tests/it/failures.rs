//! Bad input and failures: clear errors, non-zero exits, and never a
//! half-written backup that looks complete.

use crate::pgkeep::*;
use crate::support::{cluster, SUPERUSER_PASSWORD};
use pgkeep::archive::index::list_backup_ids;
use pgkeep::config::ConnSettings;
use pgkeep::Error;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_clear_error_without_the_password() {
    let c = cluster();
    assert_ne!(SUPERUSER_PASSWORD, "not-the-password-42");
    let url = format!(
        "postgres://{}:not-the-password-42@{}:{}/postgres",
        c.user(),
        c.host(),
        c.port()
    );
    let settings = ConnSettings::resolve_with(&url, &|_| None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = backup_with(
        &repo(dir.path()),
        &pgkeep::backup::BackupOptions::new(settings),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{msg}");
    assert!(msg.contains("password authentication failed"), "{msg}");
    assert!(!msg.contains("not-the-password-42"), "{msg}");
    assert!(list_backup_ids(&repo(dir.path())).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_a_clear_error() {
    // A port nothing listens on (bound then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = ConnSettings::resolve_with(
        &format!("postgres://u@127.0.0.1:{port}/db?connect_timeout=2"),
        &|_| None,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = backup_with(
        &repo(dir.path()),
        &pgkeep::backup::BackupOptions::new(settings),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_repository_and_unknown_backup() {
    let missing = std::env::temp_dir().join(format!("pgkeep-missing-{}", std::process::id()));
    let err = pgkeep::store::Repo::open(
        missing.to_str().unwrap(),
        pgkeep::store::OpenMode::MustExist,
    )
    .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let dst = cluster().create_db("fail_unknown").await;
    let err = restore_with(&repo, "20990101T000000Z-0000", &restore_options(&dst))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BackupNotFound(_)), "{err}");
    let err = restore_with(&repo, "latest", &restore_options(&dst))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BackupNotFound(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_table_fails_the_backup_early_and_leaves_no_backup() {
    let c = cluster();
    let src = db_with(
        "fail_lock",
        "CREATE TABLE busy (id int); INSERT INTO busy VALUES (1);",
    )
    .await;
    // Another session holds ACCESS EXCLUSIVE (as a running ALTER TABLE would).
    let holder = c.client(&src).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE;")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let mut opts = small_backup_options(&src);
    opts.lock_timeout = Duration::from_millis(300);
    let err = backup_with(&repo, &opts).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains("busy"), "{err}");
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert!(list_backup_ids(&repo).await.unwrap().is_empty());
    assert!(
        files_under(dir.path()).is_empty(),
        "a failed backup leaves no objects: {:?}",
        files_under(dir.path())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_pack_fails_restore_before_commit() {
    let c = cluster();
    let src = db_with(
        "fail_corrupt_src",
        "CREATE TABLE t (id int, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let mut opts = small_backup_options(&src);
    opts.split_bytes = u64::MAX; // one stream: the whole table is one transaction
    let header = backup_with(&repo, &opts).await.unwrap();
    let pack = files_under(dir.path())
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/data/"))
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&pack, bytes).unwrap();
    let dst = c.create_db("fail_corrupt_dst").await;
    let err = restore_with(&repo, &header.id, &restore_options(&dst))
        .await
        .unwrap_err();
    assert!(matches!(err.headline(), Error::Integrity { .. }), "{err}");
    let n = count_rows(&dst, "t").await;
    assert_eq!(n, 0, "no row of a corrupted stream may be committed");
}
