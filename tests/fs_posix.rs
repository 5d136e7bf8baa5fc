//! POSIX details over an in-memory account: names too long for a directory, and the renames
//! that cannot be done.
use std::sync::Arc;
use std::time::Duration;

use yetifs::fs::{Core, FsError, FsOptions, Ino, Owner, ROOT_INO};
use yetifs::remote::memory::MemoryRemote;

const OWNER: Owner = Owner {
    uid: 1000,
    gid: 1000,
};

fn new_core() -> Core<MemoryRemote> {
    let mut options = FsOptions::new(OWNER);
    options.dir_ttl = Duration::from_secs(60);
    Core::new(Arc::new(MemoryRemote::new()), options).unwrap()
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
