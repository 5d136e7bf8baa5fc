//! The core against a model of the filesystem it must look like: random sequences of creates,
//! writes at any offset (holes included), truncations, renames, unlinks, mkdirs, rmdirs, mode
//! and mtime changes, fsyncs, syncs, remounts and crashes, run through the core over an
//! in-memory account and through a plain model (files as bytes, mode and mtime by path, and a
//! set of directories with their modes). Every operation must give the model's outcome (the
//! same errno, or success), and after every remount and crash, and at the end, the whole tree
//! must be the model's: names, kinds, sizes, bytes, modes and mtimes.
//!
//! The test stands in for the kernel: it walks paths with `lookup` (a missing component is
//! `ENOENT`, a file on the way `ENOTDIR`) and makes the checks the VFS makes before a rename
//! reaches a filesystem (a directory into its own subtree is `EINVAL`, onto one of its own
//! ancestors `ENOTEMPTY`). Each file has at most one handle of the test open on it, opened for
//! reading and writing; a write or truncation of a file with that handle open goes through it,
//! one of a file without goes through a handle of its own, closed at once (`truncate(2)` by
//! path).
//!
//! What the model expects:
//! - a remount is a clean unmount (every handle closed, every upload waited for) and a new core
//!   over the same account, with the same cache directory or a fresh one: everything survives
//!   but the modes of directories, which stay on the machine that set them (a fresh cache shows
//!   them as 0755);
//! - a crash drops the core without closing a handle or waiting for anything (`kill -9`), and
//!   a new core opens the same cache directory and journal. Every name change survives
//!   (creates, renames, unlinks, mkdirs, rmdirs: each is on the server or in the journal when
//!   the call returns), and so do the bytes a file had at its last close, `fsync`, `sync` or
//!   truncation by path — for a file created and never closed, none. Its mode and mtime are
//!   those it had then, or ones it showed since (a change of attributes of a file with
//!   unsaved writes may or may not survive with the writes lost). The tree is that before the
//!   new core resumes the journal and after;
//! - an `fsync` or a `yetifs sync` saves what a close saves; a file unlinked (or replaced by a
//!   rename) while open is gone, its handle still usable;
//! - a create, a write, and a truncation that changes the size give the file the time of that
//!   call as its mtime; nothing else changes a file's mtime but setting it.
//!
//! Uploads run only when a close, an `fsync`, a sync or an unmount asks for them (the watcher,
//! which runs them in the background, is not started), so that a case runs the same way every
//! time and shrinks. The upload's last steps (the name fix and metadata of a new file) are
//! waited for right after, as the watcher does them within a second; what goes wrong within
//! that second, and the other bugs this test found, are reduced to the cases of
//! `tests/fs_found_cases.rs` (each place says which).
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::core::{closing_uploads, delayed, options_with, read_all, unmount, CacheDir};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use yetifs::fs::{Core, FsError, FsOptions, Ino, Kind, SetAttr, ROOT_INO};
use yetifs::remote::memory::MemoryRemote;

/// Paths a file is mostly made at; `d` and `e` are mostly directories, so the names collide.
const FILE_PATHS: [&str; 8] = ["a", "b", "c", "d/a", "d/b", "e/c", "d/e/a", "e/d/b"];
/// Paths a directory is mostly made at.
const DIR_PATHS: [&str; 4] = ["d", "e", "d/e", "e/d"];
/// Every path an operation may name.
const ALL_PATHS: [&str; 12] = [
    "a", "b", "c", "d", "e", "d/a", "d/b", "d/e", "e/c", "e/d", "d/e/a", "e/d/b",
];
/// The largest offset or size a write or truncation uses: files stay small, holes are common.
const MAX_OFFSET: u64 = 48;
/// The longest write.
const MAX_WRITE: usize = 16;

/// Permission bits, shown in octal.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Mode(u32);

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0o{:o}", self.0)
    }
}

/// One operation of a case.
#[derive(Clone, Debug)]
enum Op {
    /// `open(path, O_CREAT | O_EXCL | O_RDWR, mode)`, the handle kept open.
    Create {
        path: &'static str,
        mode: Mode,
    },
    /// `open(path, O_RDWR)`, the handle kept open (nothing if one is open).
    Open {
        path: &'static str,
    },
    /// `pwrite` of `len` bytes counting up from `fill`, at `offset`.
    Write {
        path: &'static str,
        offset: u64,
        len: usize,
        fill: u8,
    },
    /// `ftruncate` through the open handle, else `truncate(2)`.
    Truncate {
        path: &'static str,
        size: u64,
    },
    /// `close` of the open handle (nothing if none is open).
    Close {
        path: &'static str,
    },
    /// `fsync` of the open handle, else of a handle opened for it.
    Fsync {
        path: &'static str,
    },
    /// Reads the whole file and compares it with the model's bytes.
    Read {
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
        mode: Mode,
    },
    Rmdir {
        path: &'static str,
    },
    Chmod {
        path: &'static str,
        mode: Mode,
    },
    /// `utimensat` of atime and mtime to the second `secs` after 2020-09-13 (with nanoseconds).
    SetMtime {
        path: &'static str,
        secs: u32,
    },
    /// `yetifs sync`: everything pending is uploaded.
    Sync,
    /// A clean unmount and a new core, over the same cache directory or a fresh one.
    Remount {
        fresh_cache: bool,
    },
    /// `kill -9` and a new core over the same cache directory.
    Crash,
}

