//! The manifest: a public header and a body, in one object written last.
//!
//! ```text
//! "PGKEEPM\0" | format version u32 LE | header length u32 LE | header (JSON)
//!             | body length u64 LE | body (zstd JSON) | SHA-256 of all preceding bytes
//! ```
//! The header stays readable without keys (for `list`); the body holds the
//! TOC and the frame index. The trailing hash catches truncation and bit
//! flips anywhere in the object.
//!
//! When the backup is encrypted the body is `nonce (12) | AEAD(zstd JSON)`
//! under the backup's data key, with associated data that includes the
//! whole public header except the fields key management rewrites
//! (`key_ids`, `wrapped_keys`) and the body hash (which covers the sealed
//! bytes). So the header is authenticated: changing its cipher, id, sizes or
//! anything else makes the body fail to open. Each wrapped key authenticates
//! itself (see `crypto::WrappedKey`).

use crate::catalog::rls::RlsTable;
use crate::catalog::{CatalogOptions, SourceInfo, TocEntry};
use crate::crypto::{BackupKey, CipherKind, DataCipher, DataKey, WrappedKey, NONCE_LEN};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

const BODY_PLAIN: &str = "zstd-json";
const BODY_SEALED: &str = "zstd-json+aead";

pub const MANIFEST_MAGIC: [u8; 8] = *b"PGKEEPM\0";
/// The format this version writes, and the ones it reads:
/// - 3: frames of version 2, whose hash covers their header too, and packs
///   with no SHA-256 of their own (each stored byte is hashed once);
/// - 2: frames carry zstd's content checksum and streams no plaintext
///   digest; each pack has a SHA-256 of the whole object;
/// - 1: as 2, but streams carry `plain_sha256` and frames no checksum.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format this version reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// Bounds memory on hostile input.
const MAX_HEADER_LEN: u32 = 1 << 20;
const MAX_BODY_LEN: u64 = 1 << 31;

/// Readable without keys: what `list` shows.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ManifestHeader {
    pub format_version: u32,
    pub id: String,
    /// What was backed up: `postgres` (absent in the JSON, as in every
    /// manifest written before Redis support) or `redis`.
    #[serde(default, skip_serializing_if = "BackupKind::is_postgres")]
    pub kind: BackupKind,
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
    /// Body encoding: "zstd-json", or "zstd-json+aead" when encrypted.
    pub body_encoding: String,
    /// SHA-256 of the body as stored (sealed when encrypted), hex.
    pub body_sha256: String,
    /// The cipher of frames and body, or null when not encrypted.
    #[serde(default)]
    pub cipher: Option<CipherKind>,
    /// Ids of the master keys that wrap the data key (same order as `wrapped_keys`).
    #[serde(default)]
    pub key_ids: Vec<String>,
    /// The data key wrapped to each master key.
    #[serde(default)]
    pub wrapped_keys: Vec<WrappedKey>,
}

/// What a backup holds: the `kind` label of metrics and run records.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    #[default]
    Postgres,
    Redis,
}

impl BackupKind {
    fn is_postgres(&self) -> bool {
        *self == BackupKind::Postgres
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            BackupKind::Postgres => "postgres",
            BackupKind::Redis => "redis",
        }
    }
}

impl ManifestHeader {
    /// `PostgreSQL 15.4` or `Redis 7.0.15`: what the backup came from.
    pub fn server_label(&self) -> String {
        match self.kind {
            BackupKind::Postgres => format!("PostgreSQL {}", self.server_version),
            BackupKind::Redis => format!("Redis {}", self.server_version),
        }
    }

    /// The header as the body's associated data: every field but those key
    /// management rewrites and the hash of the sealed body.
    fn authenticated_bytes(&self) -> Result<Vec<u8>> {
        let mut h = self.clone();
        h.key_ids.clear();
        h.wrapped_keys.clear();
        h.body_sha256.clear();
        let mut aad = b"pgkeep manifest body v1\0".to_vec();
        serde_json::to_writer(&mut aad, &h)
            .map_err(|e| Error::Internal(format!("manifest header serialization: {e}")))?;
        Ok(aad)
    }
}

