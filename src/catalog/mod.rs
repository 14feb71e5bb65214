//! Catalog reader: turns the system catalogs of the source database, read
//! inside the backup's snapshot, into a table of contents of SQL entries with
//! dependencies, split into pre-data, data and post-data sections.
//!
//! Two steps, so the backup leader can lock before it reads definitions:
//! 1. [`select_tables`]: which relations the backup dumps (to be locked);
//! 2. [`read_toc`]: every object's DDL, data entries, dependencies, sorted.

pub mod toc;

pub use toc::{ObjRef, ObjectKind, Section, TableData, TocEntry};

use crate::error::Result;
use serde::{Deserialize, Serialize};

/// Which objects a backup includes (`--schema`, `--exclude-schema`, `--table`,
/// `--exclude-table`). Patterns are exact names, or `schema.name` for tables;
/// `*` and `?` wildcards as in pg_dump.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CatalogOptions {
    pub schemas: Vec<String>,
    pub exclude_schemas: Vec<String>,
    pub tables: Vec<String>,
    pub exclude_tables: Vec<String>,
}

/// A relation selected for the backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationRef {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// `pg_class.relkind` ('r', 'p', 'm', 'S', 'v', 'f').
    pub relkind: char,
}

/// Facts about the source server and database recorded in the manifest.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceInfo {
    pub server_version: String,
    pub server_version_num: i32,
    /// `pg_control_system().system_identifier`, when the role may read it.
    pub system_identifier: Option<String>,
    pub database: String,
    pub encoding: String,
}
