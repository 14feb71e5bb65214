//! `pgkeep redis drill`: the backup restored into a scratch `redis-server`
//! (from `PATH`, or the job's `drill_server`) on a free loopback port with
//! a directory of its own, the keys of every database checked against the
//! manifest, the time to a loaded server taken as the RTO, the proof
//! stored like a PostgreSQL drill's (`drill::conclude`), and the server
//! stopped and its directory removed whatever happened.

use super::conn::RedisConn;
use super::restore::{redis_facts, restore_keys, restore_rdb};
use super::target::RedisTarget;
use crate::archive::{Manifest, RedisMethod};
use crate::drill::checks::CheckResult;
use crate::drill::{begin, conclude, recorded, Begun, DrillResult, Ending, Findings, Log};
use crate::error::{Error, Result};
use crate::keys::Unlock;
use crate::progress::Progress;
use crate::store::Repo;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a scratch server may take to start and load its file.
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// What a Redis drill needs.
#[derive(Clone, Debug)]
pub struct RedisDrillOptions {
    pub job: Option<String>,
    /// A backup id, `latest` or `latest-verified`.
    pub backup: String,
    /// The `redis-server` binary.
    pub server: PathBuf,
    pub rto: Option<Duration>,
    pub rpo: Option<Duration>,
    pub memory: usize,
    pub unlock: Arc<Unlock>,
}

impl RedisDrillOptions {
    /// A `[[redis]]` job's drill of `backup` (an id, `latest` or
    /// `latest-verified`): its server binary, objectives and memory.
    pub fn for_job(job: &crate::ops::job::Job, backup: &str) -> RedisDrillOptions {
        RedisDrillOptions {
            job: Some(job.name.clone()),
            backup: backup.to_string(),
            server: job
                .drill_server
                .clone()
                .unwrap_or_else(|| PathBuf::from("redis-server")),
            rto: job.rto,
            rpo: job.rpo,
            memory: job
                .memory
                .unwrap_or(crate::pipeline::budget::DEFAULT_MEMORY),
            unlock: Default::default(),
        }
    }
}

/// A scratch `redis-server`: killed and its directory removed on drop.
struct ScratchServer {
    child: tokio::process::Child,
    dir: PathBuf,
    target: RedisTarget,
}

impl ScratchServer {
    async fn stop(mut self) -> bool {
        let _ = self.child.kill().await;
        tokio::fs::remove_dir_all(&self.dir).await.is_ok()
    }
}

