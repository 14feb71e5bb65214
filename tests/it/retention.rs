//! Retention (`prune --keep-*`): the plan's rules, what is never removed
//! (newest, newest verified, pinned, held), crash-safe removal, on local and
//! S3 repositories; and the command on real backups taken at other clock
//! times (faketime).

use crate::cli::pgkeep_env;
use crate::pgkeep::db_with;
use crate::support::cluster;
use crate::support::s3::{s3_repo, MotoServer};
use pgkeep::archive::index::list_backup_ids;
use pgkeep::archive::layout;
use pgkeep::ops::expire::{expire, ExpireOptions};
use pgkeep::ops::pins::{pin, unpin};
use pgkeep::ops::retention::KeepPolicy;
use pgkeep::store::lease::Lease;
use pgkeep::store::{OpenMode, Repo};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// The id of a backup started at `day` (2026-11-DD or 2026-12-DD) 03:00 UTC.
fn id(month: u8, day: u8) -> String {
    format!("2026{month:02}{day:02}T030000Z-{month:02}{day:02}")
}

/// Forty daily backups, Nov 1 to Dec 10, each a manifest and a pack (the
/// plan reads only the listing, so the objects' contents do not matter),
/// one incomplete leftover, and verification records: Nov 15 verified OK,
/// the newest verified with a failure.
async fn fabricate(repo: &Repo) -> Vec<String> {
    let mut ids = Vec::new();
    for (m, days) in [(11u8, 1..=30u8), (12, 1..=10)] {
        for d in days {
            let id = id(m, d);
            repo.put(&layout::pack_path(&id, "pack-00000"), vec![7; 100])
                .await
                .unwrap();
            repo.put(&layout::manifest_path(&id), b"manifest".to_vec())
                .await
                .unwrap();
            ids.push(id);
        }
    }
    repo.put(
        &layout::pack_path("20261209T120000Z-dead", "pack-00000"),
        vec![1],
    )
    .await
    .unwrap();
    let record = |ok: bool| {
        serde_json::to_vec(&serde_json::json!({
            "verified_at": "2026-12-10T04:00:00Z", "ok": ok, "mode": "full", "failures": u64::from(!ok)
        }))
        .unwrap()
    };
    repo.put(&layout::verified_path(&id(11, 15)), record(true))
        .await
        .unwrap();
    repo.put(&layout::verified_path(&id(12, 10)), record(false))
        .await
        .unwrap();
    ids
}

fn opts(dry_run: bool) -> ExpireOptions {
    ExpireOptions {
        keep: KeepPolicy {
            keep_daily: Some(7),
            keep_monthly: Some(2),
            ..KeepPolicy::default()
        },
        timezone: jiff::tz::TimeZone::UTC,
        now: Some(time::macros::datetime!(2026-12-10 12:00 UTC)),
        dry_run,
    }
}

