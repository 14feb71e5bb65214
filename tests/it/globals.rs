//! Globals across clusters, as the issue asks: a database with its own
//! roles (attributes, a membership with admin option, settings, comments,
//! a password), database properties (owner, settings, per-role settings,
//! comment, privileges, connection limit) and objects that need the roles
//! (owner, grants, a policy) is backed up on the test cluster and restored
//! into a second, fresh cluster. Without `--globals` the restore is refused
//! before it starts, naming the missing roles; with `--globals --create`
//! the roles are created and `pg_dump --create` of both databases (run by a
//! superuser) is the same, as are the roles' attributes, memberships,
//! settings, comments and password hashes. A second restore finds the roles
//! there and leaves them. Password hashes only go into encrypted backups
//! and are not readable in the repository.

use crate::cli::{pgkeep_env, text};
use crate::support::TestCluster;
use crate::support::{cluster, second_cluster};

const ROLES: &str = "
CREATE ROLE gl_owner LOGIN CREATEDB CONNECTION LIMIT 7 VALID UNTIL '2030-01-01 00:00:00+00' PASSWORD 'owner-secret-pw';
CREATE ROLE gl_reader NOLOGIN;
CREATE ROLE gl_unused NOLOGIN NOINHERIT;
CREATE ROLE gl_repl NOLOGIN REPLICATION;
GRANT gl_reader TO gl_owner WITH ADMIN OPTION;
ALTER ROLE gl_reader SET statement_timeout = '5s';
COMMENT ON ROLE gl_owner IS 'owns the app';
";

const APP: &str = "
CREATE SCHEMA app AUTHORIZATION gl_owner;
CREATE TABLE app.t (id int PRIMARY KEY, v text);
ALTER TABLE app.t OWNER TO gl_owner;
INSERT INTO app.t SELECT g, 'v' || g FROM generate_series(1, 30) g;
GRANT SELECT ON app.t TO gl_reader;
ALTER TABLE app.t ENABLE ROW LEVEL SECURITY;
CREATE POLICY readers ON app.t TO gl_reader USING (id > 0);
ALTER DATABASE gl_app SET work_mem = '8MB';
ALTER DATABASE gl_app SET search_path = app, public;
ALTER ROLE gl_reader IN DATABASE gl_app SET search_path = app;
COMMENT ON DATABASE gl_app IS 'the app database';
REVOKE CONNECT, TEMPORARY ON DATABASE gl_app FROM PUBLIC;
GRANT CONNECT ON DATABASE gl_app TO gl_reader;
ALTER DATABASE gl_app CONNECTION LIMIT 20;
";

