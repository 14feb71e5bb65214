//! Repository operations that are not backup or restore: retention
//! planning ([`retention`], restic's `forget` semantics) and pruning
//! ([`prune`]: leftovers of failed backups, and backups a keep policy no
//! longer keeps).

pub mod prune;
pub mod retention;
