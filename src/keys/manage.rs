//! The key commands. Each changes key records and the wrapped keys in
//! manifest headers, never a pack object, and orders its writes so that a
//! run killed at any point leaves every backup readable with the keys it
//! had before or the keys it was going to have:
//!
//! - add: write the new record, then add a wrap for the new key to each
//!   encrypted backup (opened with a key the caller supplies);
//! - remove: delete the record (new backups stop wrapping to it), then drop
//!   its wraps from each backup — refused up front for a backup that no
//!   other key opens;
//! - rotate: add the new key, then remove the old one.

use super::record::{list_keys, write_repository_cipher, KeyRecord};
use super::unlock::{Unlock, KEY_HINT};
use crate::archive::index::list_backup_ids;
use crate::archive::{layout, Manifest, ManifestHeader};
use crate::crypto::{CipherKind, KdfParams, SecretInput, WrappedKey};
use crate::error::{Error, Result};
use crate::store::Repo;
use serde::Serialize;

/// What a key command changed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KeyChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<String>,
    /// Backups whose manifest header was re-wrapped.
    pub rewrapped: Vec<String>,
}

struct Encrypted {
    id: String,
    bytes: Vec<u8>,
    header: ManifestHeader,
}

/// Every encrypted backup's manifest (bytes and header).
async fn encrypted_backups(repo: &Repo) -> Result<Vec<Encrypted>> {
    let mut out = Vec::new();
    for id in list_backup_ids(repo).await? {
        let path = layout::manifest_path(&id);
        let bytes = repo.get(&path).await?.to_vec();
        let header = Manifest::decode_header(&bytes, path.as_ref())?;
        if header.cipher.is_some() {
            out.push(Encrypted { id, bytes, header });
        }
    }
    Ok(out)
}

async fn write_wraps(repo: &Repo, b: &Encrypted, wraps: Vec<WrappedKey>) -> Result<()> {
    let path = layout::manifest_path(&b.id);
    let bytes = Manifest::rewrap(&b.bytes, path.as_ref(), wraps)?;
    repo.put(&path, bytes).await
}

/// Adds a master key from `new`. Existing encrypted backups get a wrap for
/// it, which needs one of their current keys in `unlock`; every backup is
/// opened before anything is written. The first key of a repository also
/// sets its default cipher.
pub async fn add_key(
    repo: &Repo,
    unlock: &Unlock,
    new: &SecretInput,
    cipher: Option<CipherKind>,
) -> Result<KeyChange> {
    let records = list_keys(repo).await?;
    let kdf = new.is_passphrase().then(KdfParams::new_random);
    let secret = new.derive(kdf.as_ref())?;
    let public = secret.public().clone();
    drop(secret);
    if records.iter().any(|r| r.id == public.id) {
        return Err(Error::Key(format!(
            "key {} is already in the repository",
            public.id
        )));
    }
    let backups = encrypted_backups(repo).await?;
    let mut opened = Vec::with_capacity(backups.len());
    for b in &backups {
        if unlock.is_empty() {
            return Err(Error::Key(format!(
                "the repository has encrypted backups; to let the new key open them, {KEY_HINT} (an existing key)"
            )));
        }
        let object = layout::manifest_path(&b.id).to_string();
        opened.push(unlock.data_key(&b.header, &object)?);
    }
    if records.is_empty() || cipher.is_some() {
        write_repository_cipher(repo, cipher.unwrap_or(CipherKind::Aes256Gcm)).await?;
    }
    repo.put_new(
        &layout::key_path(&public.id),
        KeyRecord::new(&public)?.encode()?,
    )
    .await?;
    let mut change = KeyChange {
        added: Some(public.id.clone()),
        ..KeyChange::default()
    };
    for (b, data_key) in backups.iter().zip(opened) {
        let kind = b
            .header
            .cipher
            .ok_or_else(|| Error::Internal("cipher vanished".into()))?;
        let mut wraps = b.header.wrapped_keys.clone();
        wraps.retain(|w| w.key_id != public.id);
        wraps.push(WrappedKey::wrap(&data_key, &public, kind, &b.id)?);
        write_wraps(repo, b, wraps).await?;
        change.rewrapped.push(b.id.clone());
    }
    Ok(change)
}

/// Removes a master key: its record, then its wraps. Needs no secret.
pub async fn remove_key(repo: &Repo, key_id: &str) -> Result<KeyChange> {
    let records = list_keys(repo).await?;
    let backups = encrypted_backups(repo).await?;
    let known = records.iter().any(|r| r.id == key_id)
        || backups
            .iter()
            .any(|b| b.header.key_ids.iter().any(|k| k == key_id));
    if !known {
        return Err(Error::Key(format!(
            "no key {key_id} in the repository (see `pgkeep key list`)"
        )));
    }
    let stranded: Vec<&str> = backups
        .iter()
        .filter(|b| b.header.wrapped_keys.iter().all(|w| w.key_id == key_id))
        .map(|b| b.id.as_str())
        .collect();
    if !stranded.is_empty() {
        return Err(Error::Key(format!(
            "refusing to remove key {key_id}: it is the only key of backup(s) {}; add another key first (`pgkeep key add`)",
            stranded.join(", ")
        )));
    }
    let path = layout::key_path(key_id);
    if repo.exists(&path).await? {
        repo.delete(&path).await?;
    }
    let mut change = KeyChange {
        removed: Some(key_id.to_string()),
        ..KeyChange::default()
    };
    for b in &backups {
        if b.header.wrapped_keys.iter().any(|w| w.key_id == key_id) {
            let wraps = b
                .header
                .wrapped_keys
                .iter()
                .filter(|w| w.key_id != key_id)
                .cloned()
                .collect();
            write_wraps(repo, b, wraps).await?;
            change.rewrapped.push(b.id.clone());
        }
    }
    Ok(change)
}

