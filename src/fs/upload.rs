//! Getting staged files to the server. An upload is journaled before it starts; then the file
//! is uploaded, one `file/edit` gives it its metadata (`remote::file_meta`) and fixes the name
//! the server chose (a leading dot dropped, quotes removed, ` (2)` added), and only then is the
//! file it replaces deleted and the journal entry removed. A failure at any step leaves the
//! entry, and `recover` (at the next mount, or before an unmount) completes it. The server
//! refuses empty files: an empty file is uploaded as one byte and marked empty.
use std::collections::HashSet;
use std::time::SystemTime;

use super::carried::meta_of;
use super::connectivity::is_unreachable;
use super::core::{lock, Core};
use super::dir_cache::Child;
use super::error::FsError;
use super::inode::{Ino, NodeData};
use crate::cache::ItemKey;
use crate::remote::{ApiError, FileChange, FileEntry, FileKind, FileMeta, Remote};
use crate::staging::Entry;

/// The metadata the upload of `entry` gives its file.
fn entry_meta(entry: &Entry) -> FileMeta {
    let kind = if entry.size == 0 {
        FileKind::Empty
    } else if entry.symlink {
        FileKind::Symlink
    } else {
        FileKind::Regular
    };
    meta_of(kind, &entry.overlay(), None)
}

/// What `recover` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Uploads (or their last steps) completed.
    pub completed: usize,
    /// Entries that failed again and stay in the journal.
    pub failed: usize,
}

/// An upload not done yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingUpload {
    /// The name it gets on the server.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it is in the journal (closed, being or to be uploaded) rather than a changed
    /// file still open.
    pub journaled: bool,
}

impl<R: Remote> Core<R> {
    /// Where the content of file `ino` belongs: its folder, its server name, and the server
    /// file it replaces.
    fn destination(&self, ino: Ino) -> Result<(Option<u64>, String, Option<u64>), FsError> {
        let parent = lock(&self.state)
            .inodes
            .get(ino)
            .map(|node| node.parent)
            .ok_or(FsError::NotFound)?;
        let folder = self.folder_of(parent)?;
        match self.node_data(ino)? {
            NodeData::File(f) => Ok((folder, f.name, Some(f.id))),
            NodeData::Local(l) => Ok((folder, l.name, None)),
            NodeData::Root | NodeData::Folder(_) => Err(FsError::IsDir),
        }
    }

