//! `verify`: proves a backup readable without a database. The full check
//! reads every pack object once, front to back, within the memory budget:
//! it hashes every byte (the object's size and SHA-256 against the
//! manifest) and checks every frame as it passes with the same code restore
//! uses (stored-bytes hash, AEAD tag, decompression, rows and lengths
//! against the manifest); then each stream's frame count, last flag, row
//! total and, in format 1 backups, plaintext digest. The quick check opens the manifest and
//! compares every pack's presence and size. Each run's outcome is recorded
//! beside the manifest so `list` shows when a backup was last verified.

mod pack;

use crate::archive::index::read_manifest;
use crate::archive::stream::{missing_pack, FrameSummary, StreamCheck};
use crate::archive::{layout, Manifest, StreamInfo};
use crate::error::{Error, Result};
use crate::keys::Unlock;
use crate::pipeline::{Budget, FrameBuffers};
use crate::store::Repo;
use futures::StreamExt;
use pack::check_pack;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct VerifyOptions {
    pub jobs: usize,
    pub memory: usize,
    /// Presence and sizes only; no data is downloaded.
    pub quick: bool,
    pub unlock: Arc<Unlock>,
}

impl VerifyOptions {
    pub fn new(unlock: Arc<Unlock>) -> VerifyOptions {
        VerifyOptions {
            jobs: 2,
            memory: 64 << 20,
            quick: false,
            unlock,
        }
    }
}

/// One thing that did not check out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyFailure {
    /// The stream (table or slice) it belongs to, when it is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The full error: names the object and the frame.
    pub error: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyReport {
    pub id: String,
    pub ok: bool,
    /// "full" or "quick".
    pub mode: String,
    /// RFC 3339 UTC, when the run finished.
    pub verified_at: String,
    pub duration_ms: u64,
    pub encrypted: bool,
    pub streams: u64,
    pub frames: u64,
    pub rows: u64,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    pub failures: Vec<VerifyFailure>,
}

/// Verifies one backup. Damage is reported in the report (not as an
/// error); an error means the check itself could not run (no key, no
/// repository) or the run was interrupted.
pub async fn verify_backup(
    repo: &Repo,
    id: &str,
    opts: &VerifyOptions,
    cancel: CancellationToken,
) -> Result<VerifyReport> {
    let t0 = Instant::now();
    let mut report = VerifyReport {
        id: id.to_string(),
        ok: false,
        mode: if opts.quick { "quick" } else { "full" }.into(),
        verified_at: String::new(),
        duration_ms: 0,
        encrypted: false,
        streams: 0,
        frames: 0,
        rows: 0,
        plain_bytes: 0,
        stored_bytes: 0,
        failures: Vec::new(),
    };
    match read_manifest(repo, id, opts.unlock.as_ref()).await {
        Ok(m) => {
            let m = Arc::new(m);
            report.encrypted = m.key.is_some();
            report.streams = m.body.streams.len() as u64;
            report.stored_bytes = m.header.stored_bytes;
            if opts.quick {
                check_presence(repo, &m, &mut report).await?;
            } else {
                check_data(repo, m, opts, &mut report, cancel).await?;
            }
        }
        Err(e) if !is_damage(&e) => return Err(e),
        Err(e) => report.failures.push(VerifyFailure {
            stream: None,
            table: None,
            error: e.to_string(),
        }),
    }
    report.ok = report.failures.is_empty();
    report.duration_ms = t0.elapsed().as_millis() as u64;
    report.verified_at = crate::units::rfc3339(time::OffsetDateTime::now_utc())?;
    record(repo, &report).await;
    Ok(report)
}

async fn check_presence(repo: &Repo, m: &Manifest, report: &mut VerifyReport) -> Result<()> {
    let listed = repo.list_all(&layout::backup_prefix(&m.header.id)).await?;
    for p in &m.body.packs {
        let path = layout::pack_path(&m.header.id, &p.name);
        let error = match listed.iter().find(|(l, _)| *l == path) {
            None => Some(format!("{path}: missing")),
            Some((_, size)) if *size != p.size => Some(format!(
                "{path}: {size} bytes stored, manifest says {}",
                p.size
            )),
            Some(_) => None,
        };
        if let Some(error) = error {
            report.failures.push(VerifyFailure {
                stream: None,
                table: None,
                error,
            });
        }
    }
    report.frames = m.body.streams.iter().map(|s| s.frames.len() as u64).sum();
    report.rows = m.body.streams.iter().map(|s| s.rows).sum();
    report.plain_bytes = m.body.streams.iter().map(|s| s.plain_bytes).sum();
    Ok(())
}

