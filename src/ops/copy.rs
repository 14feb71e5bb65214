//! Offsite copies: complete backups copied from one repository to another
//! with their bytes unchanged (an encrypted backup stays encrypted; the
//! target gets the key records it needs to be opened with the same keys).
//! Packs first, streamed in parts within a memory bound and checked on the
//! way, then the manifest last and create-only, under a lease on the
//! target prefix: an interrupted copy is an incomplete backup there, never
//! a complete one. A backup the target already has is skipped.
//!
//! Each copied pack is checked against the manifest when the manifest can
//! be read (unencrypted, or a key given): its size, and its SHA-256 (formats
//! 1 and 2) or each frame's hash as its bytes pass (format 3,
//! [`PackScan`]). An encrypted backup copied without a key is checked
//! against the source listing's sizes only, which the report says.

use crate::archive::index::{list_backup_ids, resolve_backup_id};
use crate::archive::layout;
use crate::archive::scan::PackScan;
use crate::archive::{KeySource, Manifest};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::store::lease::{Lease, DEFAULT_TTL};
use crate::store::Repo;
use crate::units::{MIB, MIN_PART_SIZE};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Which backups to copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// One backup, by id or `latest`.
    One(String),
    /// Every complete backup of the source.
    All,
}

#[derive(Clone, Copy, Debug)]
pub struct CopyOptions {
    /// Bytes in flight per pack copy: parts of at least S3's minimum,
    /// one being filled while one uploads.
    pub memory: usize,
}

impl Default for CopyOptions {
    fn default() -> CopyOptions {
        CopyOptions { memory: 32 * MIB }
    }
}

/// One backup copied.
#[derive(Clone, Debug, Serialize)]
pub struct Copied {
    pub id: String,
    pub packs: usize,
    pub bytes: u64,
    /// Pack hashes checked against the manifest (else: against the
    /// listing's sizes only, an encrypted backup copied without its key).
    pub checked_against_manifest: bool,
    /// Key records the target was given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys_added: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CopyReport {
    pub from: String,
    pub to: String,
    pub copied: Vec<Copied>,
    /// Backups the target already had.
    pub skipped: Vec<String>,
}

