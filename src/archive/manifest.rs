//! The manifest: a public header and a body, in one object written last.
//!
//! ```text
//! "PGKEEPM\0" | format version u32 LE | header length u32 LE | header (JSON)
//!             | body length u64 LE | body (zstd JSON) | SHA-256 of all preceding bytes
//! ```
//! The header stays readable without keys (for `list`); the body holds the
//! TOC and the frame index. The trailing hash catches truncation and bit
//! flips anywhere in the object.

use crate::catalog::{CatalogOptions, SourceInfo, TocEntry};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MANIFEST_MAGIC: [u8; 8] = *b"PGKEEPM\0";
pub const FORMAT_VERSION: u32 = 1;
/// Bounds memory on hostile input.
const MAX_HEADER_LEN: u32 = 1 << 20;
const MAX_BODY_LEN: u64 = 1 << 31;

/// Readable without keys: what `list` shows.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ManifestHeader {
    pub format_version: u32,
    pub id: String,
    pub pgkeep_version: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    /// Redacted connection target (`postgres://user@host:port/db`).
    pub source: String,
    pub server_version: String,
    pub system_identifier: Option<String>,
    pub database: String,
    pub tables: u64,
    pub rows: u64,
    /// Plaintext bytes of all data streams.
    pub plain_bytes: u64,
    /// Bytes stored in pack objects (what the repository holds for this backup).
    pub stored_bytes: u64,
    pub compression: String,
    /// Body encoding: "zstd-json". Reserved: encrypted bodies.
    pub body_encoding: String,
    pub body_sha256: String,
    /// Reserved for encryption: cipher name, or null when not encrypted.
    #[serde(default)]
    pub cipher: Option<String>,
    /// Reserved for encryption: ids of the master keys that wrap the data key.
    #[serde(default)]
    pub key_ids: Vec<String>,
    /// Reserved for encryption: the data key wrapped by each master key.
    #[serde(default)]
    pub wrapped_keys: Vec<serde_json::Value>,
}

/// A pack object of this backup.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PackInfo {
    /// Name under `backups/<id>/data/`.
    pub name: String,
    pub size: u64,
    /// SHA-256 of the whole object, hex.
    pub sha256: String,
}

/// Where a frame lives: (pack, offset, length incl. header, stored hash).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FrameRef {
    pub pack: u32,
    pub offset: u64,
    pub len: u32,
    pub rows: u32,
    pub plain_len: u32,
    /// SHA-256 of the stored payload, hex.
    pub sha256: String,
}

/// One data stream: a table, a slice of one, or the large objects.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    pub id: u32,
    /// The `TableData`/`LargeObjectData` TOC entry it loads.
    pub toc_id: u32,
    /// ctid page range `[start, end)` when the table was split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<(u64, u64)>,
    pub rows: u64,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    /// See `pipeline::StreamDigest`, hex.
    pub plain_sha256: String,
    pub frames: Vec<FrameRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ManifestBody {
    pub source: SourceInfo,
    pub options: CatalogOptions,
    pub toc: Vec<TocEntry>,
    pub packs: Vec<PackInfo>,
    pub streams: Vec<StreamInfo>,
    /// Hash-chained tables dumped in chain order, with their stream heads
    /// (absent in manifests written before chain support).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<ChainRecord>,
}

/// A hash-chained table (policy `[[chain]]`) as a backup dumped it: one
/// stream, never sliced, ordered by `order`, and the head of every stream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChainRecord {
    /// `schema.table`.
    pub table: String,
    /// The data stream holding the table.
    pub stream: u32,
    /// Columns the COPY was ordered by: stream key, seq, hash.
    pub order: Vec<String>,
    /// Per stream, its last event, in stream order.
    pub heads: Vec<ChainHead>,
}

/// The last event of one stream: where a later backup must still find it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChainHead {
    /// Stream key values (text output; null for NULL).
    pub stream: Vec<Option<String>>,
    pub seq: i64,
    /// The stored hash column's text.
    pub hash: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub header: ManifestHeader,
    pub body: ManifestBody,
}

