//! `Core`: the components of the filesystem (see the module `fs` for what each holds and the
//! order their locks are taken in), how it is built over a remote and its stores, and the types
//! its operations return.
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::ahead::Ahead;
use super::attr::{Attr, Kind, Owner};
use super::connectivity::Connectivity;
use super::error::FsError;
use super::local_times::LocalTimes;
use super::namespace::inode::Ino;
use super::namespace::Namespace;
use super::read::Reads;
use super::write::writeback::WriteBackOptions;
use super::write::Writes;
use crate::cache::{BlockCache, BlockCacheConfig, CacheError, MetaStore};
use crate::content::{Content, ContentConfig};
use crate::remote::{Limits, Remote};
use crate::staging::{Staging, StagingError};
use crate::sync::Flights;
use crate::sync::Mutex;

/// How long a folder listing is trusted when no other value is given.
pub const DEFAULT_DIR_TTL: Duration = Duration::from_secs(30);

/// How the core presents the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsOptions {
    /// Owner of every item.
    pub owner: Owner,
    /// How long a folder listing (and the names and attributes in it) is trusted.
    pub dir_ttl: Duration,
    /// How uploads are scheduled.
    pub write_back: WriteBackOptions,
}

impl FsOptions {
    /// Items owned by `owner`, listings trusted for `DEFAULT_DIR_TTL`, `close` waiting for the
    /// upload.
    pub fn new(owner: Owner) -> Self {
        Self {
            owner,
            dir_ttl: DEFAULT_DIR_TTL,
            write_back: WriteBackOptions::default(),
        }
    }
}

/// Whether working out a file's attributes may wait for its upload date (`file/info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dates {
    /// Wait: someone will look at the times (`stat`).
    Wait,
    /// Use the date if known, else hand out provisional attributes (lookups, `readdirplus`).
    IfKnown,
}

/// One directory entry as `readdir` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's inode.
    pub ino: Ino,
    /// The offset of the entry after this one (what the kernel passes to continue).
    pub next_offset: u64,
    /// Directory or file.
    pub kind: Kind,
    /// The shown name.
    pub name: String,
}

/// One directory entry with its attributes, as `readdirplus` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntryPlus {
    /// The entry.
    pub entry: DirEntry,
    /// Its attributes.
    pub attr: Attr,
}

/// The result of opening a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The handle to pass to `read` and `release`.
    pub fh: u64,
    /// Whether the kernel may keep cached pages from earlier opens: true while the file's
    /// content is the one under an unchanged server id.
    pub keep_cache: bool,
}

/// What `statfs` reports, in `STATFS_BLOCK` units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    /// Total blocks: the package's storage limit.
    pub blocks: u64,
    /// Free blocks: the limit less the size of every file this mount has seen.
    pub bfree: u64,
    /// Free blocks for unprivileged users (the same).
    pub bavail: u64,
    /// Inodes in all: those in use and the free ones, so that `df -i` shows the use right.
    pub files: u64,
    /// Inodes free (no real limit).
    pub ffree: u64,
    /// Block size.
    pub bsize: u32,
    /// Longest name.
    pub namelen: u32,
}

/// Why a core could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The caches could not be opened.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The staging area could not be opened.
    #[error(transparent)]
    Staging(#[from] StagingError),
}

