//! The write side of the filesystem core over an in-memory account: what each write operation
//! does on the server, what it refuses, and that nothing written is lost when uploads fail or
//! the process dies.
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use common::core::{crash, errno, memory_core, names, options, read_all, server_file, server_type};
use yetifs::fs::{Attr, Core, Ino, SetAttr, ROOT_INO};
use yetifs::remote::memory::{MemoryRemote, Op};
use yetifs::remote::{Limits, Remote, RemoteError};

fn new_core(remote: &Arc<MemoryRemote>) -> Core<MemoryRemote> {
    memory_core(remote, options(Duration::from_secs(60)))
}

/// A core keeping its metadata and staging area in `dir`, as a mount does in its cache dir.
fn core_in(remote: &Arc<MemoryRemote>, dir: &Path) -> Core<MemoryRemote> {
    common::core::core_in(remote, dir, options(Duration::from_secs(60)))
}

/// Creates `name` in `dir` with `content` (mode 0644), closes it and waits for the upload.
async fn write_file(core: &Core<MemoryRemote>, dir: Ino, name: &str, content: &[u8]) -> Attr {
    common::core::write_file(core, dir, name, 0o644, content).await
}

#[tokio::test]
async fn a_new_file_is_uploaded_once_on_close_under_its_name() {
    let remote = Arc::new(MemoryRemote::new());
    let core = new_core(&remote);
    let attr = write_file(&core, ROOT_INO, "a.txt", b"hello").await;
    assert_eq!(remote.calls().get(Op::Upload), 1);
    assert_eq!(server_file(&remote, None, "a.txt").await.unwrap(), b"hello");
    let seen = core.lookup(ROOT_INO, "a.txt").await.unwrap();
    assert_eq!((seen.ino, seen.size), (attr.ino, 5));
    assert_eq!(read_all(&core, seen.ino).await, b"hello");
}

#[tokio::test]
async fn reads_of_a_file_being_written_see_the_written_bytes_and_holes_read_as_zeros() {
    let remote = Arc::new(MemoryRemote::new());
    let core = new_core(&remote);
    let (_, opened) = core
        .create(ROOT_INO, "holes", 0o644, libc::O_RDWR | libc::O_CREAT)
        .await
        .unwrap();
    core.write(opened.fh, 10, b"end").await.unwrap();
    core.write(opened.fh, 0, b"ab").await.unwrap();
    let data = core.read(opened.fh, 0, 100).await.unwrap();
    assert_eq!(&data[..], b"ab\0\0\0\0\0\0\0\0end");
    assert_eq!(remote.calls().get(Op::Upload), 0);
    core.release(opened.fh).await.unwrap();
    assert_eq!(
        server_file(&remote, None, "holes").await.unwrap(),
        b"ab\0\0\0\0\0\0\0\0end"
    );
}

#[tokio::test]
async fn overwriting_uploads_a_new_file_then_deletes_the_old_and_keeps_the_inode() {
    let remote = Arc::new(MemoryRemote::new());
    let old = remote.add_file(None, "f.txt", "old content");
    let core = new_core(&remote);
    let before = core.lookup(ROOT_INO, "f.txt").await.unwrap();
    let opened = core
        .open(before.ino, libc::O_WRONLY | libc::O_TRUNC)
        .await
        .unwrap();
    core.write(opened.fh, 0, b"new").await.unwrap();
    core.release(opened.fh).await.unwrap();
    assert_eq!(
        remote.calls().get(Op::Read),
        0,
        "truncated content is not fetched"
    );
    assert_eq!(server_file(&remote, None, "f.txt").await.unwrap(), b"new");
    assert!(remote.file_info(old).await.unwrap().entry.trashed);
    let after = core.lookup(ROOT_INO, "f.txt").await.unwrap();
    assert_eq!((after.ino, after.size), (before.ino, 3));
}

#[tokio::test]
async fn appending_fetches_the_old_content_once_and_uploads_old_plus_new() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "log", "line1\n");
    let core = new_core(&remote);
    let ino = core.lookup(ROOT_INO, "log").await.unwrap().ino;
    let opened = core
        .open(ino, libc::O_WRONLY | libc::O_APPEND)
        .await
        .unwrap();
    core.write(opened.fh, 0, b"line2\n").await.unwrap();
    core.write(opened.fh, 0, b"line3\n").await.unwrap();
    core.release(opened.fh).await.unwrap();
    assert_eq!(remote.calls().get(Op::Read), 1);
    assert_eq!(
        server_file(&remote, None, "log").await.unwrap(),
        b"line1\nline2\nline3\n"
    );
}

