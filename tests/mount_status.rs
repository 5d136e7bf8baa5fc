//! `yetifs status` on real mounts: before any write, while an upload is held back by the
//! emulator's bandwidth cap (listed as uploading, with progress), and after it; its API request
//! counts match the emulator's access log request for request. And the flush at unmount shows
//! its progress as plain lines when standard error is not a terminal, and tells systemd.
mod common;

use std::fs;
use std::io::Write;
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

use common::mount::{
    bytes, is_mounted, mount_command, poll_until, polls, run_within, sh, upload, yetifs, Mount,
    Server, PATIENCE,
};
use yetifs::control::{StatusReport, UploadState};
use yetifs::emulator::{Profile, ServeArgs};

/// A throttled server: an upload of [`SIZE`] bytes takes seconds.
fn slow_server() -> Server {
    Server::with(ServeArgs {
        profile: Profile::V4,
        faults: "bandwidth=256KiB/s".parse().unwrap(),
        ..ServeArgs::default()
    })
}

/// Size of the file held back by the bandwidth cap.
const SIZE: usize = 1_500_000;

/// A mount with its own runtime directory (where its control socket goes).
fn mount_with_runtime(server: &Server, runtime: &Path) -> Mount {
    let dirs = tempfile::tempdir().unwrap();
    let mut command = mount_command(server, &dirs.path().join("cache"), &[]);
    command.env("XDG_RUNTIME_DIR", runtime);
    Mount::spawn(command, dirs)
}

fn status_command(point: &Path, runtime: &Path, json: bool) -> std::process::Output {
    let mut command = yetifs();
    command
        .arg("status")
        .arg(point)
        .env("XDG_RUNTIME_DIR", runtime);
    if json {
        command.arg("--json");
    }
    run_within(&mut command, PATIENCE)
}

