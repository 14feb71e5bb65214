//! What needs pgkeep's test extension (`tests/fixtures/pgext`, built and
//! installed for the installed server by `scripts/test.sh`): security
//! labels, from its label provider `pgkeep`, on objects, roles and the
//! database, and an extension's configuration tables. Not run by
//! `scripts/versions.sh`, whose other majors have no build of it.

use crate::cli::pgkeep_ok as run;
use crate::globals::dump_with_create;
use crate::support::{assert_same_database, cluster, second_cluster};

/// Security labels (the test provider `pgkeep`, `tests/fixtures/pgext`) on
/// a schema, a table, a column, a function and a large object, and an
/// extension's configuration tables (`pg_extension_config_dump`): the rows
/// users added come back (the filter keeps the extension's own rows out, so
/// none is there twice), as does the configuration sequence's value, and
/// privileges granted on a member table and a member table's column.
/// `--no-security-labels` leaves every label out and the rest in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_labels_and_extension_configuration_tables_round_trip() {
    let c = cluster();
    let src = c.create_db("rt_labels_src").await;
    let dst = c.create_db("rt_labels_dst").await;
    let unlabelled = c.create_db("rt_labels_none").await;
    // Restores apply labels in sessions of the target database: they need
    // the provider loaded there.
    for db in [&dst, &unlabelled] {
        c.psql(
            "postgres",
            &format!("ALTER DATABASE {db} SET session_preload_libraries = 'pgkeep_seclabel'"),
        );
    }
    c.psql(
        &src,
        "LOAD 'pgkeep_seclabel';
         CREATE SCHEMA s;
         CREATE EXTENSION pgkeep_fixture WITH SCHEMA s;
         INSERT INTO s.fixture_settings VALUES ('mine', 'added by a user', false);
         INSERT INTO s.fixture_log (line) VALUES ('first'), ('second'), ('third');
         GRANT SELECT ON s.fixture_log TO PUBLIC;
         GRANT SELECT (value) ON s.fixture_settings TO PUBLIC;
         CREATE TABLE s.t (a int, b text);
         INSERT INTO s.t VALUES (1, 'x');
         CREATE FUNCTION s.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
         SELECT lo_create(4242);
         SECURITY LABEL FOR pgkeep ON SCHEMA s IS 'pgkeep:schema';
         SECURITY LABEL FOR pgkeep ON TABLE s.t IS 'pgkeep:table';
         SECURITY LABEL FOR pgkeep ON COLUMN s.t.b IS 'pgkeep:column';
         SECURITY LABEL FOR pgkeep ON FUNCTION s.f() IS 'pgkeep:function';
         SECURITY LABEL FOR pgkeep ON LARGE OBJECT 4242 IS 'pgkeep:large object';",
    );
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    run(&["backup", "--db", &c.url(&src), "--repo", repo]);
    crate::pgkeep::assert_entries_unique(repo);
    let list = run(&["show", "--repo", repo, "--list"]);
    assert!(list.contains("SECURITY LABEL s TABLE s.t"), "{list}");
    assert!(list.contains("TABLE DATA s fixture_settings"), "{list}");

    run(&["restore", "--repo", repo, "--db", &c.url(&dst)]);
    assert_same_database(c, &src, &dst).await;
    let labels = "SELECT objtype || ' ' || objname || ' ' || provider || ' ' || label \
                  FROM pg_catalog.pg_seclabels \
                  WHERE objtype NOT IN ('role', 'database', 'tablespace') ORDER BY 1";
    let want = c.column(&src, labels).await;
    assert_eq!(want.len(), 5, "{want:?}");
    assert_eq!(c.column(&dst, labels).await, want);
    let config =
        "SELECT key || '=' || value || '=' || standard FROM s.fixture_settings ORDER BY key";
    assert_eq!(
        c.column(&dst, config).await,
        [
            "mine=added by a user=false",
            "shipped=by the extension=true"
        ]
    );
    let member_acls = "SELECT c.relname || coalesce('.' || a.attname, '') || ' ' \
                       || coalesce(a.attacl, c.relacl)::text \
                       FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_attribute a \
                       ON a.attrelid = c.oid AND a.attacl IS NOT NULL \
                       WHERE c.relnamespace = 's'::regnamespace AND c.relname LIKE 'fixture%' \
                       AND coalesce(a.attacl, c.relacl) IS NOT NULL ORDER BY 1";
    let want_acls = c.column(&src, member_acls).await;
    assert_eq!(want_acls.len(), 2, "{want_acls:?}");
    assert_eq!(
        c.column(&dst, member_acls).await,
        want_acls,
        "privileges granted on an extension's table and column"
    );
    let log = "SELECT id || ' ' || line FROM s.fixture_log ORDER BY id";
    assert_eq!(c.column(&dst, log).await, c.column(&src, log).await);
    assert_eq!(
        c.column(&dst, "SELECT nextval('s.fixture_log_id_seq')::text")
            .await,
        ["4"],
        "the configuration sequence's value"
    );

    run(&[
        "restore",
        "--repo",
        repo,
        "--db",
        &c.url(&unlabelled),
        "--no-security-labels",
    ]);
    assert!(c.column(&unlabelled, labels).await.is_empty());
    assert_eq!(c.column(&unlabelled, config).await.len(), 2);
    assert_eq!(
        c.table_digests(&unlabelled).await,
        c.table_digests(&src).await
    );
}

