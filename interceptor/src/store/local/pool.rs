// SPDX-License-Identifier: Apache-2.0
//! The read buffer pool: page-aligned buffers that reads fill and body chunks own.
//!
//! The pool holds a fixed number of buffers of one size, allocated when the store opens (the
//! io_uring engine registers them with its ring as fixed buffers). A read takes a buffer
//! ([`Acquirer::poll_acquire`]), lends it to the engine, and the filled buffer becomes the
//! owner of a body chunk (`Bytes::from_owner`), so the bytes the kernel wrote reach the
//! consumer without a copy. When the consumer drops the chunk, the buffer goes back to the
//! free list and the next waiting read takes it: the pool bounds the read path's memory.
//!
//! Invariants:
//!
//! - **Stable, aligned memory.** A buffer's bytes never move while it lives (a boxed slice,
//!   moved by pointer), and start on a [`PAGE`] boundary with a length that is a multiple of
//!   it, as `O_DIRECT` requires. The ring can therefore hold their addresses for its lifetime.
//! - **A permit per lent buffer.** A semaphore counts the free buffers. A buffer leaves the
//!   free list only together with a permit, and is put back before its permit is released, so
//!   whoever gets a permit finds a buffer.
//! - **Progress over hoarding.** A consumer may keep chunks (collect a whole body, say). A read
//!   that finds the pool empty while nothing of its own is in flight or waiting for its
//!   consumer gets an overflow buffer ([`BufferPool::overflow`]): a fresh allocation owned by
//!   the chunk and freed with it. So every reader makes progress one buffer at a time, and the
//!   memory beyond the pool is what consumers choose to hold, one buffer per waiting reader.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSemaphore;

/// The alignment of every buffer's start and length: a page, which is also a multiple of every
/// common logical block size (512 B, 4 KiB) that `O_DIRECT` needs.
pub(super) const PAGE: usize = 4096;

/// A page-aligned heap buffer of a fixed length.
#[derive(Debug)]
pub(super) struct AlignedBuf {
    /// The allocation: `len + PAGE - 1` bytes, so that an aligned run of `len` fits in it.
    storage: Box<[u8]>,
    /// Where the aligned run starts in `storage`.
    start: usize,
    /// The usable length, a multiple of [`PAGE`].
    len: usize,
    /// The buffer's slot in the pool (and among the ring's fixed buffers); `None` for an
    /// overflow buffer.
    slot: Option<u16>,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes (rounded up to a whole page). The allocator hands out
    /// zeroed pages lazily, so untouched buffers cost address space only.
    pub(super) fn new(len: usize, slot: Option<u16>) -> Self {
        let len = len.div_ceil(PAGE).max(1) * PAGE;
        let storage = vec![0u8; len + PAGE - 1].into_boxed_slice();
        let start = storage.as_ptr().align_offset(PAGE);
        Self {
            storage,
            start,
            len,
            slot,
        }
    }

    /// The usable bytes.
    pub(super) fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    /// The usable bytes, for writing.
    pub(super) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }

    /// The slot among the pool's buffers (the fixed-buffer index in the ring).
    pub(super) fn slot(&self) -> Option<u16> {
        self.slot
    }
}

/// The pool's buffers, shared by every reader.
#[derive(Debug, Clone)]
pub(super) struct BufferPool {
    shared: Arc<PoolShared>,
}

#[derive(Debug)]
struct PoolShared {
    /// Buffers not lent out.
    free: Mutex<Vec<AlignedBuf>>,
    /// One permit per buffer in `free`.
    permits: Arc<Semaphore>,
    /// Buffers in the pool.
    count: usize,
    /// Bytes per buffer.
    buffer_size: usize,
    /// Overflow buffers handed out since the pool was made.
    overflow: AtomicU64,
}

/// What the pool holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPoolStats {
    /// Buffers in the pool.
    pub buffers: usize,
    /// Buffers free (neither in a read nor owned by a body chunk).
    pub free: usize,
    /// Overflow buffers allocated since the store opened (reads that found the pool empty
    /// while their consumer held every buffer they had).
    pub overflow_allocations: u64,
}

impl BufferPool {
    /// A pool of `count` buffers of `buffer_size` bytes (a multiple of [`PAGE`]); at most
    /// `u16::MAX` buffers, the ring's limit on fixed-buffer indexes.
    pub(super) fn new(count: usize, buffer_size: usize) -> Self {
        let count = count.min(usize::from(u16::MAX));
        let free = (0..count)
            .map(|slot| AlignedBuf::new(buffer_size, u16::try_from(slot).ok()))
            .collect();
        Self {
            shared: Arc::new(PoolShared {
                free: Mutex::new(free),
                permits: Arc::new(Semaphore::new(count)),
                count,
                buffer_size,
                overflow: AtomicU64::new(0),
            }),
        }
    }

    /// Bytes per buffer.
    pub(super) fn buffer_size(&self) -> usize {
        self.shared.buffer_size
    }

    /// Buffers in the pool.
    pub(super) fn count(&self) -> usize {
        self.shared.count
    }

    /// A reader's handle for taking buffers as they free up.
    pub(super) fn acquirer(&self) -> Acquirer {
        Acquirer {
            permits: PollSemaphore::new(Arc::clone(&self.shared.permits)),
            shared: Arc::clone(&self.shared),
        }
    }

    /// A fresh buffer outside the pool, for a reader that must progress while the pool is
    /// empty (see the module doc).
    pub(super) fn overflow(&self) -> PooledBuf {
        self.shared.overflow.fetch_add(1, Ordering::Relaxed);
        PooledBuf {
            buf: Some(AlignedBuf::new(self.shared.buffer_size, None)),
            home: None,
            _permit: None,
            filled: 0,
        }
    }

