//! Uploads on real mounts, with and without `--write-back[=DELAY]`: `yetifs serve` and
//! `yetifs mount` run as the CLI runs them, and every result is checked on the server — through
//! the API and through a later mount with a fresh cache directory, whose bytes can only come
//! from the server.
//!
//! - A file one handle keeps writing while another opens, writes and closes it 40 times: every
//!   close succeeds, the server ends with the last bytes, once.
//! - Uploads that fail while the server answers are retried in the background until they
//!   succeed, without anyone touching the files again.
//! - `kill -9` with a full write-back queue loses nothing: the next mount on the same cache
//!   directory finishes the uploads, renames and replacements included.
//! - Write-back semantics: `close` returns before the upload, `fsync` waits for it, unmounting
//!   waits for all of them; `yetifs sync [PATH]` waits for what is under PATH and names what it
//!   could not upload.
//! - `tar -x` with write-back: times set after close ride with the pending upload.
//!
//! The servers here keep every client's token (the single-token quirk off): the tests look at
//! the account through their own API client while the mount runs. Needs `/dev/fuse`, the right
//! to mount (root) and `tar`.
mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::mount::{
    assert_same_file, bytes, count, mount_command, run_within, upload, walk_with, yetifs, Dice,
    Mount, Server,
};
use futures_util::StreamExt;
use yetifs::control::{StatusReport, UploadState, UploadStatus};
use yetifs::emulator::{Profile, Quirk, ServeArgs};
use yetifs::remote::{FileEntry, Remote};

/// How long a condition the mount works towards in the background may take to hold.
const DEADLINE: Duration = Duration::from_secs(60);

/// An emulator of `profile` that lets the tests' API client and the mounts hold tokens at once.
fn server(profile: Profile) -> Server {
    server_with(ServeArgs {
        profile,
        ..ServeArgs::default()
    })
}

fn server_with(mut args: ServeArgs) -> Server {
    args.quirks_off.push(Quirk::SingleToken);
    Server::with(args)
}

/// The address the emulator listens on, so that a restart can keep it.
fn address(server: &Server) -> SocketAddr {
    let url = server.url();
    let host = url
        .split("//")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    host.parse().unwrap()
}

/// Restarts the emulator on the same address and data with `faults` (`""`: none): to a mount,
/// the same server starts or stops failing.
fn set_faults(server: &mut Server, faults: &str) {
    let addr = address(server);
    server.restart(|args| {
        args.listen = addr;
        args.faults = faults.parse().unwrap();
    });
}

/// A mount of `server` with its cache in `cache`, its control socket under `runtime`, and
/// `extra` arguments.
fn mounted(server: &Server, cache: &Path, runtime: &Path, extra: &[&str]) -> Mount {
    let mut command = mount_command(server, cache, extra);
    command.env("XDG_RUNTIME_DIR", runtime);
    Mount::spawn(command, tempfile::tempdir().unwrap())
}

/// Runs `yetifs ARGS` against mounts whose control sockets are under `runtime`.
fn control(runtime: &Path, args: &[&OsStr]) -> Output {
    let mut command = yetifs();
    command.args(args).env("XDG_RUNTIME_DIR", runtime);
    run_within(&mut command, Duration::from_secs(120))
}

/// `yetifs sync MOUNTPOINT [PATH]`.
fn sync(mount: &Mount, runtime: &Path, under: Option<&Path>) -> Output {
    let mut args = vec![OsStr::new("sync"), mount.path().as_os_str()];
    args.extend(under.map(Path::as_os_str));
    control(runtime, &args)
}

/// Asserts that `yetifs sync` exited 0.
fn assert_synced(out: &Output, mount: &Mount) {
    assert!(
        out.status.success(),
        "yetifs sync: {}\n{}\nmount log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        mount.stderr()
    );
}

/// The pending upload of `name` in `report`, if listed.
fn pending<'a>(report: &'a StatusReport, name: &str) -> Option<&'a UploadStatus> {
    report.uploads.iter().find(|u| u.name == name)
}

