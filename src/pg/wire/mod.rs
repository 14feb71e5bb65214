//! pgkeep's own wire connection for the COPY-out sessions of a backup.
//! The driver hands out one allocated `Bytes` per COPY row, queued through
//! its connection task; here `CopyData` payloads are read as slices of one
//! read buffer, straight into the framer, with the server's row count and
//! the cancel request kept. Messages are parsed by `postgres-protocol`.

mod conn;
pub mod message;

pub use conn::{CancelKey, CopyOut, WireConn};
