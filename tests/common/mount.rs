//! Helpers of the real-mount tests: an emulator on a runtime of the test, `yetifs mount` run as
//! a subprocess and unmounted even when a test fails, a generated account tree uploaded through
//! the API together with a local copy of what the mount must show, and comparisons of the two.
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use yetifs::api::{Client, ClientConfig, Credentials, FileEdit};
use yetifs::control::StatusReport;
use yetifs::emulator::{Emulator, Profile, RangeMode, ServeArgs};

/// How long a mount may take to appear or to end before the test gives up on it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The `yetifs` binary under test.
pub fn yetifs() -> Command {
    Command::new(env!("CARGO_BIN_EXE_yetifs"))
}

/// An emulator serving on its own runtime, with an access log, keeping its data in a directory
/// that survives [`Server::restart`].
pub struct Server {
    // Field order: the emulator stops before its runtime goes.
    emu: Option<Emulator>,
    runtime: tokio::runtime::Runtime,
    args: ServeArgs,
    dir: tempfile::TempDir,
    /// Address and keys of the emulator while it is stopped.
    stopped: Option<(std::net::SocketAddr, String, String)>,
}

impl Server {
    /// An emulator of `profile` with `ranges`, every other setting at its default.
    pub fn start(profile: Profile, ranges: RangeMode) -> Server {
        Server::with(ServeArgs {
            profile,
            ranges,
            ..ServeArgs::default()
        })
    }

    /// An emulator with `args`; its address, data directory and access log are the test's.
    pub fn with(mut args: ServeArgs) -> Server {
        let dir = tempfile::tempdir().unwrap();
        args.listen = "127.0.0.1:0".parse().unwrap();
        args.data = Some(dir.path().join("data"));
        args.access_log = Some(dir.path().join("access.log"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let emu = runtime.block_on(Emulator::start(args.clone())).unwrap();
        Server {
            emu: Some(emu),
            runtime,
            args,
            dir,
            stopped: None,
        }
    }

    fn emu(&self) -> &Emulator {
        self.emu.as_ref().unwrap()
    }

    /// The API base URL.
    pub fn url(&self) -> String {
        self.emu().base_url()
    }

    /// `--api-url URL --key1 K --key2 K`.
    pub fn login_args(&self) -> Vec<String> {
        vec![
            "--api-url".into(),
            self.url(),
            "--key1".into(),
            self.emu().key1().into(),
            "--key2".into(),
            self.emu().key2().into(),
        ]
    }

    /// Key 1 and key 2 of the main account.
    pub fn keys(&self) -> (String, String) {
        (self.emu().key1().into(), self.emu().key2().into())
    }

    /// An API client logged into the main account.
    pub fn client(&self) -> Client {
        let (key1, key2) = self.keys();
        Client::new(ClientConfig::new(self.url(), Credentials::keys(key1, key2))).unwrap()
    }

    /// Runs `future` on the server's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Stops the emulator: from now on nothing answers at its address (until [`Server::resume`]).
    pub fn stop(&mut self) {
        let emu = self.emu.take().unwrap();
        self.stopped = Some((emu.addr(), emu.key1().to_owned(), emu.key2().to_owned()));
        self.runtime.block_on(emu.shutdown()).unwrap();
    }

    /// Starts the emulator stopped with [`Server::stop`] again, on the same address, data and
    /// keys: to a mount it looks like the network came back.
    pub fn resume(&mut self) {
        let (addr, key1, key2) = self.stopped.take().expect("the server was not stopped");
        let mut args = self.args.clone();
        args.listen = addr;
        args.key1 = Some(key1);
        args.key2 = Some(key2);
        let pause = Duration::from_millis(200);
        let mut tries = polls(PATIENCE, pause);
        let emu = loop {
            match self.runtime.block_on(Emulator::start(args.clone())) {
                Ok(emu) => break emu,
                Err(e) if tries > 0 => {
                    tries -= 1;
                    eprintln!("restarting on {addr}: {e:#}");
                    std::thread::sleep(pause);
                }
                Err(e) => panic!("cannot restart the emulator on {addr}: {e:#}"),
            }
        };
        self.emu = Some(emu);
    }

    /// Stops the emulator and starts it again on the same data with `change` applied to its
    /// settings (e.g. faults); the port may change.
    pub fn restart(&mut self, change: impl FnOnce(&mut ServeArgs)) {
        let emu = self.emu.take().unwrap();
        let (key1, key2) = (emu.key1().to_owned(), emu.key2().to_owned());
        self.runtime.block_on(emu.shutdown()).unwrap();
        change(&mut self.args);
        self.args.key1 = Some(key1);
        self.args.key2 = Some(key2);
        let emu = self
            .runtime
            .block_on(Emulator::start(self.args.clone()))
            .unwrap();
        self.emu = Some(emu);
    }

    /// Endpoint paths of the requests logged so far, in order (`folder/listing`, ...; file
    /// server requests as their path).
    pub fn calls(&self) -> Vec<String> {
        let log = fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| line.split(' ').nth(2))
            .map(|path| {
                path.strip_prefix("/api/v2/")
                    .unwrap_or(path)
                    .trim_end_matches('/')
                    .to_owned()
            })
            .collect()
    }

    /// How many requests were answered with HTTP `status`.
    pub fn calls_answered(&self, status: u16) -> usize {
        let log = fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        let status = status.to_string();
        log.lines()
            .filter(|line| line.split(' ').nth(3) == Some(status.as_str()))
            .count()
    }

    /// How many requests were answered with a 5xx status (injected faults among them).
    pub fn server_errors(&self) -> usize {
        let log = fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| line.split(' ').nth(3))
            .filter(|status| status.starts_with('5'))
            .count()
    }
}

