//! The read path against an in-memory server that counts requests and can fail, stall or slow
//! down on demand.
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use yetifs::cache::{BlockCache, BlockCacheConfig};
use yetifs::content::{Content, ContentConfig};
use yetifs::remote::error::RemoteError;
use yetifs::remote::faulty::StreamFaults;
use yetifs::remote::memory::{MemoryRemote, Op};

const BLOCK: u64 = 16 * 1024;
const CHUNK: usize = 4096;

/// An empty account whose content streams come in `CHUNK`-byte pieces.
fn account() -> MemoryRemote {
    let remote = MemoryRemote::new();
    remote.set_stream_faults(StreamFaults {
        piece: CHUNK,
        ..StreamFaults::default()
    });
    remote
}

/// An account holding `data` as its one file, `FILE`.
fn with_file(data: Bytes) -> MemoryRemote {
    let remote = account();
    assert_eq!(remote.add_file(None, "file", data), FILE);
    remote
}

/// Makes the remote's streams pause `delay` before each piece.
fn pieces_every(remote: &MemoryRemote, delay: Duration) {
    remote.set_stream_faults(StreamFaults {
        piece: CHUNK,
        piece_delay: delay,
        stall: false,
    });
}

/// Makes the remote's streams send nothing, ever.
fn stalled(remote: &MemoryRemote) {
    remote.set_stream_faults(StreamFaults {
        stall: true,
        ..StreamFaults::default()
    });
}

