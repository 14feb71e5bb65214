//! Connections to PostgreSQL: connecting with pgkeep's settings (TLS per
//! `sslmode`), the session setup every backup/restore connection gets, and
//! the snapshot leader/worker pair that makes parallel dumps consistent.

mod connect;
pub mod snapshot;
mod tls;

pub use connect::{connect, CancelHandle, Conn};

/// Quotes an identifier the way `quote_ident` does, always.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `schema.name`, both quoted.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// Quotes a string literal (standard_conforming_strings on).
pub fn quote_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("public", "T"), "\"public\".\"T\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
    }
}
