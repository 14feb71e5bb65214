//! Connection settings the way libpq users expect them (URL or `key=value`
//! strings, `PG*` environment variables, `DATABASE_URL`, `~/.pgpass`,
//! `sslmode`), the one redaction helper every log line and error uses, and
//! the policy file ([`policy`]).

mod conninfo;
mod pgpass;
pub mod policy;
mod redact;

pub use conninfo::{ConnSettings, SslMode};
pub use policy::{ChainDef, Policy};
pub use redact::{redact, redact_conninfo, scrub_urls};
