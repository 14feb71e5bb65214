//! `pgkeep redis backup`: the server's facts (`INFO`), then its data as one
//! stream through the backup pipeline (frames → zstd → AEAD → SHA-256 →
//! packs), under a lease, with a manifest of kind `redis` written last.
//!
//! Two ways to take the data ([`Method`]):
//! - replication: the RDB snapshot a replica gets (`REPLCONF capa eof`,
//!   `REPLCONF rdb-only 1`, `SYNC`), streamed as it arrives, in either
//!   transfer form, its header and CRC64 checked on the way ([`rdb`]);
//! - scan: `SCAN`, then `PTTL` + `DUMP` per key, pipelined, one record per
//!   key ([`records`]). Not a point-in-time snapshot: keys written during
//!   the scan may or may not be in it.

use super::conn::RedisConn;
use super::rdb::{RdbCheck, RdbFacts};
use super::records::MAGIC;
use super::resp::Reply;
use super::target::RedisTarget;
use super::transfer::{next_step, EofScanner, Preamble, Step};
use crate::archive::layout;
use crate::archive::pack::{PackSet, PackSink};
use crate::archive::{
    BackupKind, Manifest, ManifestBody, ManifestHeader, RedisFacts, RedisMethod, StreamInfo,
};
use crate::backup::worker::{frame_stream, Owned, Shared, StreamTarget, Unit};
use crate::backup::{
    leased, prepare_keys, KeyChoice, Written, DEFAULT_COMPRESS_LEVEL, DEFAULT_PACK_BYTES,
};
use crate::catalog::{CatalogOptions, SourceInfo};
use crate::error::{Error, Result};
use crate::pipeline::budget::DEFAULT_MEMORY;
use crate::pipeline::{Budget, FrameBuffers};
use crate::progress::Progress;
use bytes::Bytes;
use futures::Stream;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Keys asked of each `SCAN` (and pipelined `DUMP`s in flight).
pub const DEFAULT_SCAN_COUNT: usize = 200;

/// How the data is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Method {
    /// Replication first; scan when the server refuses `SYNC`.
    #[default]
    Auto,
    Replication,
    Scan,
}

impl std::str::FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Method> {
        match s {
            "auto" => Ok(Method::Auto),
            "replication" | "sync" => Ok(Method::Replication),
            "scan" => Ok(Method::Scan),
            other => Err(Error::Config(format!(
                "--method {other:?}: use auto, replication or scan"
            ))),
        }
    }
}

/// Everything a Redis backup needs besides the repository.
#[derive(Clone, Debug)]
pub struct RedisBackupOptions {
    pub target: RedisTarget,
    pub method: Method,
    /// Memory budget in bytes (frames, encoders and uploads in flight).
    pub memory: usize,
    /// zstd level; 0 stores frames uncompressed.
    pub compress_level: i32,
    pub keys: KeyChoice,
    pub pack_bytes: u64,
    pub lease_ttl: Duration,
    /// Keys per `SCAN` (scan method).
    pub scan_count: usize,
    /// Record `DEBUG DIGEST` (taken before and after the data; kept only
    /// when they agree) for drills to compare. Blocks the server while it
    /// walks the whole dataset, twice: off by default.
    pub digest: bool,
}

impl RedisBackupOptions {
    pub fn new(target: RedisTarget) -> RedisBackupOptions {
        RedisBackupOptions {
            target,
            method: Method::Auto,
            memory: DEFAULT_MEMORY,
            compress_level: DEFAULT_COMPRESS_LEVEL,
            keys: KeyChoice::default(),
            pack_bytes: DEFAULT_PACK_BYTES,
            lease_ttl: crate::store::lease::DEFAULT_TTL,
            scan_count: DEFAULT_SCAN_COUNT,
            digest: false,
        }
    }

    /// One stream at a time: the whole budget serves it.
    pub fn budget(&self) -> Result<Budget> {
        Budget::new(self.memory, 1, None)
    }
}

/// The server's facts read before the data.
#[derive(Debug, Clone)]
struct ServerFacts {
    version: String,
    role: String,
    keyspace: BTreeMap<u32, u64>,
    expires: BTreeMap<u32, u64>,
}

