//! The COPY text format as `COPY ... TO STDOUT` writes it: rows end with
//! `\n`, fields are separated by tabs, `\N` is NULL, and backslash escapes
//! stand for special bytes. This module owns cutting a byte stream (in
//! chunks that may split a row anywhere) into rows, a row into fields, and
//! unescaping a field back to the value's text output (what `::text` gives).
//! Nothing else: what the fields mean is the verifier's business.

use crate::error::{Error, Result};

/// Cuts a chunked byte stream into complete rows. Holds at most one partial
/// row, so memory follows the longest row, not the stream.
#[derive(Default)]
pub struct RowSplitter {
    pending: Vec<u8>,
}

impl RowSplitter {
    pub fn new() -> RowSplitter {
        RowSplitter::default()
    }

    /// Calls `row` for every row completed by `chunk` (without its `\n`).
    pub fn feed(&mut self, chunk: &[u8], mut row: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let mut rest = chunk;
        if !self.pending.is_empty() {
            match memchr::memchr(b'\n', rest) {
                None => {
                    self.pending.extend_from_slice(rest);
                    return Ok(());
                }
                Some(i) => {
                    self.pending.extend_from_slice(&rest[..i]);
                    let line = std::mem::take(&mut self.pending);
                    row(&line)?;
                    // Keep the allocation for the next partial row.
                    self.pending = line;
                    self.pending.clear();
                    rest = &rest[i + 1..];
                }
            }
        }
        while let Some(i) = memchr::memchr(b'\n', rest) {
            row(&rest[..i])?;
            rest = &rest[i + 1..];
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// Ends the stream: an unterminated last row is an error.
    pub fn finish(&self) -> Result<()> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(Error::format(
                "COPY data",
                format!(
                    "stream ends inside a row ({} bytes after the last newline)",
                    self.pending.len()
                ),
            ))
        }
    }
}

/// A row cut into fields, with the fields the caller asked for unescaped
/// into one reusable buffer.
#[derive(Default)]
pub struct Fields {
    /// Raw field boundaries of the current row.
    raw: Vec<(usize, usize)>,
    buf: Vec<u8>,
    /// Per column: `None` when NULL or not wanted, else a range of `buf`.
    values: Vec<Option<(usize, usize)>>,
}

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Splits `row` into exactly `ncols` fields and unescapes those with
    /// `wanted[i]`. A wrong field count or a bad escape is a format error.
    pub fn parse(&mut self, row: &[u8], wanted: &[bool]) -> Result<()> {
        self.raw.clear();
        let mut start = 0;
        for i in memchr::memchr_iter(b'\t', row) {
            self.raw.push((start, i));
            start = i + 1;
        }
        self.raw.push((start, row.len()));
        if self.raw.len() != wanted.len() {
            return Err(Error::format(
                "COPY data",
                format!(
                    "row has {} fields, expected {}",
                    self.raw.len(),
                    wanted.len()
                ),
            ));
        }
        self.buf.clear();
        self.values.clear();
        for (i, &(s, e)) in self.raw.iter().enumerate() {
            let field = &row[s..e];
            if !wanted[i] || field == b"\\N" {
                self.values.push(None);
                continue;
            }
            let from = self.buf.len();
            unescape_into(field, &mut self.buf)?;
            self.values.push(Some((from, self.buf.len())));
        }
        Ok(())
    }

    /// Column `i`'s text, or `None` for NULL (or a column not wanted).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.values
            .get(i)
            .copied()
            .flatten()
            .map(|(s, e)| &self.buf[s..e])
    }
}

