//! Archive mode: the chain table's stream read back from a backup through
//! the verified frame reader restore uses ([`read_chain_stream`]), with no
//! database; the backup dumped it in chain order and recorded its heads
//! (`ChainRecord` in the manifest). `--against` loads an older backup's
//! heads as anchors the newer data must still contain.

use super::verify::{ChainOptions, ChainPlan, Verifier};
use super::{ChainsReport, StreamFilter};
use crate::archive::index::{read_manifest, resolve_backup_id};
use crate::archive::manifest::ChainRecord;
use crate::archive::stream::read_stream_bytes;
use crate::archive::Manifest;
use crate::catalog::ObjectKind;
use crate::config::ChainDef;
use crate::error::{Error, Result};
use crate::keys::Unlock;
use crate::store::Repo;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::sync::Arc;

/// The one place chain verification reads archived data: verified
/// plaintext chunks of stream `index`, within 64 MiB.
pub fn read_chain_stream(
    repo: &Repo,
    manifest: Arc<Manifest>,
    index: usize,
) -> Result<impl Stream<Item = Result<Bytes>> + Send + 'static> {
    read_stream_bytes(repo, manifest, index, READ_MEMORY)
}

/// Memory for reading one chain stream (frames in flight).
const READ_MEMORY: usize = 64 << 20;

/// Verifies `chains` in backup `id` (or `latest`) of `repo`; with `against`,
/// also that every head recorded by that older backup is still present.
pub async fn verify_archive(
    repo: &Repo,
    id: &str,
    chains: &[ChainDef],
    filter: &StreamFilter,
    against: Option<&str>,
    unlock: &Unlock,
) -> Result<ChainsReport> {
    let id = resolve_backup_id(repo, id).await?;
    let manifest = Arc::new(read_manifest(repo, &id, unlock).await?);
    let older = match against {
        None => None,
        Some(o) => {
            let oid = resolve_backup_id(repo, o).await?;
            if oid == id {
                return Err(Error::Config(format!(
                    "--against {oid} is the backup being verified; name an older one"
                )));
            }
            Some(read_manifest(repo, &oid, unlock).await?)
        }
    };
    let mut reports = Vec::with_capacity(chains.len());
    for def in chains {
        let (record, index, columns) = locate(&manifest, def)?;
        let anchors = match &older {
            None => None,
            Some(m) => Some(
                m.body
                    .chains
                    .iter()
                    .find(|r| r.table == def.table)
                    .map(|r| r.heads.clone())
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "backup {} recorded no chain heads for {} (was it taken with this chain in --policy?)",
                            m.header.id, def.table
                        ))
                    })?,
            ),
        };
        let plan = Arc::new(ChainPlan::new(def, &columns)?);
        let opts = ChainOptions {
            filter: filter.key_values(def)?,
            anchors,
            ..ChainOptions::default()
        };
        tracing::info!(table = %def.table, backup = %id, stream = record.stream, "verifying chain from the archive");
        let mut verifier = Verifier::new(plan, opts);
        let data = read_chain_stream(repo, manifest.clone(), index)?;
        futures::pin_mut!(data);
        while let Some(chunk) = data.next().await {
            verifier.feed(&chunk?)?;
        }
        reports.push(verifier.finish()?.0);
    }
    Ok(ChainsReport::new(reports))
}

/// The chain record, stream index and COPY columns of `def` in a backup.
fn locate<'a>(
    manifest: &'a Manifest,
    def: &ChainDef,
) -> Result<(&'a ChainRecord, usize, Vec<String>)> {
    let id = &manifest.header.id;
    let record = manifest
        .body
        .chains
        .iter()
        .find(|r| r.table == def.table)
        .ok_or_else(|| {
            Error::Config(format!(
                "backup {id} did not dump {} in chain order (take the backup with this chain in --policy)",
                def.table
            ))
        })?;
    if record.order != def.order_columns() {
        return Err(Error::Config(format!(
            "backup {id} dumped {} ordered by ({}), the chain definition needs ({})",
            def.table,
            record.order.join(", "),
            def.order_columns().join(", ")
        )));
    }
    let index = manifest
        .body
        .streams
        .iter()
        .position(|s| s.id == record.stream)
        .ok_or_else(|| {
            Error::format(
                format!("backup {id}"),
                format!("chain {} names missing stream {}", def.table, record.stream),
            )
        })?;
    let toc_id = manifest.body.streams[index].toc_id;
    let columns = manifest
        .body
        .toc
        .iter()
        .find(|e| e.id == toc_id && e.kind == ObjectKind::TableData)
        .and_then(|e| e.data.as_ref())
        .map(|d| d.columns.clone())
        .ok_or_else(|| {
            Error::format(
                format!("backup {id}"),
                format!(
                    "stream {} of chain {} has no table data entry",
                    record.stream, def.table
                ),
            )
        })?;
    Ok((record, index, columns))
}