/// A pack object of this backup.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PackInfo {
    /// Name under `backups/<id>/data/`.
    pub name: String,
    pub size: u64,
    /// SHA-256 of the whole object, hex (formats 1 and 2). Format 3 has
    /// none: its frames tile the pack and each frame's hash covers all of
    /// its bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Where a frame lives: (pack, offset, length incl. header, stored hash).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FrameRef {
    pub pack: u32,
    pub offset: u64,
    pub len: u32,
    pub rows: u32,
    pub plain_len: u32,
    /// SHA-256 of the stored payload.
    pub sha256: Sha256Hex,
}

/// A SHA-256 held as its 32 bytes (a large backup's frame index holds one
/// per frame) and written as 64 hex digits.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Sha256Hex(pub [u8; 32]);

impl std::fmt::Debug for Sha256Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for Sha256Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut hex = [0u8; 64];
        hex::encode_to_slice(self.0, &mut hex).map_err(serde::ser::Error::custom)?;
        s.serialize_str(std::str::from_utf8(&hex).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Sha256Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct HexVisitor;
        impl serde::de::Visitor<'_> for HexVisitor {
            type Value = Sha256Hex;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a SHA-256 as 64 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Sha256Hex, E> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(v, &mut out)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))?;
                Ok(Sha256Hex(out))
            }
        }
        d.deserialize_str(HexVisitor)
    }
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
    /// Format 1: see `pipeline::StreamDigest`, hex. Absent in format 2,
    /// whose frames carry zstd's content checksum instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_sha256: Option<String>,
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
    /// Row-level security of the backed-up tables, as facts a drill
    /// compares the restored copy with (absent in manifests written before
    /// drills).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rls: Option<Vec<RlsTable>>,
    /// A Redis backup's facts (kind `redis`; its one stream is the RDB
    /// file or the scan records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisFacts>,
    /// The roles, tablespaces and database properties the backup's objects
    /// need (absent in manifests written before globals and in Redis
    /// backups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globals: Option<crate::catalog::globals::Globals>,
}

/// How a Redis backup was taken.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RedisMethod {
    /// An RDB snapshot over the replication protocol (point in time).
    Replication,
    /// `SCAN` + `DUMP` + `PTTL` per key: not a point-in-time snapshot.
    Scan,
}

/// What a Redis backup recorded of its server and snapshot.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RedisFacts {
    pub method: RedisMethod,
    /// `redis_version` (or the fork's) from `INFO server`.
    pub server_version: String,
    /// `role` from `INFO replication` (`master`, `slave`).
    pub role: String,
    /// The RDB file's magic (`REDIS`, or another fork's) and version, as
    /// found in its first nine bytes (replication only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdb_magic: Option<String>,
    /// How the server sent the snapshot: `disk` (`$<length>`, from a file
    /// it wrote) or `diskless` (`$EOF:<mark>`, streamed from memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdb_version: Option<u32>,
    /// CRC64 (Jones) of the file, hex; `trailer_crc` the one the file
    /// carries (0 when the server has checksums off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailer_crc: Option<String>,
    /// Keys per database from `INFO keyspace` when the backup started.
    pub keyspace: std::collections::BTreeMap<u32, u64>,
    /// `DEBUG DIGEST` of the dataset, when asked for (`--digest`) and
    /// the same before and after the data was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Of those, keys with an expiry (they may be gone at a restore).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub expires: std::collections::BTreeMap<u32, u64>,
    /// Keys written (scan) or found in the keyspace (replication).
    pub keys: u64,
    /// Bytes of the RDB file (replication) or of the records (scan).
    pub bytes: u64,
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

#[derive(Debug, PartialEq)]
pub struct Manifest {
    pub header: ManifestHeader,
    pub body: ManifestBody,
    /// The backup's keyed cipher when it is encrypted (opened on decode).
    pub key: Option<Arc<BackupKey>>,
}

/// Opens the data key of an encrypted backup from its manifest header
/// (implemented by `keys::Unlock` with the secrets a user supplied). The
/// archive reads manifests through this, so it needs no knowledge of where
/// keys come from.
pub trait KeySource: Send + Sync {
    fn data_key(&self, header: &ManifestHeader, object: &str) -> Result<DataKey>;
}