/// The full check: every pack read once, front to back ([`check_pack`]:
/// each frame checked as restore checks it, the whole object's size and
/// SHA-256 against the manifest), `jobs` packs at a time. Packs are read in
/// parallel and a stream's frames may lie in several of them, so each
/// frame's summary is kept (by stream and frame index) and the streams'
/// end checks (frame count, last flag, rows, format 1's digest) run at the
/// end, in stream order.
async fn check_data(
    repo: &Repo,
    m: Arc<Manifest>,
    opts: &VerifyOptions,
    report: &mut VerifyReport,
    cancel: CancellationToken,
) -> Result<()> {
    let budget = Budget::new(opts.memory, opts.jobs, None)?;
    let (read_ahead, max_read) = budget.read_plan(m.max_frame_plain(), m.key.is_some());
    let bufs = FrameBuffers::for_reads(
        m.max_frame_plain(),
        usize::try_from(max_read).unwrap_or(usize::MAX),
        budget.total,
    );
    let streams = &m.body.streams;
    let mut frames: Vec<Vec<Option<FrameSummary>>> =
        streams.iter().map(|s| vec![None; s.frames.len()]).collect();
    // The first failing frame of each stream (lowest index), as restore
    // would meet it.
    let mut first_failure: Vec<Option<(u32, Error)>> = streams.iter().map(|_| None).collect();
    let runs = futures::stream::iter(0..m.body.packs.len())
        .map(|p| {
            let (repo, m, bufs) = (repo.clone(), m.clone(), bufs.clone());
            check_pack(repo, m, p, read_ahead, max_read, bufs)
        })
        .buffer_unordered(opts.jobs.max(1));
    futures::pin_mut!(runs);
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return Err(Error::Interrupted("verify cancelled".into())),
            n = runs.next() => n,
        };
        let Some(pack) = next else {
            break;
        };
        for (si, fi, summary) in pack.passed {
            if let Some(slot) = frames.get_mut(si).and_then(|f| f.get_mut(fi as usize)) {
                *slot = Some(summary);
            }
        }
        for (si, fi, e) in pack.failed {
            if !is_damage(&e) {
                return Err(e);
            }
            if let Some(first) = first_failure.get_mut(si) {
                if first.as_ref().is_none_or(|(f, _)| fi < *f) {
                    *first = Some((fi, e));
                }
            }
        }
        match pack.object {
            None => {}
            Some(e) if !is_damage(&e) => return Err(e),
            Some(e) => report.failures.push(VerifyFailure {
                stream: None,
                table: None,
                error: e.to_string(),
            }),
        }
    }
    for (i, s) in streams.iter().enumerate() {
        let checked = frames.get(i).map(Vec::as_slice).unwrap_or_default();
        report.frames += checked.iter().flatten().count() as u64;
        report.plain_bytes += checked
            .iter()
            .flatten()
            .map(|f| u64::from(f.plain_len))
            .sum::<u64>();
        let outcome = match first_failure.get_mut(i).and_then(Option::take) {
            Some((_, e)) => Err(e),
            None => fold_stream(&m, s, checked),
        };
        match outcome {
            Ok(()) => report.rows += s.rows,
            Err(e) => report.failures.push(VerifyFailure {
                stream: Some(s.id),
                table: Some(label(&m, s)),
                error: e.to_string(),
            }),
        }
    }
    report.failures.sort_by_key(|f| f.stream);
    Ok(())
}

/// A stream's end checks over its frames' summaries, in stream order. A
/// frame that was never read (its pack is missing from the manifest, or
/// could not be read to that point) fails the stream.
fn fold_stream(m: &Manifest, s: &StreamInfo, checked: &[Option<FrameSummary>]) -> Result<()> {
    if s.frames.is_empty() {
        return Err(StreamCheck::no_frames(s.id));
    }
    let mut check = StreamCheck::new(s);
    for (i, (f, summary)) in s.frames.iter().zip(checked).enumerate() {
        let Some(summary) = summary else {
            let Some(pack) = m.body.packs.get(f.pack as usize) else {
                return Err(missing_pack(&m.header.id, f.pack));
            };
            return Err(Error::integrity(
                layout::pack_path(&m.header.id, &pack.name).to_string(),
                format!(
                    "frame {i} of stream {} (bytes {}..{}): not checked, the object could not be read that far",
                    s.id,
                    f.offset,
                    f.offset + u64::from(f.len)
                ),
            ));
        };
        check.push(summary)?;
    }
    Ok(())
}

/// The table (or slice) a stream loads, for reports.
fn label(m: &Manifest, s: &StreamInfo) -> String {
    m.body
        .toc
        .iter()
        .find(|e| e.id == s.toc_id)
        .and_then(|e| e.data.as_ref())
        .map(|d| format!("{}.{}", d.schema, d.name))
        .unwrap_or_else(|| format!("toc entry {}", s.toc_id))
}

