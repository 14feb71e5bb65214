//! Memory: what the budget bounds. A row many frames long is framed one
//! frame at a time, so the frame buffers a backup allocates do not follow
//! row size (read from the backup's own debug event, which counts the
//! buffers its pools ever allocated).

use crate::cli::pgkeep_env;
use crate::pgkeep::db_with;
use crate::support::cluster;

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