    /// Runs `f` over every free buffer, by slot order, with the free list locked. The io_uring
    /// engine registers them with `f` before any is lent out.
    pub(super) fn with_free_buffers<T>(&self, f: impl FnOnce(&mut [AlignedBuf]) -> T) -> T {
        let mut free = self.shared.lock_free();
        free.sort_by_key(AlignedBuf::slot);
        f(&mut free)
    }

    /// What the pool holds right now.
    pub(super) fn stats(&self) -> ReadPoolStats {
        ReadPoolStats {
            buffers: self.shared.count,
            free: self.shared.permits.available_permits(),
            overflow_allocations: self.shared.overflow.load(Ordering::Relaxed),
        }
    }
}

impl PoolShared {
    fn lock_free(&self) -> std::sync::MutexGuard<'_, Vec<AlignedBuf>> {
        // A panic while holding the lock leaves a valid list (push and pop only).
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One reader's place in the queue for free buffers.
#[derive(Debug)]
pub(super) struct Acquirer {
    permits: PollSemaphore,
    shared: Arc<PoolShared>,
}

impl Acquirer {
    /// A free buffer, or `Pending` (with the waker registered) until one is returned.
    pub(super) fn poll_acquire(&mut self, cx: &mut Context<'_>) -> Poll<PooledBuf> {
        // The semaphore is never closed, so `None` does not happen; it would read as empty.
        let Poll::Ready(Some(permit)) = self.permits.poll_acquire(cx) else {
            return Poll::Pending;
        };
        let buf = self
            .shared
            .lock_free()
            .pop()
            .expect("a buffer is put back before its permit is released");
        Poll::Ready(PooledBuf {
            buf: Some(buf),
            home: Some(Arc::clone(&self.shared)),
            _permit: Some(permit),
            filled: 0,
        })
    }
}

/// A buffer on loan from the pool (or an overflow buffer), with how many of its bytes a read
/// filled. Dropping it returns the buffer to the pool.
///
/// As the owner of a body chunk (`Bytes::from_owner`) it shows the filled bytes.
#[derive(Debug)]
pub(super) struct PooledBuf {
    /// `Some` until dropped.
    buf: Option<AlignedBuf>,
    /// The pool to return to; `None` for an overflow buffer.
    home: Option<Arc<PoolShared>>,
    /// Released after `Drop::drop` put the buffer back (fields drop after it).
    _permit: Option<OwnedSemaphorePermit>,
    /// Bytes at the start of the buffer that hold data.
    filled: usize,
}

impl PooledBuf {
    fn buf(&self) -> &AlignedBuf {
        self.buf.as_ref().expect("present until dropped")
    }

    fn buf_mut(&mut self) -> &mut AlignedBuf {
        self.buf.as_mut().expect("present until dropped")
    }

    /// Bytes filled so far.
    pub(super) fn filled(&self) -> usize {
        self.filled
    }

    /// Records that a read wrote `n` more bytes after the filled ones.
    pub(super) fn advance(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.capacity());
    }

    /// The buffer's length.
    pub(super) fn capacity(&self) -> usize {
        self.buf().len
    }

    /// The unfilled bytes, for a read to write into.
    pub(super) fn unfilled_mut(&mut self) -> &mut [u8] {
        let filled = self.filled;
        &mut self.buf_mut().as_mut_slice()[filled..]
    }

    /// The slot among the pool's buffers, `None` for an overflow buffer.
    pub(super) fn slot(&self) -> Option<u16> {
        self.buf().slot()
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf().as_slice()[..self.filled]
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let (Some(home), Some(buf)) = (&self.home, self.buf.take()) {
            home.lock_free().push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn acquire(acquirer: &mut Acquirer) -> Option<PooledBuf> {
        match acquirer.poll_acquire(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(buf) => Some(buf),
            Poll::Pending => None,
        }
    }

    #[test]
    fn buffers_are_page_aligned_and_whole_pages() {
        let pool = BufferPool::new(3, 10_000);
        let mut acquirer = pool.acquirer();
        let buf = acquire(&mut acquirer).unwrap();
        assert_eq!(buf.capacity() % PAGE, 0);
        assert!(buf.capacity() >= 10_000);
        assert_eq!(buf.buf().as_slice().as_ptr().align_offset(PAGE), 0);
        assert_eq!(pool.overflow().capacity(), buf.capacity());
    }

    #[tokio::test]
    async fn an_empty_pool_makes_readers_wait_until_a_chunk_is_dropped() {
        let pool = BufferPool::new(2, PAGE);
        let mut acquirer = pool.acquirer();
        let mut first = acquire(&mut acquirer).unwrap();
        first.unfilled_mut()[..3].copy_from_slice(b"abc");
        first.advance(3);
        let chunk = bytes::Bytes::from_owner(first);
        assert_eq!(&chunk[..], b"abc");
        let _second = acquire(&mut acquirer).unwrap();
        assert!(acquire(&mut acquirer).is_none(), "the pool is empty");
        assert_eq!(pool.stats().free, 0);
        drop(chunk);
        // The returned buffer goes to the waiting reader.
        let again = acquire(&mut acquirer).unwrap();
        assert_eq!(again.filled(), 0, "a returned buffer starts empty");
    }

    #[test]
    fn overflow_buffers_are_counted_and_never_join_the_pool() {
        let pool = BufferPool::new(1, PAGE);
        drop(pool.overflow());
        let stats = pool.stats();
        assert_eq!(
            (stats.buffers, stats.free, stats.overflow_allocations),
            (1, 1, 1)
        );
    }
}
