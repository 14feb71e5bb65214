//! Repository operations that are not backup or restore: retention
//! planning ([`retention`], restic's `forget` semantics), expiring backups
//! by it ([`expire`], with what is never removed), pins ([`pins`]) and
//! removing leftovers of failed backups ([`prune`]), and policy jobs
//! resolved for running ([`job`]).

pub mod copy;
pub mod expire;
pub mod job;
pub mod metrics;
pub mod pins;
pub mod prune;
pub mod retention;
pub mod runs;
pub mod status;
