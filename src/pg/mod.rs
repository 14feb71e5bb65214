//! Connections to PostgreSQL: connecting with pgkeep's settings (TLS per
//! `sslmode`), the session setup every backup/restore connection gets, and
//! the snapshot leader/worker pair that makes parallel dumps consistent.

mod connect;
pub mod snapshot;
mod tls;

pub use connect::{connect, CancelHandle, Conn};

/// Identifier and literal quoting: one implementation, shared with the catalog.
pub use crate::catalog::sql::{quote_ident, quote_literal};

/// `schema.name`, each part quoted when needed.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("public", "T"), "public.\"T\"");
        assert_eq!(qualified("s", "select"), "s.\"select\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