/// Copies the selected complete backups of `from` to `to`.
pub async fn copy(
    from: &Repo,
    to: &Repo,
    selection: &Selection,
    keys: &dyn KeySource,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport> {
    let ids = match selection {
        Selection::One(id) => vec![resolve_backup_id(from, id).await?],
        Selection::All => list_backup_ids(from).await?,
    };
    let mut report = CopyReport {
        from: from.display().to_string(),
        to: to.display().to_string(),
        copied: Vec::new(),
        skipped: Vec::new(),
    };
    for id in ids {
        if to.exists(&layout::manifest_path(&id)).await? {
            report.skipped.push(id);
            continue;
        }
        report
            .copied
            .push(copy_one(from, to, &id, keys, opts, progress).await?);
    }
    Ok(report)
}

async fn copy_one(
    from: &Repo,
    to: &Repo,
    id: &str,
    keys: &dyn KeySource,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Copied> {
    let manifest_path = layout::manifest_path(id);
    let manifest_bytes = from
        .get_opt(&manifest_path)
        .await?
        .ok_or_else(|| Error::BackupNotFound(id.to_string()))?;
    let object = manifest_path.to_string();
    let header = Manifest::decode_header(&manifest_bytes, &object)?;
    // The manifest's packs (name: position and size), when the body can be
    // opened.
    let manifest = match Manifest::decode(&manifest_bytes, &object, keys) {
        Ok(m) => Some(m),
        Err(Error::Key(_)) if header.cipher.is_some() => None,
        Err(e) => return Err(e),
    };
    let expected: Option<BTreeMap<String, (usize, u64)>> = manifest.as_ref().map(|m| {
        m.body
            .packs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), (i, p.size)))
            .collect()
    });
    let listed: Vec<(String, u64)> = from
        .list_meta(&layout::backup_prefix(id))
        .await?
        .into_iter()
        .filter_map(|m| {
            let mut parts = m.location.parts();
            let (_, _, dir, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            (dir.as_ref() == "data").then(|| (name.as_ref().to_string(), m.size))
        })
        .collect();
    if let Some(exp) = &expected {
        let names: Vec<&String> = listed.iter().map(|(n, _)| n).collect();
        for name in exp.keys() {
            if !names.contains(&name) {
                return Err(Error::integrity(
                    layout::pack_path(id, name).to_string(),
                    "pack listed in the manifest is missing from the source",
                ));
            }
        }
    }
    // A lease on the target prefix: a prune there never takes a copy in
    // progress for a failed backup, and two copies of one id cannot race.
    let lease = Lease::acquire(to, id, DEFAULT_TTL).await?;
    let total: u64 = listed.iter().map(|(_, n)| n).sum();
    progress.begin(total);
    progress.stream_started(0, id, total);
    let result = async {
        let mut bytes = 0u64;
        let mut packs = 0usize;
        for (name, size) in &listed {
            let want = expected.as_ref().and_then(|e| e.get(name)).copied();
            if expected.is_some() && want.is_none() {
                continue; // not part of the backup
            }
            let want_size = want.map_or(*size, |(_, s)| s);
            let check = match (&manifest, want) {
                (Some(m), Some((i, _))) => Some(SourceCheck::new(m, i, name)?),
                _ => None,
            };
            copy_pack(from, to, (id, name), want_size, check, opts, progress).await?;
            bytes += want_size;
            packs += 1;
        }
        let keys_added = copy_key_records(from, to, &header.key_ids).await?;
        // The manifest last, create-only: only now is the copy a backup.
        to.put_new(&manifest_path, manifest_bytes.to_vec()).await?;
        progress.stream_finished(0, 0, bytes);
        Ok::<_, Error>(Copied {
            id: id.to_string(),
            packs,
            bytes,
            checked_against_manifest: expected.is_some(),
            keys_added,
        })
    }
    .await;
    match &result {
        Ok(_) => lease.release().await,
        Err(_) => {
            lease.abandon().await;
            if let Err(e) = to.delete_prefix(&layout::backup_prefix(id)).await {
                tracing::warn!(backup = %id, error = %e, "could not remove the failed copy; `pgkeep prune --incomplete` on the target will");
            }
        }
    }
    result
}

/// How a source pack's bytes are checked against the manifest on the way.
enum SourceCheck {
    /// Formats 1 and 2: the SHA-256 of the whole object (hex).
    Whole(Sha256, String),
    /// Format 3: each frame's hash, and that frames tile the pack.
    Frames(Box<PackScan>),
}

impl SourceCheck {
    fn new(m: &Manifest, pack: usize, name: &str) -> Result<SourceCheck> {
        let info = &m.body.packs[pack];
        let object = layout::pack_path(&m.header.id, name).to_string();
        Ok(match &info.sha256 {
            Some(sha) => SourceCheck::Whole(Sha256::new(), sha.clone()),
            None => SourceCheck::Frames(Box::new(PackScan::new(
                m,
                u32::try_from(pack).map_err(|_| Error::Internal("pack index".into()))?,
                info.size,
                &object,
            )?)),
        })
    }

    fn update(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            SourceCheck::Whole(h, _) => {
                h.update(bytes);
                Ok(())
            }
            SourceCheck::Frames(scan) => scan.update(bytes),
        }
    }

    fn finish(self, object: &str) -> Result<()> {
        match self {
            SourceCheck::Whole(h, want) => {
                if hex::encode(h.finalize()) == want {
                    Ok(())
                } else {
                    Err(Error::integrity(
                        object,
                        "SHA-256 of the source pack differs from the manifest: not copied",
                    ))
                }
            }
            SourceCheck::Frames(scan) => scan.finish(),
        }
    }
}

