//! The core when the server goes away and comes back, over an in-memory account: listings kept
//! on disk and shown by the next mount, the cached tree and content served while offline,
//! changes refused, closed writes queued, and recovery by the watcher.
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::core::{errno, options};
use yetifs::fs::{Core, FsOptions, Owner, ROOT_INO};
use yetifs::remote::memory::{MemoryRemote, Op};
use yetifs::remote::{Remote, RemoteError};

/// A core keeping metadata and staged files in `dir`, listings trusted for `ttl`.
fn core_in(remote: &Arc<MemoryRemote>, dir: &Path, ttl: Duration) -> Arc<Core<MemoryRemote>> {
    Arc::new(common::core::core_in(remote, dir, options(ttl)))
}

fn down() -> RemoteError {
    RemoteError::Unreachable("connection refused".into())
}

/// The names `readdir` shows at the root.
async fn names(core: &Core<MemoryRemote>) -> Vec<String> {
    common::core::names(core, ROOT_INO).await
}

#[tokio::test(start_paused = true)]
async fn a_new_mount_shows_the_kept_tree_without_a_listing_call_until_its_ttl() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "a", "a");
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(60);
    assert_eq!(names(&core_in(&remote, dir.path(), ttl)).await, ["a"]);
    remote.add_file(None, "b", "b");
    let calls = remote.calls().get(Op::ListFolder);
    let core = core_in(&remote, dir.path(), ttl);
    assert_eq!(names(&core).await, ["a"]);
    assert_eq!(remote.calls().get(Op::ListFolder), calls);
    // The kept listing's age at this mount is the wall-clock time since it was fetched (a
    // moment); from here on the mount's clock, paused, ages it.
    tokio::time::advance(ttl / 3).await;
    assert_eq!(names(&core).await, ["a"]);
    assert_eq!(remote.calls().get(Op::ListFolder), calls, "within its TTL");
    tokio::time::advance(ttl).await;
    assert_eq!(names(&core).await, ["a", "b"]);
    assert_eq!(remote.calls().get(Op::ListFolder), calls + 1);
}

#[tokio::test]
async fn a_kept_listing_past_half_its_ttl_is_shown_and_refreshed_in_the_background() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "a", "a");
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(4);
    assert_eq!(names(&core_in(&remote, dir.path(), ttl)).await, ["a"]);
    remote.add_file(None, "b", "b");
    // Real time: a kept listing's age is counted from the date the metadata store keeps with
    // it (the wall clock, which a paused tokio clock does not move).
    tokio::time::sleep(ttl / 2).await;
    let calls = remote.calls().get(Op::ListFolder);
    let core = core_in(&remote, dir.path(), ttl);
    tokio::spawn(Arc::clone(&core).watch());
    assert_eq!(names(&core).await, ["a"]);
    // Nobody asks again: the watcher fetches the listing in the background.
    let mut polls = 0;
    while remote.calls().get(Op::ListFolder) == calls {
        polls += 1;
        assert!(polls < 1000, "no background refresh");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while names(&core).await != ["a", "b"] {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        remote.calls().get(Op::ListFolder),
        calls + 1,
        "one listing, the watcher's"
    );
}

#[tokio::test]
async fn a_folder_this_mount_changed_is_listed_again_by_the_next_one() {
    let remote = Arc::new(MemoryRemote::new());
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(3600);
    let core = core_in(&remote, dir.path(), ttl);
    assert!(names(&core).await.is_empty());
    core.mkdir(ROOT_INO, "made", 0o755).await.unwrap();
    drop(core);
    assert_eq!(names(&core_in(&remote, dir.path(), ttl)).await, ["made"]);
}

