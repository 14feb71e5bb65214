//! Key records: the public half of each master key, as `keys/<id>.json`,
//! and the repository's default cipher (`keys/repository.json`).

use crate::archive::layout;
use crate::crypto::{CipherKind, KdfParams, MasterPublic};
use crate::error::{Error, Result};
use crate::store::Repo;
use serde::{Deserialize, Serialize};

const RECORD_FORMAT: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// Derived from a passphrase with Argon2id.
    Passphrase,
    /// 32 raw bytes from a key file or `PGKEEP_KEY`.
    Key,
}

/// One master key of a repository. Holds nothing secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    pub format: u32,
    pub id: String,
    pub kind: KeyKind,
    /// X25519 public key, hex.
    pub public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<KdfParams>,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl KeyRecord {
    pub fn new(public: &MasterPublic) -> Result<KeyRecord> {
        let now = crate::units::rfc3339(time::OffsetDateTime::now_utc())?;
        Ok(KeyRecord {
            format: RECORD_FORMAT,
            id: public.id.clone(),
            kind: if public.kdf.is_some() {
                KeyKind::Passphrase
            } else {
                KeyKind::Key
            },
            public_key: hex::encode(public.public),
            kdf: public.kdf.clone(),
            created_at: now,
        })
    }

    /// The public key, checked against the record's id.
    pub fn public(&self) -> Result<MasterPublic> {
        let object = layout::key_path(&self.id).to_string();
        let bytes: [u8; 32] = hex::decode(&self.public_key)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::format(&object, "public key is not 32 bytes of hex"))?;
        let p = MasterPublic::new(bytes, self.kdf.clone());
        if p.id != self.id {
            return Err(Error::integrity(
                &object,
                "key id does not match the public key",
            ));
        }
        if (self.kind == KeyKind::Passphrase) != self.kdf.is_some() {
            return Err(Error::format(&object, "key kind and parameters disagree"));
        }
        Ok(p)
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::Internal(format!("key record: {e}")))
    }

    pub fn decode(bytes: &[u8], object: &str) -> Result<KeyRecord> {
        let r: KeyRecord = serde_json::from_slice(bytes)
            .map_err(|e| Error::format(object, format!("key record: {e}")))?;
        if r.format != RECORD_FORMAT {
            return Err(Error::UnsupportedVersion {
                object: object.to_string(),
                found: r.format,
                supported: RECORD_FORMAT,
            });
        }
        r.public()?;
        Ok(r)
    }
}

fn is_key_id(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Every master key record of the repository, sorted by creation time.
pub async fn list_keys(repo: &Repo) -> Result<Vec<KeyRecord>> {
    let mut out = Vec::new();
    for (path, _) in repo.list_all(&layout::keys_prefix()).await? {
        let Some(name) = path.filename() else {
            continue;
        };
        let Some(id) = name.strip_suffix(".json") else {
            continue;
        };
        if !is_key_id(id) {
            continue;
        }
        let bytes = repo.get(&path).await?;
        let r = KeyRecord::decode(&bytes, path.as_ref())?;
        if r.id != id {
            return Err(Error::integrity(
                path.to_string(),
                "record names another key id than its file",
            ));
        }
        out.push(r);
    }
    out.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(out)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RepositoryConfig {
    format: u32,
    cipher: CipherKind,
}

pub async fn read_repository_cipher(repo: &Repo) -> Result<Option<CipherKind>> {
    let path = layout::repository_config_path();
    let Some(bytes) = repo.get_opt(&path).await? else {
        return Ok(None);
    };
    let c: RepositoryConfig = serde_json::from_slice(&bytes)
        .map_err(|e| Error::format(path.to_string(), e.to_string()))?;
    Ok(Some(c.cipher))
}

pub async fn write_repository_cipher(repo: &Repo, cipher: CipherKind) -> Result<()> {
    let c = RepositoryConfig {
        format: RECORD_FORMAT,
        cipher,
    };
    let bytes =
        serde_json::to_vec_pretty(&c).map_err(|e| Error::Internal(format!("config: {e}")))?;
    repo.put(&layout::repository_config_path(), bytes).await
}