/// Whether an error is damage to the backup (reported) rather than a reason
/// the check could not run (returned): a missing object is damage, an
/// unreachable store is not.
fn is_damage(e: &Error) -> bool {
    match e {
        Error::Store { source, .. } => matches!(source, object_store::Error::NotFound { .. }),
        Error::Integrity { .. }
        | Error::Format { .. }
        | Error::UnsupportedVersion { .. }
        | Error::Verification(_) => true,
        _ => false,
    }
}

/// Writes the outcome beside the manifest; a failure to record is logged,
/// not fatal (the check itself succeeded or failed on its own).
async fn record(repo: &Repo, report: &VerifyReport) {
    let summary = LastVerified {
        verified_at: report.verified_at.clone(),
        ok: report.ok,
        mode: report.mode.clone(),
        failures: report.failures.len() as u64,
    };
    let path = layout::verified_path(&report.id);
    let r = match serde_json::to_vec_pretty(&summary) {
        Ok(bytes) => repo.put(&path, bytes).await,
        Err(e) => Err(Error::Internal(e.to_string())),
    };
    if let Err(e) = r {
        tracing::warn!(backup = %report.id, error = %e, "could not record the verification result");
    }
}

/// What `list` shows of the latest verification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastVerified {
    pub verified_at: String,
    pub ok: bool,
    pub mode: String,
    pub failures: u64,
}

