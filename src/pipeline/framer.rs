//! Cuts a COPY text stream, delivered one row at a time, into plaintext
//! frames of at most `frame_size` bytes. Frames end at row boundaries when
//! rows fit; a row larger than a frame is split across frames, so memory
//! never depends on row size.

use super::bufpool::{BufferPool, PooledBuf};
use bytes::Bytes;

/// A frame's plaintext before encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainFrame {
    pub data: Bytes,
    /// Rows that end inside this frame.
    pub rows: u32,
    /// The frame ends exactly at the end of a row.
    pub row_boundary: bool,
    /// The last frame of its stream (always emitted by [`Framer::finish`]).
    pub last: bool,
}

pub struct Framer {
    frame_size: usize,
    pool: BufferPool,
    /// The frame being filled: one pooled buffer of at least `frame_size`,
    /// never regrown (no copies on growth) and never shared with the next
    /// frame.
    buf: Option<PooledBuf>,
    rows: u32,
    total_rows: u64,
}

impl Framer {
    /// Frames of at most `frame_size` bytes, filled in buffers from `pool`.
    pub fn new(frame_size: usize, pool: BufferPool) -> Framer {
        Framer {
            frame_size: frame_size.max(64),
            pool,
            buf: None,
            rows: 0,
            total_rows: 0,
        }
    }

    /// Appends one row (COPY text, ending in `\n`); completed frames are
    /// pushed to `out`. A row larger than a frame completes several at
    /// once: callers that must bound memory whatever the row size use
    /// [`Framer::feed_row`].
    pub fn push_row(&mut self, row: &[u8], out: &mut Vec<PlainFrame>) {
        let mut pos = 0;
        while !self.feed_row(row, &mut pos, out) {}
    }

    /// Appends one row from byte `pos` on, stopping as soon as a frame is
    /// complete: at most one frame is pushed to `out` per call, so the
    /// caller can hand it on (and wait for room) before the framer fills
    /// the next buffer. Returns true once the whole row is in; call again
    /// with the same `pos` until then.
    pub fn feed_row(&mut self, row: &[u8], pos: &mut usize, out: &mut Vec<PlainFrame>) -> bool {
        if *pos == 0 && self.pending() > 0 && self.would_emit(row.len()) {
            self.emit(true, out);
            return false;
        }
        let rest = &row[(*pos).min(row.len())..];
        let take = rest.len().min(self.frame_size - self.pending());
        self.extend(&rest[..take]);
        *pos += take;
        if *pos >= row.len() {
            self.rows += 1;
            self.total_rows += 1;
            return true;
        }
        self.emit(false, out);
        false
    }

    /// Appends bytes without counting a row; frames that fill up on the way
    /// are emitted as not ending at a row boundary.
    pub fn push_bytes(&mut self, bytes: &[u8], out: &mut Vec<PlainFrame>) {
        let mut pos = 0;
        while !self.feed_bytes(bytes, &mut pos, out) {}
    }

    /// Appends bytes from `pos` on without counting a row (a byte stream
    /// such as an RDB file: frames are filled to the brim), stopping as soon
    /// as a frame is complete, like [`Framer::feed_row`]. Returns true once
    /// every byte is in.
    pub fn feed_bytes(&mut self, bytes: &[u8], pos: &mut usize, out: &mut Vec<PlainFrame>) -> bool {
        let rest = &bytes[(*pos).min(bytes.len())..];
        if !rest.is_empty() && self.pending() == self.frame_size {
            self.emit(false, out);
            return false;
        }
        let take = rest.len().min(self.frame_size - self.pending());
        self.extend(&rest[..take]);
        *pos += take;
        *pos >= bytes.len()
    }

    fn extend(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let (pool, size) = (&self.pool, self.frame_size);
        self.buf
            .get_or_insert_with(|| pool.take(size))
            .extend_from_slice(bytes);
    }

    /// Flushes what is left as the stream's last frame (possibly empty); the
    /// framer is empty afterwards.
    pub fn finish(&mut self) -> PlainFrame {
        PlainFrame {
            data: self.take_data(),
            rows: std::mem::take(&mut self.rows),
            row_boundary: true,
            last: true,
        }
    }

    /// Whether pushing a row of `len` bytes completes at least one frame.
    pub fn would_emit(&self, len: usize) -> bool {
        self.pending() + len > self.frame_size
    }

    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    /// Bytes buffered and not yet emitted.
    pub fn pending(&self) -> usize {
        self.buf.as_ref().map_or(0, |b| b.len())
    }

