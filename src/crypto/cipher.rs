//! The authenticated ciphers and the data key. Both ciphers take a 32-byte
//! key and a 96-bit nonce and append a 16-byte tag; callers never see which
//! one runs except through [`CipherKind`].

use crate::error::{Error, Result};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use chacha20poly1305::ChaCha20Poly1305;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use zeroize::Zeroizing;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// Which AEAD a backup (or a repository by default) uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CipherKind {
    /// Default: fast wherever the CPU has AES instructions.
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
    /// For CPUs without AES instructions (a Raspberry Pi 4).
    #[serde(rename = "chacha20-poly1305")]
    ChaCha20Poly1305,
}

impl CipherKind {
    pub fn name(self) -> &'static str {
        match self {
            CipherKind::Aes256Gcm => "aes-256-gcm",
            CipherKind::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }
}

impl fmt::Display for CipherKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CipherKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<CipherKind> {
        match s {
            "aes-256-gcm" | "aes" => Ok(CipherKind::Aes256Gcm),
            "chacha20-poly1305" | "chacha" => Ok(CipherKind::ChaCha20Poly1305),
            other => Err(Error::Config(format!(
                "unknown cipher {other:?} (use aes-256-gcm or chacha20-poly1305)"
            ))),
        }
    }
}

/// 32 bytes of key material, wiped from memory when dropped.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> DataKey {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(k.as_mut());
        DataKey(k)
    }

    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> DataKey {
        DataKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

enum Inner {
    Aes(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

/// A keyed cipher, ready to seal and open. Cheap to share across threads.
pub struct DataCipher {
    kind: CipherKind,
    inner: Inner,
}

impl fmt::Debug for DataCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataCipher({})", self.kind)
    }
}

impl DataCipher {
    pub fn new(kind: CipherKind, key: &DataKey) -> DataCipher {
        let k = key.as_bytes();
        let inner = match kind {
            CipherKind::Aes256Gcm => Inner::Aes(Box::new(Aes256Gcm::new(k.into()))),
            CipherKind::ChaCha20Poly1305 => {
                Inner::ChaCha(Box::new(ChaCha20Poly1305::new(k.into())))
            }
        };
        DataCipher { kind, inner }
    }

    pub fn kind(&self) -> CipherKind {
        self.kind
    }

    /// A random 96-bit nonce. With one fresh key per backup, the chance of a
    /// repeat stays negligible far beyond any backup's frame count.
    pub fn random_nonce() -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut n);
        n
    }

    /// Encrypts `buf` in place and appends the tag.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let tag = self.seal_detached(nonce, aad, buf)?;
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Encrypts `buf` in place and returns the tag (for a caller that
    /// places it: a frame sealed inside a pooled buffer).
    pub fn seal_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN]> {
        let n = Nonce::from_slice(nonce);
        let r = match &self.inner {
            Inner::Aes(c) => c.encrypt_in_place_detached(n, aad, buf),
            Inner::ChaCha(c) => c.encrypt_in_place_detached(n, aad, buf),
        };
        r.map(Into::into)
            .map_err(|_| Error::Internal("encryption failed".into()))
    }

    /// Checks the tag and decrypts `buf` (ciphertext ‖ tag) in place. The
    /// error carries no detail on purpose: a wrong key and tampered bytes look
    /// the same to an AEAD.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> std::result::Result<(), AuthFailed> {
        let len = self.open_detached(nonce, aad, buf)?;
        buf.truncate(len);
        Ok(())
    }

    /// Checks the tag at the end of `buf` (ciphertext ‖ tag) and decrypts
    /// the ciphertext in place; returns its length (the plaintext is
    /// `buf[..len]`).
    pub fn open_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> std::result::Result<usize, AuthFailed> {
        let len = buf.len().checked_sub(TAG_LEN).ok_or(AuthFailed)?;
        let (text, tag) = buf.split_at_mut(len);
        let n = Nonce::from_slice(nonce);
        let tag = aes_gcm::Tag::from_slice(tag);
        let r = match &self.inner {
            Inner::Aes(c) => c.decrypt_in_place_detached(n, aad, text, tag),
            Inner::ChaCha(c) => c.decrypt_in_place_detached(n, aad, text, tag),
        };
        r.map(|()| len).map_err(|_| AuthFailed)
    }
}

/// The keyed cipher of one backup: seals its frames and its manifest body.
/// Each use adds associated data naming the backup, so nothing sealed for
/// one backup opens as part of another.
#[derive(Debug)]
pub struct BackupKey {
    pub cipher: DataCipher,
    pub backup_id: String,
}

impl PartialEq for BackupKey {
    /// Same backup and cipher (key bytes are not compared).
    fn eq(&self, other: &BackupKey) -> bool {
        self.backup_id == other.backup_id && self.cipher.kind() == other.cipher.kind()
    }
}

impl BackupKey {
    pub fn new(kind: CipherKind, key: &DataKey, backup_id: &str) -> BackupKey {
        BackupKey {
            cipher: DataCipher::new(kind, key),
            backup_id: backup_id.to_string(),
        }
    }
}

/// The authentication tag did not match (tampered bytes, wrong key, or
/// associated data from another place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFailed;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn both() -> [CipherKind; 2] {
        [CipherKind::Aes256Gcm, CipherKind::ChaCha20Poly1305]
    }

    #[test]
    fn names_round_trip() {
        for k in both() {
            assert_eq!(k.name().parse::<CipherKind>().unwrap(), k);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
        }
        assert!("rot13".parse::<CipherKind>().is_err());
    }

    proptest! {
        #[test]
        fn seal_open_round_trip_and_any_flip_fails(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            aad in proptest::collection::vec(any::<u8>(), 0..40),
            pos in any::<proptest::sample::Index>(),
            bit in 0u8..8,
        ) {
            for kind in both() {
                let key = DataKey::generate();
                let c = DataCipher::new(kind, &key);
                let nonce = DataCipher::random_nonce();
                let mut buf = data.clone();
                c.seal_in_place(&nonce, &aad, &mut buf).unwrap();
                prop_assert_eq!(buf.len(), data.len() + TAG_LEN);
                let mut flipped = buf.clone();
                let i = pos.index(flipped.len());
                flipped[i] ^= 1 << bit;
                prop_assert!(c.open_in_place(&nonce, &aad, &mut flipped).is_err());
                let mut other_aad = aad.clone();
                other_aad.push(0);
                prop_assert!(c.open_in_place(&nonce, &other_aad, &mut buf.clone()).is_err());
                let other = DataCipher::new(kind, &DataKey::generate());
                prop_assert!(other.open_in_place(&nonce, &aad, &mut buf.clone()).is_err());
                c.open_in_place(&nonce, &aad, &mut buf).unwrap();
                prop_assert_eq!(&buf, &data);
            }
        }
    }
}
