//! `prune --incomplete`: leftovers of failed backups go, running backups
//! stay, and a lease whose holder died on this host does not block.

use object_store::memory::InMemory;
use pgkeep::archive::layout;
use pgkeep::ops::prune::{prune_incomplete, PruneOptions};
use pgkeep::store::lease::{lease_path, LeaseInfo};
use pgkeep::store::Repo;
use std::sync::Arc;
use std::time::Duration;

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// The PID of a process that has exited (and been reaped).
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

async fn put_lease(repo: &Repo, id: &str, host: String, pid: u32) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let info = LeaseInfo {
        backup_id: id.into(),
        host,
        pid,
        started_at: "2026-12-07T00:00:00Z".into(),
        renewed_at: "2026-12-07T00:00:00Z".into(),
        expires_at: "in an hour".into(),
        expires_unix: now + 3600,
    };
    repo.put(&lease_path(id), serde_json::to_vec(&info).unwrap())
        .await
        .unwrap();
    repo.put(&layout::pack_path(id, "pack-00000"), vec![1; 10])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_holder_died_on_this_host_is_stale() {
    let repo = Repo::from_store(Arc::new(InMemory::new()), "memory");
    let crashed = "20260101T000000Z-aaaa";
    let alive = "20260101T000000Z-bbbb";
    let elsewhere = "20260101T000000Z-cccc";
    put_lease(&repo, crashed, host(), dead_pid()).await;
    put_lease(&repo, alive, host(), std::process::id()).await;
    // Another host's PID says nothing about this one's processes.
    put_lease(&repo, elsewhere, format!("{}-other", host()), dead_pid()).await;
    let opts = PruneOptions {
        dry_run: false,
        grace: Duration::ZERO,
    };
    let r = prune_incomplete(&repo, &opts).await.unwrap();
    let removed: Vec<&str> = r.removed.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(removed, [crashed], "{r:?}");
    let note = r.removed[0].note.as_deref().unwrap();
    assert!(
        note.contains("stale lease") && note.contains("is gone"),
        "{note}"
    );
    let kept: Vec<&str> = r.skipped.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(kept, [alive, elsewhere], "{r:?}");
    assert!(r.skipped.iter().all(|s| s.reason.starts_with("running")));
}
