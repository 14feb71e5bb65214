//! The shared snapshot: a backup taken while a writer moves value between
//! two tables must restore a state where the invariant (total) holds.

use crate::pgkeep::*;
use crate::support::cluster;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_backup_sees_one_snapshot() {
    let c = cluster();
    let src = c.create_db("snap_src").await;
    let client = c.client(&src).await;
    client
        .batch_execute(
            "CREATE TABLE a (id int PRIMARY KEY, balance bigint NOT NULL, pad text);
             CREATE TABLE b (id int PRIMARY KEY, balance bigint NOT NULL, pad text);
             INSERT INTO a SELECT g, 1000, repeat('x', 200) FROM generate_series(1, 20000) g;
             INSERT INTO b SELECT g, 1000, repeat('y', 200) FROM generate_series(1, 20000) g;",
        )
        .await
        .unwrap();
    // The writer moves 1 unit from a to b in each transaction, nonstop.
    let stop = Arc::new(AtomicBool::new(false));
    let moved = Arc::new(AtomicU64::new(0));
    let writer = {
        let stop = stop.clone();
        let moved = moved.clone();
        let w = c.client(&src).await;
        tokio::spawn(async move {
            let mut i = 0i32;
            while !stop.load(Ordering::Relaxed) {
                let id = (i % 20000) + 1;
                w.batch_execute(&format!(
                    "BEGIN; UPDATE a SET balance = balance - 1 WHERE id = {id}; UPDATE b SET balance = balance + 1 WHERE id = {id}; COMMIT;"
                ))
                .await
                .unwrap();
                moved.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    // Let the writer get going before the snapshot is taken.
    while moved.load(Ordering::Relaxed) < 50 {
        tokio::task::yield_now().await;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let mut opts = small_backup_options(&src);
    opts.jobs = 2;
    // Slices of each table interleave across workers: plenty of time between
    // the first and last COPY for the writer to commit in between.
    opts.split_bytes = 512 * 1024;
    let header = backup_with(&repo, &opts).await.expect("backup under load");
    let during = moved.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        during > 50,
        "the writer must have been committing during the backup"
    );

    let dst = c.create_db("snap_dst").await;
    restore_with(&repo, &header.id, &restore_options(&dst))
        .await
        .unwrap();
    let r = c.client(&dst).await;
    let row = r
        .query_one("SELECT (SELECT sum(balance) FROM a)::bigint + (SELECT sum(balance) FROM b)::bigint, (SELECT count(*) FROM a), (SELECT count(*) FROM b)", &[])
        .await
        .unwrap();
    let total: i64 = row.get(0);
    assert_eq!(
        total,
        40_000 * 1000,
        "a + b must be invariant in the restored snapshot"
    );
    assert_eq!(row.get::<_, i64>(1), 20000);
    assert_eq!(row.get::<_, i64>(2), 20000);
}
