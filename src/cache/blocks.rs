//! The block cache: fixed-size blocks of file content keyed by (file id, block index), in a
//! memory LRU bounded in bytes and, optionally, in a bounded directory that survives remounts.
//! Lookups go to memory first, then disk (promoting the block to memory); inserts go to memory
//! at once and to disk from writer threads, so a slow disk never slows a reader down. The
//! writers take blocks from one bounded queue, several at once (`DISK_WRITERS`): the disk tier
//! writes with direct I/O, which waits for the disk, and one write at a time falls behind a
//! fast stream, whose blocks then miss the disk.
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;

use super::disk::DiskTier;
use super::error::CacheError;
use super::memory::MemoryTier;
use super::BlockKey;
use crate::sync::{Condvar, Mutex};

/// Blocks waiting for the disk writers or being written; past this, new blocks are not written
/// to disk.
pub(crate) const DISK_QUEUE_BLOCKS: usize = 32;
/// Threads writing blocks to disk at once; each holds one block of `DISK_QUEUE_BLOCKS`.
const DISK_WRITERS: usize = 8;

/// How big the caches are and where the disk cache lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockCacheConfig {
    /// Size of every block but the last of a file (default 1 MiB).
    pub block_size: u64,
    /// Upper bound of the memory tier, in bytes of block content.
    pub memory_bytes: u64,
    /// Where blocks are kept across mounts; `None` keeps them in memory only.
    pub disk_dir: Option<PathBuf>,
    /// Upper bound of the disk tier, in bytes of block files.
    pub disk_bytes: u64,
}

impl Default for BlockCacheConfig {
    fn default() -> Self {
        BlockCacheConfig {
            block_size: 1 << 20,
            memory_bytes: 256 << 20,
            disk_dir: None,
            disk_bytes: 0,
        }
    }
}

/// A snapshot of what the cache holds and how well it serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes of blocks in memory.
    pub memory_bytes: u64,
    /// Blocks in memory.
    pub memory_entries: u64,
    /// Bytes of block files on disk (headers and writes in progress included).
    pub disk_bytes: u64,
    /// Blocks on disk.
    pub disk_entries: u64,
    /// Lookups answered, from memory or disk.
    pub hits: u64,
    /// Lookups answered from disk (a subset of `hits`).
    pub disk_hits: u64,
    /// Lookups not answered.
    pub misses: u64,
    /// Blocks dropped from memory or disk to respect a bound.
    pub evictions: u64,
    /// Blocks not written to disk because the writer lagged behind.
    pub disk_writes_dropped: u64,
}

/// The block cache of a mount; share it through an `Arc`.
pub struct BlockCache {
    block_size: u64,
    memory: Mutex<MemoryTier>,
    disk: Option<DiskCache>,
    hits: AtomicU64,
    disk_hits: AtomicU64,
    misses: AtomicU64,
}

/// The disk tier with the threads writing to it.
struct DiskCache {
    tier: Arc<DiskTier>,
    jobs: Option<SyncSender<(BlockKey, Bytes)>>,
    writers: Vec<JoinHandle<()>>,
    dropped: AtomicU64,
    pending: Arc<Pending>,
}

/// Blocks queued or being written, for `flush` to wait on.
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    idle: Condvar,
}

impl Pending {
    fn add(&self) {
        *self.count.lock() += 1;
    }

    fn done(&self) {
        let mut count = self.count.lock();
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.idle.notify_all();
        }
    }

    /// Returns once nothing is queued or being written.
    fn wait_idle(&self) {
        let mut count = self.count.lock();
        while *count > 0 {
            count = self.idle.wait(count);
        }
    }
}

