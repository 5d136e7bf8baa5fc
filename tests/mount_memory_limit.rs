//! `--memory-limit` on a real mount: several large files streamed at once through a mount
//! with a small limit, the daemon's peak resident memory (VmHWM) checked against the limit
//! plus a fixed overhead (the binary, the runtimes, HTTP and SQLite, allocator slack).
mod common;

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use common::mount::{bytes, upload, Mount, Server};
use yetifs::emulator::{Profile, RangeMode};
use yetifs::remote::Remote;

const MIB: u64 = 1 << 20;
/// The limit given to the mount.
const LIMIT: u64 = 96 * MIB;
/// What the daemon uses beyond its caches and buffers, whatever it reads.
const OVERHEAD: u64 = 64 * MIB;
/// Size of each streamed file.
const FILE_SIZE: usize = 128 << 20;
/// Files streamed at once.
const READERS: usize = 4;

/// A `kB` value of `/proc/PID/status`, in bytes.
fn status_bytes(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn streaming_four_large_files_at_once_stays_under_the_memory_limit() {
    let server = Server::start(Profile::V5, RangeMode::Correct);
    let content = Arc::new(bytes(9, FILE_SIZE));
    let first = upload(&server, None, "big0.bin", &content);
    let client = server.client();
    for i in 1..READERS {
        let copy = server.block_on(client.copy_file(first, None)).unwrap();
        server
            .block_on(client.rename_file(copy.id, &format!("big{i}.bin")))
            .unwrap();
    }
    let mount = Mount::start(
        &server,
        &["--memory-limit", "96MiB", "--cache-size", "64MiB"],
    );
    let idle = status_bytes(mount.pid(), "VmHWM:");
    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            let path = mount.path().join(format!("big{i}.bin"));
            let content = Arc::clone(&content);
            std::thread::spawn(move || {
                let mut file = File::open(&path).unwrap();
                let mut buf = vec![0u8; MIB as usize];
                let mut offset = 0;
                loop {
                    let n = file.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    assert!(
                        buf[..n] == content[offset..offset + n],
                        "{path:?} at {offset}"
                    );
                    offset += n;
                }
                assert_eq!(offset, content.len());
            })
        })
        .collect();
    for reader in readers {
        reader.join().unwrap();
    }
    let peak = status_bytes(mount.pid(), "VmHWM:");
    eprintln!(
        "daemon peak RSS {} MiB (idle {} MiB) for a limit of {} MiB",
        peak / MIB,
        idle / MIB,
        LIMIT / MIB
    );
    assert!(
        peak < LIMIT + OVERHEAD,
        "peak RSS {} MiB is over the limit of {} MiB plus {} MiB",
        peak / MIB,
        LIMIT / MIB,
        OVERHEAD / MIB
    );
    mount.unmount();
}
