//! Integration tests: one test binary sharing one PostgreSQL cluster
//! (see `support`).

mod harness;
mod support;
