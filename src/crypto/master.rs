//! Master keys. A master key is an X25519 key pair whose secret half comes
//! from the user: 32 raw bytes (a key file or `PGKEEP_KEY`), or a passphrase
//! stretched by Argon2id with a salt and parameters stored beside the public
//! half. The repository keeps only public halves, so a backup can wrap its
//! data key to every master key without holding any secret; reading needs
//! one secret.

use crate::error::{Error, Result};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// Argon2id parameters, stored with every passphrase key and every data key
/// wrapped to one, so a backup stays readable from its own objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Always "argon2id".
    pub algorithm: String,
    /// Memory in KiB.
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    /// 16 random bytes, hex.
    pub salt: String,
}

/// Reading bounds: parameters come from the repository, which an attacker
/// may control; never let them ask for more memory than a small machine has.
const MAX_M_COST_KIB: u32 = 512 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 16;

impl KdfParams {
    /// The profile new passphrase keys get: 64 MiB, 3 passes, one lane. Fits
    /// a 1 GB Raspberry Pi (about a second there, a fraction of one on a
    /// server). `PGKEEP_KDF_PROFILE=fast` (8 MiB, 1 pass) exists for tests
    /// only and is recorded in the key like any profile.
    pub fn new_random() -> KdfParams {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let fast = std::env::var("PGKEEP_KDF_PROFILE").as_deref() == Ok("fast");
        KdfParams {
            algorithm: "argon2id".into(),
            m_cost_kib: if fast { 8 * 1024 } else { 64 * 1024 },
            t_cost: if fast { 1 } else { 3 },
            p_cost: 1,
            salt: hex::encode(salt),
        }
    }

    fn derive(&self, passphrase: &str) -> Result<Zeroizing<[u8; 32]>> {
        let bad = |m: &str| Error::Key(format!("passphrase key parameters: {m}"));
        if self.algorithm != "argon2id" {
            return Err(bad(&format!("unknown algorithm {:?}", self.algorithm)));
        }
        if self.m_cost_kib > MAX_M_COST_KIB || self.t_cost > MAX_T_COST || self.p_cost > MAX_P_COST
        {
            return Err(bad("costs beyond what pgkeep accepts"));
        }
        let salt = hex::decode(&self.salt).map_err(|_| bad("salt is not hex"))?;
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| bad(&e.to_string()))?;
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        a.hash_password_into(passphrase.as_bytes(), &salt, out.as_mut())
            .map_err(|e| bad(&e.to_string()))?;
        Ok(out)
    }
}

/// A secret as the user supplied it, before derivation.
pub enum SecretInput {
    Passphrase(Zeroizing<String>),
    Raw(Zeroizing<[u8; 32]>),
}

impl fmt::Debug for SecretInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretInput::Passphrase(_) => f.write_str("Passphrase(..)"),
            SecretInput::Raw(_) => f.write_str("Raw(..)"),
        }
    }
}

impl SecretInput {
    /// A key file's content: 32 raw bytes, or their base64 (whitespace ignored).
    pub fn parse_key(bytes: &[u8], what: &str) -> Result<SecretInput> {
        let mut k = Zeroizing::new([0u8; 32]);
        if bytes.len() == 32 {
            k.copy_from_slice(bytes);
            return Ok(SecretInput::Raw(k));
        }
        let text: Zeroizing<Vec<u8>> = Zeroizing::new(
            bytes
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect(),
        );
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.as_slice())
                .map_err(|_| {
                    Error::Key(format!(
                        "{what}: a key is 32 raw bytes or their base64 (44 characters)"
                    ))
                })?,
        );
        if decoded.len() != 32 {
            return Err(Error::Key(format!(
                "{what}: a key is 32 bytes, this decodes to {}",
                decoded.len()
            )));
        }
        k.copy_from_slice(&decoded);
        Ok(SecretInput::Raw(k))
    }

    pub fn is_passphrase(&self) -> bool {
        matches!(self, SecretInput::Passphrase(_))
    }

    /// Derives the master secret; a passphrase needs the key's parameters.
    pub fn derive(&self, kdf: Option<&KdfParams>) -> Result<MasterSecret> {
        let bytes = match (self, kdf) {
            (SecretInput::Raw(k), None) => k.clone(),
            (SecretInput::Passphrase(p), Some(params)) => params.derive(p)?,
            (SecretInput::Raw(_), Some(_)) => {
                return Err(Error::Key("a passphrase key needs a passphrase".into()))
            }
            (SecretInput::Passphrase(_), None) => {
                return Err(Error::Key(
                    "a raw key needs a key file or PGKEEP_KEY".into(),
                ))
            }
        };
        Ok(MasterSecret::from_bytes(bytes, kdf.cloned()))
    }
}