#[tokio::test]
async fn truncate_by_path_uploads_at_once_and_to_zero_stores_an_empty_file() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "t", "0123456789");
    let core = new_core(&remote);
    let ino = core.lookup(ROOT_INO, "t").await.unwrap().ino;
    let cut = SetAttr {
        size: Some(4),
        ..SetAttr::default()
    };
    assert_eq!(core.setattr(ino, cut).await.unwrap().size, 4);
    assert_eq!(server_file(&remote, None, "t").await.unwrap(), b"0123");
    let grow = SetAttr {
        size: Some(6),
        ..SetAttr::default()
    };
    core.setattr(ino, grow).await.unwrap();
    assert_eq!(server_file(&remote, None, "t").await.unwrap(), b"0123\0\0");
    let empty = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    core.setattr(ino, empty).await.unwrap();
    assert_eq!(server_file(&remote, None, "t").await.unwrap(), b"\n");
    assert!(server_type(&remote, None, "t")
        .await
        .starts_with("inode/x-empty;"));
    assert_eq!(names(&core, ROOT_INO).await, ["t"]);
    assert_eq!(core.getattr(ino).await.unwrap().size, 0);
}

#[tokio::test]
async fn empty_files_are_stored_as_one_byte_marked_empty_and_every_mount_shows_them_empty() {
    let remote = Arc::new(MemoryRemote::new());
    {
        let core = new_core(&remote);
        let folder = core.mkdir(ROOT_INO, "d", 0o755).await.unwrap();
        write_file(&core, folder.ino, "empty", b"").await;
        write_file(&core, ROOT_INO, ".keep", b"").await;
        assert_eq!(names(&core, folder.ino).await, ["empty"]);
    }
    let calls = remote.calls();
    assert_eq!((calls.get(Op::Upload), calls.get(Op::EditFile)), (2, 2));
    assert_eq!(server_file(&remote, None, ".keep").await.unwrap(), b"\n");
    let reads = remote.calls().get(Op::Read);
    let core = new_core(&remote);
    let mut root = names(&core, ROOT_INO).await;
    root.sort();
    assert_eq!(root, [".keep", "d"]);
    let folder = core.lookup(ROOT_INO, "d").await.unwrap();
    let empty = core.lookup(folder.ino, "empty").await.unwrap();
    assert_eq!(empty.size, 0);
    assert!(read_all(&core, empty.ino).await.is_empty());
    let opened = core.open(empty.ino, libc::O_WRONLY).await.unwrap();
    core.write(opened.fh, 0, b"now").await.unwrap();
    core.release(opened.fh).await.unwrap();
    assert_eq!(
        remote.calls().get(Op::Read),
        reads,
        "the stand-in byte is never read"
    );
    let d = remote.list_folder(None).await.unwrap().folders[0].id;
    assert_eq!(
        server_file(&remote, Some(d), "empty").await.unwrap(),
        b"now"
    );
    assert!(server_type(&remote, Some(d), "empty")
        .await
        .starts_with("application/octet-stream;"));
}