/// `pg_dump --schema-only --create`: the database's properties too
/// (without the `pg_attver` options, which differ in each database).
pub(crate) fn dump_with_create(c: &TestCluster, db: &str) -> String {
    c.pg_dump_schema_with(db, &["--create"])
        .lines()
        .filter(|l| !l.contains("pg_attver"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The roles' attributes, memberships, settings, comments and password
/// hashes, one line each.
async fn role_facts(c: &TestCluster) -> Vec<String> {
    c.column(
        "postgres",
        "SELECT concat_ws(' | ', a.rolname, a.rolsuper, a.rolinherit, a.rolcreaterole, a.rolcreatedb, \
               a.rolcanlogin, a.rolreplication, a.rolbypassrls, a.rolconnlimit, a.rolvaliduntil::text, \
               a.rolpassword, pg_catalog.shobj_description(a.oid, 'pg_authid'), \
               (SELECT s.setconfig::text FROM pg_catalog.pg_db_role_setting s WHERE s.setrole = a.oid AND s.setdatabase = 0), \
               (SELECT string_agg(r.rolname || CASE WHEN m.admin_option THEN '+admin' ELSE '' END, ',' ORDER BY r.rolname) \
                  FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.roleid WHERE m.member = a.oid)) \
             FROM pg_catalog.pg_authid a WHERE a.rolname LIKE 'gl\\_%' ORDER BY a.rolname",
    )
    .await
}

async fn one_value(c: &TestCluster, sql: &str) -> String {
    c.client("postgres")
        .await
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn globals_and_database_properties_restore_into_another_cluster() {
    let (one, two) = (cluster(), second_cluster());
    one.psql("postgres", ROLES);
    one.psql("postgres", "CREATE DATABASE gl_app OWNER gl_owner");
    one.psql("gl_app", APP);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    let pass = [("PGKEEP_PASSPHRASE", "globals test passphrase")];
    let source = one.url("gl_app");
    // A repository without a key: a backup with password hashes is refused
    // (nothing to encrypt them with).
    let plain = dir.path().join("plain");
    let refused = pgkeep_env(
        &[
            "backup",
            "--db",
            &source,
            "--repo",
            plain.to_str().unwrap(),
            "--with-role-passwords",
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("encrypted"), "{}", text(&refused));
    let o = pgkeep_env(
        &["key", "add", "--repo", repo],
        &[("PGKEEP_NEW_PASSPHRASE", "globals test passphrase")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = pgkeep_env(
        &[
            "backup",
            "--db",
            &source,
            "--repo",
            repo,
            "--globals",
            "--with-role-passwords",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    // The password hash is in the sealed manifest body only.
    let hash = one_value(
        one,
        "SELECT rolpassword FROM pg_authid WHERE rolname = 'gl_owner'",
    )
    .await;
    let hash = hash.as_str();
    assert!(
        hash.starts_with("SCRAM-SHA-256$") || hash.starts_with("md5"),
        "{hash}"
    );
    crate::pgkeep::assert_secret_not_stored(std::path::Path::new(repo), hash);

    // Into a cluster without the roles: refused before anything is created.
    let target = two.url("gl_app");
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "--repo", repo, "--db", &target];
        args.extend_from_slice(extra);
        pgkeep_env(&args, &pass)
    };
    let o = restore(&["--create"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("gl_owner") && out.contains("gl_reader") && out.contains("--globals"),
        "{out}"
    );
    assert!(out.contains("--no-owner --no-acl"), "{out}");
    let exists = one_value(
        two,
        "SELECT count(*)::text FROM pg_database WHERE datname = 'gl_app'",
    )
    .await;
    assert_eq!(exists, "0", "nothing created");
    // Leaving owners and privileges out still needs the policy's role.
    let o = restore(&["--create", "--no-owner", "--no-acl"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("gl_reader") && !text(&o).contains("gl_owner"),
        "{}",
        text(&o)
    );

    // A restoring role that is not a superuser cannot create a
    // REPLICATION role: refused before anything is created.
    two.psql(
        "postgres",
        "CREATE ROLE rst_restorer LOGIN CREATEROLE CREATEDB PASSWORD 'restorer-pw'",
    );
    let as_restorer = format!(
        "postgres://rst_restorer:restorer-pw@127.0.0.1:{}/gl_app",
        two.port()
    );
    let o = pgkeep_env(
        &[
            "restore",
            "--repo",
            repo,
            "--db",
            &as_restorer,
            "--create",
            "--globals",
        ],
        &pass,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("gl_repl") && text(&o).contains("superuser"),
        "{}",
        text(&o)
    );
    let created = one_value(
        two,
        "SELECT count(*)::text FROM pg_roles WHERE rolname LIKE 'gl\\_%'",
    )
    .await;
    assert_eq!(created, "0", "no role created");

    // --globals --create: roles, memberships, settings, database properties.
    // At -vv with the driver asked for debug logs too, the password hash
    // that CREATE ROLE carries is printed nowhere.
    let o = pgkeep_env(
        &[
            "-vv",
            "--log-format",
            "json",
            "restore",
            "--repo",
            repo,
            "--db",
            &target,
            "--create",
            "--globals",
            "--json",
        ],
        &[pass[0], ("PGKEEP_LOG", "debug,tokio_postgres=debug")],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(hash), "the password hash was printed");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let created = summary["globals"]["roles_created"]
        .as_array()
        .unwrap()
        .clone();
    for role in ["gl_owner", "gl_reader", "gl_unused", "gl_repl"] {
        assert!(created.contains(&serde_json::json!(role)), "{summary}");
    }
    assert!(
        summary["globals"]["roles_existing"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("postgres")),
        "{summary}"
    );
    let dumped = dump_with_create(one, "gl_app");
    for part in [
        "ALTER DATABASE gl_app OWNER TO gl_owner",
        "CONNECTION LIMIT = 20",
        "COMMENT ON DATABASE gl_app",
        "ALTER DATABASE gl_app SET search_path TO 'app', 'public'",
        "ALTER ROLE gl_reader IN DATABASE gl_app SET search_path TO 'app'",
        "GRANT CONNECT ON DATABASE gl_app TO gl_reader",
        "CREATE POLICY readers",
    ] {
        assert!(
            dumped.contains(part),
            "the oracle covers {part:?}:\n{dumped}"
        );
    }
    assert_eq!(dumped, dump_with_create(two, "gl_app"));
    assert_eq!(role_facts(one).await, role_facts(two).await);
    assert_eq!(
        one.table_digests("gl_app").await,
        two.table_digests("gl_app").await
    );

    // Again, into another database: the roles are there and left alone.
    let o = pgkeep_env(
        &[
            "restore",
            "--repo",
            repo,
            "--db",
            &two.url("gl_app_again"),
            "--create",
            "--globals",
            "--json",
        ],
        &pass,
    );
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let again: serde_json::Value = summary["globals"]["roles_existing"].clone();
    for role in ["gl_owner", "gl_reader", "gl_unused", "postgres"] {
        assert!(
            again.as_array().unwrap().contains(&serde_json::json!(role)),
            "{summary}"
        );
    }
    assert!(
        !summary["globals"]["roles_created"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r.starts_with("gl_"))),
        "{summary}"
    );
}
