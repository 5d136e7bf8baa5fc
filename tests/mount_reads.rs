//! Reads through a real mount that are not a plain `cp`: seeded random offsets and lengths,
//! eight threads at once, a server that fails 5% of requests and drops connections, and a
//! disk cache smaller than what is read.
mod common;

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use common::mount::{
    assert_same_file, assert_same_tree, bytes, check_random_reads, make_tree, sh, upload, Mount,
    Server, TreeSpec,
};
use yetifs::emulator::{Profile, RangeMode};

const MIB: usize = 1 << 20;

#[test]
fn random_reads_of_a_large_file_match_its_source() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let source = bytes(7, 48 * MIB + 4321);
    upload(&server, None, "large.bin", &source);
    let mount = Mount::start(&server, &[]);
    let path = mount.path().join("large.bin");

    check_random_reads(&path, &source, 2024, 300, 256 * 1024);

    let file = File::open(&path).unwrap();
    let mut tail = vec![0u8; 100];
    let n = file.read_at(&mut tail, source.len() as u64 - 10).unwrap();
    assert_eq!(
        &tail[..n],
        &source[source.len() - 10..],
        "a read across EOF"
    );
    assert_eq!(file.read_at(&mut tail, source.len() as u64).unwrap(), 0);
    drop(file);
    assert!(mount.unmount().success());
}

#[test]
fn eight_concurrent_readers_all_get_exact_bytes() {
    let server = Server::start(Profile::V5, RangeMode::Naive);
    let source = Arc::new(bytes(8, 40 * MIB + 99));
    upload(&server, None, "shared.bin", &source);
    let mount = Mount::start(&server, &[]);
    let path = mount.path().join("shared.bin");

    let readers: Vec<_> = (0..8u64)
        .map(|reader| {
            let (path, source) = (path.clone(), Arc::clone(&source));
            std::thread::spawn(move || {
                if reader % 2 == 0 {
                    // Sequential from the start, in odd-sized pieces.
                    let mut file = File::open(&path).unwrap();
                    let mut all = Vec::with_capacity(source.len());
                    let mut buf = vec![0u8; 65_537 + reader as usize * 1000];
                    loop {
                        let n = file.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        all.extend_from_slice(&buf[..n]);
                    }
                    assert!(all == *source, "reader {reader}: sequential bytes differ");
                } else {
                    check_random_reads(&path, &source, reader, 150, 512 * 1024);
                }
            })
        })
        .collect();
    for reader in readers {
        reader.join().unwrap();
    }
    assert!(mount.unmount().success());
}

#[test]
fn a_faulty_server_still_gives_exact_bytes() {
    let mut server = Server::start(Profile::V4, RangeMode::Naive);
    let tree = make_tree(
        &server,
        TreeSpec {
            large: 24 * MIB + 5,
            trashed_folder: false,
        },
    );
    server.restart(|args| {
        args.faults = "error=0.05,reset=0.01".parse().unwrap();
        args.seed = Some(5);
    });
    let mount = Mount::start(&server, &[]);
    let expected = tree.expected.path();

    assert_same_tree(expected, mount.path());
    let sums = "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum";
    assert_eq!(sh(mount.path(), sums), sh(expected, sums));
    let large = std::fs::read(expected.join("large.bin")).unwrap();
    check_random_reads(&mount.path().join("large.bin"), &large, 99, 100, MIB as u64);
    assert!(mount.unmount().success());
    assert!(server.server_errors() > 0, "no fault was injected");
}

#[test]
fn the_disk_cache_stays_under_its_bound() {
    let server = Server::start(Profile::V4, RangeMode::Correct);
    let sources: Vec<Vec<u8>> = (0..3).map(|i| bytes(30 + i, 12 * MIB + 777)).collect();
    for (i, source) in sources.iter().enumerate() {
        upload(&server, None, &format!("part{i}.bin"), source);
    }
    let dirs = tempfile::tempdir().unwrap();
    let cache = dirs.path().join("cache");
    let mount = Mount::start_with_cache(
        &server,
        &cache,
        &["--cache-size", "8MiB", "--memory-cache", "4MiB"],
    );
    let bound = 8 * MIB as u64;
    let expected = tempfile::tempdir().unwrap();
    for (i, source) in sources.iter().enumerate() {
        let name = format!("part{i}.bin");
        std::fs::write(expected.path().join(&name), source).unwrap();
        assert_same_file(&expected.path().join(&name), &mount.path().join(&name));
        let used = block_bytes(&cache);
        assert!(
            used <= bound,
            "after {name} the disk cache holds {used} bytes"
        );
    }
    check_random_reads(
        &mount.path().join("part0.bin"),
        &sources[0],
        3,
        50,
        MIB as u64,
    );
    let status = mount.unmount();
    assert!(status.success());
    let blocks = block_bytes(&cache);
    assert!(blocks > 0, "nothing was cached on disk");
    assert!(blocks <= bound, "the disk cache holds {blocks} bytes");
}

/// Bytes of the cached block files under `cache` (the metadata store beside them is not
/// bounded by `--cache-size`).
fn block_bytes(cache: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut work = vec![cache.to_path_buf()];
    while let Some(dir) = work.pop() {
        // Files come and go while the mount writes and evicts: one gone meanwhile counts 0.
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                work.push(entry.path());
            } else if entry.path().components().any(|c| c.as_os_str() == "blocks") {
                total += meta.len();
            }
        }
    }
    total
}
