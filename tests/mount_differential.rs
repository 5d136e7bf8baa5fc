//! A real mount against a local directory: the same seeded random operations (creates, writes
//! at any offset, truncations, renames, unlinks, mkdirs, rmdirs, chmods, mtimes set, reads,
//! directory listings, fsyncs, and handles kept open across them) run through `std::fs` on a
//! mount over `yetifs serve` and on a temporary directory of the local filesystem, and every
//! result must be the same: the same bytes, names and outcome, or the same errno. Between
//! rounds the mount is unmounted and mounted again, every other time with `--write-back=1s`
//! (uploads then run in the background under the next operations) and once with a fresh cache
//! directory (everything it shows and reads comes from the server), and the whole trees are
//! compared before and after.
//!
//! What the mount does differently on purpose (docs/semantics.md) is left out of the
//! operations, not forgiven in the comparison: no hard links, symbolic links or special files;
//! no chmod of directories (their modes stay on the machine that set them, so a fresh cache
//! shows 0755); directory times, atimes, ctimes and link counts are not compared; a file's
//! mtime is compared only when it was set (the times of writes are each filesystem's own
//! clock at a different moment).
//!
//! A failure prints the seed and the operations run; `YETIFS_DIFF_SEED=N` runs that seed
//! again, `YETIFS_DIFF_ROUNDS` and `YETIFS_DIFF_OPS` change the number of rounds (3) and
//! operations per round (60). The bugs it found are reduced in `tests/fs_found_cases.rs`.
//! Needs `/dev/fuse` and the right to mount (root).
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::IntoRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::mount::{Mount, Server};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use yetifs::emulator::{Profile, RangeMode};

/// Every path an operation may name: files are mostly made at `a`, `b`, `c`, directories at
/// `d` and `e`, so that names collide.
const PATHS: [&str; 12] = [
    "a", "b", "c", "d", "e", "d/a", "d/b", "d/e", "e/c", "e/d", "d/e/a", "e/d/b",
];
const FILE_PATHS: [&str; 8] = ["a", "b", "c", "d/a", "d/b", "e/c", "d/e/a", "e/d/b"];
const DIR_PATHS: [&str; 4] = ["d", "e", "d/e", "e/d"];
const MODES: [u32; 5] = [0o644, 0o600, 0o640, 0o755, 0o700];
/// Handles kept open at most.
const MAX_HANDLES: usize = 3;

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
        Err(_) => default,
    }
}

/// One operation, run on both trees.
#[derive(Clone, Debug)]
enum Op {
    /// `open(O_CREAT | O_EXCL | O_WRONLY, mode)`, `pwrite` at `offset`, `close`.
    Create {
        path: &'static str,
        mode: u32,
        offset: u64,
        data: Vec<u8>,
    },
    /// `open(O_WRONLY)`, `pwrite`, `close`.
    Write {
        path: &'static str,
        offset: u64,
        data: Vec<u8>,
    },
    /// `truncate(2)` by path.
    Truncate {
        path: &'static str,
        size: u64,
    },
    /// `open(O_RDWR)`, the handle kept.
    Open {
        path: &'static str,
    },
    /// `pwrite` through kept handle `handle`.
    HandleWrite {
        handle: usize,
        offset: u64,
        data: Vec<u8>,
    },
    /// `ftruncate` through kept handle `handle`.
    HandleTruncate {
        handle: usize,
        size: u64,
    },
    /// `fsync` of kept handle `handle`.
    HandleFsync {
        handle: usize,
    },
    /// `close` of kept handle `handle`.
    HandleClose {
        handle: usize,
    },
    Read {
        path: &'static str,
    },
    ReadDir {
        path: &'static str,
    },
    Rename {
        from: &'static str,
        to: &'static str,
    },
    Unlink {
        path: &'static str,
    },
    Mkdir {
        path: &'static str,
    },
    Rmdir {
        path: &'static str,
    },
    /// `chmod` of a file (of a directory: left out, see the top).
    Chmod {
        path: &'static str,
        mode: u32,
    },
    /// `utimensat` of a file's atime and mtime.
    SetMtime {
        path: &'static str,
        when: SystemTime,
    },
}

