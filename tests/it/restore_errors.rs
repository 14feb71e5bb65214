//! How a restore meets failures and what is already in the target, through
//! the CLI as a user runs it: `--exit-on-error` (the default) stops at the
//! first failure; `--continue-on-error` goes past each, lists them and their
//! count, and exits 1; `--single-transaction` is all or nothing; a backup of
//! a newer major is refused unless `--allow-downgrade`; `--clean
//! --if-exists` drops only what the backup holds; a restore killed mid-data
//! or mid-post-data continues with `--resume`, loading no row twice.

use crate::cli::{pgkeep_env, text};
use crate::support::{assert_same_database, cluster};
use std::process::Output;

const SOURCE: &str = "
CREATE SCHEMA app;
CREATE TABLE app.a (id int PRIMARY KEY, v text);
INSERT INTO app.a SELECT g, 'a' || g FROM generate_series(1, 10) g;
CREATE TABLE app.b (id int PRIMARY KEY, v text);
INSERT INTO app.b SELECT g, 'b' || g FROM generate_series(1, 5) g;
CREATE INDEX b_v_idx ON app.b (v);
CREATE VIEW app.v AS SELECT count(*) AS n FROM app.a;
";

/// A target already holding schema `app` and a table `app.b` of another
/// shape (a NOT NULL column the backup's rows leave empty): creating the
/// schema and the table fails, and so does loading `app.b`'s rows.
const CONFLICTING: &str = "
CREATE SCHEMA app;
CREATE TABLE app.b (id int, v text, extra int NOT NULL);
";

struct Case {
    _dir: tempfile::TempDir,
    repo: String,
    src: String,
}

impl Case {
    /// A backup of [`SOURCE`].
    async fn new(prefix: &str) -> Case {
        Case::of(crate::pgkeep::db_with(&format!("{prefix}_src"), SOURCE).await)
    }

    /// A backup of the kitchen sink fixture.
    async fn kitchen_sink(prefix: &str) -> Case {
        let src = cluster().create_db(&format!("{prefix}_src")).await;
        cluster().load_kitchen_sink(&src);
        Case::of(src)
    }

    fn of(src: String) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo").to_str().unwrap().to_string();
        let o = pgkeep_env(
            &["backup", "--db", &cluster().url(&src), "--repo", &repo],
            &[],
        );
        assert!(o.status.success(), "{}", text(&o));
        Case {
            _dir: dir,
            repo,
            src,
        }
    }

    fn restore(&self, db: &str, extra: &[&str]) -> Output {
        let url = cluster().url(db);
        let mut args = vec!["restore", "--repo", &self.repo, "--db", &url];
        args.extend_from_slice(extra);
        pgkeep_env(&args, &[])
    }
}

