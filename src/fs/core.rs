//! The filesystem core: every operation the kernel can ask for, as an async method over a
//! `Remote`, with the inode table, the directory cache and the open handles behind it. Free of
//! fuser types so that it can be driven directly by tests.
//!
//! Locking: one mutex holds the inode table, the listings and the handles; it is held only for
//! short, synchronous work, never across a server call nor a write to the metadata store (an
//! edit of a listing returns what to mark out of date on disk, done once the lock is released).
//! Server calls are single-flight per folder (listings) and per file (`file/info`).
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::ahead::Ahead;
use super::attr::{self, Attr, Kind, Owner};
use super::connectivity::{is_unreachable, Connectivity};
use super::dir_cache::{Child, Listed, SingleFlight};
use super::error::FsError;
use super::files::Staged;
use super::handles::{Handle, Handles};
use super::inode::{Ino, InodeTable, LocalFile, NodeData};
use super::local_times::LocalTimes;
use super::names::{self, ItemKind, NameRequest};
use super::namespace::within_name_max;
use super::writeback::{WriteBack, WriteBackOptions};
use super::xattr;
use crate::cache::meta::epoch_secs;
use crate::cache::{BlockCache, BlockCacheConfig, CacheError, ItemKey, MetaStore, Overlay};
use crate::content::{Content, ContentConfig, Reader};
use crate::remote::{Limits, Listing, Remote};
use crate::staging::{Entry, Staging, StagingError};

/// How long a folder listing is trusted when no other value is given.
pub const DEFAULT_DIR_TTL: Duration = Duration::from_secs(30);
/// Entries one `readdir` or `readdirplus` answer carries at most. The kernel takes a page of
/// them per call (about 25 with attributes); the rest would be built, and their attributes
/// worked out, again on every call of a large directory.
const READDIR_BATCH: usize = 256;
/// What `statfs` reports as the total size when the package sets no storage limit.
const UNLIMITED_STORAGE: u64 = 1 << 50;
/// The free inodes `statfs` reports: the server sets no limit on the number of files.
const FREE_INODES: u64 = u32::MAX as u64;
/// The block size `statfs` reports.
const STATFS_BLOCK: u64 = 4096;

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

/// Items the write path has made invisible: on 4.x servers a deleted folder comes back at the
/// root looking alive, so it is renamed to a reserved name before deletion and remembered.
#[derive(Debug, Default)]
pub(super) struct Hidden {
    pub(super) names: HashSet<String>,
    pub(super) folders: HashSet<u64>,
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

#[derive(Default)]
pub(super) struct State {
    pub(super) inodes: InodeTable,
    pub(super) listings: HashMap<Ino, Arc<Listed>>,
    /// Local edits of each directory's listing so far: a listing fetched while one was made
    /// may lack it, so it is not trusted.
    pub(super) edits: HashMap<Ino, u64>,
    pub(super) handles: Handles,
}

/// A listing `State::relist` edited, whose copy kept on disk for later mounts is now out of
/// date. Marking it so is a write to SQLite, never made under the state lock: the caller hands
/// this to `Core::expire_kept` once the lock is released.
pub(super) struct Relisted {
    /// The folder listed (`None`: the root).
    folder: Option<u64>,
}

impl State {
    /// Changes the cached listing of `dir`, if there is one: takes out the entries of `remove`
    /// and any entry named as `add`, then puts in `add`. Entries taken out are dropped from the
    /// inode table if nothing else refers to them. Returns the listing to mark out of date on
    /// disk when there was one to edit.
    #[must_use = "the kept listing is marked out of date with `Core::expire_kept`"]
    pub(super) fn relist(
        &mut self,
        dir: Ino,
        remove: &[Ino],
        add: Option<Child>,
    ) -> Option<Relisted> {
        *self.edits.entry(dir).or_default() += 1;
        let listed = self.listings.get(&dir)?;
        let (edited, gone) = listed.edited(remove, add);
        self.listings.insert(dir, Arc::new(edited));
        let folder = match self.inodes.get(dir).map(|node| &node.data) {
            Some(NodeData::Folder(f)) => Some(f.id),
            _ => None,
        };
        for ino in gone {
            self.drop_if_unreferenced(ino);
        }
        Some(Relisted { folder })
    }

