//! Connection settings the way libpq users expect them (URL or `key=value`
//! strings, `PG*` environment variables, `DATABASE_URL`, `~/.pgpass`,
//! `sslmode`), and the one redaction helper every log line and error uses.

mod conninfo;
mod pgpass;
mod redact;

pub use conninfo::{ConnSettings, SslMode};
pub use redact::{redact, redact_conninfo};
