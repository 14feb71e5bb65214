//! `pgkeep serve` as an operator runs it: seconds-level schedules against
//! the test cluster, retention after each backup, `/health`, `/metrics`
//! (parsed with a Prometheus parser), `/status`, heartbeats in the
//! runbook's exact format and Slack alerts to a local receiver (a receiver
//! that hangs delays nothing), SIGHUP with a broken policy, SIGTERM during a
//! backup (exit 0, no manifest, nothing left in flight), and the status
//! page rendered by headless Chromium.

use crate::cli::{pgkeep_env, text};
use crate::pgkeep::db_with;
use crate::support::cluster;
use crate::support::receiver::{Answer, Receiver};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.1 GET: (status code, body).
async fn get(port: u16, path: &str) -> (u16, String) {
    get_with(port, path, None).await
}

/// A GET with a bearer token.
pub(crate) async fn get_with(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return (0, String::new());
    };
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: x\r\n{auth}connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// Polls `cond` every 50 ms until it holds; fails after `secs`.
pub(crate) async fn until<F, Fut>(what: &str, secs: u64, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spawn_serve(policy: &Path, port: u16, env: &[(&str, &str)], extra: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgkeep"));
    cmd.args([
        "serve",
        "--policy",
        policy.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ])
    .args(extra)
    .env_remove("DATABASE_URL")
    .env("PGKEEP_LOG", "pgkeep=info")
    .envs(env.iter().copied())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

pub(crate) fn signal(child: &Child, sig: i32) {
    // SAFETY: signals a child process this test started.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Waits for the child to exit within `secs`; returns its output.
pub(crate) fn wait_exit(mut child: Child, secs: u64) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "serve did not exit within {secs}s: {}",
                text(&child.wait_with_output().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn complete_backups(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("backups"))
        .map(|d| {
            d.filter(|e| e.as_ref().unwrap().path().join("manifest").is_file())
                .count()
        })
        .unwrap_or(0)
}

pub(crate) fn run_records(repo: &Path, action_outcome: &str) -> usize {
    std::fs::read_dir(repo.join("runs"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(action_outcome)
            })
            .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_jobs_on_schedule_with_retention_metrics_status_and_notifications() {
    let c = cluster();
    let db = db_with(
        "serve_app",
        "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g;",
    )
    .await;
    let ok = Receiver::start(Answer::Ok).await;
    let hang = Receiver::start(Answer::Hang).await;
    let broken = Receiver::start(Answer::ServerError).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let port = free_port();
    let policy = dir.path().join("pgkeep.toml");
    let text_policy = format!(
        r#"
[repository]
url = "{repo}"

[[database]]
name = "app"
url = "${{APP_URL}}"
schedule = "*/2 * * * * *"
rpo = "1h"
retention = {{ keep_last = 1 }}

[[database]]
name = "down"
url = "postgres://postgres@127.0.0.1:1/nothing?connect_timeout=2"
schedule = "*/3 * * * * *"
rpo = "1h"

[[notify]]
kind = "http"
on = ["success"]
url = "{ok}/internal/backup/heartbeat"
method = "POST"
headers = {{ "x-backup-token" = "${{BACKUP_HEARTBEAT_TOKEN}}" }}
body = '{{"type": "{{kind}}", "ts": {{ts}}}}'

[[notify]]
kind = "slack"
on = ["failure", "stale"]
url = "{ok}/slack/${{SLACK_PATH}}"

[[notify]]
kind = "healthchecks"
url = "{ok}/hc/app-ping"

[[notify]]
kind = "http"
on = ["success"]
url = "{hang}/never"

[[notify]]
kind = "http"
on = ["success", "failure"]
url = "{broken}/error"

[serve]
token = "${{SERVE_TOKEN}}"
"#,
        repo = repo.display(),
        ok = ok.url,
        hang = hang.url,
        broken = broken.url
    );
    std::fs::write(&policy, &text_policy).unwrap();
    let app_url = c.url(&db);
    let env = [
        ("APP_URL", app_url.as_str()),
        ("BACKUP_HEARTBEAT_TOKEN", "hb-token-123"),
        ("SLACK_PATH", "T000/B000/secret-webhook-part"),
        ("SERVE_TOKEN", "serve-token-456"),
    ];
    let t_start = Instant::now();
    let child = spawn_serve(&policy, port, &env, &[]);
    until("/health", 60, || async {
        get(port, "/health").await.0 == 200
    })
    .await;

    // Heartbeats: the runbook's header and body, once per backup.
    until("two heartbeats", 90, || async {
        ok.received("/internal/backup/heartbeat").len() >= 2
    })
    .await;
    let beats = ok.received("/internal/backup/heartbeat");
    assert!(
        t_start.elapsed() < Duration::from_secs(60),
        "a receiver that never answers delays no backup"
    );
    for b in &beats {
        assert_eq!(b.method, "POST");
        assert_eq!(
            b.headers.get("x-backup-token").map(String::as_str),
            Some("hb-token-123")
        );
        let v: serde_json::Value = serde_json::from_str(&b.body).unwrap();
        assert_eq!(v["type"], "postgres", "{}", b.body);
        assert!(v["ts"].as_i64().unwrap() > 1_700_000_000, "{}", b.body);
        assert_eq!(v.as_object().unwrap().len(), 2, "{}", b.body);
    }
    // Slack on failure (the `down` job's server is not there).
    let slack_texts = || -> Vec<String> {
        ok.received("/slack/T000/B000/secret-webhook-part")
            .iter()
            .map(|r| {
                serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    until("a failure and a stale alert on Slack", 60, || async {
        let t = slack_texts();
        t.iter()
            .any(|t| t.contains("backup of down (postgres) FAILED"))
            && t.iter().any(|t| t.contains("is stale"))
    })
    .await;
    let texts = slack_texts();
    // `down` has no backup: stale, found from the RPO, said once.
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("down (postgres) is stale"))
            .count(),
        1,
        "{texts:?}"
    );
    // Healthchecks pings: /start, then the plain URL on success, /fail on failure.
    assert!(!ok.received("/hc/app-ping/start").is_empty());
    assert!(!ok.received("/hc/app-ping").is_empty());
    assert!(
        !ok.received("/hc/app-ping/fail").is_empty(),
        "the ping URL serves every job"
    );
    // A target answering 500 was retried and counted, and delayed nothing.
    until("retries to the failing target", 60, || async {
        broken.received("/error").len() >= 3
    })
    .await;

    // Retention ran after the backups: keep_last = 1.
    let app_repo = repo.join("app");
    until("a prune run", 60, || async {
        run_records(&app_repo, "-prune-success-") >= 1
    })
    .await;
    assert!(run_records(&app_repo, "-backup-success-") >= 2);
    assert!(
        complete_backups(&app_repo) <= 2,
        "retention keeps one (plus one being written)"
    );

    // /metrics, /status: the token is needed (not for /health).
    assert_eq!(get(port, "/metrics").await.0, 401);
    assert_eq!(get_with(port, "/status", Some("wrong-token")).await.0, 401);
    let token = Some("serve-token-456");
    until("a failed notification counted", 60, || async {
        get_with(port, "/metrics", token)
            .await
            .1
            .lines()
            .any(|l| l.starts_with("pgkeep_notify_failures_total ") && !l.ends_with(" 0"))
    })
    .await;
    let (code, metrics) = get_with(port, "/metrics", token).await;
    assert_eq!(code, 200);
    let lines = metrics.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let has = |name: &str, job: Option<&str>| {
        scrape
            .samples
            .iter()
            .any(|s| s.metric == name && job.is_none_or(|j| s.labels.get("job") == Some(j)))
    };
    assert!(
        has("pgkeep_backup_last_success_timestamp_seconds", Some("app")),
        "{metrics}"
    );
    assert!(has("pgkeep_runs_total", Some("down")), "{metrics}");
    assert!(
        has("pgkeep_run_duration_seconds_count", Some("app")),
        "{metrics}"
    );
    assert!(has("process_resident_memory_bytes", None), "{metrics}");
    let (code, body) = get_with(port, "/status", token).await;
    assert_eq!(code, 503, "a CRITICAL job makes /status 503: {body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let jobs: Vec<&str> = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["app", "down"]);

    // SIGHUP with a broken policy: rejected, the old one keeps running.
    std::fs::write(&policy, "[repository\nbroken").unwrap();
    signal(&child, libc::SIGHUP);
    let before = ok.received("/internal/backup/heartbeat").len();
    until("a heartbeat after the rejected reload", 60, || async {
        ok.received("/internal/backup/heartbeat").len() > before
    })
    .await;
    assert_eq!(get(port, "/health").await.0, 200);

    signal(&child, libc::SIGTERM);
    let out = wait_exit(child, 40);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = text(&out);
    assert!(
        log.contains("does not validate; keeping the running one"),
        "{log}"
    );
    assert!(
        !log.contains("secret-webhook-part") && !log.contains("hb-token-123"),
        "{log}"
    );
    crate::pgkeep::assert_secret_not_stored(&repo, "secret-webhook-part");
    crate::pgkeep::assert_secret_not_stored(&repo, "hb-token-123");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_backup_exits_0_without_a_manifest() {
    let c = cluster();
    let db = db_with(
        "serve_big",
        "CREATE TABLE big AS SELECT g, md5(g::text) || md5((g+1)::text) AS t FROM generate_series(1, 1500000) g;",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let policy = dir.path().join("pgkeep.toml");
    std::fs::write(
        &policy,
        format!(
            "[repository]\nurl = \"{}\"\n[[database]]\nname = \"big\"\nurl = \"${{BIG_URL}}\"\nschedule = \"* * * * * *\"\njobs = 1\n",
            repo.display()
        ),
    )
    .unwrap();
    let url = c.url(&db);
    let port = free_port();
    let child = spawn_serve(&policy, port, &[("BIG_URL", &url)], &["--grace", "1ms"]);
    // A backup is being written: its lease is there.
    let backups = repo.join("big/backups");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_dir(&backups)
        .map(|d| d.flatten().any(|e| e.path().join("lease").is_file()))
        .unwrap_or(false)
    {
        if Instant::now() > deadline {
            signal(&child, libc::SIGKILL);
            panic!(
                "no backup in progress: {}",
                text(&child.wait_with_output().unwrap())
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = Instant::now();
    signal(&child, libc::SIGTERM);
    let out = wait_exit(child, 30);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "stopped within the grace period and cleanup"
    );
    assert_eq!(
        complete_backups(&repo.join("big")),
        0,
        "no manifest: {}",
        text(&out)
    );
    let leftovers: Vec<PathBuf> = crate::pgkeep::files_under(&backups);
    assert!(
        leftovers
            .iter()
            .all(|p| !p.ends_with("manifest") && !p.ends_with("lease")),
        "{leftovers:?}"
    );
    // prune --incomplete finds nothing in flight and removes the rest.
    let o = pgkeep_env(
        &[
            "prune",
            "--repo",
            repo.join("big").to_str().unwrap(),
            "--incomplete",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_in_headless_chromium() {
    let c = cluster();
    let db = db_with(
        "serve_page",
        "CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g;",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let policy = dir.path().join("pgkeep.toml");
    std::fs::write(
        &policy,
        format!(
            "[repository]\nurl = \"{}\"\n[[database]]\nname = \"shop\"\nurl = \"${{SHOP_URL}}\"\nrpo = \"6h\"\n[[database]]\nname = \"empty\"\nurl = \"${{SHOP_URL}}\"\nrpo = \"1h\"\n",
            repo.display()
        ),
    )
    .unwrap();
    let url = c.url(&db);
    let env = [("SHOP_URL", url.as_str())];
    for _ in 0..3 {
        let o = pgkeep_env(
            &[
                "backup",
                "--policy",
                policy.to_str().unwrap(),
                "--job",
                "shop",
            ],
            &env,
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    let port = free_port();
    let child = spawn_serve(&policy, port, &env, &[]);
    until("/health", 60, || async {
        get(port, "/health").await.0 == 200
    })
    .await;
    let page = format!("http://127.0.0.1:{port}/");
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium is installed (scripts/test.sh installs it)");
    let browser = |args: &[&str]| {
        let profile = dir.path().join("chromium-profile");
        let out = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(&page)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        out
    };
    let dom = String::from_utf8_lossy(&browser(&["--dump-dom"]).stdout).to_string();
    assert!(dom.contains("<tr class=\"job\" data-job=\"shop\""), "{dom}");
    assert!(
        dom.contains("<tr class=\"job\" data-job=\"empty\""),
        "{dom}"
    );
    assert!(
        dom.contains("<svg class=\"chart\" data-job=\"shop\""),
        "{dom}"
    );
    assert_eq!(
        dom.matches("class=\"duration\"").count(),
        3,
        "one bar per backup run: {dom}"
    );
    assert!(dom.contains("no runs yet"), "{dom}");
    let shot_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&shot_dir).unwrap();
    let shot = shot_dir.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    browser(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1400,700",
    ]);
    let png = std::fs::read(&shot).expect("a screenshot is kept as a test artefact");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    signal(&child, libc::SIGTERM);
    let out = wait_exit(child, 30);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_redis_jobs_with_retention_verify_drills_status_and_heartbeats() {
    let src = crate::support::redis::RedisServer::start(&[]);
    src.load("SET a 1\nRPUSH l x y\nSELECT 3\nSET b 2\n");
    let ok = Receiver::start(Answer::Ok).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let port = free_port();
    let policy = dir.path().join("pgkeep.toml");
    let text_policy = format!(
        r#"
[repository]
url = "{repo}"

[[redis]]
name = "cache"
url = "${{REDIS_URL}}"
schedule = "*/2 * * * * *"
verify_schedule = "*/3 * * * * *"
drill_schedule = "*/4 * * * * *"
rpo = "1h"
retention = {{ keep_last = 1 }}

[[notify]]
kind = "http"
on = ["success"]
url = "{ok}/internal/backup/heartbeat"
body = '{{"type": "{{kind}}", "ts": {{ts}}}}'
"#,
        repo = repo.display(),
        ok = ok.url,
    );
    std::fs::write(&policy, &text_policy).unwrap();
    let url = src.url();
    let child = spawn_serve(&policy, port, &[("REDIS_URL", url.as_str())], &[]);
    until("two redis heartbeats", 90, || async {
        ok.received("/internal/backup/heartbeat").len() >= 2
    })
    .await;
    for b in ok.received("/internal/backup/heartbeat") {
        let v: serde_json::Value = serde_json::from_str(&b.body).unwrap();
        assert_eq!(v["type"], "redis", "{}", b.body);
    }
    let job_repo = repo.join("cache");
    until(
        "retention, a verify and a drill of the newest backup",
        60,
        || async {
            run_records(&job_repo, "-prune-success-") >= 1
                && run_records(&job_repo, "-verify-success-") >= 1
                && run_records(&job_repo, "-drill-success-") >= 1
        },
    )
    .await;
    let drills = std::fs::read_dir(job_repo.join("drills")).unwrap().count();
    assert!(drills >= 1, "a drill proof in the repository");
    // Retention also keeps a backup a drill or verify still holds, and
    // those run every few seconds here: at some moment between them it
    // keeps one (plus one being written). Without retention the count
    // only grows, and this times out.
    until(
        "retention keeps one (plus one being written)",
        30,
        || async { complete_backups(&job_repo) <= 2 },
    )
    .await;
    let (code, body) = get(port, "/status").await;
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let job = &status["jobs"][0];
    assert_eq!(
        (job["job"].as_str(), job["kind"].as_str()),
        (Some("cache"), Some("redis")),
        "{body}"
    );
    assert_eq!(job["state"], "OK", "{body}");
    let (_, metrics) = get(port, "/metrics").await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("pgkeep_backup_last_success_timestamp_seconds{")
                && l.contains(r#"job="cache""#)
                && l.contains(r#"kind="redis""#)
        ),
        "{metrics}"
    );
    signal(&child, libc::SIGTERM);
    let out = wait_exit(child, 40);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
