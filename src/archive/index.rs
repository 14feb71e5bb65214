//! The backup index of a repository: which backups exist (complete ones
//! have a manifest), resolving `latest`, and loading a manifest.

use super::layout;
use super::manifest::{KeySource, Manifest};
use crate::error::{Error, Result};
use crate::store::Repo;
use futures::{stream, StreamExt, TryStreamExt};

/// Loads and checks a backup's manifest, opening it with `unlock` when the
/// backup is encrypted.
pub async fn read_manifest(repo: &Repo, id: &str, keys: &dyn KeySource) -> Result<Manifest> {
    Ok(read_manifest_hashed(repo, id, keys).await?.0)
}

/// [`read_manifest`], with the SHA-256 (hex) of the manifest object as
/// stored: what evidence names a backup by.
pub async fn read_manifest_hashed(
    repo: &Repo,
    id: &str,
    keys: &dyn KeySource,
) -> Result<(Manifest, String)> {
    use sha2::{Digest, Sha256};
    let path = layout::manifest_path(id);
    let not_found = || Error::BackupNotFound(id.to_string());
    if !layout::is_backup_id(id) {
        return Err(not_found());
    }
    let bytes = repo.get_opt(&path).await?.ok_or_else(not_found)?;
    let manifest = Manifest::decode(&bytes, path.as_ref(), keys)?;
    Ok((manifest, hex::encode(Sha256::digest(&bytes))))
}

/// Resolves `latest` (or a given id) to an existing complete backup's id
/// (a given id must have a manifest). `latest`
/// checks backup prefixes newest first and stops at the first with a
/// manifest: one listing and usually one HEAD, however many backups the
/// repository holds.
pub async fn resolve_backup_id(repo: &Repo, id: &str) -> Result<String> {
    if id != "latest" {
        // Checked before anything is written under the id (a hold).
        if layout::is_backup_id(id) && repo.exists(&layout::manifest_path(id)).await? {
            return Ok(id.to_string());
        }
        return Err(Error::BackupNotFound(id.to_string()));
    }
    for dir in backup_dirs(repo).await?.into_iter().rev() {
        if repo.exists(&layout::manifest_path(&dir)).await? {
            return Ok(dir);
        }
    }
    Err(Error::BackupNotFound(
        "latest (the repository has no complete backup)".into(),
    ))
}

/// HEADs in flight while listing complete backups (each is a round trip to
/// a remote store; one after another, a long history takes seconds).
const LIST_CONCURRENCY: usize = 16;

/// Ids of complete backups (those with a manifest), oldest first.
pub async fn list_backup_ids(repo: &Repo) -> Result<Vec<String>> {
    let checked: Vec<(String, bool)> = stream::iter(backup_dirs(repo).await?)
        .map(|dir| async move {
            let complete = repo.exists(&layout::manifest_path(&dir)).await?;
            Ok::<_, Error>((dir, complete))
        })
        .buffered(LIST_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(checked
        .into_iter()
        .filter_map(|(dir, complete)| complete.then_some(dir))
        .collect())
}

/// Backup prefixes (named like backup ids), oldest first, complete or not.
async fn backup_dirs(repo: &Repo) -> Result<Vec<String>> {
    let mut dirs: Vec<String> = repo
        .list_dirs(&layout::backups_prefix())
        .await?
        .into_iter()
        .filter(|d| layout::is_backup_id(d))
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// What one listing of a repository's backups shows.
#[derive(Clone, Debug, Default)]
pub struct BackupScan {
    /// Ids with a manifest, oldest first.
    pub complete: Vec<String>,
    /// Ids with a verification record.
    pub verified: std::collections::BTreeSet<String>,
    /// Ids without a manifest (running, failed, or being removed).
    pub incomplete: Vec<String>,
    /// Ids with objects under `holds/` (a restore or drill may be reading them).
    pub held: std::collections::BTreeSet<String>,
    /// Every object under each backup's prefix, by id.
    pub objects: std::collections::BTreeMap<String, Vec<object_store::path::Path>>,
}

/// Scans the repository's backups with one recursive listing (a few
/// requests per thousand objects on a remote store), instead of a request
/// per backup.
pub async fn scan(repo: &Repo) -> Result<BackupScan> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut complete = BTreeSet::new();
    let mut verified = BTreeSet::new();
    let mut held = BTreeSet::new();
    let mut objects: BTreeMap<String, Vec<object_store::path::Path>> = BTreeMap::new();
    for meta in repo.list_meta(&layout::backups_prefix()).await? {
        let parts: Vec<String> = meta
            .location
            .parts()
            .map(|p| p.as_ref().to_string())
            .collect();
        let [_, id, rest @ ..] = parts.as_slice() else {
            continue;
        };
        if !layout::is_backup_id(id) {
            continue;
        }
        match rest {
            [name] if name == layout::MANIFEST_NAME => {
                complete.insert(id.clone());
            }
            [name] if name == "verified.json" => {
                verified.insert(id.clone());
            }
            [dir, _] if dir == "holds" => {
                held.insert(id.clone());
            }
            _ => {}
        }
        objects.entry(id.clone()).or_default().push(meta.location);
    }
    Ok(BackupScan {
        incomplete: objects
            .keys()
            .filter(|id| !complete.contains(*id))
            .cloned()
            .collect(),
        complete: complete.into_iter().collect(),
        verified,
        held,
        objects,
    })
}
