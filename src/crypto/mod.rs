//! Cryptography, and nothing else: the two frame ciphers (AES-256-GCM,
//! ChaCha20-Poly1305) behind one small type, the associated data that binds
//! a frame or a manifest body to its place, master keys (X25519 key pairs
//! from a passphrase through Argon2id or from 32 raw bytes), and the wrapping
//! of a backup's data key to each master key. Key material lives in
//! zeroizing buffers and has no `Display`; `Debug` prints only ids.
//!
//! Where keys are kept in a repository and how rotation proceeds is
//! `crate::keys`; how a frame or manifest uses these is `pipeline::codec` and
//! `archive::manifest`.

mod cipher;
mod master;
mod wrap;

pub use cipher::{AuthFailed, BackupKey, CipherKind, DataCipher, DataKey, NONCE_LEN, TAG_LEN};
pub use master::{KdfParams, MasterPublic, MasterSecret, SecretInput};
pub use wrap::WrappedKey;