/// A random operation; handle numbers are below `handles`.
fn random_op(rng: &mut StdRng, handles: usize) -> Op {
    let file = |rng: &mut StdRng| {
        if rng.random_bool(0.75) {
            *FILE_PATHS.choose(rng).unwrap()
        } else {
            *PATHS.choose(rng).unwrap()
        }
    };
    let dir = |rng: &mut StdRng| {
        if rng.random_bool(0.75) {
            *DIR_PATHS.choose(rng).unwrap()
        } else {
            *PATHS.choose(rng).unwrap()
        }
    };
    let data = |rng: &mut StdRng| {
        let len = rng.random_range(1..=16);
        let fill: u8 = rng.random();
        (0..len).map(|i| fill.wrapping_add(i)).collect::<Vec<u8>>()
    };
    loop {
        let op = match rng.random_range(0..24) {
            0..=2 => Op::Create {
                path: file(rng),
                mode: *MODES.choose(rng).unwrap(),
                offset: rng.random_range(0..32),
                data: data(rng),
            },
            3..=5 => Op::Write {
                path: file(rng),
                offset: rng.random_range(0..48),
                data: data(rng),
            },
            6 => Op::Truncate {
                path: file(rng),
                size: rng.random_range(0..48),
            },
            7 => Op::Open { path: file(rng) },
            8 | 9 if handles > 0 => Op::HandleWrite {
                handle: rng.random_range(0..handles),
                offset: rng.random_range(0..48),
                data: data(rng),
            },
            10 if handles > 0 => Op::HandleTruncate {
                handle: rng.random_range(0..handles),
                size: rng.random_range(0..48),
            },
            11 if handles > 0 => Op::HandleFsync {
                handle: rng.random_range(0..handles),
            },
            12 if handles > 0 => Op::HandleClose {
                handle: rng.random_range(0..handles),
            },
            13 => Op::Read { path: file(rng) },
            14 => Op::ReadDir { path: dir(rng) },
            15..=16 => Op::Rename {
                from: PATHS.choose(rng).unwrap(),
                to: PATHS.choose(rng).unwrap(),
            },
            17 => Op::Unlink { path: file(rng) },
            18..=19 => Op::Mkdir { path: dir(rng) },
            20 => Op::Rmdir { path: dir(rng) },
            21 => Op::Chmod {
                path: file(rng),
                mode: *MODES.choose(rng).unwrap(),
            },
            22 => Op::SetMtime {
                path: file(rng),
                when: UNIX_EPOCH
                    + Duration::new(
                        1_600_000_000 + rng.random_range(0..1_000_000),
                        rng.random_range(0..1_000_000_000),
                    ),
            },
            _ => continue,
        };
        return op;
    }
}

/// What an operation gave: nothing, bytes or names; or an errno.
type Outcome = Result<Shown, i32>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Shown {
    Done,
    Bytes(Vec<u8>),
    Names(Vec<String>),
}

fn errno(e: io::Error) -> i32 {
    e.raw_os_error()
        .unwrap_or_else(|| panic!("an error without an errno: {e}"))
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// `close(2)` of `file`, with its outcome (a close of the mount reports the upload's).
fn close(file: File) -> Result<(), i32> {
    // SAFETY: the descriptor was just taken out of `file`, which no longer closes it.
    let rc = unsafe { libc::close(file.into_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno(io::Error::last_os_error()))
    }
}

/// `truncate(2)` of `path`.
fn truncate(path: &Path, size: u64) -> Result<(), i32> {
    let size = libc::off_t::try_from(size).unwrap();
    // SAFETY: a NUL-terminated path that lives across the call.
    let rc = unsafe { libc::truncate(c_path(path).as_ptr(), size) };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno(io::Error::last_os_error()))
    }
}

/// `utimensat` of `path`'s atime and mtime to `when`.
fn set_times(path: &Path, when: SystemTime) -> Result<(), i32> {
    let since = when.duration_since(UNIX_EPOCH).unwrap();
    let time = libc::timespec {
        tv_sec: since.as_secs() as libc::time_t,
        tv_nsec: since.subsec_nanos().into(),
    };
    let times = [time, time];
    // SAFETY: a NUL-terminated path and two timespecs that live across the call.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c_path(path).as_ptr(), times.as_ptr(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno(io::Error::last_os_error()))
    }
}