    /// Drops `ino` if nothing refers to it: no lookups, no handles, and not in its parent's
    /// cached listing. Dropping a directory drops its listing and, in turn, the unreferenced
    /// entries of it.
    pub(super) fn drop_if_unreferenced(&mut self, ino: Ino) {
        let mut work = vec![ino];
        while let Some(ino) = work.pop() {
            let Some(node) = self.inodes.get(ino) else {
                continue;
            };
            let listed = self
                .listings
                .get(&node.parent)
                .is_some_and(|l| l.contains(ino));
            if listed || !self.inodes.is_unreferenced(ino) {
                continue;
            }
            self.inodes.remove(ino);
            if let Some(listing) = self.listings.remove(&ino) {
                work.extend(listing.children().iter().map(|c| c.ino));
            }
        }
    }
}

/// The file id an open handle reads, and its reader.
pub(super) type HandleReader<R> = (u64, Arc<Reader<R>>);

/// The filesystem over one remote account.
pub struct Core<R: Remote> {
    pub(super) remote: Arc<R>,
    pub(super) options: FsOptions,
    pub(super) meta: Arc<MetaStore>,
    pub(super) content: Arc<Content<R>>,
    /// The reader of each open file handle, with the file id it reads.
    pub(super) readers: Mutex<HashMap<u64, HandleReader<R>>>,
    pub(super) state: Mutex<State>,
    pub(super) hidden: Mutex<Hidden>,
    pub(super) staging: Staging,
    /// Files with local content (being written, or waiting for their upload), by inode.
    pub(super) staged: Mutex<HashMap<Ino, Arc<Staged>>>,
    /// Staged files of journal rows no inode holds yet, by key (see `upload`).
    pub(super) detached: Mutex<HashMap<u64, Arc<Staged>>>,
    /// Every upload's schedule.
    pub(super) writeback: WriteBack,
    /// Uploads done whose last steps wait (see `upload`): the server's entry of each, by key.
    pub(super) settling: Mutex<HashMap<u64, crate::remote::FileEntry>>,
    listing_flights: SingleFlight<Ino>,
    info_flights: SingleFlight<u64>,
    limits: Mutex<Option<(Instant, Limits)>>,
    limits_flight: SingleFlight<()>,
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

/// Locks a mutex, carrying on after a panic elsewhere (the data stays usable).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let writeback = WriteBack::new(options.write_back);
        Self {
            remote,
            options,
            meta,
            content,
            readers: Mutex::new(HashMap::new()),
            state: Mutex::new(State::default()),
            hidden: Mutex::new(Hidden::default()),
            staging,
            staged: Mutex::new(HashMap::new()),
            detached: Mutex::new(HashMap::new()),
            writeback,
            settling: Mutex::new(HashMap::new()),
            listing_flights: SingleFlight::default(),
            info_flights: SingleFlight::default(),
            limits: Mutex::new(None),
            limits_flight: SingleFlight::default(),
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
        lock(&self.hidden).names.insert(name.to_owned());
    }

    /// Hides the folder `id` from the next listing on.
    pub fn hide_folder(&self, id: u64) {
        lock(&self.hidden).folders.insert(id);
    }

    /// How many inodes the core holds (the root included).
    pub fn live_inodes(&self) -> usize {
        lock(&self.state).inodes.len()
    }

    pub(super) fn node_data(&self, ino: Ino) -> Result<NodeData, FsError> {
        lock(&self.state)
            .inodes
            .get(ino)
            .map(|node| node.data.clone())
            .ok_or(FsError::NotFound)
    }

