//! Memory: what the budget bounds. A row many frames long is framed one
//! frame at a time, so the frame buffers a backup allocates do not follow
//! row size (read from the backup's own debug event, which counts the
//! buffers its pools ever allocated); a slow store slows the backup instead
//! of growing its memory (peak RSS of the process, sampled).

use crate::cli::pgkeep_env;
use crate::pgkeep::*;
use crate::support::cluster;
use crate::support::s3::{s3_repo, MotoServer};
use pgkeep::archive::index::{list_backup_ids, read_manifest};
use std::process::Command;
use std::time::{Duration, Instant};

/// The `plain_buffers` and `frame_size` of the backup's "frame buffers
/// allocated" event in JSON logs.
fn buffers_allocated(stderr: &str) -> (u64, u64) {
    let event = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "frame buffers allocated")
        .unwrap_or_else(|| panic!("no buffer event in the log:\n{stderr}"));
    let field = |k: &str| {
        event["fields"][k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {event}"))
    };
    (field("plain_buffers"), field("frame_size"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_of_many_frames_is_framed_within_the_budget() {
    let c = cluster();
    // One 40 MB value: dozens of frames at a 16 MiB budget.
    let db = db_with(
        "mem_bigrow",
        "CREATE TABLE big (id int, v text); INSERT INTO big SELECT 1, repeat(md5('x'), 1250000);",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let out = pgkeep_env(
        &[
            "--log-format",
            "json",
            "backup",
            "--db",
            &c.url(&db),
            "--repo",
            repo.to_str().unwrap(),
            "--jobs",
            "1",
            "--memory",
            "16MiB",
        ],
        &[("PGKEEP_LOG", "pgkeep=debug")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "backup failed: {stderr}");
    let (plain, frame_size) = buffers_allocated(&stderr);
    let frames_in_row = 40_000_000 / frame_size;
    assert!(frames_in_row >= 20, "the row spans {frames_in_row} frames");
    // One frame filling, `encode_ahead` (2) encoding, one waiting for an
    // encoder: never one per frame of the row.
    assert!(
        plain <= 4,
        "{plain} plaintext frame buffers for a row of {frames_in_row} frames"
    );
}

/// Runs a command, sampling its `VmHWM` (peak resident set of its own
/// address space) every 10 ms until it exits. `wait4`'s `ru_maxrss` would
/// not do: Linux carries the forking test process's peak into the child's.
pub(crate) fn run_measured(cmd: &mut Command) -> (std::process::ExitStatus, String, u64, Duration) {
    let t0 = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pgkeep starts");
    let status_file = format!("/proc/{}/status", child.id());
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut peak = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib * 1024);
            }
        }
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let err = reader.join().unwrap_or_default();
    (status, err, peak, t0.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_store_keeps_the_backup_within_its_memory_budget() {
    let moto = MotoServer::start();
    moto.create_bucket("slow");
    let c = cluster();
    let db = c.create_db("s3_slow").await;
    // ~100 MB of COPY text: several times the budget.
    c.client(&db)
        .await
        .batch_execute("CREATE TABLE big AS SELECT g AS id, md5(g::text) || repeat('y', 300) AS pad FROM generate_series(1, 300000) g;")
        .await
        .unwrap();
    let budget_mib = 32u64;
    let rate = 8u64 << 20;
    let ep = moto.endpoint();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgkeep"));
    cmd.args([
        "backup",
        "--db",
        &c.url(&db),
        "--repo",
        "s3://slow/r",
        "--memory",
        &format!("{budget_mib}MiB"),
        "--jobs",
        "2",
        "--compress",
        "none",
        "--max-bandwidth",
        "8MiB/s",
    ]);
    for o in [
        format!("endpoint={ep}"),
        "allow_http=true".into(),
        "region=us-east-1".into(),
        "access_key_id=testing".into(),
        "secret_access_key=testing".into(),
    ] {
        cmd.args(["--repo-option", &o]);
    }
    let (status, stderr, peak, elapsed) = run_measured(cmd.env_remove("DATABASE_URL"));
    assert!(status.success(), "{stderr}");
    let repo = s3_repo(&ep, "slow", "r");
    let id = list_backup_ids(&repo)
        .await
        .unwrap()
        .pop()
        .expect("a backup");
    let m = read_manifest(&repo, &id, &pgkeep::keys::Unlock::default())
        .await
        .unwrap();
    let stored = m.header.stored_bytes;
    assert!(
        stored > 3 * (budget_mib << 20),
        "data exceeds the budget: {stored}"
    );
    // The store was the bottleneck: the upload took at least stored/rate
    // (less the last part, sent on credit).
    let floor = Duration::from_secs_f64((stored - (10 << 20)) as f64 / rate as f64);
    assert!(elapsed >= floor, "{elapsed:?} < {floor:?}: not throttled");
    assert_peak_within("slow store", stored, peak, elapsed, budget_mib);
}

/// Peak RSS: the budget plus the process's fixed cost (runtime, TLS,
/// HTTP client, allocator slack), far below the data size.
pub(crate) fn assert_peak_within(
    what: &str,
    data: u64,
    peak: u64,
    elapsed: Duration,
    budget_mib: u64,
) {
    let limit = (budget_mib + 16) << 20;
    eprintln!(
        "{what}: {} MiB in {elapsed:?}, peak RSS {} MiB (limit {} MiB)",
        data >> 20,
        peak >> 20,
        limit >> 20
    );
    assert!(
        peak <= limit,
        "peak RSS {} MiB > {} MiB",
        peak >> 20,
        limit >> 20
    );
}