/// Runs a drill of a Redis backup, records it and stores its proof.
pub async fn redis_drill(
    repo: &Repo,
    opts: &RedisDrillOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<DrillResult> {
    let work = run(repo, opts, progress, cancel);
    recorded(repo, opts.job.clone(), "redis", work).await
}

async fn run(
    repo: &Repo,
    opts: &RedisDrillOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<DrillResult> {
    let Begun {
        started,
        t0,
        drill_id,
        mut log,
        hold,
        manifest,
        manifest_sha,
    } = begin(repo, opts.job.as_deref(), &opts.backup, &opts.unlock).await?;
    let dir = std::env::temp_dir().join(format!("pgkeep-drill-{drill_id}"));
    let mut found = Findings::default();
    let mut server = None;
    let stopped = tokio::select! {
        r = steps(repo, opts, &manifest, &dir, &mut server, &mut found, &mut log, progress) => r.err(),
        _ = cancel.cancelled() => Some(Error::Interrupted("the drill was cancelled".into())),
    };
    found.timings.rto_ms = t0.elapsed().as_millis() as u64;
    let (target, dropped) = match server {
        Some(s) => {
            let target = s.target.to_string();
            let gone = s.stop().await;
            log.line(if gone {
                format!(
                    "stopped the scratch redis-server and removed {}",
                    dir.display()
                )
            } else {
                format!(
                    "stopped the scratch redis-server; could NOT remove {}",
                    dir.display()
                )
            });
            (target, gone)
        }
        None => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            ("redis-server (not started)".to_string(), true)
        }
    };
    hold.release().await;
    let ending = Ending {
        drill_id,
        job: opts.job.clone(),
        started,
        header: &manifest.header,
        manifest_sha,
        target,
        scratch_name: dir.display().to_string(),
        dropped,
        stopped: stopped.as_ref(),
        rto: opts.rto,
        rpo: opts.rpo,
    };
    let (proof, failed) = conclude(repo, ending, found, &mut log).await?;
    Ok(DrillResult {
        proof,
        log: log.text,
        kept: None,
        stopped,
        failed,
    })
}

/// Restore, load, checks. Fills `found` (and `server` once started) as it
/// goes, so a stop keeps what was learned and the server is still stopped.
#[allow(clippy::too_many_arguments)]
async fn steps(
    repo: &Repo,
    opts: &RedisDrillOptions,
    manifest: &Arc<Manifest>,
    dir: &std::path::Path,
    server: &mut Option<ScratchServer>,
    found: &mut Findings,
    log: &mut Log,
    progress: Arc<dyn Progress>,
) -> Result<()> {
    let t0 = log.t0;
    let facts = redis_facts(manifest)?.clone();
    tokio::fs::create_dir(dir)
        .await
        .map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    let rdb = dir.join("dump.rdb");
    if facts.method == RedisMethod::Replication {
        match restore_rdb(
            repo,
            manifest.clone(),
            &rdb,
            false,
            opts.memory,
            progress.clone(),
        )
        .await
        {
            Ok(r) => log.line(format!(
                "wrote the RDB file ({} bytes, CRC64 {} as recorded); every frame checked",
                r.bytes, r.crc64
            )),
            Err(e) if e.exit_code() == 3 => {
                let msg = crate::redact::redact(&e.to_string());
                log.line(format!("the backup failed its integrity checks: {msg}"));
                found.checks.push(
                    CheckResult::new("restore integrity", "integrity", Instant::now())
                        .fail("failed".into(), msg),
                );
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
    found.timings.fetch_and_verify_ms = t0.elapsed().as_millis() as u64;
    let t_load = Instant::now();
    let debug = facts.digest.is_some();
    let s = server.insert(start_server(&opts.server, dir, debug).await?);
    found.created = true;
    let target = s.target.clone();
    let mut conn = wait_loaded(s).await?;
    let mut expired = 0;
    if facts.method == RedisMethod::Scan {
        let r = restore_keys(
            repo,
            manifest.clone(),
            &target,
            false,
            opts.memory,
            progress,
        )
        .await?;
        expired = r.expired;
        log.line(format!(
            "loaded {} keys with RESTORE ({} expired since the backup)",
            r.keys, r.expired
        ));
    }
    found.timings.data_ms = t_load.elapsed().as_millis() as u64;
    log.line(format!(
        "redis-server on {target} loaded the backup in {:.1}s",
        found.timings.data_ms as f64 / 1000.0
    ));
    let t_checks = Instant::now();
    let info = conn.info("keyspace").await?;
    let restored = super::backup::parse_keyspace(&info, "keys");
    let c = keys_check(
        &facts.keyspace,
        &facts.expires,
        &restored,
        facts.method,
        expired,
    );
    log.line(format!(
        "check {}: {} ({})",
        c.name,
        c.value,
        if c.passed() { "passed" } else { "FAILED" }
    ));
    let counts_equal = c.passed() && restored == facts.keyspace;
    found.checks.push(c);
    if let Some(want) = &facts.digest {
        let t = Instant::now();
        let got = super::backup::digest(&mut conn).await?;
        let mut c = CheckResult::new("DEBUG DIGEST", "digest", t);
        c.value = got.clone().unwrap_or_else(|| "refused".into());
        c.expected = Some(want.clone());
        if !counts_equal {
            c.details = vec!["not compared: keys with an expiry are gone since the backup".into()];
        } else if got.as_deref() != Some(want.as_str()) {
            c.outcome = crate::drill::checks::CheckOutcome::Failed;
            c.details = vec![format!(
                "the copy's digest {} differs from the source's {want}",
                c.value
            )];
        }
        log.line(format!(
            "check DEBUG DIGEST: {} ({})",
            c.value,
            if c.passed() { "passed" } else { "FAILED" }
        ));
        found.checks.push(c);
    }
    found.timings.checks_ms = t_checks.elapsed().as_millis() as u64;
    Ok(())
}

/// Keys per database in the copy against the manifest. A snapshot's keys
/// with an expiry may have expired since (the server drops them at load),
/// so fewer is allowed down to the keys without one; a scan backup's
/// counts are the server's at the start of a scan that is not a point in
/// time, so only keys it never wrote may be missing.
fn keys_check(
    recorded: &BTreeMap<u32, u64>,
    expires: &BTreeMap<u32, u64>,
    restored: &BTreeMap<u32, u64>,
    method: RedisMethod,
    expired: u64,
) -> CheckResult {
    let t0 = Instant::now();
    let mut details = Vec::new();
    let dbs: std::collections::BTreeSet<u32> =
        recorded.keys().chain(restored.keys()).copied().collect();
    for db in dbs {
        let want = recorded.get(&db).copied().unwrap_or(0);
        let got = restored.get(&db).copied().unwrap_or(0);
        let may_go = match method {
            RedisMethod::Replication => expires.get(&db).copied().unwrap_or(0),
            RedisMethod::Scan => expires.get(&db).copied().unwrap_or(0) + expired,
        };
        if got > want || got + may_go < want {
            details.push(format!(
                "db{db}: {got} keys in the copy, the backup recorded {want} ({may_go} of them with an expiry)"
            ));
        }
    }
    let total: u64 = restored.values().sum();
    let mut c = CheckResult::new("keys per database", "row_counts", t0);
    c.value = format!("{} databases, {total} keys", restored.len());
    c.expected = Some(format!("{} keys", recorded.values().sum::<u64>()));
    if !details.is_empty() {
        c.outcome = crate::drill::checks::CheckOutcome::Failed;
        c.details = details;
    }
    c
}

/// `DEBUG` for local clients, when wanted: Redis 7 turned it off by
/// default and added the option; older servers have it on and would
/// refuse the option.
async fn debug_option(bin: &std::path::Path, wanted: bool) -> Vec<&'static str> {
    if !wanted {
        return vec![];
    }
    let version = tokio::process::Command::new(bin)
        .arg("--version")
        .output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let major = version
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= 7 => vec!["--enable-debug-command", "local"],
        _ => vec![],
    }
}

/// Starts `redis-server` on a free loopback port in `dir` (its file, if
/// any, is `dump.rdb` there), without persistence of its own; `debug`
/// lets local clients use `DEBUG DIGEST`.
async fn start_server(
    bin: &std::path::Path,
    dir: &std::path::Path,
    debug: bool,
) -> Result<ScratchServer> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| Error::Io {
            path: "127.0.0.1:0".into(),
            source,
        })?;
    let child = tokio::process::Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no"])
        .args(debug_option(bin, debug).await)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::Config(format!(
                "cannot start {}: {e} (install redis-server, or set drill_server in the [[redis]] job)",
                bin.display()
            ))
        })?;
    Ok(ScratchServer {
        child,
        dir: dir.to_path_buf(),
        target: RedisTarget::parse(&format!("redis://127.0.0.1:{port}"))?,
    })
}

