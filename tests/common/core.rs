//! Helpers of the core tests: a `Core` over an in-memory account, with its stores in memory or
//! in a cache directory that outlives it — so that a test can mount again over the same
//! directory (after an unmount or a crash) or start over with a fresh one — and the calls a
//! test makes through the core (write a file, read it back, list a directory) or past it (what
//! the server holds).
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use yetifs::cache::{BlockCache, BlockCacheConfig, MetaStore};
use yetifs::content::{Content, ContentConfig};
use yetifs::fs::{Attr, Core, FsError, FsOptions, Ino, Owner, WriteBackOptions, ROOT_INO};
use yetifs::remote::memory::MemoryRemote;
use yetifs::remote::{FileEntry, Remote};
use yetifs::staging::Staging;

/// The owner every core of the tests shows.
pub const OWNER: Owner = Owner {
    uid: 1000,
    gid: 1000,
};

/// Items owned by [`OWNER`], listings trusted for `ttl`, `close` waiting for the upload.
pub fn options(ttl: Duration) -> FsOptions {
    let mut options = FsOptions::new(OWNER);
    options.dir_ttl = ttl;
    options
}

/// [`options`] with uploads scheduled by `write_back`.
pub fn options_with(ttl: Duration, write_back: WriteBackOptions) -> FsOptions {
    let mut options = options(ttl);
    options.write_back = write_back;
    options
}

/// Uploads at `close` (no write-back), as a mount without `--write-back`.
pub fn closing_uploads() -> WriteBackOptions {
    WriteBackOptions::default()
}

/// Uploads `delay` after the last change, as a mount with `--write-back=DELAY`.
pub fn delayed(delay: Duration) -> WriteBackOptions {
    WriteBackOptions {
        delay: Some(delay),
        ..WriteBackOptions::default()
    }
}

/// A core over `remote` keeping its metadata and content in memory and files being written in
/// a temporary staging area: a mount with a cache of its own, as on another machine.
pub fn memory_core(remote: &Arc<MemoryRemote>, options: FsOptions) -> Core<MemoryRemote> {
    Core::new(Arc::clone(remote), options).unwrap()
}

/// A core keeping its metadata and staging area (with the journal) in `dir`, as a mount does
/// in its cache directory; blocks are cached in memory only.
pub fn core_in(remote: &Arc<MemoryRemote>, dir: &Path, options: FsOptions) -> Core<MemoryRemote> {
    let meta = Arc::new(MetaStore::open(Some(dir)).unwrap());
    let cache = Arc::new(BlockCache::open(BlockCacheConfig::default()).unwrap());
    let content = Arc::new(Content::new(
        Arc::clone(remote),
        cache,
        ContentConfig::default(),
    ));
    let staging = Staging::open(&dir.join("staging")).unwrap();
    Core::with_stores(Arc::clone(remote), options, meta, content, staging)
}

/// A mount's cache directory, kept across the cores opened over it one after the other (the
/// successive mounts of one machine) until it is replaced by a fresh one.
pub struct CacheDir(tempfile::TempDir);

impl CacheDir {
    /// A new, empty cache directory.
    pub fn new() -> CacheDir {
        CacheDir(tempfile::tempdir().unwrap())
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// A core over `remote` with its stores in this directory (see [`core_in`]).
    pub fn mount(&self, remote: &Arc<MemoryRemote>, options: FsOptions) -> Core<MemoryRemote> {
        core_in(remote, self.path(), options)
    }
}

impl Default for CacheDir {
    fn default() -> Self {
        CacheDir::new()
    }
}

/// Ends a mount as `umount` does once the kernel has released every handle: waits for every
/// pending upload, and fails the test if one fails.
pub async fn unmount(core: &Core<MemoryRemote>) {
    let report = core.sync(None, |_, _| {}).await;
    assert!(
        report.failed.is_empty(),
        "uploads failed at unmount: {:?}",
        report.failed
    );
}

/// Ends a mount as `kill -9` does: no handle is released, nothing is waited for, and nothing
/// of the core runs again (not even its destructors).
pub fn crash<T>(core: T) {
    std::mem::forget(core);
}

/// The errno of a result that must be an error.
pub fn errno<T: std::fmt::Debug>(result: Result<T, FsError>) -> i32 {
    result.unwrap_err().errno()
}

/// The names `readdir` shows in `dir`, without `.` and `..`.
pub async fn names(core: &Core<MemoryRemote>, dir: Ino) -> Vec<String> {
    let fh = core.opendir(dir).unwrap();
    let entries = core.readdir(dir, fh, 0).await.unwrap();
    core.releasedir(fh).unwrap();
    entries
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n != "." && n != "..")
        .collect()
}