/// The latest recorded verification of a backup, if any (unreadable records
/// count as none).
pub async fn last_verified(repo: &Repo, id: &str) -> Result<Option<LastVerified>> {
    let path = layout::verified_path(id);
    Ok(repo
        .get_opt(&path)
        .await?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest::tests::sample;
    use crate::archive::{FrameRef, PackInfo, Sha256Hex};
    use crate::pipeline::{encode_frame, PlainFrame};
    use bytes::Bytes;
    use object_store::memory::InMemory;
    use sha2::{Digest, Sha256};

    /// A backup in memory of archive `format` whose one pack holds a
    /// stream of three frames, with `GAP!` between the first two when
    /// `gap` (which pgkeep never writes, but a pack may hold): (repository,
    /// manifest, pack bytes, where the gap is).
    async fn backup_in_memory(format: u32, gap: bool) -> (Repo, Manifest, Vec<u8>, usize) {
        let mut m = sample();
        let id = m.header.id.clone();
        let mut pack = Vec::new();
        let mut frames = Vec::new();
        let mut gap_at = 0;
        for i in 0..3u32 {
            let plain = PlainFrame {
                data: Bytes::from(format!("{i}\trow {i}\n").repeat(50)),
                rows: 50,
                row_boundary: true,
                last: i == 2,
            };
            let f = encode_frame(&plain, 0, i, 1, None, &FrameBuffers::unpooled()).unwrap();
            let bytes = if format < 3 {
                crate::pipeline::codec::tests::as_frame_version_1(&f.bytes)
            } else {
                f.bytes.to_vec()
            };
            let mut sha = [0u8; 32];
            sha.copy_from_slice(&bytes[40..72]);
            frames.push(FrameRef {
                pack: 0,
                offset: pack.len() as u64,
                len: bytes.len() as u32,
                rows: 50,
                plain_len: f.header.plain_len,
                sha256: Sha256Hex(sha),
            });
            pack.extend_from_slice(&bytes);
            if i == 0 && gap {
                gap_at = pack.len();
                pack.extend_from_slice(b"GAP!");
            }
        }
        m.body.packs = vec![PackInfo {
            name: "pack-00000".into(),
            size: pack.len() as u64,
            sha256: (format < 3).then(|| hex::encode(Sha256::digest(&pack))),
        }];
        let s = &mut m.body.streams[0];
        s.rows = 150;
        s.frames = frames;
        let repo = Repo::from_store(Arc::new(InMemory::new()), "memory");
        let bytes = crate::archive::manifest::tests::encode_as(&mut m, format);
        repo.put(&layout::manifest_path(&id), bytes).await.unwrap();
        (repo, m, pack, gap_at)
    }

    async fn verify_with_pack(repo: &Repo, m: &Manifest, pack: &[u8]) -> VerifyReport {
        let path = layout::pack_path(&m.header.id, "pack-00000");
        repo.put(&path, pack.to_vec()).await.unwrap();
        let mut opts = VerifyOptions::new(Arc::new(Unlock::default()));
        opts.memory = 16 << 20;
        opts.jobs = 1;
        verify_backup(repo, &m.header.id, &opts, CancellationToken::new())
            .await
            .unwrap()
    }

    /// A backup of format 1 (each stream with the digest of its frames'
    /// plaintext) verifies, and a digest that does not match is caught.
    #[tokio::test]
    async fn format_1_stream_digests_are_checked() {
        let (repo, mut m, pack, _) = backup_in_memory(1, true).await;
        let mut digest = crate::pipeline::StreamDigest::new();
        for i in 0..3u32 {
            digest.update(&Sha256::digest(format!("{i}\trow {i}\n").repeat(50)).into());
        }
        let good = hex::encode(digest.finish());
        for (sha, ok) in [(good, true), ("00".repeat(32), false)] {
            m.body.streams[0].plain_sha256 = Some(sha);
            let bytes = crate::archive::manifest::tests::encode_as(&mut m, 1);
            repo.put(&layout::manifest_path(&m.header.id), bytes)
                .await
                .unwrap();
            let r = verify_with_pack(&repo, &m, &pack).await;
            assert_eq!(r.ok, ok, "{r:?}");
            if !ok {
                assert_eq!(r.failures.len(), 1, "{r:?}");
                assert!(r.failures[0].error.contains("plaintext digest mismatch"));
            }
        }
    }

    #[tokio::test]
    async fn format_2_bytes_no_frame_claims_are_covered_by_the_pack_hash() {
        let (repo, m, pack, gap) = backup_in_memory(2, true).await;
        let r = verify_with_pack(&repo, &m, &pack).await;
        assert!(r.ok, "{r:?}");
        assert_eq!((r.frames, r.rows), (3, 150));
        // A byte between frames: every frame checks out, the pack does not.
        let mut damaged = pack.clone();
        damaged[gap + 1] ^= 1;
        let r = verify_with_pack(&repo, &m, &damaged).await;
        assert_eq!(r.failures.len(), 1, "{r:?}");
        assert!(r.failures[0].stream.is_none());
        assert!(r.failures[0].error.contains("SHA-256 of the stored object"));
        assert_eq!((r.frames, r.rows), (3, 150));
        // The row-boundary flag of a frame: no frame check of an
        // unencrypted backup covers it.
        let mut damaged = pack.clone();
        damaged[m.body.streams[0].frames[1].offset as usize + 5] ^= 1;
        let r = verify_with_pack(&repo, &m, &damaged).await;
        assert_eq!(r.failures.len(), 1, "{r:?}");
        assert!(r.failures[0].error.contains("SHA-256 of the stored object"));
        // A payload byte: the frame (with its table) and the pack.
        let mut damaged = pack.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        let r = verify_with_pack(&repo, &m, &damaged).await;
        let errors: Vec<_> = r.failures.iter().map(|f| (f.stream, &f.error)).collect();
        assert_eq!(r.failures.len(), 2, "{errors:?}");
        assert!(
            r.failures[1].stream == Some(0) && r.failures[1].error.contains("frame 2 of stream 0")
        );
        assert_eq!((r.frames, r.rows), (2, 0));
    }

    /// Format 3 has no pack hash: its frames must tile the pack, and each
    /// frame's hash covers its header (flags included) and payload, so
    /// every byte of the pack is still checked.
    #[tokio::test]
    async fn format_3_checks_every_byte_without_a_pack_hash() {
        let (repo, m, pack, _) = backup_in_memory(3, false).await;
        let r = verify_with_pack(&repo, &m, &pack).await;
        assert!(r.ok, "{r:?}");
        assert_eq!((r.frames, r.rows), (3, 150));
        // Bytes no frame claims are refused outright.
        let (gapped_repo, gapped, pack_with_gap, _) = backup_in_memory(3, true).await;
        let r = verify_with_pack(&gapped_repo, &gapped, &pack_with_gap).await;
        assert!(!r.ok, "{r:?}");
        assert!(
            r.failures
                .iter()
                .any(|f| f.error.contains("no frame claims")),
            "{r:?}"
        );
        // Any byte of any frame, header or payload: that frame fails.
        let f1 = m.body.streams[0].frames[1].clone();
        for at in [5usize, 16, 30, 45, 80, f1.len as usize - 1] {
            let mut damaged = pack.clone();
            damaged[f1.offset as usize + at] ^= 1;
            let r = verify_with_pack(&repo, &m, &damaged).await;
            assert_eq!(r.failures.len(), 1, "flip at {at}: {r:?}");
            assert_eq!(r.failures[0].stream, Some(0), "flip at {at}: {r:?}");
            assert!(r.failures[0].error.contains("frame 1 of stream 0"), "{r:?}");
        }
        // Bytes appended: the size.
        let mut longer = pack.clone();
        longer.extend_from_slice(b"more");
        let r = verify_with_pack(&repo, &m, &longer).await;
        assert!(
            r.failures
                .iter()
                .any(|f| f.error.contains("bytes appended")),
            "{r:?}"
        );
    }
}