    /// Marks the listings kept on disk of `relisted` out of date, once the state lock under
    /// which they were edited is released: a later mount must not show them as current.
    pub(super) async fn expire_kept(&self, relisted: impl IntoIterator<Item = Relisted>) {
        for Relisted { folder } in relisted {
            if let Err(e) = self.meta.expire_listing(folder).await {
                log::warn!("cannot mark the kept listing of folder {folder:?} out of date: {e}");
            }
        }
    }

    /// The upload time of file `id`, from the metadata store or else one `file/info`.
    pub(super) async fn uploaded(&self, id: u64) -> Result<Option<i64>, FsError> {
        self.date_needed(id);
        let cached = || self.meta.uploaded(id).map(Some);
        let fetch = async {
            if !self.link.is_online() {
                return Ok(None);
            }
            let details = self.remote.file_info(id).await;
            self.link.observe(&details);
            let details = match details {
                Err(e) if is_unreachable(&e) => return Ok(None),
                other => other?,
            };
            if let Some(secs) = details.uploaded {
                if let Err(e) = self.meta.set_uploaded(id, secs).await {
                    log::warn!("cannot keep the upload time of file {id}: {e}");
                }
            }
            Ok(details.uploaded)
        };
        self.info_flights.run(id, cached, fetch).await
    }

    /// The times and mode set locally on a server item.
    pub(super) fn stored_overlay(&self, data: &NodeData) -> Overlay {
        let key = match data {
            NodeData::Root => ItemKey::Folder(0),
            NodeData::Folder(f) => ItemKey::Folder(f.id),
            NodeData::File(f) => ItemKey::File(f.id),
            NodeData::Local(_) => return Overlay::default(),
        };
        self.meta.overlay(key).unwrap_or_default()
    }

    /// The attributes of `ino`, standing for `data`, as `stat` shows them. A server file whose
    /// upload date is not known yet waits for it with `Dates::Wait`; with `Dates::IfKnown` it
    /// gets provisional attributes instead (see `Attr::provisional`).
    pub(super) async fn attr_of_data(
        &self,
        ino: Ino,
        data: &NodeData,
        dates: Dates,
    ) -> Result<Attr, FsError> {
        let attr = self.stored_attr(ino, data, dates).await?;
        Ok(self.shown_attr(attr))
    }

    /// `attr` with what only this mount knows: the times of `local_times`, and a link count of
    /// 0 once the item was removed (an open handle still reaches it).
    pub(super) fn shown_attr(&self, attr: Attr) -> Attr {
        let mut attr = self.times.apply(attr);
        if lock(&self.state).inodes.is_unlinked(attr.ino) {
            attr.nlink = 0;
        }
        attr
    }

    /// The attributes of `ino` from what the server, the staged copy, the journal and the
    /// metadata store say (see `attr_of_data`).
    async fn stored_attr(&self, ino: Ino, data: &NodeData, dates: Dates) -> Result<Attr, FsError> {
        let owner = self.options.owner;
        if let Some(staged) = self.staged_of(ino) {
            if !data.is_dir() {
                return Ok(staged.attr(ino, owner));
            }
        }
        let attr = match data {
            NodeData::Root => attr::dir_attr(ino, None, self.started, owner),
            NodeData::Folder(folder) => attr::dir_attr(ino, Some(folder), self.started, owner),
            NodeData::File(file) => {
                let (kind, carried) = self.file_carried(file);
                let mut provisional = false;
                let uploaded = match (carried.mtime, dates) {
                    (Some(_), _) => None,
                    (None, Dates::Wait) => self.demanded_date(ino, file.id).await?,
                    (None, Dates::IfKnown) => {
                        let known = self.meta.uploaded(file.id);
                        provisional = known.is_none();
                        known.or_else(|| Some(epoch_secs(self.started)))
                    }
                };
                let attr = attr::file_attr(ino, file, kind, uploaded, owner).with_overlay(&carried);
                return Ok(Attr {
                    provisional,
                    ..attr
                });
            }
            NodeData::Local(local) => return Ok(self.local_attr(ino, local)),
        };
        Ok(attr.with_overlay(&self.stored_overlay(data)))
    }