impl BlockCache {
    /// Opens the cache, rebuilding the disk index from `disk_dir` if there is one.
    pub fn open(cfg: BlockCacheConfig) -> Result<Self, CacheError> {
        if cfg.block_size == 0 {
            return Err(CacheError::Config("block size must not be zero".into()));
        }
        let disk = match &cfg.disk_dir {
            Some(dir) => Some(DiskCache::start(DiskTier::open(
                dir,
                cfg.block_size,
                cfg.disk_bytes,
            )?)?),
            None => None,
        };
        Ok(BlockCache {
            block_size: cfg.block_size,
            memory: Mutex::new(MemoryTier::new(cfg.memory_bytes)),
            disk,
            hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// The size of every block but the last of a file.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Block `index` of file `file_id`, from memory or else from disk (then kept in memory too).
    pub fn get(&self, file_id: u64, index: u64) -> Option<Bytes> {
        let key = (file_id, index);
        if let Some(data) = self.memory.lock().get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(data);
        }
        if let Some(data) = self.disk.as_ref().and_then(|d| d.tier.read(key)) {
            self.memory.lock().insert(key, data.clone());
            self.hits.fetch_add(1, Ordering::Relaxed);
            self.disk_hits.fetch_add(1, Ordering::Relaxed);
            return Some(data);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Whether the block is cached, without reading it or changing its recency: lets a reader
    /// decide what to fetch without paying for a disk read.
    pub fn contains(&self, file_id: u64, index: u64) -> bool {
        let key = (file_id, index);
        self.memory.lock().contains(&key)
            || self.disk.as_ref().is_some_and(|d| d.tier.contains(&key))
    }

    /// Stores block `index` of file `file_id`: in memory at once, on disk soon (or not at all if
    /// the disk writer lags behind).
    pub fn insert(&self, file_id: u64, index: u64, data: Bytes) {
        let key = (file_id, index);
        if let Some(disk) = &self.disk {
            disk.queue(key, data.clone());
        }
        self.memory.lock().insert(key, data);
    }

    /// Waits until every block inserted so far has been written to disk or dropped; used before
    /// unmounting and by tests.
    pub fn flush(&self) {
        if let Some(disk) = &self.disk {
            disk.flush();
        }
    }

    /// What the cache holds and how it has served so far.
    pub fn stats(&self) -> CacheStats {
        let (memory_bytes, memory_entries, memory_evictions) = {
            let memory = self.memory.lock();
            (memory.bytes(), memory.entries(), memory.evictions())
        };
        let mut stats = CacheStats {
            memory_bytes,
            memory_entries,
            hits: self.hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: memory_evictions,
            ..CacheStats::default()
        };
        if let Some(disk) = &self.disk {
            let usage = disk.tier.usage();
            stats.disk_bytes = usage.bytes;
            stats.disk_entries = usage.entries;
            stats.evictions += usage.evictions;
            stats.disk_writes_dropped = disk.dropped.load(Ordering::Relaxed);
        }
        stats
    }
}

impl DiskCache {
    fn start(tier: DiskTier) -> Result<Self, CacheError> {
        let tier = Arc::new(tier);
        let (jobs, queue) = mpsc::sync_channel(DISK_QUEUE_BLOCKS - DISK_WRITERS);
        let queue = Arc::new(Mutex::new(queue));
        let pending = Arc::new(Pending::default());
        let mut cache = DiskCache {
            tier,
            jobs: Some(jobs),
            writers: Vec::with_capacity(DISK_WRITERS),
            dropped: AtomicU64::new(0),
            pending,
        };
        for slot in 0..DISK_WRITERS {
            let tier = Arc::clone(&cache.tier);
            let queue = Arc::clone(&queue);
            let pending = Arc::clone(&cache.pending);
            let writer = std::thread::Builder::new()
                .name(format!("yetifs-cache-writer-{slot}"))
                .spawn(move || write_blocks(&tier, &queue, &pending, slot))
                // Dropping `cache` ends the writers already started.
                .map_err(|e| CacheError::io("cache writer thread", e))?;
            cache.writers.push(writer);
        }
        Ok(cache)
    }

    fn queue(&self, key: BlockKey, data: Bytes) {
        if let Some(jobs) = &self.jobs {
            self.pending.add();
            match jobs.try_send((key, data)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.pending.done();
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.pending.done();
                    log::warn!("cache: disk writers have stopped; block kept in memory only");
                }
            }
        }
    }

    fn flush(&self) {
        self.pending.wait_idle();
    }
}

/// One writer thread: writes blocks from the shared queue until it closes. `slot` tells its
/// temporary files from the other writers'.
fn write_blocks(
    tier: &DiskTier,
    queue: &Mutex<Receiver<(BlockKey, Bytes)>>,
    pending: &Pending,
    slot: usize,
) {
    loop {
        // The lock is held while waiting, by one writer at a time; the others wait for it.
        let job = queue.lock().recv();
        let Ok((key, data)) = job else { return };
        if let Err(e) = tier.write(key, &data, slot) {
            log::warn!("cache: block not written to disk: {e}");
        }
        drop(data);
        pending.done();
    }
}

impl Drop for DiskCache {
    /// Lets the writers finish what is queued, so blocks inserted before unmount are kept.
    fn drop(&mut self) {
        self.jobs.take();
        for writer in self.writers.drain(..) {
            if writer.join().is_err() {
                log::warn!("cache: disk writer panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fs;
    use std::path::Path;

    const BLOCK: u64 = 64;

    fn config(dir: Option<&Path>, memory_bytes: u64, disk_bytes: u64) -> BlockCacheConfig {
        BlockCacheConfig {
            block_size: BLOCK,
            memory_bytes,
            disk_dir: dir.map(Path::to_path_buf),
            disk_bytes,
        }
    }

    fn block(seed: u64, len: u64) -> Bytes {
        (0..len)
            .map(|i| (seed.wrapping_mul(31) + i) as u8)
            .collect()
    }

    fn block_files(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for file_dir in fs::read_dir(dir.join("blocks")).unwrap() {
            let file_dir = file_dir.unwrap().path();
            for f in fs::read_dir(&file_dir).unwrap() {
                files.push(f.unwrap().path());
            }
        }
        files
    }

    fn bytes_on_disk(dir: &Path) -> u64 {
        block_files(dir)
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum()
    }

    #[test]
    fn zero_block_size_is_refused() {
        let mut cfg = config(None, 100, 0);
        cfg.block_size = 0;
        assert!(matches!(BlockCache::open(cfg), Err(CacheError::Config(_))));
    }

    #[test]
    fn inserted_block_is_returned_and_counted_as_hit() {
        let cache = BlockCache::open(config(None, 1000, 0)).unwrap();
        assert_eq!(cache.get(1, 0), None);
        cache.insert(1, 0, block(1, BLOCK));
        assert_eq!(cache.get(1, 0), Some(block(1, BLOCK)));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 1));
        assert_eq!((stats.memory_entries, stats.memory_bytes), (1, BLOCK));
    }

    #[test]
    fn short_last_block_round_trips_through_disk() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(config(Some(dir.path()), 0, 100_000)).unwrap();
        cache.insert(9, 3, block(5, 17));
        cache.flush();
        assert_eq!(cache.get(9, 3), Some(block(5, 17)));
        assert_eq!(cache.stats().disk_hits, 1);
    }

    #[test]
    fn disk_hit_is_promoted_to_memory() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(config(Some(dir.path()), 10 * BLOCK, 100_000)).unwrap();
        cache.insert(1, 0, block(1, BLOCK));
        cache.flush();
        drop(cache);
        let cache = BlockCache::open(config(Some(dir.path()), 10 * BLOCK, 100_000)).unwrap();
        assert_eq!(cache.get(1, 0), Some(block(1, BLOCK)));
        assert_eq!(cache.get(1, 0), Some(block(1, BLOCK)));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.disk_hits), (2, 1));
        assert_eq!(stats.memory_entries, 1);
    }

    #[test]
    fn blocks_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(config(Some(dir.path()), 1000, 100_000)).unwrap();
        for i in 0..5 {
            cache.insert(42, i, block(i, BLOCK));
        }
        drop(cache);
        let cache = BlockCache::open(config(Some(dir.path()), 1000, 100_000)).unwrap();
        assert_eq!(cache.stats().disk_entries, 5);
        for i in 0..5 {
            assert_eq!(cache.get(42, i), Some(block(i, BLOCK)));
        }
    }