#[tokio::test]
async fn a_failed_upload_fails_close_with_the_servers_errno_and_is_retried() {
    let remote = Arc::new(MemoryRemote::new());
    let core = new_core(&remote);
    remote.fail_next(
        Op::Upload,
        RemoteError::NoSpace("Upload storage full".into()),
    );
    let (attr, opened) = core
        .create(ROOT_INO, "big", 0o644, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    core.write(opened.fh, 0, b"data").await.unwrap();
    assert_eq!(errno(core.flush(opened.fh).await), libc::ENOSPC);
    remote.fail_next(Op::Upload, RemoteError::Server("Failed moving file".into()));
    assert_eq!(errno(core.flush(opened.fh).await), libc::EIO);
    assert_eq!(core.pending_uploads(), 1);
    core.flush(opened.fh).await.unwrap();
    core.release(opened.fh).await.unwrap();
    assert_eq!(server_file(&remote, None, "big").await.unwrap(), b"data");
    core.sync(None, |_, _| {}).await;
    assert_eq!(core.pending_uploads(), 0);
    assert_eq!(core.getattr(attr.ino).await.unwrap().size, 4);
}

#[tokio::test]
async fn an_upload_cut_by_a_crash_is_completed_by_the_next_mount() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "doc", "version 1");
    remote.add_file(None, "other", "to be replaced");
    let dir = tempfile::tempdir().unwrap();
    {
        let core = core_in(&remote, dir.path());
        let ino = core.lookup(ROOT_INO, "doc").await.unwrap().ino;
        let opened = core
            .open(ino, libc::O_WRONLY | libc::O_TRUNC)
            .await
            .unwrap();
        core.write(opened.fh, 0, b"version 2").await.unwrap();
        remote.fail_next(Op::Upload, RemoteError::Server("killed".into()));
        assert_eq!(errno(core.flush(opened.fh).await), libc::EIO);
        write_file(&core, ROOT_INO, "new", b"fresh").await;
        let other = core.lookup(ROOT_INO, "other").await.unwrap().ino;
        let opened = core
            .open(other, libc::O_WRONLY | libc::O_TRUNC)
            .await
            .unwrap();
        core.write(opened.fh, 0, b"replaced").await.unwrap();
        remote.fail_next(Op::DeleteFile, RemoteError::Transport("killed".into()));
        assert_eq!(errno(core.flush(opened.fh).await), libc::EIO);
        core.flush(opened.fh).await.unwrap();
        let (_, second) = core
            .create(ROOT_INO, "half", 0o644, libc::O_WRONLY | libc::O_CREAT)
            .await
            .unwrap();
        core.write(second.fh, 0, b"never closed").await.unwrap();
        // The process dies here: no release, no unmount.
        crash(core);
    }
    assert_eq!(
        server_file(&remote, None, "doc").await.unwrap(),
        b"version 1"
    );
    let core = core_in(&remote, dir.path());
    let report = core.sync(None, |_, _| {}).await;
    assert_eq!((report.total, report.failed), (3, Vec::new()));
    assert_eq!(
        server_file(&remote, None, "doc").await.unwrap(),
        b"version 2"
    );
    assert_eq!(server_file(&remote, None, "new").await.unwrap(), b"fresh");
    assert_eq!(
        server_file(&remote, None, "half").await.unwrap(),
        b"\n",
        "created, so it exists; never closed, so it is empty"
    );
    assert!(server_type(&remote, None, "half")
        .await
        .starts_with("inode/x-empty;"));
    assert_eq!(core.pending_uploads(), 0);
}

