//! Smoke tests of the test harness itself: the cluster, its authentication,
//! fresh databases, fixtures, and the oracles (including that they notice a
//! difference).

use tokio_postgres::NoTls;

use crate::support::{self, assert_same_database, cluster, map_diff};

#[tokio::test]
async fn cluster_answers_with_password_over_tcp() {
    let c = cluster();
    let client = c.client("postgres").await;
    let row = client
        .query_one("SELECT current_user::text, version()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), c.user());
    assert!(row.get::<_, String>(1).starts_with("PostgreSQL"));
    assert!(c.psql("postgres", "SELECT 1").contains('1'));
}

#[tokio::test]
async fn local_cluster_needs_password_on_tcp_but_not_on_socket() {
    let c = cluster();
    let Some(socket_url) = c.socket_url("postgres") else {
        return; // DATABASE_URL: not our server, auth is not ours to check
    };
    assert_eq!(c.password(), Some(support::SUPERUSER_PASSWORD));
    let err = tokio_postgres::connect(&c.url_no_password("postgres"), NoTls)
        .await
        .err()
        .expect("TCP without a password must be refused");
    assert!(format!("{err:?}").contains("password missing"), "{err:?}");
    let (client, conn) = tokio_postgres::connect(&socket_url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("{socket_url}: {e:?}"));
    tokio::spawn(conn);
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn create_db_gives_a_fresh_empty_database() {
    let c = cluster();
    let (a, b) = (
        c.create_db("harness empty").await,
        c.create_db("harness empty").await,
    );
    assert_ne!(a, b);
    assert!(a.starts_with("harness_empty_"), "{a}");
    assert!(c.table_digests(&a).await.is_empty());
    assert!(c.sequence_values(&a).await.is_empty());
    assert!(c.large_objects(&a).await.is_empty());
    assert_eq!(c.rls_state(&a).await, support::RlsState::default());
}

#[tokio::test]
async fn pagila_loads_and_digests_are_stable() {
    let c = cluster();
    let db = c.create_db("harness_pagila").await;
    c.load_pagila(&db);
    let first = c.table_digests(&db).await;
    assert_eq!(first, c.table_digests(&db).await);
    assert_eq!(first["public.rental"].0, 16044);
    assert!(
        first.keys().any(|t| t.starts_with("public.payment_p")),
        "{first:?}"
    );
    assert!(!c.sequence_values(&db).await.is_empty());
}

#[tokio::test]
async fn kitchen_sink_loads_with_every_object_kind() {
    let c = cluster();
    let db = c.create_db("harness_ks").await;
    c.load_kitchen_sink(&db);
    let digests = c.table_digests(&db).await;
    assert_eq!(digests["app.evt_events"].0, 9);
    assert_eq!(digests["app.task_stats"], (-1, "not populated".to_owned()));
    assert_eq!(
        digests["app.contacts"].0, 3,
        "ONLY: children are not counted"
    );
    assert_eq!(
        digests["billing.ledger_us_2024"].0 + digests["billing.ledger_us_other"].0,
        60
    );
    assert_eq!(
        c.sequence_values(&db).await["app.ticket_seq"],
        (150 + 42, true)
    );
    let los = c.large_objects(&db).await;
    assert_eq!(los.len(), 3);
    assert_eq!(los[&424203], "d41d8cd98f00b204e9800998ecf8427e"); // md5 of ""
    let rls = c.rls_state(&db).await;
    assert_eq!(rls.tables["app.projects"], (true, true));
    assert_eq!(rls.tables["app.tasks"], (true, false));
    assert_eq!(rls.policies.len(), 4);
}

#[tokio::test]
async fn pg_dump_round_trip_of_kitchen_sink_is_identical_and_changes_are_seen() {
    let c = cluster();
    let (src, dst) = (
        c.create_db("harness_src").await,
        c.create_db("harness_dst").await,
    );
    c.load_kitchen_sink(&src);
    let dump = tempfile::NamedTempFile::new().unwrap();
    let mut pg_dump = c.pg_tool("pg_dump");
    pg_dump
        .arg("-f")
        .arg(dump.path())
        .arg("-d")
        .arg(c.url(&src));
    support::run(pg_dump);
    c.psql_file(&dst, dump.path());
    assert_same_database(c, &src, &dst).await;

    // The oracles are not blind: one changed row and one sequence show up.
    c.psql(
        &dst,
        "UPDATE app.tasks SET title = title || ' ' WHERE id = 7; SELECT nextval('app.ticket_seq')",
    );
    let tables = map_diff(
        "t",
        &c.table_digests(&src).await,
        &c.table_digests(&dst).await,
    );
    assert!(
        tables
            .as_deref()
            .is_some_and(|d| d.contains("app.tasks") && d.lines().count() == 2),
        "{tables:?}"
    );
    let seqs = map_diff(
        "s",
        &c.sequence_values(&src).await,
        &c.sequence_values(&dst).await,
    );
    assert!(seqs.is_some_and(|d| d.contains("app.ticket_seq")));
}