/// Appends the unescaped text of one (non-NULL) field to `out`, following
/// PostgreSQL's COPY FROM rules: `\b \f \n \r \t \v`, octal `\ooo`, hex
/// `\xhh`, and any other escaped byte stands for itself.
pub fn unescape_into(field: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let mut rest = field;
    while let Some(i) = memchr::memchr(b'\\', rest) {
        out.extend_from_slice(&rest[..i]);
        let Some(&c) = rest.get(i + 1) else {
            return Err(Error::format(
                "COPY data",
                "field ends with a lone backslash",
            ));
        };
        let mut used = 2;
        match c {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                while used < 4 {
                    match rest.get(i + used) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            used += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => match rest.get(i + 2).and_then(|&d| hex_val(d)) {
                Some(h) => {
                    let mut v = h;
                    used = 3;
                    if let Some(l) = rest.get(i + 3).and_then(|&d| hex_val(d)) {
                        v = v * 16 + l;
                        used = 4;
                    }
                    out.push(v);
                }
                None => out.push(b'x'),
            },
            other => out.push(other),
        }
        rest = &rest[i + used..];
    }
    out.extend_from_slice(rest);
    Ok(())
}

fn hex_val(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

/// Appends a value the way `COPY ... TO` writes it (the inverse of
/// [`unescape_into`] for what COPY TO produces). Used by tests.
#[cfg(test)]
pub(crate) fn escape_into(value: Option<&[u8]>, out: &mut Vec<u8>) {
    let Some(v) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for &b in v {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0b => out.extend_from_slice(b"\\v"),
            other => out.push(other),
        }
    }
}

/// A whole row of values as COPY TO writes it, newline included.
#[cfg(test)]
pub(crate) fn encode_row(values: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        escape_into(v.as_deref(), &mut out);
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows_of(chunks: &[&[u8]], ncols: usize) -> Result<Vec<Vec<Option<Vec<u8>>>>> {
        let wanted = vec![true; ncols];
        let mut s = RowSplitter::new();
        let mut f = Fields::new();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |row| {
                f.parse(row, &wanted)?;
                out.push((0..ncols).map(|i| f.get(i).map(<[u8]>::to_vec)).collect());
                Ok(())
            })?;
        }
        s.finish()?;
        Ok(out)
    }

    #[test]
    fn escapes_and_nulls() {
        let data = b"a\\tb\t\\N\t\\\\N\t\\101\\x41\\x4g\\q\n";
        let rows = rows_of(&[data], 4).unwrap();
        assert_eq!(
            rows,
            vec![vec![
                Some(b"a\tb".to_vec()),
                None,
                Some(b"\\N".to_vec()),
                Some(b"AA\x04gq".to_vec()),
            ]]
        );
    }

    #[test]
    fn bad_input_is_a_format_error() {
        assert!(rows_of(&[b"a\tb\n"], 3).is_err());
        assert!(rows_of(&[b"a\\\n"], 1).is_err());
        assert!(rows_of(&[b"a\nb"], 1).is_err(), "unterminated last row");
        assert_eq!(rows_of(&[b""], 1).unwrap().len(), 0);
    }

    /// `data` cut at arbitrary points.
    pub(crate) fn cut<'a>(data: &'a [u8], cuts: &[proptest::sample::Index]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        at.extend([0, data.len()]);
        at.sort_unstable();
        at.windows(2).map(|w| &data[w[0]..w[1]]).collect()
    }

    fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
        prop_oneof![
            1 => Just(None),
            6 => proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(b'\\'), Just(b'\t'), Just(b'\n'), Just(b'N')],
                0..12
            )
            .prop_map(Some),
        ]
    }

    proptest! {
        #[test]
        fn escape_round_trip(rows in proptest::collection::vec(proptest::collection::vec(value(), 3), 0..20)) {
            let data: Vec<u8> = rows.iter().flat_map(|r| encode_row(r)).collect();
            prop_assert_eq!(rows_of(&[&data], 3).unwrap(), rows);
        }

        #[test]
        fn any_chunking_gives_the_same_rows(
            rows in proptest::collection::vec(proptest::collection::vec(value(), 2), 1..20),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..10),
        ) {
            let data: Vec<u8> = rows.iter().flat_map(|r| encode_row(r)).collect();
            let chunks = cut(&data, &cuts);
            prop_assert_eq!(rows_of(&chunks, 2).unwrap(), rows);
        }

        #[test]
        fn unescape_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut out = Vec::new();
            let _ = unescape_into(&bytes, &mut out);
        }
    }
}