/// The filesystem over one remote account.
pub struct Core<R: Remote> {
    pub(super) remote: Arc<R>,
    pub(super) options: FsOptions,
    pub(super) meta: Arc<MetaStore>,
    /// File content: the block caches and a reader per open handle.
    pub(super) reads: Reads<R>,
    /// The tree of names and inodes, the listings kept, and the open handles.
    pub(super) ns: Namespace,
    /// Files being written and their uploads.
    pub(super) writes: Writes,
    /// One `file/info` per file at a time, for upload dates (see `stat`).
    pub(super) info_flights: Arc<Flights<u64, Option<i64>, FsError>>,
    /// The package's limits and when they were fetched (see `stat`); a leaf lock.
    pub(super) limits: Mutex<Option<(Instant, Limits)>>,
    /// One `account/package` fetch at a time.
    pub(super) limits_flight: Arc<Flights<(), Limits, FsError>>,
    pub(super) started: SystemTime,
    /// Whether the server answers.
    pub(super) link: Connectivity,
    /// Directories whose listing, shown from disk, should be fetched again soon.
    pub(super) refresh: tokio::sync::mpsc::UnboundedSender<Ino>,
    /// The receiving end of `refresh`, taken by the watcher.
    pub(super) refresh_queue: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Ino>>>,
    /// Whether the mount has said that the server does not keep `fileType`.
    pub(super) said_file_type_lost: AtomicBool,
    /// Work done ahead of the user (see `ahead`).
    pub(super) ahead: Ahead,
    /// Status changes, directories' changes of entries and access times set, which the server
    /// does not keep (see `local_times`).
    pub(super) times: LocalTimes,
}

impl<R: Remote> Core<R> {
    /// A core over `remote` keeping metadata and content in memory only (default bounds), and
    /// files being written in a temporary staging area.
    pub fn new(remote: Arc<R>, options: FsOptions) -> Result<Self, SetupError> {
        let meta = Arc::new(MetaStore::open(None)?);
        let cache = Arc::new(BlockCache::open(BlockCacheConfig::default())?);
        let content = Arc::new(Content::new(
            Arc::clone(&remote),
            cache,
            ContentConfig::default(),
        ));
        let staging = Staging::temporary()?;
        Ok(Self::with_stores(remote, options, meta, content, staging))
    }

    /// A core over `remote` keeping upload times and local attributes in `meta`, reading file
    /// content through `content` (its caches may live on disk and outlast the mount) and
    /// keeping files being written, and the journal of pending uploads, in `staging`.
    pub fn with_stores(
        remote: Arc<R>,
        options: FsOptions,
        meta: Arc<MetaStore>,
        content: Arc<Content<R>>,
        staging: Staging,
    ) -> Self {
        let (refresh, refresh_queue) = tokio::sync::mpsc::unbounded_channel();
        Self {
            remote,
            meta,
            reads: Reads::new(content),
            ns: Namespace::default(),
            writes: Writes::new(staging, options.write_back),
            options,
            info_flights: Arc::default(),
            limits: Mutex::new(None),
            limits_flight: Arc::default(),
            started: SystemTime::now(),
            link: Connectivity::default(),
            refresh,
            refresh_queue: Mutex::new(Some(refresh_queue)),
            said_file_type_lost: AtomicBool::new(false),
            ahead: Ahead::new(),
            times: LocalTimes::default(),
        }
    }

    /// Whether the server answered the last time it was asked; while it does not, the mount
    /// serves what is cached, read-only.
    pub fn is_online(&self) -> bool {
        self.link.is_online()
    }

    /// Why the server could not be reached the last time it could not (kept after recovery).
    pub fn last_error(&self) -> Option<String> {
        self.link.last_error()
    }

    /// Since when the server has been unreachable; `None` while online.
    pub fn offline_since(&self) -> Option<SystemTime> {
        self.link.offline_since()
    }

    /// Starts offline (the server could not be reached at mount time, for `why`): the
    /// watcher brings the mount online once the server answers.
    pub fn start_offline(&self, why: &str) {
        self.link.lost(why);
    }

    /// Refuses a change while the server is unreachable.
    pub(super) fn writable(&self) -> Result<(), FsError> {
        if self.link.is_online() {
            Ok(())
        } else {
            Err(FsError::Offline)
        }
    }

    /// The options the core was made with.
    pub fn options(&self) -> &FsOptions {
        &self.options
    }

    /// Hides every item whose server name is `name` from the next listing on.
    pub fn hide_name(&self, name: &str) {
        self.ns.lock_hidden().names.insert(name.to_owned());
    }

    /// Hides the folder `id` from the next listing on.
    pub fn hide_folder(&self, id: u64) {
        self.ns.lock_hidden().folders.insert(id);
    }

    /// How many inodes the core holds (the root included).
    pub fn live_inodes(&self) -> usize {
        self.ns.lock_tree().inodes.len()
    }
}