fn file_path() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        3 => prop::sample::select(&FILE_PATHS[..]),
        1 => prop::sample::select(&ALL_PATHS[..]),
    ]
}

fn dir_path() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        3 => prop::sample::select(&DIR_PATHS[..]),
        1 => prop::sample::select(&ALL_PATHS[..]),
    ]
}

fn any_path() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&ALL_PATHS[..])
}

fn mode() -> impl Strategy<Value = Mode> {
    prop::sample::select(vec![0o644, 0o600, 0o640, 0o755, 0o700]).prop_map(Mode)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (file_path(), mode()).prop_map(|(path, mode)| Op::Create { path, mode }),
        2 => file_path().prop_map(|path| Op::Open { path }),
        5 => (file_path(), 0..=MAX_OFFSET, 1..=MAX_WRITE, any::<u8>())
            .prop_map(|(path, offset, len, fill)| Op::Write { path, offset, len, fill }),
        2 => (file_path(), 0..=MAX_OFFSET).prop_map(|(path, size)| Op::Truncate { path, size }),
        3 => file_path().prop_map(|path| Op::Close { path }),
        1 => file_path().prop_map(|path| Op::Fsync { path }),
        2 => file_path().prop_map(|path| Op::Read { path }),
        3 => (any_path(), any_path()).prop_map(|(from, to)| Op::Rename { from, to }),
        2 => file_path().prop_map(|path| Op::Unlink { path }),
        4 => (dir_path(), mode()).prop_map(|(path, mode)| Op::Mkdir { path, mode }),
        2 => dir_path().prop_map(|path| Op::Rmdir { path }),
        1 => (any_path(), mode()).prop_map(|(path, mode)| Op::Chmod { path, mode }),
        1 => (file_path(), 0..1000u32).prop_map(|(path, secs)| Op::SetMtime { path, secs }),
        1 => Just(Op::Sync),
        1 => any::<bool>().prop_map(|fresh_cache| Op::Remount { fresh_cache }),
        1 => Just(Op::Crash),
    ]
}

/// The tree every case starts from, made through the core: directories `d`, `e` and `d/e`,
/// and files `a`, `d/b` and `d/e/a` (empty), closed.
fn start() -> Vec<Op> {
    let write = |path, len, fill| Op::Write {
        path,
        offset: 0,
        len,
        fill,
    };
    vec![
        Op::Mkdir {
            path: "d",
            mode: Mode(0o755),
        },
        Op::Mkdir {
            path: "e",
            mode: Mode(0o700),
        },
        Op::Mkdir {
            path: "d/e",
            mode: Mode(0o755),
        },
        Op::Create {
            path: "a",
            mode: Mode(0o644),
        },
        write("a", 5, b'a'),
        Op::Close { path: "a" },
        Op::Create {
            path: "d/b",
            mode: Mode(0o600),
        },
        write("d/b", 16, b'b'),
        Op::Close { path: "d/b" },
        Op::Create {
            path: "d/e/a",
            mode: Mode(0o640),
        },
        Op::Close { path: "d/e/a" },
    ]
}

/// How the mounts of a case are set up.
#[derive(Clone, Copy, Debug)]
struct Setup {
    /// `--write-back` (with a delay longer than any case): a close only journals.
    write_back: bool,
    /// Listings never trusted (every lookup lists again) instead of trusted for an hour.
    no_listing_cache: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (any::<bool>(), any::<bool>()).prop_map(|(write_back, no_listing_cache)| Setup {
        write_back,
        no_listing_cache,
    })
}

impl Setup {
    fn options(self) -> FsOptions {
        let ttl = if self.no_listing_cache {
            Duration::ZERO
        } else {
            Duration::from_secs(3600)
        };
        let write_back = if self.write_back {
            delayed(Duration::from_secs(24 * 3600))
        } else {
            closing_uploads()
        };
        options_with(ttl, write_back)
    }
}

/// The errno of an outcome as a name, for messages.
fn show(outcome: &Result<(), i32>) -> String {
    match outcome {
        Ok(()) => "Ok".into(),
        Err(errno) => {
            let name = match *errno {
                libc::ENOENT => "ENOENT",
                libc::ENOTDIR => "ENOTDIR",
                libc::EISDIR => "EISDIR",
                libc::EEXIST => "EEXIST",
                libc::ENOTEMPTY => "ENOTEMPTY",
                libc::EINVAL => "EINVAL",
                libc::EBADF => "EBADF",
                libc::EIO => "EIO",
                _ => "errno",
            };
            format!("{name} ({errno})")
        }
    }
}

fn errno_of(e: FsError) -> i32 {
    e.errno()
}