    /// Gives `ino` new data (a new file id, or local) and keeps it in its parent's listing.
    pub(super) async fn became(&self, ino: Ino, data: NodeData) {
        let kind = self.kind_of(&data);
        let relisted = {
            let mut state = lock(&self.state);
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

    /// Uploads file `ino` if it changed since the server last got it. The outcome is what
    /// `close(2)` returns: `EFBIG` over the package's limit (before any upload), `ENOSPC` when
    /// the storage is full, `EIO` on other failures, each logged with the server's message.
    /// While the server is unreachable the upload is queued in the journal (success): the
    /// watcher completes it when the server answers again.
    pub(super) async fn flush_ino(&self, ino: Ino) -> Result<(), FsError> {
        let Some(staged) = self.staged_of(ino) else {
            return Ok(());
        };
        let _turn = staged.turn.lock().await;
        let snapshot = {
            let st = staged.state();
            if !st.dirty || st.unlinked {
                return Ok(());
            }
            st.clone()
        };
        let (folder, name, replaces) = self.destination(ino)?;
        let key = staged.file.key();
        let mut entry = Entry::new(key, folder, name);
        entry.size = snapshot.size;
        entry.replaces = replaces;
        entry.symlink = snapshot.symlink;
        entry.set_attributes(&snapshot.overlay, Some(snapshot.written));
        let limit = self.limits().await?.max_upload_size;
        if let Some(max) = limit.filter(|&max| snapshot.size > max) {
            log::error!(
                "cannot upload {}: {} bytes is over the package's limit of {max} bytes",
                entry.name,
                snapshot.size
            );
            return Err(FsError::TooLarge);
        }
        // The bytes reach the disk and the journal while the upload runs: the journal
        // entry only ever points at synced bytes, and `close` waits for both.
        let journaled = async {
            staged.file.sync().await?;
            self.staging.journal().upsert(&entry)?;
            Ok::<_, FsError>(())
        };
        if !self.link.is_online() {
            journaled.await?;
            log::info!(
                "upload of {} ({} bytes) queued until the server is reachable",
                entry.name,
                entry.size
            );
            return Ok(());
        }
        let source = self.upload_source(&entry);
        let upload = self.remote.upload(folder, &entry.name, &source);
        let (journaled, uploaded) = tokio::join!(journaled, upload);
        self.link.observe(&uploaded);
        match (&journaled, &uploaded) {
            (Err(e), Ok(_)) => log::warn!(
                "{} is uploaded but its staged copy could not be journaled: {e}",
                entry.name
            ),
            (Err(_), Err(_)) => return journaled,
            _ => {}
        }
        let stored = match uploaded {
            Ok(stored) => stored,
            Err(e) if is_unreachable(&e) => {
                log::warn!(
                    "upload of {} ({} bytes) queued: the server is unreachable ({e})",
                    entry.name,
                    entry.size
                );
                return Ok(());
            }
            Err(e) => {
                log::error!(
                    "upload of {} ({} bytes) failed, kept staged for a retry: {e}",
                    entry.name,
                    entry.size
                );
                return Err(e.into());
            }
        };
        // The server has the bytes: whatever fails from here on is completed from the
        // journal, never by uploading again.
        let mut shown = stored.clone();
        shown.name.clone_from(&entry.name);
        shown.folder = folder;
        shown.size = entry.size;
        shown.file_type = entry_meta(&entry).encode();
        self.became(ino, NodeData::File(shown)).await;
        staged.settled(snapshot.version);
        let stored = self.settle(&mut entry, stored).await?;
        self.became(ino, NodeData::File(stored)).await;
        Ok(())
    }

    /// The file an upload of `entry` sends: its staged bytes, or for an empty file the one
    /// byte that stands for it.
    fn upload_source(&self, entry: &Entry) -> std::path::PathBuf {
        if entry.size == 0 {
            self.staging.empty_stand_in().to_path_buf()
        } else {
            self.staging.path(entry.key)
        }
    }

    /// The last steps of an upload (or a server-side copy) that produced `stored`: one
    /// `file/edit` that gives it its metadata and fixes its name, the deletion of the file it
    /// replaces, and the end of the journal entry.
    pub(super) async fn settle(
        &self,
        entry: &mut Entry,
        stored: FileEntry,
    ) -> Result<FileEntry, FsError> {
        let journal = self.staging.journal();
        entry.uploaded = Some(stored.id);
        journal.upsert(entry)?;
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
                log::error!(
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
        journal.remove(entry.key)?;
        Ok(self.presented(stored))
    }

    /// Moves server file `id` to the trash; one already gone counts as deleted.
    pub(super) async fn delete_server_file(&self, id: u64) -> Result<(), FsError> {
        match self.remote.delete_file(id).await {
            Ok(()) | Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = self.meta.remove(ItemKey::File(id)).await {
            log::warn!("cannot forget the attributes of deleted file {id}: {e}");
        }
        Ok(())
    }

    /// Completes the journal's pending work that no open file holds: uploads left by a failure
    /// or a crash, name fixes, deletions of replaced files.
    pub async fn recover(&self) -> Recovery {
        let entries = match self.staging.journal().entries() {
            Ok(entries) => entries,
            Err(e) => {
                log::error!("cannot read the journal of pending uploads: {e}");
                return Recovery {
                    completed: 0,
                    failed: 1,
                };
            }
        };
        if !self.link.is_online() {
            return Recovery {
                completed: 0,
                failed: entries.len(),
            };
        }
        let busy: HashSet<u64> = lock(&self.staged).values().map(|s| s.file.key()).collect();
        let mut report = Recovery::default();
        for mut entry in entries.into_iter().filter(|e| !busy.contains(&e.key)) {
            match self.complete(&mut entry).await {
                Ok(()) => report.completed += 1,
                Err(e) => {
                    log::error!(
                        "cannot complete the upload of {} ({} bytes), kept for the next try: {e}",
                        entry.name,
                        entry.size
                    );
                    report.failed += 1;
                }
            }
        }
        report
    }

    /// Completes one journal entry.
    async fn complete(&self, entry: &mut Entry) -> Result<(), FsError> {
        let stored = match entry.uploaded {
            Some(id) => self.remote.file_info(id).await?.entry,
            None => {
                let source = self.upload_source(entry);
                self.remote
                    .upload(entry.folder, &entry.name, &source)
                    .await?
            }
        };
        self.settle(entry, stored).await?;
        self.staging.remove(entry.key);
        log::info!(
            "completed the pending upload of {} ({} bytes)",
            entry.name,
            entry.size
        );
        Ok(())
    }

    /// Uploads every changed file and completes the journal, logging progress; returns how
    /// many uploads are still pending afterwards. Run before an unmount.
    pub async fn finish_pending(&self) -> usize {
        let dirty: Vec<Ino> = lock(&self.staged)
            .iter()
            .filter(|(_, s)| {
                let st = s.state();
                st.dirty && !st.unlinked
            })
            .map(|(&ino, _)| ino)
            .collect();
        let total = dirty.len();
        if total > 0 {
            log::info!("uploading {total} changed file(s)");
        }
        for (done, ino) in dirty.into_iter().enumerate() {
            match self.flush_ino(ino).await {
                Ok(()) => log::info!("pending upload {}/{total} done", done + 1),
                Err(e) => log::error!("pending upload {}/{total} failed: {e}", done + 1),
            }
        }
        let recovery = self.recover().await;
        if recovery.completed > 0 {
            log::info!("completed {} journaled upload(s)", recovery.completed);
        }
        self.pending_uploads()
    }

    /// Uploads not done yet: journal entries with content, and changed files not journaled.
    pub fn pending_uploads(&self) -> usize {
        self.pending_upload_list().len()
    }

    /// The uploads not done yet, journaled ones first (in journal order), then changed files
    /// not journaled yet; for `yetifs status`.
    pub fn pending_upload_list(&self) -> Vec<PendingUpload> {
        let written: HashSet<u64> = lock(&self.staged)
            .values()
            .filter(|s| {
                let st = s.state();
                st.dirty && !st.unlinked
            })
            .map(|s| s.file.key())
            .collect();
        // A file being written has the entry `create` made for it, which stands for nothing
        // closed yet: it is a changed file still open.
        let journaled: Vec<Entry> = self
            .staging
            .journal()
            .entries()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| !(e.size == 0 && e.uploaded.is_none() && written.contains(&e.key)))
            .collect();
        let keys: HashSet<u64> = journaled.iter().map(|e| e.key).collect();
        let changed: Vec<(Ino, u64)> = lock(&self.staged)
            .iter()
            .filter_map(|(&ino, s)| {
                let st = s.state();
                (st.dirty && !st.unlinked && !keys.contains(&s.file.key()))
                    .then_some((ino, st.size))
            })
            .collect();
        let mut list: Vec<PendingUpload> = journaled
            .into_iter()
            .map(|e| PendingUpload {
                name: e.name,
                size: e.size,
                journaled: true,
            })
            .collect();
        list.extend(changed.into_iter().map(|(ino, size)| {
            PendingUpload {
                name: self
                    .destination(ino)
                    .map_or_else(|_| format!("inode {ino}"), |(_, name, _)| name),
                size,
                journaled: false,
            }
        }));
        list
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
        let source_clean = self.staged_of(source_ino).is_none_or(|s| !s.state().dirty);
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
        if staged.state().size != 0 {
            return Err(FsError::Unsupported);
        }
        let (folder, name, replaces) = self.destination(target)?;
        let copy = self.remote.copy_file(source.id, folder).await?;
        let now = SystemTime::now();
        let overlay = staged.state().overlay;
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
            let mut st = staged.state();
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