#[tokio::test]
async fn a_file_over_the_upload_limit_is_refused_with_efbig_before_any_upload() {
    let remote = Arc::new(MemoryRemote::new());
    remote.set_limits(Limits {
        max_upload_size: Some(8),
        ..Limits::default()
    });
    let core = new_core(&remote);
    let (_, opened) = core
        .create(ROOT_INO, "f", 0o644, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    core.write(opened.fh, 0, b"12345678").await.unwrap();
    assert_eq!(errno(core.write(opened.fh, 8, b"9").await), libc::EFBIG);
    let grow = SetAttr {
        size: Some(9),
        fh: Some(opened.fh),
        ..SetAttr::default()
    };
    let ino = core.lookup(ROOT_INO, "f").await.unwrap().ino;
    assert_eq!(errno(core.setattr(ino, grow).await), libc::EFBIG);
    core.release(opened.fh).await.unwrap();
    assert_eq!(remote.calls().get(Op::Upload), 1);
}

#[tokio::test]
async fn mkdir_and_rmdir_create_and_delete_folders_and_rmdir_refuses_a_non_empty_one() {
    let remote = Arc::new(MemoryRemote::new());
    let core = new_core(&remote);
    let d = core.mkdir(ROOT_INO, "d", 0o755).await.unwrap();
    assert_eq!(errno(core.mkdir(ROOT_INO, "d", 0o755).await), libc::EEXIST);
    write_file(&core, d.ino, "f", b"x").await;
    assert_eq!(errno(core.rmdir(ROOT_INO, "d").await), libc::ENOTEMPTY);
    assert_eq!(errno(core.rmdir(d.ino, "f").await), libc::ENOTDIR);
    assert_eq!(errno(core.unlink(ROOT_INO, "d").await), libc::EISDIR);
    core.unlink(d.ino, "f").await.unwrap();
    assert_eq!(errno(core.unlink(d.ino, "f").await), libc::ENOENT);
    core.rmdir(ROOT_INO, "d").await.unwrap();
    assert!(names(&core, ROOT_INO).await.is_empty());
    let calls = remote.calls();
    assert_eq!(
        (calls.get(Op::RenameFolder), calls.get(Op::DeleteFolder)),
        (1, 1),
        "renamed to a reserved name before deletion"
    );
    let listing = remote.list_folder(None).await.unwrap();
    assert!(listing.folders[0].name.starts_with(".yetifs-deleted-"));
    let fresh = new_core(&remote);
    assert!(names(&fresh, ROOT_INO).await.is_empty());
}

#[tokio::test]
async fn rename_moves_and_renames_on_the_server_and_replaces_a_target_after_the_move() {
    let remote = Arc::new(MemoryRemote::new());
    let a = remote.add_folder(None, "a");
    let b = remote.add_folder(None, "b");
    let moved = remote.add_file(Some(a), "x.txt", "moved");
    let victim = remote.add_file(Some(b), "y.txt", "old target");
    let core = new_core(&remote);
    let dir_a = core.lookup(ROOT_INO, "a").await.unwrap().ino;
    let dir_b = core.lookup(ROOT_INO, "b").await.unwrap().ino;
    let x = core.lookup(dir_a, "x.txt").await.unwrap();
    core.rename(dir_a, "x.txt", dir_b, "y.txt", 0)
        .await
        .unwrap();
    assert!(names(&core, dir_a).await.is_empty());
    assert_eq!(names(&core, dir_b).await, ["y.txt"]);
    assert_eq!(core.lookup(dir_b, "y.txt").await.unwrap().ino, x.ino);
    let info = remote.file_info(moved).await.unwrap().entry;
    assert_eq!((info.folder, info.name.as_str()), (Some(b), "y.txt"));
    assert!(remote.file_info(victim).await.unwrap().entry.trashed);
    core.rename(dir_b, "y.txt", ROOT_INO, "top", 0)
        .await
        .unwrap();
    assert_eq!(remote.file_info(moved).await.unwrap().entry.folder, None);
}

#[tokio::test]
async fn rename_refuses_a_folder_into_itself_noreplace_and_kind_mismatches() {
    let remote = Arc::new(MemoryRemote::new());
    let a = remote.add_folder(None, "a");
    remote.add_folder(Some(a), "inner");
    remote.add_file(None, "f", "1");
    remote.add_file(None, "g", "2");
    let core = new_core(&remote);
    let dir_a = core.lookup(ROOT_INO, "a").await.unwrap().ino;
    let inner = core.lookup(dir_a, "inner").await.unwrap().ino;
    assert_eq!(
        errno(core.rename(ROOT_INO, "a", inner, "a", 0).await),
        libc::EINVAL
    );
    assert_eq!(
        errno(core.rename(ROOT_INO, "a", dir_a, "x", 0).await),
        libc::EINVAL
    );
    let noreplace = libc::RENAME_NOREPLACE;
    assert_eq!(
        errno(core.rename(ROOT_INO, "f", ROOT_INO, "g", noreplace).await),
        libc::EEXIST
    );
    assert_eq!(
        errno(core.rename(ROOT_INO, "f", ROOT_INO, "a", 0).await),
        libc::EISDIR
    );
    assert_eq!(
        errno(core.rename(ROOT_INO, "a", ROOT_INO, "f", 0).await),
        libc::ENOTDIR
    );
    assert_eq!(
        errno(core.rename(ROOT_INO, "nope", ROOT_INO, "x", 0).await),
        libc::ENOENT
    );
    assert_eq!(remote.calls().get(Op::MoveFolder), 0);
    core.rename(dir_a, "inner", ROOT_INO, "inner", 0)
        .await
        .unwrap();
    let mut root = names(&core, ROOT_INO).await;
    root.sort();
    assert_eq!(root, ["a", "f", "g", "inner"]);
}

#[tokio::test]
async fn times_and_mode_set_through_the_mount_are_shown_by_a_fresh_mount() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "f", "x");
    let dir = tempfile::tempdir().unwrap();
    let when = UNIX_EPOCH + Duration::new(1_000_000_000, 123);
    {
        let core = core_in(&remote, dir.path());
        let ino = core.lookup(ROOT_INO, "f").await.unwrap().ino;
        let set = SetAttr {
            mode: Some(0o100_600),
            mtime: Some(when),
            ..SetAttr::default()
        };
        let attr = core.setattr(ino, set).await.unwrap();
        assert_eq!((attr.perm, attr.mtime), (0o600, when));
    }
    let infos = remote.calls().get(Op::FileInfo);
    let fresh = tempfile::tempdir().unwrap();
    let core = core_in(&remote, fresh.path());
    let attr = core.lookup(ROOT_INO, "f").await.unwrap();
    assert_eq!((attr.perm, attr.mtime), (0o600, when));
    assert_eq!(
        remote.calls().get(Op::FileInfo),
        infos,
        "a set mtime needs no file/info"
    );
}