/// One of the two trees: the mount or the local directory, with the handles kept open on it.
struct Side {
    root: PathBuf,
    handles: Vec<File>,
}

impl Side {
    fn at(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    fn run(&mut self, op: &Op) -> Outcome {
        let done = |r: io::Result<()>| r.map(|()| Shown::Done).map_err(errno);
        match op {
            Op::Create {
                path,
                mode,
                offset,
                data,
            } => {
                let file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(*mode)
                    .open(self.at(path))
                    .map_err(errno)?;
                file.write_all_at(data, *offset).map_err(errno)?;
                close(file).map(|()| Shown::Done)
            }
            Op::Write { path, offset, data } => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(self.at(path))
                    .map_err(errno)?;
                file.write_all_at(data, *offset).map_err(errno)?;
                close(file).map(|()| Shown::Done)
            }
            Op::Truncate { path, size } => truncate(&self.at(path), *size).map(|()| Shown::Done),
            Op::Open { path } => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(self.at(path))
                    .map_err(errno)?;
                self.handles.push(file);
                Ok(Shown::Done)
            }
            Op::HandleWrite {
                handle,
                offset,
                data,
            } => done(self.handles[*handle].write_all_at(data, *offset)),
            Op::HandleTruncate { handle, size } => done(self.handles[*handle].set_len(*size)),
            Op::HandleFsync { handle } => done(self.handles[*handle].sync_all()),
            Op::HandleClose { handle } => close(self.handles.remove(*handle)).map(|()| Shown::Done),
            Op::Read { path } => fs::read(self.at(path)).map(Shown::Bytes).map_err(errno),
            Op::ReadDir { path } => {
                let mut names = Vec::new();
                for entry in fs::read_dir(self.at(path)).map_err(errno)? {
                    let entry = entry.map_err(errno)?;
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
                names.sort();
                Ok(Shown::Names(names))
            }
            Op::Rename { from, to } => done(fs::rename(self.at(from), self.at(to))),
            Op::Unlink { path } => done(fs::remove_file(self.at(path))),
            Op::Mkdir { path } => done(fs::create_dir(self.at(path))),
            Op::Rmdir { path } => done(fs::remove_dir(self.at(path))),
            Op::Chmod { path, mode } => done(fs::set_permissions(
                self.at(path),
                fs::Permissions::from_mode(*mode),
            )),
            Op::SetMtime { path, when } => set_times(&self.at(path), *when).map(|()| Shown::Done),
        }
    }

    /// Closes every kept handle; the outcomes in order.
    fn close_all(&mut self) -> Vec<Result<(), i32>> {
        self.handles.drain(..).map(close).collect()
    }
}

/// What a tree shows at a path: a directory, or a file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Dir,
    File(Vec<u8>),
}

/// A whole tree: what it shows at each path, the modes of its files, and the mtimes of those
/// whose mtime was set.
struct Tree {
    entries: BTreeMap<String, Entry>,
    modes: BTreeMap<String, u32>,
    mtimes: BTreeMap<String, SystemTime>,
}

/// The whole tree under `root`, mtimes kept for the paths in `timed`.
fn tree(root: &Path, timed: &BTreeSet<String>) -> Tree {
    let mut out = BTreeMap::new();
    let mut modes = BTreeMap::new();
    let mut mtimes = BTreeMap::new();
    let mut work = vec![root.to_path_buf()];
    while let Some(dir) = work.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if meta.is_dir() {
                work.push(entry.path());
                out.insert(rel, Entry::Dir);
            } else {
                assert!(meta.is_file(), "{rel} is neither a file nor a directory");
                let bytes = fs::read(entry.path()).unwrap();
                assert_eq!(meta.len(), bytes.len() as u64, "{rel}: size and bytes");
                if timed.contains(&rel) {
                    mtimes.insert(rel.clone(), meta.modified().unwrap());
                }
                modes.insert(rel.clone(), meta.permissions().mode() & 0o7777);
                out.insert(rel, Entry::File(bytes));
            }
        }
    }
    Tree {
        entries: out,
        modes,
        mtimes,
    }
}