/// The public half of a master key, and its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterPublic {
    pub id: String,
    pub public: [u8; 32],
    /// Present for passphrase keys.
    pub kdf: Option<KdfParams>,
}

impl MasterPublic {
    pub fn new(public: [u8; 32], kdf: Option<KdfParams>) -> MasterPublic {
        MasterPublic {
            id: key_id(&public),
            public,
            kdf,
        }
    }

    pub(crate) fn x25519(&self) -> PublicKey {
        PublicKey::from(self.public)
    }
}

/// A key id: 16 hex digits of a hash of the public key (not secret).
pub fn key_id(public: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"pgkeep master key v1\0");
    h.update(public);
    hex::encode(&h.finalize()[..8])
}

/// The secret half of a master key. Zeroized on drop.
pub struct MasterSecret {
    secret: StaticSecret,
    public: MasterPublic,
}

impl fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterSecret({})", self.public.id)
    }
}

impl MasterSecret {
    fn from_bytes(bytes: Zeroizing<[u8; 32]>, kdf: Option<KdfParams>) -> MasterSecret {
        let secret = StaticSecret::from(*bytes);
        let public = PublicKey::from(&secret).to_bytes();
        MasterSecret {
            secret,
            public: MasterPublic::new(public, kdf),
        }
    }

    pub fn public(&self) -> &MasterPublic {
        &self.public
    }

    pub fn id(&self) -> &str {
        &self.public.id
    }

    pub(crate) fn x25519(&self) -> &StaticSecret {
        &self.secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn passphrase_keys_derive_the_same_public_key_only_from_the_same_inputs() {
        std::env::set_var("PGKEEP_KDF_PROFILE", "fast");
        let kdf = KdfParams::new_random();
        let p = |s: &str| SecretInput::Passphrase(Zeroizing::new(s.to_string()));
        let a = p("correct horse").derive(Some(&kdf)).unwrap();
        let b = p("correct horse").derive(Some(&kdf)).unwrap();
        let c = p("correct horsf").derive(Some(&kdf)).unwrap();
        assert_eq!(a.public(), b.public());
        assert_ne!(a.id(), c.id());
        let other_salt = KdfParams::new_random();
        assert_ne!(
            p("correct horse").derive(Some(&other_salt)).unwrap().id(),
            a.id()
        );
        assert!(p("x").derive(None).is_err());
        let mut hostile = kdf.clone();
        hostile.m_cost_kib = u32::MAX;
        assert!(p("x").derive(Some(&hostile)).is_err());
    }

    #[test]
    fn key_files_are_raw_or_base64() {
        let raw = [7u8; 32];
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let a = SecretInput::parse_key(&raw, "f")
            .unwrap()
            .derive(None)
            .unwrap();
        let b = SecretInput::parse_key(format!("  {b64}\n").as_bytes(), "f")
            .unwrap()
            .derive(None)
            .unwrap();
        assert_eq!(a.public(), b.public());
        assert!(SecretInput::parse_key(b"short", "f").is_err());
        assert!(SecretInput::parse_key(b"c2hvcnQ=", "f").is_err());
        assert_eq!(
            format!("{:?}", SecretInput::parse_key(&raw, "f").unwrap()),
            "Raw(..)"
        );
    }

    proptest! {
        #[test]
        fn parse_key_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = SecretInput::parse_key(&bytes, "f");
        }
    }
}
