//! Work done ahead of the user, so that a walk over a link tens of milliseconds long does not
//! pay one round trip after another.
//!
//! - **Listings one level ahead.** When the user reads a directory, the listings of its
//!   subfolders are fetched in the background: by the time `find` or `ls -R` enters one, it is
//!   there. Only one level ahead of what the user reads, so an `ls` of a folder never walks the
//!   whole account.
//! - **Dates once someone looks at one.** A file uploaded by another client has its upload date
//!   (its mtime) only from a `file/info` of its own. Lookups and `readdirplus` never wait for it
//!   (`Dates::IfKnown` hands out provisional attributes); the first `stat` that needs a date in
//!   a folder marks the folder *wanted* and starts the dates of the folder and of the folders
//!   under it whose listings are here. Once dates were wanted in two folders of one parent, or
//!   in one within `WALK_WINDOW` of the user reading the parent, a walk (`ls -lR`) is going
//!   through it: the dates of all the parent's folders start, in the order the walk visits
//!   them. A listing that arrives for a folder in or under a wanted one,
//!   or in a walked one, starts its dates too. An `ls -l` of one folder thus fetches that
//!   folder's dates (and one level below), not its neighbours' (unless it came right after an
//!   `ls` of the parent). `find`, `du` of a
//!   yetifs-written tree and `ls` without `-l` never stat a foreign file: listings only.
//! - **`--prefetch-tree`** walks the whole account breadth-first after mounting, listing
//!   folders and fetching the dates listings lack, into the kept metadata (bounded by
//!   `TREE_BOUND` items), and reports its progress in `yetifs status`.
//!
//! Every request made here runs `in_background` (`remote::priority`): the API client's adaptive
//! limit lets it wait while the user's calls wait, and it gets at most three quarters of the
//! calls in flight. Background requests also take a slot of a FIFO semaphore first, so they go
//! in the order they were asked for (the order a walk visits) and only a bounded number wait at
//! the limit at once. A user who comes to need what the background is fetching joins its
//! single flight (`Core::uploaded`, `Core::children_within`) and raises its urgency, so it is
//! not left behind other background work. Unmounting stops all of it (`Core::stop_ahead`).
//!
//! Locks: each mutex here is taken alone, never while holding another lock of the core, and
//! the state lock is released before any of them is taken.
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore, SemaphorePermit};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::core::Core;
use super::error::FsError;
use super::namespace::inode::{Ino, NodeData, ROOT_INO};
use super::namespace::listed::Listed;
use crate::remote::priority::{self, in_background, Urgency};
use crate::remote::{FileEntry, Remote};
use crate::sync::clock::now_ms;
use crate::sync::Mutex;

/// Background requests admitted towards the API client at once; the rest wait in order.
const SLOTS: usize = 48;
/// Subfolder listings one directory read starts at most.
const SUBFOLDERS_AHEAD: usize = 1024;
/// Items (folders and files) `--prefetch-tree` lists at most: a bound on its requests, its
/// rows in the metadata store and the inodes it holds.
pub const TREE_BOUND: u64 = 1_000_000;
/// A date waited for in a folder this soon after its parent was read: a walk (`ls -lR`) is
/// going through the parent.
const WALK_WINDOW: Duration = Duration::from_secs(5);
/// Folders the tree walk works on at once.
const WALK_WIDTH: usize = 16;

/// What background work fetches, as the user may come to need it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Work {
    Listing(Ino),
    Date(u64),
}

/// A piece of background work, handed to the worker (`Core::run_ahead`).
#[derive(Debug)]
enum Job {
    Dates(Vec<u64>),
    Listings(Vec<Ino>),
    Tree,
}

/// Where `--prefetch-tree` stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreeState {
    /// Not asked for.
    #[default]
    Off,
    /// Walking.
    Walking,
    /// Every folder listed and every date missing from the listings fetched.
    Done,
    /// Stopped at `TREE_BOUND` items.
    Bounded,
    /// Stopped by the unmount, or by the server going away.
    Stopped,
}

/// The progress of `--prefetch-tree`, for `yetifs status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeProgress {
    /// Where it stands.
    pub state: TreeState,
    /// Folders listed so far.
    pub folders: u64,
    /// Files seen in those listings.
    pub files: u64,
    /// Upload dates fetched (the files that carry none in the listing).
    pub dates: u64,
    /// Folders whose listing failed (they are listed again when used).
    pub failed: u64,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_ms: Option<u64>,
    /// When it ended.
    pub finished_ms: Option<u64>,
}