/// The parent of `path` (`""` for the root) and its last component.
fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// Whether `path` lies strictly below directory `dir`.
fn is_below(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// `path` with its prefix `from` replaced by `to` (`path` is `from` or below it).
fn moved(path: &str, from: &str, to: &str) -> String {
    format!("{to}{}", &path[from.len()..])
}

/// The `len` bytes a write of `fill` puts.
fn written(len: usize, fill: u8) -> Vec<u8> {
    (0..len).map(|i| fill.wrapping_add(i as u8)).collect()
}

/// The mtime `SetMtime { secs }` sets.
fn set_time(secs: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(1_600_000_000 + u64::from(secs), secs * 7919 % 1_000_000_000)
}

/// What a file holds and shows.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Version {
    bytes: Vec<u8>,
    mode: u32,
    mtime: SystemTime,
}

/// A file of the model.
#[derive(Clone, Debug)]
struct File {
    /// What it shows now.
    live: Version,
    /// The bytes a crash leaves.
    saved: Vec<u8>,
    /// The modes and mtimes a crash may leave.
    saved_modes: BTreeSet<u32>,
    saved_mtimes: BTreeSet<SystemTime>,
    /// Changed since the bytes were last saved.
    unsaved: bool,
    /// The test's handle open on it.
    handle: Option<u64>,
}

impl File {
    fn new(live: Version, handle: Option<u64>) -> File {
        let mut file = File {
            saved: Vec::new(),
            saved_modes: BTreeSet::new(),
            saved_mtimes: BTreeSet::new(),
            live,
            unsaved: false,
            handle,
        };
        file.save();
        file
    }

    /// What it shows now is what a crash leaves.
    fn save(&mut self) {
        self.saved = self.live.bytes.clone();
        self.saved_modes = BTreeSet::from([self.live.mode]);
        self.saved_mtimes = BTreeSet::from([self.live.mtime]);
        self.unsaved = false;
    }

    /// The live attributes changed: saved too, unless there are unsaved bytes, in which case
    /// a crash may leave the new ones or the old.
    fn attributes_changed(&mut self) {
        if self.unsaved {
            self.saved_modes.insert(self.live.mode);
            self.saved_mtimes.insert(self.live.mtime);
        } else {
            self.save();
        }
    }

    /// The bytes changed at `mtime` (`None`: the mtime stays); saved if `saved`.
    fn bytes_changed(&mut self, mtime: Option<SystemTime>, saved: bool) {
        if let Some(mtime) = mtime {
            self.live.mtime = mtime;
        }
        if saved {
            self.save();
        } else {
            self.unsaved = true;
            self.saved_mtimes.insert(self.live.mtime);
        }
    }
}

/// What the tree must show at a path: a directory with its mode, or a file's bytes with the
/// modes and mtimes it may have.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expected {
    Dir(u32),
    File {
        bytes: Vec<u8>,
        modes: BTreeSet<u32>,
        mtimes: BTreeSet<SystemTime>,
    },
}

/// What the core shows at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shown {
    Dir(u32),
    File {
        bytes: Vec<u8>,
        size: u64,
        mode: u32,
        mtime: SystemTime,
    },
}

/// The model: files by path, directories with their modes.
#[derive(Clone, Debug, Default)]
struct Model {
    files: BTreeMap<String, File>,
    dirs: BTreeMap<String, u32>,
}

impl Model {
    fn is_dir(&self, path: &str) -> bool {
        path.is_empty() || self.dirs.contains_key(path)
    }

    fn exists(&self, path: &str) -> bool {
        self.is_dir(path) || self.files.contains_key(path)
    }

    /// The outcome of walking to `path`'s parent: every component a directory.
    fn walk_parent(&self, path: &str) -> Result<(), i32> {
        let (parent, _) = split(path);
        if parent.is_empty() {
            return Ok(());
        }
        let mut at = String::new();
        for part in parent.split('/') {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            if self.files.contains_key(&at) {
                return Err(libc::ENOTDIR);
            }
            if !self.dirs.contains_key(&at) {
                return Err(libc::ENOENT);
            }
        }
        Ok(())
    }

    /// The outcome of walking to `path`, which must be a file.
    fn file(&self, path: &str) -> Result<&File, i32> {
        self.walk_parent(path)?;
        if self.is_dir(path) {
            return Err(libc::EISDIR);
        }
        self.files.get(path).ok_or(libc::ENOENT)
    }

    fn file_mut(&mut self, path: &str) -> &mut File {
        self.files.get_mut(path).unwrap()
    }

    fn is_empty_dir(&self, dir: &str) -> bool {
        !self
            .files
            .keys()
            .chain(self.dirs.keys())
            .any(|p| is_below(p, dir))
    }

    /// The outcome of `rename(from, to)`.
    fn rename_outcome(&self, from: &str, to: &str) -> Result<(), i32> {
        self.walk_parent(from)?;
        self.walk_parent(to)?;
        if !self.exists(from) {
            return Err(libc::ENOENT);
        }
        if is_below(to, from) {
            return Err(libc::EINVAL);
        }
        if is_below(from, to) {
            return Err(libc::ENOTEMPTY);
        }
        if from == to {
            return Ok(());
        }
        match (self.is_dir(from), self.is_dir(to), self.exists(to)) {
            (_, _, false) => Ok(()),
            (true, false, true) => Err(libc::ENOTDIR),
            (false, true, true) => Err(libc::EISDIR),
            (true, true, true) if !self.is_empty_dir(to) => Err(libc::ENOTEMPTY),
            _ => Ok(()),
        }
    }

