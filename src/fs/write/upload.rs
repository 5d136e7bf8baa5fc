//! The steps of one upload, as the write-back component (`writeback`) runs them. An upload
//! is journaled before it starts; then the file is uploaded, one `file/edit` gives it its
//! metadata (`remote::file_meta`) and fixes the name the server chose (a leading dot dropped,
//! quotes removed, ` (2)` added), and only then is the file it replaces deleted and the journal
//! entry removed. The server refuses empty files: an empty file is uploaded as one byte and
//! marked empty.
//!
//! What a crash leaves at each step, and what the next run of the same key does with it:
//! - before the journal row is written: the row of the last close (or none, for a file never
//!   closed): the bytes that were closed are uploaded, later writes were never promised;
//! - after the row, before the upload ends: the row without an upload id: uploaded again
//!   (a partial upload the server kept is a stray file; the server has no way to resume one);
//! - after the upload, before the row records its id: as above, and the first upload stays on
//!   the server as a second file of the same name — the one window the API leaves open;
//! - after the row records the id: the name fix, the metadata and the deletion of the replaced
//!   file are done from the row, never by uploading again;
//! - after the deletion, before the row is removed: the same, the deletion finding nothing.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cache::ItemKey;
use crate::fs::carried::meta_of;
use crate::fs::connectivity::is_unreachable;
use crate::fs::core::Core;
use crate::fs::error::FsError;
use crate::fs::namespace::inode::{Ino, NodeData, RemoteKey, ROOT_INO};
use crate::fs::namespace::listed::Child;
use crate::fs::write::staged::{Staged, StagedState};
use crate::fs::write::writeback::{Attempt, JobState, Outcome};
use crate::remote::{FileChange, FileEntry, FileKind, FileMeta, Remote, RemoteError};
use crate::staging::{Durability, Entry};

/// The metadata the upload of `entry` gives its file.
pub(in crate::fs) fn entry_meta(entry: &Entry) -> FileMeta {
    let kind = if entry.size == 0 {
        FileKind::Empty
    } else if entry.symlink {
        FileKind::Symlink
    } else {
        FileKind::Regular
    };
    meta_of(kind, &entry.overlay(), None)
}

/// An upload not done yet, as `yetifs status` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingUpload {
    /// The name it gets on the server.
    pub name: String,
    /// Its path in the mount, when every folder above it is known.
    pub path: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it is in the journal (closed, being or to be uploaded) rather than a changed
    /// file still open.
    pub journaled: bool,
    /// Where its write-back job stands.
    pub job: JobState,
}

/// Something the server does not have yet, and the change version its upload must carry.
pub(in crate::fs) struct Pending {
    pub(in crate::fs) key: u64,
    pub(in crate::fs) version: u64,
    pub(in crate::fs) name: String,
    pub(in crate::fs) path: Option<String>,
    pub(in crate::fs) size: u64,
    pub(in crate::fs) journaled: bool,
}

/// A staged file found by key, and the inode it is attached to, if any.
type KeyedStaged = (Option<Ino>, Arc<Staged>);

/// `dir/name`, or `name` at the root.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

impl<R: Remote> Core<R> {
    /// Where the content of file `ino` belongs: its folder, its server name, and the server
    /// file it replaces.
    fn destination(&self, ino: Ino) -> Result<(Option<u64>, String, Option<u64>), FsError> {
        let parent = self.parent_of(ino).ok_or(FsError::NotFound)?;
        let folder = self.folder_of(parent)?;
        match self.node_data(ino)? {
            NodeData::File(f) => Ok((folder, f.name, Some(f.id))),
            NodeData::Local(l) => Ok((folder, l.name, None)),
            NodeData::Root | NodeData::Folder(_) => Err(FsError::IsDir),
        }
    }

    /// Gives `ino` new data (a new file id, or local) and keeps it in its parent's listing.
    pub(in crate::fs) async fn became(&self, ino: Ino, data: NodeData) {
        let kind = self.kind_of(&data);
        let relisted = {
            let mut state = self.ns.lock_tree();
            let Some(node) = state.inodes.get(ino) else {
                return;
            };
            let (parent, name) = (node.parent, node.name.clone());
            let displaced: Vec<Ino> = state.inodes.rekey(ino, data).into_iter().collect();
            let child = Child { name, ino, kind };
            state.relist(parent, &displaced, Some(child))
        };
        self.expire_kept(relisted).await;
    }

