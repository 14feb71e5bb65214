//! `prune --incomplete`: leftovers of failed backups go, running backups
//! stay (their lease), a lease whose holder died on this host does not
//! block, and the command reports in JSON.

use object_store::memory::InMemory;
use pgkeep::archive::layout;
use pgkeep::ops::prune::{prune_incomplete, PruneOptions};
use pgkeep::store::lease::{lease_path, Lease, LeaseInfo};
use pgkeep::store::{OpenMode, Repo, RepoOptions};
use std::process::Command;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_never_removes_a_running_backup() {
    let repo = Repo::from_store(Arc::new(InMemory::new()), "memory");
    let running = "20260101T000000Z-aaaa";
    let stale = "20260101T000000Z-bbbb";
    let orphan = "20260101T000000Z-cccc";
    let done = "20260101T000000Z-dddd";
    let _lease = Lease::acquire(&repo, running, Duration::from_secs(600))
        .await
        .unwrap();
    let old = Lease::acquire(&repo, stale, Duration::from_secs(4))
        .await
        .unwrap();
    old.abandon().await;
    for id in [running, stale, orphan, done] {
        repo.put(&layout::pack_path(id, "pack-00000"), vec![1; 10])
            .await
            .unwrap();
    }
    repo.put(&layout::manifest_path(done), b"m".to_vec())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let r = prune_incomplete(
        &repo,
        &PruneOptions {
            dry_run: false,
            grace: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    let removed: Vec<&str> = r.removed.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(removed, vec![stale, orphan]);
    assert_eq!(r.complete, 1);
    assert_eq!(r.skipped.len(), 1);
    assert!(r.skipped[0].reason.starts_with("running"), "{r:?}");
    assert!(repo
        .exists(&layout::pack_path(running, "pack-00000"))
        .await
        .unwrap());
    assert!(repo
        .exists(&layout::pack_path(done, "pack-00000"))
        .await
        .unwrap());
    // With the default grace, a prefix just written without a lease is kept.
    repo.put(&layout::pack_path(orphan, "pack-00000"), vec![1; 10])
        .await
        .unwrap();
    let r = prune_incomplete(&repo, &PruneOptions::default())
        .await
        .unwrap();
    assert!(r.removed.is_empty(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_command_reports_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open(dir.path().to_str().unwrap(), OpenMode::CreateIfMissing).unwrap();
    let id = "20250101T000000Z-0abc";
    repo.put(&layout::pack_path(id, "pack-00000"), vec![0; 100])
        .await
        .unwrap();
    // Backdate it past the grace period.
    let f = dir.path().join(format!("backups/{id}/data/pack-00000"));
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let run = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_pgkeep"))
            .args([
                "prune",
                "--incomplete",
                "--json",
                "--repo",
                dir.path().to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let dry = run(&["--dry-run"]);
    assert_eq!(dry["incomplete"]["dry_run"], true);
    assert_eq!(dry["incomplete"]["removed"][0]["id"], id);
    assert_eq!(dry["incomplete"]["removed"][0]["bytes"], 100);
    assert!(f.exists());
    let done = run(&[]);
    assert_eq!(done["incomplete"]["removed"][0]["objects"], 1);
    assert!(!f.exists());
    let _ = RepoOptions::default();
}
