//! The memory budget: one number (`--memory`) from which every in-flight
//! buffer is sized, so peak memory does not grow with the database.
//!
//! Per worker the backup holds: one frame being filled, `encode_ahead`
//! frames being compressed (plaintext + compressed copy each), and the pack
//! writer's multipart buffer (`part_size × (upload_concurrency + 1)`).
//! Restore holds, per worker, `read_ahead` reads in flight and the read
//! being decoded, three frames of plaintext and, when encrypted, the frames
//! being opened (see [`Budget::read_plan`]). Both size their buffers from the budget
//! less [`PROCESS_RESERVE`], so that `--memory` bounds the process.

use super::codec::frame_buffer_capacity;
use crate::error::{Error, Result};
use crate::units::{format_size, MAX_PARTS, MIB, MIN_PART_SIZE};

/// The largest ranged read restore and verify make: fewer requests per GB,
/// and small enough that a read finishes well within a request timeout.
pub const MAX_READ: usize = 8 * MIB;
/// The largest frame the budget sizes (`--frame-size` is clamped to it).
pub const MAX_FRAME_SIZE: usize = 32 * MIB;
/// The largest request a restore or verify sends: one ranged read of up to
/// [`MAX_READ`], or a single frame when frames are larger. Sizes remote
/// request timeouts of the read-side commands.
pub const MAX_READ_REQUEST: usize = if MAX_FRAME_SIZE > MAX_READ {
    MAX_FRAME_SIZE
} else {
    MAX_READ
};
/// What a process needs beside its frame buffers, held back from the
/// budget (at most 3/8 of it) by [`Budget::new`] for the backup's buffers,
/// as far as each job keeps its minimum, and by [`Budget::read_plan`] for
/// reads: code, runtime,
/// connections and allocator slack. Measured: a restore's peak RSS was
/// 15-25 MiB above the peak of its heap (43 MB of buffers under massif,
/// 57-71 MiB RSS at `--memory 64MiB`); with 16 MiB held back it still
/// reached 72 MiB, so the reserve is the upper end (docs/benchmarks.md).
pub const PROCESS_RESERVE: usize = 24 * MIB;
/// Frames of one stream being decoded at once by a restore or verify
/// worker (each on a blocking thread).
pub const DECODE_AHEAD: usize = 2;
/// Parallel workers (connections) of backup, restore and verify unless told otherwise.
pub const DEFAULT_JOBS: usize = 2;
/// The memory budget of backup, restore and verify unless told otherwise.
pub const DEFAULT_MEMORY: usize = 64 * MIB;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub total: usize,
    pub jobs: usize,
    pub frame_size: usize,
    pub encode_ahead: usize,
    pub part_size: usize,
    pub upload_concurrency: usize,
}

impl Budget {
    /// Sizes the pipeline for `total` bytes across `jobs` workers.
    /// `frame_size` overrides the derived frame size when given.
    pub fn new(total: usize, jobs: usize, frame_size: Option<usize>) -> Result<Budget> {
        if jobs == 0 {
            return Err(Error::Config("jobs must be at least 1".into()));
        }
        let share = total / jobs;
        // frame + 2 encoding (×2 for compressed copies) + part×2 ≈ 5 frames + 2 parts
        let min_share = 2 * MIN_PART_SIZE + 5 * 256 * 1024;
        if share < min_share {
            return Err(Error::Config(format!(
                "a memory budget of {} is too small for {jobs} jobs: each job needs at least {} (memory: at least {})",
                format_size(total as u64),
                format_size(min_share as u64),
                format_size((min_share * jobs) as u64)
            )));
        }
        // Buffers share the budget less the process's reserve, as far as
        // every job keeps its minimum: the budget bounds the process.
        let share = total
            .saturating_sub(PROCESS_RESERVE.min(total / 8 * 3))
            .max(min_share * jobs)
            / jobs;
        let derived = ((share - 2 * MIN_PART_SIZE) / 5).clamp(256 * 1024, 4 * MIB);
        let frame_size = frame_size
            .unwrap_or(derived)
            .clamp(4 * 1024, MAX_FRAME_SIZE);
        let encode_ahead = 2;
        let leftover = share.saturating_sub(frame_size * (1 + 2 * encode_ahead));
        // Parts: as big as the share allows (fewer requests), at least S3's minimum.
        let part_size = (leftover / 2).clamp(MIN_PART_SIZE, 64 * MIB);
        let upload_concurrency = (leftover / part_size).saturating_sub(1).clamp(1, 4);
        Ok(Budget {
            total,
            jobs,
            frame_size,
            encode_ahead,
            part_size,
            upload_concurrency,
        })
    }

