//! RESP2, the Redis wire protocol, without I/O: commands encoded as arrays
//! of bulk strings, replies parsed from a buffer that may hold less than a
//! whole reply (then the parser asks for more). Sizes and nesting are
//! bounded, so hostile bytes cost neither unbounded memory nor recursion.

use bytes::Bytes;

/// The largest bulk string accepted (Redis's own `proto-max-bulk-len`
/// default).
pub const MAX_BULK: usize = 512 << 20;
/// The most elements of an array reply accepted.
const MAX_ARRAY: usize = 1 << 20;
/// Nested arrays deeper than this are refused.
const MAX_DEPTH: usize = 8;
/// A line (status, error, integer, length) longer than this is refused.
pub const MAX_LINE: usize = 64 << 10;

/// One reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Bytes>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text (status or bulk), if it is one.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// Encodes a command as RESP: an array of bulk strings.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses one reply from the start of `buf`: `Ok(None)` when more bytes
/// are needed, else the reply and the bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    parse_at(buf, 0)
}

/// A line ending in CRLF from the start of `buf`: its text and the bytes
/// it took, or `None` when incomplete.
pub fn line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, String> {
    match memchr::memchr(b'\n', buf) {
        Some(n) if n > 0 && buf[n - 1] == b'\r' => Ok(Some((&buf[..n - 1], n + 1))),
        Some(_) => Err("a line does not end in CRLF".into()),
        None if buf.len() > MAX_LINE => Err(format!("a line longer than {MAX_LINE} bytes")),
        None => Ok(None),
    }
}

fn number(text: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| format!("{:?} is not a number", String::from_utf8_lossy(text)))
}

fn parse_at(buf: &[u8], depth: usize) -> Result<Option<(Reply, usize)>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("arrays nested deeper than {MAX_DEPTH}"));
    }
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    let Some((text, used)) = line(&buf[1..])? else {
        return Ok(None);
    };
    let head = used + 1;
    let text_string = || String::from_utf8_lossy(text).into_owned();
    match kind {
        b'+' => Ok(Some((Reply::Status(text_string()), head))),
        b'-' => Ok(Some((Reply::Error(text_string()), head))),
        b':' => Ok(Some((Reply::Int(number(text)?), head))),
        b'$' => {
            let n = number(text)?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), head)));
            }
            let n = usize::try_from(n).map_err(|_| "bulk length out of range".to_string())?;
            if n > MAX_BULK {
                return Err(format!("a bulk string of {n} bytes (at most {MAX_BULK})"));
            }
            let end = head + n;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err("a bulk string does not end in CRLF".into());
            }
            let data = Bytes::copy_from_slice(&buf[head..end]);
            Ok(Some((Reply::Bulk(Some(data)), end + 2)))
        }
        b'*' => {
            let n = number(text)?;
            if n < 0 {
                return Ok(Some((Reply::Array(None), head)));
            }
            let n = usize::try_from(n).map_err(|_| "array length out of range".to_string())?;
            if n > MAX_ARRAY {
                return Err(format!("an array of {n} elements (at most {MAX_ARRAY})"));
            }
            let mut items = Vec::with_capacity(n.min(1024));
            let mut pos = head;
            for _ in 0..n {
                match parse_at(&buf[pos..], depth + 1)? {
                    Some((r, used)) => {
                        items.push(r);
                        pos += used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), pos)))
        }
        other => Err(format!("unexpected reply type byte 0x{other:02x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_reply() -> impl Strategy<Value = Reply> {
        let leaf = prop_oneof![
            "[a-zA-Z0-9 ]{0,20}".prop_map(Reply::Status),
            "[a-zA-Z0-9 ]{0,20}".prop_map(Reply::Error),
            any::<i64>().prop_map(Reply::Int),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..100))
                .prop_map(|b| Reply::Bulk(b.map(Bytes::from))),
        ];
        leaf.prop_recursive(3, 20, 5, |inner| {
            proptest::option::of(proptest::collection::vec(inner, 0..5)).prop_map(Reply::Array)
        })
    }

    fn write(r: &Reply, out: &mut Vec<u8>) {
        match r {
            Reply::Status(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
            Reply::Error(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
            Reply::Int(i) => out.extend_from_slice(format!(":{i}\r\n").as_bytes()),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(b)) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(None) => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(Some(items)) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for i in items {
                    write(i, out);
                }
            }
        }
    }

    proptest! {
        /// Every reply parses back whole, and every strict prefix asks for
        /// more bytes instead of yielding a wrong reply.
        #[test]
        fn replies_round_trip_and_prefixes_wait(r in arb_reply()) {
            let mut bytes = Vec::new();
            write(&r, &mut bytes);
            prop_assert_eq!(parse(&bytes).unwrap(), Some((r, bytes.len())));
            for cut in 0..bytes.len() {
                prop_assert_eq!(parse(&bytes[..cut]).unwrap(), None);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_never_overrun(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(Some((_, used))) = parse(&b) {
                prop_assert!(used <= b.len());
            }
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&[b"REPLCONF", b"capa", b"eof"], &mut out);
        assert_eq!(out, b"*3\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n");
    }

    #[test]
    fn hostile_lengths_are_refused() {
        assert!(parse(b"$999999999999\r\n").is_err());
        assert!(parse(b"*99999999\r\n").is_err());
        assert!(parse(b"$3\r\nabcXY").is_err());
        assert!(parse(b"?x\r\n").is_err());
        let deep = "*1\r\n".repeat(20);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
