//! Metadata that crosses machines, over an in-memory account: what a file carries in its
//! `fileType`, what each change costs in server calls, and what a second mount with a cache of
//! its own shows. Two cores over one account stand for two machines.
mod common;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use common::core::{errno, memory_core, options, server_entry, OWNER};
use yetifs::fs::{Attr, Core, Ino, Kind, SetAttr, ROOT_INO};
use yetifs::remote::memory::{MemoryRemote, Op};
use yetifs::remote::{FileKind, FileMeta, Remote};

/// A mount of `remote` with a cache of its own, as on another machine.
fn machine(remote: &Arc<MemoryRemote>) -> Core<MemoryRemote> {
    memory_core(remote, options(Duration::from_secs(60)))
}

/// Creates `name` in `dir` with `content` (mode 0640), closes it and waits for the upload.
async fn write_file(core: &Core<MemoryRemote>, dir: Ino, name: &str, content: &[u8]) -> Attr {
    common::core::write_file(core, dir, name, 0o640, content).await
}

#[tokio::test]
async fn an_upload_costs_one_upload_and_one_edit_that_stores_mtime_and_mode() {
    let remote = Arc::new(MemoryRemote::new());
    let a = machine(&remote);
    write_file(&a, ROOT_INO, "notes.txt", b"hello").await;
    let calls = remote.calls();
    assert_eq!((calls.get(Op::Upload), calls.get(Op::EditFile)), (1, 1));
    let stored = server_entry(&remote, "notes.txt").await;
    let meta = FileMeta::parse(&stored.file_type).expect("yetifs metadata");
    assert_eq!((meta.kind, meta.mode), (FileKind::Regular, Some(0o640)));
    assert!(meta.mtime.is_some());

    let b = machine(&remote);
    let shown = b.lookup(ROOT_INO, "notes.txt").await.unwrap();
    assert_eq!((shown.size, shown.perm), (5, 0o640));
    assert_eq!(Some(shown.mtime), meta.mtime);
    assert_eq!(
        remote.calls().get(Op::FileInfo),
        0,
        "the listing has the mtime"
    );
}

#[tokio::test]
async fn chmod_utimens_and_chown_are_one_edit_each_and_seen_by_another_machine() {
    let remote = Arc::new(MemoryRemote::new());
    let a = machine(&remote);
    let ino = write_file(&a, ROOT_INO, "f", b"x").await.ino;
    let edits = remote.calls().get(Op::EditFile);
    let when = UNIX_EPOCH + Duration::new(1_500_000_000, 987_654_321);
    let steps = [
        SetAttr {
            mode: Some(0o100_755),
            ..SetAttr::default()
        },
        SetAttr {
            mtime: Some(when),
            atime: Some(when),
            ..SetAttr::default()
        },
        SetAttr {
            uid: Some(0),
            gid: Some(5),
            ..SetAttr::default()
        },
    ];
    for (done, step) in steps.into_iter().enumerate() {
        a.setattr(ino, step).await.unwrap();
        assert_eq!(remote.calls().get(Op::EditFile), edits + done as u64 + 1);
    }
    let b = machine(&remote);
    let shown = b.lookup(ROOT_INO, "f").await.unwrap();
    assert_eq!(
        (shown.perm, shown.mtime, shown.uid, shown.gid),
        (0o755, when, 0, 5)
    );
}

#[tokio::test]
async fn a_chown_to_the_owner_shown_already_sends_nothing() {
    let remote = Arc::new(MemoryRemote::new());
    let a = machine(&remote);
    let ino = write_file(&a, ROOT_INO, "f", b"x").await.ino;
    let edits = remote.calls().get(Op::EditFile);
    let same = SetAttr {
        uid: Some(OWNER.uid),
        gid: Some(OWNER.gid),
        ..SetAttr::default()
    };
    a.setattr(ino, same).await.unwrap();
    assert_eq!(remote.calls().get(Op::EditFile), edits);
    let meta = FileMeta::parse(&server_entry(&remote, "f").await.file_type).unwrap();
    assert_eq!(
        (meta.uid, meta.gid),
        (None, None),
        "another machine keeps its own owner"
    );
}

