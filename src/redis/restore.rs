//! `pgkeep redis restore`: a replication backup back as an RDB file
//! ([`restore_rdb`]: every frame verified, written to a temporary file
//! beside the target, CRC64 checked again, fsynced, renamed), or a scan
//! backup's keys loaded into a live server with `RESTORE`
//! ([`restore_keys`]: expiries kept as absolute times, `REPLACE` only when
//! asked).

use super::conn::RedisConn;
use super::rdb::RdbCheck;
use super::records::RecordReader;
use super::resp::Reply;
use super::target::RedisTarget;
use crate::archive::stream::read_stream_bytes;
use crate::archive::{BackupKind, Manifest, RedisFacts, RedisMethod};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::store::Repo;
use futures::StreamExt;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// The Redis facts of a manifest, or a clear error for a PostgreSQL one.
pub fn redis_facts(m: &Manifest) -> Result<&RedisFacts> {
    match (&m.header.kind, &m.body.redis) {
        (BackupKind::Redis, Some(f)) => Ok(f),
        _ => Err(Error::Refused(format!(
            "backup {} is a PostgreSQL backup: restore it with `pgkeep restore`",
            m.header.id
        ))),
    }
}

/// What `restore --out` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct RdbRestored {
    pub backup_id: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub crc64: String,
    pub duration_ms: u64,
}