fn content_of(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

/// The id of the first file added to an empty account.
const FILE: u64 = 1;

fn cache(memory_bytes: u64) -> Arc<BlockCache> {
    Arc::new(
        BlockCache::open(BlockCacheConfig {
            block_size: BLOCK,
            memory_bytes,
            disk_dir: None,
            disk_bytes: 0,
        })
        .unwrap(),
    )
}

fn config() -> ContentConfig {
    ContentConfig {
        initial_window: BLOCK,
        max_window: 16 * BLOCK,
        window_budget: None,
        sequential_slack: 4 * BLOCK,
        max_parallel_fetches: 4,
        stream_lanes: 1,
        stream_segment: 16 * BLOCK,
        retries: 3,
        retry_delay: Duration::from_millis(5),
        stall_timeout: Duration::from_millis(300),
        read_timeout: Duration::from_secs(5),
    }
}

fn setup(
    remote: MemoryRemote,
    memory_bytes: u64,
) -> (Arc<MemoryRemote>, Arc<Content<MemoryRemote>>) {
    let remote = Arc::new(remote);
    let content = Arc::new(Content::new(
        Arc::clone(&remote),
        cache(memory_bytes),
        config(),
    ));
    (remote, content)
}

/// Reads the whole file in `step`-byte reads, one after the other.
async fn read_sequentially(
    reader: &yetifs::content::Reader<MemoryRemote>,
    size: u64,
    step: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < size {
        let chunk = reader.read(offset, step).await.unwrap();
        assert!(!chunk.is_empty());
        offset += chunk.len() as u64;
        out.extend_from_slice(&chunk);
    }
    out
}

#[tokio::test]
async fn sequential_read_of_a_large_file_is_one_request_and_stays_within_memory_bound() {
    let data = content_of(200 * BLOCK as usize + 123, 1);
    let memory = 8 * BLOCK;
    let (remote, content) = setup(with_file(data.clone()), memory);
    let reader = content.open(FILE, data.len() as u64);
    let mut offset = 0;
    let mut out = Vec::new();
    while offset < data.len() as u64 {
        let chunk = reader.read(offset, 5000).await.unwrap();
        offset += chunk.len() as u64;
        out.extend_from_slice(&chunk);
        assert!(content.stats().bytes_fetched <= offset + 17 * BLOCK + CHUNK as u64);
    }
    assert_eq!(out, data);
    assert_eq!(remote.calls().get(Op::Read), 1);
    assert_eq!(remote.bytes_delivered(), data.len() as u64);
    assert_eq!(remote.ranges(), vec![0..data.len() as u64]);
}

#[tokio::test]
async fn sequential_read_with_lanes_fetches_segments_in_parallel_and_each_byte_once() {
    let data = content_of(40 * BLOCK as usize + 321, 3);
    let remote = Arc::new(with_file(data.clone()));
    let cfg = ContentConfig {
        stream_lanes: 3,
        stream_segment: 4 * BLOCK,
        ..config()
    };
    let content = Arc::new(Content::new(Arc::clone(&remote), cache(64 * BLOCK), cfg));
    let reader = content.open(FILE, data.len() as u64);
    let out = read_sequentially(&reader, data.len() as u64, 5000).await;
    assert_eq!(out, data);
    assert_eq!(
        remote.bytes_delivered(),
        data.len() as u64,
        "no byte fetched twice"
    );
    let mut ranges = remote.ranges();
    ranges.sort_by_key(|r| r.start);
    // Segments of 4 blocks from the start, each one ranged read, the last cut at the end.
    let size = data.len() as u64;
    let expected: Vec<_> = (0..size.div_ceil(4 * BLOCK))
        .map(|k| k * 4 * BLOCK..size.min((k + 1) * 4 * BLOCK))
        .collect();
    assert_eq!(ranges, expected);
}

#[tokio::test]
async fn concurrent_streams_share_the_window_budget() {
    let a = content_of(60 * BLOCK as usize, 4);
    let b = content_of(60 * BLOCK as usize, 5);
    let remote = Arc::new(account());
    assert_eq!(remote.add_file(None, "a", a.clone()), 1);
    assert_eq!(remote.add_file(None, "b", b.clone()), 2);
    let cfg = ContentConfig {
        window_budget: Some(4 * BLOCK),
        ..config()
    };
    let content = Arc::new(Content::new(remote, cache(64 * BLOCK), cfg));
    let readers = [
        content.open(1, a.len() as u64),
        content.open(2, b.len() as u64),
    ];
    let mut offset = 0;
    while offset < a.len() as u64 {
        for (reader, data) in readers.iter().zip([&a, &b]) {
            let chunk = reader.read(offset, 20_000).await.unwrap();
            assert_eq!(
                chunk,
                data.slice(offset as usize..offset as usize + chunk.len())
            );
        }
        offset += 20_000;
        let read = 2 * offset.min(a.len() as u64);
        // Each of the two streams may run its half of the budget (2 blocks) ahead, plus the
        // block being filled and one chunk of the stream.
        let ahead = 2 * (2 * BLOCK + BLOCK + CHUNK as u64);
        assert!(content.stats().bytes_fetched <= read + ahead);
    }
    assert_eq!(content.streams(), 2);
    drop(readers);
    assert_eq!(content.streams(), 0);
}

#[tokio::test]
async fn memory_cache_never_exceeds_its_bound_while_streaming() {
    let data = content_of(100 * BLOCK as usize, 2);
    let size = data.len() as u64;
    let memory = 5 * BLOCK + 7;
    let remote = Arc::new(with_file(data.clone()));
    let cache = cache(memory);
    let content = Arc::new(Content::new(remote, Arc::clone(&cache), config()));
    let reader = content.open(FILE, size);
    let mut offset = 0;
    while offset < size {
        let chunk = reader.read(offset, 20_000).await.unwrap();
        assert_eq!(
            chunk,
            data.slice(offset as usize..offset as usize + chunk.len())
        );
        offset += chunk.len() as u64;
        assert!(cache.stats().memory_bytes <= memory);
    }
    assert!(cache.stats().evictions > 0);
}

#[tokio::test]
async fn reads_at_and_after_end_of_file_are_empty_and_reads_across_it_short() {
    let data = content_of(3 * BLOCK as usize + 10, 3);
    let size = data.len() as u64;
    let (_remote, content) = setup(with_file(data.clone()), 64 * BLOCK);
    let reader = content.open(FILE, size);
    assert!(reader.read(size, 100).await.unwrap().is_empty());
    assert!(reader.read(size + 5000, 100).await.unwrap().is_empty());
    assert!(reader.read(0, 0).await.unwrap().is_empty());
    let tail = reader.read(size - 4, 100).await.unwrap();
    assert_eq!(tail, data.slice(size as usize - 4..));
}

#[tokio::test]
async fn slightly_out_of_order_concurrent_reads_keep_the_stream() {
    let data = content_of(64 * BLOCK as usize, 4);
    let size = data.len() as u64;
    let (remote, content) = setup(with_file(data.clone()), 128 * BLOCK);
    let reader = content.open(FILE, size);
    let step = 4096u64;
    let mut out = vec![0u8; size as usize];
    let mut batch_start = 0;
    while batch_start < size {
        // Four reads at once, sent in a shuffled order, as the kernel does.
        let offsets: Vec<u64> = [1u64, 0, 3, 2]
            .iter()
            .map(|i| batch_start + i * step)
            .filter(|o| *o < size)
            .collect();
        let reads = offsets.iter().map(|&o| reader.read(o, step as u32));
        for (o, chunk) in offsets
            .iter()
            .zip(futures_util::future::join_all(reads).await)
        {
            let chunk = chunk.unwrap();
            out[*o as usize..*o as usize + chunk.len()].copy_from_slice(&chunk);
        }
        batch_start += 4 * step;
    }
    assert_eq!(out, data);
    assert!(
        remote.calls().get(Op::Read) <= 2,
        "{} requests",
        remote.calls().get(Op::Read)
    );
    assert_eq!(remote.bytes_delivered(), size);
}

#[tokio::test(start_paused = true)]
async fn concurrent_readers_of_one_file_fetch_each_block_once() {
    let data = content_of(40 * BLOCK as usize + 99, 5);
    let size = data.len() as u64;
    let remote = with_file(data.clone());
    pieces_every(&remote, Duration::from_millis(1));
    let (remote, content) = setup(remote, 64 * BLOCK);
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let content = Arc::clone(&content);
            tokio::spawn(async move {
                let reader = content.open(FILE, size);
                read_sequentially(&reader, size, 8192).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), data);
    }
    assert_eq!(remote.bytes_delivered(), size);
    assert_eq!(content.stats().bytes_fetched, size);
}