    /// Renames `from` to `to` (the outcome was `Ok`); returns the handles of a replaced file.
    fn rename(&mut self, from: &str, to: &str) -> Option<u64> {
        if from == to {
            return None;
        }
        let replaced = self.files.remove(to).and_then(|f| f.handle);
        self.dirs.remove(to);
        if let Some(file) = self.files.remove(from) {
            self.files.insert(to.to_owned(), file);
            return replaced;
        }
        let moving: Vec<String> = self
            .files
            .keys()
            .chain(self.dirs.keys())
            .filter(|p| *p == from || is_below(p, from))
            .cloned()
            .collect();
        for path in moving {
            let new = moved(&path, from, to);
            if let Some(file) = self.files.remove(&path) {
                self.files.insert(new, file);
            } else if let Some(mode) = self.dirs.remove(&path) {
                self.dirs.insert(new, mode);
            }
        }
        replaced
    }

    /// What the tree must show now.
    fn expected(&self) -> BTreeMap<String, Expected> {
        let mut out: BTreeMap<String, Expected> = self
            .dirs
            .iter()
            .map(|(p, mode)| (p.clone(), Expected::Dir(*mode)))
            .collect();
        for (path, file) in &self.files {
            out.insert(
                path.clone(),
                Expected::File {
                    bytes: file.live.bytes.clone(),
                    modes: BTreeSet::from([file.live.mode]),
                    mtimes: BTreeSet::from([file.live.mtime]),
                },
            );
        }
        out
    }

    /// What the tree may show after a crash.
    fn expected_after_crash(&self) -> BTreeMap<String, Expected> {
        let mut out = self.expected();
        for (path, file) in &self.files {
            out.insert(
                path.clone(),
                Expected::File {
                    bytes: file.saved.clone(),
                    modes: file.saved_modes.clone(),
                    mtimes: file.saved_mtimes.clone(),
                },
            );
        }
        out
    }
}

/// A case: the account, the cache directory, the core of the current mount, and the model.
struct World {
    setup: Setup,
    remote: Arc<MemoryRemote>,
    cache: CacheDir,
    core: Core<MemoryRemote>,
    /// Cores that crashed: nothing of theirs runs again; dropped once the case is checked.
    crashed: Vec<Core<MemoryRemote>>,
    model: Model,
    /// Handles open on files that were unlinked or replaced.
    orphans: Vec<u64>,
    /// Operations run so far, for messages.
    done: Vec<String>,
}

/// The time of a call that changed a file's bytes must be its mtime.
fn check_mtime(mtime: SystemTime, before: SystemTime, after: SystemTime) -> Result<(), String> {
    if mtime < before || mtime > after {
        return Err(format!(
            "mtime {mtime:?} is not the time of the call ({before:?} to {after:?})"
        ));
    }
    Ok(())
}

impl World {
    fn new(setup: Setup) -> World {
        let remote = Arc::new(MemoryRemote::new());
        let cache = CacheDir::new();
        let core = cache.mount(&remote, setup.options());
        World {
            setup,
            remote,
            cache,
            core,
            crashed: Vec::new(),
            model: Model::default(),
            orphans: Vec::new(),
            done: Vec::new(),
        }
    }

    fn fail(&self, what: String) -> TestCaseError {
        TestCaseError::fail(format!(
            "{what}\n{setup:?}, after:\n  {}",
            self.done.join("\n  "),
            setup = self.setup
        ))
    }

    /// Fails unless the core's outcome is the model's.
    fn agree<T>(
        &self,
        core: &Result<T, i32>,
        model: &Result<(), i32>,
    ) -> Result<(), TestCaseError> {
        let core = core.as_ref().map(|_| ()).map_err(|e| *e);
        if core != *model {
            return Err(self.fail(format!(
                "the core answered {}, the model {}",
                show(&core),
                show(model)
            )));
        }
        Ok(())
    }

    /// The inode at `path` and its kind, walked with `lookup` as the kernel does.
    async fn walk_to(&self, path: &str) -> Result<(Ino, Kind), i32> {
        let mut at = (ROOT_INO, Kind::Dir);
        if path.is_empty() {
            return Ok(at);
        }
        for part in path.split('/') {
            let attr = self.core.lookup(at.0, part).await.map_err(errno_of)?;
            at = (attr.ino, attr.kind);
        }
        Ok(at)
    }

    /// The inode at `path`.
    async fn resolve(&self, path: &str) -> Result<Ino, i32> {
        Ok(self.walk_to(path).await?.0)
    }