#[tokio::test]
async fn times_and_modes_set_right_after_a_close_ride_with_the_uploads_last_steps() {
    let remote = Arc::new(MemoryRemote::new());
    let a = machine(&remote);
    let (attr, opened) = a
        .create(ROOT_INO, "untarred", 0o600, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    a.write(opened.fh, 0, b"content").await.unwrap();
    a.release(opened.fh).await.unwrap();
    assert_eq!(remote.calls().get(Op::Upload), 1, "the close uploads");
    let when = UNIX_EPOCH + Duration::from_secs(1_234_567_890);
    let after = SetAttr {
        mode: Some(0o755),
        mtime: Some(when),
        ..SetAttr::default()
    };
    let shown = a.setattr(attr.ino, after).await.unwrap();
    assert_eq!((shown.perm, shown.mtime), (0o755, when));
    a.sync(None, |_, _| {}).await;
    assert_eq!(remote.calls().get(Op::EditFile), 1, "one edit carries all");
    let other = machine(&remote).lookup(ROOT_INO, "untarred").await.unwrap();
    assert_eq!((other.perm, other.mtime), (0o755, when));
}

#[tokio::test]
async fn a_listing_fetched_before_an_uploads_last_steps_shows_the_metadata_they_give() {
    let remote = Arc::new(MemoryRemote::new());
    let a = memory_core(&remote, options(Duration::ZERO));
    let (attr, opened) = a
        .create(ROOT_INO, "empty", 0o600, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    a.release(opened.fh).await.unwrap();
    let when = UNIX_EPOCH + Duration::from_secs(1_234_567_890);
    let touch = SetAttr {
        mtime: Some(when),
        ..SetAttr::default()
    };
    a.setattr(attr.ino, touch).await.unwrap();
    // The server holds a plain one-byte file until the last steps give it its metadata.
    assert_eq!(server_entry(&remote, "empty").await.size, 1);
    let relisted = a.lookup(ROOT_INO, "empty").await.unwrap();
    assert_eq!(
        (relisted.ino, relisted.size, relisted.perm, relisted.mtime),
        (attr.ino, 0, 0o600, when)
    );
    a.sync(None, |_, _| {}).await;
    let settled = a.lookup(ROOT_INO, "empty").await.unwrap();
    assert_eq!((settled.size, settled.mtime), (0, when));
}

#[tokio::test]
async fn attributes_set_while_a_file_is_written_travel_with_its_upload() {
    let remote = Arc::new(MemoryRemote::new());
    let a = machine(&remote);
    let (attr, opened) = a
        .create(ROOT_INO, "copy", 0o600, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    a.write(opened.fh, 0, b"content").await.unwrap();
    let when = UNIX_EPOCH + Duration::from_secs(1_234_567_890);
    let preserve = SetAttr {
        mode: Some(0o644),
        mtime: Some(when),
        fh: Some(opened.fh),
        ..SetAttr::default()
    };
    a.setattr(attr.ino, preserve).await.unwrap();
    a.release(opened.fh).await.unwrap();
    a.sync(None, |_, _| {}).await;
    let calls = remote.calls();
    assert_eq!((calls.get(Op::Upload), calls.get(Op::EditFile)), (1, 1));
    let shown = machine(&remote).lookup(ROOT_INO, "copy").await.unwrap();
    assert_eq!((shown.perm, shown.mtime), (0o644, when));
}

#[tokio::test]
async fn a_file_from_another_client_shows_its_upload_date_and_0644_until_changed() {
    let remote = Arc::new(MemoryRemote::new());
    let id = remote.add_file(None, "photo.jpg", "jpeg");
    remote.set_uploaded(id, Some(1_600_000_000)).unwrap();
    remote.set_file_type(id, "image/jpeg").unwrap();
    let a = machine(&remote);
    let found = a.lookup(ROOT_INO, "photo.jpg").await.unwrap();
    assert!(found.provisional, "a lookup does not wait for the date");
    assert_eq!(remote.calls().get(Op::FileInfo), 0);
    let shown = a.getattr(found.ino).await.unwrap();
    let uploaded = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    assert_eq!((shown.perm, shown.mtime, shown.size), (0o644, uploaded, 4));
    assert!(!shown.provisional);
    assert_eq!(remote.calls().get(Op::FileInfo), 1);
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    a.setattr(shown.ino, chmod).await.unwrap();
    let meta = FileMeta::parse(&server_entry(&remote, "photo.jpg").await.file_type).unwrap();
    assert_eq!((meta.mode, meta.mtime), (Some(0o600), Some(uploaded)));
}

#[tokio::test]
async fn bad_metadata_from_another_client_is_a_plain_file() {
    let remote = Arc::new(MemoryRemote::new());
    let bad = [
        "inode/symlink; mtime=170000",
        "inode/symlink; mtime=1; yetifs=9",
        "inode/x-empty; mode=banana; yetifs=1",
        "\u{0}\u{1}<>;;;=",
    ];
    for (i, value) in bad.iter().enumerate() {
        let id = remote.add_file(None, &format!("f{i}"), "abc");
        remote.set_uploaded(id, Some(100)).unwrap();
        remote.set_file_type(id, value).unwrap();
    }
    let a = machine(&remote);
    for i in 0..bad.len() {
        let found = a.lookup(ROOT_INO, &format!("f{i}")).await.unwrap();
        let shown = a.getattr(found.ino).await.unwrap();
        assert_eq!((shown.kind, shown.size, shown.perm), (Kind::File, 3, 0o644));
        assert_eq!(shown.mtime, UNIX_EPOCH + Duration::from_secs(100));
    }
}

#[tokio::test]
async fn a_symlink_is_a_file_holding_its_target_and_another_machine_reads_it_back() {
    let remote = Arc::new(MemoryRemote::new());
    let a = machine(&remote);
    let link = a
        .symlink(ROOT_INO, "latest", b"releases/v2.tar")
        .await
        .unwrap();
    assert_eq!(
        (link.kind, link.size, link.perm),
        (Kind::Symlink, 15, 0o777)
    );
    assert_eq!(&a.readlink(link.ino).await.unwrap()[..], b"releases/v2.tar");
    a.sync(None, |_, _| {}).await;
    let stored = server_entry(&remote, "latest").await;
    assert!(stored.file_type.starts_with("inode/symlink;"));

    let b = machine(&remote);
    let seen = b.lookup(ROOT_INO, "latest").await.unwrap();
    assert_eq!((seen.kind, seen.size), (Kind::Symlink, 15));
    assert_eq!(&b.readlink(seen.ino).await.unwrap()[..], b"releases/v2.tar");
    let reads = remote.calls().get(Op::Read);
    b.readlink(seen.ino).await.unwrap();
    assert_eq!(remote.calls().get(Op::Read), reads, "the target is cached");

    b.rename(ROOT_INO, "latest", ROOT_INO, "current", 0)
        .await
        .unwrap();
    let renamed = b.lookup(ROOT_INO, "current").await.unwrap();
    assert_eq!(renamed.kind, Kind::Symlink);
    b.unlink(ROOT_INO, "current").await.unwrap();
    assert!(remote
        .list_folder(None)
        .await
        .unwrap()
        .files
        .iter()
        .all(|f| f.trashed));
}

#[tokio::test]
async fn link_targets_past_4095_bytes_and_readlink_of_a_file_are_refused() {
    let remote = Arc::new(MemoryRemote::new());
    let a = machine(&remote);
    let long = vec![b'a'; 4096];
    assert_eq!(
        errno(a.symlink(ROOT_INO, "l", &long).await),
        libc::ENAMETOOLONG
    );
    let longest = vec![b'a'; 4095];
    assert_eq!(a.symlink(ROOT_INO, "l", &longest).await.unwrap().size, 4095);
    let file = write_file(&a, ROOT_INO, "plain", b"x").await;
    assert_eq!(errno(a.readlink(file.ino).await), libc::EINVAL);
    assert_eq!(remote.calls().get(Op::Upload), 2);
}

#[tokio::test]
async fn rclone_links_show_as_symlinks_under_their_own_name_and_keep_the_suffix() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "docs.rclonelink", "/srv/docs");
    remote.add_file(None, "notes.txt", "text");
    let a = machine(&remote);
    let link = a.lookup(ROOT_INO, "docs").await.unwrap();
    assert_eq!((link.kind, link.size), (Kind::Symlink, 9));
    assert_eq!(&a.readlink(link.ino).await.unwrap()[..], b"/srv/docs");
    assert_eq!(
        errno(a.lookup(ROOT_INO, "docs.rclonelink").await),
        libc::ENOENT
    );
    a.rename(ROOT_INO, "docs", ROOT_INO, "manual", 0)
        .await
        .unwrap();
    server_entry(&remote, "manual.rclonelink").await;
    let b = machine(&remote);
    assert_eq!(
        b.lookup(ROOT_INO, "manual").await.unwrap().kind,
        Kind::Symlink
    );
}

#[tokio::test]
async fn mknod_makes_regular_files_and_refuses_every_other_kind() {
    let remote = Arc::new(MemoryRemote::new());
    let a = machine(&remote);
    let made = a
        .mknod(ROOT_INO, "plain", libc::S_IFREG | 0o600)
        .await
        .unwrap();
    assert_eq!((made.kind, made.size, made.perm), (Kind::File, 0, 0o600));
    assert_eq!(remote.calls().get(Op::Upload), 1);
    for kind in [libc::S_IFIFO, libc::S_IFSOCK, libc::S_IFCHR, libc::S_IFBLK] {
        assert_eq!(
            errno(a.mknod(ROOT_INO, "odd", kind | 0o600).await),
            libc::EPERM
        );
    }
    a.sync(None, |_, _| {}).await;
    let b = machine(&remote);
    assert_eq!(b.lookup(ROOT_INO, "plain").await.unwrap().size, 0);
}

#[tokio::test]
async fn a_server_that_drops_file_types_keeps_attributes_on_this_machine_only() {
    let remote = Arc::new(MemoryRemote::new());
    remote.drop_file_types();
    let a = machine(&remote);
    write_file(&a, ROOT_INO, "empty", b"").await;
    let link = a.symlink(ROOT_INO, "link", b"empty").await.unwrap();
    let shown = a.lookup(ROOT_INO, "empty").await.unwrap();
    assert_eq!((shown.size, shown.perm), (0, 0o640));
    assert_eq!(a.getattr(link.ino).await.unwrap().kind, Kind::Symlink);

    let b = machine(&remote);
    let elsewhere = b.lookup(ROOT_INO, "empty").await.unwrap();
    assert_eq!((elsewhere.size, elsewhere.perm), (1, 0o644));
    assert_eq!(b.lookup(ROOT_INO, "link").await.unwrap().kind, Kind::File);
}
