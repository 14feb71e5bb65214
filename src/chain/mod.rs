//! Hash-chain verification of event-store tables (`docs/chain.md`): rows
//! hash-chained per stream, checked in one streaming pass from a live
//! database or straight from a backup, and against the chain heads an older
//! backup recorded.
//!
//! - [`copytext`]: COPY text rows and fields, unescaping;
//! - [`recipe`]: the hash recipe on one row, stored-hash encodings;
//! - [`verify`]: the one streaming verifier (and head collector);
//! - `live` / `archive`: where the COPY text comes from.

mod archive;
pub(crate) mod copytext;
mod live;
pub(crate) mod recipe;
pub(crate) mod verify;

pub use archive::{read_chain_stream, verify_archive};
pub use live::verify_live;
pub use verify::{ChainOptions, ChainPlan, ChainReport, Check, Failure, Verifier};

use crate::config::ChainDef;
use crate::error::{Error, Result};
use crate::pg::quote_ident;
use serde::{Deserialize, Serialize};

/// The result of verifying one or more chain tables. Live and archive mode
/// produce the same report for the same data.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChainsReport {
    /// True when every checked stream holds.
    pub ok: bool,
    pub streams: u64,
    pub events: u64,
    pub broken: u64,
    pub chains: Vec<ChainReport>,
}

impl ChainsReport {
    pub fn new(chains: Vec<ChainReport>) -> ChainsReport {
        let broken = chains.iter().map(|c| c.broken).sum();
        ChainsReport {
            ok: broken == 0,
            streams: chains.iter().map(|c| c.streams).sum(),
            events: chains.iter().map(|c| c.events).sum(),
            broken,
            chains,
        }
    }
}

/// Which streams to check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StreamFilter {
    #[default]
    All,
    /// One stream: its key values joined with `/` (`--stream TYPE/ID`).
    Stream(String),
    /// Streams whose first key column equals this (`--stream-type TYPE`).
    Type(String),
}

impl StreamFilter {
    /// The leading key values a stream must have, for `def`.
    pub fn key_values(&self, def: &ChainDef) -> Result<Option<Vec<String>>> {
        match self {
            StreamFilter::All => Ok(None),
            StreamFilter::Type(t) => Ok(Some(vec![t.clone()])),
            StreamFilter::Stream(s) => {
                let n = def.stream.len();
                let parts: Vec<String> = s.splitn(n, '/').map(str::to_string).collect();
                if parts.len() != n {
                    return Err(Error::Config(format!(
                        "--stream {s:?}: chain {} has {n} stream key columns ({}); give {n} values separated by '/'",
                        def.table,
                        def.stream.join(", ")
                    )));
                }
                Ok(Some(parts))
            }
        }
    }
}

/// `ORDER BY` of a chain table's COPY: stream key, seq, hash. Backup and
/// live mode both use it, so their streams come in the same order.
pub fn order_by(def: &ChainDef) -> String {
    let cols: Vec<String> = def.order_columns().iter().map(|c| quote_ident(c)).collect();
    format!("ORDER BY {}", cols.join(", "))
}
