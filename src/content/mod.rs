//! The read path: how file content reaches the mount. A sequential reader is served by one
//! streaming ranged read kept ahead of it in a growing window; a random reader by aligned blocks
//! fetched in parallel (bounded); every block goes through the block cache, and a block being
//! fetched is fetched once however many readers want it. Failures are retried a bounded number
//! of times and every read ends within a bounded time, with the right bytes or an error.
mod fetch;
mod inflight;
mod reader;
mod stream;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::cache::BlockCache;
use crate::remote::Remote;
use inflight::InFlight;
pub use reader::Reader;

/// How reads behave; the defaults suit a remote server over the internet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentConfig {
    /// Read-ahead window when a reader turns out sequential.
    pub initial_window: u64,
    /// The window doubles as the reader keeps going, up to this.
    pub max_window: u64,
    /// Bytes of read-ahead all streaming readers share, when memory is bounded: each gets an
    /// equal part (at least one block, at most `max_window`), so windows shrink as more readers
    /// stream at once. `None`: every reader may grow to `max_window`.
    pub window_budget: Option<u64>,
    /// How far (bytes) a read may start from where the previous one ended and still count as
    /// sequential: the kernel sends concurrent reads slightly out of order.
    pub sequential_slack: u64,
    /// Single-block fetches running at once, across the mount.
    pub max_parallel_fetches: usize,
    /// Ranged reads a sequential reader's read-ahead runs at once (see `stream`): 1 is one
    /// read to the end of the file.
    pub stream_lanes: usize,
    /// With several lanes, the bytes each ranged read covers before the next lane's turn.
    pub stream_segment: u64,
    /// Attempts after the first for a failed fetch (transient failures only).
    pub retries: u32,
    /// Pause before the first retry; doubles with each further one.
    pub retry_delay: Duration,
    /// A request or stream giving no data for this long has failed.
    pub stall_timeout: Duration,
    /// A read not served within this time returns an error.
    pub read_timeout: Duration,
}

impl Default for ContentConfig {
    fn default() -> Self {
        ContentConfig {
            initial_window: 1 << 20,
            max_window: 64 << 20,
            window_budget: None,
            sequential_slack: 2 << 20,
            max_parallel_fetches: 8,
            stream_lanes: 1,
            stream_segment: 16 << 20,
            retries: 3,
            retry_delay: Duration::from_millis(250),
            stall_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// How the read path has worked so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentStats {
    /// Content bytes received from the server.
    pub bytes_fetched: u64,
    /// Ranged reads sent to the server.
    pub requests: u64,
    /// Blocks served from the block cache.
    pub cache_hits: u64,
    /// Blocks served from a read-ahead, or from a fetch another read had started.
    pub shared_hits: u64,
    /// Failed attempts tried again.
    pub retries: u64,
    /// Fetches given up.
    pub failures: u64,
}

#[derive(Default)]
struct Counters {
    bytes_fetched: AtomicU64,
    requests: AtomicU64,
    cache_hits: AtomicU64,
    shared_hits: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
}

/// The read path of one mount, shared by all open files.
pub struct Content<R: Remote> {
    remote: Arc<R>,
    cache: Arc<BlockCache>,
    cfg: ContentConfig,
    inflight: Arc<InFlight>,
    fetch_slots: Semaphore,
    counters: Counters,
    /// Read-aheads running now.
    streams: Arc<AtomicUsize>,
}

impl<R: Remote> Content<R> {
    /// The read path over `remote`, caching blocks in `cache`.
    pub fn new(remote: Arc<R>, cache: Arc<BlockCache>, cfg: ContentConfig) -> Self {
        let fetch_slots = Semaphore::new(cfg.max_parallel_fetches.max(1));
        Content {
            remote,
            cache,
            cfg,
            inflight: Arc::default(),
            fetch_slots,
            counters: Counters::default(),
            streams: Arc::default(),
        }
    }

    /// Whether every block of `len` bytes from `offset` of file `file_id` (of `size` bytes)
    /// is in the block cache: such a read needs no server.
    pub fn is_cached(&self, file_id: u64, size: u64, offset: u64, len: u32) -> bool {
        let end = size.min(offset.saturating_add(u64::from(len)));
        if end <= offset {
            return true;
        }
        let block = self.cache.block_size();
        (offset / block..=(end - 1) / block).all(|index| self.cache.contains(file_id, index))
    }

    /// How many read-aheads are running now.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    /// The largest window a reader may use now: its share of the window budget.
    fn window_cap(&self) -> u64 {
        let max = self.cfg.max_window.max(self.cfg.initial_window);
        match self.cfg.window_budget {
            Some(budget) => {
                let streams = self.streams().max(1) as u64;
                (budget / streams).min(max).max(self.cache.block_size())
            }
            None => max,
        }
    }

    /// A reader of file `file_id`, whose content is `size` bytes; one per open handle.
    pub fn open(self: &Arc<Self>, file_id: u64, size: u64) -> Reader<R> {
        Reader::new(Arc::clone(self), file_id, size)
    }

    /// The counters so far.
    pub fn stats(&self) -> ContentStats {
        let c = &self.counters;
        ContentStats {
            bytes_fetched: c.bytes_fetched.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            shared_hits: c.shared_hits.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
        }
    }
}
