//! Fixture databases: Pagila (`tests/fixtures/pagila`) and this crate's
//! kitchen sink (`tests/fixtures/kitchen_sink.sql`), loaded with psql.

use std::path::PathBuf;

use super::TestCluster;

/// This crate's fixtures folder, `<crate>/tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// `<crate>/tests/fixtures/kitchen_sink.sql`.
pub fn kitchen_sink_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kitchen_sink.sql")
}

impl TestCluster {
    /// Load Pagila (schema, then data) into `db`.
    pub fn load_pagila(&self, db: &str) {
        let dir = fixtures_dir().join("pagila");
        assert!(
            dir.is_dir(),
            "{} not found: Pagila is part of the repository (tests/fixtures/pagila)",
            dir.display()
        );
        self.psql_file(db, dir.join("pagila-schema.sql"));
        self.psql_file(db, dir.join("pagila-data.sql"));
    }

    /// Load the kitchen sink into `db` (creates cluster-wide roles
    /// `app_owner`, `app_reader`, `app_writer` if missing).
    pub fn load_kitchen_sink(&self, db: &str) {
        self.psql_file(db, kitchen_sink_path());
    }
}
