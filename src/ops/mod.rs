//! Repository operations that are not backup or restore: pruning (for now
//! `--incomplete`; retention comes with its own issue).

pub mod prune;