    /// How a restore or verify worker reads a backup written with frames of
    /// at most `max_frame` plaintext bytes: (reads in flight, stored bytes
    /// per read). A worker holds its reads in flight, the read being
    /// decoded, three frames of plaintext (two decoding, one being loaded)
    /// and, when the frames are `sealed`, the [`DECODE_AHEAD`] stored frames
    /// being opened (decrypted out of the read they came in). Reads are as
    /// large as the rest of its share allows, up to [`MAX_READ`], and at
    /// least one frame. The shares split the budget less
    /// [`PROCESS_RESERVE`], so that the budget bounds the process.
    pub fn read_plan(&self, max_frame: usize, sealed: bool) -> (usize, u64) {
        let max_frame = max_frame.max(64 * 1024);
        let share = self.read_share();
        let opening = if sealed {
            DECODE_AHEAD * frame_buffer_capacity(max_frame)
        } else {
            0
        };
        let left = share.saturating_sub(3 * max_frame + opening);
        // Alive at once: the reads in flight and the one being decoded.
        let read_ahead = if left >= 3 * MAX_READ.max(max_frame) {
            2
        } else {
            1
        };
        let max_read = (left / (read_ahead + 1)).min(MAX_READ).max(max_frame);
        (read_ahead, max_read as u64)
    }

    /// A reading worker's share: the budget less the process's reserve,
    /// split between the workers.
    fn read_share(&self) -> usize {
        self.total
            .saturating_sub(PROCESS_RESERVE.min(self.total / 8 * 3))
            / self.jobs
    }

    /// The same budget with a given part size (at least [`MIN_PART_SIZE`]),
    /// as long as a worker's parts still fit its share.
    pub fn with_part_size(mut self, part_size: usize) -> Result<Budget> {
        let share = self.total / self.jobs;
        let leftover = share.saturating_sub(self.frame_size * (1 + 2 * self.encode_ahead));
        if part_size < MIN_PART_SIZE || 2 * part_size > leftover {
            return Err(Error::Config(format!(
                "part size {} does not fit: parts must be at least {} and two must fit in a job's share of the memory budget ({} left after frames)",
                format_size(part_size as u64),
                format_size(MIN_PART_SIZE as u64),
                format_size(leftover as u64)
            )));
        }
        self.part_size = part_size;
        self.upload_concurrency = (leftover / part_size).saturating_sub(1).clamp(1, 4);
        Ok(self)
    }

    /// Checks that an object of up to `max_object` bytes fits in
    /// [`MAX_PARTS`] parts of `part_size` (every part but the last is
    /// exactly `part_size`), with guidance when it does not.
    pub fn check_object_size(&self, max_object: u64) -> Result<()> {
        let parts = max_object.div_ceil(self.part_size as u64);
        if parts > MAX_PARTS {
            let need = max_object.div_ceil(MAX_PARTS);
            return Err(Error::Config(format!(
                "pack objects of up to {} need parts of at least {} to stay within {MAX_PARTS} parts, but the memory budget gives {} parts: raise the memory budget or lower the pack size",
                format_size(max_object),
                format_size(need),
                format_size(self.part_size as u64)
            )));
        }
        Ok(())
    }