#[tokio::test(start_paused = true)]
async fn concurrent_random_reads_of_one_block_share_one_request() {
    let data = content_of(50 * BLOCK as usize, 6);
    let size = data.len() as u64;
    let remote = with_file(data.clone());
    pieces_every(&remote, Duration::from_millis(5));
    let (remote, content) = setup(remote, 64 * BLOCK);
    let offset = 20 * BLOCK + 100;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let content = Arc::clone(&content);
            tokio::spawn(async move {
                let reader = content.open(FILE, size);
                reader.read(offset + i * 10, 1000).await.unwrap()
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let start = (offset + i as u64 * 10) as usize;
        assert_eq!(task.await.unwrap(), data.slice(start..start + 1000));
    }
    assert_eq!(remote.calls().get(Op::Read), 1);
    assert_eq!(remote.ranges(), vec![20 * BLOCK..21 * BLOCK]);
}

#[tokio::test(start_paused = true)]
async fn random_read_spanning_blocks_fetches_missing_blocks_in_parallel() {
    let data = content_of(50 * BLOCK as usize, 7);
    let size = data.len() as u64;
    let remote = with_file(data.clone());
    pieces_every(&remote, Duration::from_millis(20));
    let (remote, content) = setup(remote, 64 * BLOCK);
    let reader = content.open(FILE, size);
    let start = 10 * BLOCK + 1;
    let got = reader.read(start, 4 * BLOCK as u32).await.unwrap();
    assert_eq!(
        got,
        data.slice(start as usize..(start + 4 * BLOCK) as usize)
    );
    assert_eq!(remote.calls().get(Op::Read), 5);
    let most = remote.most_open_streams();
    assert!((2..=4).contains(&most), "{most} fetches at once, limit 4");
}

#[tokio::test]
async fn cached_content_is_read_again_without_requests() {
    let data = content_of(30 * BLOCK as usize, 8);
    let size = data.len() as u64;
    let (remote, content) = setup(with_file(data.clone()), 64 * BLOCK);
    let first = content.open(FILE, size);
    assert_eq!(read_sequentially(&first, size, 10_000).await, data);
    let requests = remote.calls().get(Op::Read);
    let second = content.open(FILE, size);
    assert_eq!(read_sequentially(&second, size, 7_000).await, data);
    assert_eq!(remote.calls().get(Op::Read), requests);
    assert!(content.stats().cache_hits >= 30);
}

#[tokio::test]
async fn blocks_on_disk_serve_a_new_mount_without_requests() {
    let dir = tempfile::tempdir().unwrap();
    let data = content_of(12 * BLOCK as usize + 5, 9);
    let size = data.len() as u64;
    let disk_cache = || {
        Arc::new(
            BlockCache::open(BlockCacheConfig {
                block_size: BLOCK,
                memory_bytes: 2 * BLOCK,
                disk_dir: Some(dir.path().to_path_buf()),
                disk_bytes: 100 * BLOCK,
            })
            .unwrap(),
        )
    };
    let remote = Arc::new(with_file(data.clone()));
    {
        let content = Arc::new(Content::new(Arc::clone(&remote), disk_cache(), config()));
        let reader = content.open(FILE, size);
        assert_eq!(read_sequentially(&reader, size, 16_000).await, data);
    }
    let requests = remote.calls().get(Op::Read);
    let content = Arc::new(Content::new(Arc::clone(&remote), disk_cache(), config()));
    let reader = content.open(FILE, size);
    assert_eq!(read_sequentially(&reader, size, 16_000).await, data);
    assert_eq!(remote.calls().get(Op::Read), requests);
}

#[tokio::test(start_paused = true)]
async fn failed_requests_are_retried() {
    let data = content_of(10 * BLOCK as usize, 10);
    let size = data.len() as u64;
    let remote = with_file(data.clone());
    remote.fail_next(Op::Read, RemoteError::Transport("connection reset".into()));
    remote.fail_next(Op::Read, RemoteError::Transport("connection reset".into()));
    let (remote, content) = setup(remote, 64 * BLOCK);
    let reader = content.open(FILE, size);
    assert_eq!(
        reader.read(5 * BLOCK, 100).await.unwrap(),
        data.slice(5 * BLOCK as usize..5 * BLOCK as usize + 100)
    );
    assert_eq!(remote.calls().get(Op::Read), 3);
    assert_eq!(content.stats().retries, 2);
}

#[tokio::test]
async fn broken_stream_resumes_where_it_broke() {
    let data = content_of(20 * BLOCK as usize, 11);
    let size = data.len() as u64;
    let remote = with_file(data.clone());
    remote.break_next_stream_after(5 * BLOCK + 1000);
    let (remote, content) = setup(remote, 64 * BLOCK);
    let reader = content.open(FILE, size);
    assert_eq!(read_sequentially(&reader, size, 6000).await, data);
    assert_eq!(remote.calls().get(Op::Read), 2);
    let ranges = remote.ranges();
    assert_eq!(ranges[1], 5 * BLOCK..size);
}

#[tokio::test(start_paused = true)]
async fn persistent_failure_ends_in_an_error_after_bounded_retries() {
    let data = content_of(4 * BLOCK as usize, 12);
    let remote = with_file(data);
    remote.fail_always(Op::Read, RemoteError::Transport("connection reset".into()));
    let (remote, content) = setup(remote, 64 * BLOCK);
    let reader = content.open(FILE, 4 * BLOCK);
    let err = reader.read(BLOCK, 10).await.unwrap_err();
    assert!(matches!(err, RemoteError::Transport(_)), "{err:?}");
    assert_eq!(remote.calls().get(Op::Read), 4);
    assert_eq!(content.stats().failures, 1);
}

#[tokio::test]
async fn permanent_error_is_not_retried() {
    let data = content_of(4 * BLOCK as usize, 13);
    let remote = with_file(data);
    remote.fail_always(Op::Read, RemoteError::NotFound("no such file".into()));
    let (remote, content) = setup(remote, 64 * BLOCK);
    let reader = content.open(FILE, 4 * BLOCK);
    let err = reader.read(0, 10).await.unwrap_err();
    assert!(matches!(err, RemoteError::NotFound(_)), "{err:?}");
    assert_eq!(remote.calls().get(Op::Read), 1);
}

#[tokio::test(start_paused = true)]
async fn stalled_server_gives_an_error_within_the_read_timeout() {
    let data = content_of(4 * BLOCK as usize, 14);
    let remote = with_file(data);
    stalled(&remote);
    let remote = Arc::new(remote);
    let mut cfg = config();
    cfg.stall_timeout = Duration::from_secs(60);
    cfg.read_timeout = Duration::from_millis(300);
    let content = Arc::new(Content::new(Arc::clone(&remote), cache(64 * BLOCK), cfg));
    let reading = tokio::spawn(async move { content.open(FILE, 4 * BLOCK).read(0, 10).await });
    let settle = || async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    };
    settle().await;
    tokio::time::advance(Duration::from_millis(299)).await;
    settle().await;
    assert!(
        !reading.is_finished(),
        "still waiting before the read timeout"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    settle().await;
    assert!(reading.is_finished(), "failed at the read timeout");
    let err = reading.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("took longer than"), "{err}");
    assert_eq!(
        remote.calls().get(Op::Read),
        1,
        "the stall timeout is not reached"
    );
}