    /// The inode of `path`'s parent, which must be a directory, and the last component.
    async fn parent<'p>(&self, path: &'p str) -> Result<(Ino, &'p str), i32> {
        let (parent, name) = split(path);
        match self.walk_to(parent).await? {
            (ino, Kind::Dir) => Ok((ino, name)),
            _ => Err(libc::ENOTDIR),
        }
    }

    /// Waits for the last steps (name fix, metadata) of an upload of `path` that has just run,
    /// as the watcher runs them within a second. What a listing fetched within that second shows
    /// is `fs_found_cases::a_new_file_listed_again_before_its_metadata_edit_shows_what_the_close_left`
    /// and `fs_found_cases::a_new_file_written_again_after_its_folder_was_listed_before_its_metadata_edit_keeps_its_mode`.
    async fn settle(&self, path: &str) -> Result<(), TestCaseError> {
        let report = self.core.sync(Some(path), |_, _| {}).await;
        if !report.failed.is_empty() {
            return Err(self.fail(format!("the upload of {path} failed: {:?}", report.failed)));
        }
        Ok(())
    }

    /// Whether a close uploads (no write-back).
    fn closing_uploads(&self) -> bool {
        !self.setup.write_back
    }

    async fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.done.push(format!("{op:?}"));
        match *op {
            Op::Create { path, mode } => self.create(path, mode.0).await,
            Op::Open { path } => self.open(path).await,
            Op::Write {
                path,
                offset,
                len,
                fill,
            } => self.write(path, offset, &written(len, fill)).await,
            Op::Truncate { path, size } => self.truncate(path, size).await,
            Op::Close { path } => self.close(path).await,
            Op::Fsync { path } => self.fsync(path).await,
            Op::Read { path } => self.read(path).await,
            Op::Rename { from, to } => self.rename(from, to).await,
            Op::Unlink { path } => self.unlink(path).await,
            Op::Mkdir { path, mode } => self.mkdir(path, mode.0).await,
            Op::Rmdir { path } => self.rmdir(path).await,
            Op::Chmod { path, mode } => self.chmod(path, mode.0).await,
            Op::SetMtime { path, secs } => self.set_mtime(path, set_time(secs)).await,
            Op::Sync => self.sync().await,
            Op::Remount { fresh_cache } => self.remount(fresh_cache).await,
            Op::Crash => self.crash().await,
        }
    }

    async fn create(&mut self, path: &str, mode: u32) -> Result<(), TestCaseError> {
        let want = self.model.walk_parent(path).and_then(|()| {
            if self.model.exists(path) {
                Err(libc::EEXIST)
            } else {
                Ok(())
            }
        });
        let before = SystemTime::now();
        let got = match self.parent(path).await {
            Ok((parent, name)) => {
                let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR;
                self.core
                    .create(parent, name, mode, flags)
                    .await
                    .map_err(errno_of)
            }
            Err(e) => Err(e),
        };
        let after = SystemTime::now();
        self.agree(&got, &want)?;
        if let Ok((attr, opened)) = got {
            check_mtime(attr.mtime, before, after).map_err(|e| self.fail(e))?;
            let live = Version {
                bytes: Vec::new(),
                mode,
                mtime: attr.mtime,
            };
            self.model
                .files
                .insert(path.to_owned(), File::new(live, Some(opened.fh)));
        }
        Ok(())
    }

    async fn open(&mut self, path: &str) -> Result<(), TestCaseError> {
        let want = self.model.file(path).map(|f| f.handle);
        if let Ok(Some(_)) = want {
            return Ok(());
        }
        if want.is_ok() && !self.closing_uploads() {
            // As if the write-back delay had passed: writes through a handle opened on a file
            // whose close is still to be uploaded may be what a crash leaves instead of that
            // close's bytes (docs/semantics.md, what a crash leaves): the model does not follow.
            self.settle(path).await?;
        }
        let got = match self.resolve(path).await {
            Ok(ino) => self.core.open(ino, libc::O_RDWR).await.map_err(errno_of),
            Err(e) => Err(e),
        };
        self.agree(&got, &want.map(|_| ()))?;
        if let Ok(opened) = got {
            self.model.file_mut(path).handle = Some(opened.fh);
        }
        Ok(())
    }

    /// Writes `data` at `offset` of `path`, through its open handle if it has one.
    async fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<(), TestCaseError> {
        let want = self.model.file(path).map(|f| f.handle);
        let ino = self.resolve(path).await;
        let handle = want.as_ref().ok().copied().flatten();
        let before = SystemTime::now();
        let (got, mtime) = match (ino, handle) {
            (Err(e), _) => (Err(e), None),
            (Ok(ino), Some(fh)) => {
                let got = self.core.write(fh, offset, data).await.map_err(errno_of);
                (got.map(|_| ()), self.core.getattr(ino).await.ok())
            }
            (Ok(ino), None) => match self.core.open(ino, libc::O_WRONLY).await {
                Err(e) => (Err(e.errno()), None),
                Ok(opened) => {
                    let wrote = self.core.write(opened.fh, offset, data).await;
                    let attr = self.core.getattr(ino).await.ok();
                    let flushed = self.core.flush(opened.fh).await;
                    let released = self.core.release(opened.fh).await;
                    let got = wrote.map(|_| ()).and(flushed).and(released);
                    (got.map_err(errno_of), attr)
                }
            },
        };
        let after = SystemTime::now();
        self.agree(&got, &want.map(|_| ()))?;
        if got.is_err() {
            return Ok(());
        }
        let mtime = mtime.ok_or_else(|| self.fail("no attributes after a write".into()))?;
        check_mtime(mtime.mtime, before, after).map_err(|e| self.fail(e))?;
        let file = self.model.file_mut(path);
        let end = offset as usize + data.len();
        if file.live.bytes.len() < end {
            file.live.bytes.resize(end, 0);
        }
        file.live.bytes[offset as usize..end].copy_from_slice(data);
        file.bytes_changed(Some(mtime.mtime), handle.is_none());
        if handle.is_none() && self.closing_uploads() {
            self.settle(path).await?;
        }
        Ok(())
    }

    /// Truncates `path` to `size`, through its open handle if it has one, else by path.
    async fn truncate(&mut self, path: &str, size: u64) -> Result<(), TestCaseError> {
        let want = self
            .model
            .file(path)
            .map(|f| (f.handle, f.live.bytes.len()));
        let handle = want.as_ref().ok().and_then(|(h, _)| *h);
        let before = SystemTime::now();
        let got = match self.resolve(path).await {
            Ok(ino) => {
                let change = SetAttr {
                    size: Some(size),
                    fh: handle,
                    ..SetAttr::default()
                };
                self.core.setattr(ino, change).await.map_err(errno_of)
            }
            Err(e) => Err(e),
        };
        let after = SystemTime::now();
        self.agree(&got, &want.map(|_| ()))?;
        let (Ok(attr), Ok((_, len))) = (got, want) else {
            return Ok(());
        };
        let resized = len as u64 != size;
        if resized {
            check_mtime(attr.mtime, before, after).map_err(|e| self.fail(e))?;
        }
        let file = self.model.file_mut(path);
        file.live.bytes.resize(size as usize, 0);
        file.bytes_changed(resized.then_some(attr.mtime), handle.is_none());
        if handle.is_none() && self.closing_uploads() {
            self.settle(path).await?;
        }
        Ok(())
    }

    async fn close(&mut self, path: &str) -> Result<(), TestCaseError> {
        let Some(fh) = self.model.file(path).ok().and_then(|f| f.handle) else {
            return Ok(());
        };
        let flushed = self.core.flush(fh).await;
        let released = self.core.release(fh).await;
        let got = flushed.and(released).map_err(errno_of);
        self.agree(&got, &Ok(()))?;
        let file = self.model.file_mut(path);
        file.handle = None;
        file.save();
        if self.closing_uploads() {
            self.settle(path).await?;
        }
        Ok(())
    }

    async fn fsync(&mut self, path: &str) -> Result<(), TestCaseError> {
        let want = self.model.file(path).map(|f| f.handle);
        let got = match (self.resolve(path).await, want) {
            (Err(e), _) => Err(e),
            (Ok(_), Ok(Some(fh))) => self.core.fsync(fh).await.map_err(errno_of),
            (Ok(ino), _) => match self.core.open(ino, libc::O_RDWR).await {
                Err(e) => Err(e.errno()),
                Ok(opened) => {
                    let synced = self.core.fsync(opened.fh).await;
                    let released = self.core.release(opened.fh).await;
                    synced.and(released).map_err(errno_of)
                }
            },
        };
        self.agree(&got, &want.map(|_| ()))?;
        if got.is_ok() {
            self.model.file_mut(path).save();
            self.settle(path).await?;
        }
        Ok(())
    }

    async fn read(&mut self, path: &str) -> Result<(), TestCaseError> {
        let want = self.model.file(path).map(|f| f.live.bytes.clone());
        let got = match self.resolve(path).await {
            Ok(ino) => match self.core.open(ino, libc::O_RDONLY).await {
                Ok(opened) => {
                    let read = self.core.read(opened.fh, 0, u32::MAX).await;
                    let released = self.core.release(opened.fh).await;
                    read.and_then(|b| released.map(|()| b.to_vec()))
                        .map_err(errno_of)
                }
                Err(e) => Err(e.errno()),
            },
            Err(e) => Err(e),
        };
        self.agree(&got, &want.as_ref().map(|_| ()).map_err(|e| *e))?;
        if let (Ok(got), Ok(want)) = (got, want) {
            if got != want {
                return Err(self.fail(format!("{path} reads {got:?}, not {want:?}")));
            }
        }
        Ok(())
    }

    async fn rename(&mut self, from: &str, to: &str) -> Result<(), TestCaseError> {
        let want = self.model.rename_outcome(from, to);
        let got = async {
            let (parent, name) = self.parent(from).await?;
            let (newparent, newname) = self.parent(to).await?;
            let source = self.core.lookup(parent, name).await.map_err(errno_of)?;
            // The kernel's own checks, made before the filesystem is asked.
            if is_below(to, from) {
                return Err(libc::EINVAL);
            }
            if is_below(from, to) {
                return Err(libc::ENOTEMPTY);
            }
            let _ = source;
            self.core
                .rename(parent, name, newparent, newname, 0)
                .await
                .map_err(errno_of)
        }
        .await;
        self.agree(&got, &want)?;
        if got.is_ok() {
            if let Some(fh) = self.model.rename(from, to) {
                self.orphans.push(fh);
            }
        }
        Ok(())
    }

    async fn unlink(&mut self, path: &str) -> Result<(), TestCaseError> {
        let want = self.model.file(path).map(|_| ());
        let got = match self.parent(path).await {
            Ok((parent, name)) => self.core.unlink(parent, name).await.map_err(errno_of),
            Err(e) => Err(e),
        };
        self.agree(&got, &want)?;
        if got.is_ok() {
            if let Some(fh) = self.model.files.remove(path).and_then(|f| f.handle) {
                self.orphans.push(fh);
            }
        }
        Ok(())
    }

    async fn mkdir(&mut self, path: &str, mode: u32) -> Result<(), TestCaseError> {
        let want = self.model.walk_parent(path).and_then(|()| {
            if self.model.exists(path) {
                Err(libc::EEXIST)
            } else {
                Ok(())
            }
        });
        let got = match self.parent(path).await {
            Ok((parent, name)) => self.core.mkdir(parent, name, mode).await.map_err(errno_of),
            Err(e) => Err(e),
        };
        self.agree(&got, &want)?;
        if got.is_ok() {
            self.model.dirs.insert(path.to_owned(), mode);
        }
        Ok(())
    }

    async fn rmdir(&mut self, path: &str) -> Result<(), TestCaseError> {
        let want = self.model.walk_parent(path).and_then(|()| {
            if self.model.files.contains_key(path) {
                Err(libc::ENOTDIR)
            } else if !self.model.dirs.contains_key(path) {
                Err(libc::ENOENT)
            } else if !self.model.is_empty_dir(path) {
                Err(libc::ENOTEMPTY)
            } else {
                Ok(())
            }
        });
        let got = match self.parent(path).await {
            Ok((parent, name)) => self.core.rmdir(parent, name).await.map_err(errno_of),
            Err(e) => Err(e),
        };
        self.agree(&got, &want)?;
        if got.is_ok() {
            self.model.dirs.remove(path);
        }
        Ok(())
    }

    /// The outcome of walking to `path`, a file or a directory.
    fn walk(&self, path: &str) -> Result<(), i32> {
        self.model.walk_parent(path)?;
        if self.model.exists(path) {
            Ok(())
        } else {
            Err(libc::ENOENT)
        }
    }

    async fn chmod(&mut self, path: &str, mode: u32) -> Result<(), TestCaseError> {
        let want = self.walk(path);
        let got = match self.resolve(path).await {
            Ok(ino) => {
                let change = SetAttr {
                    mode: Some(mode),
                    ..SetAttr::default()
                };
                self.core.setattr(ino, change).await.map_err(errno_of)
            }
            Err(e) => Err(e),
        };
        self.agree(&got, &want)?;
        if got.is_ok() {
            if let Some(dir) = self.model.dirs.get_mut(path) {
                *dir = mode;
            } else {
                let file = self.model.file_mut(path);
                file.live.mode = mode;
                file.attributes_changed();
            }
        }
        Ok(())
    }

    async fn set_mtime(&mut self, path: &str, when: SystemTime) -> Result<(), TestCaseError> {
        let want = self.walk(path);
        let got = match self.resolve(path).await {
            Ok(ino) => {
                let change = SetAttr {
                    atime: Some(when),
                    mtime: Some(when),
                    ..SetAttr::default()
                };
                self.core.setattr(ino, change).await.map_err(errno_of)
            }
            Err(e) => Err(e),
        };
        self.agree(&got, &want)?;
        // Directories' times are not compared: only files' are part of the model.
        if got.is_ok() && self.model.files.contains_key(path) {
            let file = self.model.file_mut(path);
            file.live.mtime = when;
            file.attributes_changed();
        }
        Ok(())
    }

    async fn sync(&mut self) -> Result<(), TestCaseError> {
        let report = self.core.sync(None, |_, _| {}).await;
        if !report.failed.is_empty() {
            return Err(self.fail(format!("sync failed: {:?}", report.failed)));
        }
        for file in self.model.files.values_mut() {
            file.save();
        }
        Ok(())
    }

    /// Closes every handle the test holds, as the kernel does before an unmount.
    async fn close_all(&mut self) -> Result<(), TestCaseError> {
        let mut handles = std::mem::take(&mut self.orphans);
        for file in self.model.files.values_mut() {
            if let Some(fh) = file.handle.take() {
                handles.push(fh);
                file.save();
            }
        }
        for fh in handles {
            let flushed = self.core.flush(fh).await;
            let released = self.core.release(fh).await;
            if let Err(e) = flushed.and(released) {
                return Err(self.fail(format!("closing handle {fh} at unmount: {e}")));
            }
        }
        Ok(())
    }

    async fn remount(&mut self, fresh_cache: bool) -> Result<(), TestCaseError> {
        self.close_all().await?;
        unmount(&self.core).await;
        if fresh_cache {
            self.cache = CacheDir::new();
            for mode in self.model.dirs.values_mut() {
                *mode = 0o755;
            }
        }
        self.core = self.cache.mount(&self.remote, self.setup.options());
        let expected = self.model.expected();
        self.check_tree(&expected).await?;
        Ok(())
    }

    async fn crash(&mut self) -> Result<(), TestCaseError> {
        let next = self.cache.mount(&self.remote, self.setup.options());
        self.crashed.push(std::mem::replace(&mut self.core, next));
        self.orphans.clear();
        // The tree as the new mount shows it before the journal is resumed (pending files
        // from their staged bytes), then once the journal is resumed, as the watcher does at
        // once. No crash here falls between an upload and its metadata edit (see `settle`):
        // that case is
        // `fs_found_cases::a_file_uploaded_but_not_given_its_metadata_when_the_process_died_shows_as_closed`.
        // And the walk looks every file up before the journal is resumed; a new version the
        // journal uploads before anything looks it up is
        // `fs_found_cases::a_new_version_uploaded_from_the_journal_before_it_is_looked_up_is_what_the_mount_shows`.
        let expected = self.model.expected_after_crash();
        let shown = self.check_tree(&expected).await?;
        self.done.push("(the journal resumed)".into());
        let report = self.core.sync(None, |_, _| {}).await;
        if !report.failed.is_empty() {
            return Err(self.fail(format!("the journal's uploads failed: {:?}", report.failed)));
        }
        let expected = self.model.expected_after_crash();
        let resumed = self.check_tree(&expected).await?;
        if resumed != shown {
            return Err(self.fail(format!(
                "resuming the journal changed the tree from {shown:?} to {resumed:?}"
            )));
        }
        // From here on, the model is what the crash left.
        for (path, file) in &mut self.model.files {
            if let Some(Shown::File { mode, mtime, .. }) = shown.get(path) {
                file.live = Version {
                    bytes: file.saved.clone(),
                    mode: *mode,
                    mtime: *mtime,
                };
                file.handle = None;
                file.save();
            }
        }
        Ok(())
    }

    /// Everything the core shows, walked with `readdir`, `lookup`, `getattr` and reads.
    async fn tree(&self) -> Result<BTreeMap<String, Shown>, String> {
        let mut out = BTreeMap::new();
        let mut work = vec![(String::new(), ROOT_INO)];
        while let Some((dir, ino)) = work.pop() {
            let fh = self
                .core
                .opendir(ino)
                .map_err(|e| format!("opendir {dir}: {e}"))?;
            let entries = self.core.readdir(ino, fh, 0).await;
            self.core.releasedir(fh).map_err(|e| e.to_string())?;
            let entries = entries.map_err(|e| format!("readdir {dir}: {e}"))?;
            for entry in entries
                .into_iter()
                .filter(|e| e.name != "." && e.name != "..")
            {
                let path = if dir.is_empty() {
                    entry.name.clone()
                } else {
                    format!("{dir}/{}", entry.name)
                };
                let found = self
                    .core
                    .lookup(ino, &entry.name)
                    .await
                    .map_err(|e| format!("lookup {path}: {e}"))?;
                let attr = self
                    .core
                    .getattr(found.ino)
                    .await
                    .map_err(|e| format!("getattr {path}: {e}"))?;
                let shown = match attr.kind {
                    Kind::Dir => {
                        work.push((path.clone(), found.ino));
                        Shown::Dir(u32::from(attr.perm))
                    }
                    Kind::File => Shown::File {
                        bytes: read_all(&self.core, found.ino).await,
                        size: attr.size,
                        mode: u32::from(attr.perm),
                        mtime: attr.mtime,
                    },
                    Kind::Symlink => return Err(format!("{path} is a symbolic link")),
                };
                if out.insert(path.clone(), shown).is_some() {
                    return Err(format!("{path} is listed twice"));
                }
            }
        }
        Ok(out)
    }

    /// Fails unless the whole tree is `expected`; returns what it shows.
    async fn check_tree(
        &self,
        expected: &BTreeMap<String, Expected>,
    ) -> Result<BTreeMap<String, Shown>, TestCaseError> {
        let shown = self.tree().await.map_err(|e| self.fail(e))?;
        let names: Vec<&String> = shown.keys().collect();
        let wanted: Vec<&String> = expected.keys().collect();
        if names != wanted {
            return Err(self.fail(format!("the tree shows {names:?}, not {wanted:?}")));
        }
        for (path, want) in expected {
            let ok = match (&shown[path], want) {
                (Shown::Dir(mode), Expected::Dir(want)) => mode == want,
                (
                    Shown::File {
                        bytes,
                        size,
                        mode,
                        mtime,
                    },
                    Expected::File {
                        bytes: want,
                        modes,
                        mtimes,
                    },
                ) => {
                    bytes == want
                        && *size == want.len() as u64
                        && modes.contains(mode)
                        && mtimes.contains(mtime)
                }
                _ => false,
            };
            if !ok {
                return Err(self.fail(format!("{path} shows {:?}, not {want:?}", shown[path])));
            }
        }
        Ok(shown)
    }

    /// The end of a case: the tree is the model's, and still is after a clean unmount and a
    /// mount with a fresh cache, which sees only what the server has.
    async fn finish(&mut self) -> Result<(), TestCaseError> {
        self.done.push("(the end)".into());
        let expected = self.model.expected();
        self.check_tree(&expected).await?;
        self.done.push("(remount with a fresh cache)".into());
        self.remount(true).await
    }
}

/// Cases to run: `PROPTEST_CASES`, else enough to be meaningful in well under a minute.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 128;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the operations, remounts and crashes, the core answers and shows what the
    /// model does.
    #[test]
    fn the_core_behaves_like_the_model_through_remounts_and_crashes(
        setup in setup(),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut world = World::new(setup);
            for op in start().iter().chain(&ops) {
                world.step(op).await?;
            }
            world.finish().await?;
            drop(std::mem::take(&mut world.crashed));
            Ok::<(), TestCaseError>(())
        })?;
    }
}
