//! The `yetifs mount` and `yetifs demo` command lines on real mounts: clear, quick failures;
//! `--daemon`; signals; settings from the environment and from a named remote; `-o` options;
//! extended attributes; `df`.
mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::mount::{
    is_mounted, mount_command, run_within, sh, upload, write_private, yetifs, Mount, Server,
    PATIENCE,
};
use yetifs::emulator::{Profile, RangeMode, ServeArgs};

/// How long a failing `yetifs mount` may take to say so.
const QUICKLY: Duration = Duration::from_secs(20);

/// Runs `yetifs mount` with `args` on a fresh, empty mountpoint and expects it to fail
/// quickly with a message containing `says`.
fn fails_with(args: &[String], says: &str) {
    let dirs = tempfile::tempdir().unwrap();
    let point = dirs.path().join("mnt");
    std::fs::create_dir(&point).unwrap();
    let started = Instant::now();
    let out = run_within(
        yetifs()
            .arg("mount")
            .args(args)
            .arg("--cache-dir")
            .arg(dirs.path().join("cache"))
            .arg(&point),
        QUICKLY,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit {}: {stderr}", out.status);
    assert!(stderr.contains(says), "no {says:?} in: {stderr}");
    assert!(!is_mounted(&point.canonicalize().unwrap()));
    eprintln!("failed in {:?}: {stderr}", started.elapsed());
}

fn login_with_url(server: &Server, url: &str) -> Vec<String> {
    let (key1, key2) = server.keys();
    ["--api-url", url, "--key1", &key1, "--key2", &key2]
        .map(str::to_owned)
        .to_vec()
}

/// A server holding `hello.txt` ("hello\n") in the root and `docs/readme.md` below.
fn sample_server() -> Server {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    upload(&server, None, "hello.txt", b"hello\n");
    let docs = server
        .block_on(server.client().folder_create(None, "docs", None))
        .unwrap()
        .id;
    upload(&server, Some(docs), "readme.md", b"# read me\n");
    server
}

#[test]
fn a_url_where_nothing_listens_fails_quickly_and_says_so() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v2/", free.local_addr().unwrap());
    drop(free);
    fails_with(&login_with_url(&server, &url), "cannot reach the server");
}

#[test]
fn a_url_that_is_not_the_api_fails_and_says_so() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let url = server.url().replace("/api/v2/", "/");
    fails_with(
        &login_with_url(&server, &url),
        "does not answer as a File Upload API v2 endpoint",
    );
}

#[test]
fn wrong_keys_fail_and_say_so() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let args = ["--api-url", &server.url(), "--key1", &"a".repeat(64)]
        .into_iter()
        .chain(["--key2", &"b".repeat(64)])
        .map(str::to_owned)
        .collect::<Vec<_>>();
    fails_with(&args, "refused the key pair");
}

#[test]
fn a_missing_mountpoint_is_refused() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let dirs = tempfile::tempdir().unwrap();
    let out = run_within(
        mount_command(&server, &dirs.path().join("cache"), &[]).arg(dirs.path().join("nowhere")),
        QUICKLY,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not exist: create it with mkdir -p"),
        "{stderr}"
    );
}

