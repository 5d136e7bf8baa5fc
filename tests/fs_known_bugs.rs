//! Bugs of the core that the model test (`fs_model`), the differential test of a real mount
//! (`mount_differential`) and a mount test failing now and then (`mount_write_back`) showed,
//! each reduced to its shortest case over the in-memory account.
//! Each test states what must hold and fails while the bug is there, so they are ignored:
//! `cargo test --test fs_known_bugs -- --ignored` runs them. Once a bug is fixed, its test
//! belongs with the others of its kind, not ignored.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::core::{
    crash, delayed, errno, lookup, memory_core, names, options, options_with, read_all,
    server_files, unmount, write_file, CacheDir,
};
use yetifs::fs::{Attr, Core, Ino, SetAttr, ROOT_INO};
use yetifs::remote::memory::MemoryRemote;

const HOUR: Duration = Duration::from_secs(3600);

/// Creates `name` in `dir` with `mode` and `content` and closes it, without waiting for the
/// upload's last steps (the watcher, not running here, does them a second later).
async fn close_new(
    core: &Core<MemoryRemote>,
    dir: Ino,
    name: &str,
    mode: u32,
    content: &[u8],
) -> Attr {
    let (attr, opened) = core
        .create(dir, name, mode, libc::O_CREAT | libc::O_WRONLY)
        .await
        .unwrap();
    core.write(opened.fh, 0, content).await.unwrap();
    core.release(opened.fh).await.unwrap();
    attr
}

/// Between a new file's upload and the `file/edit` that gives it its metadata (a second later,
/// in the background), a listing of its folder fetched again (an `rmdir` of the folder lists
/// it afresh, so does an expired listing) shows the bare upload: an empty file as the one byte
/// that stands in for it, every file with mode 0644 and the upload date.
#[tokio::test]
#[ignore = "bug: a folder listed again before a new file's metadata edit shows the bare upload"]
async fn bug_a_new_file_listed_again_before_its_metadata_edit_shows_the_bare_upload() {
    let remote = Arc::new(MemoryRemote::new());
    let core = memory_core(&remote, options(HOUR));
    let dir = core.mkdir(ROOT_INO, "d", 0o755).await.unwrap().ino;
    let empty = close_new(&core, dir, "empty", 0o600, b"").await;
    let full = close_new(&core, dir, "full", 0o600, b"hello").await;
    assert_eq!(errno(core.rmdir(ROOT_INO, "d").await), libc::ENOTEMPTY);
    for (attr, content) in [(empty, &b""[..]), (full, &b"hello"[..])] {
        let shown = core.getattr(attr.ino).await.unwrap();
        assert_eq!(
            (shown.size, shown.perm, shown.mtime),
            (content.len() as u64, 0o600, attr.mtime),
            "as written"
        );
        assert_eq!(read_all(&core, attr.ino).await, content);
    }
}

/// The same window made permanent: a new file written again after its folder was listed in
/// that window goes up again with what was shown, mode 0644, on every machine.
#[tokio::test]
#[ignore = "bug: a new file written again after a listing in its metadata window loses its mode"]
async fn bug_a_new_file_written_again_after_its_folder_was_listed_before_its_metadata_edit_loses_its_mode(
) {
    let remote = Arc::new(MemoryRemote::new());
    let core = memory_core(&remote, options(HOUR));
    let dir = core.mkdir(ROOT_INO, "d", 0o755).await.unwrap().ino;
    let file = close_new(&core, dir, "script", 0o700, b"#!/bin/sh\n").await;
    assert_eq!(errno(core.rmdir(ROOT_INO, "d").await), libc::ENOTEMPTY);
    let opened = core.open(file.ino, libc::O_WRONLY).await.unwrap();
    core.write(opened.fh, 10, b"true\n").await.unwrap();
    core.release(opened.fh).await.unwrap();
    unmount(&core).await;
    let elsewhere = memory_core(&remote, options(HOUR));
    let dir = elsewhere.lookup(ROOT_INO, "d").await.unwrap().ino;
    assert_eq!(elsewhere.lookup(dir, "script").await.unwrap().perm, 0o700);
}

/// A file whose upload was done, but not its metadata edit, when the process died is shown by
/// the next mount of the same cache directory as the bare upload until the journal is resumed
/// (which, while the server cannot be reached, waits): an empty file as one byte with mode
/// 0644 and the upload date.
#[tokio::test]
#[ignore = "bug: after a crash, an upload not given its metadata yet shows bare until resumed"]
async fn bug_a_file_uploaded_but_not_given_its_metadata_when_the_process_died_shows_the_bare_upload(
) {
    let remote = Arc::new(MemoryRemote::new());
    let cache = CacheDir::new();
    let core = cache.mount(&remote, options(HOUR));
    let created = close_new(&core, ROOT_INO, "empty", 0o600, b"").await;
    crash(core);
    let core = cache.mount(&remote, options(HOUR));
    let shown = core.getattr(lookup(&core, "empty").await).await.unwrap();
    assert_eq!(
        (shown.size, shown.perm, shown.mtime),
        (0, 0o600, created.mtime)
    );
    assert!(read_all(&core, shown.ino).await.is_empty());
}

