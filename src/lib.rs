//! pgkeep: a native PostgreSQL backup and restore engine.
//!
//! Data flows one way on backup (`pg` → `pipeline` → `archive` → `store`) and
//! back the other way on restore (`store` → `archive` → `pipeline` → `pg`).

pub mod archive;
pub mod backup;
pub mod bench;
pub mod catalog;
pub mod chain;
pub mod config;
pub mod crypto;
pub mod drill;
pub mod error;
pub mod failpoint;
pub mod keys;
pub mod notify;
pub mod ops;
pub mod pg;
pub mod pipeline;
pub mod progress;
pub(crate) mod redact;
pub mod redis;
pub mod restore;
pub mod serve;
pub mod store;
pub mod units;
pub mod verify;

pub use error::{Error, Result};
