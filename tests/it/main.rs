#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Integration tests: one test binary sharing one PostgreSQL cluster
//! (see `support`).

mod bench;
mod chain;
mod cli;
mod connect;
mod consistency;
mod copy;
mod drill;
mod encryption;
mod failures;
mod faults;
mod formats;
mod globals;
mod harness;
mod local_repository;
mod memory;
mod operations;
mod pgkeep;
mod progress;
mod prune;
mod recipes;
mod redis;
mod restore_errors;
mod retention;
mod roundtrip;
mod seclabels;
mod serve;
mod storage_azure;
mod storage_conformance;
mod storage_s3;
mod support;
mod versions;
mod wire;
