//! Round trips through pgkeep: the restored database must equal the source
//! by every oracle (schema dump, data digests, sequences, large objects, RLS).

use crate::pgkeep::*;
use crate::support::{assert_same_database, cluster};

async fn round_trip(load: fn(&str), prefix: &str) {
    let c = cluster();
    let src = c.create_db(&format!("{prefix}_src")).await;
    load(&src);
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let header = backup_with(&repo, &small_backup_options(&src))
        .await
        .expect("backup succeeds");
    assert!(header.rows > 0);
    assert!(header.stored_bytes > 0);
    let dst = c.create_db(&format!("{prefix}_dst")).await;
    let summary = restore_with(&repo, &header.id, &restore_options(&dst))
        .await
        .expect("restore succeeds");
    assert_eq!(summary.rows, header.rows);
    assert_same_database(c, &src, &dst).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagila_round_trips() {
    round_trip(|db| cluster().load_pagila(db), "rt_pagila").await;
}

/// `--overlap`: post-data of each table as soon as its data is in, on
/// Pagila (a partitioned table, triggers, foreign keys, views) and the
/// kitchen sink (row security, policies, materialized views): each restored
/// database equals its source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapped_post_data_restores_the_same_database() {
    overlapped_round_trip("rt_overlap_pagila", |db| cluster().load_pagila(db)).await;
    overlapped_round_trip("rt_overlap_sink", |db| cluster().load_kitchen_sink(db)).await;
}

async fn overlapped_round_trip(prefix: &str, load: fn(&str)) {
    let c = cluster();
    let src = c.create_db(&format!("{prefix}_src")).await;
    load(&src);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    let run = crate::cli::pgkeep_ok;
    run(&[
        "backup",
        "--db",
        &c.url(&src),
        "--repo",
        repo,
        "--split-size",
        "64KiB",
    ]);
    crate::pgkeep::assert_entries_unique(repo);
    let dst = c.create_db(&format!("{prefix}_dst")).await;
    run(&[
        "restore",
        "--repo",
        repo,
        "--db",
        &c.url(&dst),
        "--overlap",
        "--jobs",
        "3",
    ]);
    assert_same_database(c, &src, &dst).await;
}

/// Base and shell types, operator families and classes, access methods,
/// a conversion, a procedural language and a transform
/// (`tests/fixtures/object_kinds.sql`): restored, then restored again over
/// themselves with `--clean --if-exists`, equal to the source each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_kinds_round_trip_and_clean_if_exists_over_themselves() {
    let c = cluster();
    let src = c.create_db("rt_kinds_src").await;
    c.psql_file(
        &src,
        crate::support::fixtures_dir().join("object_kinds.sql"),
    );
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    let run = crate::cli::pgkeep_ok;
    run(&["backup", "--db", &c.url(&src), "--repo", repo]);
    crate::pgkeep::assert_entries_unique(repo);
    let dst = c.create_db("rt_kinds_dst").await;
    run(&["restore", "--repo", repo, "--db", &c.url(&dst)]);
    assert_same_database(c, &src, &dst).await;
    let lo_comment = "SELECT pg_catalog.obj_description(1000, 'pg_largeobject')";
    assert_eq!(
        c.column(&dst, lo_comment).await,
        ["a large object with a low OID"],
        "a comment on a large object with a low OID"
    );
    run(&[
        "restore",
        "--repo",
        repo,
        "--db",
        &c.url(&dst),
        "--clean",
        "--if-exists",
    ]);
    assert_same_database(c, &src, &dst).await;
}