    /// The attributes of a local file nothing is staged for: from its journal entry.
    fn local_attr(&self, ino: Ino, local: &LocalFile) -> Attr {
        let entry = self.staging.journal().get(local.key).unwrap_or_else(|e| {
            log::warn!("cannot read the journal entry of {}: {e}", local.name);
            None
        });
        let time = entry.as_ref().and_then(|e| e.mtime).unwrap_or(self.started);
        let overlay = Overlay {
            mtime: Some(time),
            atime: Some(time),
            ..entry.as_ref().map(Entry::overlay).unwrap_or_default()
        };
        attr::local_file_attr(ino, local.size, local.symlink, self.options.owner)
            .with_overlay(&overlay)
    }

    /// The folder id directory `dir` stands for (`None`: the root).
    pub(super) fn folder_of(&self, dir: Ino) -> Result<Option<u64>, FsError> {
        match self.node_data(dir)? {
            NodeData::Root => Ok(None),
            NodeData::Folder(f) => Ok(Some(f.id)),
            NodeData::File(_) | NodeData::Local(_) => Err(FsError::NotDir),
        }
    }

    /// The shown content of directory `dir`, from the cache while fresh, else fetched once.
    pub(super) async fn children(&self, dir: Ino) -> Result<Arc<Listed>, FsError> {
        self.children_within(dir, self.options.dir_ttl).await
    }

    /// The shown content of directory `dir`, from the cache if younger than `ttl`.
    pub(super) async fn children_within(
        &self,
        dir: Ino,
        ttl: Duration,
    ) -> Result<Arc<Listed>, FsError> {
        let folder = self.folder_of(dir)?;
        let cached = || {
            lock(&self.state)
                .listings
                .get(&dir)
                .filter(|l| l.is_fresh(ttl))
                .cloned()
        };
        let fetch = async {
            if let Some(listed) = self.restore(dir, folder, ttl) {
                return Ok(listed);
            }
            if !self.link.is_online() {
                return self.stale(dir, folder);
            }
            let edits = lock(&self.state).edits.get(&dir).copied();
            let fetched = self.remote.list_folder(folder).await;
            self.link.observe(&fetched);
            match fetched {
                Ok(listing) => {
                    let saved = self
                        .meta
                        .save_listing(folder, listing.clone(), SystemTime::now())
                        .await;
                    if let Err(e) = saved {
                        log::warn!("cannot keep the listing of folder {folder:?}: {e}");
                    }
                    let listed = self.install(dir, folder, listing, Duration::ZERO);
                    // An edit made while the listing was on its way (an upload finishing) may
                    // be missing from it: it is shown, but fetched again at the next use.
                    let edited = {
                        let mut state = lock(&self.state);
                        let edited = state.edits.get(&dir).copied() != edits;
                        if edited {
                            state.listings.insert(dir, Arc::new(listed.expired()));
                        }
                        edited
                    };
                    if edited {
                        if let Err(e) = self.meta.expire_listing(folder).await {
                            log::warn!(
                                "cannot mark the listing of folder {folder:?} out of date: {e}"
                            );
                        }
                    }
                    Ok(listed)
                }
                Err(e) if is_unreachable(&e) => self.stale(dir, folder),
                Err(e) => Err(e.into()),
            }
        };
        self.listing_needed(dir);
        let arrived = async {
            let listed = fetch.await;
            if listed.is_ok() {
                self.listing_arrived(dir);
            }
            listed
        };
        self.listing_flights.run(dir, cached, arrived).await
    }

