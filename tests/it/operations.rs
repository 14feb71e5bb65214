//! The operations core as a user runs it from a policy file: two databases
//! in one repository, backups and prune by `--policy --job`, pins, `policy
//! check`, run records, and `status` in all four exit codes with
//! Prometheus text parsed by a Prometheus parser. Secrets given through
//! `${VAR}` appear in no output, log, run record or repository object.

use crate::cli::pgkeep_env;
use crate::pgkeep::{assert_secret_not_stored, db_with};
use crate::support::{cluster, SUPERUSER_PASSWORD};
use std::path::Path;
use std::process::Output;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A policy of two database jobs (and one that never ran) in one local
/// repository; database URLs come from `${VAR}`s.
fn write_policy(dir: &Path, repo: &Path) -> std::path::PathBuf {
    let policy = format!(
        r#"
timezone = "Europe/Berlin"
[repository]
url = "{repo}"

[[database]]
name = "app"
url = "${{APP_DATABASE_URL}}"
jobs = 2
rpo = "1h"
retention = {{ keep_last = 1 }}

[[database]]
name = "billing"
url = "${{BILLING_DATABASE_URL}}"
rpo = "1h"
[database.drill]
every = "1d"

[[database]]
name = "reports"
url = "${{BILLING_DATABASE_URL}}"
rpo = "1h"

[[redis]]
name = "cache"
url = "redis://127.0.0.1:1"
"#,
        repo = repo.display()
    );
    let path = dir.join("pgkeep.toml");
    std::fs::write(&path, policy).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_runs_two_databases_into_one_repository_and_status_tells() {
    let c = cluster();
    let app = db_with(
        "ops_app",
        "CREATE TABLE a AS SELECT g FROM generate_series(1, 500) g;",
    )
    .await;
    let billing = db_with(
        "ops_billing",
        "CREATE TABLE b AS SELECT g FROM generate_series(1, 300) g;",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let policy = write_policy(dir.path(), &repo);
    let policy_s = policy.to_str().unwrap();
    let app_url = c.url(&app);
    let billing_url = c.url(&billing);
    let env = [
        ("APP_DATABASE_URL", app_url.as_str()),
        ("BILLING_DATABASE_URL", billing_url.as_str()),
        ("PGKEEP_LOG", "pgkeep=debug"),
    ];
    let run = |args: &[&str]| pgkeep_env(args, &env);
    let mut outputs = Vec::new();

    // policy check: the plan, the templates, never the values.
    let o = run(&["policy", "check", "--policy", policy_s]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("${APP_DATABASE_URL}"), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{}/billing", repo.display())),
        "{}",
        text(&o)
    );
    outputs.push(o);

    // Before any backup: CRITICAL for age (and exit 2).
    let o = run(&["status", "--policy", policy_s, "--job", "app"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no complete backup"), "{}", text(&o));
    outputs.push(o);

    // Two backups of app, one of billing, into <repository>/<job>.
    for job in ["app", "app", "billing"] {
        let o = run(&[
            "--log-format",
            "json",
            "-vv",
            "backup",
            "--policy",
            policy_s,
            "--job",
            job,
        ]);
        assert!(o.status.success(), "{}", text(&o));
        outputs.push(o);
    }
    assert!(repo.join("app/backups").is_dir() && repo.join("billing/backups").is_dir());
    let o = run(&["list", "--policy", policy_s, "--job", "app", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    outputs.push(o);

    // OK, WARNING (billing's drill never ran), CRITICAL (reports never
    // backed up), UNKNOWN (a job the policy does not have).
    let o = run(&["status", "--policy", policy_s, "--job", "app"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).starts_with("OK app (postgres)"), "{}", text(&o));
    outputs.push(o);
    let o = run(&["status", "--policy", policy_s, "--job", "billing"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no drill has passed yet"), "{}", text(&o));
    outputs.push(o);
    let o = run(&["status", "--policy", policy_s, "--job", "reports"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(&["status", "--policy", policy_s, "--job", "nope"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "timezone = 7").unwrap();
    let o = run(&["status", "--policy", broken.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // All jobs: the worst state wins.
    let o = run(&["status", "--policy", policy_s, "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["state"], "CRITICAL");
    assert_eq!(report["jobs"][0]["backups"], 2);
    assert_eq!(report["jobs"][0]["runs"]["backup/success"], 2);
    outputs.push(o);

    // Prometheus text, parsed by a Prometheus parser.
    let o = run(&["status", "--policy", policy_s, "--prometheus"]);
    let body = String::from_utf8(o.stdout.clone()).unwrap();
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition");
    let value = |name: &str, job: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get("job") == Some(job))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Counter(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(value("pgkeep_backups", "app"), Some(2.0), "{body}");
    assert_eq!(value("pgkeep_backup_stale", "app"), Some(0.0), "{body}");
    assert_eq!(value("pgkeep_backup_stale", "reports"), Some(1.0), "{body}");
    assert_eq!(value("pgkeep_rpo_seconds", "app"), Some(3600.0), "{body}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    let last = value("pgkeep_backup_last_success_timestamp_seconds", "app").unwrap();
    assert!(now - last < 600.0, "{last} vs {now}");
    assert!(value("pgkeep_backup_last_size_bytes", "app").unwrap() > 0.0);
    assert_eq!(value("pgkeep_runs_total", "app"), Some(2.0), "{body}");
    assert!(
        value("pgkeep_drill_last_success_timestamp_seconds", "billing").is_none(),
        "no drill: no sample"
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "pgkeep_build_info"),
        "{body}"
    );
    let mut kinds: Vec<(&str, &str)> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "pgkeep_backups")
        .map(|s| (s.labels.get("job").unwrap(), s.labels.get("kind").unwrap()))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("app", "postgres"),
            ("billing", "postgres"),
            ("cache", "redis"),
            ("reports", "postgres")
        ]
    );
    // `backup` backs up PostgreSQL jobs only.
    let o = run(&["backup", "--policy", policy_s, "--job", "cache"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is a redis job"), "{}", text(&o));

    // prune by the job's retention (keep_last 1), pin, run records.
    let ids: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    let o = run(&[
        "pin", "--policy", policy_s, "--job", "app", &ids[0], "--reason", "audit",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["prune", "--policy", policy_s, "--job", "app", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let pruned: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        pruned["retention"]["removed"], 0,
        "the older one is pinned: {pruned}"
    );
    assert_eq!(pruned["retention"]["policy"], "last 1");
    assert_eq!(pruned["retention"]["timezone"], "Europe/Berlin");
    let o = run(&["unpin", "--policy", policy_s, "--job", "app", &ids[0]]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["prune", "--policy", policy_s, "--job", "app", "--json"]);
    let pruned: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(pruned["retention"]["removed"], 1, "{pruned}");
    outputs.push(o);
    let records: Vec<String> = std::fs::read_dir(repo.join("app/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.contains("-backup-success-"))
            .count(),
        2,
        "{records:?}"
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r.contains("-prune-success-"))
            .count(),
        2,
        "{records:?}"
    );

    // status never connects to the source: its ${VAR} may be unset.
    let o = pgkeep_env(
        &["status", "--policy", policy_s, "--job", "app"],
        &[("BILLING_DATABASE_URL", billing_url.as_str())],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A restore never targets the job's own (source) database implicitly.
    let o = run(&["restore", "--policy", policy_s, "--job", "app", "latest"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("restore --job needs --db"),
        "{}",
        text(&o)
    );
    // A closed pipe ends the command quietly (no panic on the next write).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pgkeep"))
        .args(["list", "--policy", policy_s, "--job", "billing"])
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{out:?}"
    );

    // The database password (inside the ${VAR}s) is nowhere.
    for o in &outputs {
        assert!(!text(o).contains(SUPERUSER_PASSWORD), "{}", text(o));
    }
    assert_secret_not_stored(&repo, SUPERUSER_PASSWORD);
}
