//! POSIX details on a real mount: a status change moves ctime and not mtime, a directory's
//! times follow changes of its entries, names past 255 bytes are too long, a file removed while
//! open has no links, `touch -a` sets the atime of a new empty file, and the requests a file of
//! this filesystem has nothing for (`isatty`'s ioctl, `poll`) are answered without a warning.
//! The mount trusts attributes for 0 s, so that every `stat` shows what the daemon answers
//! rather than what the kernel kept.
mod common;

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::mount::{sh, Mount, Server};
use yetifs::emulator::{Profile, RangeMode};

/// The time `touch -d @1000000000` gives.
const LONG_AGO: i64 = 1_000_000_000;

fn mount(server: &Server) -> Mount {
    mount_with(server, &[])
}

fn mount_with(server: &Server, extra: &[&str]) -> Mount {
    let mut args = vec!["--dir-ttl", "0"];
    args.extend_from_slice(extra);
    Mount::start(server, &args)
}

/// Seconds since the epoch, now.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn errno_of(result: std::io::Result<impl std::fmt::Debug>) -> Option<i32> {
    result.unwrap_err().raw_os_error()
}

/// Asserts that `path` has the mtime `touch -d` gave it long ago and a ctime of `since` or
/// later.
fn assert_status_changed(path: &Path, since: i64) {
    let meta = fs::metadata(path).unwrap();
    assert_eq!(meta.mtime(), LONG_AGO, "{}: mtime", path.display());
    assert!(
        meta.ctime() >= since,
        "{}: ctime {}",
        path.display(),
        meta.ctime()
    );
}

/// Asserts that directory `dir` shows an mtime and a ctime of `since` or later.
fn assert_dir_changed(dir: &Path, since: i64) {
    let meta = fs::metadata(dir).unwrap();
    assert!(
        meta.mtime() >= since,
        "{}: mtime {}",
        dir.display(),
        meta.mtime()
    );
    assert!(meta.ctime() >= meta.mtime(), "{}: ctime", dir.display());
}

#[test]
fn chmod_and_rename_set_ctime_to_now_and_keep_the_mtime_touch_gave() {
    let server = Server::start(Profile::V5, RangeMode::Correct);
    let m = mount(&server);
    let root = m.path();
    fs::write(root.join("f"), "content\n").unwrap();
    sh(root, &format!("touch -d @{LONG_AGO} f"));
    let since = now();
    fs::set_permissions(root.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_status_changed(&root.join("f"), since);
    fs::rename(root.join("f"), root.join("g")).unwrap();
    assert_status_changed(&root.join("g"), since);
    // What `cp -p` and `rsync -a` rely on: the mtime given is the mtime shown.
    sh(root, "cp -p g copy");
    assert_eq!(fs::metadata(root.join("copy")).unwrap().mtime(), LONG_AGO);
    assert!(m.unmount().success());
}

#[test]
fn a_directorys_mtime_and_ctime_follow_changes_of_its_entries() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let m = mount(&server);
    let (from, to) = (m.path().join("from"), m.path().join("to"));
    fs::create_dir(&from).unwrap();
    fs::create_dir(&to).unwrap();
    let age = |dir: &Path| sh(dir, &format!("touch -d @{LONG_AGO} ."));

    age(&from);
    let since = now();
    fs::write(from.join("file"), "x").unwrap();
    assert_dir_changed(&from, since);

    age(&from);
    age(&to);
    let since = now();
    fs::rename(from.join("file"), to.join("moved")).unwrap();
    assert_dir_changed(&from, since);
    assert_dir_changed(&to, since);

    age(&to);
    let since = now();
    fs::remove_file(to.join("moved")).unwrap();
    assert_dir_changed(&to, since);
    assert!(m.unmount().success());
}

#[test]
fn a_name_longer_than_255_bytes_is_too_long_not_missing() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let m = mount(&server);
    let root = m.path();
    fs::write(root.join("short"), "x").unwrap();
    for len in [256, 1000] {
        let long = root.join("n".repeat(len));
        let too_long = Some(libc::ENAMETOOLONG);
        assert_eq!(
            errno_of(fs::metadata(&long)),
            too_long,
            "stat of {len} bytes"
        );
        assert_eq!(errno_of(File::create(&long)), too_long, "create");
        assert_eq!(errno_of(fs::create_dir(&long)), too_long, "mkdir");
        assert_eq!(errno_of(fs::rename(root.join("short"), &long)), too_long);
        assert_eq!(
            errno_of(std::os::unix::fs::symlink("short", &long)),
            too_long
        );
    }
    assert_eq!(
        errno_of(fs::metadata(root.join("n".repeat(255)))),
        Some(libc::ENOENT)
    );
    assert!(m.unmount().success());
}

#[test]
fn fstat_of_a_file_unlinked_while_open_shows_no_links() {
    let server = Server::start(Profile::V5, RangeMode::Correct);
    let m = mount(&server);
    let path = m.path().join("doomed");
    fs::write(&path, "still readable\n").unwrap();
    let file = File::open(&path).unwrap();
    assert_eq!(file.metadata().unwrap().nlink(), 1);
    fs::remove_file(&path).unwrap();
    assert_eq!(file.metadata().unwrap().nlink(), 0);
    drop(file);
    assert!(m.unmount().success());
}

#[test]
fn touch_a_sets_the_atime_of_a_new_empty_file_as_touch_m_sets_its_mtime() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let m = mount(&server);
    let root = m.path();
    sh(root, "touch empty");
    sh(root, &format!("touch -a -d @{LONG_AGO} empty"));
    sh(root, "touch -m -d @1100000000 empty");
    let shown = sh(root, "stat -c '%X %Y %s' empty");
    assert_eq!(shown.trim(), format!("{LONG_AGO} 1100000000 0"));
    assert!(m.unmount().success());
}

#[test]
fn isatty_and_poll_on_a_file_are_answered_without_a_warning_in_the_log() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let m = mount_with(&server, &["-v"]);
    fs::write(m.path().join("script.py"), "print()\n").unwrap();
    let file = File::open(m.path().join("script.py")).unwrap();
    // What `isatty()` asks, and Python's `open()` with it.
    let mut termios = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: TCGETS writes at most one `termios` into the buffer given.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TCGETS, termios.as_mut_ptr()) };
    assert_eq!(rc, -1);
    let err = std::io::Error::last_os_error();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTTY), "{err}");
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the length given.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    assert_eq!((ready, poll.revents & libc::POLLIN), (1, libc::POLLIN));
    drop(file);
    let log = m.stderr();
    assert!(m.unmount().success());
    let ioctl: Vec<&str> = log.lines().filter(|l| l.contains("ioctl")).collect();
    assert!(
        !ioctl.is_empty() && ioctl.iter().all(|l| l.contains("DEBUG")),
        "{log}"
    );
    assert!(!log.contains("Not Implemented"), "{log}");
    assert!(!log.contains("WARN"), "{log}");
}
