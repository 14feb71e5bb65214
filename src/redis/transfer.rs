//! The reply to `SYNC`/`PSYNC` without I/O: newlines the server sends as
//! keepalives while it prepares the snapshot, an optional `+FULLRESYNC`
//! line, then the payload's preamble, `$<length>` or, for a diskless
//! transfer, `$EOF:<40-byte mark>` with the same mark after the last byte
//! ([`EofScanner`] strips it).

use super::resp::{line, MAX_LINE};

/// The length of the end mark of a diskless transfer.
pub const EOF_MARK_LEN: usize = 40;

/// How the payload's end is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Preamble {
    /// The payload is this many bytes.
    Length(u64),
    /// The payload ends with this mark (not part of the file).
    Eof([u8; EOF_MARK_LEN]),
}

/// What the start of a `SYNC` reply held so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// More bytes are needed.
    More,
    /// Keepalives or a status line: skip this many bytes and look again.
    Skip(usize),
    /// The payload starts after this many bytes.
    Payload(Preamble, usize),
    /// The server refused (its error line).
    Refused(String),
}

/// Reads the next step from the start of `buf`.
pub fn next_step(buf: &[u8]) -> Result<Step, String> {
    let Some(&first) = buf.first() else {
        return Ok(Step::More);
    };
    if first == b'\n' {
        let n = buf.iter().take_while(|&&b| b == b'\n').count();
        return Ok(Step::Skip(n));
    }
    let Some((text, used)) = line(buf)? else {
        return Ok(Step::More);
    };
    match first {
        b'-' => Ok(Step::Refused(
            String::from_utf8_lossy(&text[1..]).into_owned(),
        )),
        // +FULLRESYNC <replid> <offset> (PSYNC), +CONTINUE never comes for `?`.
        b'+' => Ok(Step::Skip(used)),
        b'$' => {
            let rest = &text[1..];
            if let Some(mark) = rest.strip_prefix(b"EOF:") {
                let mark: [u8; EOF_MARK_LEN] = mark.try_into().map_err(|_| {
                    format!(
                        "diskless transfer mark of {} bytes (expected {EOF_MARK_LEN})",
                        mark.len()
                    )
                })?;
                return Ok(Step::Payload(Preamble::Eof(mark), used));
            }
            let n = std::str::from_utf8(rest)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| {
                    format!(
                        "bad snapshot length {:?}",
                        String::from_utf8_lossy(&rest[..rest.len().min(40)])
                    )
                })?;
            Ok(Step::Payload(Preamble::Length(n), used))
        }
        other => Err(format!(
            "unexpected byte 0x{other:02x} before the snapshot (a line of at most {MAX_LINE} bytes was expected)"
        )),
    }
}

/// Strips the end mark of a diskless transfer from the bytes as they come:
/// holds back the last [`EOF_MARK_LEN`] bytes until more arrive, and stops
/// when the bytes seen end with the mark.
#[derive(Debug)]
pub struct EofScanner {
    mark: [u8; EOF_MARK_LEN],
    tail: Vec<u8>,
    done: bool,
}

impl EofScanner {
    pub fn new(mark: [u8; EOF_MARK_LEN]) -> EofScanner {
        EofScanner {
            mark,
            tail: Vec::with_capacity(EOF_MARK_LEN),
            done: false,
        }
    }

    /// Takes the next bytes received; returns the payload bytes now known
    /// not to be part of the mark. After the mark, [`EofScanner::done`] is
    /// true: bytes after it (the replication stream of an older server)
    /// are not payload, and further calls are an error.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        if self.done {
            return if data.is_empty() {
                Ok(Vec::new())
            } else {
                Err("bytes after the end of the snapshot".into())
            };
        }
        let mut all = std::mem::take(&mut self.tail);
        all.extend_from_slice(data);
        // Anywhere in what came, not only at its end: a server without
        // `rdb-only` (before 7.0) goes on with the replication stream,
        // which may arrive in the same read as the mark (and is dropped).
        if let Some(at) = memchr::memmem::find(&all, &self.mark) {
            self.done = true;
            all.truncate(at);
            return Ok(all);
        }
        let keep = all.len().min(EOF_MARK_LEN);
        self.tail = all.split_off(all.len() - keep);
        Ok(all)
    }

    pub fn done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn preambles_and_keepalives() {
        assert_eq!(next_step(b"").unwrap(), Step::More);
        assert_eq!(next_step(b"\n\n\n$").unwrap(), Step::Skip(3));
        assert_eq!(next_step(b"$12").unwrap(), Step::More);
        assert_eq!(
            next_step(b"$12\r\nREDIS").unwrap(),
            Step::Payload(Preamble::Length(12), 5)
        );
        assert_eq!(
            next_step(b"+FULLRESYNC abc 0\r\n$1\r\n").unwrap(),
            Step::Skip(19)
        );
        let mark = [b'a'; 40];
        let pre = format!("$EOF:{}\r\n", "a".repeat(40));
        assert_eq!(
            next_step(pre.as_bytes()).unwrap(),
            Step::Payload(Preamble::Eof(mark), 47)
        );
        assert_eq!(
            next_step(b"-NOPERM this user has no permissions\r\n").unwrap(),
            Step::Refused("NOPERM this user has no permissions".into())
        );
        assert!(next_step(b"$EOF:short\r\n").is_err());
        assert!(next_step(b"$-5\r\n").is_err());
        assert!(next_step(b"x\r\n").is_err());
    }

    proptest! {
        /// However the bytes are cut into reads, the payload comes out
        /// exactly, without the mark.
        #[test]
        fn the_mark_is_stripped_across_any_cuts(
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            cuts in proptest::collection::vec(0usize..400, 0..10),
        ) {
            let mark = *b"0123456789abcdef0123456789abcdef01234567";
            let mut wire = payload.clone();
            wire.extend_from_slice(&mark);
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= wire.len()).collect();
            cuts.push(0);
            cuts.push(wire.len());
            cuts.sort_unstable();
            let mut s = EofScanner::new(mark);
            let mut out = Vec::new();
            for w in cuts.windows(2) {
                out.extend(s.push(&wire[w[0]..w[1]]).unwrap());
            }
            prop_assert!(s.done());
            prop_assert_eq!(out, payload);
        }

        /// Bytes after the mark (an older server's replication stream) are
        /// not part of the file, however they arrive.
        #[test]
        fn bytes_after_the_mark_are_dropped(
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            after in proptest::collection::vec(any::<u8>(), 1..50),
            cut in 0usize..300,
        ) {
            let mark = *b"0123456789abcdef0123456789abcdef01234567";
            let mut wire = payload.clone();
            wire.extend_from_slice(&mark);
            wire.extend_from_slice(&after);
            let cut = cut.min(wire.len());
            let mut s = EofScanner::new(mark);
            let mut out = s.push(&wire[..cut]).unwrap();
            if !s.done() {
                out.extend(s.push(&wire[cut..]).unwrap());
            }
            prop_assert!(s.done());
            prop_assert_eq!(out, payload);
        }

        #[test]
        fn steps_never_panic(b in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(Step::Skip(n) | Step::Payload(_, n)) = next_step(&b) {
                prop_assert!(n <= b.len() && n > 0);
            }
        }
    }
}
