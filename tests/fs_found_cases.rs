//! Cases the model test (`fs_model`) and the differential test of a real mount
//! (`mount_differential`) found, each reduced to its shortest form over the in-memory account
//! and kept here as a specification once fixed.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::core::{
    close_new, crash, delayed, errno, lookup, memory_core, names, options, options_with, read_all,
    server_files, unmount, write_file, CacheDir,
};
use yetifs::fs::{SetAttr, ROOT_INO};
use yetifs::remote::memory::MemoryRemote;

const HOUR: Duration = Duration::from_secs(3600);

/// Between a new file's upload and the `file/edit` that gives it its metadata (a second later,
/// in the background), a listing of its folder fetched again (an `rmdir` of the folder lists
/// it afresh, so does an expired listing) shows what the close left: an empty file empty, every
/// file with its mode and times, not the bare upload.
#[tokio::test]
async fn a_new_file_listed_again_before_its_metadata_edit_shows_what_the_close_left() {
    let remote = Arc::new(MemoryRemote::new());
    let core = memory_core(&remote, options(HOUR));
    let dir = core.mkdir(ROOT_INO, "d", 0o755).await.unwrap().ino;
    let mut closed = Vec::new();
    for (name, content) in [("empty", &b""[..]), ("full", &b"hello"[..])] {
        let ino = close_new(&core, dir, name, 0o600, content).await.ino;
        closed.push((core.getattr(ino).await.unwrap(), content));
    }
    assert_eq!(errno(core.rmdir(ROOT_INO, "d").await), libc::ENOTEMPTY);
    for (before, content) in closed {
        let shown = core.getattr(before.ino).await.unwrap();
        assert_eq!(
            (shown.size, shown.perm, shown.mtime),
            (content.len() as u64, 0o600, before.mtime),
            "as closed"
        );
        assert_eq!(read_all(&core, before.ino).await, content);
    }
}

/// The same window made permanent: a new file written again after its folder was listed in
/// that window goes up again with its own mode, not the bare upload's 0644, on every machine.
#[tokio::test]
async fn a_new_file_written_again_after_its_folder_was_listed_before_its_metadata_edit_keeps_its_mode(
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
/// the next mount of the same cache directory as it was closed (the journal row says how),
/// even before the journal is resumed, which waits while the server cannot be reached.
#[tokio::test]
async fn a_file_uploaded_but_not_given_its_metadata_when_the_process_died_shows_as_closed() {
    let remote = Arc::new(MemoryRemote::new());
    let cache = CacheDir::new();
    let core = cache.mount(&remote, options(HOUR));
    let created = close_new(&core, ROOT_INO, "empty", 0o600, b"").await;
    let closed = core.getattr(created.ino).await.unwrap();
    crash(core);
    let core = cache.mount(&remote, options(HOUR));
    let shown = core.getattr(lookup(&core, "empty").await).await.unwrap();
    assert_eq!(
        (shown.size, shown.perm, shown.mtime),
        (0, 0o600, closed.mtime)
    );
    assert!(read_all(&core, shown.ino).await.is_empty());
}

/// After a crash with a new version of a file closed under write-back (journaled, not uploaded
/// yet), the next mount of the same cache directory uploads it from the journal and deletes the
/// old version; but when nothing looked the file up before, the listing the last mount kept
/// (within its TTL) must not show the old version: the upload marks it out of date.
#[tokio::test]
async fn a_new_version_uploaded_from_the_journal_before_it_is_looked_up_is_what_the_mount_shows() {
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

/// A `truncate(2)` by path that runs while the file's last handle is being closed is kept: the
/// truncation counts as a handle while it runs, so the close does not drop the staged copy it
/// is filling. Through a real mount the kernel's release of a handle comes after `close(2)`
/// returns, so `cat f; truncate -s 35 f` lost the truncation now and then.
#[tokio::test]
async fn a_truncate_by_path_while_the_last_handle_is_released_is_kept() {
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
/// background; a listing fetched while those uploads land shows every file once, under its
/// name. It depends on how the watcher's uploads interleave with the listings, so it is tried
/// over several mounts. Still open: about one run in four, one listing in the hundreds this
/// test makes lacks a file or shows it twice (`name~ID` beside `name`), for that listing only.
/// An upload now counts as an edit of its folder the moment it lands, and a listing edited on
/// its way is fetched again (up to three times), which closed the windows `mount_write_back`'s
/// kill -9 test tripped on; what remains is a listing whose last fetch still races an upload
/// landing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "open race: a listing racing an upload's landing, see above"]
async fn a_listing_while_the_journal_resumes_shows_a_file_just_uploaded_once() {
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