impl<T: KeySource + ?Sized> KeySource for Arc<T> {
    fn data_key(&self, header: &ManifestHeader, object: &str) -> Result<DataKey> {
        (**self).data_key(header, object)
    }
}

impl Manifest {
    /// Serializes the manifest; fills `body_sha256` and `body_encoding`, and
    /// seals the body when the manifest has a key (the header must already
    /// carry the cipher and wrapped keys).
    pub fn encode(&mut self) -> Result<Vec<u8>> {
        self.encode_version(FORMAT_VERSION)
    }

    fn encode_version(&mut self, version: u32) -> Result<Vec<u8>> {
        self.header.format_version = version;
        let body = match &self.key {
            None => {
                if self.header.cipher.is_some() || !self.header.wrapped_keys.is_empty() {
                    return Err(Error::Internal("cipher set without a key".into()));
                }
                self.header.body_encoding = BODY_PLAIN.into();
                compress_body(&self.body, Vec::new())?
            }
            Some(key) => {
                if self.header.cipher != Some(key.cipher.kind())
                    || self.header.wrapped_keys.is_empty()
                {
                    return Err(Error::Internal(
                        "encrypted manifest without its cipher or wrapped keys".into(),
                    ));
                }
                self.header.body_encoding = BODY_SEALED.into();
                // nonce | ciphertext | tag, sealed where it was compressed.
                let nonce = DataCipher::random_nonce();
                let mut body = compress_body(&self.body, nonce.to_vec())?;
                let tag = key.cipher.seal_detached(
                    &nonce,
                    &self.header.authenticated_bytes()?,
                    &mut body[NONCE_LEN..],
                )?;
                body.extend_from_slice(&tag);
                body
            }
        };
        self.header.key_ids = self
            .header
            .wrapped_keys
            .iter()
            .map(|w| w.key_id.clone())
            .collect();
        self.header.body_sha256 = hex::encode(Sha256::digest(&body));
        assemble(&self.header, &body)
    }

    /// Parses only the public header, after checking the whole object's hash.
    pub fn decode_header(bytes: &[u8], object: &str) -> Result<ManifestHeader> {
        Ok(split(bytes, object)?.0)
    }

    /// Parses and checks the whole manifest; an encrypted body is opened
    /// with the data key `keys` unwraps from the header.
    pub fn decode(bytes: &[u8], object: &str, keys: &dyn KeySource) -> Result<Manifest> {
        let (header, body) = split(bytes, object)?;
        if hex::encode(Sha256::digest(body)) != header.body_sha256 {
            return Err(Error::integrity(object, "manifest body hash mismatch"));
        }
        let (compressed, key) =
            match (header.body_encoding.as_str(), header.cipher) {
                (BODY_PLAIN, None) if header.wrapped_keys.is_empty() => {
                    (std::borrow::Cow::Borrowed(body), None)
                }
                (BODY_SEALED, Some(kind)) => {
                    let data_key = keys.data_key(&header, object)?;
                    let key = BackupKey::new(kind, &data_key, &header.id);
                    if body.len() < NONCE_LEN {
                        return Err(Error::integrity(object, "sealed manifest body truncated"));
                    }
                    let (nonce, sealed) = body.split_at(NONCE_LEN);
                    let nonce: [u8; NONCE_LEN] = nonce
                        .try_into()
                        .map_err(|_| Error::Internal("nonce length".into()))?;
                    let mut plain = sealed.to_vec();
                    key.cipher
                        .open_in_place(&nonce, &header.authenticated_bytes()?, &mut plain)
                        .map_err(|_| {
                            Error::integrity(
                                object,
                                "manifest does not authenticate (header or body tampered)",
                            )
                        })?;
                    (std::borrow::Cow::Owned(plain), Some(Arc::new(key)))
                }
                (BODY_PLAIN | BODY_SEALED, _) => return Err(Error::integrity(
                    object,
                    "manifest header's cipher disagrees with its body encoding (tampered header)",
                )),
                (other, _) => {
                    return Err(Error::format(
                        object,
                        format!("unsupported manifest body encoding {other:?}"),
                    ))
                }
            };
        let body = parse_body(&compressed, MAX_BODY_JSON, object)?;
        // Formats 1 and 2 hash each pack as a whole: the only check of the
        // bytes their frames' hashes leave out.
        if header.format_version < 3 {
            if let Some(p) = body.packs.iter().find(|p| p.sha256.is_none()) {
                return Err(Error::format(
                    object,
                    format!(
                        "pack {} has no SHA-256 (format {})",
                        p.name, header.format_version
                    ),
                ));
            }
        }
        // Format 1 frames have no content checksum: their streams' digest
        // is the only check of what decompression gives back.
        if header.format_version == 1 {
            if let Some(s) = body.streams.iter().find(|s| s.plain_sha256.is_none()) {
                return Err(Error::format(
                    object,
                    format!("stream {} has no plaintext digest (format 1)", s.id),
                ));
            }
        }
        Ok(Manifest { header, body, key })
    }