/// A subscription comes back as pg_dump restores one: disabled, never
/// connected, its slot name kept; its password stays out of the backup;
/// `--no-subscriptions` leaves it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_comes_back_disabled_without_its_password() {
    let c = cluster();
    let src = crate::pgkeep::db_with(
        "rt_sub_src",
        "CREATE SUBSCRIPTION rt_sub CONNECTION 'host=127.0.0.1 port=1 dbname=nowhere user=repl password=sub-secret-pw' \
         PUBLICATION pub_a WITH (connect = false, slot_name = 'rt_slot')",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    let run = crate::cli::pgkeep_ok;
    let out = run(&["backup", "--db", &c.url(&src), "--repo", repo_s]);
    assert!(out.contains("password is left out"), "{out}");
    crate::pgkeep::assert_secret_not_stored(&repo, "sub-secret-pw");
    let subs = |db: String| async move {
        c.column(
            &db,
            "SELECT concat_ws(' | ', subname, subenabled, subconninfo, subslotname, subpublications::text) \
             FROM pg_catalog.pg_subscription WHERE subdbid = \
             (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())",
        )
        .await
    };
    let dst = c.create_db("rt_sub_dst").await;
    run(&["restore", "--repo", repo_s, "--db", &c.url(&dst)]);
    assert_eq!(
        subs(dst.clone()).await,
        ["rt_sub | f | host=127.0.0.1 port=1 dbname=nowhere user=repl | rt_slot | {pub_a}"]
    );
    // A database holding a subscription can be dropped and made again
    // (--create --clean detaches and drops the subscription first).
    run(&[
        "restore",
        "--repo",
        repo_s,
        "--db",
        &c.url(&dst),
        "--create",
        "--clean",
    ]);
    assert_eq!(subs(dst.clone()).await.len(), 1);
    let none = c.create_db("rt_sub_none").await;
    run(&[
        "restore",
        "--repo",
        repo_s,
        "--db",
        &c.url(&none),
        "--no-subscriptions",
    ]);
    assert!(subs(none).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kitchen_sink_round_trips() {
    round_trip(|db| cluster().load_kitchen_sink(db), "rt_sink").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_latest_with_create_and_clean() {
    let c = cluster();
    let src = c.create_db("rt_latest_src").await;
    c.load_kitchen_sink(&src);
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    backup_with(&repo, &small_backup_options(&src))
        .await
        .unwrap();
    // --create into a database that does not exist yet.
    let name = format!("rt_latest_new_{}", std::process::id());
    let mut opts = restore_options(&name);
    opts.create = true;
    restore_with(&repo, "latest", &opts)
        .await
        .expect("restore --create");
    assert_same_database(c, &src, &name).await;
    // Restoring again into it is refused without --clean, then works with it.
    let err = restore_with(&repo, "latest", &restore_options(&name))
        .await
        .unwrap_err();
    assert!(matches!(err, pgkeep::Error::Refused(_)), "{err}");
    assert!(err.to_string().contains("not empty"), "{err}");
    // --create --clean drops and recreates the database.
    let mut opts = restore_options(&name);
    opts.clean = true;
    opts.create = true;
    restore_with(&repo, "latest", &opts)
        .await
        .expect("restore --create --clean");
    assert_same_database(c, &src, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_replaces_existing_contents() {
    let c = cluster();
    let src = c.create_db("rt_clean_src").await;
    c.load_pagila(&src);
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    backup_with(&repo, &small_backup_options(&src))
        .await
        .unwrap();
    // A target holding other objects, some with the same names.
    let dst = c.create_db("rt_clean_dst").await;
    c.client(&dst)
        .await
        .batch_execute("CREATE SCHEMA stale; CREATE TABLE stale.t (x int); CREATE TABLE public.actor (x int); CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'; SELECT lo_from_bytea(0, 'x');")
        .await
        .unwrap();
    let mut opts = restore_options(&dst);
    opts.clean = true;
    restore_with(&repo, "latest", &opts)
        .await
        .expect("restore --clean");
    assert_same_database(c, &src, &dst).await;
}

/// Large objects are dumped in chunks (`pg::copy::LARGE_OBJECT_CHUNK`), so
/// an object larger than a chunk and many times a frame comes back whole,
/// as do an empty one and a small one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_larger_than_a_frame_round_trip() {
    let c = cluster();
    let src = db_with(
        "rt_lo_src",
        "SELECT lo_from_bytea(0, convert_to(string_agg(md5(i::text), ''), 'UTF8')) FROM generate_series(1, 100000) i;
         SELECT lo_from_bytea(0, '');
         SELECT lo_from_bytea(0, '\\x0001ff');",
    )
    .await;
    let sizes: Vec<i64> = c
        .client(&src)
        .await
        .query(
            "SELECT length(lo_get(oid))::int8 FROM pg_largeobject_metadata ORDER BY oid",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(sizes, [3_200_000, 0, 3]);
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let opts = small_backup_options(&src);
    let header = backup_with(&repo, &opts).await.expect("backup succeeds");
    // 3.2 MB in chunks of 256 KiB: 13 rows, plus one for each small object.
    assert_eq!(header.rows, 13 + 2);
    let dst = c.create_db("rt_lo_dst").await;
    restore_with(&repo, &header.id, &restore_options(&dst))
        .await
        .expect("restore succeeds");
    assert_same_database(c, &src, &dst).await;
}

/// A restore into the backup's own source database (same cluster, same
/// name) is refused before anything is dropped, `--create --clean`
/// included; `force_source` allows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_over_the_source_is_refused_unless_forced() {
    let src = db_with(
        "rt_guard",
        "CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g;",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let header = backup_with(&repo, &small_backup_options(&src))
        .await
        .unwrap();
    assert!(header.system_identifier.is_some());
    for create in [false, true] {
        let mut opts = restore_options(&src);
        opts.clean = true;
        opts.create = create;
        let e = restore_with(&repo, &header.id, &opts).await.unwrap_err();
        assert!(matches!(e, pgkeep::Error::Refused(_)), "{e}");
        assert!(
            e.to_string().contains("own source") && e.to_string().contains("--force-source"),
            "{e}"
        );
        assert_eq!(count_rows(&src, "t").await, 100, "nothing was dropped");
    }
    let mut opts = restore_options(&src);
    opts.clean = true;
    opts.force_source = true;
    restore_with(&repo, &header.id, &opts).await.unwrap();
    assert_eq!(count_rows(&src, "t").await, 100);
}

/// `restore --clean --dry-run` lists what `--clean` would drop in a
/// non-empty target and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_dry_run_lists_what_would_be_dropped() {
    let c = cluster();
    let src = db_with(
        "rt_drysrc",
        "CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g;",
    )
    .await;
    let dst = db_with(
        "rt_drydst",
        "CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int);
         CREATE TABLE public.users (id int); CREATE VIEW public.v AS SELECT 1 AS one;
         SELECT lo_from_bytea(0, 'x');",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    backup_with(&repo(&repo_dir), &small_backup_options(&src))
        .await
        .unwrap();
    let o = crate::cli::pgkeep_env(
        &[
            "restore",
            "--repo",
            repo_dir.to_str().unwrap(),
            "latest",
            "--db",
            &c.url(&dst),
            "--clean",
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let would: Vec<&str> = v["would_drop"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(
        would,
        [
            "schema billing",
            "table public.users",
            "view public.v",
            "1 large object(s)"
        ]
    );
    // Nothing was dropped.
    assert_eq!(count_rows(&dst, "billing.invoices").await, 0);
    assert_eq!(count_rows(&dst, "public.users").await, 0);
}

/// Objects found failing on databases no one here wrote (issue #13): a
/// foreign table (never locked or copied; its server, user mapping and DDL
/// kept) and an event trigger with a comment (created last, its comment
/// after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_tables_and_commented_event_triggers_round_trip() {
    round_trip(
        |db| {
            cluster().psql(
                db,
                "CREATE TABLE local_t AS SELECT g FROM generate_series(1, 10) g;
                 CREATE FOREIGN DATA WRAPPER dummy_fdw;
                 CREATE SERVER remote_srv FOREIGN DATA WRAPPER dummy_fdw OPTIONS (host 'db.example');
                 CREATE USER MAPPING FOR CURRENT_USER SERVER remote_srv OPTIONS (user 'reader');
                 CREATE FOREIGN TABLE remote_t (id int, note text) SERVER remote_srv OPTIONS (table_name 'notes');
                 COMMENT ON FOREIGN TABLE remote_t IS 'kept as DDL only';
                 CREATE FUNCTION audit_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN NULL; END$$;
                 CREATE EVENT TRIGGER audit_ddl_start ON ddl_command_start EXECUTE FUNCTION audit_ddl();
                 COMMENT ON EVENT TRIGGER audit_ddl_start IS 'audits DDL';
                 ALTER EVENT TRIGGER audit_ddl_start DISABLE;",
            );
        },
        "rt_fdw_evt",
    )
    .await;
}

/// `--no-owner --no-acl --no-comments`, as the runbooks restore: objects
/// belong to the restoring role, no grants, no comments; a function body
/// that itself says `OWNER TO` is kept whole. With `--no-publications
/// --no-tablespaces` too: no publication, and a table and a materialized
/// view of a tablespace land in the default one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_owner_no_acl_no_comments_no_publications_no_tablespaces() {
    let c = cluster();
    let owner = format!("rt_owner_{}", std::process::id());
    let reader = format!("rt_reader_{}", std::process::id());
    let src = c.create_db("rt_noown_src").await;
    // A tablespace in a directory the server's OS user owns.
    let socket_dir = c.socket_dir().expect(
        "this test creates a tablespace: run it on the harness's own cluster (unset DATABASE_URL)",
    );
    let ts_dir = socket_dir.join(format!("ts_{}", std::process::id()));
    std::fs::create_dir_all(&ts_dir).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        let o = std::fs::metadata(socket_dir).unwrap();
        std::os::unix::fs::chown(&ts_dir, Some(o.uid()), Some(o.gid())).unwrap();
    }
    let ts = format!("rt_ts_{}", std::process::id());
    c.psql(
        "postgres",
        &format!("CREATE TABLESPACE {ts} LOCATION '{}'", ts_dir.display()),
    );
    c.psql(
        &src,
        &format!(
            "CREATE ROLE {owner}; CREATE ROLE {reader};
             CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 5);
             ALTER TABLE t OWNER TO {owner}; GRANT SELECT ON t TO {reader};
             COMMENT ON TABLE t IS 'a comment';
             CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
ALTER TABLE t OWNER TO {owner};
END
$fn$;
             ALTER FUNCTION f() OWNER TO {owner};
             CREATE TABLE in_ts (a int) TABLESPACE {ts};
             CREATE MATERIALIZED VIEW mv_ts TABLESPACE {ts} AS SELECT 1 AS one;
             CREATE PUBLICATION pub_t FOR TABLE t;"
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    let o = crate::cli::pgkeep_env(&["backup", "--db", &c.url(&src), "--repo", repo_s], &[]);
    assert!(o.status.success(), "{}", crate::cli::text(&o));
    let dst = c.create_db("rt_noown_dst").await;
    let o = crate::cli::pgkeep_env(
        &[
            "restore",
            "--repo",
            repo_s,
            "--db",
            &c.url(&dst),
            "--no-owner",
            "--no-privileges",
            "--no-comments",
            "--no-publications",
            "--no-tablespaces",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", crate::cli::text(&o));
    let client = c.client(&dst).await;
    let row = client
        .query_one(
            "SELECT pg_get_userbyid(c.relowner) = current_user, c.relacl IS NULL, obj_description(c.oid, 'pg_class') IS NULL,
                    (SELECT pg_get_userbyid(proowner) = current_user FROM pg_proc WHERE proname = 'f'),
                    (SELECT prosrc FROM pg_proc WHERE proname = 'f'), (SELECT count(*) FROM t)
             FROM pg_class c WHERE c.relname = 't' AND c.relkind = 'r'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "the table belongs to the restoring role"
    );
    assert!(row.get::<_, bool>(1), "no grants");
    assert!(row.get::<_, bool>(2), "no comment");
    assert!(
        row.get::<_, bool>(3),
        "the function belongs to the restoring role"
    );
    assert!(
        row.get::<_, String>(4)
            .contains(&format!("ALTER TABLE t OWNER TO {owner};")),
        "the body is whole"
    );
    assert_eq!(row.get::<_, i64>(5), 5);
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM pg_publication),
                    (SELECT count(*) FROM pg_class WHERE relname IN ('in_ts', 'mv_ts') AND reltablespace = 0)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0, "no publication");
    assert_eq!(row.get::<_, i64>(1), 2, "both in the default tablespace");
    // Without the flags, the tablespace and the publication come back.
    let dst2 = c.create_db("rt_noown_dst2").await;
    let o = crate::cli::pgkeep_env(&["restore", "--repo", repo_s, "--db", &c.url(&dst2)], &[]);
    assert!(o.status.success(), "{}", crate::cli::text(&o));
    let row = c
        .client(&dst2)
        .await
        .query_one(
            "SELECT (SELECT count(*) FROM pg_publication),
                    (SELECT count(*) FROM pg_class c JOIN pg_tablespace s ON s.oid = c.reltablespace
                      WHERE c.relname IN ('in_ts', 'mv_ts') AND s.spcname = $1)",
            &[&ts],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 2));
}

/// `--section pre-data`, then `--section data`, then `--section post-data`
/// into the same database equal a whole restore; `--schema-only` brings no
/// rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sections_restore_one_after_another() {
    let c = cluster();
    let src = c.create_db("rt_sect_src").await;
    c.load_kitchen_sink(&src);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    let run = crate::cli::pgkeep_ok;
    run(&["backup", "--db", &c.url(&src), "--repo", repo_s]);
    let dst = c.create_db("rt_sect_dst").await;
    for section in ["pre-data", "data", "post-data"] {
        run(&[
            "restore",
            "--repo",
            repo_s,
            "--db",
            &c.url(&dst),
            "--section",
            section,
        ]);
    }
    assert_same_database(c, &src, &dst).await;

    let schema = c.create_db("rt_sect_schema").await;
    run(&[
        "restore",
        "--repo",
        repo_s,
        "--db",
        &c.url(&schema),
        "--schema-only",
    ]);
    assert_eq!(c.pg_dump_schema(&schema), c.pg_dump_schema(&src));
    let digests = c.table_digests(&schema).await;
    assert!(!digests.is_empty());
    let rows: i64 = digests.values().map(|(n, _)| (*n).max(0)).sum();
    assert_eq!(rows, 0, "no rows with --schema-only");
}

/// `show --list` and `restore --use-list`, pg_restore's -l/-L: a table
/// commented out (with everything of it) is not restored, the rest is; a
/// list that keeps an index of a commented-out table is refused before
/// anything runs, naming both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_list_restores_the_entries_left_in() {
    let c = cluster();
    let src = c.create_db("rt_list_src").await;
    c.psql(
        &src,
        "CREATE TABLE keep_me (id int PRIMARY KEY); INSERT INTO keep_me SELECT generate_series(1, 7);
         CREATE TABLE drop_me (id int); INSERT INTO drop_me SELECT generate_series(1, 3);
         CREATE INDEX drop_me_idx ON drop_me (id);",
    );
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    let o = crate::cli::pgkeep_env(&["backup", "--db", &c.url(&src), "--repo", repo_s], &[]);
    assert!(o.status.success(), "{}", crate::cli::text(&o));
    let o = crate::cli::pgkeep_env(&["show", "--repo", repo_s, "--list"], &[]);
    assert!(o.status.success(), "{}", crate::cli::text(&o));
    let list = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        list.lines()
            .any(|l| l.contains("; pre-data TABLE public drop_me ")),
        "{list}"
    );
    let comment_out = |pred: &dyn Fn(&str) -> bool| -> String {
        list.lines()
            .map(|l| {
                if pred(l) {
                    format!(";{l}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let restore_with = |name: &str, listing: String, db: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, listing).unwrap();
        crate::cli::pgkeep_env(
            &[
                "restore",
                "--repo",
                repo_s,
                "--db",
                &c.url(db),
                "--use-list",
                file.to_str().unwrap(),
            ],
            &[],
        )
    };
    // Everything of drop_me out: restored without it.
    let dst = c.create_db("rt_list_dst").await;
    let o = restore_with("all.list", comment_out(&|l| l.contains("drop_me")), &dst);
    assert!(o.status.success(), "{}", crate::cli::text(&o));
    let client = c.client(&dst).await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM keep_me), to_regclass('drop_me') IS NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 7);
    assert!(row.get::<_, bool>(1), "drop_me is not restored");
    // The table out but its index kept: refused, both named.
    let dst2 = c.create_db("rt_list_dst2").await;
    let o = restore_with(
        "index.list",
        comment_out(&|l| l.contains("TABLE") && l.contains("drop_me")),
        &dst2,
    );
    assert_eq!(o.status.code(), Some(2), "{}", crate::cli::text(&o));
    let err = crate::cli::text(&o);
    assert!(
        err.contains("INDEX drop_me_idx") && err.contains("TABLE drop_me"),
        "{err}"
    );
    assert!(
        c.client(&dst2)
            .await
            .query_one("SELECT to_regclass('keep_me') IS NULL", &[])
            .await
            .unwrap()
            .get::<_, bool>(0),
        "nothing ran"
    );
}

/// `-t/-n/-T/-N` on restore: a table comes with its data, index, owned
/// sequence, trigger, policy and comment; a foreign key to a table left
/// out is named and skipped; `-n` brings a schema's objects, `-N` and
/// `-T` leave theirs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_selects_tables_and_schemas_with_what_belongs_to_them() {
    let c = cluster();
    let src = c.create_db("rt_sel_src").await;
    c.psql(
        &src,
        "CREATE SCHEMA app; CREATE SCHEMA other;
         CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
         CREATE TABLE app.parent (id int PRIMARY KEY);
         CREATE TABLE app.child (id serial PRIMARY KEY, parent_id int REFERENCES app.parent, v text);
         CREATE INDEX child_v ON app.child (v);
         CREATE TRIGGER child_touch BEFORE INSERT ON app.child FOR EACH ROW EXECUTE FUNCTION app.touch();
         ALTER TABLE app.child ENABLE ROW LEVEL SECURITY;
         CREATE POLICY child_all ON app.child USING (true);
         COMMENT ON TABLE app.child IS 'the child';
         CREATE VIEW app.child_view AS SELECT id FROM app.child;
         INSERT INTO app.parent VALUES (1), (2);
         INSERT INTO app.child (parent_id, v) SELECT 1 + g % 2, 'v' || g FROM generate_series(1, 10) g;
         CREATE TABLE other.o AS SELECT generate_series(1, 3) AS n;",
    );
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    let o = crate::cli::pgkeep_env(&["backup", "--db", &c.url(&src), "--repo", repo_s], &[]);
    assert!(o.status.success(), "{}", crate::cli::text(&o));
    let restore = |db: &str, args: &[&str]| {
        let url = c.url(db);
        let mut all = vec!["restore", "--repo", repo_s, "--db", &url];
        all.extend(args);
        crate::cli::pgkeep_env(&all, &[])
    };

    // -t app.child into a target that has its schema and trigger function.
    let one = c.create_db("rt_sel_one").await;
    c.psql(
        &one,
        "CREATE SCHEMA app; CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;",
    );
    let o = restore(&one, &["-t", "app.child"]);
    let out = crate::cli::text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("left out foreign key") && out.contains("child_parent_id_fkey"),
        "{out}"
    );
    let row = c
        .client(&one)
        .await
        .query_one(
            "SELECT (SELECT count(*) FROM app.child),
                        to_regclass('app.parent') IS NULL, to_regclass('app.child_view') IS NULL,
                        to_regclass('app.child_v') IS NOT NULL,
                        (SELECT count(*) FROM pg_trigger WHERE tgname = 'child_touch'),
                        (SELECT count(*) FROM pg_policy WHERE polname = 'child_all'),
                        obj_description('app.child'::regclass, 'pg_class'),
                        (SELECT count(*) FROM pg_constraint WHERE contype = 'f'),
                        nextval('app.child_id_seq')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 10);
    assert!(
        row.get::<_, bool>(1) && row.get::<_, bool>(2),
        "parent and view left out"
    );
    assert!(row.get::<_, bool>(3), "the index came");
    assert_eq!((row.get::<_, i64>(4), row.get::<_, i64>(5)), (1, 1));
    assert_eq!(row.get::<_, String>(6), "the child");
    assert_eq!(row.get::<_, i64>(7), 0, "no foreign key");
    assert_eq!(
        row.get::<_, i64>(8),
        11,
        "the owned sequence came with its value"
    );

    // -n app -T app.parent: the schema's objects but that table (and the
    // foreign key to it); other schemas not at all.
    let two = c.create_db("rt_sel_two").await;
    let o = restore(&two, &["-n", "app", "-T", "app.parent"]);
    assert!(o.status.success(), "{}", crate::cli::text(&o));
    let row = c
        .client(&two)
        .await
        .query_one(
            "SELECT to_regclass('app.parent') IS NULL, to_regclass('app.child_view') IS NOT NULL,
                    to_regnamespace('other') IS NULL, (SELECT count(*) FROM app.child)",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0) && row.get::<_, bool>(1) && row.get::<_, bool>(2));
    assert_eq!(row.get::<_, i64>(3), 10);

    // -N other: everything but schema other; the foreign key stays.
    let three = c.create_db("rt_sel_three").await;
    let o = restore(&three, &["-N", "other"]);
    assert!(o.status.success(), "{}", crate::cli::text(&o));
    let row = c
        .client(&three)
        .await
        .query_one(
            "SELECT to_regnamespace('other') IS NULL, (SELECT count(*) FROM pg_constraint WHERE contype = 'f')",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i64>(1), 1);
    // --clean would drop the whole target: refused with a selection,
    // before anything is touched.
    let o = restore(&three, &["-t", "app.child", "--clean"]);
    assert_eq!(o.status.code(), Some(2), "{}", crate::cli::text(&o));
    assert_eq!(
        c.client(&three)
            .await
            .query_one("SELECT count(*) FROM app.child", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        10
    );
}
