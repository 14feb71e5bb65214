//! Backend messages as they arrive on the socket: where the next whole
//! message ends in a read buffer, `CopyData` payloads as slices of that
//! buffer (no allocation per row), and everything else parsed by
//! `postgres-protocol`. Also the text of a server's `ErrorResponse`.
//! Pure functions over bytes: no I/O, so the fuzz target and property tests
//! drive them directly.

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::{ErrorFields, Message};

/// The largest message accepted: a `CopyData` row of the server's largest
/// allocation (1 GB) and its header. A larger length is a broken stream,
/// not a row to buffer.
pub const MAX_MESSAGE: usize = (1 << 30) + 64;

/// The tag of a `CopyData` message.
pub const COPY_DATA: u8 = b'd';

/// Where the next message of a buffer lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub tag: u8,
    /// Bytes of the whole message: tag, length and body.
    pub total: usize,
}

impl Span {
    /// The body's range in the buffer the span was read from.
    pub fn body(&self) -> std::ops::Range<usize> {
        5..self.total
    }
}

/// A stream that breaks the protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("message length {0} out of range")]
    Length(u64),
    #[error("malformed {0} message: {1}")]
    Malformed(char, String),
}

/// The next message of `buf`: `Ok(None)` while its header or body is still
/// incomplete (read more), with the total length known once the header is
/// in (see [`needed`]).
pub fn next_span(buf: &[u8]) -> Result<Option<Span>, ProtocolError> {
    let Some(total) = needed(buf)? else {
        return Ok(None);
    };
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(Span { tag: buf[0], total }))
}

/// Bytes the next message needs in all, once its 5-byte header is in.
pub fn needed(buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
    let Some(header) = buf.get(..5) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if !(4..=MAX_MESSAGE).contains(&len) {
        return Err(ProtocolError::Length(len as u64));
    }
    Ok(Some(len + 1))
}

/// Parses one whole message other than `CopyData` (`bytes` holds exactly
/// the span).
pub fn parse(bytes: BytesMut) -> Result<Message, ProtocolError> {
    let tag = bytes.first().copied().unwrap_or(b'?') as char;
    let mut bytes = bytes;
    match Message::parse(&mut bytes) {
        Ok(Some(m)) if bytes.is_empty() => Ok(m),
        Ok(Some(_)) => Err(ProtocolError::Malformed(tag, "trailing bytes".into())),
        Ok(None) => Err(ProtocolError::Malformed(tag, "truncated".into())),
        Err(e) => Err(ProtocolError::Malformed(tag, e.to_string())),
    }
}

/// A server's `ErrorResponse` (or `NoticeResponse`): the fields a user can
/// act on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerError {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl ServerError {
    /// Reads the fields of an error or notice body.
    pub fn from_fields(mut fields: ErrorFields<'_>) -> Result<ServerError, ProtocolError> {
        let mut e = ServerError::default();
        let bad = |err: std::io::Error| ProtocolError::Malformed('E', err.to_string());
        while let Some(f) = fields.next().map_err(bad)? {
            let value = String::from_utf8_lossy(f.value_bytes()).into_owned();
            match f.type_() {
                b'V' => e.severity = value,
                b'S' if e.severity.is_empty() => e.severity = value,
                b'C' => e.code = value,
                b'M' => e.message = value,
                b'D' => e.detail = Some(value),
                b'H' => e.hint = Some(value),
                _ => {}
            }
        }
        Ok(e)
    }
}

/// The same one-line text as a driver error's (`describe_pg`).
impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} (SQLSTATE {})",
            self.severity, self.message, self.code
        )?;
        if let Some(d) = &self.detail {
            write!(f, "; detail: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; hint: {h}")?;
        }
        Ok(())
    }
}

/// The row count of a `COPY n` command tag.
pub fn copy_rows(tag: &str) -> Option<u64> {
    tag.strip_prefix("COPY ")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn spans_wait_for_whole_messages() {
        let m = message(COPY_DATA, b"1\tone\n");
        for cut in 0..m.len() {
            assert_eq!(next_span(&m[..cut]), Ok(None), "cut at {cut}");
        }
        let s = next_span(&m).unwrap().unwrap();
        assert_eq!((s.tag, s.total), (COPY_DATA, m.len()));
        assert_eq!(&m[s.body()], b"1\tone\n");
        assert_eq!(needed(&m[..5]), Ok(Some(m.len())));
    }

    #[test]
    fn impossible_lengths_are_errors() {
        assert_eq!(
            next_span(&[b'd', 0, 0, 0, 3]),
            Err(ProtocolError::Length(3))
        );
        assert!(next_span(&[b'd', 0x7f, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn error_fields_become_one_line() {
        let body = b"SERROR\0VERROR\0C55P03\0Mcould not obtain lock\0Dheld by 42\0Hretry\0\0";
        let m = message(b'E', body);
        let Message::ErrorResponse(b) = parse(BytesMut::from(&m[..])).unwrap() else {
            panic!("not an error response");
        };
        let e = ServerError::from_fields(b.fields()).unwrap();
        assert_eq!(e.code, "55P03");
        assert_eq!(
            e.to_string(),
            "ERROR: could not obtain lock (SQLSTATE 55P03); detail: held by 42; hint: retry"
        );
    }

    #[test]
    fn copy_tags_give_their_counts() {
        assert_eq!(copy_rows("COPY 42"), Some(42));
        assert_eq!(copy_rows("COPY"), None);
        assert_eq!(copy_rows("SELECT 1"), None);
    }

    proptest! {
        /// Any bytes: a span never reaches past the buffer, and parsing a
        /// span's bytes never panics.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(Some(s)) = next_span(&bytes) {
                prop_assert!(s.total <= bytes.len() && s.total >= 5);
                let _ = parse(BytesMut::from(&bytes[..s.total]));
            }
        }

        /// A run of CopyData messages split anywhere comes back as the same
        /// rows, in order.
        #[test]
        fn copy_rows_survive_any_split(
            rows in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..20),
            cut in any::<prop::sample::Index>(),
        ) {
            let wire: Vec<u8> = rows.iter().flat_map(|r| message(COPY_DATA, r)).collect();
            let cut = cut.index(wire.len() + 1);
            let mut buf: Vec<u8> = wire[..cut].to_vec();
            let mut rest = &wire[cut..];
            let mut got = Vec::new();
            loop {
                match next_span(&buf).unwrap() {
                    Some(s) => {
                        got.push(buf[s.body()].to_vec());
                        buf.drain(..s.total);
                    }
                    None if rest.is_empty() => break,
                    None => {
                        buf.extend_from_slice(rest);
                        rest = &[];
                    }
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, rows);
        }
    }
}
