//! The archive: repository layout ([`layout`]), the manifest
//! ([`manifest`]), the backup index ([`index`]: which backups exist,
//! `latest`), the pack writer that moves encoded frames to storage
//! ([`pack`]), the stream reader that brings them back verified
//! ([`stream`]) and the check of a pack's bytes in passing ([`scan`]). Specified in `docs/format.md`. The frame format itself
//! lives with its codec in `pipeline`.

pub mod index;
pub mod layout;
pub(crate) mod manifest;
pub(crate) mod pack;
pub(crate) mod scan;
pub(crate) mod stream;

pub use manifest::{
    BackupKind, ChainHead, ChainRecord, FrameRef, KeySource, Manifest, ManifestBody,
    ManifestHeader, PackInfo, RedisFacts, RedisMethod, Sha256Hex, StreamInfo,
};
