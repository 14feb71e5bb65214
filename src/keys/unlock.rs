//! Opening backups with the secrets a user supplied: each secret is derived
//! once per key parameters (Argon2id is deliberately slow) and matched to a
//! backup's wrapped keys by key id.

use crate::archive::ManifestHeader;
use crate::crypto::{DataKey, KdfParams, MasterSecret, SecretInput};
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// A secret already stretched: (input index, KDF parameters, master secret).
type Derived = (usize, Option<KdfParams>, Arc<MasterSecret>);

/// The secrets supplied for this run (possibly none).
#[derive(Default)]
pub struct Unlock {
    inputs: Vec<SecretInput>,
    derived: Mutex<Vec<Derived>>,
}

impl std::fmt::Debug for Unlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unlock({} secrets)", self.inputs.len())
    }
}

/// How to tell pgkeep about a key, for error messages.
pub const KEY_HINT: &str =
    "supply a key with --key-file or PGKEEP_KEY, or a passphrase with --passphrase-file or PGKEEP_PASSPHRASE";

impl Unlock {
    pub fn new(inputs: Vec<SecretInput>) -> Unlock {
        Unlock {
            inputs,
            derived: Mutex::new(Vec::new()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// The master secret among the inputs whose id is `key_id` (deriving a
    /// passphrase with `kdf`).
    pub fn secret_for(
        &self,
        key_id: &str,
        kdf: Option<&KdfParams>,
    ) -> Result<Option<Arc<MasterSecret>>> {
        for (i, input) in self.inputs.iter().enumerate() {
            if input.is_passphrase() != kdf.is_some() {
                continue;
            }
            let s = self.derive(i, input, kdf)?;
            if s.id() == key_id {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    fn derive(
        &self,
        index: usize,
        input: &SecretInput,
        kdf: Option<&KdfParams>,
    ) -> Result<Arc<MasterSecret>> {
        {
            let cache = self
                .derived
                .lock()
                .map_err(|_| Error::Internal("key cache poisoned".into()))?;
            if let Some((_, _, s)) = cache
                .iter()
                .find(|(i, k, _)| *i == index && k.as_ref() == kdf)
            {
                return Ok(s.clone());
            }
        }
        let s = Arc::new(input.derive(kdf)?);
        if let Ok(mut cache) = self.derived.lock() {
            cache.push((index, kdf.cloned(), s.clone()));
        }
        Ok(s)
    }

    /// Opens the data key of an encrypted backup from its header.
    pub fn data_key(&self, header: &ManifestHeader, object: &str) -> Result<DataKey> {
        let cipher = header
            .cipher
            .ok_or_else(|| Error::Internal("data_key on an unencrypted backup".into()))?;
        let wrap_ids: Vec<&str> = header
            .wrapped_keys
            .iter()
            .map(|w| w.key_id.as_str())
            .collect();
        if header
            .key_ids
            .iter()
            .map(String::as_str)
            .ne(wrap_ids.iter().copied())
        {
            return Err(Error::integrity(
                object,
                "key ids disagree with the wrapped keys",
            ));
        }
        if wrap_ids.is_empty() {
            return Err(Error::integrity(
                object,
                "encrypted backup without a wrapped key",
            ));
        }
        let ids = wrap_ids.join(", ");
        if self.is_empty() {
            return Err(Error::Key(format!(
                "backup {} is encrypted (to key {ids}): {KEY_HINT}",
                header.id
            )));
        }
        for w in &header.wrapped_keys {
            if let Some(secret) = self.secret_for(&w.key_id, w.kdf.as_ref())? {
                return w.unwrap(&secret, cipher, &header.id, object);
            }
        }
        Err(Error::Key(format!(
            "none of the supplied keys opens backup {} (it is encrypted to key {ids}); wrong passphrase or key file?",
            header.id
        )))
    }
}

impl crate::archive::KeySource for Unlock {
    fn data_key(&self, header: &ManifestHeader, object: &str) -> Result<DataKey> {
        Unlock::data_key(self, header, object)
    }
}
