//! S3 repositories against a real S3 API server (moto on loopback): round
//! trips with minimum-size parts, interrupted and unreachable backups,
//! `latest` in few requests, repository options and environment options,
//! and the storage conformance suite.

use crate::pgkeep::*;
use crate::support::s3::{
    base64, s3_options, s3_repo, CutProxy, MotoServer, Recording, RecordingStore,
};
use crate::support::{assert_same_database, cluster};
use object_store::path::Path;
use pgkeep::archive::index::{list_backup_ids, read_manifest, resolve_backup_id};
use pgkeep::archive::layout;
use pgkeep::ops::prune::{prune_incomplete, PruneOptions};
use pgkeep::store::lease;
use pgkeep::store::{OpenMode, Repo};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::storage_conformance::PART;

/// ~25 MB of plain COPY text in one table, so packs span several parts.
pub(crate) const BULK: &str = "CREATE TABLE public.bulk AS SELECT g AS id, md5(g::text) || repeat('x', 200) AS pad FROM generate_series(1, 100000) g;";

pub(crate) fn s3_backup_options(db: &str) -> pgkeep::backup::BackupOptions {
    let mut o = small_backup_options(db);
    o.jobs = 2;
    o.part_size = Some(PART);
    o.compress_level = 0;
    o
}

/// Every part but the last of each upload is exactly `PART` bytes, and at
/// least one upload had several parts.
fn assert_equal_parts(log: &Recording) {
    let parts = log.parts.lock().unwrap();
    let mut multi = 0;
    for (path, sizes) in parts.iter() {
        if let Some((_, rest)) = sizes.split_last() {
            assert!(
                rest.iter().all(|s| *s == PART),
                "{path}: non-final parts differ: {sizes:?}"
            );
            if sizes.len() > 1 {
                multi += 1;
            }
        }
    }
    assert!(multi > 0, "no upload had more than one part: {parts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_round_trips_pagila_and_kitchen_sink_with_minimum_parts() {
    let moto = MotoServer::start();
    moto.create_bucket("rt-bucket");
    // Through a proxy that records request heads (never cut here).
    let proxy = CutProxy::start(moto.port).await;
    let log = Arc::new(Recording::default());
    let repo = s3_repo(&proxy.endpoint(), "rt-bucket", "team/app")
        .map_store(|s| RecordingStore::wrap(s, log.clone()));
    assert_eq!(repo.display(), "s3://rt-bucket/team/app");
    let c = cluster();
    type Loader = fn(&str);
    let fixtures: [(&str, Loader); 2] = [
        ("s3_pagila", |db| cluster().load_pagila(db)),
        ("s3_sink", |db| cluster().load_kitchen_sink(db)),
    ];
    for (prefix, load) in fixtures {
        let src = c.create_db(&format!("{prefix}_src")).await;
        load(&src);
        c.client(&src).await.batch_execute(BULK).await.unwrap();
        let header = backup_with(&repo, &s3_backup_options(&src))
            .await
            .expect("backup to S3 succeeds");
        let m = read_manifest(&repo, &header.id, &pgkeep::keys::Unlock::default())
            .await
            .unwrap();
        // verify reads every pack once, front to back, with ranged GETs
        // (whose Content-Range gives the object's size): every byte of
        // every pack exactly once. What S3 holds is what pgkeep hashed
        // while uploading.
        let seen = proxy.ranged_requests().len();
        let report = verify_plain(&repo, &header.id).await;
        assert!(report.ok && report.rows == header.rows, "{report:?}");
        let ranged = proxy.ranged_requests().split_off(seen);
        for p in &m.body.packs {
            let get = format!(
                "GET /rt-bucket/team/app/{} ",
                layout::pack_path(&header.id, &p.name)
            );
            let mut reads: Vec<(u64, u64)> = ranged
                .iter()
                .filter(|(line, _)| line.starts_with(&get))
                .map(|(_, r)| {
                    let (a, b) = r.trim_start_matches("bytes=").split_once('-').unwrap();
                    (a.parse().unwrap(), b.parse::<u64>().unwrap() + 1)
                })
                .collect();
            reads.sort_unstable();
            let mut pos = 0;
            for (a, b) in reads {
                assert_eq!(a, pos, "{}: bytes read twice or skipped", p.name);
                pos = b;
            }
            assert_eq!(pos, p.size, "{}: read to its end", p.name);
        }
        if prefix == "s3_pagila" {
            damage_outside_frame_payloads(&repo, &m).await;
        }
        assert!(
            m.body.packs.iter().any(|p| p.size > PART as u64),
            "a pack spans several parts: {:?}",
            m.body.packs.iter().map(|p| p.size).collect::<Vec<_>>()
        );
        // No lease is left behind by a complete backup.
        assert!(lease::read(&repo, &header.id).await.unwrap().is_none());
        let dst = c.create_db(&format!("{prefix}_dst")).await;
        let summary = restore_with(&repo, &header.id, &restore_options(&dst))
            .await
            .expect("restore from S3 succeeds");
        assert_eq!(summary.rows, header.rows);
        assert_same_database(c, &src, &dst).await;
    }
    assert_equal_parts(&log);
    let ids = list_backup_ids(&repo).await.unwrap();
    assert_eq!(ids.len(), 2);
    // Single puts (lease, manifest) carry x-amz-checksum-sha256 of their
    // body; multipart parts and completions carry none (object_store #709).
    let manifest = repo.get(&layout::manifest_path(&ids[0])).await.unwrap();
    let sum = base64(&<sha2::Sha256 as sha2::Digest>::digest(&manifest));
    let requests = proxy.requests();
    let manifest_put = format!("PUT /rt-bucket/team/app/backups/{}/manifest ", ids[0]);
    assert!(
        requests
            .iter()
            .any(|(l, c)| l.starts_with(&manifest_put) && c.as_deref() == Some(sum.as_str())),
        "manifest put with its checksum: {requests:?}"
    );
    for (line, checksum) in &requests {
        if line.contains("partNumber=") || line.contains("uploadId=") || line.contains("?uploads") {
            assert!(
                checksum.is_none(),
                "multipart request with a checksum: {line}"
            );
        }
    }
    assert!(
        requests.iter().any(|(l, _)| l.contains("partNumber=2")),
        "several parts"
    );
    assert_eq!(moto.open_uploads("rt-bucket"), 0, "every upload completed");
    // Lease + manifest of each backup were create-only puts.
    assert!(log.create_only_puts.load(Ordering::SeqCst) >= 4);
    // Nothing of the repository is outside its prefix.
    let whole_bucket = s3_repo(&moto.endpoint(), "rt-bucket", "");
    let all = whole_bucket.list_all(&Path::from("")).await.unwrap();
    assert!(
        all.iter()
            .all(|(p, _)| p.as_ref().starts_with("team/app/backups/")),
        "{all:?}"
    );
}

/// Damage outside the frames' payloads, made through the store: bytes
/// appended to a pack (its size: the pack object is reported) and the
/// row-boundary flag of an unencrypted frame flipped (the frame's hash
/// covers its header: that frame's stream is reported). verify reports
/// that and nothing else, then the pack is put back.
async fn damage_outside_frame_payloads(repo: &Repo, m: &pgkeep::archive::Manifest) {
    let name = &m.body.packs[0].name;
    let pack = layout::pack_path(&m.header.id, name);
    let pristine = repo.get(&pack).await.unwrap();
    let mut flipped = pristine.to_vec();
    flipped[(first_frame_offset(m, 0) + FRAME_FLAGS_OFFSET) as usize] ^= 1;
    let appended = [&pristine[..], b"trailing bytes"].concat();
    for (what, bytes, in_a_frame, expect) in [
        ("bytes appended", appended, false, "(bytes appended)"),
        (
            "row-boundary flag flipped",
            flipped,
            true,
            "SHA-256 mismatch",
        ),
    ] {
        repo.put(&pack, bytes).await.unwrap();
        let r = verify_plain(repo, &m.header.id).await;
        assert!(!r.ok, "{what}: not detected");
        assert_eq!(r.failures.len(), 1, "{what}: {r:?}");
        let f = &r.failures[0];
        assert!(
            f.stream.is_some() == in_a_frame
                && f.error.contains(name.as_str())
                && f.error.contains(expect),
            "{what}: {r:?}"
        );
    }
    repo.put(&pack, pristine.to_vec()).await.unwrap();
    assert!(verify_plain(repo, &m.header.id).await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_s3_backup_aborts_its_uploads_and_leaves_nothing() {
    let moto = MotoServer::start();
    moto.create_bucket("intr");
    let log = Arc::new(Recording::default());
    let repo =
        s3_repo(&moto.endpoint(), "intr", "r").map_store(|s| RecordingStore::wrap(s, log.clone()));
    let c = cluster();
    let db = c.create_db("s3_intr").await;
    c.client(&db).await.batch_execute(BULK).await.unwrap();
    c.client(&db)
        .await
        .batch_execute("INSERT INTO bulk SELECT * FROM bulk; INSERT INTO bulk SELECT * FROM bulk;")
        .await
        .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let opts = s3_backup_options(&db);
    let task = {
        let (repo, cancel) = (repo.clone(), cancel.clone());
        tokio::spawn(async move {
            pgkeep::backup::backup(&repo, &opts, Arc::new(pgkeep::progress::Silent), cancel).await
        })
    };
    // SIGINT once a part of some pack is on its way.
    let t0 = Instant::now();
    while !log.parts.lock().unwrap().values().any(|p| !p.is_empty()) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no part was uploaded"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cancel.cancel();
    let err = task.await.unwrap().expect_err("interrupted");
    assert!(matches!(err, pgkeep::Error::Interrupted(_)), "{err}");
    assert!(log.uploads_aborted.load(Ordering::SeqCst) > 0);
    assert_eq!(
        moto.open_uploads("intr"),
        0,
        "every multipart upload aborted"
    );
    let left = repo.list_all(&layout::backups_prefix()).await.unwrap();
    assert!(left.is_empty(), "nothing left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_s3_fails_the_backup_and_prune_leaves_only_complete_backups() {
    let moto = MotoServer::start();
    moto.create_bucket("cut");
    let proxy = CutProxy::start(moto.port).await;
    let mut options = s3_options(&proxy.endpoint());
    options.set("secret_access_key", "sekrit-value-42").unwrap();
    let repo = Repo::open_with("s3://cut/r", &options, PART, OpenMode::MustExist).unwrap();
    let c = cluster();

    // A complete backup first: it must survive everything below.
    let small = db_with(
        "s3cut_small",
        "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g;",
    )
    .await;
    let complete = backup_with(&repo, &s3_backup_options(&small))
        .await
        .expect("first backup succeeds");

    // Then a big one whose store disappears after ~40 MiB went upstream:
    // packs rotate at 6 MiB, so some are complete when the cut comes.
    let big = c.create_db("s3cut_big").await;
    c.client(&big).await.batch_execute(BULK).await.unwrap();
    c.client(&big)
        .await
        .batch_execute("INSERT INTO bulk SELECT * FROM bulk; INSERT INTO bulk SELECT * FROM bulk;")
        .await
        .unwrap();
    let mut o = s3_backup_options(&big);
    o.pack_bytes = 6 << 20;
    o.lease_ttl = Duration::from_secs(4);
    proxy.cut_after(40 << 20);
    let t0 = Instant::now();
    let err = backup_with(&repo, &o).await.expect_err("backup fails");
    let msg = err.to_string();
    assert!(proxy.is_cut());
    // Both workers may hit the cut: the first failure leads.
    assert!(
        matches!(err.headline(), pgkeep::Error::StoreUnavailable { .. }),
        "unreachable store reported as such: {msg}"
    );
    assert!(
        msg.contains("s3://cut/r") && msg.contains("retried"),
        "{msg}"
    );
    assert!(
        !msg.contains("sekrit") && !msg.contains("127.0.0.1"),
        "{msg}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(120),
        "fails in bounded time"
    );

    // The server comes back (with its state: only the network was cut).
    proxy.restore();
    let ids = repo.list_dirs(&layout::backups_prefix()).await.unwrap();
    let failed: Vec<&String> = ids.iter().filter(|i| **i != complete.id).collect();
    assert_eq!(failed.len(), 1, "the failed backup left objects: {ids:?}");
    let failed = failed[0].clone();
    assert!(
        !repo.exists(&layout::manifest_path(&failed)).await.unwrap(),
        "no manifest"
    );
    assert_eq!(
        list_backup_ids(&repo).await.unwrap(),
        vec![complete.id.clone()]
    );
    let leftovers = repo
        .list_all(&layout::backup_prefix(&failed))
        .await
        .unwrap();
    assert!(
        leftovers
            .iter()
            .any(|(p, _)| p.as_ref().contains("/data/pack-")),
        "completed packs are left over: {leftovers:?}"
    );

    // While its lease is live, prune keeps it...
    let strict = PruneOptions {
        dry_run: false,
        grace: Duration::ZERO,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Some(l) = lease::read(&repo, &failed).await.unwrap() {
        if l.expires_unix > now + 1 {
            let r = prune_incomplete(&repo, &strict).await.unwrap();
            assert!(r.removed.is_empty() && r.skipped.len() == 1, "{r:?}");
            assert!(r.skipped[0].reason.starts_with("running"), "{r:?}");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    // ...a dry run lists it and removes nothing...
    let dry = prune_incomplete(
        &repo,
        &PruneOptions {
            dry_run: true,
            grace: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    assert_eq!(dry.removed.len(), 1, "{dry:?}");
    assert_eq!(dry.removed[0].id, failed);
    assert!(
        repo.list_all(&layout::backup_prefix(&failed))
            .await
            .unwrap()
            .len()
            == leftovers.len()
    );
    // ...and then it goes, and only the complete backup is left.
    let r = prune_incomplete(&repo, &strict).await.unwrap();
    assert_eq!(r.complete, 1);
    assert_eq!(r.removed.len(), 1, "{r:?}");
    let all = repo.list_all(&layout::backups_prefix()).await.unwrap();
    assert!(
        all.iter()
            .all(|(p, _)| p.as_ref().starts_with(&format!("backups/{}/", complete.id))),
        "{all:?}"
    );
    let dst = c.create_db("s3cut_dst").await;
    restore_with(&repo, &complete.id, &restore_options(&dst))
        .await
        .expect("the complete backup still restores");
    assert_eq!(count_rows(&dst, "t").await, 1000);
}

/// `latest` costs one listing and a HEAD or two however long the history:
/// backup prefixes are checked newest first (a newer incomplete backup is
/// skipped). `list` still finds every complete backup, oldest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_is_resolved_without_a_head_per_backup() {
    let moto = MotoServer::start();
    moto.create_bucket("hist");
    let repo = s3_repo(&moto.endpoint(), "hist", "app");
    let ids: Vec<String> = (1..=20)
        .map(|day| format!("202611{day:02}T000000Z-{day:04x}"))
        .collect();
    for id in &ids {
        repo.put(&layout::manifest_path(id), b"m".to_vec())
            .await
            .unwrap();
    }
    // A newer backup that has not finished: data, no manifest.
    let running = "20261130T000000Z-00ff";
    repo.put(&layout::pack_path(running, "pack-00000"), b"p".to_vec())
        .await
        .unwrap();

    let before = moto.request_counts();
    let latest = resolve_backup_id(&repo, "latest").await.unwrap();
    let after = moto.request_counts();
    assert_eq!(latest, ids[ids.len() - 1]);
    let delta = |m: &str| after.get(m).unwrap_or(&0) - before.get(m).unwrap_or(&0);
    assert_eq!(delta("HEAD"), 2, "{before:?} -> {after:?}");
    assert_eq!(delta("GET"), 1, "one listing: {before:?} -> {after:?}");

    assert_eq!(list_backup_ids(&repo).await.unwrap(), ids);
    let empty = s3_repo(&moto.endpoint(), "hist", "none");
    assert!(matches!(
        resolve_backup_id(&empty, "latest").await,
        Err(pgkeep::Error::BackupNotFound(_))
    ));
}

#[test]
fn repository_options_are_checked_and_secrets_never_printed() {
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_pgkeep"))
            .args(args)
            .output()
            .expect("pgkeep runs");
        (
            o.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let (code, out) = run(&[
        "list",
        "--repo",
        "s3://b/x",
        "--repo-option",
        "regoin=eu-west-1",
    ]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("did you mean region") && out.contains("valid options: endpoint"),
        "{out}"
    );
    let (code, out) = run(&["list", "--repo", "/tmp/x", "--repo-option", "region=eu"]);
    assert_eq!(code, Some(2), "{out}");
    // An endpoint nobody listens on: a clear error, no secret, no endpoint.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let args = [
        "list",
        "--repo",
        "s3://bucket/prefix",
        "--repo-option",
        "endpoint=",
        "--repo-option",
        "allow_http=true",
        "--repo-option",
        "region=us-east-1",
        "--repo-option",
        "access_key_id=AKIAEXAMPLEKEY",
        "--repo-option",
        "secret_access_key=hunter2-secret",
        "--repo-option",
        "max_retries=1",
        "--repo-option",
        "retry_timeout=2s",
    ];
    let endpoint_arg = format!("endpoint=http://127.0.0.1:{port}");
    let args: Vec<&str> = args
        .iter()
        .map(|a| {
            if a.starts_with("endpoint=") {
                endpoint_arg.as_str()
            } else {
                a
            }
        })
        .collect();
    let (code, out) = run(&args);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("repository s3://bucket/prefix unreachable"),
        "{out}"
    );
    for secret in ["hunter2", "AKIAEXAMPLEKEY", &format!(":{port}")] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
    }
    // Debug logs may name the endpoint, never a credential.
    let verbose: Vec<&str> = args.iter().copied().chain(["-vv"]).collect();
    let (_, out) = run(&verbose);
    for secret in ["hunter2", "AKIAEXAMPLEKEY"] {
        assert!(!out.contains(secret), "{secret} printed with -vv:\n{out}");
    }
    let (code, out) = run(&["prune", "--repo", "/nonexistent-repo"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--incomplete"), "{out}");
}

/// Client options given by environment (`AWS_ALLOW_HTTP`) work exactly as
/// `--repo-option` does, and a plain-HTTP endpoint without them is refused
/// in one line before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_options_work_like_repo_options() {
    let c = cluster();
    let moto = MotoServer::start();
    moto.create_bucket("envopts");
    let src = db_with(
        "s3_env_src",
        "CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g;",
    )
    .await;
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false".to_string()),
    ];
    let run = |extra: &[(&str, String)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgkeep"));
        cmd.args(["backup", "--db", &c.url(&src), "--repo", "s3://envopts/p"]);
        cmd.env_remove("DATABASE_URL");
        for (k, v) in env.iter().chain(extra) {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let refused = run(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("plain HTTP") && stderr.contains("AWS_ALLOW_HTTP=true"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    let ok = run(&[("AWS_ALLOW_HTTP", "true".to_string())]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let repo = s3_repo(&moto.endpoint(), "envopts", "p");
    assert_eq!(list_backup_ids(&repo).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_conforms() {
    let moto = MotoServer::start();
    moto.create_bucket("conf");
    crate::storage_conformance::check("s3 (moto)", s3_repo(&moto.endpoint(), "conf", "p")).await;
}
