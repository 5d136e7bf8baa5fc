//! The C allocator's handling of the megabyte buffers every read and write goes through. By
//! default glibc serves each with a fresh `mmap` and hands it back on free, so every 1 MiB
//! FUSE write or downloaded block costs 256 page faults and zeroed pages: writing 1 GiB into a
//! mount spent ~3 s of CPU on that alone (2.3x the time of the copy itself). Kept in the heap,
//! the same buffers are reused. One heap for all threads: with one per thread (glibc's default)
//! a buffer freed by one thread is not reused by another, and streaming 1 GiB peaked ~35 MiB
//! higher.

/// Largest allocation served from the heap; bigger ones still get their own mapping.
const MMAP_THRESHOLD: i32 = 4 * 1024 * 1024;
/// Free memory at the top of the heap kept for reuse before it is returned to the system: the
/// cost is at most this much resident memory beyond what is in use.
const TRIM_THRESHOLD: i32 = 64 * 1024 * 1024;
/// Heaps (arenas) the threads share.
const ARENAS: i32 = 1;

/// Keeps buffers up to a few megabytes in the heap for reuse; whether the allocator took the
/// setting. Call once, early in `main`, before other threads start.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_large_buffers() -> bool {
    // SAFETY: `mallopt` only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
            && libc::mallopt(libc::M_ARENA_MAX, ARENAS) == 1
    }
}

/// Other C libraries have allocators of their own, left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_large_buffers() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    #[test]
    fn glibc_takes_the_thresholds() {
        assert!(super::keep_large_buffers());
    }
}
