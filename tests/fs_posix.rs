//! POSIX details of what `stat` shows, over an in-memory account: the status change time
//! (ctime), a directory's times when its entries change, names too long for a directory, the
//! link count of a file removed while open, and access times set with `utimens`.
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use yetifs::fs::{Attr, Core, FsError, FsOptions, Ino, Owner, SetAttr, WriteBackOptions, ROOT_INO};
use yetifs::remote::memory::MemoryRemote;

const OWNER: Owner = Owner {
    uid: 1000,
    gid: 1000,
};

/// A time long past, as `touch -d` or `rsync -a` give.
fn long_ago() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_000_000_000, 123_456_789)
}

/// A core over `remote`; `write_back` delays uploads (files stay pending), else `close`
/// uploads.
fn machine(remote: &Arc<MemoryRemote>, write_back: bool) -> Core<MemoryRemote> {
    let mut options = FsOptions::new(OWNER);
    options.dir_ttl = Duration::from_secs(60);
    if write_back {
        options.write_back = WriteBackOptions {
            delay: Some(Duration::from_secs(3600)),
            ..WriteBackOptions::default()
        };
    }
    Core::new(Arc::clone(remote), options).unwrap()
}

fn new_core() -> Core<MemoryRemote> {
    machine(&Arc::new(MemoryRemote::new()), false)
}

fn errno<T: std::fmt::Debug>(result: Result<T, FsError>) -> i32 {
    result.unwrap_err().errno()
}