#[tokio::test]
async fn names_the_server_cannot_store_are_refused_with_a_clear_errno() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "f", "x");
    let core = new_core(&remote);
    let flags = libc::O_WRONLY | libc::O_CREAT;
    assert_eq!(
        errno(core.create(ROOT_INO, "rocket 🚀", 0o644, flags).await),
        libc::EILSEQ
    );
    assert_eq!(
        errno(core.mkdir(ROOT_INO, " padded", 0o755).await),
        libc::EINVAL
    );
    assert_eq!(
        errno(core.rename(ROOT_INO, "f", ROOT_INO, "<b>x</b>", 0).await),
        libc::EINVAL
    );
    let long = "n".repeat(256);
    assert_eq!(
        errno(core.create(ROOT_INO, &long, 0o644, flags).await),
        libc::ENAMETOOLONG
    );
    assert_eq!(
        remote.calls().get(Op::Upload) + remote.calls().get(Op::CreateFolder),
        0
    );
    write_file(&core, ROOT_INO, "ünïcødé 'quoted' \"name\".txt", b"ok").await;
    assert!(server_file(&remote, None, "ünïcødé 'quoted' \"name\".txt")
        .await
        .is_some());
}

#[tokio::test]
async fn a_whole_file_copy_is_done_on_the_server_without_moving_bytes() {
    let remote = Arc::new(MemoryRemote::new());
    let d = remote.add_folder(None, "d");
    remote.add_file(None, "src.bin", vec![7u8; 100_000]);
    let core = new_core(&remote);
    let src = core.lookup(ROOT_INO, "src.bin").await.unwrap();
    let dir = core.lookup(ROOT_INO, "d").await.unwrap().ino;
    let input = core.open(src.ino, libc::O_RDONLY).await.unwrap();
    let (_, output) = core
        .create(dir, "copy.bin", 0o644, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    let copied = core
        .copy_file_range(input.fh, 0, output.fh, 0, u64::MAX)
        .await
        .unwrap();
    assert_eq!(copied, 100_000);
    core.release(output.fh).await.unwrap();
    let partial = core.copy_file_range(input.fh, 1, output.fh, 0, 10).await;
    assert_eq!(errno(partial), libc::EBADF, "the output handle is closed");
    core.release(input.fh).await.unwrap();
    let calls = remote.calls();
    assert_eq!((calls.get(Op::CopyFile), calls.get(Op::Upload)), (1, 0));
    assert_eq!(calls.get(Op::Read), 0);
    assert_eq!(
        server_file(&remote, Some(d), "copy.bin").await.unwrap(),
        vec![7u8; 100_000]
    );
    let copy = core.lookup(dir, "copy.bin").await.unwrap();
    assert_eq!(copy.size, 100_000);
}

#[tokio::test]
async fn a_partial_copy_is_left_to_the_caller() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "src", "0123456789");
    let core = new_core(&remote);
    let src = core.lookup(ROOT_INO, "src").await.unwrap();
    let input = core.open(src.ino, libc::O_RDONLY).await.unwrap();
    let (_, output) = core
        .create(ROOT_INO, "dst", 0o644, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    let partial = core.copy_file_range(input.fh, 2, output.fh, 0, 5).await;
    assert_eq!(errno(partial), libc::EOPNOTSUPP);
    assert_eq!(remote.calls().get(Op::CopyFile), 0);
}

