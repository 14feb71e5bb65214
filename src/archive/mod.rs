//! The archive format: repository layout ([`layout`]), frames ([`frame`]),
//! the manifest ([`manifest`]), and the pack writer/reader that move frames
//! to and from storage ([`pack`], [`reader`]). Specified in `docs/format.md`.

pub mod frame;
pub mod layout;
pub mod manifest;
pub mod pack;
pub mod reader;

pub use manifest::{
    ChainHead, ChainRecord, FrameRef, Manifest, ManifestBody, ManifestHeader, PackInfo, StreamInfo,
};