/// Waits until `check` holds, or panics with the mount's log after [`DEADLINE`].
fn eventually(mount: &Mount, what: &str, check: impl FnMut() -> bool) {
    mount.eventually(what, DEADLINE, check);
}

/// Closes `file` and returns what `close(2)` said (dropping a `File` ignores it).
fn close(file: File) -> io::Result<()> {
    let fd = file.into_raw_fd();
    // SAFETY: the descriptor was just taken from the File, which no longer closes it.
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes `content` into a new file at `path` and closes it, returning the close's outcome.
fn write_closed(path: &Path, content: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(content)?;
    close(file)
}

/// The account's files, by path from the root (`dir/name`), as the API lists them; trashed
/// items left out. A path listed twice is two files of one name.
fn server_files(server: &Server) -> BTreeMap<String, Vec<FileEntry>> {
    let client = server.client();
    server.block_on(async {
        let mut out: BTreeMap<String, Vec<FileEntry>> = BTreeMap::new();
        let mut todo = vec![(None, String::new())];
        while let Some((folder, prefix)) = todo.pop() {
            let listing = client.list_folder(folder).await.unwrap();
            for f in listing.folders.iter().filter(|f| !f.trashed) {
                todo.push((Some(f.id), format!("{prefix}{}/", f.name)));
            }
            for f in listing.files.into_iter().filter(|f| !f.trashed) {
                out.entry(format!("{prefix}{}", f.name))
                    .or_default()
                    .push(f);
            }
        }
        out
    })
}

/// The bytes the server holds for `file`.
fn server_bytes(server: &Server, file: &FileEntry) -> Vec<u8> {
    let client = server.client();
    server.block_on(async {
        let mut stream = client.read(file.id, file.size, 0..file.size).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    })
}

/// Whether the server has exactly one file at `path`, holding `content`.
fn server_has(
    server: &Server,
    files: &BTreeMap<String, Vec<FileEntry>>,
    path: &str,
    content: &[u8],
) -> bool {
    match files.get(path).map(Vec::as_slice) {
        Some([file]) => file.size == content.len() as u64 && server_bytes(server, file) == content,
        _ => false,
    }
}

/// The files of `expected` (path in the mount, bytes) that `root` shows with other bytes, each
/// with what went wrong.
fn misread(root: &Path, expected: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut wrong = Vec::new();
    for (name, content) in expected {
        match fs::read(root.join(name)) {
            Ok(got) if got == *content => {}
            Ok(got) => {
                let at = got.iter().zip(content).position(|(a, b)| a != b);
                wrong.push(format!(
                    "{name}: {} bytes instead of {}, first difference at {}",
                    got.len(),
                    content.len(),
                    at.map_or_else(|| "the end".to_owned(), |at| at.to_string())
                ));
            }
            Err(e) => wrong.push(format!("{name}: {e}")),
        }
    }
    wrong
}

/// The names in folder `dir` of a mount, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn uploads(server: &Server) -> usize {
    count(&server.calls(), "file/upload")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. A busy writer and 40 closes of other handles.

/// The file stops growing at this size: every close uploads all of it.
const SHARED_MAX: u64 = 512 << 10;

/// One handle keeps writing `shared.bin` — chunks of up to 8 KiB at seeded offsets, a quarter
/// of them appended — while, 40 times, another handle opens it, writes 4 bytes and closes. Each
/// write goes to the mount and to a local copy under one lock, so both see the same order; the
/// closes (and the uploads they cause) run outside it, beside the writer. Returns how many of the
/// 40 open-write-close rounds failed, after checking everything else.
fn busy_writer_and_forty_closes(extra: &[&str], write_back: bool) -> usize {
    let server = server(Profile::V4);
    let (cache, runtime, local) = (tempdir(), tempdir(), tempdir());
    let mount = mounted(&server, cache.path(), runtime.path(), extra);
    let path = mount.path().join("shared.bin");
    let copy_path = local.path().join("shared.bin");

    let mut writer = File::create(&path).unwrap();
    let copy = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&copy_path)
        .unwrap();
    let start = bytes(1, 64 << 10);
    writer.write_all(&start).unwrap();
    copy.write_all_at(&start, 0).unwrap();

    let order = Mutex::new(());
    let writes = AtomicU64::new(0);
    let closer_done = AtomicBool::new(false);
    let mut failures = Vec::new();
    std::thread::scope(|s| {
        let writer_thread = s.spawn(|| {
            let mut dice = Dice::new(7);
            let mut n = 0u64;
            while !closer_done.load(Ordering::SeqCst) {
                {
                    let _order = order.lock().unwrap();
                    let len = copy.metadata().unwrap().len();
                    let chunk = bytes(1000 + n, 1 + dice.below(8 << 10) as usize);
                    let offset = if len < SHARED_MAX && dice.below(4) == 0 {
                        len
                    } else {
                        dice.below(len)
                    };
                    writer.write_all_at(&chunk, offset).unwrap();
                    copy.write_all_at(&chunk, offset).unwrap();
                }
                n += 1;
                writes.store(n, Ordering::SeqCst);
            }
            n
        });
        let mut dice = Dice::new(11);
        for round in 0..40u32 {
            // The writer gets a few writes in between, so every close has changes beside it.
            let seen = writes.load(Ordering::SeqCst);
            while writes.load(Ordering::SeqCst) < seen + 3 && !writer_thread.is_finished() {
                std::thread::sleep(Duration::from_millis(1));
            }
            let result = (|| {
                let file = OpenOptions::new().write(true).open(&path)?;
                {
                    let _order = order.lock().unwrap();
                    let offset = dice.below(copy.metadata()?.len());
                    let four = round.to_be_bytes();
                    file.write_all_at(&four, offset)?;
                    copy.write_all_at(&four, offset)?;
                }
                close(file)
            })();
            if let Err(e) = result {
                failures.push(format!("round {round}: {e}"));
            }
        }
        closer_done.store(true, Ordering::SeqCst);
        let written = writer_thread.join().unwrap();
        assert!(written >= 120, "the writer wrote only {written} times");
    });
    close(writer).expect("the writer's own close");
    if write_back {
        assert_synced(&sync(&mount, runtime.path(), None), &mount);
    }
    eprintln!(
        "{} write-back: {} of 40 closes beside a busy writer failed {failures:?}; {} uploads sent",
        if write_back { "with" } else { "without" },
        failures.len(),
        uploads(&server)
    );
    assert!(mount.status(runtime.path()).uploads.is_empty());
    assert!(mount.unmount().success());

    let fresh_cache = tempdir();
    let fresh = mounted(&server, fresh_cache.path(), runtime.path(), &[]);
    assert_same_file(&copy_path, &fresh.path().join("shared.bin"));
    assert_eq!(names_in(fresh.path()), ["shared.bin"]);
    let on_server = server_files(&server);
    assert_eq!(
        on_server.get("shared.bin").map(Vec::len),
        Some(1),
        "exactly one shared.bin on the server: {on_server:?}"
    );
    assert!(fresh.unmount().success());
    failures.len()
}