/// After a crash with a new version of a file closed under write-back (journaled, not uploaded
/// yet), the next mount of the same cache directory uploads it from the journal and deletes the
/// old version; but when nothing looked the file up before, the listing the last mount kept
/// (within its TTL) still shows the old version, bytes and all.
#[tokio::test]
#[ignore = "bug: a new version the journal uploads before a lookup is hidden by the kept listing"]
async fn bug_a_new_version_uploaded_from_the_journal_before_it_is_looked_up_is_hidden_by_the_kept_listing(
) {
    let remote = Arc::new(MemoryRemote::new());
    let cache = CacheDir::new();
    let options = options_with(HOUR, delayed(HOUR));
    let core = cache.mount(&remote, options.clone());
    write_file(&core, ROOT_INO, "doc", 0o644, b"old").await;
    unmount(&core).await;
    drop(core);
    let core = cache.mount(&remote, options.clone());
    let opened = core
        .open(lookup(&core, "doc").await, libc::O_WRONLY | libc::O_TRUNC)
        .await
        .unwrap();
    core.write(opened.fh, 0, b"new").await.unwrap();
    core.flush(opened.fh).await.unwrap();
    crash(core);
    let core = cache.mount(&remote, options);
    let report = core.sync(None, |_, _| {}).await;
    assert_eq!((report.total, report.failed.len()), (1, 0));
    assert_eq!(server_files(&remote, None, "doc").await, [b"new".to_vec()]);
    assert_eq!(read_all(&core, lookup(&core, "doc").await).await, b"new");
}

/// With write-back, a file closed (journaled, its upload still to come) and opened again
/// shares its staged bytes with that close: writes through the new handle change what the
/// journal holds, so a crash before they are closed leaves bytes nobody closed, where the next
/// mount must show those of the last close.
#[tokio::test]
#[ignore = "bug: writes after a close not uploaded yet change the bytes the journal holds"]
async fn bug_writes_after_a_close_not_uploaded_yet_change_the_bytes_a_crash_leaves() {
    let remote = Arc::new(MemoryRemote::new());
    let cache = CacheDir::new();
    let options = options_with(HOUR, delayed(HOUR));
    let core = cache.mount(&remote, options.clone());
    let created = close_new(&core, ROOT_INO, "log", 0o644, b"closed").await;
    let again = core.open(created.ino, libc::O_WRONLY).await.unwrap();
    core.write(again.fh, 0, b"OPEN").await.unwrap();
    crash(core);
    let core = cache.mount(&remote, options);
    assert_eq!(
        read_all(&core, lookup(&core, "log").await).await,
        b"closed",
        "before the journal is resumed"
    );
    unmount(&core).await;
    assert_eq!(
        server_files(&remote, None, "log").await,
        [b"closed".to_vec()]
    );
}

/// A `truncate(2)` by path that runs while the file's last handle is being closed is lost: the
/// close drops the staged copy the truncation is still filling, the truncation finishes on a
/// copy nothing holds, and `truncate` reports success with the old size. Through a real mount
/// the kernel's release of a handle comes after `close(2)` returns, so `cat f; truncate -s 35
/// f` loses the truncation now and then.
#[tokio::test]
#[ignore = "bug: a truncate by path racing with the release of the last handle is lost"]
async fn bug_a_truncate_by_path_while_the_last_handle_is_released_is_lost() {
    for yields in 0..8 {
        let remote = Arc::new(MemoryRemote::new());
        let core = Arc::new(memory_core(&remote, options(HOUR)));
        let file = write_file(&core, ROOT_INO, "f", 0o644, b"0123456789").await;
        let reader = core.open(file.ino, libc::O_RDONLY).await.unwrap();
        let truncating = {
            let core = Arc::clone(&core);
            let grow = SetAttr {
                size: Some(35),
                ..SetAttr::default()
            };
            tokio::spawn(async move { core.setattr(file.ino, grow).await })
        };
        // Let the truncation start (on this single-threaded runtime, up to its first wait).
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        core.release(reader.fh).await.unwrap();
        let attr = truncating.await.unwrap().unwrap();
        unmount(&core).await;
        assert_eq!(attr.size, 35, "truncate's answer, {yields} yields in");
        assert_eq!(
            server_files(&remote, None, "f").await,
            [[&b"0123456789"[..], &[0; 25]].concat()],
            "{yields} yields in"
        );
    }
}

/// After a crash with write-back uploads pending, the next mount resumes the journal in the
/// background; a listing fetched after one of those uploads reached the server, but before
/// the journal recorded its id, shows the file twice — under its name (the pending copy) and
/// as `name~ID` (the server's) — and once the upload is done, as `name~ID` only, until the
/// folder is listed again. (`mount_write_back`'s kill -9 test trips on it now and then.)
/// It depends on how the watcher's uploads interleave with the listings, so it is tried over
/// several mounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "bug: a listing during the journal's resumption shows an uploaded file twice"]
async fn bug_a_listing_while_the_journal_resumes_shows_a_file_just_uploaded_twice() {
    let files: Vec<String> = (0..30).map(|i| format!("queued-{i:02}")).collect();
    for _ in 0..20 {
        let remote = Arc::new(MemoryRemote::new());
        let cache = CacheDir::new();
        let core = cache.mount(&remote, options_with(HOUR, delayed(HOUR)));
        for (i, name) in files.iter().enumerate() {
            close_new(&core, ROOT_INO, name, 0o644, &vec![i as u8; 100 + i]).await;
        }
        crash(core);
        let core = Arc::new(cache.mount(&remote, options(HOUR)));
        tokio::spawn(Arc::clone(&core).watch());
        core.resume_journal();
        while core.pending_uploads() > 0 {
            assert_eq!(names(&core, ROOT_INO).await, files, "while resuming");
            tokio::task::yield_now().await;
        }
        unmount(&core).await;
        assert_eq!(names(&core, ROOT_INO).await, files, "once resumed");
    }
}