/// The run: the seed, what was done, the files whose mtime was set since their last change,
/// and where the file of each kept handle is now (`None`: unlinked). Prints the seed and the
/// operations if the test fails.
struct Run {
    seed: u64,
    log: Vec<String>,
    timed: BTreeSet<String>,
    handles: Vec<Option<String>>,
}

impl Drop for Run {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "replay with YETIFS_DIFF_SEED={}; operations run:\n  {}",
                self.seed,
                self.log.join("\n  ")
            );
        }
    }
}

/// `path` with its prefix `from` replaced by `to`, if it is `from` or lies below it.
fn moved(path: &str, from: &str, to: &str) -> Option<String> {
    let rest = path.strip_prefix(from)?;
    (rest.is_empty() || rest.starts_with('/')).then(|| format!("{to}{rest}"))
}

impl Run {
    /// Keeps the set mtimes and the handles' paths in step with `op`, which succeeded on both
    /// trees.
    fn track(&mut self, op: &Op) {
        match op {
            Op::SetMtime { path, .. } => {
                self.timed.insert((*path).to_owned());
            }
            Op::Create { path, .. } | Op::Write { path, .. } | Op::Truncate { path, .. } => {
                self.timed.remove(*path);
            }
            Op::Open { path } => self.handles.push(Some((*path).to_owned())),
            Op::HandleWrite { handle, .. } | Op::HandleTruncate { handle, .. } => {
                if let Some(path) = &self.handles[*handle] {
                    self.timed.remove(path);
                }
            }
            Op::HandleClose { handle } => {
                self.handles.remove(*handle);
            }
            Op::Unlink { path } => {
                self.timed.remove(*path);
                for kept in &mut self.handles {
                    if kept.as_deref() == Some(*path) {
                        *kept = None;
                    }
                }
            }
            Op::Rename { from, to } if from != to => {
                let replaced = |p: &String| moved(p, to, to).is_some();
                self.timed = std::mem::take(&mut self.timed)
                    .into_iter()
                    .filter(|p| !replaced(p) || moved(p, from, to).is_some())
                    .map(|p| moved(&p, from, to).unwrap_or(p))
                    .collect();
                for kept in &mut self.handles {
                    *kept = match kept.take() {
                        Some(p) => match moved(&p, from, to) {
                            Some(new) => Some(new),
                            None if replaced(&p) => None,
                            None => Some(p),
                        },
                        None => None,
                    };
                }
            }
            _ => {}
        }
    }

    fn compare_trees(&self, what: &str, mount: &Path, local: &Path) {
        let shown = tree(mount, &self.timed);
        let want = tree(local, &self.timed);
        let paths: Vec<&String> = shown.entries.keys().collect();
        let wanted: Vec<&String> = want.entries.keys().collect();
        assert_eq!(paths, wanted, "{what}: the mount lists other paths");
        for (path, entry) in &want.entries {
            // A `Truncate` by path racing with the kernel's release of an earlier handle (it
            // comes after `close(2)` returned) lost the truncation, found here:
            // `fs_found_cases::a_truncate_by_path_while_the_last_handle_is_released_is_kept`.
            assert_eq!(&shown.entries[path], entry, "{what}: {path}");
        }
        // A new file's folder listed again within the second between the file's upload and
        // the `file/edit` that gives it its metadata showed the bare upload (mode 0644, the
        // upload date), found here:
        // `fs_found_cases::a_new_file_listed_again_before_its_metadata_edit_shows_what_the_close_left`.
        // Times and modes are compared last, so that any other difference shows first.
        for (path, mtime) in &want.mtimes {
            assert_eq!(
                shown.mtimes.get(path),
                Some(mtime),
                "{what}: the mtime of {path}"
            );
        }
        for (path, mode) in &want.modes {
            assert_eq!(
                format!("{:o}", shown.modes[path]),
                format!("{mode:o}"),
                "{what}: the mode of {path}"
            );
        }
    }
}

/// An outcome in a few words, for the log.
fn brief(outcome: &Outcome) -> String {
    match outcome {
        Ok(Shown::Done) => "ok".into(),
        Ok(Shown::Bytes(bytes)) => format!("{} bytes", bytes.len()),
        Ok(Shown::Names(names)) => format!("{names:?}"),
        Err(errno) => io::Error::from_raw_os_error(*errno).to_string(),
    }
}

