//! pgkeep: a native PostgreSQL backup and restore engine.
//!
//! Data flows one way on backup (`pg` → `pipeline` → `archive` → `store`) and
//! back the other way on restore (`store` → `archive` → `pipeline` → `pg`).

pub mod catalog;
pub mod error;

pub use error::{Error, Result};