#[test]
fn a_busy_mountpoint_is_refused_and_the_first_mount_keeps_working() {
    let server = sample_server();
    let mount = Mount::start(&server, &[]);
    let cache = tempfile::tempdir().unwrap();
    let out = run_within(
        mount_command(&server, cache.path(), &[]).arg(mount.path()),
        QUICKLY,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is busy"), "{stderr}");
    assert_eq!(
        std::fs::read(mount.path().join("hello.txt")).unwrap(),
        b"hello\n"
    );
    assert!(mount.unmount().success());
}

#[test]
fn umount_ends_the_foreground_mount_with_exit_code_zero() {
    let server = sample_server();
    let mount = Mount::start(&server, &[]);
    assert_eq!(
        std::fs::read(mount.path().join("docs/readme.md")).unwrap(),
        b"# read me\n"
    );
    let status = mount.unmount();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigterm_and_sigint_unmount_and_exit_zero() {
    let server = sample_server();
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut mount = Mount::start(&server, &[]);
        sh(mount.path(), "ls -l");
        mount.signal(signal);
        let status = mount.wait_exit();
        assert_eq!(status.code(), Some(0), "after signal {signal}");
    }
}

#[test]
fn daemon_returns_zero_once_mounted_and_nonzero_when_the_start_fails() {
    let server = sample_server();
    let dirs = tempfile::tempdir().unwrap();
    let point = dirs.path().join("mnt");
    std::fs::create_dir(&point).unwrap();
    let point = point.canonicalize().unwrap();
    let out = run_within(
        mount_command(&server, &dirs.path().join("cache"), &["--daemon"]).arg(&point),
        PATIENCE,
    );
    let mounted = is_mounted(&point);
    if mounted {
        // Whatever else fails below, the mount must not outlive the test.
        let guard = Unmount(&point);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(point.join("hello.txt")).unwrap(), b"hello\n");
        drop(guard);
    }
    assert!(
        mounted,
        "--daemon returned ({}) before the mount was live: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_mounted(&point));

    let (key1, _) = server.keys();
    let out = run_within(
        yetifs()
            .args(["mount", "--daemon", "--api-url", &server.url()])
            .args(["--key1", &key1, "--key2", &"c".repeat(64)])
            .arg("--cache-dir")
            .arg(dirs.path().join("cache"))
            .arg(&point),
        QUICKLY,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused the key pair"), "{stderr}");
    assert!(!is_mounted(&point));
}

/// Unmounts a mount that no [`Mount`] guards (a daemon's) when dropped.
struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let status = std::process::Command::new("umount")
            .arg(self.0)
            .status()
            .unwrap();
        if !status.success() {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.0)
                .status();
        }
    }
}

#[test]
fn credentials_come_from_yetifs_environment_variables() {
    let server = sample_server();
    let (key1, key2) = server.keys();
    let dirs = tempfile::tempdir().unwrap();
    let mut command = yetifs();
    command
        .arg("mount")
        .arg("--cache-dir")
        .arg(dirs.path().join("cache"))
        .env("YETIFS_API_URL", server.url())
        .env("YETIFS_KEY1", key1)
        .env("YETIFS_KEY2", key2);
    let mount = Mount::spawn(command, dirs);
    assert_eq!(
        std::fs::read(mount.path().join("hello.txt")).unwrap(),
        b"hello\n"
    );
    assert!(mount.unmount().success());
}

#[test]
fn a_named_remote_comes_from_the_config_file() {
    let server = sample_server();
    let (key1, key2) = server.keys();
    let dirs = tempfile::tempdir().unwrap();
    let config = write_private(
        dirs.path(),
        "config.toml",
        &format!(
            "[remotes.emu]\napi_url = \"{}\"\nkey1 = \"{key1}\"\nkey2 = \"{key2}\"\n\
             cache_dir = \"{}\"\noptions = \"ro\"\n",
            server.url(),
            dirs.path().join("cache").display()
        ),
    );
    let mut command = yetifs();
    command
        .arg("mount")
        .arg("--config")
        .arg(&config)
        .arg("emu:");
    let mount = Mount::spawn(command, dirs);
    assert_eq!(
        std::fs::read(mount.path().join("docs/readme.md")).unwrap(),
        b"# read me\n"
    );
    let err = std::fs::write(mount.path().join("new.txt"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    assert!(mount.unmount().success());

    let dirs = tempfile::tempdir().unwrap();
    let point = dirs.path().join("mnt");
    std::fs::create_dir(&point).unwrap();
    let out = run_within(
        yetifs()
            .args(["mount", "--config"])
            .arg(&config)
            .arg("other:")
            .arg(&point),
        QUICKLY,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no remote named \"other\""), "{stderr}");
}

#[test]
fn read_only_and_owner_options_show_in_stat() {
    let server = sample_server();
    let mount = Mount::start(&server, &["-o", "ro,uid=1234,gid=5678"]);
    for path in [
        mount.path().to_path_buf(),
        mount.path().join("hello.txt"),
        mount.path().join("docs"),
    ] {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678), "{}", path.display());
    }
    assert_eq!(
        sh(mount.path(), "stat -c '%u:%g %a' hello.txt docs"),
        "1234:5678 644\n1234:5678 755\n"
    );
    let err = std::fs::create_dir(mount.path().join("new")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(&*mount.path().to_string_lossy()))
        .unwrap();
    assert!(line.split(' ').nth(5).unwrap().starts_with("ro"), "{line}");
    assert!(mount.unmount().success());
}

