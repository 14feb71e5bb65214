//! The deployment recipes of `docs/operations.md`, read from the document
//! itself and run as written, with their paths moved into a temporary
//! directory (`/usr/local/bin`, `/etc/pgkeep`, `/var/log/pgkeep`, the
//! textfile directory) and their variables given test values:
//!
//! - the environment file, the crontab lines (a failed backup prunes
//!   nothing and alerts Slack; backup then retention; `prune --incomplete`;
//!   `verify`; the first-Sunday drill guard under `faketime`, then the
//!   drill; the node_exporter textfile script, its output linted by
//!   `promtool check metrics`);
//! - the systemd units: `systemd-analyze verify` finds nothing to say, the
//!   `ExecStart=` lines of the backup and status services run in order, and
//!   `pgkeep.service`'s `ExecStart=` serves `/health` and `/metrics` (with
//!   every metric the documented alert rules name), takes `ExecReload=`
//!   and exits 0 on SIGTERM;
//! - the Prometheus rule files and scrape config pass `promtool check`;
//! - the Docker Compose file passes `docker-compose config` and its policy
//!   runs (`key add`, `backup`, the healthchecks ping, `status`);
//! - the Kubernetes manifests pass `kubernetes-validate --strict`, and the
//!   CronJob's init container and container arguments run against an S3
//!   API server (moto) with the ConfigMap's policy and the Secret's keys.
//!
//! Not run here: `docker build` and a real systemd, cron or Kubernetes (no
//! container engine, init system or cluster on the test machine).

use crate::cli::{pgkeep_env, text};
use crate::serve::{free_port, get_with, run_records, signal, until, wait_exit};
use crate::support::cluster;
use crate::support::receiver::{Answer, Receiver};
use crate::support::s3::MotoServer;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const DOC: &str = include_str!("../../docs/operations.md");

/// A fenced block of the document: the heading it sits under, its info
/// string and its text.
struct Block {
    heading: String,
    lang: String,
    body: String,
}

fn blocks() -> Vec<Block> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut open: Option<Block> = None;
    for line in DOC.lines() {
        match open.as_mut() {
            Some(_) if line.starts_with("```") => out.extend(open.take()),
            Some(b) => {
                b.body.push_str(line);
                b.body.push('\n');
            }
            None if line.starts_with("```") => {
                open = Some(Block {
                    heading: heading.clone(),
                    lang: line.trim_start_matches('`').to_string(),
                    body: String::new(),
                })
            }
            None if line.starts_with('#') => heading = line.trim_start_matches('#').trim().into(),
            None => {}
        }
    }
    out
}

/// The one block that starts with `first` (its path comment).
fn named(first: &str) -> String {
    let found: Vec<String> = blocks()
        .into_iter()
        .filter(|b| b.body.starts_with(first))
        .map(|b| b.body)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "blocks starting with {first:?} in docs/operations.md"
    );
    found.into_iter().next().unwrap()
}

/// A tool the test command installs (scripts/test.sh).
fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(found, "{name} is not on PATH: scripts/test.sh installs it");
    Command::new(name)
}

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: {}\n{}", o.status, text(o));
}

/// The temporary root the recipes' absolute paths are moved into.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        let r = Root {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["bin", "etc", "log", "textfile", "units"] {
            std::fs::create_dir_all(r.at(d)).unwrap();
        }
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_pgkeep"), r.at("bin/pgkeep")).unwrap();
        r
    }

    fn at(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The recipe's text with its absolute paths moved under the root.
    fn localize(&self, text: &str) -> String {
        let root = self.dir.path().display();
        text.replace("/usr/local/bin/", &format!("{root}/bin/"))
            .replace("/usr/local/bin:", &format!("{root}/bin:"))
            .replace("/etc/pgkeep/", &format!("{root}/etc/"))
            .replace("/etc/prometheus/", &format!("{root}/etc/"))
            .replace("/var/log/pgkeep/", &format!("{root}/log/"))
            .replace(
                "/var/lib/node_exporter/textfile_collector",
                &format!("{root}/textfile"),
            )
            .replace("/var/lib/pgkeep/repo", &format!("{root}/repo"))
    }

    fn write(&self, path: &str, text: &str) -> PathBuf {
        let p = self.at(path);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn repo(&self) -> PathBuf {
        self.at("repo")
    }

    /// The policy job `app`'s repository (a job keeps to `<url>/<job>`).
    fn app(&self) -> PathBuf {
        self.repo().join("app")
    }

    fn backups(&self) -> usize {
        std::fs::read_dir(self.app().join("backups"))
            .map(|d| {
                d.filter(|e| e.as_ref().unwrap().path().join("manifest").is_file())
                    .count()
            })
            .unwrap_or(0)
    }
}

/// `KEY="value"` lines as systemd's `EnvironmentFile=` and `sh`'s `.` read
/// them (the recipe quotes every value).
fn env_file(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_string(), v.trim().trim_matches('"').to_string())
        })
        .collect()
}