/// Writes the backup's RDB file to `out`. An existing file is replaced
/// only with `force`; nothing appears at `out` unless every byte checked.
pub async fn restore_rdb(
    repo: &Repo,
    manifest: Arc<Manifest>,
    out: &Path,
    force: bool,
    memory: usize,
    progress: Arc<dyn Progress>,
) -> Result<RdbRestored> {
    let t0 = std::time::Instant::now();
    let facts = redis_facts(&manifest)?.clone();
    if facts.method != RedisMethod::Replication {
        return Err(Error::Refused(format!(
            "backup {} was taken with --method scan: it holds keys, not an RDB file; load it into a server with `pgkeep redis restore --to URL`",
            manifest.header.id
        )));
    }
    if !force && tokio::fs::symlink_metadata(out).await.is_ok() {
        return Err(Error::Refused(format!(
            "{} exists: give --force to replace it",
            out.display()
        )));
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !tokio::fs::metadata(&dir).await.is_ok_and(|m| m.is_dir()) {
        return Err(Error::Config(format!(
            "--out {}: the directory {} does not exist",
            out.display(),
            dir.display()
        )));
    }
    let name = out
        .file_name()
        .ok_or_else(|| Error::Config(format!("--out {}: not a file name", out.display())))?;
    let tmp = dir.join(format!(
        ".{}.pgkeep-{:08x}",
        name.to_string_lossy(),
        rand::random::<u32>()
    ));
    let written = write_checked(repo, manifest.clone(), &tmp, &facts, memory, progress).await;
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    tokio::fs::rename(&tmp, out).await.map_err(io(out))?;
    // The rename itself survives a crash once the directory is synced.
    if let Ok(d) = tokio::fs::File::open(&dir).await {
        let _ = d.sync_all().await;
    }
    Ok(RdbRestored {
        backup_id: manifest.header.id.clone(),
        path: out.to_path_buf(),
        bytes: written,
        crc64: facts.crc64.clone().unwrap_or_default(),
        duration_ms: t0.elapsed().as_millis() as u64,
    })
}

async fn write_checked(
    repo: &Repo,
    manifest: Arc<Manifest>,
    tmp: &Path,
    facts: &RedisFacts,
    memory: usize,
    progress: Arc<dyn Progress>,
) -> Result<u64> {
    let io = |source| Error::Io {
        path: tmp.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .await
        .map_err(io)?;
    let id = manifest.header.id.clone();
    let frames = read_stream_bytes(repo, manifest, 0, memory)?;
    futures::pin_mut!(frames);
    progress.begin(facts.bytes);
    progress.stream_started(0, "redis snapshot", facts.bytes);
    let mut check = RdbCheck::new();
    let mut bytes = 0u64;
    while let Some(chunk) = frames.next().await {
        let chunk = chunk?;
        check
            .update(&chunk)
            .map_err(|e| Error::integrity(format!("backup {id}"), e))?;
        file.write_all(&chunk).await.map_err(io)?;
        bytes += chunk.len() as u64;
        progress.stream_advanced(0, chunk.len() as u64, 0);
    }
    let rdb = check
        .finish()
        .map_err(|e| Error::integrity(format!("backup {id}"), e))?;
    let crc = format!("{:016x}", rdb.crc64);
    if facts.crc64.as_deref() != Some(crc.as_str()) {
        return Err(Error::integrity(
            format!("backup {id}"),
            format!(
                "the restored file's CRC64 is {crc}, the backup recorded {}",
                facts.crc64.as_deref().unwrap_or("none")
            ),
        ));
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    progress.stream_finished(0, 0, bytes);
    progress.end();
    Ok(bytes)
}

/// What `restore --to` loaded.
#[derive(Debug, Clone, Serialize)]
pub struct KeysRestored {
    pub backup_id: String,
    pub target: String,
    pub keys: u64,
    /// Keys whose expiry passed between backup and restore (not created).
    pub expired: u64,
    pub duration_ms: u64,
}

/// Loads a scan backup's keys into the server at `to` with `RESTORE`
/// (`REPLACE` with `replace`; else an existing key stops the restore).
pub async fn restore_keys(
    repo: &Repo,
    manifest: Arc<Manifest>,
    to: &RedisTarget,
    replace: bool,
    memory: usize,
    progress: Arc<dyn Progress>,
) -> Result<KeysRestored> {
    let t0 = std::time::Instant::now();
    let facts = redis_facts(&manifest)?.clone();
    if facts.method != RedisMethod::Scan {
        return Err(Error::Refused(format!(
            "backup {} is an RDB snapshot: pgkeep does not load it into a running server; write it with `pgkeep redis restore --out PATH` and start redis-server on it (docs/redis.md)",
            manifest.header.id
        )));
    }
    let mut conn = RedisConn::connect(to).await?;
    let id = manifest.header.id.clone();
    let frames = read_stream_bytes(repo, manifest, 0, memory)?;
    futures::pin_mut!(frames);
    progress.begin(facts.bytes);
    progress.stream_started(0, "redis keys", facts.bytes);
    let mut reader = RecordReader::new();
    let mut db: Option<u32> = None;
    let (mut keys, mut expired) = (0u64, 0u64);
    let bad = |e: String| Error::format(format!("backup {id}"), e);
    while let Some(chunk) = frames.next().await {
        let chunk = chunk?;
        reader.push(&chunk);
        let now = super::records::now_ms();
        // Every record complete in this frame goes in one pipeline.
        let mut owned: Vec<Vec<Vec<u8>>> = Vec::new();
        while let Some(rec) = reader.next_record().map_err(bad)? {
            if db != Some(rec.db) {
                owned.push(vec![b"SELECT".to_vec(), rec.db.to_string().into_bytes()]);
                db = Some(rec.db);
            }
            let mut cmd = vec![b"RESTORE".to_vec(), rec.key, Vec::new(), rec.payload];
            if rec.expire_at_ms >= 0 {
                if rec.expire_at_ms <= now {
                    expired += 1;
                    continue;
                }
                cmd[2] = rec.expire_at_ms.to_string().into_bytes();
                cmd.push(b"ABSTTL".to_vec());
            } else {
                cmd[2] = b"0".to_vec();
            }
            if replace {
                cmd.push(b"REPLACE".to_vec());
            }
            owned.push(cmd);
        }
        let cmds: Vec<Vec<&[u8]>> = owned
            .iter()
            .map(|c| c.iter().map(Vec::as_slice).collect())
            .collect();
        if !cmds.is_empty() {
            conn.send_all(&cmds).await?;
        }
        let mut first_error = None;
        for c in &cmds {
            let r = conn.reply().await?;
            if let Reply::Error(e) = r {
                first_error.get_or_insert_with(|| {
                    let key = String::from_utf8_lossy(c.get(1).copied().unwrap_or_default());
                    let hint = if e.starts_with("BUSYKEY") {
                        " (the key exists in the target: give --replace to overwrite it)"
                    } else {
                        ""
                    };
                    Error::Redis {
                        context: format!(
                            "{} {key}",
                            String::from_utf8_lossy(c.first().copied().unwrap_or_default())
                        ),
                        message: format!("{e}{hint}"),
                    }
                });
            } else if c.first().copied() == Some(b"RESTORE".as_slice()) {
                keys += 1;
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        progress.stream_advanced(0, chunk.len() as u64, 0);
    }
    reader.finish().map_err(bad)?;
    progress.stream_finished(0, keys, facts.bytes);
    progress.end();
    Ok(KeysRestored {
        backup_id: id,
        target: to.to_string(),
        keys,
        expired,
        duration_ms: t0.elapsed().as_millis() as u64,
    })
}