    /// The staged file of `key` and the inode it is attached to. A journal row of a file
    /// shown as local (left by an earlier mount) is attached to its inode here; one no inode
    /// holds (its folder not listed yet, or its inode forgotten) gets a detached staged file,
    /// which an inode takes over when its folder is listed.
    fn staged_for_key(&self, key: u64) -> Result<Option<KeyedStaged>, FsError> {
        let attached = self
            .writes
            .lock_staged()
            .iter()
            .find(|(_, s)| s.file.key() == key)
            .map(|(&ino, s)| (ino, Arc::clone(s)));
        if let Some((ino, staged)) = attached {
            return Ok(Some((Some(ino), staged)));
        }
        let local = self.ns.lock_tree().inodes.find(RemoteKey::Local(key));
        let detached = self.writes.lock_detached().get(&key).cloned();
        let staged = match detached {
            Some(staged) => staged,
            None => {
                let Some(row) = self.writes.staging.journal().get(key)? else {
                    return Ok(None);
                };
                let staged = Arc::new(self.restaged(&row)?);
                Arc::clone(self.writes.lock_detached().entry(key).or_insert(staged))
            }
        };
        match local {
            Some(ino) => {
                self.writes.lock_detached().remove(&key);
                Ok(Some((Some(ino), self.attach(ino, staged))))
            }
            None => Ok(Some((None, staged))),
        }
    }

    /// A staged file for journal row `row`, as the row describes it.
    pub(in crate::fs) fn restaged(&self, row: &Entry) -> Result<Staged, FsError> {
        let state = StagedState {
            size: row.size,
            base: None,
            dirty: row.uploaded.is_none(),
            version: 0,
            written: row.mtime.unwrap_or(self.started),
            overlay: row.overlay(),
            unlinked: false,
            symlink: row.symlink,
        };
        Ok(Staged::new(self.writes.staging.reopen(row.key)?, state))
    }

    /// Forgets the detached staged file of `key` once its work is done, unless an inode took
    /// it over; its bytes go with it.
    fn drop_detached(&self, key: u64) {
        if self.writes.lock_detached().remove(&key).is_some() {
            self.writes.staging.remove(key);
        }
    }

    /// One run of the upload of staged file `key` (see `writeback`): completes an earlier
    /// upload whose last steps are pending, then uploads the file if it changed since the
    /// server last got it. Holds the file's turn throughout, so no write changes the bytes
    /// being sent. `EFBIG` over the package's limit (before any upload), `ENOSPC` when the
    /// storage is full, `EIO` on other failures, each logged with the server's message; while
    /// the server is unreachable the upload waits in the journal.
    pub(in crate::fs) async fn upload_key(&self, key: u64) -> Attempt {
        let (ino, staged) = match self.staged_for_key(key) {
            Ok(Some(found)) => found,
            // Deleted, or done: nothing is left for any version to wait for.
            Ok(None) => return Attempt::new(u64::MAX, Outcome::Done),
            Err(e) => return Attempt::new(0, Outcome::Failed(e)),
        };
        let turn = staged.turn.lock().await;
        let version = staged.lock_state().version;
        let outcome = match self.upload_staged(key, ino, &staged).await {
            Ok(outcome) => outcome,
            Err(e) if e.is_unreachable() => Outcome::Deferred,
            Err(e) => Outcome::Failed(e),
        };
        drop(turn);
        if matches!(outcome, Outcome::Done) {
            match ino {
                Some(ino) => self.unstage_if_idle(ino),
                None => self.drop_detached(key),
            }
        }
        Attempt::new(version, outcome)
    }