    /// The listing an earlier mount kept for `folder`, shown as `dir` if it is younger than
    /// `ttl` and this mount holds none of its own (one it holds is at least as recent). Past
    /// half its TTL it is shown and fetched again in the background.
    fn restore(&self, dir: Ino, folder: Option<u64>, ttl: Duration) -> Option<Arc<Listed>> {
        if lock(&self.state).listings.contains_key(&dir) {
            return None;
        }
        let (listing, fetched) = self.meta.listing(folder)?;
        let age = SystemTime::now()
            .duration_since(fetched)
            .unwrap_or(Duration::ZERO);
        if age >= ttl {
            return None;
        }
        if age >= ttl / 2 {
            // The watcher may be gone (the mount is ending): then nothing needs refreshing.
            let _ = self.refresh.send(dir);
        }
        Some(self.install(dir, folder, listing, age))
    }

    /// What is known of `dir` however old, for when the server cannot be reached: this
    /// mount's listing, else the one kept on disk.
    fn stale(&self, dir: Ino, folder: Option<u64>) -> Result<Arc<Listed>, FsError> {
        if let Some(listed) = lock(&self.state).listings.get(&dir).cloned() {
            return Ok(listed);
        }
        let (listing, fetched) = self.meta.listing(folder).ok_or(FsError::Unreachable)?;
        let age = SystemTime::now()
            .duration_since(fetched)
            .unwrap_or(Duration::ZERO);
        Ok(self.install(dir, folder, listing, age))
    }

    /// Turns a server listing of `folder`, fetched `age` ago, into shown entries of `dir`,
    /// updating the inode table. What the journal says is pending in the folder wins over the
    /// listing: files only this mount has (empty ones, ones waiting for their first upload) are
    /// added, a file with a new version pending gets that version's staged copy, an upload
    /// whose last steps are pending shows with its name and metadata and hides the file it
    /// replaces.
    /// yetifs's own deleted folders are left out.
    fn install(
        &self,
        dir: Ino,
        folder: Option<u64>,
        listing: Listing,
        age: Duration,
    ) -> Arc<Listed> {
        let rows = self
            .staging
            .journal()
            .in_folder(folder)
            .unwrap_or_else(|e| {
                log::warn!("cannot read the journal: {e}");
                Vec::new()
            });
        let listed_files: HashSet<u64> = listing.files.iter().map(|f| f.id).collect();
        let mut hidden_files = HashSet::new();
        let mut settling: HashMap<u64, Entry> = HashMap::new();
        let mut adopted: HashMap<u64, Entry> = HashMap::new();
        let mut locals = Vec::new();
        for row in rows {
            match (row.replaces, row.uploaded) {
                (replaces, Some(uploaded)) => {
                    hidden_files.extend(replaces);
                    settling.insert(uploaded, row);
                }
                (Some(replaces), None) if listed_files.contains(&replaces) => {
                    adopted.insert(replaces, row);
                }
                _ => locals.push(row),
            }
        }
        let mut items: Vec<NodeData> = {
            let hidden = lock(&self.hidden);
            let folders = listing.folders.into_iter().filter(|f| {
                !f.trashed
                    && !hidden.folders.contains(&f.id)
                    && !hidden.names.contains(&f.name)
                    && !f.name.starts_with(names::RESERVED_PREFIX)
            });
            let files = listing
                .files
                .into_iter()
                .filter(|f| {
                    !f.trashed && !hidden.names.contains(&f.name) && !hidden_files.contains(&f.id)
                })
                .map(|mut f| {
                    // Its last steps give it its name and metadata: it shows them already.
                    if let Some(row) = settling.remove(&f.id) {
                        f.file_type = super::upload::entry_meta(&row).encode();
                        f.name = row.name;
                    }
                    self.presented(f)
                });
            let locals = locals.into_iter().map(|e| LocalFile {
                key: e.key,
                folder: e.folder,
                name: e.name,
                size: e.size,
                symlink: e.symlink,
            });
            folders
                .map(NodeData::Folder)
                .chain(files.map(NodeData::File))
                .chain(locals.map(NodeData::Local))
                .collect()
        };
        let requests: Vec<NameRequest<'_>> = items
            .iter()
            .filter_map(|data| match data {
                NodeData::Folder(f) => Some(NameRequest {
                    kind: ItemKind::Folder,
                    id: f.id,
                    name: &f.name,
                }),
                NodeData::File(f) => Some(NameRequest {
                    kind: ItemKind::File,
                    id: f.id,
                    name: names::link_stem(f).unwrap_or(&f.name),
                }),
                NodeData::Local(l) => Some(NameRequest {
                    kind: ItemKind::File,
                    id: l.key,
                    name: &l.name,
                }),
                NodeData::Root => None,
            })
            .collect();
        let shown = names::assign(&requests);
        let kinds: Vec<Kind> = items.iter().map(|data| self.kind_of(data)).collect();
        let mut state = lock(&self.state);
        let children: Vec<Child> = items
            .drain(..)
            .zip(shown)
            .zip(kinds)
            .map(|((data, name), kind)| {
                let ino = state.inodes.upsert(dir, name.clone(), data);
                Child { name, ino, kind }
            })
            .collect();
        let listed = Arc::new(Listed::aged(children, age));
        let previous = state.listings.insert(dir, Arc::clone(&listed));
        if let Some(previous) = previous {
            for child in previous.children() {
                if !listed.contains(child.ino) {
                    state.drop_if_unreferenced(child.ino);
                }
            }
        }
        let adoptions: Vec<(Ino, Entry)> = listed
            .children()
            .iter()
            .filter_map(|child| match &state.inodes.get(child.ino)?.data {
                NodeData::File(f) => Some((child.ino, adopted.remove(&f.id)?)),
                _ => None,
            })
            .collect();
        drop(state);
        for (ino, row) in adoptions {
            self.adopt(ino, &row);
        }
        listed
    }