/// Streams one pack in parts (ranged reads into a multipart upload),
/// checking it on the way (`check`), and checks its size.
async fn copy_pack(
    from: &Repo,
    to: &Repo,
    (id, name): (&str, &str),
    size: u64,
    mut check: Option<SourceCheck>,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<()> {
    let path = layout::pack_path(id, name);
    let object = path.to_string();
    let part = (opts.memory / 3).max(MIN_PART_SIZE) as u64;
    let mut upload = to.multipart(&path, part as usize).await?;
    let mut pos = 0u64;
    let copied = async {
        while pos < size {
            let end = (pos + part).min(size);
            let (buf, _) = from
                .get_range_into(&path, pos..end, Vec::with_capacity((end - pos) as usize))
                .await?;
            if buf.len() as u64 != end - pos {
                return Err(Error::integrity(
                    &object,
                    format!("short read at {pos}..{end}"),
                ));
            }
            if let Some(c) = check.as_mut() {
                c.update(&buf)?;
            }
            upload
                .wait_for_capacity(1)
                .await
                .map_err(to.err(format!("uploading {object}")))?;
            upload.put(bytes::Bytes::from(buf));
            progress.stream_advanced(0, end - pos, 0);
            pos = end;
        }
        Ok(())
    }
    .await;
    if let Err(e) = copied {
        let _ = upload.abort().await;
        return Err(e);
    }
    if let Some(Err(e)) = check.map(|c| c.finish(&object)) {
        let _ = upload.abort().await;
        return Err(e);
    }
    upload
        .finish()
        .await
        .map_err(to.err(format!("completing {object}")))?;
    // What landed: its size (a store that cut it short is caught here).
    let stored = to.head(&path).await?.map(|m| m.size);
    if stored != Some(size) {
        return Err(Error::integrity(
            &object,
            format!("copied {size} bytes, the target holds {stored:?}"),
        ));
    }
    Ok(())
}

/// Gives the target the key records (public halves) and the repository
/// cipher it needs to open the backup with the same keys.
async fn copy_key_records(from: &Repo, to: &Repo, key_ids: &[String]) -> Result<Vec<String>> {
    let mut added = Vec::new();
    if key_ids.is_empty() {
        return Ok(added);
    }
    for id in key_ids {
        let path = layout::key_path(id);
        if to.exists(&path).await? {
            continue;
        }
        let bytes = from.get_opt(&path).await?.ok_or_else(|| {
            Error::Key(format!(
                "key record {id} of the backup is missing from the source repository"
            ))
        })?;
        to.put_new(&path, bytes.to_vec()).await?;
        added.push(id.clone());
    }
    let config = layout::repository_config_path();
    if !to.exists(&config).await? {
        if let Some(bytes) = from.get_opt(&config).await? {
            to.put_new(&config, bytes.to_vec()).await?;
        }
    }
    Ok(added)
}

/// A job's offsite copy of the selected backups to one of its targets,
/// then that target's own retention.
#[derive(Clone, Debug, Serialize)]
pub struct OffsiteReport {
    pub target: String,
    pub copy: CopyReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<super::expire::ExpireReport>,
}

/// Copies the selected backups of a policy job to each of its
/// `[[database.copy]]` targets and prunes each target with its own
/// retention. Every target is tried; the first failure is returned after.
pub async fn offsite(
    job: &super::job::Job,
    source: &Repo,
    selection: &Selection,
    keys: &dyn KeySource,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Vec<OffsiteReport>> {
    let mut out = Vec::new();
    let mut failures = crate::error::Failures::default();
    for target in &job.copies {
        let r = async {
            let to = Repo::open_with(
                &target.url,
                &target.options,
                opts.memory,
                crate::store::OpenMode::CreateIfMissing,
            )?;
            let copy = copy(source, &to, selection, keys, opts, progress).await?;
            let retention = match &target.retention {
                Some(keep) if !keep.is_empty() => Some(
                    super::expire::expire(
                        &to,
                        &super::expire::ExpireOptions {
                            keep: keep.clone(),
                            timezone: job.timezone.clone(),
                            now: None,
                            dry_run: false,
                        },
                    )
                    .await?,
                ),
                _ => None,
            };
            Ok::<_, Error>(OffsiteReport {
                target: crate::redact::redact_conninfo(&target.url),
                copy,
                retention,
            })
        }
        .await;
        match r {
            Ok(rep) => out.push(rep),
            Err(e) => failures.push(e),
        }
    }
    match failures.into_error() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