#[test]
fn extended_attributes_show_ids_links_and_sharing() {
    let server = sample_server();
    let client = server.client();
    let listing = server.block_on(client.folder_listing(None)).unwrap();
    let file = listing
        .files
        .iter()
        .find(|f| f.filename == "hello.txt")
        .unwrap()
        .clone();
    let folder = listing
        .folders
        .iter()
        .find(|f| f.folder_name == "docs")
        .unwrap()
        .clone();
    let mount = Mount::start(&server, &[]);

    let get = |path: &str, name: &str| {
        sh(
            mount.path(),
            &format!("getfattr --only-values -n user.yetifs.{name} '{path}'"),
        )
    };
    assert_eq!(get("hello.txt", "id"), file.id.to_string());
    assert_eq!(get("hello.txt", "short_url"), file.short_url);
    assert_eq!(get("hello.txt", "url"), file.url_file.clone().unwrap());
    assert_eq!(get("hello.txt", "downloads"), "0");
    assert_eq!(get("docs", "id"), folder.id.to_string());
    assert_eq!(
        get("docs", "public"),
        folder.is_public.unwrap_or(0).to_string()
    );
    assert_eq!(get("docs", "url"), folder.url_folder.clone().unwrap());
    let all = sh(mount.path(), "getfattr -d -m - hello.txt");
    for name in ["id", "url", "short_url", "downloads"] {
        assert!(all.contains(&format!("user.yetifs.{name}=")), "{all}");
    }

    let missing = std::process::Command::new("getfattr")
        .args(["-n", "user.yetifs.nothing", "hello.txt"])
        .current_dir(mount.path())
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(mount.unmount().success());
}

#[test]
fn df_reports_the_package_limit_and_what_is_seen_in_use() {
    let server = Server::with(ServeArgs {
        max_storage: 1 << 30,
        ..ServeArgs::default()
    });
    upload(&server, None, "three.bin", &vec![7u8; 3 << 20]);
    let mount = Mount::start(&server, &[]);
    sh(mount.path(), "ls -l");
    let df = sh(mount.path(), "df -B1 --output=source,size,used .");
    let fields: Vec<&str> = df.lines().nth(1).unwrap().split_whitespace().collect();
    assert!(fields[0].starts_with("yetifs:127.0.0.1:"), "{df}");
    assert_eq!(fields[1], (1u64 << 30).to_string(), "{df}");
    let used: u64 = fields[2].parse().unwrap();
    assert!(used >= 3 << 20, "{df}");
    assert!(mount.unmount().success());
}

#[test]
fn demo_mounts_the_sample_tree_and_ends_on_sigint() {
    let dirs = tempfile::tempdir().unwrap();
    let mut command = yetifs();
    command.arg("demo");
    let mut mount = Mount::spawn(command, dirs);
    let readme = std::fs::read_to_string(mount.path().join("README.txt")).unwrap();
    assert!(!readme.is_empty());
    let entries = sh(mount.path(), "ls");
    for name in ["Documents", "Pictures", "Videos", "README.txt"] {
        assert!(entries.lines().any(|l| l == name), "{entries}");
    }
    let video = std::fs::metadata(mount.path().join("Videos/sample-video.bin")).unwrap();
    assert_eq!(video.len(), yetifs::cli::demo::LARGE_FILE_SIZE);
    let progress = mount.stderr();
    for line in [
        "demo setup: uploading README.txt (1/10)",
        "demo setup: uploading sample-video.bin (120 MiB) (10/10)",
        "demo setup: sample account ready",
    ] {
        assert!(
            progress.lines().any(|l| l == line),
            "{line:?} in {progress}"
        );
    }
    mount.signal(libc::SIGINT);
    let status = mount.wait_exit();
    assert_eq!(status.code(), Some(0));
}
