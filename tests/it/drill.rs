//! Restore drills as a user runs them: a multi-tenant database with RLS,
//! FORCE RLS, policies and a hash-chained event table, drilled from a
//! policy file through the CLI. A passing drill leaves its proof in the
//! repository and no scratch database; each way a drill can fail (a
//! tampered row count, a dropped policy, an `expect` that does not hold, a
//! failing command, an RTO of one second) exits 3 with a proof naming it;
//! the source-cluster guard refuses; SIGINT drops the scratch database;
//! the password appears in no proof, log or output.

use crate::cli::{pgkeep_env, text};
use crate::pgkeep::assert_secret_not_stored;
use crate::support::{cluster, fixtures_dir, SUPERUSER_PASSWORD};
use std::path::{Path, PathBuf};
use std::process::Output;

const TENANTS: &str = r#"
CREATE TABLE "Organization" (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE "User" (id int PRIMARY KEY, "orgId" int NOT NULL REFERENCES "Organization", email text);
CREATE TABLE "Event" (id bigserial PRIMARY KEY, "orgId" int NOT NULL REFERENCES "Organization", kind text);
CREATE TABLE audit_note (id int);
INSERT INTO "Organization" SELECT g, 'org ' || g FROM generate_series(1, 3) g;
INSERT INTO "User" SELECT g, 1 + g % 3, 'u' || g || '@example.com' FROM generate_series(1, 30) g;
INSERT INTO "Event" ("orgId", kind) SELECT 1 + g % 3, 'k' || g % 7 FROM generate_series(1, 300) g;
ALTER TABLE "User" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "Event" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "Event" FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON "Event" USING ("orgId" = current_setting('app.org', true)::int);
CREATE POLICY tenant_users ON "User" AS RESTRICTIVE FOR SELECT TO PUBLIC
  USING ("orgId" = current_setting('app.org', true)::int);
"#;

/// The source database: tenants plus the fixture event store.
async fn source_db() -> String {
    let c = cluster();
    let db = crate::pgkeep::db_with("drill_src", TENANTS).await;
    c.psql_file(&db, fixtures_dir().join("chain_events.sql"));
    c.psql(&db, "SELECT evt.generate(5, 10)");
    db
}

fn psql_path() -> String {
    cluster()
        .pg_tool("psql")
        .get_program()
        .to_string_lossy()
        .into_owned()
}

/// The environment pgkeep (and the drill's command) runs with.
fn tool_env() -> Vec<(String, String)> {
    cluster()
        .pg_tool("psql")
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
        .collect()
}

struct Drill {
    dir: tempfile::TempDir,
    source_url: String,
    staging_url: String,
}

impl Drill {
    async fn new() -> Drill {
        let c = cluster();
        let db = source_db().await;
        Drill {
            dir: tempfile::tempdir().unwrap(),
            source_url: c.url(&db),
            staging_url: c.url("postgres"),
        }
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// A policy with the given drill section lines (after the standard ones).
    fn policy(
        &self,
        name: &str,
        rto: &str,
        allow_source: bool,
        command: &str,
        expect: &str,
    ) -> PathBuf {
        let chain = std::fs::read_to_string(fixtures_dir().join("chain_events.toml")).unwrap();
        let text = format!(
            r#"
[repository]
url = "{repo}"

[[database]]
name = "app"
url = "${{APP_DATABASE_URL}}"
jobs = 2
rpo = "1h"
rto = "{rto}"

[database.drill]
every = "1d"
target = "${{STAGING_URL}}"
allow_source_cluster = {allow_source}
non_empty = ["Organization", "Event", "User"]
rls = "as_source"
verify_chains = true
command = {command}
command_timeout = "2m"

[[database.drill.check]]
name = "org-scoped join"
sql = 'SELECT count(*) FROM "Organization" o JOIN "Event" e ON e."orgId" = o.id'
expect = "{expect}"

{chain}
"#,
            repo = self.repo().display()
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut env: Vec<(String, String)> = tool_env();
        env.push(("APP_DATABASE_URL".into(), self.source_url.clone()));
        env.push(("STAGING_URL".into(), self.staging_url.clone()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pgkeep_env(args, &env)
    }

    fn proof(&self, out: &Output) -> serde_json::Value {
        let proof: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("drill --json prints its proof ({e}): {}", text(out)));
        let id = proof["drill_id"].as_str().unwrap();
        let stored = self.repo().join(format!("app/drills/{id}/proof.json"));
        let stored: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&stored).expect("the proof is in the repository"),
        )
        .unwrap();
        assert_eq!(stored, proof, "the printed proof is the stored one");
        assert!(self
            .repo()
            .join(format!("app/drills/{id}/drill.log"))
            .is_file());
        proof
    }
}

/// Scratch databases left on the cluster.
async fn scratch_databases() -> Vec<String> {
    cluster()
        .column(
            "postgres",
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'pgkeep\\_drill\\_%'",
        )
        .await
}

fn checks_failed(proof: &serde_json::Value) -> Vec<(String, String)> {
    proof["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "failed")
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("[{}]", quoted.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_passes_leaves_its_proof_and_no_scratch_database() {
    let d = Drill::new().await;
    let psql = psql_path();
    // The application's "tests": read the copy through DATABASE_URL, and
    // print it (the log must not keep the password).
    let script = format!(
        "echo \"connecting to $DATABASE_URL\"; {psql} -X -v ON_ERROR_STOP=1 -Atc 'SELECT count(*) FROM \"Organization\"' \"$DATABASE_URL\""
    );
    let policy = d.policy(
        "pass.toml",
        "10m",
        true,
        &toml_list(&["sh", "-c", &script]),
        "> 0",
    );
    let p = policy.to_str().unwrap();
    let o = d.run(&["backup", "--policy", p, "--job", "app"]);
    assert!(o.status.success(), "{}", text(&o));

    let out_dir = d.dir.path().join("artifacts");
    let o = d.run(&[
        "drill",
        "--policy",
        p,
        "--job",
        "app",
        "--json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let proof = d.proof(&o);
    assert_eq!(proof["verdict"], "passed", "{proof:#}");
    let kinds: Vec<&str> = proof["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    for k in [
        "command",
        "row_counts",
        "non_empty",
        "rls",
        "sql",
        "chains",
        "rto",
        "rpo",
    ] {
        assert!(kinds.contains(&k), "{k} missing in {kinds:?}");
    }
    let rls = proof["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "rls")
        .unwrap();
    assert_eq!(
        rls["value"], "2 tables with RLS (1 forced), 2 policies",
        "{rls:#}"
    );
    let chains = proof["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "chains")
        .unwrap();
    assert!(
        chains["value"]
            .as_str()
            .unwrap()
            .contains("5 streams, 50 events, 0 broken"),
        "{chains:#}"
    );
    let t = &proof["timings"];
    assert!(t["rto_ms"].as_u64().unwrap() >= t["data_ms"].as_u64().unwrap());
    assert_eq!(proof["rto"]["verdict"], "met");
    assert_eq!(proof["rpo"]["verdict"], "met");
    assert_eq!(proof["scratch_dropped"], true);
    assert!(proof["backup"]["manifest_sha256"].as_str().unwrap().len() == 64);
    let scratch = proof["scratch_database"].as_str().unwrap().to_string();
    assert!(scratch.starts_with("pgkeep_drill_"), "{scratch}");
    assert!(
        !scratch_databases().await.contains(&scratch),
        "the scratch database is dropped"
    );
    let log = std::fs::read_to_string(d.repo().join(format!(
        "app/drills/{}/drill.log",
        proof["drill_id"].as_str().unwrap()
    )))
    .unwrap();
    assert!(
        log.contains("| 3"),
        "the command's output is in the log:\n{log}"
    );
    assert!(log.contains("connecting to postgresql://"), "{log}");
    let artifacts: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for prefix in ["restore-proof-", "restore-result-", "restore-test-"] {
        assert!(
            artifacts.iter().any(|a| a.starts_with(prefix)),
            "{prefix} in {artifacts:?}"
        );
    }

    // list --drills, status and --markdown see it.
    let o = d.run(&["list", "--drills", "--policy", p, "--job", "app"]);
    assert!(
        o.status.success() && text(&o).contains("passed"),
        "{}",
        text(&o)
    );
    let o = d.run(&["status", "--policy", p, "--job", "app", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "a passed drill within `every` is OK: {}",
        text(&o)
    );
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(status.to_string().contains("last_drill"), "{status}");
    let o = d.run(&[
        "drill",
        "--policy",
        p,
        "--job",
        "app",
        "--markdown",
        "latest",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.starts_with("## DRILL-20"), "{md}");
    assert!(
        md.contains("| public.Event | 300 |") && md.contains("**Verdict:** PASSED"),
        "{md}"
    );

    assert_secret_not_stored(&d.repo(), SUPERUSER_PASSWORD);
    assert_secret_not_stored(&out_dir, SUPERUSER_PASSWORD);
    assert!(!text(&o).contains(SUPERUSER_PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failing_check_fails_the_drill_with_exit_3_and_a_proof_that_names_it() {
    let d = Drill::new().await;
    let psql = psql_path();
    let sql_cmd = |sql: &str| {
        toml_list(&[
            "sh",
            "-c",
            &format!("{psql} -X -v ON_ERROR_STOP=1 -qc '{sql}' \"$DATABASE_URL\""),
        ])
    };
    let ok = toml_list(&["true"]);
    // (policy file, command, rto, expect, (failed check kind, name))
    type Case<'a> = (&'a str, String, &'a str, &'a str, (&'a str, &'a str));
    let cases: Vec<Case> = vec![
        (
            "tamper.toml",
            sql_cmd("DELETE FROM \"Event\" WHERE id <= 5"),
            "10m",
            "> 0",
            ("row_counts", "row counts"),
        ),
        (
            "policy.toml",
            sql_cmd("DROP POLICY tenant_isolation ON \"Event\""),
            "10m",
            "> 0",
            ("rls", "row-level security as in the source"),
        ),
        (
            "expect.toml",
            ok.clone(),
            "10m",
            "> 1000000",
            ("sql", "org-scoped join"),
        ),
        (
            "exit.toml",
            toml_list(&["sh", "-c", "echo failing tests; exit 1"]),
            "10m",
            "> 0",
            ("command", "command: sh -c echo failing tests; exit 1"),
        ),
        (
            "rto.toml",
            toml_list(&["sleep", "1.2"]),
            "1s",
            "> 0",
            ("rto", "RTO"),
        ),
    ];
    let first = d.policy("base.toml", "10m", true, &ok, "> 0");
    let o = d.run(&[
        "backup",
        "--policy",
        first.to_str().unwrap(),
        "--job",
        "app",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for (file, command, rto, expect, (kind, name)) in cases {
        let policy = d.policy(file, rto, true, &command, expect);
        let o = d.run(&[
            "drill",
            "--policy",
            policy.to_str().unwrap(),
            "--job",
            "app",
            "--json",
        ]);
        assert_eq!(o.status.code(), Some(3), "{file}: {}", text(&o));
        let proof = d.proof(&o);
        assert_eq!(proof["verdict"], "failed", "{file}: {proof:#}");
        assert_eq!(
            checks_failed(&proof),
            vec![(kind.to_string(), name.to_string())],
            "{file}: {proof:#}"
        );
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(name),
            "{file}: the error names the check: {}",
            text(&o)
        );
        let scratch = proof["scratch_database"].as_str().unwrap().to_string();
        assert!(
            !scratch_databases().await.contains(&scratch),
            "{file}: scratch database dropped"
        );
    }
    // What the failed checks found.
    let o = d.run(&[
        "list",
        "--drills",
        "--policy",
        first.to_str().unwrap(),
        "--job",
        "app",
        "--json",
    ]);
    let drills: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let details: Vec<String> = drills
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["checks"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|c| c["details"].as_array().cloned().unwrap_or_default())
        })
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for want in [
        "public.Event: 295 rows in the copy, 300 in the backup",
        "policy \"tenant_isolation\" is missing in the copy",
        "expected > 1000000",
        "exit 1: failing tests",
        "RTO missed",
    ] {
        assert!(
            details.iter().any(|d| d.contains(want)),
            "{want} in {details:#?}"
        );
    }
    // status: the newest drill failed, the last passed one is none: WARNING.
    let o = d.run(&[
        "status",
        "--policy",
        first.to_str().unwrap(),
        "--job",
        "app",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_refuse_the_source_cluster_and_an_interrupt_drops_the_scratch_database() {
    let d = Drill::new().await;
    let ok = toml_list(&["true"]);
    let guarded = d.policy("guarded.toml", "10m", false, &ok, "> 0");
    let g = guarded.to_str().unwrap();
    let o = d.run(&["backup", "--policy", g, "--job", "app"]);
    assert!(o.status.success(), "{}", text(&o));

    // The staging URL is the source's cluster: refused, nothing created.
    let o = d.run(&["drill", "--policy", g, "--job", "app", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("source cluster"), "{}", text(&o));
    let proof = d.proof(&o);
    assert_eq!(proof["verdict"], "error");
    assert!(
        proof["error"].as_str().unwrap().contains("source cluster"),
        "{proof:#}"
    );
    assert_eq!(proof["scratch_dropped"], true, "nothing was created");
    assert!(!scratch_databases()
        .await
        .contains(&proof["scratch_database"].as_str().unwrap().to_string()));

    // SIGINT while the command runs: the scratch database goes, exit 130.
    let marker = d.dir.path().join("command-started");
    let script = format!(
        "echo \"$PGDATABASE\" > '{}.tmp'; mv '{0}.tmp' '{0}'; sleep 120",
        marker.display()
    );
    let slow = d.policy(
        "slow.toml",
        "10m",
        true,
        &toml_list(&["sh", "-c", &script]),
        "> 0",
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pgkeep"));
    cmd.args([
        "drill",
        "--policy",
        slow.to_str().unwrap(),
        "--job",
        "app",
        "--json",
    ])
    .env("APP_DATABASE_URL", &d.source_url)
    .env("STAGING_URL", &d.staging_url)
    .env_remove("DATABASE_URL")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    for (k, v) in tool_env() {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    wait_for_file(&marker);
    let scratch = std::fs::read_to_string(&marker).unwrap().trim().to_string();
    assert!(
        scratch_databases().await.contains(&scratch),
        "the drill's scratch database {scratch} exists"
    );
    // SAFETY: signals a child process this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(
        !scratch_databases().await.contains(&scratch),
        "an interrupted drill drops its scratch database"
    );
    let o2 = d.run(&["list", "--drills", "--policy", g, "--job", "app", "--json"]);
    let drills: serde_json::Value = serde_json::from_slice(&o2.stdout).unwrap();
    let last = drills.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["verdict"], "error");
    assert!(
        last["error"].as_str().unwrap().contains("interrupted"),
        "{last:#}"
    );
    assert_secret_not_stored(&d.repo(), SUPERUSER_PASSWORD);
    assert!(!text(&o).contains(SUPERUSER_PASSWORD));
}

/// Waits for the drill's command to have started (it creates `path`),
/// polling the file system; fails after two minutes.
fn wait_for_file(path: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