#[test]
fn forty_closes_beside_a_busy_writer_all_succeed_and_the_server_keeps_the_last_bytes_once() {
    let failed = busy_writer_and_forty_closes(&[], false);
    assert_eq!(failed, 0, "closes failed without write-back");
}

#[test]
fn forty_closes_beside_a_busy_writer_all_succeed_with_write_back_and_sync_uploads_the_last_bytes() {
    let failed = busy_writer_and_forty_closes(&["--write-back=0s"], true);
    assert_eq!(failed, 0, "closes failed with write-back");
}

// ---------------------------------------------------------------------------------------------
// 2. Failures while the server answers.

#[test]
fn uploads_failing_while_the_server_answers_are_retried_in_the_background_until_they_succeed() {
    let mut server = server(Profile::V5);
    let (cache, runtime) = (tempdir(), tempdir());
    let mount = mounted(&server, cache.path(), runtime.path(), &["--write-back=0s"]);
    // One upload first: the mount has its token, the package limits and the root listing, so
    // that while the server fails only the uploads themselves have anything to fail.
    write_closed(&mount.path().join("first.txt"), b"before the faults").unwrap();
    eventually(&mount, "first.txt uploaded", || {
        server_has(
            &server,
            &server_files(&server),
            "first.txt",
            b"before the faults",
        )
    });

    set_faults(&mut server, "error=1");
    let (errors_before, attempts_before) = (server.server_errors(), uploads(&server));
    let files: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| {
            (
                format!("retried-{i}.bin"),
                bytes(100 + i, 3000 + 1000 * i as usize),
            )
        })
        .collect();
    for (name, content) in &files {
        write_closed(&mount.path().join(name), content)
            .unwrap_or_else(|e| panic!("close of {name} under write-back: {e}"));
    }
    eventually(&mount, "every upload failed at least once", || {
        let report = mount.status(runtime.path());
        files.iter().all(|(name, _)| {
            pending(&report, name).is_some_and(|u| {
                u.state == UploadState::Failed && u.failures >= 1 && u.reason.is_some()
            })
        })
    });
    assert!(
        uploads(&server) >= attempts_before + files.len(),
        "every file's upload was sent"
    );
    assert!(
        server.server_errors() >= errors_before + files.len(),
        "the server answered them with errors"
    );

    set_faults(&mut server, "");
    eventually(
        &mount,
        "every file on the server, once, with its bytes",
        || {
            let on_server = server_files(&server);
            files
                .iter()
                .all(|(name, content)| server_has(&server, &on_server, name, content))
        },
    );
    eventually(&mount, "no upload pending", || {
        mount.status(runtime.path()).uploads.is_empty()
    });
    assert!(mount.unmount().success());
}

