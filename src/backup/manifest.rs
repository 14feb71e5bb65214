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

/// What the backup read from the catalogs.
pub(super) struct Facts {
    pub source: SourceInfo,
    pub toc: Vec<TocEntry>,
    pub rls: Vec<RlsTable>,
    pub globals: crate::catalog::globals::Globals,
}

/// The manifest of a backup whose workers all finished.
pub(super) fn assemble(
    run: &Run<'_>,
    facts: Facts,
    mut outputs: Vec<WorkerOutput>,
    key: Option<Arc<BackupKey>>,
    wraps: Vec<WrappedKey>,
) -> Result<Manifest> {
    let opts = run.opts;
    let Facts {
        source,
        toc,
        rls,
        globals,
    } = facts;
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
    let tables = toc
        .iter()
        .filter(|e| e.kind == ObjectKind::TableData)
        .count() as u64;
    let written = Written {
        id: &run.id,
        kind: crate::archive::BackupKind::Postgres,
        started: run.started,
        t0: run.t0,
        compress_level: opts.compress_level,
        key: key.as_ref(),
        wraps,
    };
    Ok(Manifest {
        header: ManifestHeader {
            source: opts.db.to_string(),
            server_version: source.server_version.clone(),
            system_identifier: source.system_identifier.clone(),
            database: source.database.clone(),
            tables,
            rows: streams.iter().map(|s| s.rows).sum(),
            plain_bytes: streams.iter().map(|s| s.plain_bytes).sum(),
            stored_bytes: packs.iter().map(|p| p.size).sum(),
            ..written.header()?
        },
        body: ManifestBody {
            source,
            options: opts.catalog.clone(),
            toc,
            packs,
            streams,
            chains,
            rls: Some(rls),
            redis: None,
            globals: Some(globals),
        },
        key,
    })
}

/// What every backup's header says of how it was written: the rest
/// (source, sizes) is filled in by the kind of backup.
pub(crate) struct Written<'a> {
    pub id: &'a str,
    pub kind: crate::archive::BackupKind,
    pub started: time::OffsetDateTime,
    pub t0: std::time::Instant,
    pub compress_level: i32,
    pub key: Option<&'a Arc<BackupKey>>,
    pub wraps: Vec<WrappedKey>,
}

impl Written<'_> {
    /// The header, finished now, with empty source and sizes.
    pub(crate) fn header(self) -> Result<ManifestHeader> {
        Ok(ManifestHeader {
            format_version: crate::archive::manifest::FORMAT_VERSION,
            id: self.id.to_string(),
            kind: self.kind,
            pgkeep_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: rfc3339(self.started)?,
            finished_at: rfc3339(time::OffsetDateTime::now_utc())?,
            duration_ms: self.t0.elapsed().as_millis() as u64,
            source: String::new(),
            server_version: String::new(),
            system_identifier: None,
            database: String::new(),
            tables: 0,
            rows: 0,
            plain_bytes: 0,
            stored_bytes: 0,
            compression: if self.compress_level == 0 {
                "none".into()
            } else {
                format!("zstd:{}", self.compress_level)
            },
            body_encoding: String::new(),
            body_sha256: String::new(),
            cipher: self.key.map(|k| k.cipher.kind()),
            key_ids: vec![],
            wrapped_keys: self.wraps,
        })
    }
}

/// Encodes and writes the manifest, create-only: two backups can never
/// claim the same id.
pub(crate) async fn write(repo: &Repo, mut manifest: Manifest) -> Result<ManifestHeader> {
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
