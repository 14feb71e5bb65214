//! Wrapping a backup's data key to a master key: an ephemeral X25519 key
//! agreement with the master's public key, HKDF-SHA256 to a key-encryption
//! key, and the backup's cipher over the data key. The associated data binds
//! the wrap to its backup, key id and cipher, so a wrap copied from another
//! backup or relabelled fails to open.

use super::cipher::{CipherKind, DataCipher, DataKey, NONCE_LEN};
use super::master::{KdfParams, MasterPublic, MasterSecret};
use crate::error::{Error, Result};
use hkdf::Hkdf;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// One data key wrapped to one master key (stored in the manifest header).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedKey {
    pub key_id: String,
    /// The master key's Argon2id parameters when it is a passphrase key, so
    /// the backup opens from its own objects even after the key record is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<KdfParams>,
    /// Ephemeral X25519 public key, hex.
    pub ephemeral: String,
    pub nonce: String,
    /// Data key ‖ tag, hex.
    pub wrapped: String,
}

fn aad(backup_id: &str, key_id: &str, kind: CipherKind) -> Vec<u8> {
    let mut a = Vec::with_capacity(64);
    a.extend_from_slice(b"pgkeep data-key wrap v1\0");
    for part in [backup_id, key_id, kind.name()] {
        a.extend_from_slice(part.as_bytes());
        a.push(0);
    }
    a
}

fn kek(
    shared: &x25519_dalek::SharedSecret,
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
    kind: CipherKind,
) -> Result<DataCipher> {
    if !shared.was_contributory() {
        return Err(Error::Key(
            "master public key is a low-order point (corrupted key record?)".into(),
        ));
    }
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared.as_bytes());
    let mut okm = Zeroizing::new([0u8; 32]);
    hk.expand(b"pgkeep key-encryption key v1", okm.as_mut())
        .map_err(|_| Error::Internal("hkdf expand".into()))?;
    Ok(DataCipher::new(kind, &DataKey::from_bytes(okm)))
}

impl WrappedKey {
    /// Wraps `data_key` so that only `to`'s secret opens it.
    pub fn wrap(
        data_key: &DataKey,
        to: &MasterPublic,
        kind: CipherKind,
        backup_id: &str,
    ) -> Result<WrappedKey> {
        let mut eph_bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(eph_bytes.as_mut());
        let eph = StaticSecret::from(*eph_bytes);
        let eph_pub = PublicKey::from(&eph).to_bytes();
        let shared = eph.diffie_hellman(&to.x25519());
        let cipher = kek(&shared, &eph_pub, &to.public, kind)?;
        let nonce = DataCipher::random_nonce();
        let mut buf = data_key.as_bytes().to_vec();
        let sealed = cipher.seal_in_place(&nonce, &aad(backup_id, &to.id, kind), &mut buf);
        let out = hex::encode(&buf);
        zeroize::Zeroize::zeroize(&mut buf);
        sealed?;
        Ok(WrappedKey {
            key_id: to.id.clone(),
            kdf: to.kdf.clone(),
            ephemeral: hex::encode(eph_pub),
            nonce: hex::encode(nonce),
            wrapped: out,
        })
    }

    /// Opens the wrap with a master secret whose id matches.
    pub fn unwrap(
        &self,
        secret: &MasterSecret,
        kind: CipherKind,
        backup_id: &str,
        object: &str,
    ) -> Result<DataKey> {
        let bad = |m: &str| Error::integrity(object, format!("wrapped key {}: {m}", self.key_id));
        let eph: [u8; 32] = hex::decode(&self.ephemeral)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("bad ephemeral key"))?;
        let nonce: [u8; NONCE_LEN] = hex::decode(&self.nonce)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("bad nonce"))?;
        let mut buf = Zeroizing::new(hex::decode(&self.wrapped).map_err(|_| bad("not hex"))?);
        let shared = secret.x25519().diffie_hellman(&PublicKey::from(eph));
        let cipher = kek(&shared, &eph, &secret.public().public, kind)?;
        cipher
            .open_in_place(&nonce, &aad(backup_id, &self.key_id, kind), &mut buf)
            .map_err(|_| bad("does not open (tampered, or copied from another backup)"))?;
        let key: [u8; 32] = buf.as_slice().try_into().map_err(|_| bad("wrong length"))?;
        Ok(DataKey::from_bytes(Zeroizing::new(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretInput;

    fn master(byte: u8) -> MasterSecret {
        SecretInput::Raw(Zeroizing::new([byte; 32]))
            .derive(None)
            .unwrap()
    }

    #[test]
    fn wrap_opens_only_with_its_key_backup_and_cipher() {
        let m = master(1);
        let other = master(2);
        let dk = DataKey::generate();
        for kind in [CipherKind::Aes256Gcm, CipherKind::ChaCha20Poly1305] {
            let w = WrappedKey::wrap(&dk, m.public(), kind, "b1").unwrap();
            assert_eq!(w.key_id, m.id());
            let back = w.unwrap(&m, kind, "b1", "o").unwrap();
            assert_eq!(back.as_bytes(), dk.as_bytes());
            assert!(w.unwrap(&other, kind, "b1", "o").is_err());
            assert!(w.unwrap(&m, kind, "b2", "o").is_err());
            let flip = if kind == CipherKind::Aes256Gcm {
                CipherKind::ChaCha20Poly1305
            } else {
                CipherKind::Aes256Gcm
            };
            assert!(w.unwrap(&m, flip, "b1", "o").is_err());
            let mut relabelled = w.clone();
            relabelled.key_id = other.id().to_string();
            assert!(relabelled.unwrap(&m, kind, "b1", "o").is_err());
            let mut tampered = w.clone();
            tampered
                .wrapped
                .replace_range(0..1, if &w.wrapped[0..1] == "0" { "1" } else { "0" });
            assert!(tampered.unwrap(&m, kind, "b1", "o").is_err());
        }
    }

    #[test]
    fn low_order_public_key_is_refused() {
        let dk = DataKey::generate();
        let bogus = MasterPublic::new([0u8; 32], None);
        assert!(WrappedKey::wrap(&dk, &bogus, CipherKind::Aes256Gcm, "b").is_err());
    }
}