    /// Gives file `ino` the staged copy of journal row `row` (a new version waiting for its
    /// upload), unless it has a staged copy already.
    fn adopt(&self, ino: Ino, row: &Entry) {
        if self.staged_of(ino).is_some() {
            return;
        }
        let staged = match lock(&self.detached).remove(&row.key) {
            Some(staged) => staged,
            None => match self.restaged(row) {
                Ok(staged) => Arc::new(staged),
                Err(e) => {
                    log::warn!("cannot reopen the pending version of {}: {e}", row.name);
                    return;
                }
            },
        };
        self.attach(ino, staged);
    }

    /// Resolves `name` in directory `parent`; counts one kernel lookup of the result. A name
    /// longer than any entry may have is `ENAMETOOLONG`, not `ENOENT`.
    pub async fn lookup(&self, parent: Ino, name: &str) -> Result<Attr, FsError> {
        within_name_max(name)?;
        let listed = self.children(parent).await?;
        let child = listed.find(name).ok_or(FsError::NotFound)?;
        let data = self.node_data(child.ino)?;
        let attr = self.attr_of_data(child.ino, &data, Dates::IfKnown).await?;
        let mut state = lock(&self.state);
        if state.inodes.get(child.ino).is_none() {
            return Err(FsError::NotFound);
        }
        state.inodes.add_lookups(child.ino, 1);
        Ok(attr)
    }

    /// Counts kernel lookups the adapter handed out itself (entries of a readdirplus reply).
    pub fn add_lookups(&self, inos: &[Ino]) {
        let mut state = lock(&self.state);
        for &ino in inos {
            state.inodes.add_lookups(ino, 1);
        }
    }

    /// The kernel forgot `n` lookups of `ino`; the inode's data goes once nothing refers to it.
    pub fn forget(&self, ino: Ino, n: u64) {
        let mut state = lock(&self.state);
        state.inodes.forget(ino, n);
        state.drop_if_unreferenced(ino);
    }

    /// The attributes of `ino`.
    pub async fn getattr(&self, ino: Ino) -> Result<Attr, FsError> {
        let data = self.node_data(ino)?;
        self.attr_of_data(ino, &data, Dates::Wait).await
    }

