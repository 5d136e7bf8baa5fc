//! Starting a mount the way a system does at boot: `mount.fuse.yetifs` called as `mount(8)`
//! calls it (a symlink named so), `mount -t fuse.yetifs` with the helper in `/sbin`, systemd's
//! readiness notification, the pid file, and a failed start reported through the exit code.
mod common;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::mount::{
    is_mounted, mount_command, poll_until, run_within, sh, upload, write_private, yetifs, Mount,
    Server, PATIENCE,
};
use yetifs::emulator::{Profile, RangeMode};

/// A mountpoint, a cache, a runtime directory and a config file naming the server's account as
/// the remote `emu`; unmounts lazily when dropped, so a failing test leaves no mount behind.
struct Place {
    dir: tempfile::TempDir,
    point: PathBuf,
}

impl Place {
    fn new(server: &Server, key2: Option<&str>) -> Place {
        let dir = tempfile::tempdir().unwrap();
        let point = dir.path().join("mnt");
        fs::create_dir_all(&point).unwrap();
        fs::create_dir_all(dir.path().join("run")).unwrap();
        let (key1, real_key2) = server.keys();
        write_private(
            dir.path(),
            "config.toml",
            &format!(
                "[remotes.emu]\napi_url = \"{}\"\nkey1 = \"{key1}\"\nkey2 = \"{}\"\n",
                server.url(),
                key2.unwrap_or(&real_key2)
            ),
        );
        let point = point.canonicalize().unwrap();
        Place { dir, point }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `-o` options an fstab line would carry for this place.
    fn options(&self) -> String {
        format!(
            "rw,_netdev,nofail,x-systemd.automount,config={},cache_dir={},dir_ttl=300,pid_file={}",
            self.path("config.toml").display(),
            self.path("cache").display(),
            self.path("yetifs.pid").display()
        )
    }

    /// The pid the pid file names.
    fn pid(&self) -> i32 {
        fs::read_to_string(self.path("yetifs.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if is_mounted(&self.point) {
            let _ = Command::new("umount").arg("-l").arg(&self.point).status();
        }
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Unmounts `place` and waits for the serving process `pid` to end and remove its pid file.
fn unmount_and_wait(place: &Place, pid: i32) {
    let out = Command::new("umount").arg(&place.point).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let ended = poll_until(PATIENCE, Duration::from_millis(20), || {
        !alive(pid) && !place.path("yetifs.pid").exists()
    });
    assert!(ended, "pid {pid} did not end");
}

/// `yetifs status --json` of `place`'s mount, as JSON.
fn status(place: &Place) -> serde_json::Value {
    let out = run_within(
        yetifs()
            .args(["status", "--json"])
            .arg(&place.point)
            .env("XDG_RUNTIME_DIR", place.path("run")),
        PATIENCE,
    );
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn helper_link(dir: &Path) -> PathBuf {
    let link = dir.join("mount.fuse.yetifs");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_yetifs"), &link).unwrap();
    link
}

#[test]
fn the_helper_called_like_mount_8_returns_once_the_named_remote_is_mounted_in_the_background() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    upload(&server, None, "hello.txt", b"hello from boot\n");
    let place = Place::new(&server, None);
    let link = helper_link(place.dir.path());
    let out = run_within(
        Command::new(&link)
            .arg("emu:")
            .arg(&place.point)
            .args(["-n", "-o", &place.options()])
            .env("XDG_RUNTIME_DIR", place.path("run")),
        PATIENCE,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        is_mounted(&place.point),
        "returned before the mount was live"
    );
    let pid = place.pid();
    assert!(alive(pid));
    assert_eq!(
        fs::read_to_string(place.point.join("hello.txt")).unwrap(),
        "hello from boot\n"
    );
    assert_eq!(status(&place)["pid"], pid);
    unmount_and_wait(&place, pid);
}

#[test]
fn a_failed_start_through_the_helper_is_an_exit_code_with_no_mount_and_no_pid_file() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let place = Place::new(&server, Some(&"0".repeat(64)));
    let link = helper_link(place.dir.path());
    let out = run_within(
        Command::new(&link)
            .arg("emu:")
            .arg(&place.point)
            .args(["-o", &place.options()]),
        PATIENCE,
    );
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused the key pair"), "{stderr}");
    assert!(!is_mounted(&place.point));
    assert!(!place.path("yetifs.pid").exists());
}

/// Removes the helper this test put into `/sbin`, even when the test fails.
struct SbinHelper(PathBuf);

impl Drop for SbinHelper {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn mount_t_fuse_yetifs_runs_the_helper_in_sbin() {
    let sbin_helper = PathBuf::from("/sbin/mount.fuse.yetifs");
    if fs::symlink_metadata(&sbin_helper).is_ok() {
        eprintln!(
            "{} exists and is not this test's: not replaced",
            sbin_helper.display()
        );
        return;
    }
    if std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_yetifs"), &sbin_helper).is_err() {
        eprintln!(
            "cannot write {} (not root?): skipped",
            sbin_helper.display()
        );
        return;
    }
    let _guard = SbinHelper(sbin_helper);
    let server = Server::start(Profile::V5, RangeMode::Naive);
    upload(&server, None, "fstab.txt", b"mounted by mount(8)\n");
    let place = Place::new(&server, None);
    let out = run_within(
        Command::new("mount")
            .args(["-t", "fuse.yetifs", "emu:"])
            .arg(&place.point)
            .args(["-o", &place.options()])
            .env("XDG_RUNTIME_DIR", place.path("run")),
        PATIENCE,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(is_mounted(&place.point));
    assert_eq!(sh(&place.point, "cat fstab.txt"), "mounted by mount(8)\n");
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(&*place.point.to_string_lossy()))
        .unwrap();
    assert!(line.starts_with("yetifs:127.0.0.1:"), "{line}");
    unmount_and_wait(&place, place.pid());
}

#[test]
fn systemd_hears_ready_once_the_mount_is_live_and_stopping_at_unmount() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let dirs = tempfile::tempdir().unwrap();
    let socket_path = dirs.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut command = mount_command(&server, &dirs.path().join("cache"), &[]);
    command.env("NOTIFY_SOCKET", &socket_path);
    let mount = Mount::spawn(command, dirs);
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).unwrap();
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(
        ready.contains(&format!("MAINPID={}", mount.pid())),
        "{ready}"
    );
    assert!(is_mounted(mount.path()));
    let pid = mount.pid();
    assert!(mount.unmount().success());
    let n = socket.recv(&mut buf).unwrap();
    let stopping = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        stopping.lines().any(|l| l == "STOPPING=1"),
        "{stopping} ({pid})"
    );
}

#[test]
fn daemon_with_a_pid_file_returns_when_live_and_the_file_goes_at_unmount() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let place = Place::new(&server, None);
    let out = run_within(
        mount_command(
            &server,
            &place.path("cache"),
            &[
                "--daemon",
                "--pid-file",
                &place.path("yetifs.pid").to_string_lossy(),
            ],
        )
        .arg(&place.point)
        .env("XDG_RUNTIME_DIR", place.path("run")),
        PATIENCE,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(is_mounted(&place.point));
    let pid = place.pid();
    assert!(alive(pid));
    unmount_and_wait(&place, pid);
}