/// Runs `op` on both sides and compares the outcomes.
fn step(run: &mut Run, mount: &mut Side, local: &mut Side, op: &Op) {
    let want = local.run(op);
    let got = mount.run(op);
    run.log.push(format!("{op:?}: {}", brief(&want)));
    assert_eq!(
        got, want,
        "{op:?}: the mount gave {got:?}, the local filesystem {want:?}"
    );
    if want.is_ok() {
        run.track(op);
    }
}

/// Skips what the comparison leaves out: a chmod of a directory.
fn left_out(op: &Op, local: &Side) -> bool {
    matches!(op, Op::Chmod { path, .. } if local.at(path).is_dir())
}

#[test]
fn a_mount_answers_every_operation_as_a_local_filesystem_does_across_remounts() {
    let seed = match std::env::var("YETIFS_DIFF_SEED") {
        Ok(_) => env_number("YETIFS_DIFF_SEED", 0),
        Err(_) => rand::random(),
    };
    let rounds = env_number("YETIFS_DIFF_ROUNDS", 3);
    let ops = env_number("YETIFS_DIFF_OPS", 60);
    eprintln!("seed {seed} (YETIFS_DIFF_SEED), {rounds} rounds of {ops} operations");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut run = Run {
        seed,
        log: Vec::new(),
        timed: BTreeSet::new(),
        handles: Vec::new(),
    };

    let server = Server::start(Profile::V5, RangeMode::Correct);
    let scratch = tempfile::tempdir().unwrap();
    let local_root = scratch.path().join("local");
    fs::create_dir(&local_root).unwrap();
    let mut cache = scratch.path().join("cache-0");
    let mut mounted = Mount::start_with_cache(&server, &cache, &[]);
    let mut mount = Side {
        root: mounted.path().to_path_buf(),
        handles: Vec::new(),
    };
    let mut local = Side {
        root: local_root,
        handles: Vec::new(),
    };
    let start = [
        Op::Mkdir { path: "d" },
        Op::Mkdir { path: "e" },
        Op::Mkdir { path: "d/e" },
        Op::Create {
            path: "a",
            mode: 0o644,
            offset: 0,
            data: b"hello".to_vec(),
        },
        Op::Create {
            path: "d/b",
            mode: 0o600,
            offset: 4,
            data: b"world".to_vec(),
        },
    ];
    for op in &start {
        step(&mut run, &mut mount, &mut local, op);
    }
    for round in 0..rounds {
        run.log.push(format!("(round {round})"));
        for _ in 0..ops {
            let mut op = random_op(&mut rng, local.handles.len());
            while left_out(&op, &local)
                || (matches!(op, Op::Open { .. }) && local.handles.len() >= MAX_HANDLES)
            {
                op = random_op(&mut rng, local.handles.len());
            }
            step(&mut run, &mut mount, &mut local, &op);
        }
        run.log.push("(every handle closed)".into());
        assert_eq!(
            mount.close_all(),
            local.close_all(),
            "closing the handles kept"
        );
        run.handles.clear();
        run.compare_trees(&format!("end of round {round}"), &mount.root, &local.root);
        let status = mounted.unmount();
        assert!(status.success(), "the unmount ended with {status}");
        // Every other mount closes with write-back (uploads in the background, under the
        // next operations); the one before the last round gets a fresh cache directory, so
        // that everything it shows and every byte it reads comes from the server.
        let next = round + 1;
        if next + 1 == rounds {
            cache = scratch.path().join(format!("cache-{next}"));
        }
        let flags: &[&str] = if next % 2 == 1 {
            &["--write-back=1s"]
        } else {
            &[]
        };
        run.log.push(format!(
            "(remounted, {}, {flags:?})",
            cache.file_name().unwrap().to_string_lossy()
        ));
        mounted = Mount::start_with_cache(&server, &cache, flags);
        mount.root = mounted.path().to_path_buf();
        run.compare_trees(
            &format!("after round {round}'s remount"),
            &mount.root,
            &local.root,
        );
    }
    let status = mounted.unmount();
    assert!(status.success(), "the unmount ended with {status}");
}