fn status(point: &Path, runtime: &Path) -> StatusReport {
    let out = status_command(point, runtime, true);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Checks that every API endpoint's request count in `report` is what the access log holds
/// after its first `since` lines (those before the mount), and that no logged API request is
/// missing from the report.
fn assert_counts_match_the_access_log(report: &StatusReport, server: &Server, since: usize) {
    let logged: Vec<String> = server
        .calls()
        .split_off(since)
        .into_iter()
        .filter(|c| !c.starts_with('/'))
        .collect();
    let mut reported = 0;
    for e in report.api.iter().filter(|e| e.endpoint != "download") {
        let in_log = logged.iter().filter(|c| **c == e.endpoint).count() as u64;
        assert_eq!(e.requests, in_log, "{}: {:?}", e.endpoint, report.api);
        reported += e.requests;
    }
    assert_eq!(
        reported,
        logged.len() as u64,
        "{logged:?} vs {:?}",
        report.api
    );
}

#[test]
fn status_shows_an_upload_in_progress_then_none_with_request_counts_matching_the_access_log() {
    let server = slow_server();
    upload(&server, None, "small.txt", b"already there\n");
    let runtime = tempfile::tempdir().unwrap();
    let since = server.calls().len();
    let mount = mount_with_runtime(&server, runtime.path());
    assert_eq!(sh(mount.path(), "cat small.txt"), "already there\n");

    let before = status(mount.path(), runtime.path());
    assert_eq!(before.mountpoint, mount.path().display().to_string());
    assert_eq!(before.pid, mount.pid());
    assert!(before.uploads.is_empty(), "{:?}", before.uploads);
    assert_eq!(before.server_state.online, Some(true));
    assert_eq!(before.cache.memory_limit, 256 << 20);
    assert_eq!(before.traffic.bytes_read, 14);
    assert_counts_match_the_access_log(&before, &server, since);

    let content = bytes(6, SIZE);
    let writer = {
        let (path, content) = (mount.path().join("big.bin"), content.clone());
        std::thread::spawn(move || fs::write(path, content))
    };
    let mut looks = polls(PATIENCE, Duration::from_millis(100));
    let during = loop {
        let report = status(mount.path(), runtime.path());
        let halfway = report
            .uploads
            .iter()
            .any(|u| u.state == UploadState::Uploading && u.sent.is_some_and(|s| s > 0));
        if halfway {
            break report;
        }
        assert!(looks > 0, "no upload in progress seen: {report:?}");
        looks -= 1;
        std::thread::sleep(Duration::from_millis(100));
    };
    let upload = &during.uploads[0];
    assert_eq!(
        (upload.name.as_str(), upload.size),
        ("big.bin", SIZE as u64)
    );
    // Bytes handed to the connection: the socket buffers may already hold all of them.
    assert!(upload.sent.unwrap() <= SIZE as u64, "{upload:?}");
    assert!(!writer.is_finished(), "the close returned while uploading");
    let text = status_command(mount.path(), runtime.path(), false);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("uploading big.bin"), "{text}");
    assert!(text.contains("1 pending, 0 failed"), "{text}");

    writer.join().unwrap().unwrap();
    // The close returned with the bytes on the server; the name fix and metadata follow.
    let mut looks = polls(PATIENCE, Duration::from_millis(100));
    let after = loop {
        let report = status(mount.path(), runtime.path());
        if report.uploads.is_empty() {
            break report;
        }
        assert!(
            looks > 0,
            "the upload's last steps never ended: {:?}",
            report.uploads
        );
        looks -= 1;
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(after.traffic.bytes_written, SIZE as u64);
    let uploads = after
        .api
        .iter()
        .find(|e| e.endpoint == "file/upload")
        .unwrap();
    assert_eq!((uploads.requests, uploads.errors), (1, 0));
    assert_counts_match_the_access_log(&after, &server, since);
    assert!(mount.unmount().success());
}

#[test]
fn status_counts_failed_requests_by_operation_and_errno_and_the_log_has_them_at_debug() {
    let server = Server::start(Profile::V4, yetifs::emulator::RangeMode::Naive);
    let runtime = tempfile::tempdir().unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let mut command = mount_command(&server, &dirs.path().join("cache"), &["-v"]);
    command.env("XDG_RUNTIME_DIR", runtime.path());
    let mount = Mount::spawn(command, dirs);
    let root = mount.path();
    fs::create_dir(root.join("full")).unwrap();
    fs::write(root.join("full/inside.txt"), "x").unwrap();
    // The kernel looked each new name up before creating it.
    let count = |report: &StatusReport, op: &str, errno: &str| {
        report
            .errors
            .get(op)
            .and_then(|by_errno| by_errno.get(errno))
            .copied()
            .unwrap_or(0)
    };
    let before = status(root, runtime.path());
    assert_eq!(count(&before, "rmdir", "ENOTEMPTY"), 0);
    for name in ["missing-1", "missing-2", "missing-3"] {
        let err = fs::metadata(root.join(name)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }
    let err = fs::remove_dir(root.join("full")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTEMPTY));

    let report = status(root, runtime.path());
    assert_eq!(
        count(&report, "lookup", "ENOENT"),
        count(&before, "lookup", "ENOENT") + 3,
        "{:?}",
        report.errors
    );
    assert_eq!(
        count(&report, "rmdir", "ENOTEMPTY"),
        1,
        "{:?}",
        report.errors
    );
    let json = status_command(root, runtime.path(), true);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["errors"]["rmdir"]["ENOTEMPTY"], 1, "{json}");
    let text = status_command(root, runtime.path(), false);
    let text = String::from_utf8_lossy(&text.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("errors:"))
        .unwrap_or("");
    assert!(line.contains("rmdir 1 (ENOTEMPTY 1)"), "{text}");

    let log = mount.stderr();
    assert!(mount.unmount().success());
    let about = |what: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(what))
            .map(str::to_owned)
            .collect()
    };
    let missing = about("lookup /missing-2: no such file or directory (ENOENT)");
    assert!(missing.len() == 1 && missing[0].contains("DEBUG"), "{log}");
    let not_empty = about("rmdir /full: directory not empty (ENOTEMPTY)");
    assert!(
        not_empty.len() == 1 && not_empty[0].contains("DEBUG"),
        "{log}"
    );
}