/// Replaces the key `unlock` holds (or `old_id`) by `new`: add, then remove.
pub async fn rotate_key(
    repo: &Repo,
    unlock: &Unlock,
    old_id: Option<&str>,
    new: &SecretInput,
) -> Result<KeyChange> {
    let old = match old_id {
        Some(id) => id.to_string(),
        None => {
            let records = list_keys(repo).await?;
            let mut found = None;
            for r in &records {
                if unlock.secret_for(&r.id, r.kdf.as_ref())?.is_some() {
                    found = Some(r.id.clone());
                    break;
                }
            }
            found.ok_or_else(|| {
                Error::Key(format!(
                    "none of the supplied keys is a key of this repository; {KEY_HINT}"
                ))
            })?
        }
    };
    let added = add_key(repo, unlock, new, None).await?;
    let removed = remove_key(repo, &old).await?;
    let mut rewrapped = added.rewrapped;
    for id in removed.rewrapped {
        if !rewrapped.contains(&id) {
            rewrapped.push(id);
        }
    }
    Ok(KeyChange {
        added: added.added,
        removed: removed.removed,
        rewrapped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest::tests::{raw, sealed};
    use crate::keys::{recipients, EncryptMode};
    use object_store::memory::InMemory;
    use std::sync::Arc;

    fn memory_repo() -> Repo {
        Repo::from_store(Arc::new(InMemory::new()), "memory")
    }

    fn id_of(byte: u8) -> String {
        raw(byte).derive(None).unwrap().id().to_string()
    }

    /// Opens the one backup's manifest with the raw key made from `byte`.
    async fn opens_with(repo: &Repo, id: &str, byte: u8) -> bool {
        let bytes = repo.get(&layout::manifest_path(id)).await.unwrap();
        Manifest::decode(&bytes, "m", &Unlock::new(vec![raw(byte)])).is_ok()
    }

    #[tokio::test]
    async fn the_first_key_sets_the_cipher_and_makes_backups_encrypt() {
        let repo = memory_repo();
        assert!(recipients(&repo, EncryptMode::Auto, None)
            .await
            .unwrap()
            .is_none());
        let e = recipients(&repo, EncryptMode::On, None).await.unwrap_err();
        assert!(matches!(e, Error::Key(_)), "{e}");
        let change = add_key(
            &repo,
            &Unlock::default(),
            &raw(1),
            Some(CipherKind::ChaCha20Poly1305),
        )
        .await
        .unwrap();
        assert_eq!(change.added, Some(id_of(1)));
        assert!(change.rewrapped.is_empty());
        let r = recipients(&repo, EncryptMode::Auto, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.cipher, CipherKind::ChaCha20Poly1305);
        assert_eq!(r.keys.len(), 1);
        assert!(recipients(&repo, EncryptMode::Off, None)
            .await
            .unwrap()
            .is_none());
        let again = add_key(&repo, &Unlock::default(), &raw(1), None)
            .await
            .unwrap_err();
        assert!(
            again.to_string().contains("already in the repository"),
            "{again}"
        );
    }

    #[tokio::test]
    async fn keys_are_added_removed_and_rotated_by_rewrapping_manifests_only() {
        let repo = memory_repo();
        add_key(&repo, &Unlock::default(), &raw(1), None)
            .await
            .unwrap();
        let mut m = sealed(CipherKind::Aes256Gcm, 1);
        let id = m.header.id.clone();
        repo.put(&layout::manifest_path(&id), m.encode().unwrap())
            .await
            .unwrap();
        // A new key needs an existing one to open the backups it must wrap for.
        let e = add_key(&repo, &Unlock::default(), &raw(2), None)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Key(_)), "{e}");
        let one = Unlock::new(vec![raw(1)]);
        let change = add_key(&repo, &one, &raw(2), None).await.unwrap();
        assert_eq!(change.rewrapped, std::slice::from_ref(&id));
        assert!(opens_with(&repo, &id, 1).await && opens_with(&repo, &id, 2).await);
        // Removing key 1 leaves key 2 able to open the backup.
        remove_key(&repo, &id_of(1)).await.unwrap();
        assert!(!opens_with(&repo, &id, 1).await && opens_with(&repo, &id, 2).await);
        // The last key of a backup is never removed.
        let e = remove_key(&repo, &id_of(2)).await.unwrap_err();
        assert!(opens_with(&repo, &id, 2).await, "{e}");
        // Rotation: the new key opens everything, the old one nothing.
        let two = Unlock::new(vec![raw(2)]);
        rotate_key(&repo, &two, None, &raw(3)).await.unwrap();
        assert!(!opens_with(&repo, &id, 2).await && opens_with(&repo, &id, 3).await);
        let ids: Vec<String> = list_keys(&repo)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(ids, [id_of(3)]);
    }
}