/// Creates `name` in `dir` holding `content` and closes it (uploaded, or pending with
/// write-back).
async fn write_file(core: &Core<MemoryRemote>, dir: Ino, name: &str, content: &[u8]) -> Ino {
    let (attr, opened) = core
        .create(dir, name, 0o644, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    if !content.is_empty() {
        core.write(opened.fh, 0, content).await.unwrap();
    }
    core.release(opened.fh).await.unwrap();
    attr.ino
}

/// Gives `ino` the mtime (and atime) `when`, as `touch -d` does.
async fn set_times(core: &Core<MemoryRemote>, ino: Ino, when: SystemTime) -> Attr {
    let times = SetAttr {
        atime: Some(when),
        mtime: Some(when),
        ..SetAttr::default()
    };
    core.setattr(ino, times).await.unwrap()
}

/// A file of `core` whose times were set long ago, and the moment just after that.
async fn old_file(core: &Core<MemoryRemote>, name: &str) -> (Ino, SystemTime) {
    let ino = write_file(core, ROOT_INO, name, b"content").await;
    set_times(core, ino, long_ago()).await;
    (ino, SystemTime::now())
}

/// Asserts that `attr` still shows the mtime set long ago and a ctime of `since` or later.
fn assert_status_changed(attr: &Attr, since: SystemTime) {
    assert_eq!(attr.mtime, long_ago(), "the mtime is not touched");
    assert!(
        attr.ctime >= since,
        "ctime {:?} is older than the change at {since:?}",
        attr.ctime
    );
}

/// Creates directory `name` at the root with its times set long ago.
async fn old_dir(core: &Core<MemoryRemote>, name: &str) -> Ino {
    let ino = core.mkdir(ROOT_INO, name, 0o755).await.unwrap().ino;
    set_times(core, ino, long_ago()).await;
    ino
}

/// Asserts that directory `dir` shows an mtime and a ctime of `since` or later.
async fn assert_dir_changed(core: &Core<MemoryRemote>, dir: Ino, since: SystemTime) {
    let attr = core.getattr(dir).await.unwrap();
    assert!(attr.mtime >= since, "mtime {:?} is old", attr.mtime);
    assert!(attr.ctime >= attr.mtime, "ctime {:?} is old", attr.ctime);
}

#[tokio::test]
async fn utimens_sets_the_mtime_given_and_ctime_to_now() {
    let core = new_core();
    let ino = write_file(&core, ROOT_INO, "f", b"x").await;
    let before = SystemTime::now();
    let attr = set_times(&core, ino, long_ago()).await;
    assert_status_changed(&attr, before);
    assert_status_changed(&core.getattr(ino).await.unwrap(), before);
}

#[tokio::test]
async fn chmod_sets_ctime_to_now() {
    let core = new_core();
    let (ino, before) = old_file(&core, "f").await;
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    let attr = core.setattr(ino, chmod).await.unwrap();
    assert_eq!(attr.perm, 0o600);
    assert_status_changed(&attr, before);
    assert_status_changed(&core.getattr(ino).await.unwrap(), before);
}

#[tokio::test]
async fn chown_sets_ctime_to_now() {
    let core = new_core();
    let (ino, before) = old_file(&core, "f").await;
    let chown = SetAttr {
        uid: Some(0),
        gid: Some(0),
        ..SetAttr::default()
    };
    core.setattr(ino, chown).await.unwrap();
    assert_status_changed(&core.getattr(ino).await.unwrap(), before);
}

#[tokio::test]
async fn rename_sets_ctime_of_the_item_moved_to_now() {
    let core = new_core();
    let (ino, before) = old_file(&core, "f").await;
    core.rename(ROOT_INO, "f", ROOT_INO, "g", 0).await.unwrap();
    let attr = core.lookup(ROOT_INO, "g").await.unwrap();
    assert_eq!(attr.ino, ino);
    assert_status_changed(&attr, before);
}

#[tokio::test]
async fn a_write_moves_mtime_and_ctime_to_now_together() {
    let core = new_core();
    let (ino, before) = old_file(&core, "f").await;
    let opened = core.open(ino, libc::O_WRONLY).await.unwrap();
    core.write(opened.fh, 0, b"new").await.unwrap();
    let attr = core.getattr(ino).await.unwrap();
    assert!(attr.mtime >= before);
    assert_eq!(attr.ctime, attr.mtime);
    core.release(opened.fh).await.unwrap();
}

#[tokio::test]
async fn truncate_sets_mtime_and_ctime_to_now() {
    let core = new_core();
    let (ino, before) = old_file(&core, "f").await;
    let truncate = SetAttr {
        size: Some(2),
        ..SetAttr::default()
    };
    let attr = core.setattr(ino, truncate).await.unwrap();
    assert_eq!(attr.size, 2);
    assert!(attr.mtime >= before && attr.ctime >= attr.mtime);
}

#[tokio::test]
async fn another_mount_shows_the_mtime_as_ctime() {
    let remote = Arc::new(MemoryRemote::new());
    let a = machine(&remote, false);
    let (ino, _) = old_file(&a, "f").await;
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    a.setattr(ino, chmod).await.unwrap();
    a.sync(None, |_, _| {}).await;
    let b = machine(&remote, false);
    let attr = b.lookup(ROOT_INO, "f").await.unwrap();
    assert_eq!(
        (attr.perm, attr.mtime, attr.ctime),
        (0o600, long_ago(), long_ago())
    );
}

#[tokio::test]
async fn creating_an_entry_sets_the_directorys_mtime_and_ctime_to_now() {
    let core = new_core();
    let dir = old_dir(&core, "d").await;
    let mut since = SystemTime::now();
    write_file(&core, dir, "created", b"x").await;
    assert_dir_changed(&core, dir, since).await;

    for step in 0..3 {
        set_times(&core, dir, long_ago()).await;
        since = SystemTime::now();
        match step {
            0 => drop(core.mkdir(dir, "sub", 0o755).await.unwrap()),
            1 => drop(core.symlink(dir, "link", b"created").await.unwrap()),
            _ => drop(
                core.mknod(dir, "node", libc::S_IFREG | 0o644)
                    .await
                    .unwrap(),
            ),
        }
        assert_dir_changed(&core, dir, since).await;
    }
}

#[tokio::test]
async fn removing_an_entry_sets_the_directorys_mtime_and_ctime_to_now() {
    let core = new_core();
    let dir = old_dir(&core, "d").await;
    write_file(&core, dir, "file", b"x").await;
    core.mkdir(dir, "sub", 0o755).await.unwrap();

    set_times(&core, dir, long_ago()).await;
    let since = SystemTime::now();
    core.unlink(dir, "file").await.unwrap();
    assert_dir_changed(&core, dir, since).await;

    set_times(&core, dir, long_ago()).await;
    let since = SystemTime::now();
    core.rmdir(dir, "sub").await.unwrap();
    assert_dir_changed(&core, dir, since).await;
}

#[tokio::test]
async fn a_rename_sets_mtime_and_ctime_of_both_directories_to_now() {
    let core = new_core();
    let from = old_dir(&core, "from").await;
    let to = old_dir(&core, "to").await;
    write_file(&core, from, "f", b"x").await;
    set_times(&core, from, long_ago()).await;
    let since = SystemTime::now();
    core.rename(from, "f", to, "g", 0).await.unwrap();
    assert_dir_changed(&core, from, since).await;
    assert_dir_changed(&core, to, since).await;

    set_times(&core, to, long_ago()).await;
    let since = SystemTime::now();
    core.rename(to, "g", to, "h", 0).await.unwrap();
    assert_dir_changed(&core, to, since).await;
}

#[tokio::test]
async fn utimens_of_a_directory_wins_until_its_entries_change_again() {
    let core = new_core();
    let dir = old_dir(&core, "d").await;
    write_file(&core, dir, "f", b"x").await;
    // `rsync -a` and `cp -p` set a directory's times once its entries are in place.
    let attr = set_times(&core, dir, long_ago()).await;
    assert_eq!(attr.mtime, long_ago());
    assert_eq!(core.getattr(dir).await.unwrap().mtime, long_ago());
    let since = SystemTime::now();
    core.unlink(dir, "f").await.unwrap();
    assert_dir_changed(&core, dir, since).await;
}

#[tokio::test]
async fn a_name_longer_than_255_bytes_is_too_long_for_every_operation() {
    let core = new_core();
    write_file(&core, ROOT_INO, "short", b"x").await;
    core.mkdir(ROOT_INO, "dir", 0o755).await.unwrap();
    for len in [256, 1024] {
        let long = "n".repeat(len);
        let too_long = libc::ENAMETOOLONG;
        assert_eq!(errno(core.lookup(ROOT_INO, &long).await), too_long);
        let create = core.create(ROOT_INO, &long, 0o644, libc::O_CREAT | libc::O_WRONLY);
        assert_eq!(errno(create.await), too_long);
        assert_eq!(errno(core.mkdir(ROOT_INO, &long, 0o755).await), too_long);
        assert_eq!(
            errno(core.mknod(ROOT_INO, &long, libc::S_IFREG).await),
            too_long
        );
        assert_eq!(
            errno(core.symlink(ROOT_INO, &long, b"short").await),
            too_long
        );
        assert_eq!(errno(core.unlink(ROOT_INO, &long).await), too_long);
        assert_eq!(errno(core.rmdir(ROOT_INO, &long).await), too_long);
        let rename_to = core.rename(ROOT_INO, "short", ROOT_INO, &long, 0);
        assert_eq!(errno(rename_to.await), too_long);
        let rename_from = core.rename(ROOT_INO, &long, ROOT_INO, "other", 0);
        assert_eq!(errno(rename_from.await), too_long);
    }
    let longest = "n".repeat(255);
    assert_eq!(errno(core.lookup(ROOT_INO, &longest).await), libc::ENOENT);
}

#[tokio::test]
async fn a_rename_that_would_exchange_or_leave_a_whiteout_is_refused_and_moves_nothing() {
    let core = new_core();
    write_file(&core, ROOT_INO, "a", b"a").await;
    write_file(&core, ROOT_INO, "b", b"b").await;
    for flags in [libc::RENAME_EXCHANGE, libc::RENAME_WHITEOUT] {
        let renamed = core.rename(ROOT_INO, "a", ROOT_INO, "c", flags).await;
        assert_eq!(errno(renamed), libc::EINVAL);
    }
    assert!(core.lookup(ROOT_INO, "a").await.is_ok());
    assert_eq!(errno(core.lookup(ROOT_INO, "c").await), libc::ENOENT);
}

#[tokio::test]
async fn an_open_file_that_was_unlinked_has_no_links() {
    let core = new_core();
    let ino = write_file(&core, ROOT_INO, "read", b"kept open").await;
    assert_eq!(core.getattr(ino).await.unwrap().nlink, 1);
    let reading = core.open(ino, libc::O_RDONLY).await.unwrap();
    let since = SystemTime::now();
    core.unlink(ROOT_INO, "read").await.unwrap();
    let attr = core.getattr(ino).await.unwrap();
    assert_eq!(attr.nlink, 0);
    assert!(attr.ctime >= since, "an unlink is a status change");
    assert_eq!(
        &core.read(reading.fh, 0, 100).await.unwrap()[..],
        b"kept open"
    );
    core.release(reading.fh).await.unwrap();

    let (attr, writing) = core
        .create(ROOT_INO, "written", 0o644, libc::O_CREAT | libc::O_RDWR)
        .await
        .unwrap();
    core.write(writing.fh, 0, b"draft").await.unwrap();
    core.unlink(ROOT_INO, "written").await.unwrap();
    assert_eq!(core.getattr(attr.ino).await.unwrap().nlink, 0);
    core.release(writing.fh).await.unwrap();
}

#[tokio::test]
async fn a_file_replaced_by_a_rename_while_open_has_no_links() {
    let core = new_core();
    let victim = write_file(&core, ROOT_INO, "target", b"old").await;
    write_file(&core, ROOT_INO, "source", b"new").await;
    let open = core.open(victim, libc::O_RDONLY).await.unwrap();
    core.rename(ROOT_INO, "source", ROOT_INO, "target", 0)
        .await
        .unwrap();
    assert_eq!(core.getattr(victim).await.unwrap().nlink, 0);
    let shown = core.lookup(ROOT_INO, "target").await.unwrap();
    assert_eq!((shown.nlink, shown.size), (1, 3));
    core.release(open.fh).await.unwrap();
}

#[tokio::test]
async fn an_atime_set_on_a_new_empty_file_sticks_like_its_mtime() {
    for write_back in [false, true] {
        for content in [&b""[..], b"some bytes"] {
            let core = machine(&Arc::new(MemoryRemote::new()), write_back);
            let what = format!("write-back {write_back}, {} bytes", content.len());
            let ino = write_file(&core, ROOT_INO, "f", content).await;
            let atime = UNIX_EPOCH + Duration::new(1_100_000_000, 5);
            let both = SetAttr {
                atime: Some(atime),
                mtime: Some(long_ago()),
                ..SetAttr::default()
            };
            let attr = core.setattr(ino, both).await.unwrap();
            assert_eq!((attr.atime, attr.mtime), (atime, long_ago()), "{what}");
            core.sync(None, |_, _| {}).await;
            let attr = core.getattr(ino).await.unwrap();
            assert_eq!((attr.atime, attr.mtime), (atime, long_ago()), "{what}");

            // `touch -a -d`: the access time alone.
            let later = atime + Duration::from_secs(60);
            let only_atime = SetAttr {
                atime: Some(later),
                ..SetAttr::default()
            };
            core.setattr(ino, only_atime).await.unwrap();
            let attr = core.getattr(ino).await.unwrap();
            assert_eq!((attr.atime, attr.mtime), (later, long_ago()), "{what}");

            // `touch -m -d`: the modification time alone; the access time stays.
            let only_mtime = SetAttr {
                mtime: Some(atime),
                ..SetAttr::default()
            };
            core.setattr(ino, only_mtime).await.unwrap();
            let attr = core.getattr(ino).await.unwrap();
            assert_eq!((attr.atime, attr.mtime), (later, atime), "{what}");
        }
    }
}

#[tokio::test]
async fn a_write_after_utimens_makes_the_atime_the_mtime_again() {
    let core = new_core();
    let (ino, _) = old_file(&core, "f").await;
    let opened = core.open(ino, libc::O_WRONLY).await.unwrap();
    core.write(opened.fh, 0, b"more").await.unwrap();
    let attr = core.getattr(ino).await.unwrap();
    assert_eq!(attr.atime, attr.mtime);
    core.release(opened.fh).await.unwrap();
}
