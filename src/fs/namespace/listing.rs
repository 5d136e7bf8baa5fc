//! A folder's listing, fetched at most once per TTL (one request per folder at a time, shared
//! by every caller), installed in the tree as names and inodes; kept on disk for the next mount
//! (shown by it within the TTL), and shown stale while the server cannot be reached. An edit
//! made while a listing was on its way marks it out of date, so it is fetched again at the next
//! use rather than trusted without that edit.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::inode::{Ino, LocalFile, NodeData, RemoteKey};
use super::listed::{Child, Listed};
use super::names::{self, ItemKind, NameRequest};
use super::Relisted;
use crate::fs::attr::Kind;
use crate::fs::connectivity::is_unreachable;
use crate::fs::core::Core;
use crate::fs::error::FsError;
use crate::remote::{Listing, Remote};
use crate::staging::Entry;

/// Fetches of a listing at most, while uploads finishing in the folder keep changing it.
const LISTING_ATTEMPTS: u32 = 3;

impl<R: Remote> Core<R> {
    pub(in crate::fs) fn node_data(&self, ino: Ino) -> Result<NodeData, FsError> {
        self.ns
            .lock_tree()
            .inodes
            .get(ino)
            .map(|node| node.data.clone())
            .ok_or(FsError::NotFound)
    }

    /// Marks the listings kept on disk of `relisted` out of date, once the state lock under
    /// which they were edited is released: a later mount must not show them as current.
    pub(in crate::fs) async fn expire_kept(&self, relisted: impl IntoIterator<Item = Relisted>) {
        for Relisted { folder } in relisted {
            if let Err(e) = self.meta.expire_listing(folder).await {
                log::warn!("cannot mark the kept listing of folder {folder:?} out of date: {e}");
            }
        }
    }

    /// The folder id directory `dir` stands for (`None`: the root).
    pub(in crate::fs) fn folder_of(&self, dir: Ino) -> Result<Option<u64>, FsError> {
        match self.node_data(dir)? {
            NodeData::Root => Ok(None),
            NodeData::Folder(f) => Ok(Some(f.id)),
            NodeData::File(_) | NodeData::Local(_) => Err(FsError::NotDir),
        }
    }

    /// The shown content of directory `dir`, from the cache while fresh, else fetched once.
    pub(in crate::fs) async fn children(&self, dir: Ino) -> Result<Arc<Listed>, FsError> {
        self.children_within(dir, self.options.dir_ttl).await
    }

    /// The shown content of directory `dir`, from the cache if younger than `ttl`.
    pub(in crate::fs) async fn children_within(
        &self,
        dir: Ino,
        ttl: Duration,
    ) -> Result<Arc<Listed>, FsError> {
        let folder = self.folder_of(dir)?;
        let cached = || {
            self.ns
                .lock_tree()
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
            let mut attempts = 0;
            let (edits, fetched) = loop {
                let edits = self.ns.lock_tree().edits.get(&dir).copied();
                let fetched = self.remote.list_folder(folder).await;
                self.link.observe(&fetched);
                attempts += 1;
                // An edit made while the listing was on its way (an upload finishing) may be
                // missing from it, or half in it: it is fetched again at once, a few times.
                let edited = self.ns.lock_tree().edits.get(&dir).copied() != edits;
                if !(edited && fetched.is_ok() && attempts < LISTING_ATTEMPTS) {
                    break (edits, fetched);
                }
            };
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
                    // Still edited while it was on its way: it is shown, but fetched again at
                    // the next use.
                    let edited = {
                        let mut state = self.ns.lock_tree();
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
        self.ns.listing_flights.run(dir, cached, arrived).await
    }

    /// The listing an earlier mount kept for `folder`, shown as `dir` if it is younger than
    /// `ttl` and this mount holds none of its own (one it holds is at least as recent). Past
    /// half its TTL it is shown and fetched again in the background.
    fn restore(&self, dir: Ino, folder: Option<u64>, ttl: Duration) -> Option<Arc<Listed>> {
        if self.ns.lock_tree().listings.contains_key(&dir) {
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
        if let Some(listed) = self.ns.lock_tree().listings.get(&dir).cloned() {
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
        // Read before the rows: an upload missing here has its id in the row read after.
        let landed = self.writes.landed_ids();
        let rows = self
            .writes
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
        for mut row in rows {
            if row.uploaded.is_none() {
                // A listing that has the upload shows it as the pending file; one fetched
                // before it landed shows the pending file alone.
                row.uploaded = landed
                    .get(&row.key)
                    .copied()
                    .filter(|id| listed_files.contains(id));
            }
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
            let hidden = self.ns.lock_hidden();
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
                        f.file_type = crate::fs::write::upload::entry_meta(&row).encode();
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
        let mut state = self.ns.lock_tree();
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
        let staged = match self.writes.lock_detached().remove(&row.key) {
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

    /// Marks the listing of `folder` kept on disk out of date: an upload no inode stands for (a
    /// journal row an earlier mount left) changed the folder, so its first use fetches it anew
    /// instead of showing the version the upload replaced. (A folder listed in memory has an
    /// inode for every row of it, so there is nothing to expire there.)
    pub(in crate::fs) async fn folder_changed(&self, folder: Option<u64>) {
        self.folder_edited(folder);
        if let Err(e) = self.meta.expire_listing(folder).await {
            log::warn!("cannot mark the kept listing of folder {folder:?} out of date: {e}");
        }
    }

    /// Counts an edit of `folder` made on the server by this mount (an upload landing, or
    /// done): a listing on its way meanwhile may lack it, or have half of it, so it is fetched
    /// again rather than shown (see `children_within`).
    pub(in crate::fs) fn folder_edited(&self, folder: Option<u64>) {
        let mut tree = self.ns.lock_tree();
        let key = folder.map_or(RemoteKey::Root, RemoteKey::Folder);
        if let Some(dir) = tree.inodes.find(key) {
            *tree.edits.entry(dir).or_default() += 1;
        }
    }
}
