//! Pins: backups that retention never removes, each with an optional
//! reason (`pinned: audit`). One small object per pin, `pins/<id>.json`,
//! so pinning touches nothing of the backup itself.

use crate::archive::layout;
use crate::error::{Error, Result};
use crate::store::Repo;
use crate::units::rfc3339;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A pin as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub backup_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub pinned_at: String,
}

/// Pins complete backup `id` (re-pinning replaces the reason).
pub async fn pin(repo: &Repo, id: &str, reason: Option<String>) -> Result<Pin> {
    if !layout::is_backup_id(id) || !repo.exists(&layout::manifest_path(id)).await? {
        return Err(Error::BackupNotFound(id.to_string()));
    }
    let pin = Pin {
        backup_id: id.to_string(),
        reason: reason.filter(|r| !r.trim().is_empty()),
        pinned_at: rfc3339(time::OffsetDateTime::now_utc())?,
    };
    let bytes =
        serde_json::to_vec_pretty(&pin).map_err(|e| Error::Internal(format!("pin json: {e}")))?;
    repo.put(&layout::pin_path(id), bytes).await?;
    Ok(pin)
}

/// Removes the pin of `id`; false when it was not pinned.
pub async fn unpin(repo: &Repo, id: &str) -> Result<bool> {
    if !layout::is_backup_id(id) {
        return Err(Error::BackupNotFound(id.to_string()));
    }
    let path = layout::pin_path(id);
    if !repo.exists(&path).await? {
        return Ok(false);
    }
    repo.delete(&path).await?;
    Ok(true)
}

/// Every pin of the repository, by backup id (one listing, one read per
/// pin). An unreadable pin still pins, without a reason.
pub async fn pins(repo: &Repo) -> Result<BTreeMap<String, Pin>> {
    let mut out = BTreeMap::new();
    for meta in repo.list_meta(&layout::pins_prefix()).await? {
        let Some(name) = meta.location.filename() else {
            continue;
        };
        let Some(id) = name
            .strip_suffix(".json")
            .filter(|id| layout::is_backup_id(id))
        else {
            continue;
        };
        let pin = match repo.get_opt(&meta.location).await? {
            Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|_| Pin {
                backup_id: id.to_string(),
                reason: None,
                pinned_at: String::new(),
            }),
            None => continue,
        };
        out.insert(id.to_string(), pin);
    }
    Ok(out)
}
