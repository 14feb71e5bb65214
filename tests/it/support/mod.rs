//! Test support: one PostgreSQL cluster per test binary ([`cluster`]), a
//! second one only for the restores into another cluster that globals need
//! ([`second_cluster`]), fixtures to load into them, and oracles to compare
//! databases with.
//!
//! `DATABASE_URL` set: that server is used as is. With the `testcontainers`
//! feature and a Docker engine, a container (see `container.rs` for when).
//! Otherwise an ephemeral cluster is started from `PGKEEP_PG_BIN` (or the
//! newest `/usr/lib/postgresql/<major>/bin`) and stopped when the binary
//! exits.
#![allow(dead_code, unused_imports)]

pub mod azure;
mod cluster;
#[cfg(feature = "testcontainers")]
mod container;
pub mod faulty_store;
mod fixtures;
mod local;
mod oracle;
pub mod receiver;
pub mod redis;
pub mod s3;
pub mod tls;

use std::process::Command;
use std::sync::OnceLock;

pub use cluster::TestCluster;
pub use fixtures::{fixtures_dir, kitchen_sink_path};
pub use local::{CLEARTEXT_ROLE, MD5_ROLE, SUPERUSER, SUPERUSER_PASSWORD};
pub use oracle::{assert_same_database, line_diff, map_diff, RlsState};

/// The cluster of this test binary, started (or located) on first use.
pub fn cluster() -> &'static TestCluster {
    static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => TestCluster::from_database_url(&url),
        #[cfg(feature = "testcontainers")]
        _ if container::wanted() => container::start(),
        _ => TestCluster::local(),
    })
}

/// A second ephemeral cluster (same server binaries), for restores into
/// another cluster; started on first use, by the tests that need it.
pub fn second_cluster() -> &'static TestCluster {
    static SECOND: OnceLock<TestCluster> = OnceLock::new();
    SECOND.get_or_init(TestCluster::second)
}

/// Run a command to completion; panic with its stderr unless it succeeds.
/// Returns stdout.
pub fn run(mut cmd: Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