    /// The frame version the backup's format writes: 2 from format 3 on
    /// (the frame's hash covers its header), 1 before.
    pub fn frame_version(&self) -> u8 {
        if self.header.format_version >= 3 {
            2
        } else {
            1
        }
    }

    /// The largest frame plaintext of the backup (sizes read-ahead).
    pub fn max_frame_plain(&self) -> usize {
        self.body
            .streams
            .iter()
            .flat_map(|s| s.frames.iter().map(|f| f.plain_len as usize))
            .max()
            .unwrap_or(0)
    }

    /// Replaces the wrapped keys of an encoded manifest, leaving every other
    /// byte of header and body as it was (key add, remove, rotate).
    pub fn rewrap(bytes: &[u8], object: &str, wraps: Vec<WrappedKey>) -> Result<Vec<u8>> {
        let (mut header, body) = split(bytes, object)?;
        if header.cipher.is_none() {
            return Err(Error::Internal("rewrap of an unencrypted manifest".into()));
        }
        header.key_ids = wraps.iter().map(|w| w.key_id.clone()).collect();
        header.wrapped_keys = wraps;
        assemble(&header, body)
    }
}

fn assemble(header: &ManifestHeader, body: &[u8]) -> Result<Vec<u8>> {
    let version = header.format_version;
    let header = serde_json::to_vec(header)
        .map_err(|e| Error::Internal(format!("manifest header serialization: {e}")))?;
    let header_len = u32::try_from(header.len())
        .map_err(|_| Error::Internal("manifest header too large".into()))?;
    let mut out = Vec::with_capacity(8 + 4 + 4 + header.len() + 8 + body.len() + 32);
    out.extend_from_slice(&MANIFEST_MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Largest decompressed manifest body accepted (bounds memory on hostile input).
const MAX_BODY_JSON: u64 = 1 << 30;

/// Serializes the body straight into the compressor, after `prefix`, so a
/// large backup's frame index is never held as JSON text as well. The
/// window is kept small: a manifest's JSON repeats itself within a few
/// KiB, and the default window would take 2 MiB more at the backup's end.
fn compress_body(body: &ManifestBody, prefix: Vec<u8>) -> Result<Vec<u8>> {
    let fail = |e: &dyn std::fmt::Display| Error::Internal(format!("manifest body: {e}"));
    let mut encoder = zstd::stream::write::Encoder::new(prefix, 3).map_err(|e| fail(&e))?;
    encoder.window_log(17).map_err(|e| fail(&e))?;
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, encoder);
    serde_json::to_writer(&mut w, body).map_err(|e| fail(&e))?;
    w.into_inner()
        .map_err(|e| fail(e.error()))?
        .finish()
        .map_err(|e| fail(&e))
}

/// Decompresses and parses the body in one pass (memory follows the
/// parsed index, not its JSON text), reading at most `limit` bytes of JSON.
fn parse_body(compressed: &[u8], limit: u64, object: &str) -> Result<ManifestBody> {
    let undecodable = |e: &dyn std::fmt::Display| {
        Error::integrity(object, format!("manifest body does not decompress: {e}"))
    };
    let decoder = zstd::stream::read::Decoder::new(compressed).map_err(|e| undecodable(&e))?;
    let json = std::io::BufReader::with_capacity(
        64 * 1024,
        Limited {
            inner: decoder,
            left: limit,
        },
    );
    serde_json::from_reader(json).map_err(|e| {
        if e.is_io() {
            undecodable(&e)
        } else {
            Error::format(object, format!("manifest body: {e}"))
        }
    })
}

/// A reader that fails once more than `left` bytes have come through.
struct Limited<R> {
    inner: R,
    left: u64,
}

impl<R: std::io::Read> std::io::Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self
            .left
            .checked_sub(n as u64)
            .ok_or_else(|| std::io::Error::other("manifest body larger than the limit"))?;
        Ok(n)
    }
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
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
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
    use crate::keys::Unlock;
    use proptest::prelude::*;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            header: ManifestHeader {
                format_version: FORMAT_VERSION,
                id: "20260101T000000Z-abcd".into(),
                kind: BackupKind::Postgres,
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
                    sha256: None,
                }],
                streams: vec![StreamInfo {
                    id: 0,
                    toc_id: 1,
                    pages: Some((0, 10)),
                    rows: 2,
                    plain_bytes: 10,
                    stored_bytes: 100,
                    plain_sha256: None,
                    frames: vec![FrameRef {
                        pack: 0,
                        offset: 0,
                        len: 100,
                        rows: 2,
                        plain_len: 10,
                        sha256: Sha256Hex([0xcd; 32]),
                    }],
                }],
                chains: vec![],
                rls: None,
                redis: None,
                globals: None,
            },
            key: None,
        }
    }

    #[test]
    fn round_trip() {
        let mut m = sample();
        let bytes = m.encode().unwrap();
        let d = Manifest::decode(&bytes, "m", &Unlock::default()).unwrap();
        assert_eq!(d, m);
        assert_eq!(Manifest::decode_header(&bytes, "m").unwrap(), m.header);
    }

    #[test]
    fn frame_hashes_are_written_as_hex_and_read_only_as_32_bytes() {
        let body = serde_json::to_value(&sample().body).unwrap();
        assert_eq!(body["streams"][0]["frames"][0]["sha256"], "cd".repeat(32));
        for bad in ["cd", "zz".repeat(32).as_str(), &"cd".repeat(33)] {
            let mut json = body.clone();
            json["streams"][0]["frames"][0]["sha256"] = bad.into();
            let e = serde_json::from_value::<ManifestBody>(json)
                .unwrap_err()
                .to_string();
            assert!(e.contains("64 hex digits"), "{e}");
        }
    }

    #[test]
    fn a_large_frame_index_round_trips_through_the_streaming_codec() {
        let mut m = sample();
        let frame = m.body.streams[0].frames[0].clone();
        m.body.streams[0].frames = (0..20_000u32)
            .map(|i| FrameRef {
                offset: u64::from(i) * 100,
                sha256: Sha256Hex([i as u8; 32]),
                ..frame.clone()
            })
            .collect();
        let bytes = m.encode().unwrap();
        let back = Manifest::decode(&bytes, "m", &Unlock::default()).unwrap();
        assert_eq!(back.body, m.body);
        // A body over the JSON limit is refused as damage, not parsed.
        let (_, body) = split(&bytes, "m").unwrap();
        let e = parse_body(body, 1000, "m").unwrap_err().to_string();
        assert!(e.contains("larger than the limit"), "{e}");
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
        assert_eq!(
            Manifest::decode(&bytes, "m", &Unlock::default()).unwrap(),
            m
        );
        let mut json = serde_json::to_value(&sample().body).unwrap();
        json.as_object_mut().unwrap().remove("chains");
        let body: ManifestBody = serde_json::from_value(json).unwrap();
        assert!(body.chains.is_empty());
    }

    /// Encodes `m` as format `version` (tests of older formats).
    pub(crate) fn encode_as(m: &mut Manifest, version: u32) -> Vec<u8> {
        m.encode_version(version).unwrap()
    }

    #[test]
    fn format_1_reads_and_needs_its_stream_digests() {
        let mut m = sample();
        m.body.streams[0].plain_sha256 = Some("ab".into());
        m.body.packs[0].sha256 = Some("00".into());
        let bytes = encode_as(&mut m, 1);
        let back = Manifest::decode(&bytes, "m", &Unlock::default()).unwrap();
        assert_eq!(back.header.format_version, 1);
        assert_eq!(back.body, m.body);
        assert_eq!(back.frame_version(), 1);
        let mut m = sample();
        m.body.packs[0].sha256 = Some("00".into());
        let bytes = encode_as(&mut m, 1);
        let e = Manifest::decode(&bytes, "m", &Unlock::default()).unwrap_err();
        assert!(e.to_string().contains("no plaintext digest"), "{e}");
        // Formats 2 and 3 streams have none.
        let mut m = sample();
        let back = Manifest::decode(&m.encode().unwrap(), "m", &Unlock::default()).unwrap();
        assert_eq!(back.header.format_version, FORMAT_VERSION);
        assert_eq!(back.body.streams[0].plain_sha256, None);
    }

    #[test]
    fn packs_have_a_whole_object_hash_before_format_3_only() {
        // Format 2: every pack hashed as a whole; one without is damage.
        let mut m = sample();
        m.body.packs[0].sha256 = Some("00".into());
        let back = Manifest::decode(&encode_as(&mut m, 2), "m", &Unlock::default()).unwrap();
        assert_eq!(
            (back.frame_version(), back.body.packs[0].sha256.as_deref()),
            (1, Some("00"))
        );
        let mut m = sample();
        let e = Manifest::decode(&encode_as(&mut m, 2), "m", &Unlock::default()).unwrap_err();
        assert!(e.to_string().contains("pack p0 has no SHA-256"), "{e}");
        // Format 3 writes none, and its frames are version 2.
        let mut m = sample();
        let bytes = m.encode().unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("\"sha256\":\"00\""));
        let back = Manifest::decode(&bytes, "m", &Unlock::default()).unwrap();
        assert_eq!(
            (back.frame_version(), back.body.packs[0].sha256.as_deref()),
            (2, None)
        );
    }

    #[test]
    fn unknown_version_is_refused_clearly() {
        let mut bytes = sample().encode().unwrap();
        bytes[8] = 9;
        let e = Manifest::decode(&bytes, "m", &Unlock::default()).unwrap_err();
        assert!(
            matches!(e, Error::UnsupportedVersion { found: 9, .. }),
            "{e}"
        );
    }

    pub(crate) fn raw(byte: u8) -> crate::crypto::SecretInput {
        crate::crypto::SecretInput::Raw(zeroize::Zeroizing::new([byte; 32]))
    }

    /// `sample()` sealed to the master key made from `byte`.
    pub(crate) fn sealed(kind: CipherKind, byte: u8) -> Manifest {
        let mut m = sample();
        let master = raw(byte).derive(None).unwrap();
        let dk = crate::crypto::DataKey::generate();
        m.header.cipher = Some(kind);
        m.header.wrapped_keys =
            vec![WrappedKey::wrap(&dk, master.public(), kind, &m.header.id).unwrap()];
        m.key = Some(Arc::new(BackupKey::new(kind, &dk, &m.header.id)));
        m
    }

    /// Recomputes the trailing checksum, as an attacker who edits bytes would.
    fn fix_checksum(bytes: &mut [u8]) {
        let n = bytes.len() - 32;
        let d = Sha256::digest(&bytes[..n]);
        bytes[n..].copy_from_slice(&d);
    }

    #[test]
    fn sealed_round_trip_needs_the_key_and_hides_the_body() {
        for kind in [CipherKind::Aes256Gcm, CipherKind::ChaCha20Poly1305] {
            let mut m = sealed(kind, 1);
            let bytes = m.encode().unwrap();
            let unlock = Unlock::new(vec![raw(1)]);
            let d = Manifest::decode(&bytes, "m", &unlock).unwrap();
            assert_eq!(d.body, m.body);
            assert_eq!(
                d.header.key_ids,
                vec![m.header.wrapped_keys[0].key_id.clone()]
            );
            let none = Manifest::decode(&bytes, "m", &Unlock::default()).unwrap_err();
            assert!(matches!(none, Error::Key(_)), "{none}");
            let wrong = Manifest::decode(&bytes, "m", &Unlock::new(vec![raw(2)])).unwrap_err();
            assert!(matches!(wrong, Error::Key(_)), "{wrong}");
            // The frame index (a table's pack name) is not readable in the object.
            assert!(!bytes.windows(2).any(|w| w == b"p0"), "body not sealed");
            // The header stays readable without a key.
            assert_eq!(
                Manifest::decode_header(&bytes, "m").unwrap().id,
                m.header.id
            );
        }
    }

    #[test]
    fn tampered_header_fields_fail_authentication_even_with_a_fixed_checksum() {
        let mut m = sealed(CipherKind::Aes256Gcm, 1);
        let bytes = m.encode().unwrap();
        let unlock = Unlock::new(vec![raw(1)]);
        for (from, to) in [
            ("\"rows\":2", "\"rows\":3"),
            ("aes-256-gcm", "chacha20-poly1305"),
            ("\"cipher\":\"aes-256-gcm\"", "\"cipher\":null"),
            ("zstd:3", "zstd:4"),
        ] {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            assert!(text.contains(from), "{from}");
            let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
            let header = std::str::from_utf8(&bytes[16..16 + header_len]).unwrap();
            let new_header = header.replacen(from, to, 1);
            let mut t = bytes[..12].to_vec();
            t.extend_from_slice(&(new_header.len() as u32).to_le_bytes());
            t.extend_from_slice(new_header.as_bytes());
            t.extend_from_slice(&bytes[16 + header_len..]);
            fix_checksum(&mut t);
            let e = Manifest::decode(&t, "m", &unlock).unwrap_err();
            assert!(
                matches!(e, Error::Integrity { .. } | Error::Format { .. }),
                "{from}: {e}"
            );
        }
    }

    #[test]
    fn rewrap_changes_only_the_wraps() {
        let mut m = sealed(CipherKind::ChaCha20Poly1305, 1);
        let bytes = m.encode().unwrap();
        let one = Unlock::new(vec![raw(1)]);
        let d = Manifest::decode(&bytes, "m", &one).unwrap();
        let dk = one.data_key(&d.header, "m").unwrap();
        let two = raw(2).derive(None).unwrap();
        let mut wraps = d.header.wrapped_keys.clone();
        wraps.push(
            WrappedKey::wrap(
                &dk,
                two.public(),
                CipherKind::ChaCha20Poly1305,
                &d.header.id,
            )
            .unwrap(),
        );
        let both = Manifest::rewrap(&bytes, "m", wraps).unwrap();
        let by_two = Manifest::decode(&both, "m", &Unlock::new(vec![raw(2)])).unwrap();
        assert_eq!(by_two.body, m.body);
        let only_two =
            Manifest::rewrap(&both, "m", by_two.header.wrapped_keys[1..].to_vec()).unwrap();
        assert!(Manifest::decode(&only_two, "m", &one).is_err());
        assert!(Manifest::decode(&only_two, "m", &Unlock::new(vec![raw(2)])).is_ok());
    }

    proptest! {
        #[test]
        fn any_bit_flip_or_truncation_is_detected(pos in any::<proptest::sample::Index>(), bit in 0u8..8, cut in any::<proptest::sample::Index>()) {
            let bytes = sample().encode().unwrap();
            let mut flipped = bytes.clone();
            let i = pos.index(flipped.len());
            flipped[i] ^= 1 << bit;
            prop_assert!(Manifest::decode(&flipped, "m", &Unlock::default()).is_err());
            let c = cut.index(bytes.len());
            prop_assert!(Manifest::decode(&bytes[..c], "m", &Unlock::default()).is_err());
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Manifest::decode(&bytes, "m", &Unlock::default());
        }
    }
}
