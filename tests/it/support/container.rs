//! PostgreSQL in a container (feature `testcontainers`, needs a Docker
//! engine). Used when `PGKEEP_TESTCONTAINERS=1`, or when neither
//! `PGKEEP_PG_BIN` nor installed server binaries exist. The image tag comes
//! from `PGKEEP_TESTCONTAINERS_TAG` (default `15-alpine`). The container
//! lives as long as the test binary; testcontainers' reaper removes it when
//! the process exits. Client tools (psql, pg_dump: the oracles) still come
//! from the host.

use super::cluster::TestCluster;
use super::local;
use std::sync::OnceLock;
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::runners::SyncRunner;
use testcontainers_modules::testcontainers::{Container, ImageExt};

/// Whether this run should use a container rather than local binaries.
pub fn wanted() -> bool {
    std::env::var_os("PGKEEP_TESTCONTAINERS").is_some_and(|v| v != "0")
        || (std::env::var_os("PGKEEP_PG_BIN").is_none() && local::newest_installed_bin().is_none())
}

/// Starts the container (once) and describes it as a cluster.
pub fn start() -> TestCluster {
    static CONTAINER: OnceLock<Container<Postgres>> = OnceLock::new();
    let c = CONTAINER.get_or_init(|| {
        let tag = std::env::var("PGKEEP_TESTCONTAINERS_TAG").unwrap_or_else(|_| "15-alpine".into());
        Postgres::default()
            .with_user(local::SUPERUSER)
            .with_password(local::SUPERUSER_PASSWORD)
            .with_tag(tag)
            .start()
            .unwrap_or_else(|e| {
                panic!("cannot start a PostgreSQL container (is a Docker engine running?): {e}")
            })
    });
    let host = c.get_host().expect("container host").to_string();
    let port = c.get_host_port_ipv4(5432).expect("container port");
    TestCluster::from_database_url(&format!(
        "postgres://{}:{}@{host}:{port}/postgres",
        local::SUPERUSER,
        local::SUPERUSER_PASSWORD
    ))
}