#[tokio::test]
async fn offline_the_cached_tree_and_content_are_served_and_the_rest_is_eio() {
    let remote = Arc::new(MemoryRemote::new());
    let sub = remote.add_folder(None, "sub");
    remote.add_file(Some(sub), "inner", "never listed");
    remote.add_file(None, "cached", "cached bytes");
    remote.add_file(None, "cold", "never read");
    let dir = tempfile::tempdir().unwrap();
    let core = core_in(&remote, dir.path(), Duration::ZERO);
    let cached = core.lookup(ROOT_INO, "cached").await.unwrap();
    let cold = core.lookup(ROOT_INO, "cold").await.unwrap();
    let fh = core.open(cached.ino, libc::O_RDONLY).await.unwrap().fh;
    assert_eq!(&core.read(fh, 0, 100).await.unwrap()[..], b"cached bytes");
    remote.fail_next(Op::ListFolder, down());
    assert_eq!(names(&core).await, ["cached", "cold", "sub"]);
    assert!(!core.is_online());
    assert!(core.last_error().unwrap().contains("connection refused"));
    assert!(core.offline_since().is_some());
    assert_eq!(&core.read(fh, 0, 100).await.unwrap()[..], b"cached bytes");
    let cold_fh = core.open(cold.ino, libc::O_RDONLY).await.unwrap().fh;
    assert_eq!(errno(core.read(cold_fh, 0, 100).await), libc::EIO);
    let sub = core.lookup(ROOT_INO, "sub").await.unwrap();
    assert_eq!(errno(core.lookup(sub.ino, "inner").await), libc::EIO);
    let calls = remote.calls().total();
    assert_eq!(names(&core).await, ["cached", "cold", "sub"]);
    assert_eq!(remote.calls().total(), calls, "offline, nothing is asked");
}

#[tokio::test]
async fn offline_changes_are_refused_with_erofs() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "f", "data");
    remote.add_folder(None, "d");
    let dir = tempfile::tempdir().unwrap();
    let core = core_in(&remote, dir.path(), Duration::ZERO);
    let f = core.lookup(ROOT_INO, "f").await.unwrap();
    core.start_offline("test");
    let erofs = libc::EROFS;
    assert_eq!(
        errno(core.create(ROOT_INO, "n", 0o644, libc::O_WRONLY).await),
        erofs
    );
    assert_eq!(errno(core.mkdir(ROOT_INO, "n", 0o755).await), erofs);
    assert_eq!(errno(core.rmdir(ROOT_INO, "d").await), erofs);
    assert_eq!(errno(core.unlink(ROOT_INO, "f").await), erofs);
    assert_eq!(
        errno(core.rename(ROOT_INO, "f", ROOT_INO, "g", 0).await),
        erofs
    );
    assert_eq!(errno(core.open(f.ino, libc::O_WRONLY).await), erofs);
    assert!(core.open(f.ino, libc::O_RDONLY).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_write_closed_offline_is_queued_and_uploaded_when_the_server_answers() {
    let remote = Arc::new(MemoryRemote::new());
    let dir = tempfile::tempdir().unwrap();
    let core = core_in(&remote, dir.path(), Duration::from_secs(60));
    let (_, opened) = core
        .create(ROOT_INO, "late", 0o644, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    core.write(opened.fh, 0, b"written offline").await.unwrap();
    remote.fail_next(Op::Upload, down());
    core.flush(opened.fh).await.unwrap();
    core.release(opened.fh).await.unwrap();
    assert!(!core.is_online());
    assert_eq!(core.pending_uploads(), 1);
    assert!(remote.list_folder(None).await.unwrap().files.is_empty());
    remote.fail_next(Op::Limits, down());
    let probes = remote.calls().get(Op::Limits);
    tokio::spawn(Arc::clone(&core).watch());
    // An hour of the paused clock: the probes' backoff passes in no time.
    for _ in 0..3600 {
        if core.pending_uploads() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(core.pending_uploads(), 0, "never recovered");
    assert!(core.is_online());
    assert_eq!(
        remote.calls().get(Op::Limits) - probes,
        2,
        "a failed probe, then one that answered"
    );
    let files = remote.list_folder(None).await.unwrap().files;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "late");
    assert_eq!(files[0].size, 15);
}

#[tokio::test]
async fn a_connection_reset_on_an_answering_server_is_an_error_not_offline() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "f", "content");
    let core = Core::new(
        Arc::clone(&remote),
        FsOptions::new(Owner { uid: 0, gid: 0 }),
    )
    .unwrap();
    remote.fail_next(
        Op::ListFolder,
        RemoteError::Transport("connection reset".into()),
    );
    assert_eq!(
        core.lookup(ROOT_INO, "f").await.unwrap_err().errno(),
        libc::EIO
    );
    assert!(core.is_online(), "a reset is not an unreachable server");
    assert!(core.lookup(ROOT_INO, "f").await.is_ok());
}