/// The documented environment file with the test's values, by name.
fn write_env(root: &Root, values: &[(&str, String)]) -> PathBuf {
    let doc = named("# /etc/pgkeep/env");
    let mut names = BTreeSet::new();
    let mut out = String::new();
    for line in doc.lines() {
        match line.split_once('=') {
            Some((k, _)) if !line.starts_with('#') => {
                names.insert(k.to_string());
                let v = values
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| panic!("no test value for {k}"));
                out.push_str(&format!("{k}=\"{v}\"\n"));
            }
            _ => out.push_str(&format!("{line}\n")),
        }
    }
    let given: BTreeSet<String> = values.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(names, given, "the environment file's variables");
    root.write("etc/env", &out)
}

/// The commands of a crontab in `/etc/cron.d` form: the text after five
/// time fields and the user, `\%` unescaped as cron does.
fn cron_commands(tab: &str) -> (String, Vec<String>) {
    let mut path = String::new();
    let mut cmds = Vec::new();
    for line in tab.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some(p) = l.strip_prefix("PATH=") {
            path = p.to_string();
            continue;
        }
        if l.split_once('=')
            .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        {
            continue;
        }
        let mut rest = l;
        for _ in 0..6 {
            rest = rest.trim_start();
            rest = &rest[rest.find(char::is_whitespace).unwrap()..];
        }
        cmds.push(rest.trim().replace("\\%", "%"));
    }
    (path, cmds)
}

/// Runs a crontab command the way cron does: `/bin/sh -c`, the crontab's
/// `PATH`, nothing else inherited but `HOME`.
fn cron_run(root: &Root, path: &str, cmd: &str, faketime: Option<&str>) -> Output {
    let mut c = match faketime {
        Some(at) => {
            let mut c = tool("faketime");
            c.args([at, "/bin/sh", "-c", cmd]);
            c
        }
        None => {
            let mut c = Command::new("/bin/sh");
            c.args(["-c", cmd]);
            c
        }
    };
    c.env_clear()
        .env("PATH", path)
        .env("HOME", root.dir.path())
        .env("SHELL", "/bin/sh")
        .output()
        .unwrap()
}

/// `systemd-analyze verify` over unit files: exit 0 and nothing printed.
fn systemd_verify(units: &[PathBuf]) {
    let o = tool("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(units)
        .output()
        .unwrap();
    ok(&o, "systemd-analyze verify");
    assert!(
        o.stdout.is_empty() && o.stderr.is_empty(),
        "systemd-analyze verify has remarks:\n{}",
        text(&o)
    );
}

/// The values of a unit's `Key=` lines, in order.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

/// Runs an `ExecStart=` command line (plain words, `%i` the instance) with
/// the unit's `EnvironmentFile=` as its whole environment.
fn exec(line: &str, instance: &str, env: &[(String, String)]) -> Command {
    let argv: Vec<String> = line
        .split_whitespace()
        .map(|w| w.replace("%i", instance))
        .collect();
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]).env_clear().envs(env.iter().cloned());
    c
}