    /// Opens directory `ino` for reading.
    pub fn opendir(&self, ino: Ino) -> Result<u64, FsError> {
        let mut state = lock(&self.state);
        let node = state.inodes.get(ino).ok_or(FsError::NotFound)?;
        if !node.data.is_dir() {
            return Err(FsError::NotDir);
        }
        state.inodes.opened(ino);
        Ok(state.handles.insert(Handle::Dir {
            ino,
            snapshot: None,
        }))
    }

    /// Closes directory handle `fh`.
    pub fn releasedir(&self, fh: u64) -> Result<(), FsError> {
        self.release_handle(fh)
    }

    /// The listing directory handle `fh` reads: taken fresh at offset 0 (or when missing),
    /// kept for the later offsets.
    async fn dir_snapshot(&self, ino: Ino, fh: u64, offset: u64) -> Result<Arc<Listed>, FsError> {
        let kept = match lock(&self.state).handles.get(fh) {
            Some(Handle::Dir {
                ino: open,
                snapshot,
            }) if *open == ino => snapshot.clone(),
            _ => return Err(FsError::BadHandle),
        };
        if let Some(kept) = kept.filter(|_| offset > 0) {
            return Ok(kept);
        }
        let listed = self.children(ino).await?;
        if let Some(Handle::Dir { snapshot, .. }) = lock(&self.state).handles.get_mut(fh) {
            *snapshot = Some(Arc::clone(&listed));
        }
        self.reading_dir(ino);
        Ok(listed)
    }

    /// The entries of directory `ino` from `offset` on, at most `READDIR_BATCH` of them (empty
    /// only at the end): `.` and `..` first, then the children sorted by name.
    pub async fn readdir(&self, ino: Ino, fh: u64, offset: u64) -> Result<Vec<DirEntry>, FsError> {
        let listed = self.dir_snapshot(ino, fh, offset).await?;
        let parent = lock(&self.state)
            .inodes
            .get(ino)
            .map(|node| node.parent)
            .ok_or(FsError::NotFound)?;
        let dots = [(ino, "."), (parent, "..")]
            .into_iter()
            .map(|(ino, name)| (ino, Kind::Dir, name.to_owned()));
        let children = listed
            .children()
            .iter()
            .map(|c| (c.ino, c.kind, c.name.clone()));
        Ok(dots
            .chain(children)
            .enumerate()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(READDIR_BATCH)
            .map(|(i, (ino, kind, name))| DirEntry {
                ino,
                next_offset: i as u64 + 1,
                kind,
                name,
            })
            .collect())
    }

    /// Like `readdir`, with each entry's attributes. Lookups are not counted here: the adapter
    /// counts the entries it actually sends with `add_lookups`.
    pub async fn readdirplus(
        &self,
        ino: Ino,
        fh: u64,
        offset: u64,
    ) -> Result<Vec<DirEntryPlus>, FsError> {
        let entries = self.readdir(ino, fh, offset).await?;
        let datas: Vec<(DirEntry, NodeData)> = {
            let state = lock(&self.state);
            entries
                .into_iter()
                .filter_map(|entry| {
                    let data = state.inodes.get(entry.ino)?.data.clone();
                    Some((entry, data))
                })
                .collect()
        };
        let mut plus = Vec::with_capacity(datas.len());
        for (entry, data) in datas {
            let attr = self.attr_of_data(entry.ino, &data, Dates::IfKnown).await?;
            plus.push(DirEntryPlus { entry, attr });
        }
        Ok(plus)
    }

    pub(super) fn release_handle(&self, fh: u64) -> Result<(), FsError> {
        let mut state = lock(&self.state);
        let handle = state.handles.remove(fh).ok_or(FsError::BadHandle)?;
        lock(&self.readers).remove(&fh);
        state.inodes.closed(handle.ino());
        state.drop_if_unreferenced(handle.ino());
        Ok(())
    }