#[test]
fn a_failed_upload_is_logged_once_at_warn_by_the_upload_and_the_close_at_debug() {
    let server = Server::with(ServeArgs {
        profile: Profile::V4,
        max_storage: 100,
        ..ServeArgs::default()
    });
    let runtime = tempfile::tempdir().unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let mut command = mount_command(&server, &dirs.path().join("cache"), &["-v"]);
    command.env("XDG_RUNTIME_DIR", runtime.path());
    let mount = Mount::spawn(command, dirs);
    let mut file = fs::File::create(mount.path().join("big.bin")).unwrap();
    file.write_all(&bytes(3, 1000)).unwrap();
    // SAFETY: the descriptor is the file's own, given up by `into_raw_fd`.
    let rc = unsafe { libc::close(file.into_raw_fd()) };
    let err = std::io::Error::last_os_error();
    assert_eq!((rc, err.raw_os_error()), (-1, Some(libc::ENOSPC)), "{err}");
    let report = status(mount.path(), runtime.path());
    let flush = report.errors.get("flush").cloned().unwrap_or_default();
    assert_eq!(flush.get("ENOSPC"), Some(&1), "{:?}", report.errors);

    let log = mount.stderr();
    drop(mount);
    let warned = log
        .lines()
        .any(|l| l.contains("WARN") && l.contains("upload of big.bin failed"));
    assert!(warned, "{log}");
    let closed = log
        .lines()
        .find(|l| l.contains("flush /big.bin: upload failed"))
        .unwrap_or_default();
    assert!(
        closed.contains("DEBUG") && closed.contains("(ENOSPC)"),
        "{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains("WARN") && l.contains("yetifs::fuse")),
        "the adapter warned again: {log}"
    );
}

#[test]
fn status_says_offline_with_the_last_error_once_the_server_stops_answering() {
    let mut server = Server::start(Profile::V5, yetifs::emulator::RangeMode::Naive);
    let runtime = tempfile::tempdir().unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let mut command = mount_command(&server, &dirs.path().join("cache"), &["--dir-ttl", "1"]);
    command.env("XDG_RUNTIME_DIR", runtime.path());
    let mount = Mount::spawn(command, dirs);
    sh(mount.path(), "ls");
    assert_eq!(
        status(mount.path(), runtime.path()).server_state.online,
        Some(true)
    );
    server.stop();
    std::thread::sleep(Duration::from_millis(1500));
    // Whether this listing fails or is served from what is cached, it asks the server.
    let _ = std::process::Command::new("ls").arg(mount.path()).output();
    let report = status(mount.path(), runtime.path());
    assert_eq!(report.server_state.online, Some(false), "{report:?}");
    let failure = report.server_state.last_failure.unwrap();
    assert_eq!(failure.endpoint, "folder/listing");
    assert!(failure.error.starts_with("cannot connect"), "{failure:?}");
    let text = status_command(mount.path(), runtime.path(), false);
    assert!(String::from_utf8_lossy(&text.stdout).contains("OFFLINE"));
    assert!(mount.unmount().success());
}

#[test]
fn status_of_a_directory_that_is_no_yetifs_mount_fails_with_a_clear_message() {
    let runtime = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = status_command(dir.path(), runtime.path(), false);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no yetifs mount answers"), "{stderr}");
}

#[test]
fn a_signal_during_an_upload_flushes_it_with_plain_progress_lines_before_unmounting() {
    let server = slow_server();
    let runtime = tempfile::tempdir().unwrap();
    let notify_path = runtime.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(PATIENCE)).unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let mut command = mount_command(&server, &dirs.path().join("cache"), &[]);
    command
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("NOTIFY_SOCKET", &notify_path);
    let mut mount = Mount::spawn(command, dirs);
    let content = bytes(7, SIZE);
    let writer = {
        let (path, content) = (mount.path().join("late.bin"), content.clone());
        std::thread::spawn(move || fs::write(path, content))
    };
    let uploading = |report: StatusReport| {
        report
            .uploads
            .iter()
            .any(|u| u.state == UploadState::Uploading)
    };
    assert!(
        poll_until(PATIENCE, Duration::from_millis(50), || uploading(status(
            mount.path(),
            runtime.path()
        ))),
        "the upload never started"
    );
    mount.signal(libc::SIGTERM);
    writer.join().unwrap().unwrap();
    let exit = mount.wait_exit();
    assert!(exit.success(), "{exit}: {}", mount.stderr());
    assert!(!is_mounted(mount.path()));
    let stderr = mount.stderr();
    assert!(stderr.contains("flushing uploads: 1/1 done"), "{stderr}");
    assert!(
        stderr.contains("flushing uploads: 0 upload(s) left"),
        "{stderr}"
    );
    let heard: Vec<String> = std::iter::from_fn(|| {
        let mut buf = [0u8; 512];
        let n = notify.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
    .take(3)
    .collect();
    assert!(heard[0].starts_with("READY=1"), "{heard:?}");
    assert!(heard[1].starts_with("STOPPING=1"), "{heard:?}");
    assert_eq!(heard[2], "STATUS=uploading 1 pending file(s)");
    let listing = server
        .block_on(server.client().folder_listing(None))
        .unwrap();
    let text = format!("{listing:?}");
    assert!(text.contains("late.bin"), "{text}");
}
