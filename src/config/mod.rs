//! Connection settings the way libpq users expect them (URL or `key=value`
//! strings, `PG*` environment variables, `DATABASE_URL`, `~/.pgpass`,
//! `sslmode`) and the policy file ([`policy`]). Redaction lives in
//! [`crate::redact`], re-exported here.

mod conninfo;
pub mod env;
pub mod keep;
mod pgpass;
pub mod policy;
pub mod suggest;

pub use crate::redact::{redact, redact_conninfo, scrub_urls};
pub use conninfo::{ConnSettings, SslMode};
pub use policy::{ChainDef, Policy};