/// The state of the work done ahead.
pub(super) struct Ahead {
    slots: Semaphore,
    /// Background fetches under way, by what they fetch.
    running: Mutex<HashMap<Work, Urgency>>,
    /// Directories where someone waited for a date.
    wanted: Mutex<HashSet<Ino>>,
    /// Directories a walk goes through: dates were waited for in two of their folders.
    walked: Mutex<HashSet<Ino>>,
    /// When each directory's dates were last started.
    dates_started: Mutex<HashMap<Ino, Instant>>,
    /// When each directory's subfolder listings were last started.
    subfolders_started: Mutex<HashMap<Ino, Instant>>,
    jobs: mpsc::UnboundedSender<Job>,
    queue: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    stop: CancellationToken,
    tree: Mutex<TreeProgress>,
    dates_fetched: AtomicU64,
}

impl Ahead {
    pub(super) fn new() -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        Ahead {
            slots: Semaphore::new(SLOTS),
            running: Mutex::new(HashMap::new()),
            wanted: Mutex::new(HashSet::new()),
            walked: Mutex::new(HashSet::new()),
            dates_started: Mutex::new(HashMap::new()),
            subfolders_started: Mutex::new(HashMap::new()),
            jobs,
            queue: Mutex::new(Some(queue)),
            stop: CancellationToken::new(),
            tree: Mutex::new(TreeProgress::default()),
            dates_fetched: AtomicU64::new(0),
        }
    }

    /// A slot for one background request, in the order asked; `None` once stopped.
    async fn slot(&self) -> Option<SemaphorePermit<'_>> {
        tokio::select! {
            permit = self.slots.acquire() => permit.ok(),
            () = self.stop.cancelled() => None,
        }
    }

    /// Records background work on `work` and returns its urgency.
    fn begin(&self, work: Work) -> Urgency {
        let urgency = Urgency::new();
        self.running.lock().insert(work, urgency.clone());
        urgency
    }

    fn end(&self, work: Work) {
        self.running.lock().remove(&work);
    }

    /// The user waits for `work`: if the background is fetching it, it goes as the user's.
    fn raise(&self, work: Work) {
        if let Some(urgency) = self.running.lock().get(&work) {
            urgency.raise();
        }
    }

    /// Whether `dir` was not started in `map` within `ttl`; marks it started now.
    fn first_in(map: &Mutex<HashMap<Ino, Instant>>, dir: Ino, ttl: Duration) -> bool {
        let mut map = map.lock();
        let now = Instant::now();
        match map.get(&dir) {
            Some(at) if now.duration_since(*at) < ttl => false,
            _ => {
                map.insert(dir, now);
                true
            }
        }
    }

    /// Whether the user read directory `dir` from its start within `WALK_WINDOW`.
    fn read_lately(&self, dir: Ino) -> bool {
        self.subfolders_started
            .lock()
            .get(&dir)
            .is_some_and(|at| at.elapsed() < WALK_WINDOW)
    }

    fn send(&self, job: Job) {
        if !self.stop.is_cancelled() {
            // Without a worker (a core nobody watches) the job is dropped: nothing is ahead.
            let _ = self.jobs.send(job);
        }
    }
}

impl<R: Remote> Core<R> {
    /// The upload date of server file `id` (inode `ino`) for someone who waits for it. The
    /// folder holding it wants dates from now on (see the module essay).
    pub(super) async fn demanded_date(&self, ino: Ino, id: u64) -> Result<Option<i64>, FsError> {
        if let Some(known) = self.meta.uploaded(id) {
            return Ok(Some(known));
        }
        if let Some(dir) = self.parent_of(ino) {
            self.dates_wanted_in(dir);
        }
        self.uploaded(id).await
    }

    /// Marks the user's own fetch of `id`'s date: if the background fetches it, it is raised.
    pub(super) fn date_needed(&self, id: u64) {
        if priority::background().is_none() {
            self.ahead.raise(Work::Date(id));
        }
    }

    /// Marks the user's own fetch of `dir`'s listing: if the background fetches it, it is
    /// raised.
    pub(super) fn listing_needed(&self, dir: Ino) {
        if priority::background().is_none() {
            self.ahead.raise(Work::Listing(dir));
        }
    }

    /// The subdirectories of `dir` in its listing held now, and whether each is listed.
    fn subdirs(&self, dir: Ino) -> Vec<(Ino, bool)> {
        let state = self.ns.lock_tree();
        let Some(listed) = state.listings.get(&dir) else {
            return Vec::new();
        };
        listed
            .children()
            .iter()
            .filter(|c| state.inodes.get(c.ino).is_some_and(|n| n.data.is_dir()))
            .map(|c| (c.ino, state.listings.contains_key(&c.ino)))
            .collect()
    }