async fn count(db: &str, sql: &str) -> Option<i64> {
    cluster()
        .client(db)
        .await
        .query_one(sql, &[])
        .await
        .ok()
        .map(|r| r.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_on_error_stops_and_continue_on_error_reports_every_failure() {
    let case = Case::new("rerr").await;

    // The default stops at the first failure (the schema exists): nothing
    // of the backup is created.
    let dst = crate::pgkeep::db_with("rerr_exit", CONFLICTING).await;
    let o = case.restore(&dst, &["-n", "app"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("schema app") || text(&o).contains("SCHEMA app"),
        "{}",
        text(&o)
    );
    assert_eq!(
        count(&dst, "SELECT count(*) FROM app.a").await,
        None,
        "app.a created"
    );
    // -e says the same explicitly.
    let o = case.restore(&dst, &["-n", "app", "-e"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // --continue-on-error: everything else is restored; each failure is
    // named and counted; exit 1.
    let dst = crate::pgkeep::db_with("rerr_go", CONFLICTING).await;
    let o = case.restore(&dst, &["-n", "app", "--continue-on-error", "--jobs", "2"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert_eq!(
        count(&dst, "SELECT count(*) FROM app.a").await,
        Some(10),
        "{out}"
    );
    assert_eq!(count(&dst, "SELECT n FROM app.v").await, Some(10), "{out}");
    assert_eq!(
        count(&dst, "SELECT count(*) FROM app.b").await,
        Some(0),
        "{out}"
    );
    let failed: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("failed:"))
        .collect();
    assert!(failed.iter().any(|l| l.contains("app")), "{out}");
    assert!(
        failed
            .iter()
            .any(|l| l.contains("app.b") && l.contains("extra")),
        "the data load into app.b is named: {out}"
    );
    assert!(
        out.contains(&format!("finished with {} failures", failed.len())),
        "{out}"
    );
    assert!(failed.len() >= 3, "schema, table and data of app.b: {out}");

    // --json carries the same list.
    let dst = crate::pgkeep::db_with("rerr_json", CONFLICTING).await;
    let o = case.restore(&dst, &["-n", "app", "--continue-on-error", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        summary["failures"].as_array().map(Vec::len),
        Some(failed.len())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_transaction_is_all_or_nothing() {
    let c = cluster();
    // A failure anywhere leaves nothing, not even what came before it.
    let case = Case::new("rone").await;
    let dst = crate::pgkeep::db_with(
        "rone_fail",
        "CREATE SCHEMA app; CREATE TABLE app.b (id int, v text, extra int NOT NULL); CREATE TABLE app.keep (x int);",
    )
    .await;
    // The schema entry is skipped by the selection of one table, so the
    // failure comes at app.b's creation, after app.a's.
    let o = case.restore(
        &dst,
        &["-t", "app.a", "-t", "app.b", "--single-transaction"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        count(&dst, "SELECT count(*) FROM app.a").await,
        None,
        "{}",
        text(&o)
    );
    assert_eq!(count(&dst, "SELECT count(*) FROM app.keep").await, Some(0));

    // The kitchen sink round-trips in one transaction (-1, jobs 1 implied).
    let sink = Case::kitchen_sink("rone_ks").await;
    let dst = c.create_db("rone_ks_dst").await;
    let o = sink.restore(&dst, &["-1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_same_database(c, &sink.src, &dst).await;

    // Combinations that cannot work are refused before anything runs.
    for (flags, says) in [
        (&["-1", "--jobs", "2"][..], "--jobs"),
        (&["-1", "--continue-on-error"][..], "continue-on-error"),
        (&["-1", "--create"][..], "create"),
    ] {
        let mut args = vec![
            "restore",
            "--repo",
            &sink.repo,
            "--db",
            "postgres://x@127.0.0.1:1/none",
        ];
        args.extend_from_slice(flags);
        let o = pgkeep_env(&args, &[]);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{flags:?}: {}", text(&o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_newer_major_is_refused_unless_allow_downgrade() {
    let c = cluster();
    let case = Case::new("rdown").await;
    // The manifest header says the source ran PostgreSQL 99 (its checksum
    // recomputed, as a newer pgkeep on a newer server would have written).
    let backups = std::path::Path::new(&case.repo).join("backups");
    let id = std::fs::read_dir(&backups)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let manifest = id.join("manifest");
    let header = std::fs::read(&manifest).unwrap();
    let version = {
        let hl = u32::from_le_bytes(header[12..16].try_into().unwrap()) as usize;
        let h: serde_json::Value = serde_json::from_slice(&header[16..16 + hl]).unwrap();
        h["server_version"].as_str().unwrap().to_string()
    };
    crate::encryption::tamper_header(
        &manifest,
        &format!("\"server_version\":\"{version}\""),
        "\"server_version\":\"99.1\"",
    );
    let dst = c.create_db("rdown_dst").await;
    let o = case.restore(&dst, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("PostgreSQL 99") && out.contains("--allow-downgrade"),
        "{out}"
    );
    assert_eq!(count(&dst, "SELECT count(*) FROM app.a").await, None);
    let o = case.restore(&dst, &["--allow-downgrade"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count(&dst, "SELECT count(*) FROM app.a").await, Some(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_if_exists_drops_only_what_the_backup_holds() {
    let c = cluster();
    let sink = Case::kitchen_sink("rifx").await;
    let restore = |db: &str, extra: &[&str]| sink.restore(db, extra);

    // Into an empty database: every drop finds nothing and skips it.
    let dst = c.create_db("rifx_dst").await;
    let o = restore(&dst, &["--clean", "--if-exists"]);
    assert!(o.status.success(), "{}", text(&o));

    // Over itself, with objects of its own beside the backup's and the
    // backup's rows changed: the backup's objects come back as they were,
    // the others stay.
    c.psql(
        &dst,
        "CREATE SCHEMA other; CREATE TABLE other.keep (x int); INSERT INTO other.keep VALUES (1), (2);
         CREATE TABLE public.keep_too (x int); DELETE FROM app.audit_log;",
    );
    let preview = restore(&dst, &["--clean", "--if-exists", "--dry-run"]);
    assert!(preview.status.success(), "{}", text(&preview));
    let listed = String::from_utf8_lossy(&preview.stdout).to_string();
    assert!(
        listed.contains("DROP TABLE IF EXISTS app.users"),
        "{listed}"
    );
    assert!(listed.contains("DROP SCHEMA IF EXISTS app"), "{listed}");
    assert!(
        !listed.contains(" other") && !listed.contains("keep_too"),
        "{listed}"
    );
    let o = restore(&dst, &["--clean", "--if-exists"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        count(&dst, "SELECT count(*) FROM other.keep").await,
        Some(2)
    );
    assert_eq!(
        count(&dst, "SELECT count(*) FROM public.keep_too").await,
        Some(0)
    );
    c.psql(
        &dst,
        "DROP SCHEMA other CASCADE; DROP TABLE public.keep_too;",
    );
    assert_same_database(c, &sink.src, &dst).await;

    // An object outside the backup that depends on one inside stops the
    // clean, and nothing is dropped.
    c.psql(
        &dst,
        "CREATE VIEW public.tenant_names AS SELECT name FROM app.tenants;",
    );
    let tenants = count(&dst, "SELECT count(*) FROM app.tenants").await;
    let o = restore(&dst, &["--clean", "--if-exists"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("tenant_names"), "{}", text(&o));
    assert_eq!(
        count(&dst, "SELECT count(*) FROM app.tenants").await,
        tenants
    );
    assert_eq!(
        count(&dst, "SELECT count(*) FROM public.tenant_names").await,
        tenants
    );

    // With a selection, only what is selected is dropped and restored.
    let case = Case::new("rifx_sel").await;
    let sel = crate::pgkeep::db_with("rifx_sel_dst", "").await;
    let o = case.restore(&sel, &[]);
    assert!(o.status.success(), "{}", text(&o));
    c.psql(
        &sel,
        "DELETE FROM app.b; INSERT INTO app.a VALUES (11, 'mine');",
    );
    let o = case.restore(&sel, &["-t", "app.b", "--clean"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--clean alone with a selection: {}",
        text(&o)
    );
    let o = case.restore(&sel, &["-t", "app.b", "--clean", "--if-exists"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count(&sel, "SELECT count(*) FROM app.b").await, Some(5));
    assert_eq!(count(&sel, "SELECT count(*) FROM app.a").await, Some(11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_restore_resumes_where_it_stopped() {
    use std::os::unix::process::ExitStatusExt;
    let c = cluster();
    let sink = Case::kitchen_sink("rres").await;
    for (point, n) in [("restore-data-unit", 3), ("restore-post-entry", 6)] {
        let dst = c.create_db(&format!("rres_{n}")).await;
        // The failpoint aborts the process as a crash or kill -9 would.
        let url = c.url(&dst);
        let failpoint = format!("{point}:{n}");
        let o = pgkeep_env(
            &["restore", "--repo", &sink.repo, "--db", &url, "--jobs", "2"],
            &[("PGKEEP_FAILPOINT", &failpoint)],
        );
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGABRT),
            "{point}: {}",
            text(&o)
        );
        // Without --resume: refused, pointing at --resume.
        let o = sink.restore(&dst, &[]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("--resume"), "{}", text(&o));
        // --resume finishes it: equal to the source, no row loaded twice,
        // and the progress record gone.
        let o = sink.restore(&dst, &["--resume", "--jobs", "2"]);
        assert!(o.status.success(), "{point}: {}", text(&o));
        assert_same_database(c, &sink.src, &dst).await;
        assert_eq!(
            count(
                &dst,
                "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgkeep_restore'"
            )
            .await,
            Some(0)
        );
    }
    // Nothing to resume: refused.
    let dst = c.create_db("rres_none").await;
    let o = sink.restore(&dst, &["--resume"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no interrupted restore"), "{}", text(&o));
}