    async fn upload_staged(
        &self,
        key: u64,
        ino: Option<Ino>,
        staged: &Staged,
    ) -> Result<Outcome, FsError> {
        let journal = self.writes.staging.journal();
        let row = self.finish_earlier_row(key, ino).await?;
        let snapshot = staged.lock_state().clone();
        if !snapshot.dirty || snapshot.unlinked {
            return Ok(Outcome::Done);
        }
        let Some(mut entry) = self.entry_for(key, ino, row, &snapshot)? else {
            return Ok(Outcome::Done);
        };
        let limit = self.limits().await?.max_upload_size;
        if let Some(max) = limit.filter(|&max| snapshot.size > max) {
            let size = snapshot.size;
            return Err(FsError::TooLarge { size, max });
        }
        // The bytes reach the disk and the journal while the upload runs: the row only ever
        // points at synced bytes, and the run waits for both.
        let journaled = async {
            staged.file.sync().await?;
            journal.upsert(&entry, Durability::Synced).await?;
            Ok::<_, FsError>(())
        };
        if !self.link.is_online() {
            journaled.await?;
            log::info!(
                "upload of {} ({} bytes) queued until the server is reachable",
                entry.name,
                entry.size
            );
            return Err(FsError::Unreachable);
        }
        let source = self.upload_source(&entry);
        self.writes.forget_landed(key);
        let upload = async {
            let uploaded = self.remote.upload(entry.folder, &entry.name, &source).await;
            // Known at once, not once the journal has the id too: a listing fetched meanwhile
            // shows the server's file as this pending one.
            if let Ok(stored) = &uploaded {
                self.writes.landed(key, stored.id);
                self.folder_edited(entry.folder);
            }
            uploaded
        };
        let (journaled, uploaded) = tokio::join!(journaled, upload);
        self.link.observe(&uploaded);
        match (journaled, &uploaded) {
            (Err(e), Ok(_)) => log::warn!(
                "{} is uploaded but its staged copy could not be journaled: {e}",
                entry.name
            ),
            (Err(e), Err(_)) => return Err(e),
            (Ok(()), _) => {}
        }
        let stored = match uploaded {
            Ok(stored) => stored,
            Err(e) if is_unreachable(&e) => {
                log::warn!(
                    "upload of {} ({} bytes) queued: the server is unreachable ({e})",
                    entry.name,
                    entry.size
                );
                return Err(FsError::Unreachable);
            }
            Err(e) => return Err(e.into()),
        };
        // The server has the bytes: whatever fails from here on is completed from the
        // journal, never by uploading again.
        staged.settled(snapshot.version);
        // A detached run's file may have been listed meanwhile, as a local file: that inode
        // becomes the server's file.
        let ino = ino.or_else(|| self.ns.lock_tree().inodes.find(RemoteKey::Local(key)));
        if let Some(ino) = ino {
            let mut shown = stored.clone();
            shown.name.clone_from(&entry.name);
            shown.folder = entry.folder;
            shown.size = entry.size;
            shown.file_type = entry_meta(&entry).encode();
            self.became(ino, NodeData::File(shown)).await;
        }
        if self.writes.writeback.delay().is_none() && entry.replaces.is_none() {
            // A new file: the close returns now and the last steps follow (see
            // `writeback::SETTLE_DELAY`). A new version of a file settles at once, so that no
            // other machine sees the two versions side by side for longer than it must.
            entry.uploaded = Some(stored.id);
            journal.upsert(&entry, Durability::Synced).await?;
            self.writes.forget_landed(key);
            self.writes.lock_settling().insert(key, stored);
            return Ok(Outcome::Uploaded);
        }
        let folder = entry.folder;
        let stored = self.settle(&mut entry, stored).await?;
        match ino {
            Some(ino) => self.became(ino, NodeData::File(stored)).await,
            None => self.folder_changed(folder).await,
        }
        Ok(Outcome::Done)
    }

    /// The journal row of `key` once the last steps of an earlier upload it records are done
    /// (`None` when there is no row, or it was that upload's).
    async fn finish_earlier_row(
        &self,
        key: u64,
        ino: Option<Ino>,
    ) -> Result<Option<Entry>, FsError> {
        match self.writes.staging.journal().get(key)? {
            Some(mut row) if row.uploaded.is_some() => {
                self.finish_earlier(&mut row, ino).await?;
                Ok(None)
            }
            row => Ok(row),
        }
    }

    /// The journal row that stands for `snapshot` of staged file `key`: at the place of `ino`
    /// (its folder, its name, the server file it replaces), or, when `ino` is gone, at the
    /// place `row` recorded; `None` when neither is known.
    fn entry_for(
        &self,
        key: u64,
        ino: Option<Ino>,
        row: Option<Entry>,
        snapshot: &StagedState,
    ) -> Result<Option<Entry>, FsError> {
        let mut entry = match ino.map(|ino| self.destination(ino)) {
            Some(Ok((folder, name, replaces))) => {
                let mut entry = Entry::new(key, folder, name);
                entry.replaces = replaces;
                entry
            }
            Some(Err(FsError::NotFound)) | None => match row {
                Some(row) => row,
                None => return Ok(None),
            },
            Some(Err(e)) => return Err(e),
        };
        entry.size = snapshot.size;
        entry.symlink = snapshot.symlink;
        entry.set_attributes(&snapshot.overlay, Some(snapshot.written));
        Ok(Some(entry))
    }