impl Manifest {
    /// Serializes the manifest; fills `body_sha256` and `body_encoding`.
    pub fn encode(&mut self) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(&self.body)
            .map_err(|e| Error::Internal(format!("manifest body serialization: {e}")))?;
        let body = zstd::bulk::compress(&json, 3)
            .map_err(|e| Error::Internal(format!("manifest compression: {e}")))?;
        self.header.body_encoding = "zstd-json".into();
        self.header.body_sha256 = hex::encode(Sha256::digest(&body));
        self.header.format_version = FORMAT_VERSION;
        let header = serde_json::to_vec(&self.header)
            .map_err(|e| Error::Internal(format!("manifest header serialization: {e}")))?;
        let header_len = u32::try_from(header.len())
            .map_err(|_| Error::Internal("manifest header too large".into()))?;
        let mut out = Vec::with_capacity(8 + 4 + 4 + header.len() + 8 + body.len() + 32);
        out.extend_from_slice(&MANIFEST_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&header_len.to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Parses only the public header, after checking the whole object's hash.
    pub fn decode_header(bytes: &[u8], object: &str) -> Result<ManifestHeader> {
        Ok(split(bytes, object)?.0)
    }

    /// Parses and checks the whole manifest.
    pub fn decode(bytes: &[u8], object: &str) -> Result<Manifest> {
        let (header, body) = split(bytes, object)?;
        if hex::encode(Sha256::digest(body)) != header.body_sha256 {
            return Err(Error::integrity(object, "manifest body hash mismatch"));
        }
        if header.body_encoding != "zstd-json" {
            return Err(Error::format(
                object,
                format!(
                    "unsupported manifest body encoding {:?}",
                    header.body_encoding
                ),
            ));
        }
        let json = decompress_limited(body, MAX_BODY_JSON).map_err(|e| {
            Error::integrity(object, format!("manifest body does not decompress: {e}"))
        })?;
        let body: ManifestBody = serde_json::from_slice(&json)
            .map_err(|e| Error::format(object, format!("manifest body: {e}")))?;
        Ok(Manifest { header, body })
    }
}

/// Largest decompressed manifest body accepted (bounds memory on hostile input).
const MAX_BODY_JSON: u64 = 1 << 30;

/// Streams the decompression so memory follows the real size, never a
/// preallocated maximum, and stops at `limit`.
fn decompress_limited(data: &[u8], limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    let n = zstd::stream::read::Decoder::new(data)?
        .take(limit + 1)
        .read_to_end(&mut out)?;
    if n as u64 > limit {
        return Err(std::io::Error::other("manifest body larger than the limit"));
    }
    Ok(out)
}

fn split<'a>(bytes: &'a [u8], object: &str) -> Result<(ManifestHeader, &'a [u8])> {
    if bytes.len() < 8 + 4 + 4 + 8 + 32 {
        return Err(Error::integrity(
            object,
            format!("manifest truncated ({} bytes)", bytes.len()),
        ));
    }
    if bytes[..8] != MANIFEST_MAGIC {
        return Err(Error::format(object, "not a pgkeep manifest (bad magic)"));
    }
    let (content, digest) = bytes.split_at(bytes.len() - 32);
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != FORMAT_VERSION {
        // Check the version before the hash: a newer format may hash differently.
        return Err(Error::UnsupportedVersion {
            object: object.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if Sha256::digest(content).as_slice() != digest {
        return Err(Error::integrity(
            object,
            "manifest checksum mismatch (truncated or corrupted)",
        ));
    }
    let header_len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    if header_len > MAX_HEADER_LEN || 16 + header_len as usize + 8 > content.len() {
        return Err(Error::format(object, "manifest header length out of range"));
    }
    let h_end = 16 + header_len as usize;
    let header: ManifestHeader = serde_json::from_slice(&content[16..h_end])
        .map_err(|e| Error::format(object, format!("manifest header: {e}")))?;
    if header.format_version != version {
        return Err(Error::format(
            object,
            "manifest header version disagrees with the preamble",
        ));
    }
    let mut lb = [0u8; 8];
    lb.copy_from_slice(&content[h_end..h_end + 8]);
    let body_len = u64::from_le_bytes(lb);
    let body = &content[h_end + 8..];
    if body_len > MAX_BODY_LEN || body_len != body.len() as u64 {
        return Err(Error::integrity(object, "manifest body length mismatch"));
    }
    Ok((header, body))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            header: ManifestHeader {
                format_version: FORMAT_VERSION,
                id: "20260101T000000Z-abcd".into(),
                pgkeep_version: "0.1.0".into(),
                started_at: "2026-01-01T00:00:00Z".into(),
                finished_at: "2026-01-01T00:00:01Z".into(),
                duration_ms: 1000,
                source: "postgres://u@h:5432/db".into(),
                server_version: "15.4".into(),
                system_identifier: Some("7".into()),
                database: "db".into(),
                tables: 1,
                rows: 2,
                plain_bytes: 10,
                stored_bytes: 100,
                compression: "zstd:3".into(),
                body_encoding: String::new(),
                body_sha256: String::new(),
                cipher: None,
                key_ids: vec![],
                wrapped_keys: vec![],
            },
            body: ManifestBody {
                source: SourceInfo::default(),
                options: CatalogOptions::default(),
                toc: vec![],
                packs: vec![PackInfo {
                    name: "p0".into(),
                    size: 100,
                    sha256: "00".into(),
                }],
                streams: vec![StreamInfo {
                    id: 0,
                    toc_id: 1,
                    pages: Some((0, 10)),
                    rows: 2,
                    plain_bytes: 10,
                    stored_bytes: 100,
                    plain_sha256: "ab".into(),
                    frames: vec![FrameRef {
                        pack: 0,
                        offset: 0,
                        len: 100,
                        rows: 2,
                        plain_len: 10,
                        sha256: "cd".into(),
                    }],
                }],
                chains: vec![],
            },
        }
    }

    #[test]
    fn round_trip() {
        let mut m = sample();
        let bytes = m.encode().unwrap();
        let d = Manifest::decode(&bytes, "m").unwrap();
        assert_eq!(d, m);
        assert_eq!(Manifest::decode_header(&bytes, "m").unwrap(), m.header);
    }

    #[test]
    fn chain_heads_round_trip_and_old_bodies_still_read() {
        let mut m = sample();
        m.body.chains.push(ChainRecord {
            table: "app.evt".into(),
            stream: 0,
            order: vec!["k".into(), "seq".into(), "hash".into()],
            heads: vec![ChainHead {
                stream: vec![Some("order".into()), None],
                seq: 40,
                hash: "ab".into(),
            }],
        });
        let bytes = m.encode().unwrap();
        assert_eq!(Manifest::decode(&bytes, "m").unwrap(), m);
        let mut json = serde_json::to_value(&sample().body).unwrap();
        json.as_object_mut().unwrap().remove("chains");
        let body: ManifestBody = serde_json::from_value(json).unwrap();
        assert!(body.chains.is_empty());
    }

    #[test]
    fn unknown_version_is_refused_clearly() {
        let mut bytes = sample().encode().unwrap();
        bytes[8] = 9;
        let e = Manifest::decode(&bytes, "m").unwrap_err();
        assert!(
            matches!(e, Error::UnsupportedVersion { found: 9, .. }),
            "{e}"
        );
    }

    proptest! {
        #[test]
        fn any_bit_flip_or_truncation_is_detected(pos in any::<proptest::sample::Index>(), bit in 0u8..8, cut in any::<proptest::sample::Index>()) {
            let bytes = sample().encode().unwrap();
            let mut flipped = bytes.clone();
            let i = pos.index(flipped.len());
            flipped[i] ^= 1 << bit;
            prop_assert!(Manifest::decode(&flipped, "m").is_err());
            let c = cut.index(bytes.len());
            prop_assert!(Manifest::decode(&bytes[..c], "m").is_err());
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Manifest::decode(&bytes, "m");
        }
    }
}