/// Connects once the server listens and has loaded its file (a loading
/// server answers `PING` with `-LOADING`, which fails the connect),
/// polling every 20 ms for at most [`LOAD_TIMEOUT`]; a server that exits
/// (a file it cannot load) ends the wait with the end of its log.
async fn wait_loaded(server: &mut ScratchServer) -> Result<RedisConn> {
    let deadline = Instant::now() + LOAD_TIMEOUT;
    loop {
        if let Ok(c) = RedisConn::connect(&server.target).await {
            return Ok(c);
        }
        let exited = server.child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let log = std::fs::read_to_string(server.dir.join("redis.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(4).collect();
            let what = match exited {
                Some(st) => format!("exited ({st})"),
                None => format!("not up and loaded within {LOAD_TIMEOUT:?}"),
            };
            return Err(Error::Redis {
                context: format!("the scratch redis-server on {}", server.target),
                message: format!("{what}; its log ends: {}", tail.join(" | ")),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_counts_allow_expired_keys_only() {
        let recorded = BTreeMap::from([(0, 10), (3, 5)]);
        let expires = BTreeMap::from([(0, 2)]);
        let ok = BTreeMap::from([(0, 8), (3, 5)]);
        let rep = RedisMethod::Replication;
        assert!(keys_check(&recorded, &expires, &ok, rep, 0).passed());
        let short = BTreeMap::from([(0, 7), (3, 5)]);
        let c = keys_check(&recorded, &expires, &short, rep, 0);
        assert!(
            !c.passed() && c.details[0].starts_with("db0: 7 keys"),
            "{c:?}"
        );
        let extra = BTreeMap::from([(0, 10), (3, 5), (4, 1)]);
        assert!(!keys_check(&recorded, &expires, &extra, rep, 0).passed());
        assert!(keys_check(&recorded, &expires, &short, RedisMethod::Scan, 1).passed());
    }
}
