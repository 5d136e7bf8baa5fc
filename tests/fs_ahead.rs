//! Work the core does ahead of the user, driven through the core over an in-memory remote
//! with its watcher running: subfolder listings one level ahead of a directory read, a folder's
//! dates once one is waited for, a walk's neighbours, and the stop at unmount.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::core::{memory_core, options};
use yetifs::fs::{Core, Ino, ROOT_INO};
use yetifs::remote::memory::{MemoryRemote, Op};

/// A watched core over `remote`, listings trusted for an hour.
fn watched(remote: &Arc<MemoryRemote>) -> Arc<Core<MemoryRemote>> {
    let core = Arc::new(memory_core(remote, options(Duration::from_secs(3600))));
    tokio::spawn(Arc::clone(&core).watch());
    core
}

/// A folder `name` at the root holding `files` files; its id.
fn folder(remote: &MemoryRemote, name: &str, files: usize) -> u64 {
    let id = remote.add_folder(None, name);
    for i in 0..files {
        remote.add_file(Some(id), &format!("{name}-{i}"), "x");
    }
    id
}

/// Waits (in paused time: instantly) until `remote` has seen `n` calls of `op`.
async fn until_calls(remote: &MemoryRemote, op: Op, n: u64) {
    for _ in 0..1000 {
        if remote.calls().get(op) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{op:?}: {} calls, not {n}", remote.calls().get(op));
}

/// The entries of directory `dir` with their inodes, `.` and `..` left out.
async fn entries(core: &Core<MemoryRemote>, dir: Ino) -> Vec<(String, Ino)> {
    let fh = core.opendir(dir).unwrap();
    let plus = core.readdirplus(dir, fh, 0).await.unwrap();
    core.releasedir(fh).unwrap();
    plus.into_iter()
        .skip(2)
        .map(|e| (e.entry.name, e.entry.ino))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn reading_a_directory_lists_its_subfolders_ahead_but_no_deeper() {
    let remote = Arc::new(MemoryRemote::new());
    for name in ["a", "b", "c"] {
        let id = folder(&remote, name, 1);
        remote.add_folder(Some(id), "deeper");
    }
    let core = watched(&remote);
    entries(&core, ROOT_INO).await;
    until_calls(&remote, Op::ListFolder, 4).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        remote.calls().get(Op::ListFolder),
        4,
        "the root and its three folders"
    );
    assert_eq!(
        remote.calls().get(Op::FileInfo),
        0,
        "no date is fetched ahead"
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_date_waited_for_in_a_folder_fetches_the_others_in_the_background() {
    let remote = Arc::new(MemoryRemote::new());
    folder(&remote, "photos", 12);
    let core = watched(&remote);
    let photos = core.lookup(ROOT_INO, "photos").await.unwrap().ino;
    let shown = entries(&core, photos).await;
    assert!(shown.len() == 12);
    assert_eq!(remote.calls().get(Op::FileInfo), 0);
    core.getattr(shown[0].1).await.unwrap();
    until_calls(&remote, Op::FileInfo, 12).await;
    for (_, ino) in &shown {
        assert!(!core.getattr(*ino).await.unwrap().provisional);
    }
    assert_eq!(remote.calls().get(Op::FileInfo), 12, "each date once");
}

#[tokio::test(start_paused = true)]
async fn dates_waited_for_in_two_folders_of_a_parent_start_those_of_all_its_folders() {
    let remote = Arc::new(MemoryRemote::new());
    for name in ["a", "b", "c", "d"] {
        folder(&remote, name, 5);
    }
    let core = watched(&remote);
    let folders = entries(&core, ROOT_INO).await;
    until_calls(&remote, Op::ListFolder, 5).await;
    // Long after the root was read: an `ls -l` of one folder, not a walk.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let first = entries(&core, folders[0].1).await;
    core.getattr(first[0].1).await.unwrap();
    until_calls(&remote, Op::FileInfo, 5).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        remote.calls().get(Op::FileInfo),
        5,
        "one folder's ls -l fetches that folder's dates only"
    );
    let second = entries(&core, folders[1].1).await;
    core.getattr(second[0].1).await.unwrap();
    until_calls(&remote, Op::FileInfo, 20).await;
}

#[tokio::test(start_paused = true)]
async fn a_date_waited_for_right_after_its_parent_was_read_starts_all_its_neighbours() {
    let remote = Arc::new(MemoryRemote::new());
    for name in ["a", "b", "c"] {
        folder(&remote, name, 4);
    }
    let core = watched(&remote);
    let folders = entries(&core, ROOT_INO).await;
    until_calls(&remote, Op::ListFolder, 4).await;
    let first = entries(&core, folders[0].1).await;
    core.getattr(first[0].1).await.unwrap();
    until_calls(&remote, Op::FileInfo, 12).await;
}

#[tokio::test(start_paused = true)]
async fn nothing_more_is_fetched_ahead_once_stopped() {
    let remote = Arc::new(MemoryRemote::new());
    for i in 0..5 {
        folder(&remote, &format!("f{i}"), 2);
    }
    let core = watched(&remote);
    core.stop_ahead();
    entries(&core, ROOT_INO).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        remote.calls().get(Op::ListFolder),
        1,
        "the root only, for the reader"
    );
}

#[tokio::test(start_paused = true)]
async fn the_tree_walk_lists_every_folder_and_fetches_every_missing_date() {
    let remote = Arc::new(MemoryRemote::new());
    for name in ["a", "b"] {
        let id = folder(&remote, name, 3);
        let below = remote.add_folder(Some(id), "below");
        remote.add_file(Some(below), "deep", "y");
    }
    let core = watched(&remote);
    core.prefetch_tree();
    for _ in 0..1000 {
        if core.tree_progress().state != yetifs::fs::TreeState::Walking {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let walked = core.tree_progress();
    assert_eq!(walked.state, yetifs::fs::TreeState::Done, "{walked:?}");
    assert_eq!(
        (walked.folders, walked.files, walked.dates),
        (5, 8, 8),
        "{walked:?}"
    );
    let calls = remote.calls();
    assert_eq!((calls.get(Op::ListFolder), calls.get(Op::FileInfo)), (5, 8));
}