    /// Completes the last steps of an upload `row` records as done, before its file is
    /// uploaded again: the new upload then replaces that one. An upload the server no longer
    /// has was replaced since (by a newer version, from this mount or another) or deleted: the
    /// file it replaced goes too, and the row with it — its bytes are never sent again.
    async fn finish_earlier(&self, row: &mut Entry, ino: Option<Ino>) -> Result<(), FsError> {
        let Some(id) = row.uploaded else {
            return Ok(());
        };
        if !self.link.is_online() {
            return Err(FsError::Unreachable);
        }
        let known = self.writes.lock_settling().remove(&row.key);
        let quiet = known.is_some();
        let info = match known {
            Some(stored) => Ok(stored),
            None => {
                let info = self.remote.file_info(id).await;
                self.link.observe(&info);
                info.map(|info| info.entry)
            }
        };
        let settled = match info {
            Ok(stored) => match self.settle(row, stored).await {
                Err(FsError::Remote(e)) if matches!(*e, RemoteError::NotFound(_)) => {
                    Err(RemoteError::NotFound(e.to_string()))
                }
                Err(e) => return Err(e),
                Ok(stored) => Ok(stored),
            },
            Err(e) => Err(e),
        };
        match settled {
            Ok(stored) => {
                let ino = ino.or_else(|| self.ns.lock_tree().inodes.find(RemoteKey::File(id)));
                match ino {
                    Some(ino) => self.became(ino, NodeData::File(stored)).await,
                    None => self.folder_changed(row.folder).await,
                }
                let level = if quiet {
                    log::Level::Debug
                } else {
                    log::Level::Info
                };
                log::log!(
                    level,
                    "completed the pending upload of {} ({} bytes)",
                    row.name,
                    row.size
                );
                Ok(())
            }
            Err(RemoteError::NotFound(_)) => {
                if let Some(old) = row.replaces {
                    self.delete_server_file(old).await?;
                }
                self.writes
                    .staging
                    .journal()
                    .remove(row.key, Durability::Lazy)
                    .await?;
                log::info!(
                    "the pending upload of {} was replaced or deleted since; dropped",
                    row.name
                );
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The file an upload of `entry` sends: its staged bytes, or for an empty file the one
    /// byte that stands for it.
    fn upload_source(&self, entry: &Entry) -> std::path::PathBuf {
        if entry.size == 0 {
            self.writes.staging.empty_stand_in().to_path_buf()
        } else {
            self.writes.staging.path(entry.key)
        }
    }

    /// The last steps of an upload (or a server-side copy) that produced `stored`: one
    /// `file/edit` that gives it its metadata and fixes its name, the deletion of the file it
    /// replaces, and the end of the journal entry.
    pub(in crate::fs) async fn settle(
        &self,
        entry: &mut Entry,
        stored: FileEntry,
    ) -> Result<FileEntry, FsError> {
        let journal = self.writes.staging.journal();
        entry.uploaded = Some(stored.id);
        journal.upsert(entry, Durability::Synced).await?;
        self.writes.forget_landed(entry.key);
        let meta = entry_meta(entry);
        let wanted = meta.encode();
        let change = FileChange {
            name: (stored.name != entry.name).then_some(entry.name.as_str()),
            file_type: Some(&wanted),
        };
        let answer = self
            .remote
            .edit_file(stored.id, change)
            .await
            .map_err(|e| {
                // Said at warn by whoever gets the error (the upload run, or the adapter for a
                // server-side copy).
                log::debug!(
                    "cannot give uploaded file {} its name {} and metadata: {e}",
                    stored.id,
                    entry.name
                );
                e
            })?;
        self.kept_or_local(stored.id, &wanted, &answer, &meta)
            .await?;
        let stored = FileEntry {
            name: entry.name.clone(),
            folder: entry.folder,
            size: entry.size,
            trashed: false,
            file_type: answer.file_type,
            ..stored
        };
        if let Some(old) = entry.replaces {
            self.delete_server_file(old).await?;
        }
        // Lost in a power cut, the row costs the next mount one check, nothing more.
        journal.remove(entry.key, Durability::Lazy).await?;
        Ok(self.presented(stored))
    }

    /// Moves server file `id` to the trash; one already gone counts as deleted.
    pub(in crate::fs) async fn delete_server_file(&self, id: u64) -> Result<(), FsError> {
        match self.remote.delete_file(id).await {
            Ok(()) | Err(RemoteError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = self.meta.remove(ItemKey::File(id)).await {
            log::warn!("cannot forget the attributes of deleted file {id}: {e}");
        }
        Ok(())
    }

    /// Has file `ino`'s changes, through whichever handle, uploaded now; returns the outcome of
    /// the upload that carried them (see `writeback`).
    pub(in crate::fs) async fn upload_now(&self, ino: Ino) -> Result<(), FsError> {
        let Some((key, version)) = self.pending_change(ino) else {
            return Ok(());
        };
        self.upload_through(key, version, false).await.result()
    }

    /// The staged key and change version of `ino`, if it has changes the server lacks.
    fn pending_change(&self, ino: Ino) -> Option<(u64, u64)> {
        let staged = self.staged_of(ino)?;
        let st = staged.lock_state();
        (st.dirty && !st.unlinked).then(|| (staged.file.key(), st.version))
    }

    /// `close` under write-back: the staged bytes are synced and journaled, and the upload is
    /// due `delay` after this last change.
    pub(in crate::fs) async fn journal_now(
        &self,
        ino: Ino,
        delay: Duration,
    ) -> Result<(), FsError> {
        let Some(staged) = self.staged_of(ino) else {
            return Ok(());
        };
        let turn = staged.turn.lock().await;
        let snapshot = {
            let st = staged.lock_state();
            if !st.dirty || st.unlinked {
                return Ok(());
            }
            st.clone()
        };
        if *staged.journaled.lock() == Some(snapshot.version) {
            return Ok(());
        }
        let key = staged.file.key();
        // An earlier upload whose last steps failed is completed first: its row cannot also
        // stand for these newer bytes.
        let row = self.finish_earlier_row(key, Some(ino)).await?;
        let Some(entry) = self.entry_for(key, Some(ino), row, &snapshot)? else {
            return Ok(());
        };
        staged.file.sync().await?;
        self.writes
            .staging
            .journal()
            .upsert(&entry, Durability::Synced)
            .await?;
        *staged.journaled.lock() = Some(snapshot.version);
        drop(turn);
        self.writes
            .writeback
            .schedule(key, Some(tokio::time::Instant::now() + delay));
        Ok(())
    }

    /// Uploads not done yet: journal entries with content, and changed files not journaled.
    pub fn pending_uploads(&self) -> usize {
        self.pending_targets().len()
    }

    /// Everything not on the server yet: journal rows (in journal order), then changed files
    /// not journaled yet, each with the change version an upload must carry.
    pub(in crate::fs) fn pending_targets(&self) -> Vec<Pending> {
        let staged: Vec<(Ino, Arc<Staged>)> = self
            .writes
            .lock_staged()
            .iter()
            .map(|(&ino, s)| (ino, Arc::clone(s)))
            .collect();
        let mut live: HashMap<u64, (Ino, u64, u64, bool)> = HashMap::new();
        for (ino, s) in &staged {
            let st = s.lock_state();
            if !st.unlinked {
                live.insert(s.file.key(), (*ino, st.version, st.size, st.dirty));
            }
        }
        let rows = self.writes.staging.journal().entries().unwrap_or_else(|e| {
            log::warn!("cannot read the journal: {e}");
            Vec::new()
        });
        let folders = self.folder_paths();
        let mut list = Vec::new();
        let mut listed = HashSet::new();
        for row in rows {
            let attached = live.get(&row.key).copied();
            // A file being written has the row `create` made for it, which stands for nothing
            // closed yet: it is a changed file still open.
            if row.size == 0 && row.uploaded.is_none() && attached.is_some_and(|a| a.3) {
                continue;
            }
            listed.insert(row.key);
            let path = match attached {
                Some((ino, ..)) => self.path_of(ino),
                None => folders.get(&row.folder).map(|dir| join(dir, &row.name)),
            };
            list.push(Pending {
                key: row.key,
                version: attached.map_or(0, |a| a.1),
                name: row.name,
                path,
                size: row.size,
                journaled: true,
            });
        }
        for (key, (ino, version, size, dirty)) in live {
            if dirty && !listed.contains(&key) {
                let name = self
                    .destination(ino)
                    .map_or_else(|_| format!("inode {ino}"), |(_, name, _)| name);
                list.push(Pending {
                    key,
                    version,
                    name,
                    path: self.path_of(ino),
                    size,
                    journaled: false,
                });
            }
        }
        list
    }

    /// The uploads not done yet, journaled ones first, with where each stands; for
    /// `yetifs status`.
    pub fn pending_upload_list(&self) -> Vec<PendingUpload> {
        let states = self.writes.writeback.states();
        self.pending_targets()
            .into_iter()
            .map(|p| {
                let job = states.get(&p.key).cloned().unwrap_or_default();
                PendingUpload {
                    name: p.name,
                    path: p.path,
                    size: p.size,
                    journaled: p.journaled,
                    job,
                }
            })
            .collect()
    }

    /// The path in the mount of every folder the inode table holds, by folder id.
    fn folder_paths(&self) -> HashMap<Option<u64>, String> {
        let dirs: Vec<(Ino, Option<u64>)> = self
            .ns
            .lock_tree()
            .inodes
            .nodes()
            .filter_map(|(ino, node)| match &node.data {
                NodeData::Root => Some((ino, None)),
                NodeData::Folder(f) => Some((ino, Some(f.id))),
                _ => None,
            })
            .collect();
        dirs.into_iter()
            .filter_map(|(ino, id)| Some((id, self.path_of(ino)?)))
            .collect()
    }

    /// The path of `ino` in the mount (`""` for the root), if its every parent is known: what
    /// logs and `yetifs status` name a file by.
    pub fn path_of(&self, ino: Ino) -> Option<String> {
        let state = self.ns.lock_tree();
        let mut parts = Vec::new();
        let mut at = ino;
        while at != ROOT_INO {
            let node = state.inodes.get(at)?;
            parts.push(node.name.clone());
            if parts.len() > 4096 {
                return None;
            }
            at = node.parent;
        }
        parts.reverse();
        Some(parts.join("/"))
    }

    /// `copy_file_range`: a whole server file copied into an empty file becomes a server-side
    /// `file/copy` (and a rename), so no content passes through this machine. Anything else is
    /// `EOPNOTSUPP`, and the caller copies the bytes itself.
    pub async fn copy_file_range(
        &self,
        fh_in: u64,
        offset_in: u64,
        fh_out: u64,
        offset_out: u64,
        len: u64,
    ) -> Result<u64, FsError> {
        self.writable()?;
        let source_ino = self.handle_ino(fh_in)?;
        let (target, _) = self.write_handle(fh_out)?;
        let NodeData::File(source) = self.node_data(source_ino)? else {
            return Err(FsError::Unsupported);
        };
        let source_clean = self
            .staged_of(source_ino)
            .is_none_or(|s| !s.lock_state().dirty);
        if !source_clean
            || offset_in != 0
            || offset_out != 0
            || len < source.size
            || source.size == 0
        {
            return Err(FsError::Unsupported);
        }
        let staged = self.stage(target).await?;
        let _turn = staged.turn.lock().await;
        if staged.lock_state().size != 0 {
            return Err(FsError::Unsupported);
        }
        let (folder, name, replaces) = self.destination(target)?;
        let copy = self.remote.copy_file(source.id, folder).await?;
        let now = SystemTime::now();
        let overlay = staged.lock_state().overlay;
        let mut entry = Entry {
            key: staged.file.key(),
            folder,
            name,
            size: source.size,
            replaces,
            uploaded: None,
            mtime: Some(now),
            mode: overlay.mode,
            uid: overlay.uid,
            gid: overlay.gid,
            symlink: false,
        };
        let stored = self.settle(&mut entry, copy).await?;
        {
            let mut st = staged.lock_state();
            st.base = Some((stored.id, source.size));
            st.size = source.size;
            st.dirty = false;
            st.version += 1;
            st.written = now;
        }
        self.became(target, NodeData::File(stored)).await;
        Ok(source.size)
    }
}