    /// Bytes a backup worker may hold at once, by this sizing.
    pub fn backup_worker_bytes(&self) -> usize {
        self.frame_size * (1 + 2 * self.encode_ahead)
            + self.part_size * (self.upload_concurrency + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_fits_the_budget() {
        let b = Budget::new(64 * MIB, 2, None).unwrap();
        assert!(b.backup_worker_bytes() * b.jobs <= b.total, "{b:?}");
        assert!(b.part_size >= MIN_PART_SIZE);
    }

    #[test]
    fn restore_reads_fit_the_budget() {
        let b = Budget::new(64 * MIB, 2, None).unwrap();
        let share = (64 * MIB - PROCESS_RESERVE) / 2;
        let (ahead, read) = b.read_plan(4 * MIB, false);
        assert_eq!((ahead, read as usize), (1, 4 * MIB));
        // The read in flight, the one being decoded, three frames of
        // plaintext: within the share left after the process's reserve.
        assert!(
            (ahead + 1) * read as usize + 3 * 4 * MIB <= share,
            "{ahead} x {read}"
        );
        // Sealed frames are opened out of their read into a buffer of
        // their own: two of them take room from the reads.
        let frame = 2 * MIB;
        let opening = DECODE_AHEAD * frame_buffer_capacity(frame);
        let (ahead, read) = b.read_plan(frame, true);
        assert_eq!(ahead, 1);
        assert!(
            (ahead + 1) * read as usize + 3 * frame + opening <= share,
            "{ahead} x {read}"
        );
        assert!(read < b.read_plan(frame, false).1, "{read}");
    }

    #[test]
    fn default_packs_fit_the_part_limit() {
        let b = Budget::new(16 * MIB, 1, None).unwrap();
        assert_eq!(b.part_size, MIN_PART_SIZE);
        assert!(b.check_object_size((1 << 30) + 5 * MIB as u64).is_ok());
        assert!(b
            .check_object_size(MAX_PARTS * MIN_PART_SIZE as u64)
            .is_ok());
        let e = b
            .check_object_size(MAX_PARTS * MIN_PART_SIZE as u64 + 1)
            .unwrap_err();
        assert!(e.to_string().contains("raise the memory budget"), "{e}");
    }

    #[test]
    fn too_small_is_an_error() {
        assert!(Budget::new(8 * MIB, 4, None).is_err());
        // A budget below a MiB is named as it was given, not as "0 MiB".
        let e = Budget::new(1024, 2, None).unwrap_err().to_string();
        assert!(e.contains("1 KiB") && !e.contains(" 0 MiB"), "{e}");
    }

    #[test]
    fn zero_jobs_is_an_error() {
        let e = Budget::new(64 * MIB, 0, None).unwrap_err().to_string();
        assert!(e.contains("jobs must be at least 1"), "{e}");
    }

    proptest! {
        #[test]
        fn budget_is_respected(total_mib in 1usize..4096, jobs in 1usize..16) {
            if let Ok(b) = Budget::new(total_mib * MIB, jobs, None) {
                prop_assert!(b.backup_worker_bytes() * b.jobs <= b.total + b.jobs * MIB, "{:?}", b);
                prop_assert!(b.part_size >= MIN_PART_SIZE);
            }
        }

        #[test]
        fn reads_fit_the_share(total_mib in 16usize..4096, jobs in 1usize..16, frame_kib in 64usize..32768, sealed: bool) {
            if let Ok(b) = Budget::new(total_mib * MIB, jobs, None) {
                let frame = frame_kib * 1024;
                let (ahead, read) = b.read_plan(frame, sealed);
                let read = read as usize;
                let opening = if sealed { DECODE_AHEAD * frame_buffer_capacity(frame) } else { 0 };
                prop_assert!((1..=2).contains(&ahead));
                prop_assert!(read >= frame && read <= MAX_READ.max(frame));
                // Within the share whenever the share holds a read, three
                // frames and the frames being opened at all.
                if b.read_share() >= 5 * frame + opening {
                    prop_assert!((ahead + 1) * read + 3 * frame + opening <= b.read_share(), "{:?} {} {}", b, ahead, read);
                }
                prop_assert!(b.read_share() * b.jobs + PROCESS_RESERVE.min(b.total / 8 * 3) <= b.total);
            }
        }
    }
}
