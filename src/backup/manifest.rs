//! The backup's manifest: assembled from the workers' streams, packs and
//! chain heads once every stream is in, and written last with a
//! create-only put. No manifest, no backup.

use super::worker::WorkerOutput;
use super::Run;
use crate::archive::layout;
use crate::archive::{ChainRecord, Manifest, ManifestBody, ManifestHeader, PackInfo, StreamInfo};
use crate::catalog::rls::RlsTable;
use crate::catalog::{ObjectKind, SourceInfo, TocEntry};
use crate::crypto::{BackupKey, WrappedKey};
use crate::error::{Error, Result};
use crate::store::Repo;
use crate::units::rfc3339;
use std::sync::Arc;

/// The manifest of a backup whose workers all finished.
pub(super) fn assemble(
    run: &Run<'_>,
    source: SourceInfo,
    toc: Vec<TocEntry>,
    rls: Vec<RlsTable>,
    mut outputs: Vec<WorkerOutput>,
    key: Option<Arc<BackupKey>>,
    wraps: Vec<WrappedKey>,
) -> Result<Manifest> {
    let opts = run.opts;
    let mut streams: Vec<StreamInfo> = outputs
        .iter_mut()
        .flat_map(|o| std::mem::take(&mut o.streams))
        .collect();
    streams.sort_by_key(|s| s.id);
    let mut packs: Vec<(u32, PackInfo)> = outputs
        .iter_mut()
        .flat_map(|o| std::mem::take(&mut o.packs))
        .collect();
    packs.sort_by_key(|(i, _)| *i);
    if packs.iter().enumerate().any(|(n, (i, _))| n as u32 != *i) {
        return Err(Error::Internal("pack numbering has gaps".into()));
    }
    let packs: Vec<PackInfo> = packs.into_iter().map(|(_, p)| p).collect();
    let mut chains: Vec<ChainRecord> = outputs
        .iter_mut()
        .flat_map(|o| std::mem::take(&mut o.chains))
        .collect();
    chains.sort_by(|a, b| a.table.cmp(&b.table));
    let finished = time::OffsetDateTime::now_utc();
    let tables = toc
        .iter()
        .filter(|e| e.kind == ObjectKind::TableData)
        .count() as u64;
    Ok(Manifest {
        header: ManifestHeader {
            format_version: crate::archive::manifest::FORMAT_VERSION,
            id: run.id.clone(),
            pgkeep_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: rfc3339(run.started)?,
            finished_at: rfc3339(finished)?,
            duration_ms: run.t0.elapsed().as_millis() as u64,
            source: opts.db.to_string(),
            server_version: source.server_version.clone(),
            system_identifier: source.system_identifier.clone(),
            database: source.database.clone(),
            tables,
            rows: streams.iter().map(|s| s.rows).sum(),
            plain_bytes: streams.iter().map(|s| s.plain_bytes).sum(),
            stored_bytes: packs.iter().map(|p| p.size).sum(),
            compression: if opts.compress_level == 0 {
                "none".into()
            } else {
                format!("zstd:{}", opts.compress_level)
            },
            body_encoding: String::new(),
            body_sha256: String::new(),
            cipher: key.as_ref().map(|k| k.cipher.kind()),
            key_ids: vec![],
            wrapped_keys: wraps,
        },
        body: ManifestBody {
            source,
            options: opts.catalog.clone(),
            toc,
            packs,
            streams,
            chains,
            rls: Some(rls),
        },
        key,
    })
}

/// Encodes and writes the manifest, create-only: two backups can never
/// claim the same id.
pub(super) async fn write(repo: &Repo, mut manifest: Manifest) -> Result<ManifestHeader> {
    let backup_id = manifest.header.id.clone();
    let bytes = manifest.encode()?;
    repo.put_new(&layout::manifest_path(&backup_id), bytes)
        .await
        .map_err(|e| match e {
            Error::Store {
                source:
                    object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
                ..
            } => Error::Busy(format!(
                "backup id {backup_id} already has a manifest in {}: another backup claimed it",
                repo.display()
            )),
            other => other,
        })?;
    tracing::info!(backup = %backup_id, rows = manifest.header.rows, stored_bytes = manifest.header.stored_bytes, "manifest written; backup complete");
    Ok(manifest.header)
}
