//! The server under test is a supported major (13 and newer), and the client
//! tools used as oracles are at least as new as it (pg_dump refuses newer
//! servers). `scripts/versions.sh` runs these with the round trips against
//! every major.

use crate::support::{cluster, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_is_supported_and_oracle_tools_are_new_enough() {
    let c = cluster();
    let server: i32 = c
        .client("postgres")
        .await
        .query_one(
            "SELECT pg_catalog.current_setting('server_version_num')::int",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(server >= 130000, "server version {server} is older than 13");
    let mut cmd = c.pg_tool("pg_dump");
    cmd.arg("--version");
    let out = run(cmd);
    let tools: i32 = out
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next()?.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse {out:?}"));
    assert!(
        tools >= server / 10000,
        "pg_dump {tools} cannot dump server {server}: set PGKEEP_PG_TOOLS"
    );
}