    /// Someone waited for a date in `dir`: the dates of `dir` and of the folders under it are
    /// started, as far as they are listed; once dates were waited for in two folders of one
    /// parent, a walk is going through it, and the dates of all its folders start.
    fn dates_wanted_in(&self, dir: Ino) {
        let parent = self.parent_of(dir).filter(|&p| p != dir);
        self.start_dates(dir);
        if !self.ahead.wanted.lock().insert(dir) {
            return;
        }
        let mut near: Vec<Ino> = self.subdirs(dir).into_iter().map(|(ino, _)| ino).collect();
        if let Some(parent) = parent {
            let siblings = self.subdirs(parent);
            let walked = {
                let wanted = self.ahead.wanted.lock();
                siblings.iter().filter(|(s, _)| wanted.contains(s)).count() >= 2
            } || self.ahead.read_lately(parent);
            if walked && self.ahead.walked.lock().insert(parent) {
                near.extend(siblings.into_iter().map(|(ino, _)| ino));
            }
        }
        for dir in near {
            self.start_dates(dir);
        }
    }

    /// A listing of `dir` was installed: its dates start if dates were wanted in it or in its
    /// parent, or a walk goes through its parent.
    pub(super) fn listing_arrived(&self, dir: Ino) {
        let parent = self.parent_of(dir);
        let wanted = {
            let wanted = self.ahead.wanted.lock();
            wanted.contains(&dir) || parent.is_some_and(|p| wanted.contains(&p))
        } || parent.is_some_and(|p| self.ahead.walked.lock().contains(&p));
        if wanted {
            self.start_dates(dir);
        }
    }

    /// The user reads directory `dir` from its start: its subfolders' listings are fetched
    /// ahead.
    pub(super) fn reading_dir(&self, dir: Ino) {
        let ttl = self.options.dir_ttl;
        if !Ahead::first_in(&self.ahead.subfolders_started, dir, ttl) {
            return;
        }
        let unlisted: Vec<Ino> = self
            .subdirs(dir)
            .into_iter()
            .filter(|&(_, listed)| !listed)
            .map(|(ino, _)| ino)
            .take(SUBFOLDERS_AHEAD)
            .collect();
        if !unlisted.is_empty() {
            self.ahead.send(Job::Listings(unlisted));
        }
    }

    /// The server files of `dir`'s listing held now.
    fn listed_files(&self, dir: Ino) -> Option<Vec<FileEntry>> {
        let state = self.ns.lock_tree();
        let listed = state.listings.get(&dir)?;
        Some(
            listed
                .children()
                .iter()
                .filter_map(|c| match &state.inodes.get(c.ino)?.data {
                    NodeData::File(f) => Some(f.clone()),
                    _ => None,
                })
                .collect(),
        )
    }

    /// Of `files`, the ids whose date is neither carried nor known.
    fn dateless(&self, files: &[FileEntry]) -> Vec<u64> {
        files
            .iter()
            .filter(|f| {
                self.file_carried(f).1.mtime.is_none() && self.meta.uploaded(f.id).is_none()
            })
            .map(|f| f.id)
            .collect()
    }

    /// Starts fetching the dates `dir`'s listing lacks, once per directory TTL.
    fn start_dates(&self, dir: Ino) {
        if !self.ns.lock_tree().listings.contains_key(&dir)
            || !Ahead::first_in(&self.ahead.dates_started, dir, self.options.dir_ttl)
        {
            return;
        }
        let ids = self.dateless(&self.listed_files(dir).unwrap_or_default());
        if !ids.is_empty() {
            self.ahead.send(Job::Dates(ids));
        }
    }

    /// Asks for the walk of the whole account (`--prefetch-tree`).
    pub fn prefetch_tree(&self) {
        self.ahead.tree.lock().state = TreeState::Walking;
        self.ahead.send(Job::Tree);
    }

    /// Where the walk of `--prefetch-tree` stands.
    pub fn tree_progress(&self) -> TreeProgress {
        self.ahead.tree.lock().clone()
    }

    /// Background dates fetched so far (by every kind of work ahead).
    pub fn dates_fetched_ahead(&self) -> u64 {
        self.ahead.dates_fetched.load(Ordering::Relaxed)
    }

    /// Stops every work ahead: nothing more is sent, what waits is dropped (unmount).
    pub fn stop_ahead(&self) {
        self.ahead.stop.cancel();
        let mut tree = self.ahead.tree.lock();
        if tree.state == TreeState::Walking {
            tree.state = TreeState::Stopped;
            tree.finished_ms = Some(now_ms());
        }
    }