/// Every `pgkeep_*` metric named by the expressions of the documented rule
/// files.
fn rule_metrics() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for b in blocks().iter().filter(|b| b.body.contains("groups:")) {
        for l in b
            .body
            .lines()
            .filter(|l| l.trim_start().starts_with("expr:"))
        {
            let mut rest = l;
            while let Some(i) = rest.find("pgkeep_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                out.insert(name);
            }
        }
    }
    assert!(out.len() >= 6, "rule metrics found: {out:?}");
    out
}

const POLICY: &str = r#"
timezone = "UTC"

[repository]
url = "{repo}"

[[database]]
name = "app"
url = "${PROD_DIRECT_URL}"
jobs = 2
rpo = "6h"
schedule = "0 */6 * * *"
verify_schedule = "0 5 * * SUN"
retention = { keep_last = 2 }

[database.drill]
every = "31d"
schedule = "0 3 * * SUN#1"
target = "${STAGING_DIRECT_URL}"
allow_source_cluster = true

[[notify]]
kind = "slack"
url = "${SLACK_WEBHOOK_URL}"
on = ["failure"]

[serve]
listen = "127.0.0.1:{port}"
token = "${PGKEEP_SERVE_TOKEN}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_and_systemd_recipes_run_as_written() {
    let c = cluster();
    let db = crate::pgkeep::db_with(
        "recipes",
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g;",
    )
    .await;
    let root = Root::new();
    let slack = Receiver::start(Answer::Ok).await;
    let port = free_port();
    let policy = POLICY
        .replace("{repo}", &root.repo().display().to_string())
        .replace("{port}", &port.to_string());
    root.write("etc/pgkeep.toml", &policy);
    let token = "recipe-serve-token";
    let values = |source: &str| {
        vec![
            ("PROD_DIRECT_URL", c.url(source)),
            ("STAGING_DIRECT_URL", c.url("postgres")),
            ("AWS_ACCESS_KEY_ID", "unused".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "unused".to_string()),
            ("SLACK_WEBHOOK_URL", format!("{}/slack", slack.url)),
            ("BACKUP_HEARTBEAT_TOKEN", "unused".to_string()),
            ("PGKEEP_SERVE_TOKEN", token.to_string()),
        ]
    };

    // The textfile script, installed where the crontab and the status
    // service look for it.
    let script = root.localize(&named("#!/bin/sh\n# /usr/local/bin/pgkeep-textfile"));
    let script_path = root.write("bin/pgkeep-textfile", &script);
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&script_path).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(
        &script_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    // --- cron ---
    let (cron_path, cmds) = cron_commands(&root.localize(&named("# /etc/cron.d/pgkeep")));
    let cron_path = format!("{cron_path}:{}", std::env::var("PATH").unwrap());
    assert_eq!(cmds.len(), 5, "crontab commands: {cmds:#?}");
    let (backup_prune, incomplete, verify, drill, textfile) =
        (&cmds[0], &cmds[1], &cmds[2], &cmds[3], &cmds[4]);

    // A backup that fails prunes nothing and tells Slack.
    write_env(&root, &values("recipes_no_such_database"));
    let o = cron_run(&root, &cron_path, backup_prune, None);
    assert!(!o.status.success(), "a backup of a missing database");
    let log = std::fs::read_to_string(root.at("log/app.log")).unwrap();
    assert!(log.contains("recipes_no_such_database"), "{log}");
    assert_eq!(run_records(&root.app(), "backup-failure"), 1);
    assert_eq!(
        run_records(&root.app(), "prune-"),
        0,
        "prune ran after a failed backup"
    );
    until("the Slack failure message", 30, || async {
        !slack.received("/slack").is_empty()
    })
    .await;
    assert!(slack.received("/slack")[0].body.contains("app"));

    // Three good backups, each followed by the retention (keep_last = 2).
    let env_path = write_env(&root, &values(&db));
    for _ in 0..3 {
        ok(
            &cron_run(&root, &cron_path, backup_prune, None),
            backup_prune,
        );
    }
    assert_eq!(root.backups(), 2, "keep_last = 2 after three backups");
    ok(&cron_run(&root, &cron_path, incomplete, None), incomplete);
    ok(&cron_run(&root, &cron_path, verify, None), verify);

    // The drill line runs on the first Sunday only: its guard holds on a
    // Sunday, and on a Monday the line exits 0 and drills nothing.
    let (guard, drill_rest) = drill.split_once("|| exit 0;").expect("the Sunday guard");
    let sunday = cron_run(&root, &cron_path, guard, Some("2026-12-06 03:00:00"));
    assert!(
        sunday.status.success(),
        "guard on a Sunday: {}",
        text(&sunday)
    );
    let monday = cron_run(&root, &cron_path, drill, Some("2026-12-07 03:00:00"));
    ok(&monday, "the drill line on a Monday");
    assert!(
        !root.app().join("drills").exists(),
        "a drill ran on a Monday"
    );
    ok(&cron_run(&root, &cron_path, drill_rest, None), drill_rest);
    assert_eq!(
        std::fs::read_dir(root.app().join("drills"))
            .unwrap()
            .count(),
        1
    );

    // The textfile script writes the metrics, which promtool's linter takes.
    let o = cron_run(&root, &cron_path, textfile, None);
    ok(&o, textfile);
    let prom = std::fs::read_to_string(root.at("textfile/pgkeep.prom")).unwrap();
    assert!(
        prom.contains("pgkeep_job_state{job=\"app\",kind=\"postgres\"} 0"),
        "{prom}"
    );
    assert!(
        prom.contains("pgkeep_drill_last_success_timestamp_seconds"),
        "{prom}"
    );
    let mut lint = tool("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut lint.stdin.take().unwrap(), prom.as_bytes()).unwrap();
    ok(&lint.wait_with_output().unwrap(), "promtool check metrics");

    // --- systemd ---
    let mut units = Vec::new();
    for name in [
        "pgkeep.service",
        "pgkeep-backup@.service",
        "pgkeep-backup@.timer",
        "pgkeep-status.service",
        "pgkeep-status.timer",
    ] {
        let unit = root.localize(&named(&format!("# /etc/systemd/system/{name}")));
        units.push(root.write(&format!("units/{name}"), &unit));
    }
    // A template is verified through an instance of it.
    for (template, instance) in [
        ("pgkeep-backup@.service", "pgkeep-backup@app.service"),
        ("pgkeep-backup@.timer", "pgkeep-backup@app.timer"),
    ] {
        std::os::unix::fs::symlink(
            root.at(&format!("units/{template}")),
            root.at(&format!("units/{instance}")),
        )
        .unwrap();
    }
    systemd_verify(&[
        root.at("units/pgkeep.service"),
        root.at("units/pgkeep-backup@app.service"),
        root.at("units/pgkeep-backup@app.timer"),
        root.at("units/pgkeep-status.service"),
        root.at("units/pgkeep-status.timer"),
    ]);

    let read = |name: &str| std::fs::read_to_string(root.at(&format!("units/{name}"))).unwrap();
    let backup_unit = read("pgkeep-backup@.service");
    let env_files = unit_values(&backup_unit, "EnvironmentFile");
    assert_eq!(env_files, vec![env_path.display().to_string()]);
    let env = env_file(&env_path);
    let before = root.backups();
    for line in unit_values(&backup_unit, "ExecStart") {
        ok(&exec(&line, "app", &env).output().unwrap(), &line);
    }
    assert_eq!(root.backups(), before, "a new backup and keep_last = 2");

    let status_unit = read("pgkeep-status.service");
    let success: Vec<i32> = unit_values(&status_unit, "SuccessExitStatus")
        .join(" ")
        .split_whitespace()
        .map(|c| c.parse().unwrap())
        .collect();
    for line in unit_values(&status_unit, "ExecStart") {
        let o = exec(&line, "", &env).output().unwrap();
        let code = o.status.code().unwrap();
        assert!(code == 0 || success.contains(&code), "{line}: {}", text(&o));
    }

    // pgkeep.service: the daemon serves, reloads on ExecReload and stops
    // with exit 0 on SIGTERM.
    let serve_unit = read("pgkeep.service");
    let start = unit_values(&serve_unit, "ExecStart");
    assert_eq!(start.len(), 1);
    let stderr = root.at("log/serve.log");
    let child = exec(&start[0], "", &env)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    until("/health", 60, || async {
        get_with(port, "/health", None).await.0 == 200
    })
    .await;
    let (code, metrics) = get_with(port, "/metrics", Some(token)).await;
    assert_eq!(code, 200, "{metrics}");
    let lines: Vec<_> = metrics.lines().map(|l| Ok(l.to_string())).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter()).unwrap();
    let have: BTreeSet<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for name in rule_metrics() {
        assert!(
            have.contains(name.as_str()),
            "{name} (named by an alert rule) not in /metrics:\n{metrics}"
        );
    }
    let reload = unit_values(&serve_unit, "ExecReload");
    let reload = reload[0].replace("$MAINPID", &child.id().to_string());
    ok(&exec(&reload, "", &env).output().unwrap(), &reload);
    until("policy reloaded", 30, || async {
        std::fs::read_to_string(&stderr)
            .unwrap_or_default()
            .contains("policy reloaded")
    })
    .await;
    signal(&child, libc::SIGTERM);
    let out = wait_exit(child, 180);
    assert!(
        out.status.success(),
        "serve on SIGTERM: {}\n{}",
        out.status,
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
}

#[test]
fn prometheus_rules_and_scrape_config_pass_promtool() {
    let root = Root::new();
    let all = blocks();
    let rules: Vec<&Block> = all
        .iter()
        .filter(|b| b.lang == "yaml" && b.body.contains("groups:"))
        .collect();
    assert_eq!(rules.len(), 2, "rule files in docs/operations.md");
    for (i, b) in rules.iter().enumerate() {
        let path = root.write(&format!("etc/rules{i}.yml"), &b.body);
        let o = tool("promtool")
            .args(["check", "rules"])
            .arg(&path)
            .output()
            .unwrap();
        ok(&o, &format!("promtool check rules ({})", b.heading));
        assert!(text(&o).contains("SUCCESS"), "{}", text(&o));
    }
    let config = root.localize(&named("# prometheus.yml"));
    root.write("etc/pgkeep-token", "token\n");
    let path = root.write("etc/prometheus.yml", &config);
    ok(
        &tool("promtool")
            .args(["check", "config"])
            .arg(&path)
            .output()
            .unwrap(),
        "promtool check config",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_compose_recipe_validates_and_its_policy_runs() {
    let c = cluster();
    let db = crate::pgkeep::db_with("recipes_compose", "CREATE TABLE t AS SELECT 1 AS x;").await;
    let root = Root::new();
    let ping = Receiver::start(Answer::Ok).await;

    std::fs::create_dir_all(root.at("compose/pgkeep")).unwrap();
    root.write("compose/compose.yaml", &named("# compose.yaml"));
    root.write("compose/pgkeep.env", "APP_URL=postgres://app@db:5432/app\n");
    root.write("compose/pgkeep.toml", &named("# pgkeep.toml"));
    root.write("compose/passphrase", "compose recipe passphrase\n");
    let o = tool("docker-compose")
        .args(["-f", "compose.yaml", "config", "--quiet"])
        .current_dir(root.at("compose"))
        .env("DB_PASSWORD", "x")
        .output()
        .unwrap();
    ok(&o, "docker-compose config");
    assert!(o.stderr.is_empty(), "docker-compose config: {}", text(&o));

    // The policy as the container reads it, its ping going to a local receiver.
    let policy = root
        .localize(&named("# pgkeep.toml"))
        .replace("https://hc-ping.com/", &format!("{}/", ping.url));
    let policy = root.write("etc/pgkeep.toml", &policy);
    root.write("etc/passphrase", "compose recipe passphrase\n");
    let p = policy.to_str().unwrap();
    let env = [
        ("APP_URL", c.url(&db)),
        (
            "HC_PING_UUID",
            "5f0c6c38-0a4e-4b63-a8c4-9f6b1c1d2e3f".to_string(),
        ),
        ("PGKEEP_SERVE_TOKEN", "t".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The recipe's commands, after `docker compose run --rm pgkeep`.
    let commands = named("docker compose build pgkeep");
    let runs: Vec<String> = commands
        .lines()
        .filter_map(|l| {
            let l = l.split('#').next()?.trim();
            Some(root.localize(l.strip_prefix("docker compose run --rm pgkeep ")?))
        })
        .collect();
    assert_eq!(runs.len(), 2, "key add, then status: {runs:?}");
    let run = |args: &str| pgkeep_env(&args.split_whitespace().collect::<Vec<_>>(), &env);
    ok(&run(&runs[0]), &runs[0]);
    // `docker compose up -d`: the daemon's first scheduled backup, run here
    // as the one-shot command of the same job.
    let o = pgkeep_env(&["backup", "--policy", p, "--job", "app"], &env);
    ok(&o, "backup");
    assert_eq!(root.backups(), 1, "{}", text(&o));
    let status = run(&runs[1]);
    assert!(
        status.status.code().is_some_and(|c| c <= 1),
        "{}: {}",
        runs[1],
        text(&status)
    );
    until("the healthchecks success ping", 30, || async {
        !ping
            .received("/5f0c6c38-0a4e-4b63-a8c4-9f6b1c1d2e3f")
            .is_empty()
    })
    .await;
    let o = pgkeep_env(&["list", "--policy", p, "--job", "app", "--json"], &env);
    ok(&o, "list");
    // The key added from the passphrase file encrypts the backup.
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(list[0]["cipher"].is_string(), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_cronjob_validates_and_its_containers_run() {
    let c = cluster();
    let db = crate::pgkeep::db_with("recipes_k8s", "CREATE TABLE t AS SELECT 1 AS x;").await;
    let root = Root::new();
    let slack = Receiver::start(Answer::Ok).await;
    let manifests = blocks()
        .into_iter()
        .find(|b| b.heading == "Kubernetes CronJob" && b.lang == "yaml")
        .expect("the Kubernetes manifests")
        .body;
    let path = root.write("k8s.yaml", &manifests);
    let o = tool("kubernetes-validate")
        .arg("--strict")
        .arg(&path)
        .output()
        .unwrap();
    ok(&o, "kubernetes-validate --strict");

    let docs: Vec<serde_norway::Value> = serde_norway::Deserializer::from_str(&manifests)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let of = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"].as_str() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let policy = of("ConfigMap")["data"]["pgkeep.toml"].as_str().unwrap();
    let secret = of("Secret")["stringData"].as_mapping().unwrap();
    let pod = &of("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let mount = pod["containers"][0]["volumeMounts"][0]["mountPath"]
        .as_str()
        .unwrap();
    assert_eq!(mount, "/etc/pgkeep");
    root.write("etc/pgkeep.toml", policy);

    let moto = MotoServer::start();
    moto.create_bucket("acme-backups");
    let mut env: Vec<(String, String)> = Vec::new();
    for (k, v) in secret {
        let k = k.as_str().unwrap().to_string();
        let v = match k.as_str() {
            "PROD_DIRECT_URL" => c.url(&db),
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => "test".into(),
            "SLACK_WEBHOOK_URL" => format!("{}/slack", slack.url),
            _ => v.as_str().unwrap().to_string(),
        };
        env.push((k, v));
    }
    // The test's S3 API server in place of AWS.
    env.push(("AWS_ENDPOINT_URL".into(), moto.endpoint()));
    env.push(("AWS_ALLOW_HTTP".into(), "true".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for container in [&pod["initContainers"][0], &pod["containers"][0]] {
        let args: Vec<String> = container["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| root.localize(a.as_str().unwrap()))
            .collect();
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = pgkeep_env(&argv, &env);
        ok(&o, &args.join(" "));
    }
    let p = root.at("etc/pgkeep.toml");
    let p = p.to_str().unwrap();
    let o = pgkeep_env(&["list", "--policy", p, "--job", "app", "--json"], &env);
    ok(&o, "list");
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}