    #[test]
    fn reopen_with_smaller_bound_evicts_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(config(Some(dir.path()), 0, 100_000)).unwrap();
        for i in 0..4 {
            cache.insert(1, i, block(i, BLOCK));
            cache.flush();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Reading block 0 makes it the most recently used.
        assert!(cache.get(1, 0).is_some());
        drop(cache);
        let one_file = 4096 + BLOCK;
        let cache = BlockCache::open(config(Some(dir.path()), 0, 2 * one_file)).unwrap();
        assert_eq!(cache.stats().disk_entries, 2);
        assert!(cache.contains(1, 0));
        assert!(cache.contains(1, 3));
        assert!(!cache.contains(1, 1));
        assert!(!cache.contains(1, 2));
        assert_eq!(bytes_on_disk(dir.path()), 2 * one_file);
    }

    #[test]
    fn truncated_and_foreign_files_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(config(Some(dir.path()), 0, 100_000)).unwrap();
        cache.insert(1, 0, block(0, BLOCK));
        cache.insert(1, 1, block(1, BLOCK));
        drop(cache);
        let blocks = dir.path().join("blocks");
        let truncated = blocks.join("1").join("1");
        let full = fs::read(&truncated).unwrap();
        fs::write(&truncated, &full[..full.len() - 5]).unwrap();
        fs::write(blocks.join("1").join("2.tmp"), b"partial").unwrap();
        fs::write(blocks.join("1").join("3"), b"garbage that is no block").unwrap();
        fs::write(blocks.join("stray"), b"x").unwrap();

