//! Buffers for the blocks fetched from the server. Each is page-aligned so that the disk tier
//! can hand it to the disk with direct I/O, without the kernel copying it into the page cache
//! first (see `disk`), and is never zeroed, since every byte of it is written before it is
//! read. A full buffer becomes the block's `Bytes` without a copy.
//!
//! A buffer let go of is kept for the next block of its size, a few at most (`POOL_BUFFERS`,
//! the oldest given back first): a cold read lets go of a block (evicted from the memory cache)
//! for every block it fetches, and page-aligned allocations freed to the C allocator come back
//! fragmented: without the pool a cold read of 1 GiB touched a quarter to a half more fresh
//! pages (a page fault and a zeroed page each).
use std::alloc::{self, Layout};
use std::collections::VecDeque;
use std::ptr::NonNull;

use bytes::Bytes;

use crate::sync::Mutex;

/// Alignment of block buffers: a page, which is also what direct I/O asks of a buffer on
/// any disk (512 or 4096 bytes).
pub(crate) const ALIGN: usize = 4096;

/// Buffers kept for reuse, across the process: enough for the blocks a few streams let go of
/// at once, little next to the memory cache.
const POOL_BUFFERS: usize = 8;

/// Allocations let go of, oldest first, kept for reuse.
static POOL: Mutex<VecDeque<Allocation>> = Mutex::new(VecDeque::new());

/// An allocation of `layout` at `ptr`, owned by whoever holds it. It has no `Drop`: it is
/// handed to the pool or freed explicitly.
struct Allocation {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: an `Allocation` is plain owned memory, like a `Box<[u8]>`.
unsafe impl Send for Allocation {}
// SAFETY: as above; a shared `Allocation` gives no way to write through it.
unsafe impl Sync for Allocation {}

impl Allocation {
    /// A new allocation of `layout`, which has a non-zero size.
    fn new(layout: Layout) -> Self {
        // SAFETY: `layout` has a non-zero size (`BlockBuf::with_capacity`).
        let ptr = unsafe { alloc::alloc(layout) };
        match NonNull::new(ptr) {
            Some(ptr) => Allocation { ptr, layout },
            None => alloc::handle_alloc_error(layout),
        }
    }

    /// Gives the memory back to the allocator.
    fn free(self) {
        // SAFETY: allocated with exactly this layout (`Allocation::new`), and owned.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// A page-aligned buffer of fixed capacity, filled from the front.
pub(crate) struct BlockBuf {
    /// The memory, `mem.layout.size()` bytes.
    mem: Allocation,
    /// Bytes written from the start.
    len: usize,
}

impl BlockBuf {
    /// An empty buffer for up to `capacity` bytes (rounded up to a whole page): a pooled one
    /// of that size if there is one, else a new one.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let size = capacity.max(1).next_multiple_of(ALIGN);
        let layout = match Layout::from_size_align(size, ALIGN) {
            Ok(layout) => layout,
            // Only a size near `isize::MAX` gets here, which no allocator could serve anyway.
            Err(_) => alloc::handle_alloc_error(Layout::new::<u8>()),
        };
        let pooled = {
            let mut pool = POOL.lock();
            let found = pool.iter().rposition(|a| a.layout == layout);
            found.and_then(|at| pool.remove(at))
        };
        BlockBuf {
            mem: pooled.unwrap_or_else(|| Allocation::new(layout)),
            len: 0,
        }
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends as much of `src` as fits; answers how much that was.
    pub(crate) fn extend_from_slice(&mut self, src: &[u8]) -> usize {
        let take = src.len().min(self.mem.layout.size() - self.len);
        // SAFETY: `len + take` is within the allocation, and `src` cannot overlap memory this
        // buffer owns exclusively (`&mut self`).
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.mem.ptr.as_ptr().add(self.len), take);
        }
        self.len += take;
        take
    }

    /// The bytes written, as a `Bytes` that keeps this buffer alive (no copy).
    pub(crate) fn freeze(self) -> Bytes {
        if self.len == 0 {
            return Bytes::new();
        }
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for BlockBuf {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of the allocation have been written.
        unsafe { std::slice::from_raw_parts(self.mem.ptr.as_ptr(), self.len) }
    }
}

impl Drop for BlockBuf {
    /// Hands the memory to the pool, which gives its oldest back to the allocator when full.
    fn drop(&mut self) {
        let mem = Allocation {
            ptr: self.mem.ptr,
            layout: self.mem.layout,
        };
        let oldest = {
            let mut pool = POOL.lock();
            pool.push_back(mem);
            if pool.len() > POOL_BUFFERS {
                pool.pop_front()
            } else {
                None
            }
        };
        if let Some(oldest) = oldest {
            oldest.free();
        }
    }
}

/// Whether `data` starts on an `ALIGN` boundary, as direct I/O needs.
pub(crate) fn is_aligned(data: &[u8]) -> bool {
    data.as_ptr() as usize % ALIGN == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_up_to_capacity_and_freezes_aligned() {
        let mut buf = BlockBuf::with_capacity(5000);
        assert_eq!(buf.extend_from_slice(&[1; 3000]), 3000);
        assert_eq!(buf.extend_from_slice(&[2; 9000]), 8192 - 3000);
        assert_eq!(buf.len(), 8192);
        let bytes = buf.freeze();
        assert!(is_aligned(&bytes));
        assert_eq!(&bytes[..3000], &[1; 3000][..]);
        assert!(bytes[3000..].iter().all(|&b| b == 2));
    }

    #[test]
    fn a_buffer_let_go_of_is_reused_for_the_same_size() {
        // A size no other test uses, so that tests running at once do not take it.
        let size = 77 * ALIGN;
        let mut first = BlockBuf::with_capacity(size);
        first.extend_from_slice(&[9; 10]);
        let at = first.mem.ptr;
        drop(first.freeze());
        let second = BlockBuf::with_capacity(size);
        assert_eq!(second.mem.ptr, at);
        assert_eq!(second.len(), 0);
    }

    #[test]
    fn empty_buffer_freezes_to_empty_bytes() {
        assert!(BlockBuf::with_capacity(0).freeze().is_empty());
    }
}
