//! pgkeep's own COPY connection (`pg::wire`) against the real server:
//! every login it speaks (SCRAM, MD5, a cleartext password, trust on the
//! Unix socket), several hosts, TLS per `sslmode`, rows and the server's
//! count, errors before and in the middle of a COPY, a COPY left
//! unfinished, and the cancel request, plain and over TLS.

use crate::support::tls::enable_tls;
use crate::support::{cluster, CLEARTEXT_ROLE, MD5_ROLE, SUPERUSER_PASSWORD};
use pgkeep::config::ConnSettings;
use pgkeep::pg::wire::WireConn;
use pgkeep::Error;

fn settings(conninfo: &str) -> ConnSettings {
    ConnSettings::resolve_with(conninfo, &|_| None).unwrap()
}

/// The test server over TCP at `host` as `user`, with `extra` settings.
fn tcp_at(host: &str, user: &str, password: &str, extra: &str) -> ConnSettings {
    let c = cluster();
    settings(&format!(
        "host={host} port={} user={user} password={password} dbname=postgres {extra}",
        c.port()
    ))
}

fn tcp(user: &str, password: &str, extra: &str) -> ConnSettings {
    tcp_at("127.0.0.1", user, password, extra)
}

/// Every row of a COPY, and the count in the server's `COPY n` tag.
async fn copy_all(conn: &mut WireConn, sql: &str) -> pgkeep::Result<(Vec<Vec<u8>>, Option<u64>)> {
    let mut copy = conn.copy_out(sql, "test copy").await?;
    let mut rows = Vec::new();
    while let Some(r) = copy.next_row().await? {
        rows.push(r.to_vec());
    }
    Ok((rows, copy.server_rows()))
}

/// The one value of a one-row query, read through COPY.
async fn one_value(conn: &mut WireConn, sql: &str) -> String {
    let (rows, n) = copy_all(conn, &format!("COPY ({sql}) TO STDOUT"))
        .await
        .unwrap();
    assert_eq!((rows.len(), n), (1, Some(1)), "{sql}");
    String::from_utf8(rows[0].clone())
        .unwrap()
        .trim_end()
        .to_owned()
}

async fn login_as(s: &ConnSettings) -> pgkeep::Result<String> {
    let mut conn = WireConn::connect(s).await?;
    let user = one_value(&mut conn, "SELECT current_user").await;
    conn.close().await;
    Ok(user)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_in_every_way_the_server_asks() {
    let c = cluster();
    let admin = c.client("postgres").await;
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {MD5_ROLE}; DROP ROLE IF EXISTS {CLEARTEXT_ROLE};
             SET password_encryption = 'md5';
             CREATE ROLE {MD5_ROLE} LOGIN PASSWORD 'md5-secret';
             RESET password_encryption;
             CREATE ROLE {CLEARTEXT_ROLE} LOGIN PASSWORD 'clear-secret';"
        ))
        .await
        .unwrap();
    // The md5 role's password is stored as an MD5 hash, so its `md5` line
    // makes the server ask for the MD5 exchange, not SCRAM.
    let stored: bool = admin
        .query_one(
            "SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = $1",
            &[&MD5_ROLE],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stored);

    let off = "sslmode=disable";
    for (user, password) in [
        (c.user(), SUPERUSER_PASSWORD),
        (MD5_ROLE, "md5-secret"),
        (CLEARTEXT_ROLE, "clear-secret"),
    ] {
        assert_eq!(login_as(&tcp(user, password, off)).await.unwrap(), user);
        let wrong = format!("{password}-wrong");
        let err = login_as(&tcp(user, &wrong, off)).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Connect { .. }), "{text}");
        assert!(text.contains("password authentication failed"), "{text}");
        assert!(
            !text.contains(&wrong),
            "the password is never shown: {text}"
        );
    }
    let mut none = tcp(c.user(), "x", off);
    none.set_password(None);
    let err = login_as(&none).await.unwrap_err().to_string();
    assert!(err.contains("none was given"), "{err}");

    // Trust on the Unix socket.
    let socket = settings(&c.socket_url("postgres").unwrap());
    assert_eq!(login_as(&socket).await.unwrap(), c.user());

    // Hosts are tried in order: a refused port first, then the server.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let two = settings(&format!(
        "host=127.0.0.1,127.0.0.1 port={closed_port},{} user={} password={SUPERUSER_PASSWORD} dbname=postgres {off}",
        c.port(),
        c.user()
    ));
    assert_eq!(login_as(&two).await.unwrap(), c.user());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_errors_and_an_unfinished_copy() {
    let c = cluster();
    let db = c.create_db("wire_rows").await;
    let s = tcp(c.user(), SUPERUSER_PASSWORD, "sslmode=disable").with_dbname(&db);
    let mut conn = WireConn::connect(&s).await.unwrap();

    // Many rows of every length, each one CopyData payload, in order.
    let (rows, n) = copy_all(
        &mut conn,
        "COPY (SELECT g, repeat('x', g % 300) FROM generate_series(1, 50000) g) TO STDOUT",
    )
    .await
    .unwrap();
    assert_eq!(n, Some(50_000));
    assert_eq!(rows.len(), 50_000);
    for (i, row) in rows.iter().enumerate() {
        let g = i + 1;
        assert_eq!(row, format!("{g}\t{}\n", "x".repeat(g % 300)).as_bytes());
    }
    // A row larger than the read buffer.
    let (rows, _) = copy_all(&mut conn, "COPY (SELECT repeat('y', 3000000)) TO STDOUT")
        .await
        .unwrap();
    assert_eq!(rows, vec![[vec![b'y'; 3_000_000], vec![b'\n']].concat()]);

    // An error before the COPY starts, and one in its middle: the server's
    // message and SQLSTATE, and the connection stays usable.
    let err = copy_all(&mut conn, "COPY no_such_table TO STDOUT")
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("42P01"), "{err}");
    assert!(err.to_string().starts_with("test copy: ERROR"), "{err}");
    let mut copy = conn
        .copy_out(
            "COPY (SELECT 1 / (30000 - g) FROM generate_series(1, 60000) g) TO STDOUT",
            "dividing",
        )
        .await
        .unwrap();
    let mut seen = 0;
    let err = loop {
        match copy.next_row().await {
            Ok(Some(_)) => seen += 1,
            Ok(None) => panic!("the COPY ended without its error"),
            Err(e) => break e,
        }
    };
    assert!(seen < 30_000, "{seen} rows before the error");
    assert_eq!(err.sqlstate(), Some("22012"), "{err}");
    assert!(err.to_string().contains("division by zero"), "{err}");
    assert_eq!(one_value(&mut conn, "SELECT 7").await, "7");
    let err = conn
        .simple("SELECT 1/0", "a simple query")
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("22012"), "{err}");
    conn.simple("SELECT 1; SELECT 2", "two statements")
        .await
        .unwrap();

    // A COPY dropped before its end leaves the connection refusing work
    // rather than reading the rest as replies.
    let mut copy = conn
        .copy_out(
            "COPY (SELECT generate_series(1, 1000000)) TO STDOUT",
            "long",
        )
        .await
        .unwrap();
    assert_eq!(copy.next_row().await.unwrap(), Some(&b"1\n"[..]));
    drop(copy);
    let err = conn.simple("SELECT 1", "after").await.unwrap_err();
    assert!(err.to_string().contains("middle of a COPY"), "{err}");
}

