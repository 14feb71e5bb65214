//! `pgkeep bench` against the test cluster: from a live database (backup
//! at each job count beside a raw parallel COPY, then restores) and from a
//! repository's backup; each run restores into its own scratch database,
//! all of which are dropped; the numbers are consistent with the data.

use crate::cli::{pgkeep_env, text};
use crate::pgkeep::db_with;
use crate::support::cluster;

async fn bench_databases() -> Vec<String> {
    cluster()
        .column(
            "postgres",
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'pgkeep\\_bench\\_%'",
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_measures_backup_raw_copy_and_restore_per_job_count() {
    let c = cluster();
    let db = db_with(
        "bench_src",
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS t FROM generate_series(1, 20000) g;
         ALTER TABLE big ADD PRIMARY KEY (id);
         CREATE TABLE small AS SELECT g FROM generate_series(1, 100) g;",
    )
    .await;
    let target = c.url("postgres");
    let o = pgkeep_env(
        &[
            "bench",
            "--db",
            &c.url(&db),
            "--target",
            &target,
            "--jobs",
            "1,2",
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["rows"], 20100, "{r:#}");
    let jobs = |k: &str| -> Vec<u64> {
        r[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x["jobs"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(jobs("backups"), [1, 2]);
    assert_eq!(jobs("restores"), [1, 2]);
    for b in r["backups"].as_array().unwrap() {
        assert!(
            b["wall_ms"].as_u64().unwrap() > 0 && b["raw_copy_ms"].as_u64().unwrap() > 0,
            "{b:#}"
        );
        assert!(b["ratio_to_raw_copy"].as_f64().unwrap() > 0.0);
        assert!(b["raw_copy_mb_per_s"].as_f64().unwrap() > 0.0);
    }
    for x in r["restores"].as_array().unwrap() {
        let (wall, pre, data, post) = (
            x["wall_ms"].as_u64().unwrap(),
            x["pre_data_ms"].as_u64().unwrap(),
            x["data_ms"].as_u64().unwrap(),
            x["post_data_ms"].as_u64().unwrap(),
        );
        assert!(wall >= data + post, "{x:#}");
        assert_eq!(
            x["projected_ms"].as_u64().unwrap(),
            pre + ((data + post) as f64 * 10.0) as u64
        );
        assert!(x["rows_per_s"].as_f64().unwrap() > 0.0);
        assert!(x["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{x:#}");
    }
    assert!(
        bench_databases().await.is_empty(),
        "scratch databases dropped"
    );

    // From a repository's backup: restores only, human output.
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    let o = pgkeep_env(&["backup", "--db", &c.url(&db), "--repo", repo_s], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = pgkeep_env(
        &[
            "bench", "--repo", repo_s, "latest", "--target", &target, "--jobs", "2", "--scale",
            "100",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("20100 rows")
            && out.contains("at 100x size")
            && out.contains("fastest: --jobs 2"),
        "{out}"
    );
    assert!(
        bench_databases().await.is_empty(),
        "scratch databases dropped"
    );

    let o = pgkeep_env(
        &[
            "bench", "--repo", repo_s, "--target", &target, "--jobs", "0",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
