//! Master keys in a repository: their records (`keys/<id>.json`, public
//! halves only), the repository's default cipher, opening a backup's data
//! key with the secrets a user supplied ([`Unlock`]), and the key commands
//! (add, remove, rotate) that re-wrap data keys in manifests without touching
//! a single data object. The primitives are `crate::crypto`.

mod manage;
mod record;
mod unlock;

pub use manage::{add_key, remove_key, rotate_key, KeyChange};
pub use record::{list_keys, read_repository_cipher, write_repository_cipher, KeyKind, KeyRecord};
pub use unlock::Unlock;

use crate::crypto::{CipherKind, MasterPublic};
use crate::error::{Error, Result};
use crate::store::Repo;

/// Whether a backup encrypts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncryptMode {
    /// Encrypt when the repository has master keys.
    #[default]
    Auto,
    /// Encrypt, and fail if the repository has no master key.
    On,
    /// Store plaintext frames even in a repository with keys.
    Off,
}

/// What a backup encrypts to: the cipher and every master key's public half.
#[derive(Clone, Debug)]
pub struct Recipients {
    pub cipher: CipherKind,
    pub keys: Vec<MasterPublic>,
}

/// Decides a backup's encryption from the mode and the repository's keys.
pub async fn recipients(
    repo: &Repo,
    mode: EncryptMode,
    cipher: Option<CipherKind>,
) -> Result<Option<Recipients>> {
    if mode == EncryptMode::Off {
        return Ok(None);
    }
    let records = list_keys(repo).await?;
    if records.is_empty() {
        return match mode {
            EncryptMode::On => Err(Error::Key(format!(
                "repository {} has no master key: add one with `pgkeep key add --repo {}` (or pass a key to `backup --encrypt`)",
                repo.display(),
                repo.display()
            ))),
            _ => Ok(None),
        };
    }
    let cipher = match cipher {
        Some(c) => c,
        None => read_repository_cipher(repo)
            .await?
            .unwrap_or(CipherKind::Aes256Gcm),
    };
    let keys = records
        .iter()
        .map(KeyRecord::public)
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Recipients { cipher, keys }))
}
