//! The stream of a scan-method Redis backup: a magic, then one record per
//! key, each whole in itself so the stream can be cut into frames anywhere.
//!
//! ```text
//! stream  := "PKREDIS1" record*
//! record  := db u32 LE | key length u32 LE | key | expire_at_ms i64 LE (-1: none)
//!            | payload length u32 LE | payload (the `DUMP` of the key)
//! ```
//! [`RecordReader`] takes the bytes in any cuts and gives the records back;
//! a record longer than a Redis bulk string is refused, so hostile bytes
//! cannot make it allocate without bound.

use super::resp::MAX_BULK;

pub const MAGIC: &[u8; 8] = b"PKREDIS1";

/// Now as Unix milliseconds (the clock of `expire_at_ms`).
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// One key as `DUMP` gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub db: u32,
    pub key: Vec<u8>,
    /// Unix time in milliseconds when the key expires, or -1.
    pub expire_at_ms: i64,
    /// The `DUMP` payload (value, RDB version, CRC64).
    pub payload: Vec<u8>,
}

impl Record {
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode(self.db, &self.key, self.expire_at_ms, &self.payload, out);
    }
}

/// Appends one record made of borrowed parts (the scan writes a `DUMP`
/// reply straight in, without a [`Record`] copy of it).
pub fn encode(db: u32, key: &[u8], expire_at_ms: i64, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(key.len() + payload.len() + 20);
    out.extend_from_slice(&db.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&expire_at_ms.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Records back from the stream's bytes, cut anywhere.
#[derive(Debug, Default)]
pub struct RecordReader {
    buf: Vec<u8>,
    pos: usize,
    magic_seen: bool,
}

impl RecordReader {
    pub fn new() -> RecordReader {
        RecordReader::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > (1 << 20) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn length(&self, at: usize) -> Result<Option<usize>, String> {
        let Some(b) = self.buf.get(at..at + 4) else {
            return Ok(None);
        };
        let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if n > MAX_BULK {
            return Err(format!("a record field of {n} bytes (at most {MAX_BULK})"));
        }
        Ok(Some(n))
    }

    /// The next whole record, `Ok(None)` when more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Record>, String> {
        if !self.magic_seen {
            match self.buf.get(self.pos..self.pos + MAGIC.len()) {
                None => return Ok(None),
                Some(m) if m == MAGIC => {
                    self.pos += MAGIC.len();
                    self.magic_seen = true;
                }
                Some(_) => return Err("not a pgkeep Redis scan stream (bad magic)".into()),
            }
        }
        let start = self.pos;
        let Some(key_len) = self.length(start + 4)? else {
            return Ok(None);
        };
        let Some(payload_len) = self.length(start + 8 + key_len + 8)? else {
            return Ok(None);
        };
        if self.buf.len() < start + 8 + key_len + 12 + payload_len {
            return Ok(None);
        }
        let u32_at = |r: &mut Self| {
            r.take(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0)
        };
        let db = u32_at(self);
        let _ = u32_at(self);
        let key = self.take(key_len).map(<[u8]>::to_vec).unwrap_or_default();
        let expire_at_ms = self
            .take(8)
            .map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                i64::from_le_bytes(a)
            })
            .unwrap_or(-1);
        let _ = u32_at(self);
        let payload = self
            .take(payload_len)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        Ok(Some(Record {
            db,
            key,
            expire_at_ms,
            payload,
        }))
    }

    /// Whether the stream ended cleanly: no partial record left.
    pub fn finish(&self) -> Result<(), String> {
        if !self.magic_seen {
            return Err("the scan stream is empty (no magic)".into());
        }
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(format!(
                "the scan stream ends inside a record ({n} bytes left)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            0u32..16,
            proptest::collection::vec(any::<u8>(), 0..40),
            any::<i64>(),
            proptest::collection::vec(any::<u8>(), 0..80),
        )
            .prop_map(|(db, key, expire_at_ms, payload)| Record {
                db,
                key,
                expire_at_ms,
                payload,
            })
    }

    proptest! {
        #[test]
        fn records_come_back_however_the_stream_is_cut(
            records in proptest::collection::vec(arb_record(), 0..20),
            step in 1usize..50,
        ) {
            let mut wire = MAGIC.to_vec();
            for r in &records {
                r.encode(&mut wire);
            }
            let mut reader = RecordReader::new();
            let mut out = Vec::new();
            for chunk in wire.chunks(step) {
                reader.push(chunk);
                while let Some(r) = reader.next_record().unwrap() {
                    out.push(r);
                }
            }
            reader.finish().unwrap();
            prop_assert_eq!(out, records);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut reader = RecordReader::new();
            reader.push(MAGIC);
            reader.push(&b);
            while let Ok(Some(_)) = reader.next_record() {}
            let _ = reader.finish();
        }
    }

    #[test]
    fn truncation_and_bad_magic_are_errors() {
        let mut wire = MAGIC.to_vec();
        Record {
            db: 1,
            key: b"k".to_vec(),
            expire_at_ms: -1,
            payload: b"v".to_vec(),
        }
        .encode(&mut wire);
        let mut r = RecordReader::new();
        r.push(&wire[..wire.len() - 1]);
        assert_eq!(r.next_record().unwrap(), None);
        assert!(r.finish().unwrap_err().contains("inside a record"));
        let mut r = RecordReader::new();
        r.push(b"NOTMAGIC");
        assert!(r.next_record().is_err());
    }
}