/// How many of `calls` went to `endpoint`.
pub fn count(calls: &[String], endpoint: &str) -> usize {
    calls.iter().filter(|c| *c == endpoint).count()
}

/// `yetifs mount` of the server's main account with `cache` and `extra` arguments; the
/// mountpoint is still to be added.
pub fn mount_command(server: &Server, cache: &Path, extra: &[&str]) -> Command {
    let mut command = yetifs();
    command
        .arg("mount")
        .args(server.login_args())
        .arg("--cache-dir")
        .arg(cache)
        .args(extra);
    command
}

/// `yetifs mount` running as a subprocess on a mountpoint of its own. Dropping it (a failing
/// test included) unmounts lazily and kills the process.
pub struct Mount {
    child: Option<Child>,
    point: PathBuf,
    stderr: PathBuf,
    _dirs: tempfile::TempDir,
}

impl Mount {
    /// Waits until `check` holds, looking every 100 ms for at least `within`, or panics with
    /// the mount's log.
    pub fn eventually(&self, what: &str, within: Duration, check: impl FnMut() -> bool) {
        assert!(
            poll_until(within, Duration::from_millis(100), check),
            "{what}: not within {within:?}\nmount log:\n{}",
            self.stderr()
        );
    }

    /// `yetifs status MOUNTPOINT --json` of this mount, whose control socket is under
    /// `runtime` (its `XDG_RUNTIME_DIR`).
    pub fn status(&self, runtime: &Path) -> StatusReport {
        let mut command = yetifs();
        command
            .arg("status")
            .arg(self.path())
            .arg("--json")
            .env("XDG_RUNTIME_DIR", runtime);
        let out = run_within(&mut command, Duration::from_secs(120));
        assert!(out.status.success(), "yetifs status: {out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Mounts the server's main account with a fresh cache directory and `extra` arguments.
    pub fn start(server: &Server, extra: &[&str]) -> Mount {
        let dirs = tempfile::tempdir().unwrap();
        let cache = dirs.path().join("cache");
        Mount::spawn(mount_command(server, &cache, extra), dirs)
    }

    /// Mounts the server's main account with the cache in `cache` (which outlives the mount)
    /// and `extra` arguments.
    pub fn start_with_cache(server: &Server, cache: &Path, extra: &[&str]) -> Mount {
        let dirs = tempfile::tempdir().unwrap();
        Mount::spawn(mount_command(server, cache, extra), dirs)
    }

    /// Runs `command` with a mountpoint in `dirs` appended and waits until the mount is live.
    /// Panics with the process's error output if it ends first.
    pub fn spawn(mut command: Command, dirs: tempfile::TempDir) -> Mount {
        let point = dirs.path().join("mnt");
        fs::create_dir_all(&point).unwrap();
        let point = point.canonicalize().unwrap();
        let stderr = dirs.path().join("stderr.log");
        let child = command
            .arg(&point)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut mount = Mount {
            child: Some(child),
            point,
            stderr,
            _dirs: dirs,
        };
        mount.wait_live();
        mount
    }

    fn wait_live(&mut self) {
        let live = poll_until(PATIENCE, POLL, || {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "yetifs mount ended before mounting ({status}):\n{}",
                    fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            is_mounted(&self.point)
        });
        assert!(live, "no mount after {PATIENCE:?}:\n{}", self.stderr());
    }

    /// The mountpoint.
    pub fn path(&self) -> &Path {
        &self.point
    }

    /// What the mount process wrote on its standard error so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The process id of `yetifs mount`.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Unmounts with `umount` and returns the process's exit status once it has ended.
    pub fn unmount(mut self) -> ExitStatus {
        let out = Command::new("umount").arg(&self.point).output().unwrap();
        assert!(
            out.status.success(),
            "umount {}: {}",
            self.point.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        self.wait_exit()
    }

    /// Waits for the process to end by itself (after a signal, say) and returns its status;
    /// panics if it does not end within [`PATIENCE`].
    pub fn wait_exit(&mut self) -> ExitStatus {
        let status = wait_within(self.child.as_mut().unwrap(), PATIENCE)
            .unwrap_or_else(|| panic!("yetifs mount did not end:\n{}", self.stderr()));
        self.child = None;
        assert!(
            !is_mounted(&self.point),
            "the process ended but the mount is still there"
        );
        status
    }

    /// Sends `signal` to the mount process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill on the id of a child this guard still owns.
        let rc = unsafe { libc::kill(self.pid() as i32, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if is_mounted(&self.point) {
            let _ = Command::new("umount").arg("-l").arg(&self.point).status();
        }
        if let Some(mut child) = self.child.take() {
            if wait_within(&mut child, Duration::from_secs(5)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// How often the waits here look again.
const POLL: Duration = Duration::from_millis(20);

/// How many looks `every` apart a wait of `patience` takes.
pub fn polls(patience: Duration, every: Duration) -> u32 {
    u32::try_from(patience.as_millis() / every.as_millis().max(1)).unwrap_or(u32::MAX)
}

/// Looks at `done` every `every`, as many times as `patience` allows (a bound on the looks,
/// not on the time they take); whether it held.
pub fn poll_until(patience: Duration, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..polls(patience, every) {
        if done() {
            return true;
        }
        std::thread::sleep(every);
    }
    done()
}

/// Waits up to `limit` for `child` to end.
pub fn wait_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let mut status = None;
    poll_until(limit, POLL, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status
}

/// Runs `command` to its end within `limit`, killing it and failing the test otherwise.
pub fn run_within(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if wait_within(&mut child, limit).is_none() {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "{command:?} still running after {limit:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child.wait_with_output().unwrap()
}

/// Whether `path` (canonical) is a mountpoint, per `/proc/self/mountinfo`.
pub fn is_mounted(path: &Path) -> bool {
    yetifs::cli::mount::is_mount_point(path).unwrap()
}

/// Deterministic pseudo-random bytes (splitmix64): the same seed always gives the same bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ len as u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A small seeded generator for offsets and lengths.
pub struct Dice(u64);

impl Dice {
    /// Dice with `seed`.
    pub fn new(seed: u64) -> Dice {
        Dice(seed)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % bound.max(1)
    }
}

/// What to put into a generated account.
#[derive(Clone, Copy, Debug)]
pub struct TreeSpec {
    /// Size of the one large file (0: none).
    pub large: usize,
    /// Whether to put a folder into the trash (on 4.x servers a trashed folder comes back at
    /// the root looking alive, so only 5.x can hide one the mount did not delete itself).
    pub trashed_folder: bool,
}

/// A generated account: what was uploaded, and a local directory holding exactly what the
/// mount must show (names as the mount shows them, same bytes).
pub struct Tree {
    /// The expected view.
    pub expected: tempfile::TempDir,
    /// Folders shown, the root included.
    pub folders: usize,
    /// Files shown.
    pub files: usize,
}

/// Uploads a tree into the server's account: nested folders, unicode names, two files of one
/// name (made with a rename), a name containing `/`, trashed files (and a trashed folder if
/// asked), sizes from 1 byte around the 1 MiB block size up to `spec.large`.
pub fn make_tree(server: &Server, spec: TreeSpec) -> Tree {
    let client = server.client();
    let expected = tempfile::tempdir().unwrap();
    let root = expected.path().to_path_buf();
    let scratch = tempfile::tempdir().unwrap();
    let mut seed = 1u64;
    let mut upload = |folder: Option<u64>, name: &str, len: usize| -> (u64, Vec<u8>) {
        seed += 1;
        let content = bytes(seed, len);
        let source = scratch.path().join("upload");
        fs::write(&source, &content).unwrap();
        let stored = server
            .block_on(client.file_upload(folder, name, &source))
            .unwrap();
        assert_eq!(stored.name, name, "the server renamed an upload");
        (stored.file_id, content)
    };
    let mkdir = |parent: Option<u64>, name: &str| -> u64 {
        server
            .block_on(client.folder_create(parent, name, None))
            .unwrap()
            .id
    };
    let put = |path: &Path, content: &[u8]| {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    };
    let mut files = 0;
    let mut folders = 1;

    for (name, len) in [
        ("one.bin", 1),
        ("hello.txt", 13),
        ("block-1.bin", (1 << 20) - 1),
        ("block.bin", 1 << 20),
        ("block+1.bin", (1 << 20) + 1),
    ] {
        let (_, content) = upload(None, name, len);
        put(&root.join(name), &content);
        files += 1;
    }
    if spec.large > 0 {
        let (_, content) = upload(None, "large.bin", spec.large);
        put(&root.join("large.bin"), &content);
        files += 1;
    }

    let unicode = "Données — 日本語 ñ";
    let u = mkdir(None, unicode);
    folders += 1;
    for (name, len) in [("été à Zürich.txt", 40), ("файл.md", 4096)] {
        let (_, content) = upload(Some(u), name, len);
        put(&root.join(unicode).join(name), &content);
        files += 1;
    }

    let mut parent = None;
    let mut path = root.clone();
    for (depth, name) in ["a", "b b", "c", "d"].iter().enumerate() {
        parent = Some(mkdir(parent, name));
        folders += 1;
        path = path.join(name);
        fs::create_dir_all(&path).unwrap();
        let file = format!("level{depth}.dat");
        let (_, content) = upload(parent, &file, 3000 + depth * 70_001);
        put(&path.join(&file), &content);
        files += 1;
    }
    mkdir(None, "empty folder");
    fs::create_dir_all(root.join("empty folder")).unwrap();
    folders += 1;

    let dups = mkdir(None, "dups");
    folders += 1;
    let (_, first) = upload(Some(dups), "same.txt", 100);
    let (second_id, second) = upload(Some(dups), "other.txt", 200);
    server
        .block_on(client.file_edit(
            second_id,
            &FileEdit {
                filename: Some("same.txt"),
                ..FileEdit::default()
            },
        ))
        .unwrap();
    put(&root.join("dups/same.txt"), &first);
    put(&root.join(format!("dups/same~{second_id}.txt")), &second);
    files += 2;

    let (slash_id, slash) = upload(Some(dups), "ACDC.txt", 300);
    server
        .block_on(client.file_edit(
            slash_id,
            &FileEdit {
                filename: Some("AC/DC.txt"),
                ..FileEdit::default()
            },
        ))
        .unwrap();
    put(&root.join("dups/AC\u{2215}DC.txt"), &slash);
    files += 1;

    for folder in [None, Some(dups)] {
        let (gone, _) = upload(folder, "trashed.txt", 50);
        server.block_on(client.file_delete(gone)).unwrap();
    }
    if spec.trashed_folder {
        let old = mkdir(Some(dups), "old folder");
        upload(Some(old), "inside.txt", 60);
        server.block_on(client.folder_delete(old)).unwrap();
    }
    Tree {
        expected,
        folders,
        files,
    }
}

/// Files under `root` by relative path, with their sizes; directories with `None`.
pub fn walk(root: &Path) -> BTreeMap<PathBuf, Option<u64>> {
    walk_with(root, fs::Metadata::len)
}

/// Files under `root` by relative path, with what `keep` takes of each; directories with
/// `None`.
pub fn walk_with<T>(
    root: &Path,
    keep: impl Fn(&fs::Metadata) -> T,
) -> BTreeMap<PathBuf, Option<T>> {
    let mut out = BTreeMap::new();
    let mut work = vec![root.to_path_buf()];
    while let Some(dir) = work.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let rel = entry.path().strip_prefix(root).unwrap().to_path_buf();
            if meta.is_dir() {
                out.insert(rel, None);
                work.push(entry.path());
            } else {
                out.insert(rel, Some(keep(&meta)));
            }
        }
    }
    out
}

/// Asserts that two files hold the same bytes, reading both in chunks.
pub fn assert_same_file(expected: &Path, actual: &Path) {
    let mut a = File::open(expected).unwrap();
    let mut b = File::open(actual).unwrap();
    let (mut bufa, mut bufb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut a, &mut bufa);
        let m = read_full(&mut b, &mut bufb);
        assert_eq!(n, m, "{}: length differs after {offset}", actual.display());
        assert!(
            bufa[..n] == bufb[..m],
            "{}: bytes differ in the MiB at {offset}",
            actual.display()
        );
        if n == 0 {
            return;
        }
        offset += n as u64;
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]).unwrap() {
            0 => break,
            n => filled += n,
        }
    }
    filled
}

/// Asserts through `std::fs` that `actual` shows the same names, sizes and bytes as
/// `expected`.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let want = walk(expected);
    assert_eq!(walk(actual), want, "names or sizes differ");
    for (rel, size) in &want {
        if size.is_some() {
            assert_same_file(&expected.join(rel), &actual.join(rel));
        }
    }
}

/// Runs a shell command line in `dir` and returns its standard output; fails on a non-zero
/// exit.
pub fn sh(dir: &Path, line: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{line}` in {}: {}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `line` with `sh` as user and group `id`, no supplementary groups (`setpriv`), in
/// `dir`: another local user, for tests of who may use a mount. Whether it succeeded.
pub fn as_user(id: u32, dir: &Path, line: &str) -> bool {
    Command::new("setpriv")
        .args([
            &format!("--reuid={id}"),
            &format!("--regid={id}"),
            "--clear-groups",
            "sh",
            "-c",
            line,
        ])
        .current_dir(dir)
        .status()
        .unwrap()
        .success()
}

/// Writes `text` into a new file `name` in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let mut file = File::create(&path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    path
}

/// Writes `text` into a new file `name` in `dir` readable and writable by its owner only (as a
/// config.toml holding keys must be) and returns its path.
pub fn write_private(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = write_file(dir, name, text);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Uploads `content` as `name` into `folder` and returns the new file's id.
pub fn upload(server: &Server, folder: Option<u64>, name: &str, content: &[u8]) -> u64 {
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("upload");
    fs::write(&source, content).unwrap();
    server
        .block_on(server.client().file_upload(folder, name, &source))
        .unwrap()
        .file_id
}

/// Reads `count` seeded random ranges (up to `max_len` bytes each) of `path` with `pread` and
/// compares each with `source`.
pub fn check_random_reads(path: &Path, source: &[u8], seed: u64, count: usize, max_len: u64) {
    use std::os::unix::fs::FileExt;
    let file = File::open(path).unwrap();
    let mut dice = Dice::new(seed);
    let size = source.len() as u64;
    for _ in 0..count {
        let offset = dice.below(size);
        let len = 1 + dice.below(max_len);
        let end = (offset + len).min(size);
        let mut buf = vec![0u8; (end - offset) as usize];
        file.read_exact_at(&mut buf, offset).unwrap();
        assert!(
            buf == source[offset as usize..end as usize],
            "{}: wrong bytes in {offset}..{end}",
            path.display()
        );
    }
}