/// Security labels on a role (restored with `--globals`) and on the
/// database (with `--create`), into a second cluster; `--create
/// --no-security-labels` leaves the database's out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_on_roles_and_the_database_restore_with_globals_and_create() {
    let (one, two) = (cluster(), second_cluster());
    one.psql(
        "postgres",
        "CREATE ROLE sl_owner NOLOGIN;
         LOAD 'pgkeep_seclabel';
         SECURITY LABEL FOR pgkeep ON ROLE sl_owner IS 'pgkeep:role';",
    );
    one.psql("postgres", "CREATE DATABASE sl_app OWNER sl_owner");
    one.psql(
        "sl_app",
        "LOAD 'pgkeep_seclabel';
         SECURITY LABEL FOR pgkeep ON DATABASE sl_app IS 'pgkeep:database';
         CREATE TABLE t (a int);
         ALTER TABLE t OWNER TO sl_owner;
         INSERT INTO t VALUES (1);",
    );
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    run(&["backup", "--db", &one.url("sl_app"), "--repo", repo]);
    // The restore applies roles and database properties in its admin
    // session (the `postgres` database): the provider must be loaded there.
    two.psql(
        "postgres",
        "ALTER DATABASE postgres SET session_preload_libraries = 'pgkeep_seclabel'",
    );
    run(&[
        "restore",
        "--repo",
        repo,
        "--db",
        &two.url("sl_app"),
        "--create",
        "--globals",
    ]);
    let role = "SELECT provider || ' ' || label FROM pg_catalog.pg_shseclabel \
                WHERE classoid = 'pg_catalog.pg_authid'::pg_catalog.regclass \
                AND objoid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'sl_owner')";
    assert_eq!(one.column("postgres", role).await, ["pgkeep pgkeep:role"]);
    assert_eq!(two.column("postgres", role).await, ["pgkeep pgkeep:role"]);
    let database = |name: &str| {
        format!(
            "SELECT provider || ' ' || label FROM pg_catalog.pg_shseclabel \
             WHERE classoid = 'pg_catalog.pg_database'::pg_catalog.regclass \
             AND objoid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = '{name}')"
        )
    };
    assert_eq!(
        two.column("postgres", &database("sl_app")).await,
        ["pgkeep pgkeep:database"]
    );
    assert_eq!(
        dump_with_create(one, "sl_app"),
        dump_with_create(two, "sl_app")
    );

    run(&[
        "restore",
        "--repo",
        repo,
        "--db",
        &two.url("sl_app_unlabelled"),
        "--create",
        "--no-security-labels",
    ]);
    assert!(two
        .column("postgres", &database("sl_app_unlabelled"))
        .await
        .is_empty());
}