// ---------------------------------------------------------------------------------------------
// 3. kill -9 with a full queue.

#[test]
fn kill_9_with_a_full_write_back_queue_loses_nothing_once_a_mount_on_the_same_cache_resumes() {
    let server = server(Profile::V4);
    upload(&server, None, "replaced.txt", b"the server's old content");
    let (cache, runtime) = (tempdir(), tempdir());
    let mut first = mounted(&server, cache.path(), runtime.path(), &["--write-back=60s"]);
    let uploads_before = uploads(&server);

    let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..30u64 {
        let (name, content) = (
            format!("queued-{i:02}.bin"),
            bytes(200 + i, 500 + 997 * i as usize),
        );
        write_closed(&first.path().join(&name), &content).unwrap();
        expected.insert(name, content);
    }
    let replacement = b"new content, written over a file the server has".to_vec();
    write_closed(&first.path().join("replaced.txt"), &replacement).unwrap();
    expected.insert("replaced.txt".into(), replacement);
    let renamed = bytes(300, 12_345);
    write_closed(&first.path().join("before-rename.bin"), &renamed).unwrap();
    fs::rename(
        first.path().join("before-rename.bin"),
        first.path().join("after-rename.bin"),
    )
    .unwrap();
    expected.insert("after-rename.bin".into(), renamed);
    let queued = first.status(runtime.path()).uploads.len();
    assert_eq!(queued, 32, "every closed file waits for its upload");
    assert_eq!(
        uploads(&server),
        uploads_before,
        "nothing uploaded before the kill"
    );

    first.signal(libc::SIGKILL);
    let detached = Command::new("umount")
        .arg("-l")
        .arg(first.path())
        .status()
        .unwrap();
    assert!(detached.success(), "umount -l of the dead mount");
    assert!(!first.wait_exit().success());

    let second = mounted(&server, cache.path(), runtime.path(), &[]);
    let names: Vec<String> = expected.keys().cloned().collect();
    assert_eq!(
        names_in(second.path()),
        names,
        "the next mount shows what was closed, under the names it was given"
    );
    // Nobody asks for the uploads: the journal resumes by itself.
    eventually(
        &second,
        "the journal's uploads done in the background",
        || {
            let on_server = server_files(&server);
            expected
                .iter()
                .all(|(name, content)| server_has(&server, &on_server, name, content))
                && second.status(runtime.path()).uploads.is_empty()
        },
    );
    let on_server = server_files(&server);
    assert_eq!(
        on_server.keys().cloned().collect::<Vec<_>>(),
        names,
        "the server has the renamed file under its new name only"
    );
    assert!(
        on_server.values().all(|files| files.len() == 1),
        "a name twice on the server: {on_server:?}"
    );
    let wrong = misread(second.path(), &expected);
    assert!(
        wrong.is_empty(),
        "read through the mount that resumed the journal, once the server has every file: \
         {wrong:?}\nmount log:\n{}",
        second.stderr()
    );
    assert_synced(&sync(&second, runtime.path(), None), &second);
    assert!(second.status(runtime.path()).uploads.is_empty());
    assert!(second.unmount().success());

    let third_cache = tempdir();
    let third = mounted(&server, third_cache.path(), runtime.path(), &[]);
    assert_eq!(
        names_in(third.path()),
        names,
        "a fresh cache shows every file once, the renamed one under its new name only"
    );
    let wrong = misread(third.path(), &expected);
    assert!(wrong.is_empty(), "read from the server: {wrong:?}");
    assert!(third.unmount().success());
}