    fn take_data(&mut self) -> Bytes {
        self.buf.take().map(PooledBuf::freeze).unwrap_or_default()
    }

    fn emit(&mut self, row_boundary: bool, out: &mut Vec<PlainFrame>) {
        out.push(PlainFrame {
            data: self.take_data(),
            rows: std::mem::take(&mut self.rows),
            row_boundary,
            last: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame_all(rows: &[Vec<u8>], size: usize) -> Vec<PlainFrame> {
        let mut f = Framer::new(size, BufferPool::new(size, 2));
        let mut out = Vec::new();
        for r in rows {
            let (before, predicted) = (out.len(), f.would_emit(r.len()));
            f.push_row(r, &mut out);
            assert_eq!(predicted, out.len() > before, "would_emit mispredicted");
        }
        out.push(f.finish());
        out
    }

    proptest! {
        #[test]
        fn frames_concatenate_to_input_and_respect_size(
            rows in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..60),
            size in 64usize..512,
        ) {
            let frames = frame_all(&rows, size);
            let joined: Vec<u8> = frames.iter().flat_map(|f| f.data.iter().copied()).collect();
            let expected: Vec<u8> = rows.iter().flatten().copied().collect();
            prop_assert_eq!(joined, expected);
            prop_assert!(frames.iter().all(|f| f.data.len() <= size));
            prop_assert_eq!(frames.iter().map(|f| u64::from(f.rows)).sum::<u64>(), rows.len() as u64);
            prop_assert!(frames.last().unwrap().last);
            prop_assert_eq!(frames.iter().filter(|f| f.last).count(), 1);
            // Row boundaries are truthful: a boundary frame ends where a row ends.
            let mut ends = std::collections::BTreeSet::new();
            let mut pos = 0usize;
            for r in &rows { pos += r.len(); ends.insert(pos); }
            let mut off = 0usize;
            for f in &frames {
                off += f.data.len();
                if f.row_boundary && off > 0 { prop_assert!(ends.contains(&off)); }
            }
        }
    }

    proptest! {
        #[test]
        fn fed_bytes_fill_frames_to_the_brim(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..700), 0..30),
            size in 64usize..512,
        ) {
            let mut f = Framer::new(size, BufferPool::new(size, 2));
            let mut out = Vec::new();
            for c in &chunks {
                let mut pos = 0;
                loop {
                    let before = out.len();
                    let done = f.feed_bytes(c, &mut pos, &mut out);
                    prop_assert!(out.len() - before <= 1);
                    if done { break; }
                }
            }
            out.push(f.finish());
            let joined: Vec<u8> = out.iter().flat_map(|f| f.data.iter().copied()).collect();
            prop_assert_eq!(joined, chunks.concat());
            // Every frame but the last is full; no rows are counted.
            prop_assert!(out[..out.len() - 1].iter().all(|f| f.data.len() == size));
            prop_assert!(out.iter().all(|f| f.rows == 0));
        }
    }

    #[test]
    fn feeding_a_huge_row_completes_one_frame_at_a_time() {
        let mut f = Framer::new(100, BufferPool::new(100, 2));
        let mut out = Vec::new();
        f.push_row(b"a\n", &mut out);
        let row = vec![b'x'; 1000];
        let (mut pos, mut calls) = (0, 0);
        loop {
            let before = out.len();
            let done = f.feed_row(&row, &mut pos, &mut out);
            assert!(out.len() - before <= 1, "one frame per call at most");
            calls += 1;
            if done {
                break;
            }
        }
        // The pending "a\n" frame, then nine full frames; the last 100 bytes stay pending.
        assert_eq!(out.len(), 10);
        assert!(calls >= 10);
        assert_eq!(f.pending(), 100);
        assert_eq!(f.total_rows(), 2);
    }

    #[test]
    fn huge_row_spans_frames() {
        let row = vec![b'x'; 1000];
        let frames = frame_all(&[b"a\n".to_vec(), row, b"b\n".to_vec()], 300);
        assert_eq!(frames[0].data.as_ref(), b"a\n");
        assert!(frames[0].row_boundary);
        assert!(!frames[1].row_boundary);
        assert_eq!(frames[1].rows, 0);
        assert!(frames.iter().all(|f| f.data.len() <= 300));
    }
}
