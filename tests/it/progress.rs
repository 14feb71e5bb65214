//! Restore progress: rows advance as frames load (not `0 rows` until the
//! end), and post-data reports every index and constraint build as it
//! starts and finishes.

use crate::pgkeep::*;
use crate::support::cluster;
use pgkeep::progress::Progress;
use pgkeep::restore::restore;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Recorder {
    rows_advanced: AtomicU64,
    steps: Mutex<Vec<(usize, usize, Option<String>)>>,
}

impl Progress for Recorder {
    fn begin(&self, _: u64) {}
    fn stream_started(&self, _: u32, _: &str, _: u64) {}
    fn stream_advanced(&self, _: u32, _: u64, rows: u64) {
        self.rows_advanced.fetch_add(rows, Ordering::Relaxed);
    }
    fn stream_finished(&self, _: u32, _: u64, _: u64) {}
    fn end(&self) {}
    fn step(&self, phase: &'static str, done: usize, total: usize, current: Option<&str>) {
        assert_eq!(phase, "post-data");
        self.steps
            .lock()
            .unwrap()
            .push((done, total, current.map(String::from)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_reports_rows_and_post_data_steps() {
    let c = cluster();
    let src = c.create_db("progress_src").await;
    c.load_pagila(&src);
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let header = backup_with(&repo, &small_backup_options(&src))
        .await
        .unwrap();
    let dst = c.create_db("progress_dst").await;
    let rec = Arc::new(Recorder::default());
    restore(
        &repo,
        &header.id,
        &restore_options(&dst),
        rec.clone(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(rec.rows_advanced.load(Ordering::Relaxed), header.rows);
    let steps = rec.steps.lock().unwrap();
    let total = steps[0].1;
    assert!(
        total > 10,
        "pagila has dozens of post-data entries: {total}"
    );
    let started: Vec<&String> = steps.iter().filter_map(|s| s.2.as_ref()).collect();
    assert_eq!(started.len(), total, "every entry reported as it starts");
    assert!(started.iter().any(|s| s.contains("Index")), "{started:?}");
    let finished = steps.iter().filter(|s| s.2.is_none()).count();
    assert_eq!(finished, total);
    assert_eq!(steps.last().unwrap().0, total);
}