// ---------------------------------------------------------------------------------------------
// 4. What close, fsync and unmount wait for.

#[test]
fn with_write_back_close_returns_before_the_upload_and_status_lists_the_file_as_waiting() {
    let server = server(Profile::V5);
    let (cache, runtime) = (tempdir(), tempdir());
    let mount = mounted(&server, cache.path(), runtime.path(), &["--write-back=30s"]);
    let before = uploads(&server);
    let content = bytes(400, 70_000);
    write_closed(&mount.path().join("later.bin"), &content).unwrap();

    assert_eq!(uploads(&server), before, "close did not wait for an upload");
    let report = mount.status(runtime.path());
    let later = pending(&report, "later.bin").expect("later.bin is pending");
    assert_eq!(later.state, UploadState::Waiting, "{later:?}");
    assert_eq!(later.path.as_deref(), Some("later.bin"));
    assert_eq!(later.size, content.len() as u64);
    assert_eq!(later.failures, 0);
    assert!(
        later.starts_in_ms.is_some_and(|ms| ms > 0 && ms <= 30_000),
        "its upload starts within the delay: {later:?}"
    );
    let shown = misread(
        mount.path(),
        &BTreeMap::from([("later.bin".to_owned(), content)]),
    );
    assert!(
        shown.is_empty(),
        "the mount shows what was closed: {shown:?}"
    );
    assert!(!server_files(&server).contains_key("later.bin"));
    assert!(mount.unmount().success());
}

#[test]
fn fsync_uploads_at_once_even_with_a_long_write_back_delay() {
    let server = server(Profile::V4);
    let (cache, runtime) = (tempdir(), tempdir());
    let mount = mounted(&server, cache.path(), runtime.path(), &["--write-back=30s"]);
    let before = uploads(&server);
    let content = bytes(500, 100_000);
    let mut file = File::create(mount.path().join("synced.bin")).unwrap();
    file.write_all(&content).unwrap();
    file.sync_all().unwrap();

    assert_eq!(uploads(&server), before + 1, "fsync sent the upload");
    assert!(
        server_has(&server, &server_files(&server), "synced.bin", &content),
        "the server has the bytes once fsync returned"
    );
    close(file).unwrap();
    assert!(mount.status(runtime.path()).uploads.is_empty());
    assert!(mount.unmount().success());
    assert_eq!(
        uploads(&server),
        before + 1,
        "nothing changed after the fsync"
    );
}

