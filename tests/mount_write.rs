//! Writing through real mounts: `yetifs serve` and `yetifs mount` run as the CLI runs them,
//! real tools write into the mount, and every result is checked again after a remount with a
//! fresh cache directory (bytes from the server) and through the API directly. Needs
//! `/dev/fuse` and the right to mount (root), and `rsync` and `git`.
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use yetifs::api::{Client, ClientConfig, Credentials, Secret};
use yetifs::remote::Remote;

const BIN: &str = env!("CARGO_BIN_EXE_yetifs");

/// Mount tests run one at a time: each starts servers and daemons on a small machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes `content` to `path` and fsyncs, which uploads: the error a close would give.
fn write_synced(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(content)?;
    file.sync_all()
}

/// A running `yetifs serve`.
struct Server {
    _stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
    child: Child,
    url: String,
    key1: String,
    key2: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start(profile: &str, faults: Option<&str>) -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--profile", profile])
            .arg("--data")
            .arg(data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(faults) = faults {
            cmd.args(["--faults", faults]);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut value = |key: &str| {
            let line = lines.next().unwrap().unwrap();
            line.strip_prefix(&format!("{key}="))
                .unwrap_or_else(|| panic!("expected {key}=, got {line}"))
                .to_owned()
        };
        let (url, key1, key2) = (value("api_url"), value("key1"), value("key2"));
        // Keep the pipe open: the server writes to it again and would die of SIGPIPE.
        Server {
            _stdout: lines,
            child,
            url,
            key1,
            key2,
            _data: data,
        }
    }

    /// The account's files as the API lists them: (folder path, name) → size, by walking.
    fn api_tree(&self) -> Vec<(String, u64)> {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let credentials = Credentials::Keys {
            key1: Secret::new(self.key1.clone()),
            key2: Secret::new(self.key2.clone()),
        };
        let client = Client::new(ClientConfig::new(self.url.clone(), credentials)).unwrap();
        runtime.block_on(async {
            let mut out = Vec::new();
            let mut todo = vec![(None, String::new())];
            while let Some((folder, path)) = todo.pop() {
                let listing = client.list_folder(folder).await.unwrap();
                for f in listing.folders.iter().filter(|f| !f.trashed) {
                    if !f.name.starts_with(".yetifs-deleted-") {
                        todo.push((Some(f.id), format!("{path}{}/", f.name)));
                    }
                }
                for f in listing.files.iter().filter(|f| !f.trashed) {
                    out.push((format!("{path}{}", f.name), f.size));
                }
            }
            out.sort();
            out
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `yetifs mount` (foreground, as a child process).
struct Mount {
    child: Child,
    point: PathBuf,
}

fn is_mounted(point: &Path) -> bool {
    yetifs::cli::mount::is_mount_point(&point.canonicalize().unwrap()).unwrap()
}

impl Mount {
    fn start(server: &Server, point: &Path, cache: &Path) -> Mount {
        let child = Command::new(BIN)
            .args(["mount", "--api-url", &server.url])
            .args(["--key1", &server.key1, "--key2", &server.key2])
            .arg("--cache-dir")
            .arg(cache)
            .arg(point)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(cache.with_extension("log")).unwrap())
            .spawn()
            .unwrap();
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(point) {
            let log = || fs::read_to_string(cache.with_extension("log")).unwrap_or_default();
            assert!(
                child.try_wait().unwrap().is_none(),
                "mount exited: {}",
                log()
            );
            assert!(
                Instant::now() < deadline,
                "mount did not come up: {}",
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Mount {
            child,
            point: point.to_path_buf(),
        }
    }

    /// `umount`, then waits for the daemon to finish its uploads and exit 0.
    fn unmount(mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Command::new("umount")
            .arg(&self.point)
            .status()
            .unwrap()
            .success()
        {
            assert!(Instant::now() < deadline, "umount kept failing");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(self.child.wait().unwrap().success());
    }

    /// `kill -9` of the daemon; the dead mount is detached.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let _ = Command::new("umount").arg("-l").arg(&self.point).status();
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tree with dotfiles, an empty file, quoted and unicode names, nested folders.
fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::write(root.join(".bashrc"), "export X=1\n").unwrap();
    fs::write(root.join("a/.env.local"), "K=V\n").unwrap();
    fs::write(root.join("a/b/it's \"quoted\".txt"), "q\n").unwrap();
    fs::write(root.join("a/b/c/ünïcødé ✓.md"), "# ü\n").unwrap();
    fs::write(root.join("a/empty"), "").unwrap();
    fs::write(root.join("Makefile"), "all:\n").unwrap();
    let big: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(root.join("a/b/big.bin"), big).unwrap();
}

fn diff(a: &Path, b: &Path) -> String {
    let out = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check_profile(profile: &str) {
    let _serial = serial();
    let server = Server::start(profile, None);
    let work = tempfile::tempdir().unwrap();
    let (point, src) = (work.path().join("mnt"), work.path().join("src"));
    fs::create_dir_all(&point).unwrap();
    sample_tree(&src);
    let cache = work.path().join("cache");
    let m = Mount::start(&server, &point, &cache);

    run(Command::new("cp").arg("-r").arg(&src).arg(point.join("cp")));
    assert_eq!(diff(&src, &point.join("cp")), "");
    run(Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(point.join("rs")));
    let again = run(Command::new("rsync")
        .args(["-a", "--stats"])
        .arg(format!("{}/", src.display()))
        .arg(point.join("rs")));
    assert!(
        again.contains("Number of regular files transferred: 0"),
        "{again}"
    );
    let tarball = work.path().join("t.tar");
    run(Command::new("tar")
        .arg("-cf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("."));
    fs::create_dir(point.join("tar")).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(point.join("tar")));
    assert_eq!(diff(&src, &point.join("tar")), "");

    let repo = point.join("repo");
    fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| {
        run(Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo))
    };
    git(&["init", "-q"]);
    fs::write(repo.join("file.txt"), "one\n").unwrap();
    git(&["add", "file.txt"]);
    git(&["commit", "-qm", "first"]);
    fs::OpenOptions::new()
        .append(true)
        .open(repo.join("file.txt"))
        .unwrap()
        .write_all(b"two\n")
        .unwrap();
    git(&["commit", "-qam", "second"]);
    m.unmount();

    // Fresh cache: every byte, empty files included, comes from the server.
    let m = Mount::start(&server, &point, &work.path().join("fresh"));
    for copy in ["cp", "rs", "tar"] {
        assert_eq!(diff(&src, &point.join(copy)), "", "{copy}");
    }
    let clone = work.path().join("clone");
    run(Command::new("git")
        .arg("clone")
        .arg("-q")
        .arg(&repo)
        .arg(&clone));
    run(Command::new("git").arg("fsck").current_dir(&clone));
    assert_eq!(
        fs::read_to_string(clone.join("file.txt")).unwrap(),
        "one\ntwo\n"
    );
    m.unmount();

    // The first cache again.
    let m = Mount::start(&server, &point, &cache);
    assert_eq!(diff(&src, &point.join("tar")), "");
    m.unmount();

    let tree = server.api_tree();
    for name in [
        ".bashrc",
        "a/.env.local",
        "a/b/it's \"quoted\".txt",
        "a/b/c/ünïcødé ✓.md",
        "Makefile",
    ] {
        for copy in ["cp", "rs", "tar"] {
            let path = format!("{copy}/{name}");
            assert!(
                tree.iter().any(|(p, _)| *p == path),
                "{path} not on the server: {tree:?}"
            );
        }
    }
    assert!(tree.iter().all(|(p, _)| !p.contains(" (2)")), "{tree:?}");
}

#[test]
fn tools_write_trees_that_the_server_keeps_byte_exact_on_the_v4_profile() {
    check_profile("v4");
}

#[test]
fn tools_write_trees_that_the_server_keeps_byte_exact_on_the_v5_profile() {
    check_profile("v5");
}

#[test]
fn errnos_of_overwrite_append_truncate_rename_rmdir_and_unlink() {
    let _serial = serial();
    let server = Server::start("v4", None);
    let work = tempfile::tempdir().unwrap();
    let point = work.path().join("mnt");
    fs::create_dir_all(&point).unwrap();
    let m = Mount::start(&server, &point, &work.path().join("cache"));
    let f = point.join("f.txt");
    fs::write(&f, "first version").unwrap();
    fs::write(&f, "second").unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(&f)
        .unwrap()
        .write_all(b"+")
        .unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"second+");
    fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(3)
        .unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"sec");
    fs::create_dir(point.join("d")).unwrap();
    fs::write(point.join("d/inner"), "x").unwrap();
    let errno = |e: std::io::Error| e.raw_os_error().unwrap();
    assert_eq!(
        errno(fs::remove_dir(point.join("d")).unwrap_err()),
        libc::ENOTEMPTY
    );
    assert_eq!(
        errno(fs::create_dir(point.join("d")).unwrap_err()),
        libc::EEXIST
    );
    assert_eq!(
        errno(fs::rename(point.join("d"), point.join("d/sub")).unwrap_err()),
        libc::EINVAL
    );
    assert_eq!(
        errno(fs::hard_link(&f, point.join("h")).unwrap_err()),
        libc::EPERM
    );
    let fifo =
        std::ffi::CString::new(point.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, -1);
    assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
    assert_eq!(
        errno(fs::write(point.join("🚀.txt"), "x").unwrap_err()),
        libc::EILSEQ
    );
    fs::rename(&f, point.join("d/moved.txt")).unwrap();
    fs::rename(point.join("d/moved.txt"), point.join("d/inner")).unwrap();
    assert_eq!(fs::read(point.join("d/inner")).unwrap(), b"sec");
    fs::remove_file(point.join("d/inner")).unwrap();
    assert_eq!(
        errno(fs::remove_file(point.join("d/inner")).unwrap_err()),
        libc::ENOENT
    );
    fs::remove_dir(point.join("d")).unwrap();
    m.unmount();
    let m = Mount::start(&server, &point, &work.path().join("fresh"));
    assert_eq!(
        fs::read_dir(&point).unwrap().count(),
        0,
        "v4 must not bring back d"
    );
    m.unmount();
    assert!(server.api_tree().is_empty());
}

#[test]
fn kill_9_after_a_close_and_during_an_upload_loses_nothing() {
    let _serial = serial();
    let server = Server::start("v4", Some("bandwidth=400KiB/s"));
    let work = tempfile::tempdir().unwrap();
    let point = work.path().join("mnt");
    fs::create_dir_all(&point).unwrap();
    let cache = work.path().join("cache");
    let m = Mount::start(&server, &point, &cache);
    fs::write(point.join("closed.txt"), "safe after close").unwrap();
    let content: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
    let writer = {
        let (path, content) = (point.join("cut.bin"), content.clone());
        std::thread::spawn(move || write_synced(&path, &content))
    };
    std::thread::sleep(Duration::from_millis(1500));
    m.kill();
    assert!(
        writer.join().unwrap().is_err(),
        "close could not have succeeded"
    );
    let m = Mount::start(&server, &point, &cache);
    m.unmount();
    let m = Mount::start(&server, &point, &work.path().join("fresh"));
    assert_eq!(
        fs::read(point.join("closed.txt")).unwrap(),
        b"safe after close"
    );
    assert_eq!(fs::read(point.join("cut.bin")).unwrap(), content);
    m.unmount();
}

#[test]
fn writes_survive_server_errors_resets_and_token_expiry_byte_exact() {
    let _serial = serial();
    let server = Server::start("v5", Some("error=0.05,reset=0.05,token_ttl=1s"));
    let work = tempfile::tempdir().unwrap();
    let point = work.path().join("mnt");
    fs::create_dir_all(&point).unwrap();
    let cache = work.path().join("cache");
    let m = Mount::start(&server, &point, &cache);
    let mut written = Vec::new();
    for i in 0..12u32 {
        let content: Vec<u8> = (0..(i * 10_007 + 1)).map(|j| (j * i % 256) as u8).collect();
        let path = point.join(format!("f{i}.bin"));
        // A failed close (EIO: the server failed after the body was sent, so the upload is not
        // repeated behind the writer's back) leaves the file staged; writing it again retries.
        let mut attempts = 1;
        while let Err(e) = write_synced(&path, &content) {
            assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
            attempts += 1;
            assert!(attempts <= 6, "close kept failing: {e}");
        }
        written.push((path, content));
        if i % 4 == 0 {
            std::thread::sleep(Duration::from_millis(1100));
        }
    }
    m.unmount();
    let m = Mount::start(&server, &point, &work.path().join("fresh"));
    for (path, content) in &written {
        assert_eq!(&fs::read(path).unwrap(), content, "{}", path.display());
    }
    m.unmount();
}
