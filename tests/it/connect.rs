//! Connections the libpq way, against the real server: the password from
//! `.pgpass` (`PGPASSFILE`), `PG*` variables and `DATABASE_URL` in the CLI,
//! and TLS per `sslmode` (require, verify-ca, verify-full).

use crate::pgkeep::{assert_secret_not_stored, count_rows};
use crate::support::tls::enable_tls;
use crate::support::{cluster, SUPERUSER_PASSWORD};
use pgkeep::config::ConnSettings;
use pgkeep::pg::connect;
use pgkeep::Error;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// An environment for `resolve_with`: only these variables exist.
fn env_of(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    move |k| map.get(k).cloned()
}

/// Connects with pgkeep and says whether the session uses TLS.
async fn session_ssl(settings: &ConnSettings) -> pgkeep::Result<bool> {
    let conn = connect(settings).await?;
    let row = conn
        .client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgpass_file_supplies_the_password() {
    let c = cluster();
    let dir = tempfile::tempdir().unwrap();
    let passfile = dir.path().join("pgpass");
    // The first line is for another port: it must not match.
    std::fs::write(
        &passfile,
        format!(
            "# test\n{host}:1:*:{user}:wrong-one\n{host}:{port}:*:{user}:{pw}\n",
            host = c.host(),
            port = c.port(),
            user = c.user(),
            pw = SUPERUSER_PASSWORD.replace('\\', "\\\\").replace(':', "\\:"),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = env_of(&[("PGPASSFILE", passfile.display().to_string())]);
    let url = c.url_no_password("postgres");

    let settings = ConnSettings::resolve_with(&url, &env).unwrap();
    assert_eq!(settings.password(), Some(SUPERUSER_PASSWORD));
    let conn = connect(&settings)
        .await
        .expect("connects with the .pgpass password");
    let user: String = conn
        .client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, c.user());

    // A password file others can read is ignored, as libpq does: no
    // password, so scram authentication fails with a clear error.
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let settings = ConnSettings::resolve_with(&url, &env).unwrap();
    assert_eq!(settings.password(), None);
    let err = connect(&settings)
        .await
        .err()
        .expect("no password, no login");
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.to_string().contains("password"), "{err}");
}

/// The CLI with exactly these environment variables (plus a private HOME,
/// so no `~/.pgpass` or `~/.postgresql` of the machine is used).
fn pgkeep_with_env(home: &Path, vars: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgkeep"));
    cmd.env_clear().env("HOME", home).args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("pgkeep runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn small_source(prefix: &str) -> String {
    let c = cluster();
    let db = c.create_db(prefix).await;
    c.client(&db)
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g;")
        .await
        .unwrap();
    db
}

fn pg_env(db: &str) -> Vec<(&'static str, String)> {
    let c = cluster();
    vec![
        ("PGHOST", c.host().to_owned()),
        ("PGPORT", c.port().to_string()),
        ("PGUSER", c.user().to_owned()),
        ("PGPASSWORD", c.password().unwrap_or_default().to_owned()),
        ("PGDATABASE", db.to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_takes_the_server_from_pg_variables() {
    let c = cluster();
    let src = small_source("conn_pgenv_src").await;
    let dst = c.create_db("conn_pgenv_dst").await;
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("repo");
    let repo = repo.to_str().unwrap();

    let o = pgkeep_with_env(
        home.path(),
        &pg_env(&src),
        &["backup", "--repo", repo, "--json"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let header: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        header["database"],
        src.as_str(),
        "PGDATABASE names the source"
    );
    let o2 = pgkeep_with_env(
        home.path(),
        &pg_env(&dst),
        &["restore", "--repo", repo, "latest"],
    );
    assert!(o2.status.success(), "{}", text(&o2));
    let n = count_rows(&dst, "t").await;
    assert_eq!(n, 1000);
    for o in [&o, &o2] {
        assert!(!text(o).contains(SUPERUSER_PASSWORD), "{}", text(o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_uses_database_url_unless_db_is_given() {
    let c = cluster();
    let src = small_source("conn_dburl_src").await;
    let other = small_source("conn_dburl_other").await;
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("repo");
    let repo = repo.to_str().unwrap();
    let env = [("DATABASE_URL", c.url(&src))];

    let o = pgkeep_with_env(home.path(), &env, &["backup", "--repo", repo, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let header: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(header["database"], src.as_str());

    let o = pgkeep_with_env(
        home.path(),
        &env,
        &["backup", "--repo", repo, "--json", "--db", &c.url(&other)],
    );
    assert!(o.status.success(), "{}", text(&o));
    let header: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        header["database"],
        other.as_str(),
        "--db wins over DATABASE_URL"
    );
    assert_secret_not_stored(home.path(), SUPERUSER_PASSWORD);
}

/// `key=value` settings for the test server with the given TLS options.
fn tls_settings(host: &str, extra: &str) -> ConnSettings {
    let c = cluster();
    let conninfo = format!(
        "host={host} port={} user={} password={} dbname=postgres {extra}",
        c.port(),
        c.user(),
        c.password().unwrap_or_default()
    );
    ConnSettings::resolve_with(&conninfo, &|_| None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_check_what_libpq_checks() {
    let tls = enable_tls();
    let ca = format!("sslrootcert={}", tls.ca.display());
    let other_ca = format!("sslrootcert={}", tls.other_ca.display());

    // Encryption without verification.
    for (mode, want) in [("disable", false), ("prefer", true), ("require", true)] {
        let s = tls_settings("127.0.0.1", &format!("sslmode={mode}"));
        assert_eq!(session_ssl(&s).await.unwrap(), want, "sslmode={mode}");
    }

    // verify-ca: the chain must lead to sslrootcert; the host name is not checked.
    let s = tls_settings("127.0.0.1", &format!("sslmode=verify-ca {ca}"));
    assert!(session_ssl(&s).await.expect("verify-ca with the right CA"));
    let s = tls_settings("127.0.0.1", &format!("sslmode=verify-ca {other_ca}"));
    let err = session_ssl(&s)
        .await
        .expect_err("verify-ca with a wrong CA");
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    // require with a root certificate acts as verify-ca (libpq).
    let s = tls_settings("127.0.0.1", &format!("sslmode=require {other_ca}"));
    let err = session_ssl(&s)
        .await
        .expect_err("require + wrong root cert");
    assert!(err.to_string().contains("certificate"), "{err}");

    // verify-full: the host name must match the certificate too.
    let s = tls_settings("127.0.0.1", &format!("sslmode=verify-full {ca}"));
    let err = session_ssl(&s)
        .await
        .expect_err("127.0.0.1 is not in the certificate");
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(
        err.to_string().contains("not valid for name \"127.0.0.1\""),
        "{err}"
    );
    let s = tls_settings(tls.server_name, &format!("sslmode=verify-full {ca}"));
    assert!(session_ssl(&s)
        .await
        .expect("verify-full with the matching name"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_backup_and_restore_over_verified_tls() {
    let tls = enable_tls();
    let c = cluster();
    let src = small_source("conn_tls_src").await;
    let dst = c.create_db("conn_tls_dst").await;
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("repo");
    let repo = repo.to_str().unwrap();
    let tls_env = |db: &str| {
        let mut env = pg_env(db);
        env[0].1 = tls.server_name.to_owned();
        env.push(("PGSSLMODE", "verify-full".to_owned()));
        env.push(("PGSSLROOTCERT", tls.ca.display().to_string()));
        env
    };
    // Leader, workers and cancel requests all go through verified TLS.
    let o = pgkeep_with_env(
        home.path(),
        &tls_env(&src),
        &["backup", "--repo", repo, "--jobs", "2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = pgkeep_with_env(
        home.path(),
        &tls_env(&dst),
        &["restore", "--repo", repo, "latest"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let n = count_rows(&dst, "t").await;
    assert_eq!(n, 1000);

    // The wrong CA fails the CLI with a clear message and exit code 1.
    let mut env = tls_env(&src);
    env.last_mut().unwrap().1 = tls.other_ca.display().to_string();
    let o = pgkeep_with_env(home.path(), &env, &["backup", "--repo", repo]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("certificate"), "{}", text(&o));
}