    /// Runs the work ahead until stopped; started by `watch`.
    pub(super) async fn run_ahead(self: Arc<Self>) {
        let Some(mut jobs) = self.ahead.queue.lock().take() else {
            return;
        };
        loop {
            let job = tokio::select! {
                job = jobs.recv() => job,
                () = self.ahead.stop.cancelled() => None,
            };
            let Some(job) = job else {
                return;
            };
            let core = Arc::clone(&self);
            tokio::spawn(async move {
                let stop = core.ahead.stop.clone();
                tokio::select! {
                    () = core.run_job(job) => {}
                    () = stop.cancelled() => {}
                }
            });
        }
    }

    async fn run_job(&self, job: Job) {
        match job {
            Job::Dates(ids) => {
                stream::iter(ids)
                    .for_each_concurrent(None, |id| async move {
                        self.background_date(id).await;
                    })
                    .await;
            }
            Job::Listings(dirs) => {
                stream::iter(dirs)
                    .for_each_concurrent(None, |dir| async move {
                        let _ = self.background_listing(dir).await;
                    })
                    .await;
            }
            Job::Tree => self.walk_tree().await,
        }
    }

    /// Runs `fetch` for `work` in the background, once it has a slot and while the server
    /// answers; `None` when it did not run.
    async fn behind<T>(&self, work: Work, fetch: impl Future<Output = T>) -> Option<T> {
        let _slot = self.ahead.slot().await?;
        if !self.link.is_online() {
            return None;
        }
        let urgency = self.ahead.begin(work);
        let got = in_background(urgency, fetch).await;
        self.ahead.end(work);
        Some(got)
    }

    /// Fetches the date of `id` in the background; whether it was fetched (not known already).
    async fn background_date(&self, id: u64) -> bool {
        let fetch = async {
            if self.meta.uploaded(id).is_some() {
                return Ok(None);
            }
            self.uploaded(id).await
        };
        match self.behind(Work::Date(id), fetch).await {
            Some(Ok(Some(_))) => {
                self.ahead.dates_fetched.fetch_add(1, Ordering::Relaxed);
                true
            }
            Some(Err(e)) => {
                log::debug!("background date of file {id}: {e}");
                false
            }
            Some(Ok(None)) | None => false,
        }
    }

    /// Fetches the listing of `dir` in the background (from the cache if fresh).
    async fn background_listing(&self, dir: Ino) -> Option<Arc<Listed>> {
        match self.behind(Work::Listing(dir), self.children(dir)).await? {
            Ok(listed) => Some(listed),
            Err(e) => {
                log::debug!("background listing of directory {dir}: {e}");
                None
            }
        }
    }

    /// The walk of `--prefetch-tree`: breadth-first, `WALK_WIDTH` folders at a time, each
    /// listed and its missing dates fetched, until every folder is done or `TREE_BOUND` items
    /// were seen.
    async fn walk_tree(&self) {
        {
            let mut tree = self.ahead.tree.lock();
            tree.state = TreeState::Walking;
            tree.started_ms = Some(now_ms());
        }
        let mut level = vec![ROOT_INO];
        let mut items: u64 = 0;
        let end = loop {
            if level.is_empty() {
                break TreeState::Done;
            }
            if items >= TREE_BOUND {
                break TreeState::Bounded;
            }
            let found: Vec<Vec<Ino>> = stream::iter(level)
                .map(|dir| self.walk_folder(dir))
                .buffer_unordered(WALK_WIDTH)
                .collect()
                .await;
            if self.ahead.stop.is_cancelled() {
                break TreeState::Stopped;
            }
            level = found.into_iter().flatten().collect();
            items = {
                let tree = self.ahead.tree.lock();
                tree.folders + tree.files
            };
        };
        let mut tree = self.ahead.tree.lock();
        if tree.state == TreeState::Walking {
            tree.state = end;
            tree.finished_ms = Some(now_ms());
        }
    }

    /// Lists `dir` for the walk and fetches the dates its listing lacks; returns its
    /// subdirectories.
    async fn walk_folder(&self, dir: Ino) -> Vec<Ino> {
        if self.background_listing(dir).await.is_none() {
            self.ahead.tree.lock().failed += 1;
            return Vec::new();
        }
        let files = self.listed_files(dir).unwrap_or_default();
        let subdirs: Vec<Ino> = self.subdirs(dir).into_iter().map(|(ino, _)| ino).collect();
        {
            let mut tree = self.ahead.tree.lock();
            tree.folders += 1;
            tree.files += files.len() as u64;
        }
        let fetched: Vec<bool> = stream::iter(self.dateless(&files))
            .map(|id| self.background_date(id))
            .buffer_unordered(SLOTS)
            .collect()
            .await;
        let dates = fetched.into_iter().filter(|&f| f).count() as u64;
        self.ahead.tree.lock().dates += dates;
        subdirs
    }
}