async fn retention_on(repo: Repo) {
    let ids = fabricate(&repo).await;
    pin(&repo, &id(11, 3), Some("audit".into())).await.unwrap();
    pin(&repo, &id(11, 4), None).await.unwrap();
    assert!(unpin(&repo, &id(11, 4)).await.unwrap());
    let hold = Lease::hold(&repo, &id(11, 5), "restore", Duration::from_secs(600))
        .await
        .unwrap();

    let dry = expire(&repo, &opts(true)).await.unwrap();
    assert_eq!(
        list_backup_ids(&repo).await.unwrap(),
        ids,
        "a dry run removes nothing"
    );
    let reasons: BTreeMap<&str, Vec<String>> = dry
        .backups
        .iter()
        .filter(|b| b.keep)
        .map(|b| (b.id.as_str(), b.reasons.clone()))
        .collect();
    let want_kept: Vec<String> = [
        id(11, 3),
        id(11, 5),
        id(11, 15),
        id(11, 30),
        id(12, 4),
        id(12, 5),
        id(12, 6),
        id(12, 7),
        id(12, 8),
        id(12, 9),
        id(12, 10),
    ]
    .into();
    assert_eq!(
        reasons.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
        want_kept
    );
    assert_eq!(
        reasons[id(12, 10).as_str()],
        ["daily 2026-12-10", "monthly 2026-12", "newest"]
    );
    assert_eq!(reasons[id(11, 30).as_str()], ["monthly 2026-11"]);
    assert_eq!(reasons[id(11, 15).as_str()], ["newest verified"]);
    assert_eq!(reasons[id(11, 3).as_str()], ["pinned: audit"]);
    assert!(
        reasons[id(11, 5).as_str()][0].starts_with("held by a restore"),
        "{reasons:?}"
    );
    assert_eq!((dry.kept, dry.removed), (11, 29));
    assert_eq!(dry.policy, "daily 7, monthly 2");

    let done = expire(&repo, &opts(false)).await.unwrap();
    assert_eq!(done.removed, 29);
    assert_eq!(list_backup_ids(&repo).await.unwrap(), want_kept);
    // Removed backups leave nothing; the leftover of a failed backup is
    // not retention's business.
    assert!(repo
        .list_meta(&layout::backup_prefix(&id(11, 10)))
        .await
        .unwrap()
        .is_empty());
    assert!(!repo
        .list_meta(&layout::backup_prefix("20261209T120000Z-dead"))
        .await
        .unwrap()
        .is_empty());
    hold.release().await;

    // An empty policy is refused, not taken as "keep nothing".
    let mut none = opts(true);
    none.keep = KeepPolicy::default();
    let e = expire(&repo, &none).await.unwrap_err();
    assert!(e.to_string().contains("no keep rule"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_a_local_repository() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open(
        dir.path().join("r").to_str().unwrap(),
        OpenMode::CreateIfMissing,
    )
    .unwrap();
    retention_on(repo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_an_s3_repository() {
    let moto = MotoServer::start();
    moto.create_bucket("retention");
    retention_on(s3_repo(&moto.endpoint(), "retention", "job")).await;
}

/// A half-done removal (manifest gone, objects left) is never listed as a
/// backup, and `prune --incomplete` finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_removal_is_finished_by_prune_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let repo = Repo::open(root.to_str().unwrap(), OpenMode::CreateIfMissing).unwrap();
    fabricate(&repo).await;
    // What a removal interrupted after its first step leaves behind.
    repo.delete(&layout::manifest_path(&id(11, 2)))
        .await
        .unwrap();
    assert!(!list_backup_ids(&repo).await.unwrap().contains(&id(11, 2)));
    let r = pgkeep::ops::prune::prune_incomplete(
        &repo,
        &pgkeep::ops::prune::PruneOptions {
            dry_run: false,
            grace: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    let removed: Vec<&str> = r.removed.iter().map(|x| x.id.as_str()).collect();
    assert!(removed.contains(&id(11, 2).as_str()), "{r:?}");
    assert!(repo
        .list_meta(&layout::backup_prefix(&id(11, 2)))
        .await
        .unwrap()
        .is_empty());
}

/// Real backups taken at other clock times (faketime), then `prune` as a
/// user runs it: dry run with reasons in JSON, then removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_command_on_backups_taken_over_days() {
    let c = cluster();
    let db = db_with(
        "ret_cli",
        "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g;",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    for day in [
        "2026-11-28",
        "2026-11-29",
        "2026-11-30",
        "2026-12-01",
        "2026-12-02",
    ] {
        let out = Command::new("faketime")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env_remove("DATABASE_URL")
            .arg(format!("{day} 03:00:00"))
            .arg(env!("CARGO_BIN_EXE_pgkeep"))
            .args(["backup", "--db", &c.url(&db), "--repo", repo_s])
            .output()
            .expect("faketime runs (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let r = Repo::open(repo_s, OpenMode::MustExist).unwrap();
    let ids = list_backup_ids(&r).await.unwrap();
    assert_eq!(ids.len(), 5);
    assert!(ids[0].starts_with("20261128T0300"), "{ids:?}");
    let prune = |extra: &[&str]| {
        let mut args = vec![
            "prune",
            "--repo",
            repo_s,
            "--keep-last",
            "2",
            "--keep-monthly",
            "-1",
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = pgkeep_env(&args, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let plan = prune(&["--dry-run"]);
    let kept: Vec<(&str, bool)> = plan["retention"]["backups"]
        .as_array()
        .unwrap()
        .iter()
        // faketime starts each clock at 03:00:00 and lets it run: the
        // start may be a second or two later on a loaded machine.
        .map(|b| {
            (
                &b["time"].as_str().unwrap()[..13],
                b["keep"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            ("2026-12-02T03", true),
            ("2026-12-01T03", true),
            ("2026-11-30T03", true),
            ("2026-11-29T03", false),
            ("2026-11-28T03", true),
        ]
    );
    // November's newest by monthly, and the oldest because monthly -1
    // always has count left.
    assert_eq!(
        plan["retention"]["backups"][4]["reasons"][0],
        "oldest monthly 2026-11"
    );
    assert_eq!(list_backup_ids(&r).await.unwrap().len(), 5);
    let done = prune(&[]);
    assert_eq!(done["retention"]["removed"], 1);
    let left = list_backup_ids(&r).await.unwrap();
    assert_eq!(left.len(), 4);
    assert!(!left.iter().any(|i| i.starts_with("20261129")));
    // The evaluation time: as of Nov 30, Dec's backups did not exist yet.
    let past = prune(&["--dry-run", "--now", "2026-11-30T12:00:00Z"]);
    assert_eq!(past["retention"]["backups"].as_array().unwrap().len(), 2);
}
