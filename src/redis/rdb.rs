//! Checks on an RDB file as it streams past, without holding it: the magic
//! and version of its first nine bytes (`REDIS0011`, or another fork's:
//! recorded, never refused for an unknown version), and the CRC64 (Jones
//! polynomial, Redis's) of every byte before the 8-byte trailer, compared
//! with the trailer unless the trailer is zero (checksums off).

use crc::{Crc, Table, CRC_64_REDIS};

static CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

/// The first RDB version that ends with a checksum.
const FIRST_CHECKSUMMED: u32 = 5;
const TRAILER: usize = 8;
const HEADER: usize = 9;

/// What an RDB file turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdbFacts {
    /// `REDIS`, or the leading letters of another fork's magic.
    pub magic: String,
    /// The digits after the magic, when there are any.
    pub version: Option<u32>,
    /// CRC64 of the file up to the trailer (of the whole file when it has
    /// no trailer).
    pub crc64: u64,
    /// The checksum the file carries (None before RDB version 5).
    pub trailer: Option<u64>,
    pub bytes: u64,
}

/// The running check.
pub struct RdbCheck {
    digest: crc::Digest<'static, u64, Table<16>>,
    head: Vec<u8>,
    /// The last bytes seen (up to 8), not yet in the digest: the trailer
    /// once the file ends.
    tail: Vec<u8>,
    bytes: u64,
}

impl std::fmt::Debug for RdbCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdbCheck")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Default for RdbCheck {
    fn default() -> Self {
        RdbCheck::new()
    }
}

impl RdbCheck {
    pub fn new() -> RdbCheck {
        RdbCheck {
            digest: CRC64.digest(),
            head: Vec::with_capacity(HEADER),
            tail: Vec::with_capacity(2 * TRAILER),
            bytes: 0,
        }
    }

    /// Takes the next bytes of the file; fails as soon as its first bytes
    /// cannot be an RDB header.
    pub fn update(&mut self, data: &[u8]) -> Result<(), String> {
        self.bytes += data.len() as u64;
        if self.head.len() < HEADER {
            let take = (HEADER - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
            if !self.head.iter().all(u8::is_ascii_alphanumeric) {
                return Err(format!(
                    "the snapshot does not start with an RDB magic (first bytes {:?})",
                    String::from_utf8_lossy(&self.head)
                ));
            }
        }
        if data.len() >= TRAILER {
            self.digest.update(&self.tail);
            self.tail.clear();
            let (body, last) = data.split_at(data.len() - TRAILER);
            self.digest.update(body);
            self.tail.extend_from_slice(last);
        } else {
            self.tail.extend_from_slice(data);
            if self.tail.len() > TRAILER {
                let spill = self.tail.len() - TRAILER;
                self.digest.update(&self.tail[..spill]);
                self.tail.drain(..spill);
            }
        }
        Ok(())
    }

    /// The file's facts once it ended; an error when it is too short for a
    /// header or its checksum disagrees with its trailer.
    pub fn finish(self) -> Result<RdbFacts, String> {
        if self.head.len() < HEADER {
            return Err(format!(
                "the snapshot is {} bytes, shorter than an RDB header",
                self.bytes
            ));
        }
        let letters = self
            .head
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let magic = String::from_utf8_lossy(&self.head[..letters]).into_owned();
        let version = std::str::from_utf8(&self.head[letters..])
            .ok()
            .and_then(|d| d.parse::<u32>().ok());
        let checksummed = magic != "REDIS" || version.is_none_or(|v| v >= FIRST_CHECKSUMMED);
        let mut digest = self.digest;
        let trailer = if checksummed && self.bytes >= (HEADER + TRAILER) as u64 {
            let mut t = [0u8; TRAILER];
            t.copy_from_slice(&self.tail);
            Some(u64::from_le_bytes(t))
        } else {
            digest.update(&self.tail);
            None
        };
        let crc64 = digest.finalize();
        if let Some(t) = trailer {
            if t != 0 && t != crc64 {
                return Err(format!(
                    "RDB checksum mismatch: the file says {t:016x}, its bytes give {crc64:016x}"
                ));
            }
        }
        Ok(RdbFacts {
            magic,
            version,
            crc64,
            trailer,
            bytes: self.bytes,
        })
    }
}

/// CRC64 of a whole buffer (tests and the restore's re-check).
pub fn crc64(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An RDB-shaped file: header, body, CRC64 trailer.
    fn file(version: &str, body: &[u8], crc: Option<u64>) -> Vec<u8> {
        let mut f = format!("REDIS{version}").into_bytes();
        f.extend_from_slice(body);
        let c = crc.unwrap_or_else(|| crc64(&f));
        f.extend_from_slice(&c.to_le_bytes());
        f
    }

    fn check(data: &[u8], cut: usize) -> Result<RdbFacts, String> {
        let mut c = RdbCheck::new();
        let cut = cut.min(data.len());
        c.update(&data[..cut])?;
        c.update(&data[cut..])?;
        c.finish()
    }

    #[test]
    fn the_crc_is_redis_s() {
        // Redis's own test vector (src/crc64.c).
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    proptest! {
        #[test]
        fn a_good_file_passes_however_it_is_cut(
            body in proptest::collection::vec(any::<u8>(), 0..200),
            cuts in proptest::collection::vec(0usize..220, 1..8),
        ) {
            let f = file("0011", &body, None);
            let mut c = RdbCheck::new();
            let mut pos = 0;
            let mut cuts: Vec<usize> = cuts.into_iter().map(|x| x.min(f.len())).collect();
            cuts.sort_unstable();
            for x in cuts.into_iter().chain([f.len()]) {
                c.update(&f[pos..x]).unwrap();
                pos = x;
            }
            let facts = c.finish().unwrap();
            prop_assert_eq!(facts.magic, "REDIS");
            prop_assert_eq!(facts.version, Some(11));
            prop_assert_eq!(Some(facts.crc64), facts.trailer);
            prop_assert_eq!(facts.bytes, f.len() as u64);
        }

        #[test]
        fn a_flipped_byte_is_caught(
            body in proptest::collection::vec(any::<u8>(), 1..200),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut f = file("0011", &body, None);
            let i = 9 + at.index(body.len());
            f[i] ^= 1 << bit;
            prop_assert!(check(&f, i).unwrap_err().contains("checksum mismatch"));
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64), cut in 0usize..64) {
            let _ = check(&b, cut);
        }
    }

    #[test]
    fn zero_trailer_old_versions_and_other_forks() {
        let off = file("0011", b"body", Some(0));
        assert_eq!(check(&off, 3).unwrap().trailer, Some(0));
        // Version 4 has no trailer: everything is body.
        let mut old = b"REDIS0004".to_vec();
        old.extend_from_slice(b"\xfe\x00\xff");
        let facts = check(&old, 5).unwrap();
        assert_eq!((facts.trailer, facts.crc64), (None, crc64(&old)));
        // Another fork's magic is recorded, its checksum still checked.
        let mut valkey = b"VALKEY080".to_vec();
        valkey.extend_from_slice(b"data");
        let c = crc64(&valkey);
        valkey.extend_from_slice(&c.to_le_bytes());
        let facts = check(&valkey, 2).unwrap();
        assert_eq!((facts.magic.as_str(), facts.version), ("VALKEY", Some(80)));
        assert!(check(b"REDIS", 2).unwrap_err().contains("shorter"));
        assert!(check(b"-ERR no\r\n", 2).unwrap_err().contains("magic"));
    }
}
