//! Connections to PostgreSQL: connecting with pgkeep's settings (TLS per
//! `sslmode`), the session setup every backup/restore connection gets, and
//! the snapshot leader/worker pair that makes parallel dumps consistent.

mod connect;
pub(crate) mod copy;
pub(crate) mod quote;
pub(crate) mod snapshot;
mod tls;
pub mod wire;

pub use connect::{connect, CancelHandle, Conn};

pub use quote::{qualified, quote_ident, quote_literal};