#[tokio::test]
async fn fallocate_extends_with_zeros_and_keep_size_changes_nothing() {
    let remote = Arc::new(MemoryRemote::new());
    let core = new_core(&remote);
    let (attr, opened) = core
        .create(ROOT_INO, "pre", 0o644, libc::O_RDWR | libc::O_CREAT)
        .await
        .unwrap();
    core.fallocate(opened.fh, 0, 100, libc::FALLOC_FL_KEEP_SIZE)
        .await
        .unwrap();
    assert_eq!(core.getattr(attr.ino).await.unwrap().size, 0);
    core.fallocate(opened.fh, 0, 16, 0).await.unwrap();
    assert_eq!(core.getattr(attr.ino).await.unwrap().size, 16);
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    assert_eq!(
        errno(core.fallocate(opened.fh, 0, 4, punch).await),
        libc::EOPNOTSUPP
    );
    core.release(opened.fh).await.unwrap();
    assert_eq!(
        server_file(&remote, None, "pre").await.unwrap(),
        vec![0u8; 16]
    );
}

#[tokio::test]
async fn unlinking_a_file_whose_upload_failed_drops_the_pending_upload() {
    let remote = Arc::new(MemoryRemote::new());
    let dir = tempfile::tempdir().unwrap();
    let core = core_in(&remote, dir.path());
    remote.fail_next(Op::Upload, RemoteError::Server("down".into()));
    let (_, opened) = core
        .create(ROOT_INO, "gone", 0o644, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    core.write(opened.fh, 0, b"bytes").await.unwrap();
    core.release(opened.fh).await.unwrap();
    assert_eq!(core.pending_uploads(), 1);
    core.unlink(ROOT_INO, "gone").await.unwrap();
    assert_eq!(core.pending_uploads(), 0);
    assert_eq!(core.sync(None, |_, _| {}).await.total, 0);
    assert_eq!(server_file(&remote, None, "gone").await, None);
}

#[tokio::test]
async fn a_listing_read_before_an_upload_finished_but_arriving_after_does_not_hide_the_file() {
    let remote = Arc::new(MemoryRemote::new());
    let core = Arc::new(memory_core(&remote, options(Duration::from_millis(100))));
    let (attr, opened) = core
        .create(ROOT_INO, "new.txt", 0o644, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    core.write(opened.fh, 0, b"fresh").await.unwrap();
    // Once the listing has aged, a readdir fetches it again; the server's answer is read
    // before the upload and arrives after it.
    tokio::time::sleep(Duration::from_millis(150)).await;
    remote.set_listing_transit(Duration::from_millis(300));
    let readdir = {
        let core = Arc::clone(&core);
        tokio::spawn(async move { names(&core, ROOT_INO).await })
    };
    tokio::task::yield_now().await;
    core.flush(opened.fh).await.unwrap();
    core.release(opened.fh).await.unwrap();
    readdir.await.unwrap();
    let found = core.lookup(ROOT_INO, "new.txt").await.unwrap();
    assert_eq!(found.ino, attr.ino);
    assert_eq!(read_all(&core, found.ino).await, b"fresh");
}

#[tokio::test]
async fn an_upload_never_sends_bytes_that_change_under_it_and_only_changing_handles_upload() {
    let remote = Arc::new(MemoryRemote::new());
    remote.set_latency(Op::Upload, Duration::from_millis(100));
    let core = Arc::new(new_core(&remote));
    let (attr, a) = core
        .create(ROOT_INO, "log", 0o644, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    core.write(a.fh, 0, b"aaaaaaaa").await.unwrap();

    let reader = core.open(attr.ino, libc::O_RDONLY).await.unwrap();
    core.release(reader.fh).await.unwrap();
    assert_eq!(
        remote.calls().get(Op::Upload),
        0,
        "a reader's close uploads nothing"
    );

    let b = core.open(attr.ino, libc::O_WRONLY).await.unwrap();
    core.write(b.fh, 0, b"BBBB").await.unwrap();
    let closing = {
        let core = Arc::clone(&core);
        tokio::spawn(async move { core.release(b.fh).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let writing = {
        let core = Arc::clone(&core);
        tokio::spawn(async move { core.write(a.fh, 8, b"cccccccc").await })
    };
    closing.await.unwrap().unwrap();
    assert_eq!(
        server_file(&remote, None, "log").await.unwrap(),
        b"BBBBaaaa",
        "the upload carried the bytes of its start, whole"
    );
    writing.await.unwrap().unwrap();
    core.release(a.fh).await.unwrap();
    assert_eq!(
        server_file(&remote, None, "log").await.unwrap(),
        b"BBBBaaaacccccccc"
    );
    assert_eq!(remote.calls().get(Op::Upload), 2);
}