#[tokio::test(start_paused = true)]
async fn stalled_stream_is_abandoned_and_retried() {
    let data = content_of(4 * BLOCK as usize, 15);
    let remote = with_file(data.clone());
    stalled(&remote);
    let (remote, content) = setup(remote, 64 * BLOCK);
    let reader = content.open(FILE, 4 * BLOCK);
    // stall_timeout 300 ms, three retries: every attempt stalls, the read fails, nothing hangs.
    assert!(reader.read(2 * BLOCK, 10).await.is_err());
    assert_eq!(remote.calls().get(Op::Read), 4);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn random_reads_return_exactly_the_source_bytes(
        size in 1usize..(20 * BLOCK as usize),
        reads in prop::collection::vec((0f64..1.1, 0u32..(3 * BLOCK as u32)), 1..12),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data = content_of(size, size as u8);
        let (_remote, content) = setup(with_file(data.clone()), 6 * BLOCK);
        let reader = content.open(FILE, size as u64);
        for (position, len) in reads {
            let offset = (position * size as f64) as u64;
            let got = runtime.block_on(reader.read(offset, len)).unwrap();
            let start = (offset as usize).min(size);
            let end = (start + len as usize).min(size);
            prop_assert_eq!(got, data.slice(start..end));
        }
    }
}