#[test]
fn unmount_uploads_every_pending_file_before_the_mount_process_exits() {
    let server = server(Profile::V5);
    let (cache, runtime) = (tempdir(), tempdir());
    let mount = mounted(&server, cache.path(), runtime.path(), &["--write-back=30s"]);
    fs::create_dir(mount.path().join("dir")).unwrap();
    let mut expected = BTreeMap::new();
    for i in 0..10u64 {
        let name = if i % 2 == 0 {
            format!("top-{i}.bin")
        } else {
            format!("dir/inner-{i}.bin")
        };
        let content = bytes(600 + i, 1 + 4099 * i as usize);
        write_closed(&mount.path().join(&name), &content).unwrap();
        expected.insert(name, content);
    }
    assert_eq!(mount.status(runtime.path()).uploads.len(), 10);

    let exit = mount.unmount();
    assert!(exit.success(), "the mount process exited with {exit}");
    let on_server = server_files(&server);
    for (name, content) in &expected {
        assert!(
            server_has(&server, &on_server, name, content),
            "{name} on the server when the mount process has exited: {on_server:?}"
        );
    }
    let fresh_cache = tempdir();
    let fresh = mounted(&server, fresh_cache.path(), runtime.path(), &[]);
    let wrong = misread(fresh.path(), &expected);
    assert!(wrong.is_empty(), "read from the server: {wrong:?}");
    assert!(fresh.unmount().success());
}

// ---------------------------------------------------------------------------------------------
// 5. yetifs sync.

#[test]
fn sync_of_a_folder_uploads_what_is_under_it_and_leaves_the_rest_waiting() {
    let server = server(Profile::V4);
    let (cache, runtime) = (tempdir(), tempdir());
    let mount = mounted(&server, cache.path(), runtime.path(), &["--write-back=60s"]);
    let before = uploads(&server);
    for dir in ["a", "b"] {
        fs::create_dir(mount.path().join(dir)).unwrap();
        for i in 0..3u64 {
            let content = bytes(700 + i, 2000 + i as usize);
            write_closed(&mount.path().join(format!("{dir}/{i}.txt")), &content).unwrap();
        }
    }

    let out = sync(&mount, runtime.path(), Some(&mount.path().join("a")));
    assert_synced(&out, &mount);
    assert_eq!(
        uploads(&server),
        before + 3,
        "only the files under a/ were sent"
    );
    let on_server = server_files(&server);
    for i in 0..3u64 {
        let content = bytes(700 + i, 2000 + i as usize);
        assert!(server_has(
            &server,
            &on_server,
            &format!("a/{i}.txt"),
            &content
        ));
        assert!(
            !on_server.contains_key(&format!("b/{i}.txt")),
            "{on_server:?}"
        );
    }
    let report = mount.status(runtime.path());
    let mut left: Vec<(Option<String>, UploadState)> = report
        .uploads
        .iter()
        .map(|u| (u.path.clone(), u.state))
        .collect();
    left.sort_by(|x, y| x.0.cmp(&y.0));
    let waiting = |path: &str| (Some(path.to_owned()), UploadState::Waiting);
    assert_eq!(
        left,
        [waiting("b/0.txt"), waiting("b/1.txt"), waiting("b/2.txt")]
    );

    assert_synced(&sync(&mount, runtime.path(), None), &mount);
    assert_eq!(uploads(&server), before + 6);
    assert!(mount.unmount().success());
}