/// The whole content of file `ino`, read through a handle of its own.
pub async fn read_all(core: &Core<MemoryRemote>, ino: Ino) -> Vec<u8> {
    let opened = core.open(ino, libc::O_RDONLY).await.unwrap();
    let data = core.read(opened.fh, 0, u32::MAX).await.unwrap();
    core.release(opened.fh).await.unwrap();
    data.to_vec()
}

/// The inode of `name` at the root.
pub async fn lookup(core: &Core<MemoryRemote>, name: &str) -> Ino {
    core.lookup(ROOT_INO, name).await.unwrap().ino
}

/// Creates `name` in `dir` with `mode` and `content`, closes it and waits for the upload's
/// last steps (name fix, metadata), which follow the close: for a file at the root, its own
/// only; elsewhere, everything pending. Returns its attributes as `create` gave them.
pub async fn write_file(
    core: &Core<MemoryRemote>,
    dir: Ino,
    name: &str,
    mode: u32,
    content: &[u8],
) -> Attr {
    let attr = close_new(core, dir, name, mode, content).await;
    let own = (dir == ROOT_INO).then_some(name);
    core.sync(own, |_, _| {}).await;
    attr
}

/// Creates `name` in `dir` with `mode` and `content` and closes it (`flush`, then `release`,
/// as `close(2)` does), without waiting for the upload's last steps (the watcher, when it
/// runs, does them a second later). Returns its attributes as `create` gave them.
pub async fn close_new(
    core: &Core<MemoryRemote>,
    dir: Ino,
    name: &str,
    mode: u32,
    content: &[u8],
) -> Attr {
    let (attr, opened) = core
        .create(dir, name, mode, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    if !content.is_empty() {
        core.write(opened.fh, 0, content).await.unwrap();
    }
    core.flush(opened.fh).await.unwrap();
    core.release(opened.fh).await.unwrap();
    attr
}

/// The active (not trashed) files named `name` in `folder` on the server.
pub async fn server_entries(
    remote: &MemoryRemote,
    folder: Option<u64>,
    name: &str,
) -> Vec<FileEntry> {
    let listing = remote.list_folder(folder).await.unwrap();
    listing
        .files
        .into_iter()
        .filter(|f| !f.trashed && f.name == name)
        .collect()
}

/// The active file `name` at the root of the server; panics if there is none.
pub async fn server_entry(remote: &MemoryRemote, name: &str) -> FileEntry {
    server_entries(remote, None, name)
        .await
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{name} is not on the server"))
}

/// The content of server file `file`.
pub async fn server_content(remote: &MemoryRemote, file: &FileEntry) -> Vec<u8> {
    let mut stream = remote.read(file.id, file.size, 0..file.size).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// The content of every active file named `name` in `folder` on the server.
pub async fn server_files(remote: &MemoryRemote, folder: Option<u64>, name: &str) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    for file in server_entries(remote, folder, name).await {
        found.push(server_content(remote, &file).await);
    }
    found
}

/// The content of the active file `name` in `folder` on the server, if there is one; panics if
/// there are more.
pub async fn server_file(
    remote: &MemoryRemote,
    folder: Option<u64>,
    name: &str,
) -> Option<Vec<u8>> {
    let mut found = server_files(remote, folder, name).await;
    assert!(
        found.len() <= 1,
        "{name} is on the server {} times",
        found.len()
    );
    found.pop()
}

/// The `fileType` of the active file `name` in `folder` on the server (empty if none).
pub async fn server_type(remote: &MemoryRemote, folder: Option<u64>, name: &str) -> String {
    server_entries(remote, folder, name)
        .await
        .into_iter()
        .next()
        .map(|f| f.file_type)
        .unwrap_or_default()
}