async fn server_facts(conn: &mut RedisConn) -> Result<ServerFacts> {
    let server = conn.info("server").await?;
    let get = |k: &str| {
        server
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let version = get("valkey_version")
        .map(|v| format!("valkey {v}"))
        .or_else(|| get("redis_version"))
        .unwrap_or_else(|| "unknown".into());
    let role = conn
        .info("replication")
        .await?
        .into_iter()
        .find(|(k, _)| k == "role")
        .map(|(_, v)| v)
        .unwrap_or_else(|| "unknown".into());
    let info = conn.info("keyspace").await?;
    Ok(ServerFacts {
        version,
        role,
        keyspace: parse_keyspace(&info, "keys"),
        expires: parse_keyspace(&info, "expires"),
    })
}

/// `DEBUG DIGEST` of the dataset, or `None` (with a warning) when the
/// server refuses it (`enable-debug-command` off, an ACL without it).
pub(crate) async fn digest(conn: &mut RedisConn) -> Result<Option<String>> {
    match conn.call(&[b"DEBUG", b"DIGEST"]).await? {
        Reply::Error(e) => {
            tracing::warn!(source = %conn.target, reply = %e, "DEBUG DIGEST refused: no digest recorded");
            Ok(None)
        }
        r => Ok(r.text()),
    }
}

/// `db0:keys=3,expires=1,avg_ttl=0` → {0: 3} for `field` `keys`.
pub(crate) fn parse_keyspace(info: &[(String, String)], field: &str) -> BTreeMap<u32, u64> {
    info.iter()
        .filter_map(|(k, v)| {
            let db = k.strip_prefix("db")?.parse::<u32>().ok()?;
            let keys = v
                .split(',')
                .find_map(|kv| kv.strip_prefix(field)?.strip_prefix('='))?
                .parse::<u64>()
                .ok()?;
            Some((db, keys))
        })
        .collect()
}

/// Runs a Redis backup into `repo`. Returns the header of the written
/// manifest.
pub async fn redis_backup(
    repo: &crate::store::Repo,
    opts: &RedisBackupOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<ManifestHeader> {
    let budget = opts.budget()?;
    let started = time::OffsetDateTime::now_utc();
    let id = layout::new_backup_id(started);
    let work = async {
        tokio::select! {
            r = execute(repo, opts, budget, &id, started, progress.clone()) => r,
            _ = cancel.cancelled() => Err(Error::Interrupted("backup cancelled".into())),
        }
    };
    leased(repo, &id, opts.lease_ttl, progress.clone(), work).await
}

async fn execute(
    repo: &crate::store::Repo,
    opts: &RedisBackupOptions,
    budget: Budget,
    id: &str,
    started: time::OffsetDateTime,
    progress: Arc<dyn Progress>,
) -> Result<ManifestHeader> {
    let t0 = Instant::now();
    let (key, wraps) = prepare_keys(repo, &opts.keys, id).await?;
    let mut conn = RedisConn::connect(&opts.target).await?;
    let facts = server_facts(&mut conn).await?;
    let before = match opts.digest {
        true => digest(&mut conn).await?,
        false => None,
    };
    tracing::info!(backup = %id, source = %opts.target, version = %facts.version, role = %facts.role, keys = facts.keyspace.values().sum::<u64>(), "redis server");
    let shared = Shared {
        budget,
        level: opts.compress_level,
        key: key.clone(),
        queue: Default::default(),
        packs: Arc::new(PackSet::new(
            repo.clone(),
            id.to_string(),
            opts.pack_bytes,
            budget.part_size,
            budget.upload_concurrency,
        )),
        progress: progress.clone(),
        bufs: FrameBuffers::new(budget.frame_size, budget.total),
    };
    let mut sink = PackSink::new(shared.packs.clone());
    let taken = take(conn, opts, &facts, &shared, &mut sink).await;
    let taken = match taken {
        Ok(t) => t,
        Err(e) => {
            sink.abort().await;
            progress.end();
            return Err(e);
        }
    };
    let packs: Vec<_> = sink.finish().await?.into_iter().map(|(_, p)| p).collect();
    let digest = match before {
        Some(b) => {
            let after = digest(&mut RedisConn::connect(&opts.target).await?).await?;
            if after.as_deref() == Some(b.as_str()) {
                Some(b)
            } else {
                tracing::warn!(source = %opts.target, "the dataset changed while the backup ran: its DEBUG DIGEST is not recorded");
                None
            }
        }
        None => None,
    };
    progress.end();
    let redis = RedisFacts {
        method: taken.method,
        server_version: facts.version.clone(),
        role: facts.role.clone(),
        rdb_magic: taken.rdb.as_ref().map(|r| r.magic.clone()),
        transfer: taken.transfer.map(str::to_string),
        rdb_version: taken.rdb.as_ref().and_then(|r| r.version),
        crc64: taken.rdb.as_ref().map(|r| format!("{:016x}", r.crc64)),
        trailer_crc: taken
            .rdb
            .as_ref()
            .and_then(|r| r.trailer)
            .map(|t| format!("{t:016x}")),
        keyspace: facts.keyspace.clone(),
        expires: facts.expires.clone(),
        digest,
        keys: taken.keys,
        bytes: taken.stream.plain_bytes,
    };
    let databases: Vec<String> = facts.keyspace.keys().map(|d| format!("db{d}")).collect();
    let written = Written {
        id,
        kind: BackupKind::Redis,
        started,
        t0,
        compress_level: opts.compress_level,
        key: key.as_ref(),
        wraps,
    };
    let manifest = Manifest {
        header: ManifestHeader {
            source: opts.target.to_string(),
            server_version: facts.version.clone(),
            database: databases.join(","),
            rows: taken.keys,
            plain_bytes: taken.stream.plain_bytes,
            stored_bytes: packs.iter().map(|p| p.size).sum(),
            ..written.header()?
        },
        body: ManifestBody {
            source: SourceInfo {
                server_version: facts.version,
                database: databases.join(","),
                ..SourceInfo::default()
            },
            options: CatalogOptions::default(),
            toc: vec![],
            packs,
            streams: vec![taken.stream],
            chains: vec![],
            rls: None,
            redis: Some(redis),
            globals: None,
        },
        key,
    };
    crate::backup::write_manifest(repo, manifest).await
}

/// The data as taken.
struct Taken {
    method: RedisMethod,
    stream: StreamInfo,
    rdb: Option<RdbFacts>,
    /// `disk` or `diskless` (replication).
    transfer: Option<&'static str>,
    keys: u64,
}

/// The one stream of a Redis backup.
const STREAM: StreamTarget = StreamTarget {
    stream: 0,
    toc_id: 0,
    pages: None,
    unit: Unit::Bytes,
};

async fn take(
    mut conn: RedisConn,
    opts: &RedisBackupOptions,
    facts: &ServerFacts,
    shared: &Shared,
    sink: &mut PackSink,
) -> Result<Taken> {
    if opts.method != Method::Scan {
        match start_sync(&mut conn).await? {
            Ok(preamble) => return replicate(conn, preamble, facts, shared, sink).await,
            Err(why) if opts.method == Method::Replication => {
                return Err(Error::Redis {
                    context: format!("snapshot of {}", opts.target),
                    message: format!(
                        "the server refused SYNC ({why}): managed services disable it, and an ACL user needs +sync and +psync (or +@admin); `--method scan` reads the keys instead (not a point-in-time snapshot)"
                    ),
                })
            }
            Err(why) => {
                tracing::warn!(source = %opts.target, reason = %why, "the server refused SYNC; falling back to --method scan (not a point-in-time snapshot)");
                conn = RedisConn::connect(&opts.target).await?;
            }
        }
    }
    scan(conn, opts, facts, shared, sink).await
}

/// Asks for a snapshot. The outer error is a failure; the inner one, the
/// server's refusal (for `--method auto` to fall back on).
async fn start_sync(conn: &mut RedisConn) -> Result<std::result::Result<Preamble, String>> {
    if let Reply::Error(e) = conn.call(&[b"REPLCONF", b"capa", b"eof"]).await? {
        return Ok(Err(e));
    }
    // Only servers from 7.0 know rdb-only; an older one sends the
    // replication stream after the snapshot, which we never read.
    if let Reply::Error(e) = conn.call(&[b"REPLCONF", b"rdb-only", b"1"]).await? {
        tracing::debug!(reply = %e, "REPLCONF rdb-only not accepted (older server)");
    }
    conn.send(&[b"SYNC"]).await?;
    loop {
        let step = next_step(conn.buffered()).map_err(|e| Error::Redis {
            context: format!("SYNC reply from {}", conn.target),
            message: format!("protocol error: {e}"),
        })?;
        match step {
            Step::More => {
                if conn.fill().await? == 0 {
                    return Err(conn.closed("waiting for the snapshot"));
                }
            }
            Step::Skip(n) => {
                let _ = conn.buffered().split_to(n);
            }
            Step::Refused(e) => return Ok(Err(e)),
            Step::Payload(p, n) => {
                let _ = conn.buffered().split_to(n);
                return Ok(Ok(p));
            }
        }
    }
}

/// The payload of a snapshot as chunks, ending where its preamble says.
fn payload(conn: RedisConn, preamble: Preamble) -> impl Stream<Item = Result<Bytes>> {
    enum End {
        Left(u64),
        Mark(Box<EofScanner>),
    }
    let end = match preamble {
        Preamble::Length(n) => End::Left(n),
        Preamble::Eof(mark) => End::Mark(Box::new(EofScanner::new(mark))),
    };
    futures::stream::try_unfold((conn, end), |(mut conn, mut end)| async move {
        loop {
            let finished = match &end {
                End::Left(n) => *n == 0,
                End::Mark(s) => s.done(),
            };
            if finished {
                return Ok(None);
            }
            if conn.buffered().is_empty() && conn.fill().await? == 0 {
                return Err(conn.closed("reading the snapshot"));
            }
            let chunk = match &mut end {
                End::Left(n) => {
                    let take = conn
                        .buffered()
                        .len()
                        .min(usize::try_from(*n).unwrap_or(usize::MAX));
                    *n -= take as u64;
                    conn.buffered().split_to(take).freeze()
                }
                End::Mark(s) => {
                    let data = conn.buffered().split();
                    Bytes::from(s.push(&data).map_err(|e| Error::Redis {
                        context: format!("snapshot from {}", conn.target),
                        message: e,
                    })?)
                }
            };
            if !chunk.is_empty() {
                return Ok(Some((chunk, (conn, end))));
            }
        }
    })
}

async fn replicate(
    conn: RedisConn,
    preamble: Preamble,
    facts: &ServerFacts,
    shared: &Shared,
    sink: &mut PackSink,
) -> Result<Taken> {
    let source = conn.target.clone();
    let (size, transfer) = match &preamble {
        Preamble::Length(n) => (*n, "disk"),
        Preamble::Eof(_) => (0, "diskless"),
    };
    tracing::info!(source = %source, bytes = size, transfer, "snapshot transfer started");
    shared.progress.begin(size);
    shared.progress.stream_started(0, "redis snapshot", size);
    let mut check = RdbCheck::new();
    let bad = |e: String| Error::integrity(format!("the snapshot from {source}"), e);
    let stream = frame_stream(
        &mut Owned::new(payload(conn, preamble)),
        &STREAM,
        |chunk| check.update(chunk).map_err(bad),
        sink,
        shared,
    )
    .await?;
    let rdb = check.finish().map_err(bad)?;
    shared.progress.stream_finished(0, 0, stream.plain_bytes);
    Ok(Taken {
        method: RedisMethod::Replication,
        stream,
        rdb: Some(rdb),
        transfer: Some(transfer),
        keys: facts.keyspace.values().sum(),
    })
}

/// Where a scan stands.
struct ScanState {
    conn: RedisConn,
    dbs: VecDeque<u32>,
    db: Option<u32>,
    cursor: Option<Vec<u8>>,
    /// Keys whose `PTTL` and `DUMP` replies are on their way.
    pending: VecDeque<Vec<u8>>,
    count: usize,
    magic_sent: bool,
}

impl ScanState {
    /// The next record (or the magic first), `None` at the end.
    async fn next(&mut self) -> Result<Option<Bytes>> {
        if !self.magic_sent {
            self.magic_sent = true;
            return Ok(Some(Bytes::from_static(MAGIC)));
        }
        loop {
            if let Some(key) = self.pending.pop_front() {
                let ttl = self.conn.reply().await?;
                let dump = self.conn.reply().await?;
                let expire_at_ms = match ttl {
                    Reply::Int(ms) if ms >= 0 => super::records::now_ms().saturating_add(ms),
                    Reply::Int(_) => -1,
                    Reply::Error(e) => return Err(redis_err("PTTL", e)),
                    other => return Err(unexpected("PTTL", &other)),
                };
                let payload = match dump {
                    // Gone (expired or deleted) since SCAN returned it.
                    Reply::Bulk(None) => continue,
                    Reply::Bulk(Some(b)) => b,
                    Reply::Error(e) => return Err(redis_err("DUMP", e)),
                    other => return Err(unexpected("DUMP", &other)),
                };
                let mut out = Vec::new();
                super::records::encode(
                    self.db.unwrap_or(0),
                    &key,
                    expire_at_ms,
                    &payload,
                    &mut out,
                );
                return Ok(Some(Bytes::from(out)));
            }
            match (&self.db, &self.cursor) {
                (Some(_), Some(c)) if c.as_slice() == b"0" => {
                    self.db = None;
                }
                (Some(_), _) => self.scan_more().await?,
                (None, _) => {
                    let Some(db) = self.dbs.pop_front() else {
                        return Ok(None);
                    };
                    self.conn
                        .command(&[b"SELECT", db.to_string().as_bytes()])
                        .await?;
                    self.db = Some(db);
                    self.cursor = None;
                }
            }
        }
    }

    /// One `SCAN` and the pipelined `PTTL` + `DUMP` of its keys.
    async fn scan_more(&mut self) -> Result<()> {
        let cursor = self.cursor.clone().unwrap_or_else(|| b"0".to_vec());
        let count = self.count.to_string();
        let r = self
            .conn
            .command(&[b"SCAN", &cursor, b"COUNT", count.as_bytes()])
            .await?;
        let Reply::Array(Some(mut parts)) = r else {
            return Err(unexpected("SCAN", &r));
        };
        let (Some(Reply::Array(Some(keys))), Some(Reply::Bulk(Some(next)))) =
            (parts.pop(), parts.pop())
        else {
            return Err(Error::Redis {
                context: "SCAN".into(),
                message: "a reply that is not [cursor, keys]".into(),
            });
        };
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .filter_map(|k| match k {
                Reply::Bulk(Some(b)) => Some(b.to_vec()),
                _ => None,
            })
            .collect();
        let mut cmds: Vec<Vec<&[u8]>> = Vec::with_capacity(2 * keys.len());
        for k in &keys {
            cmds.push(vec![b"PTTL", k]);
            cmds.push(vec![b"DUMP", k]);
        }
        if !cmds.is_empty() {
            self.conn.send_all(&cmds).await?;
        }
        self.pending.extend(keys);
        self.cursor = Some(next.to_vec());
        Ok(())
    }
}

fn redis_err(context: &str, message: String) -> Error {
    Error::Redis {
        context: context.into(),
        message,
    }
}

fn unexpected(context: &str, r: &Reply) -> Error {
    let kind = match r {
        Reply::Status(_) => "a status",
        Reply::Error(_) => "an error",
        Reply::Int(_) => "an integer",
        Reply::Bulk(_) => "a bulk string",
        Reply::Array(_) => "an array",
    };
    Error::Redis {
        context: context.into(),
        message: format!("unexpected reply ({kind})"),
    }
}

async fn scan(
    conn: RedisConn,
    opts: &RedisBackupOptions,
    facts: &ServerFacts,
    shared: &Shared,
    sink: &mut PackSink,
) -> Result<Taken> {
    let state = ScanState {
        conn,
        dbs: facts.keyspace.keys().copied().collect(),
        db: None,
        cursor: None,
        pending: VecDeque::new(),
        count: opts.scan_count.max(1),
        magic_sent: false,
    };
    let total: u64 = facts.keyspace.values().sum();
    tracing::info!(source = %opts.target, keys = total, "scan started (not a point-in-time snapshot)");
    shared.progress.begin(0);
    shared.progress.stream_started(0, "redis keys", 0);
    let records =
        futures::stream::try_unfold(
            state,
            |mut s| async move { Ok(s.next().await?.map(|r| (r, s))) },
        );
    let target = StreamTarget {
        unit: Unit::Rows,
        ..STREAM
    };
    let stream = frame_stream(&mut Owned::new(records), &target, |_| Ok(()), sink, shared).await?;
    // The magic counts as a row of the stream; the keys are the rest.
    let keys = stream.rows.saturating_sub(1);
    shared.progress.stream_finished(0, keys, stream.plain_bytes);
    Ok(Taken {
        method: RedisMethod::Scan,
        stream,
        rdb: None,
        transfer: None,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_lines_parse() {
        let info = vec![
            ("db0".to_string(), "keys=3,expires=1,avg_ttl=0".to_string()),
            (
                "db12".to_string(),
                "keys=40,expires=0,avg_ttl=0".to_string(),
            ),
            ("dbx".to_string(), "keys=1".to_string()),
        ];
        let k = parse_keyspace(&info, "keys");
        assert_eq!(k, BTreeMap::from([(0, 3), (12, 40)]));
        assert_eq!(
            parse_keyspace(&info, "expires"),
            BTreeMap::from([(0, 1), (12, 0)])
        );
    }
}