#[test]
fn sync_names_a_file_it_could_not_upload_with_the_reason_and_exits_1() {
    let server = server_with(ServeArgs {
        profile: Profile::V5,
        max_storage: 50_000,
        ..ServeArgs::default()
    });
    let (cache, runtime) = (tempdir(), tempdir());
    let mount = mounted(&server, cache.path(), runtime.path(), &["--write-back=60s"]);
    let small = bytes(800, 1000);
    write_closed(&mount.path().join("fits.txt"), &small).unwrap();
    write_closed(&mount.path().join("over-quota.bin"), &bytes(801, 80_000))
        .expect("under write-back, close does not wait for the server to refuse");

    let out = sync(&mount, runtime.path(), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "yetifs sync: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("yetifs: over-quota.bin: not uploaded: "))
        .unwrap_or_else(|| panic!("no line names over-quota.bin:\n{stderr}"));
    assert!(line.to_lowercase().contains("storage"), "{line}");
    assert!(!stderr.contains("fits.txt"), "{stderr}");
    assert!(server_has(
        &server,
        &server_files(&server),
        "fits.txt",
        &small
    ));

    let report = mount.status(runtime.path());
    assert_eq!(report.uploads.len(), 1, "{:?}", report.uploads);
    let failed = &report.uploads[0];
    assert_eq!(failed.name, "over-quota.bin");
    assert_eq!(failed.state, UploadState::Failed);
    assert!(failed.failures >= 1);
    assert!(
        failed
            .reason
            .as_deref()
            .is_some_and(|r| r.to_lowercase().contains("storage")),
        "{failed:?}"
    );
    // The file stays pending; unmounting tries once more and leaves it in the journal.
    let _ = mount.unmount();
}

// ---------------------------------------------------------------------------------------------
// 6. tar -x.

/// What `tar` keeps of a file: size, modification time, permission bits.
type Stat = (u64, SystemTime, u32);

/// The files under `root` with what tar keeps of them, and the folders (as `None`).
fn stats(root: &Path) -> BTreeMap<PathBuf, Option<Stat>> {
    walk_with(root, |meta| {
        (meta.len(), meta.modified().unwrap(), meta.mode() & 0o7777)
    })
}

#[test]
fn tar_extracted_with_write_back_reaches_the_server_with_its_times_and_one_edit_per_file() {
    let files = 200u64;
    let work = tempdir();
    let src = work.path().join("src");
    for i in 0..files {
        let dir = src.join(format!("d{}", i % 4));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("f{i:03}.txt"));
        // Two empty files, the rest up to 3 KiB.
        let len = if i % 100 == 0 {
            0
        } else {
            (i * 37 % 3000) as usize
        };
        fs::write(&path, bytes(900 + i, len)).unwrap();
        let mode = [0o644, 0o600, 0o755, 0o640][(i % 4) as usize];
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        let mtime = UNIX_EPOCH
            + Duration::new(
                1_500_000_000 + i * 3600,
                (i * 7_654_321 % 1_000_000_000) as u32,
            );
        let file = File::options().write(true).open(&path).unwrap();
        file.set_times(FileTimes::new().set_modified(mtime).set_accessed(mtime))
            .unwrap();
    }
    let tarball = work.path().join("t.tar");
    let tar = Command::new("tar")
        .args(["--format=posix", "-cf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());

    let server = server(Profile::V5);
    let (cache, runtime) = (tempdir(), tempdir());
    let mount = mounted(&server, cache.path(), runtime.path(), &["--write-back=30s"]);
    let since = server.calls().len();
    let target = mount.path().join("x");
    fs::create_dir(&target).unwrap();
    let tar = Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        tar.status.success(),
        "tar -x: {}",
        String::from_utf8_lossy(&tar.stderr)
    );
    assert_eq!(
        stats(&target),
        stats(&src),
        "the mount shows what tar wrote"
    );
    assert_synced(&sync(&mount, runtime.path(), None), &mount);
    let calls = server.calls().split_off(since);
    assert!(mount.unmount().success());

    assert_eq!(
        count(&calls, "file/upload"),
        files as usize,
        "one upload per file"
    );
    assert_eq!(
        count(&calls, "file/edit"),
        files as usize,
        "one file/edit per file: the times and modes tar set after writing rode with the upload"
    );
    let fresh_cache = tempdir();
    let fresh = mounted(&server, fresh_cache.path(), runtime.path(), &[]);
    let shown = fresh.path().join("x");
    let diff = Command::new("diff")
        .arg("-r")
        .arg(&src)
        .arg(&shown)
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "diff -r: {}",
        String::from_utf8_lossy(&diff.stdout)
    );
    assert_eq!(
        stats(&shown),
        stats(&src),
        "sizes, mtimes and modes from the server"
    );
    assert!(fresh.unmount().success());
}
