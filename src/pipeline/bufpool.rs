//! Reusable frame-sized buffers. Every frame passes through two or three
//! buffers of a few MiB (plaintext, compressed and sealed, decoded); taking
//! them from a pool instead of the allocator saves the page faults and
//! zeroing of a fresh mapping per frame (glibc maps blocks this large
//! directly), and makes the process's footprint a function of how many
//! buffers the budget lets be in flight, not of how long the run is.
//!
//! A buffer goes back to its pool when dropped, also when it was handed on
//! as [`Bytes`] (for instance to the decoder of a restore) and the last clone of
//! those bytes is dropped. The pool keeps at most `max_free` idle buffers and
//! frees the rest, so it never holds more than the budget planned for.

use bytes::Bytes;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A pool of buffers of one capacity class. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct BufferPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    capacity: usize,
    max_free: usize,
    free: Mutex<Vec<Vec<u8>>>,
    /// Fresh allocations made so far (reuses not counted).
    allocated: AtomicUsize,
}

impl BufferPool {
    /// Buffers of at least `capacity` bytes; at most `max_free` kept idle.
    pub fn new(capacity: usize, max_free: usize) -> BufferPool {
        BufferPool {
            inner: Arc::new(Inner {
                capacity,
                max_free,
                free: Mutex::new(Vec::new()),
                allocated: AtomicUsize::new(0),
            }),
        }
    }

    /// A pool that keeps nothing: every buffer is a plain allocation (tests,
    /// one-off work).
    pub fn unpooled() -> BufferPool {
        BufferPool::new(0, 0)
    }

    /// The capacity every pooled buffer has.
    pub fn buffer_capacity(&self) -> usize {
        self.inner.capacity
    }

    /// An empty buffer with room for at least `len` bytes, reused when one is
    /// idle. A request larger than the pool's class gets its own allocation,
    /// which is not kept afterwards.
    pub fn take(&self, len: usize) -> PooledBuf {
        let reused = if len <= self.inner.capacity {
            self.inner.free.lock().ok().and_then(|mut f| f.pop())
        } else {
            None
        };
        let vec = reused.unwrap_or_else(|| {
            self.inner.allocated.fetch_add(1, Ordering::Relaxed);
            Vec::with_capacity(len.max(self.inner.capacity))
        });
        PooledBuf {
            vec,
            pool: Some(self.inner.clone()),
        }
    }

    /// Buffers allocated so far: with reuse working, about the most that
    /// were ever in use at once, however many frames went through.
    pub fn allocated(&self) -> usize {
        self.inner.allocated.load(Ordering::Relaxed)
    }

    /// Idle buffers held right now.
    pub fn idle(&self) -> usize {
        self.inner.free.lock().map(|f| f.len()).unwrap_or(0)
    }
}

impl Inner {
    fn give_back(&self, mut vec: Vec<u8>) {
        // Only buffers of this class come back: a larger one (a rare
        // oversized request) would make the pool's footprint unpredictable.
        if vec.capacity() < self.capacity || vec.capacity() > 2 * self.capacity {
            return;
        }
        if let Ok(mut free) = self.free.lock() {
            if free.len() < self.max_free {
                vec.clear();
                free.push(vec);
            }
        }
    }
}

/// A buffer on loan from a [`BufferPool`]; derefs to `Vec<u8>`.
#[derive(Debug)]
pub struct PooledBuf {
    vec: Vec<u8>,
    pool: Option<Arc<Inner>>,
}

impl PooledBuf {
    /// Hands the bytes on without a copy; the buffer returns to its pool when
    /// the last clone of the `Bytes` is dropped.
    pub fn freeze(self) -> Bytes {
        if self.vec.is_empty() {
            return Bytes::new();
        }
        Bytes::from_owner(self)
    }
}

impl Deref for PooledBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.vec
    }
}

impl DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.vec
    }
}

impl AsMut<Vec<u8>> for PooledBuf {
    fn as_mut(&mut self) -> &mut Vec<u8> {
        &mut self.vec
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        &self.vec
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give_back(std::mem::take(&mut self.vec));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_after_their_bytes_are_dropped() {
        let pool = BufferPool::new(1024, 2);
        let mut a = pool.take(100);
        a.extend_from_slice(b"hello");
        let ptr = a.as_ptr();
        let bytes = a.freeze();
        let clone = bytes.slice(1..3);
        drop(bytes);
        assert_eq!(pool.idle(), 0, "a clone still holds the buffer");
        assert_eq!(&clone[..], b"el");
        drop(clone);
        assert_eq!(pool.idle(), 1);
        let b = pool.take(1024);
        assert!(b.is_empty(), "a reused buffer starts empty");
        assert_eq!(b.as_ptr(), ptr, "the same allocation came back");
        assert_eq!(pool.allocated(), 1);
    }

    #[test]
    fn the_pool_keeps_at_most_max_free_and_only_its_class() {
        let pool = BufferPool::new(64, 2);
        let bufs: Vec<_> = (0..4).map(|_| pool.take(10)).collect();
        drop(bufs);
        assert_eq!(pool.idle(), 2);
        let big = pool.take(1000);
        assert!(big.capacity() >= 1000);
        drop(big);
        assert_eq!(pool.idle(), 2, "an oversized buffer is not kept");
        let unpooled = BufferPool::unpooled();
        drop(unpooled.take(10));
        assert_eq!(unpooled.idle(), 0);
    }

    #[test]
    fn an_empty_buffer_freezes_to_empty_bytes() {
        let pool = BufferPool::new(64, 1);
        assert!(pool.take(0).freeze().is_empty());
        assert_eq!(pool.idle(), 1);
    }
}