    /// The package's limits, fetched at most once per directory TTL; while the server cannot
    /// be reached, the last ones known (or none).
    pub(super) async fn limits(&self) -> Result<Limits, FsError> {
        let ttl = self.options.dir_ttl;
        let cached = || {
            lock(&self.limits)
                .as_ref()
                .filter(|(at, _)| at.elapsed() < ttl)
                .map(|(_, limits)| limits.clone())
        };
        let fetch = async {
            let known = || lock(&self.limits).as_ref().map(|(_, l)| l.clone());
            if !self.link.is_online() {
                return Ok(known().unwrap_or_default());
            }
            let fetched = self.remote.limits().await;
            self.link.observe(&fetched);
            match fetched {
                Ok(limits) => {
                    *lock(&self.limits) = Some((Instant::now(), limits.clone()));
                    Ok(limits)
                }
                Err(e) if is_unreachable(&e) => Ok(known().unwrap_or_default()),
                Err(e) => Err(e.into()),
            }
        };
        self.limits_flight.run((), cached, fetch).await
    }

    /// Sizes for `df`: the package's storage limit (a petabyte when unlimited) as the total,
    /// the files this mount has seen as used (the API reports no usage).
    pub async fn statfs(&self) -> Result<StatFs, FsError> {
        let limits = self.limits().await?;
        let (used, files) = {
            let state = lock(&self.state);
            let used: u64 = state
                .inodes
                .nodes()
                .filter_map(|(_, node)| match &node.data {
                    NodeData::File(f) => Some(f.size),
                    _ => None,
                })
                .sum();
            (used, state.inodes.len() as u64)
        };
        let total = limits.max_storage.unwrap_or(UNLIMITED_STORAGE).max(used);
        let blocks = total / STATFS_BLOCK;
        let free = (total - used) / STATFS_BLOCK;
        Ok(StatFs {
            blocks,
            bfree: free,
            bavail: free,
            files: files + FREE_INODES,
            ffree: FREE_INODES,
            bsize: STATFS_BLOCK as u32,
            namelen: names::NAME_MAX as u32,
        })
    }

    /// The value of extended attribute `name` of `ino`. Only the `user.` namespace exists here:
    /// any other name (security labels, ACLs) is "not supported" rather than "absent", the
    /// answer tools such as `ls -l` remember for the whole filesystem instead of asking again
    /// for every file.
    pub fn getxattr(&self, ino: Ino, name: &str) -> Result<Vec<u8>, FsError> {
        let data = self.node_data(ino)?;
        if !name.starts_with(xattr::NAMESPACE) {
            return Err(FsError::Unsupported);
        }
        xattr::attributes(&data)
            .into_iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.into_bytes())
            .ok_or(FsError::NoAttr)
    }

    /// The names of the extended attributes of `ino`.
    pub fn listxattr(&self, ino: Ino) -> Result<Vec<String>, FsError> {
        let data = self.node_data(ino)?;
        Ok(xattr::attributes(&data)
            .into_iter()
            .map(|(key, _)| key.to_owned())
            .collect())
    }

    /// Whether a caller with `uid`/`gid` may access `ino` as `mask`, by its permission bits
    /// (`chmod` included).
    pub fn access(&self, ino: Ino, uid: u32, gid: u32, mask: i32) -> Result<(), FsError> {
        let data = self.node_data(ino)?;
        let owner = self.options.owner;
        let attr = match &data {
            NodeData::File(file) => {
                let (kind, carried) = self.file_carried(file);
                attr::file_attr(ino, file, kind, None, owner).with_overlay(&carried)
            }
            NodeData::Folder(folder) => attr::dir_attr(ino, Some(folder), self.started, owner)
                .with_overlay(&self.stored_overlay(&data)),
            NodeData::Root => attr::dir_attr(ino, None, self.started, owner)
                .with_overlay(&self.stored_overlay(&data)),
            NodeData::Local(local) => attr::local_file_attr(ino, local.size, local.symlink, owner),
        };
        let attr = match self.staged_of(ino) {
            Some(staged) if !data.is_dir() => staged.attr(ino, owner),
            _ => attr,
        };
        if attr.permits(uid, gid, mask) {
            Ok(())
        } else {
            Err(FsError::Denied)
        }
    }
}