        let cache = BlockCache::open(config(Some(dir.path()), 0, 100_000)).unwrap();
        assert_eq!(cache.stats().disk_entries, 1);
        assert_eq!(cache.get(1, 0), Some(block(0, BLOCK)));
        assert_eq!(cache.get(1, 1), None);
        assert_eq!(block_files(dir.path()), vec![blocks.join("1").join("0")]);
    }

    #[test]
    fn blocks_cut_with_another_block_size_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(config(Some(dir.path()), 0, 100_000)).unwrap();
        cache.insert(1, 0, block(0, BLOCK));
        drop(cache);
        let mut cfg = config(Some(dir.path()), 0, 100_000);
        cfg.block_size = 2 * BLOCK;
        let cache = BlockCache::open(cfg).unwrap();
        assert_eq!(cache.get(1, 0), None);
        assert_eq!(cache.stats().disk_entries, 0);
    }

    #[test]
    fn file_damaged_while_mounted_is_a_miss_not_wrong_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlockCache::open(config(Some(dir.path()), 0, 100_000)).unwrap();
        cache.insert(1, 0, block(0, BLOCK));
        cache.flush();
        let path = dir.path().join("blocks").join("1").join("0");
        let full = fs::read(&path).unwrap();
        fs::write(&path, &full[..30]).unwrap();
        assert_eq!(cache.get(1, 0), None);
        assert!(!path.exists());
        assert_eq!(cache.stats().disk_entries, 0);
        assert_eq!(cache.stats().disk_bytes, 0);
    }

    /// A block as the fetch path makes it: in a page-aligned buffer.
    fn aligned_block(seed: u64, len: u64) -> Bytes {
        let mut buf = crate::cache::buf::BlockBuf::with_capacity(len as usize);
        buf.extend_from_slice(&block(seed, len));
        buf.freeze()
    }

    #[test]
    fn aligned_blocks_round_trip_with_and_without_a_short_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(Some(dir.path()), 0, 1 << 20);
        cfg.block_size = 3 * 4096;
        let cache = BlockCache::open(cfg.clone()).unwrap();
        for (index, len) in [(0, 3 * 4096), (1, 2 * 4096 + 17), (2, 100)] {
            cache.insert(7, index, aligned_block(index, len));
        }
        drop(cache);
        let cache = BlockCache::open(cfg).unwrap();
        assert_eq!(cache.stats().disk_entries, 3);
        assert_eq!(cache.get(7, 0), Some(block(0, 3 * 4096)));
        assert_eq!(cache.get(7, 1), Some(block(1, 2 * 4096 + 17)));
        assert_eq!(cache.get(7, 2), Some(block(2, 100)));
        let path = dir.path().join("blocks").join("7").join("1");
        assert_eq!(fs::metadata(path).unwrap().len(), 4096 + 2 * 4096 + 17);
    }

    #[test]
    fn blocks_of_the_first_format_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let file_dir = dir.path().join("blocks").join("3");
        fs::create_dir_all(&file_dir).unwrap();
        let mut raw = b"YFSBLK01".to_vec();
        raw.extend_from_slice(&BLOCK.to_le_bytes());
        raw.extend_from_slice(&20u64.to_le_bytes());
        raw.extend_from_slice(&block(4, 20));
        fs::write(file_dir.join("5"), &raw).unwrap();
        let cache = BlockCache::open(config(Some(dir.path()), 0, 100_000)).unwrap();
        assert_eq!(cache.stats().disk_bytes, 24 + 20);
        assert_eq!(cache.get(3, 5), Some(block(4, 20)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn disk_bound_holds_under_random_inserts(
            capacity in 0u64..6 * (4096 + BLOCK),
            ops in prop::collection::vec((0u64..3, 0u64..8, 1u64..=BLOCK), 1..60),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let cache = BlockCache::open(config(Some(dir.path()), 0, capacity)).unwrap();
            for (file, index, len) in &ops {
                cache.insert(*file, *index, block(*index, *len));
                cache.flush();
                prop_assert!(bytes_on_disk(dir.path()) <= capacity);
                prop_assert!(cache.stats().disk_bytes <= capacity);
            }
            let stats = cache.stats();
            prop_assert_eq!(stats.disk_bytes, bytes_on_disk(dir.path()));
            prop_assert_eq!(stats.disk_entries as usize, block_files(dir.path()).len());
        }
    }
}
