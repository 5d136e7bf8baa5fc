//! Microbenchmarks of the block cache: what a read pays to find a block, and what a fetch pays
//! to store one. Run with `cargo bench --bench cache`.
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use yetifs::cache::{BlockCache, BlockCacheConfig};

const BLOCK: u64 = 1 << 20;
const BLOCKS: u64 = 64;

fn memory_cache() -> BlockCache {
    let cache = BlockCache::open(BlockCacheConfig {
        block_size: BLOCK,
        memory_bytes: BLOCKS * BLOCK,
        disk_dir: None,
        disk_bytes: 0,
    })
    .expect("memory-only cache opens");
    let block = Bytes::from(vec![1u8; BLOCK as usize]);
    for i in 0..BLOCKS {
        cache.insert(1, i, block.clone());
    }
    cache
}

fn lookups(c: &mut Criterion) {
    let cache = memory_cache();
    let mut i = 0;
    c.bench_function("memory hit", |b| {
        b.iter(|| {
            i = (i + 1) % BLOCKS;
            black_box(cache.get(1, black_box(i)))
        })
    });
    c.bench_function("miss", |b| b.iter(|| black_box(cache.get(2, black_box(7)))));

    let dir = tempfile::tempdir().expect("temporary directory");
    let disk = BlockCache::open(BlockCacheConfig {
        block_size: BLOCK,
        memory_bytes: 0,
        disk_dir: Some(dir.path().to_path_buf()),
        disk_bytes: 8 * BLOCK,
    })
    .expect("disk cache opens");
    disk.insert(1, 0, Bytes::from(vec![2u8; BLOCK as usize]));
    disk.flush();
    c.bench_function("disk hit (1 MiB block)", |b| {
        b.iter(|| black_box(disk.get(1, 0)))
    });
}

fn inserts(c: &mut Criterion) {
    let cache = memory_cache();
    let block = Bytes::from(vec![3u8; BLOCK as usize]);
    let mut i = BLOCKS;
    c.bench_function("insert with eviction", |b| {
        b.iter(|| {
            i += 1;
            cache.insert(1, black_box(i), block.clone())
        })
    });
    c.bench_function("insert into empty cache", |b| {
        b.iter_batched(
            || {
                BlockCache::open(BlockCacheConfig {
                    block_size: BLOCK,
                    memory_bytes: BLOCKS * BLOCK,
                    disk_dir: None,
                    disk_bytes: 0,
                })
                .expect("memory-only cache opens")
            },
            |cache| cache.insert(1, 0, block.clone()),
            BatchSize::SmallInput,
        )
    });
}

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = quick();
    targets = lookups, inserts
}
criterion_main!(benches);
