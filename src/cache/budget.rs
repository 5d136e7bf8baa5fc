//! One memory bound for the whole mount (`--memory-limit`): the memory block cache, the
//! read-ahead windows and the blocks waiting for (or being written by) the disk writers share
//! it. Files being written are staged on disk and need no share: the write path holds only the
//! kernel's write request.
use super::blocks::DISK_QUEUE_BLOCKS;
use super::error::CacheError;

/// Blocks the memory cache keeps at the very least, so that concurrent readers still share.
const MIN_CACHE_BLOCKS: u64 = 4;
/// Blocks of read-ahead at the very least: one per reader of a few concurrent ones.
const MIN_WINDOW_BLOCKS: u64 = 4;

/// How a memory limit is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bound of the memory tier of the block cache.
    pub cache: u64,
    /// Read-ahead bytes all streaming readers share.
    pub windows: u64,
    /// Set aside for blocks queued for the disk cache (0 without one).
    pub disk_queue: u64,
}

impl MemoryBudget {
    /// Shares `limit` bytes: the disk writer's queue first (when there is a disk cache),
    /// then three eighths of the rest to read-ahead windows and the remainder to the cache.
    /// Fails when the limit leaves less than a few blocks to each.
    pub fn split(limit: u64, block_size: u64, disk_cache: bool) -> Result<Self, CacheError> {
        let disk_queue = if disk_cache {
            DISK_QUEUE_BLOCKS as u64 * block_size
        } else {
            0
        };
        let least = disk_queue + (MIN_CACHE_BLOCKS + MIN_WINDOW_BLOCKS) * block_size;
        if limit < least {
            return Err(CacheError::Config(format!(
                "a memory limit of {limit} bytes is too small: at least {} MiB are needed",
                least.div_ceil(1 << 20)
            )));
        }
        let rest = limit - disk_queue;
        let windows = (rest / 8 * 3).max(MIN_WINDOW_BLOCKS * block_size);
        Ok(MemoryBudget {
            cache: rest - windows,
            windows,
            disk_queue,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_parts_add_up_to_the_limit() {
        for limit in [40 * MIB, 96 * MIB, 1 << 30, 3 * MIB + 77 + 40 * MIB] {
            for disk in [false, true] {
                let b = MemoryBudget::split(limit, MIB, disk).unwrap();
                assert_eq!(b.cache + b.windows + b.disk_queue, limit);
                assert!(b.cache >= MIN_CACHE_BLOCKS * MIB);
                assert!(b.windows >= MIN_WINDOW_BLOCKS * MIB);
            }
        }
    }

    #[test]
    fn the_disk_queue_is_set_aside_only_with_a_disk_cache() {
        let with = MemoryBudget::split(96 * MIB, MIB, true).unwrap();
        let without = MemoryBudget::split(96 * MIB, MIB, false).unwrap();
        assert_eq!(with.disk_queue, DISK_QUEUE_BLOCKS as u64 * MIB);
        assert_eq!(without.disk_queue, 0);
        assert!(without.cache > with.cache);
    }

    #[test]
    fn a_limit_too_small_for_a_few_blocks_each_is_refused() {
        let err = MemoryBudget::split(7 * MIB, MIB, false).unwrap_err();
        assert!(MemoryBudget::split(8 * MIB, MIB, false).is_ok());
        assert!(err.to_string().contains("at least 8 MiB"), "{err}");
        assert!(MemoryBudget::split(40 * MIB, MIB, true).is_ok());
        assert!(MemoryBudget::split(39 * MIB, MIB, true).is_err());
    }
}