/// Starts a COPY that sleeps on the server, cancels it from another task
/// once the server shows it sleeping, and checks the COPY fails as
/// cancelled.
async fn cancel_a_sleeping_copy(s: &ConnSettings) {
    let c = cluster();
    let mut conn = WireConn::connect(s).await.unwrap();
    let (pid, key) = (conn.process_id(), conn.cancel_key());
    let copying = tokio::spawn(async move {
        copy_all(&mut conn, "COPY (SELECT pg_sleep(600)) TO STDOUT")
            .await
            .map(|_| ())
    });
    let admin = c.client("postgres").await;
    loop {
        let sleeping: bool = admin
            .query_one(
                "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'PgSleep')",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        if sleeping {
            break;
        }
        assert!(!copying.is_finished(), "the COPY ended before it slept");
    }
    key.cancel().await;
    let err = copying.await.unwrap().unwrap_err();
    assert_eq!(err.sqlstate(), Some("57014"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_server() {
    let c = cluster();
    cancel_a_sleeping_copy(&tcp(c.user(), SUPERUSER_PASSWORD, "sslmode=disable")).await;
    cancel_a_sleeping_copy(&settings(&c.socket_url("postgres").unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_per_sslmode_and_cancel_over_tls() {
    let tls = enable_tls();
    let c = cluster();
    let ssl = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let on = |host: &str, extra: &str| tcp_at(host, c.user(), SUPERUSER_PASSWORD, extra);
    for (mode, want) in [("disable", "f"), ("prefer", "t"), ("require", "t")] {
        let mut conn = WireConn::connect(&on("127.0.0.1", &format!("sslmode={mode}")))
            .await
            .unwrap();
        assert_eq!(one_value(&mut conn, ssl).await, want, "sslmode={mode}");
    }
    let ca = format!("sslrootcert={}", tls.ca.display());
    let other_ca = format!("sslrootcert={}", tls.other_ca.display());
    let err = WireConn::connect(&on("127.0.0.1", &format!("sslmode=verify-ca {other_ca}")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    let err = WireConn::connect(&on("127.0.0.1", &format!("sslmode=verify-full {ca}")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");
    let verified = on(tls.server_name, &format!("sslmode=verify-full {ca}"));
    let mut conn = WireConn::connect(&verified).await.unwrap();
    assert_eq!(one_value(&mut conn, ssl).await, "t");
    cancel_a_sleeping_copy(&verified).await;
}
