//! Open files: opening for reading and writing, reads, writes, truncation, preallocation, times
//! and mode, flush and release. A file opened for writing gets a staged copy under the cache
//! directory; the server's content is copied into it only when a change needs it (a write, a
//! truncation to a non-zero size), and reads of a staged file are served from it, so they see
//! what was written. Flushing a changed file uploads it (see `upload`).
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::staged::{Staged, StagedState};
use crate::cache::{ItemKey, Overlay};
use crate::fs::attr::Attr;
use crate::fs::connectivity::is_unreachable;
use crate::fs::core::{Core, Dates, Opened};
use crate::fs::error::FsError;
use crate::fs::handles::Handle;
use crate::fs::namespace::inode::{Ino, NodeData};
use crate::remote::{FileKind, Remote, RemoteError};
use crate::staging::{Durability, Entry};

/// Bytes asked of the read path at once when a file's server content is copied in.
const FILL_CHUNK: u32 = 4 << 20;

/// How often `stage` looks again at an inode that changed under it.
const STAGE_TRIES: usize = 5;
/// How long `stage` waits for an upload completing to give the inode its server file.
const STAGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// Changes `setattr` asks for; `None` leaves a field as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New size (truncate or extend with zeros).
    pub size: Option<u64>,
    /// New mode; only the permission bits are kept.
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New access time.
    pub atime: Option<SystemTime>,
    /// New modification time.
    pub mtime: Option<SystemTime>,
    /// The handle the change came through (`ftruncate`), if any.
    pub fh: Option<u64>,
}

impl<R: Remote> Core<R> {
    /// The staged copy of `ino`, if it has one.
    pub(in crate::fs) fn staged_of(&self, ino: Ino) -> Option<Arc<Staged>> {
        self.writes.lock_staged().get(&ino).cloned()
    }

    /// The staged copy of file `ino`, made if it has none. What the inode stands for can change
    /// meanwhile (an upload finishing makes a local file a server file): a copy is made only
    /// of what it still stands for, looking again a few times.
    pub(in crate::fs) async fn stage(&self, ino: Ino) -> Result<Arc<Staged>, FsError> {
        for _ in 0..STAGE_TRIES {
            if let Some(staged) = self.staged_of(ino) {
                return Ok(staged);
            }
            let data = self.node_data(ino)?;
            let made = match &data {
                NodeData::File(f) => {
                    let shown = self.attr_of_data(ino, &data, Dates::Wait).await?;
                    let (kind, carried) = self.file_carried(f);
                    let key = self.writes.staging.new_key();
                    let state = StagedState {
                        size: f.size,
                        base: (f.size > 0).then_some((f.id, f.size)),
                        dirty: false,
                        version: 0,
                        written: shown.mtime,
                        overlay: carried,
                        unlinked: false,
                        symlink: kind == FileKind::Symlink,
                    };
                    Staged::new(self.writes.staging.create(key)?, state)
                }
                NodeData::Local(local) => {
                    if let Some(detached) = self.writes.lock_detached().remove(&local.key) {
                        return Ok(self.attach(ino, detached));
                    }
                    match self.writes.staging.journal().get(local.key)? {
                        Some(row) => self.restaged(&row)?,
                        // Its upload is completing: the inode is the server's file in a moment.
                        None => {
                            tokio::time::sleep(STAGE_PAUSE).await;
                            continue;
                        }
                    }
                }
                NodeData::Root | NodeData::Folder(_) => return Err(FsError::IsDir),
            };
            let current = self.node_data(ino)?.key();
            if current != data.key() {
                if matches!(data, NodeData::File(_)) {
                    self.writes.staging.remove(made.file.key());
                }
                continue;
            }
            let made = Arc::new(made);
            let kept = self.attach(ino, Arc::clone(&made));
            // Another task staged the file meanwhile: its copy wins, this one's file goes.
            if !Arc::ptr_eq(&kept, &made) && matches!(data, NodeData::File(_)) {
                self.writes.staging.remove(made.file.key());
            }
            return Ok(kept);
        }
        log::warn!("inode {ino} kept changing while a staged copy was made of it");
        Err(FsError::NotFound)
    }

    /// Makes `staged` the staged copy of `ino`, unless it has one already; returns the one it has.
    pub(in crate::fs) fn attach(&self, ino: Ino, staged: Arc<Staged>) -> Arc<Staged> {
        Arc::clone(self.writes.lock_staged().entry(ino).or_insert(staged))
    }

    /// Forgets the staged copy of `ino` once no handle is open on it and the server has its
    /// content (or it was deleted). Staged bytes the journal still needs are kept.
    pub(in crate::fs) fn unstage_if_idle(&self, ino: Ino) {
        if self.ns.lock_tree().inodes.open_handles(ino) > 0 {
            return;
        }
        let key = {
            let mut staged = self.writes.lock_staged();
            let Some(entry) = staged.get(&ino) else {
                return;
            };
            let idle = {
                let st = entry.lock_state();
                !st.dirty || st.unlinked
            };
            if !idle {
                return;
            }
            let key = entry.file.key();
            staged.remove(&ino);
            key
        };
        let needed = match self.writes.staging.journal().get(key) {
            Ok(entry) => entry.is_some(),
            Err(e) => {
                log::warn!("cannot read the journal: {e}");
                true
            }
        };
        if !needed {
            self.writes.staging.remove(key);
        }
    }

    /// Copies the server's content into the staged file, if it is not there yet.
    pub(in crate::fs) async fn materialize(&self, staged: &Staged) -> Result<(), FsError> {
        if staged.lock_state().base.is_none() {
            return Ok(());
        }
        let _fill = staged.fill.lock().await;
        let Some((id, size)) = staged.lock_state().base else {
            return Ok(());
        };
        let reader = self.reads.content.open(id, size);
        let mut offset = 0;
        while offset < size {
            let chunk = reader.read(offset, FILL_CHUNK).await?;
            if chunk.is_empty() {
                return Err(RemoteError::Integrity(format!(
                    "file {id} ended at {offset} of {size} bytes"
                ))
                .into());
            }
            staged.file.write_at(offset, chunk.clone()).await?;
            offset += chunk.len() as u64;
        }
        staged.lock_state().base = None;
        Ok(())
    }

    /// Refuses a file growing past the package's upload limit. A limit that cannot be read
    /// now is checked again before the upload.
    async fn check_size(&self, size: u64) -> Result<(), FsError> {
        match self.limits().await {
            Ok(limits) => match limits.max_upload_size {
                Some(max) if size > max => Err(FsError::TooLarge { size, max }),
                _ => Ok(()),
            },
            Err(e) => {
                log::debug!("package limits unavailable: {e}");
                Ok(())
            }
        }
    }

    /// Cuts or extends the staged file to `len` bytes; the server's content is copied in first
    /// unless nothing of it stays.
    pub(in crate::fs) async fn truncate_staged(
        &self,
        staged: &Staged,
        len: u64,
    ) -> Result<(), FsError> {
        if len == 0 {
            let _fill = staged.fill.lock().await;
            let empty = {
                let st = staged.lock_state();
                st.size == 0 && st.base.is_none()
            };
            if !empty {
                let _turn = staged.turn.lock().await;
                staged.file.set_len(0).await?;
                staged.changed(|st| {
                    st.size = 0;
                    st.base = None;
                });
            }
            return Ok(());
        }
        self.materialize(staged).await?;
        if staged.lock_state().size == len {
            return Ok(());
        }
        self.check_size(len).await?;
        let _turn = staged.turn.lock().await;
        staged.file.set_len(len).await?;
        staged.changed(|st| st.size = len);
        Ok(())
    }

    /// The inode handle `fh` is open on.
    pub(in crate::fs) fn handle_ino(&self, fh: u64) -> Result<Ino, FsError> {
        match self.ns.lock_tree().handles.get(fh) {
            Some(Handle::File { ino, .. }) => Ok(*ino),
            _ => Err(FsError::BadHandle),
        }
    }

    /// The inode and append mode of handle `fh`, which must be open for writing.
    pub(in crate::fs) fn write_handle(&self, fh: u64) -> Result<(Ino, bool), FsError> {
        match self.ns.lock_tree().handles.get(fh) {
            Some(Handle::File {
                ino,
                write: true,
                append,
                ..
            }) => Ok((*ino, *append)),
            _ => Err(FsError::BadHandle),
        }
    }

    /// Records that the file open as `fh` was changed through it, so that its `close` uploads.
    pub(in crate::fs) fn changed_through(&self, fh: u64) {
        if let Some(Handle::File { changed, .. }) = self.ns.lock_tree().handles.get_mut(fh) {
            *changed = true;
        }
    }

    /// Opens file `ino` with the `open(2)` flags `flags`. Opening for writing stages the file
    /// (without copying its content yet); `O_TRUNC` empties it.
    pub async fn open(&self, ino: Ino, flags: i32) -> Result<Opened, FsError> {
        if self.node_data(ino)?.is_dir() {
            return Err(FsError::IsDir);
        }
        let write = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if write || flags & libc::O_TRUNC != 0 {
            self.writable()?;
            let staged = self.stage(ino).await?;
            if flags & libc::O_TRUNC != 0 {
                self.truncate_staged(&staged, 0).await?;
            }
        }
        let keep_cache = self.staged_of(ino).is_none();
        let mut state = self.ns.lock_tree();
        if state.inodes.get(ino).is_none() {
            return Err(FsError::NotFound);
        }
        state.inodes.opened(ino);
        let fh = state.handles.insert(Handle::File {
            ino,
            write,
            append: flags & libc::O_APPEND != 0,
            changed: write && flags & libc::O_TRUNC != 0,
        });
        Ok(Opened { fh, keep_cache })
    }

    /// Up to `size` bytes of the file open as `fh`, from `offset`; short only at the end. A
    /// staged file is read from its staged bytes. While the server is unreachable only cached
    /// content is read; the rest fails at once with `EIO`.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Bytes, FsError> {
        let ino = self.handle_ino(fh)?;
        let data = self.node_data(ino)?;
        let staged = match (self.staged_of(ino), &data) {
            (Some(staged), _) => Some(staged),
            (None, NodeData::Local(_)) => Some(self.stage(ino).await?),
            (None, _) => None,
        };
        let (id, len) = match (staged, data) {
            (Some(staged), _) => {
                let (len, base) = {
                    let st = staged.lock_state();
                    (st.size, st.base)
                };
                match base {
                    Some(base) => base,
                    None if offset >= len => return Ok(Bytes::new()),
                    None => {
                        let n = u64::from(size).min(len - offset) as usize;
                        return Ok(Bytes::from(staged.file.read_at(offset, n).await?));
                    }
                }
            }
            (None, NodeData::File(f)) => (f.id, f.size),
            (None, _) => return Err(FsError::IsDir),
        };
        let reader = {
            let mut readers = self.reads.lock_readers();
            match readers.get(&fh) {
                Some((open, reader)) if *open == id => Arc::clone(reader),
                _ => {
                    let reader = Arc::new(self.reads.content.open(id, len));
                    readers.insert(fh, (id, Arc::clone(&reader)));
                    reader
                }
            }
        };
        if !self.link.is_online() && !self.reads.content.is_cached(id, len, offset, size) {
            return Err(FsError::Unreachable);
        }
        let read = reader.read(offset, size).await;
        if let Err(e) = &read {
            if is_unreachable(e) {
                self.link.lost(&e.to_string());
            }
        }
        Ok(read?)
    }

    /// Writes `data` at `offset` (at the end for `O_APPEND` handles) into the staged file.
    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32, FsError> {
        let (ino, append) = self.write_handle(fh)?;
        if data.is_empty() {
            // A write of nothing changes nothing, not even the times.
            return Ok(0);
        }
        let staged = self.stage(ino).await?;
        self.materialize(&staged).await?;
        let start = if append {
            staged.lock_state().size
        } else {
            offset
        };
        let end = start + data.len() as u64;
        if end > staged.lock_state().size {
            self.check_size(end).await?;
        }
        {
            // Never under an upload: it sends the bytes as they were when it started.
            let _turn = staged.turn.lock().await;
            staged.file.write_at(start, data.to_vec()).await?;
            staged.changed(|st| st.size = st.size.max(end));
        }
        self.changed_through(fh);
        u32::try_from(data.len()).map_err(|_| FsError::Invalid("write larger than 4 GiB"))
    }

    /// `fallocate`: mode 0 extends the file with zeros, `FALLOC_FL_KEEP_SIZE` only checks the
    /// handle (space on the server cannot be reserved); other modes are not supported.
    pub async fn fallocate(
        &self,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<(), FsError> {
        let (ino, _) = self.write_handle(fh)?;
        if mode & !libc::FALLOC_FL_KEEP_SIZE != 0 {
            return Err(FsError::Unsupported);
        }
        let end = offset.saturating_add(length);
        let staged = self.stage(ino).await?;
        if mode & libc::FALLOC_FL_KEEP_SIZE != 0 || end <= staged.lock_state().size {
            return Ok(());
        }
        self.truncate_staged(&staged, end).await?;
        self.changed_through(fh);
        Ok(())
    }

    /// Changes size, mode, owner and times of `ino`. A file the server has gets the new
    /// attributes with one `file/edit` (a file with an upload pending takes them into it);
    /// folders keep theirs in the local overlay. A size change without an open handle
    /// (`truncate(2)`) is uploaded at once. A `chown` to the owner shown already sends nothing.
    /// Every call is a status change (ctime now); a file's atime is kept on this mount only
    /// (see `local_times`).
    pub async fn setattr(&self, ino: Ino, changes: SetAttr) -> Result<Attr, FsError> {
        self.writable()?;
        let data = self.node_data(ino)?;
        if let Some(size) = changes.size {
            if data.is_dir() {
                return Err(FsError::IsDir);
            }
            {
                // Held like an open handle while the truncation runs: the release of the file's
                // last handle meanwhile must not drop the staged copy being changed.
                let _in_use = InUse::new(self, ino);
                let staged = self.stage(ino).await?;
                self.truncate_staged(&staged, size).await?;
            }
            if let Some(fh) = changes.fh {
                self.changed_through(fh);
            }
            if self.ns.lock_tree().inodes.open_handles(ino) == 0 {
                self.closed(ino).await?;
                self.unstage_if_idle(ino);
            }
        }
        let before = self.getattr(ino).await?;
        let uid = changes.uid.filter(|&uid| uid != before.uid);
        let gid = changes.gid.filter(|&gid| gid != before.gid);
        let times = changes.atime.is_some() || changes.mtime.is_some();
        if changes.mode.is_some() || uid.is_some() || gid.is_some() || times {
            let change = |overlay: &mut Overlay| {
                if let Some(mode) = changes.mode {
                    overlay.mode = Some(mode & 0o7777);
                }
                if uid.is_some() {
                    overlay.uid = uid;
                }
                if gid.is_some() {
                    overlay.gid = gid;
                }
                if let Some(atime) = changes.atime {
                    overlay.atime = Some(atime);
                }
                if let Some(mtime) = changes.mtime {
                    overlay.mtime = Some(mtime);
                }
            };
            self.set_overlay(ino, before.mtime, change).await?;
        }
        if changes.mtime.is_some() {
            self.times.mtime_set(ino);
        }
        self.times.status_changed(ino);
        let attr = self.getattr(ino).await?;
        // Where a file's times are kept there is room for its mtime only: its atime is kept on
        // this mount. A `utimens` of the mtime alone (`touch -m`) leaves the atime as it was.
        let atime = changes.atime.or(changes.mtime.map(|_| before.atime));
        match atime {
            Some(atime) if !data.is_dir() => {
                self.times.atime_set(ino, atime, attr.mtime);
                Ok(Attr { atime, ..attr })
            }
            _ => Ok(attr),
        }
    }

    /// Applies `change` to the times, mode and owner of `ino`, wherever they are kept: on the
    /// server for a file it has in its current state, in the staged copy and its journal entry
    /// for a file with an upload pending, in the metadata store for folders. `mtime` is what
    /// `ino` shows now.
    async fn set_overlay(
        &self,
        ino: Ino,
        mtime: SystemTime,
        change: impl Fn(&mut Overlay),
    ) -> Result<(), FsError> {
        let data = self.node_data(ino)?;
        let staged = self.staged_of(ino).filter(|_| !data.is_dir());
        let key = match &data {
            NodeData::Root => Some(ItemKey::Folder(0)),
            NodeData::Folder(f) => Some(ItemKey::Folder(f.id)),
            NodeData::File(_) | NodeData::Local(_) => None,
        };
        if let Some(key) = key {
            let mut overlay = self.meta.overlay(key).unwrap_or_default();
            change(&mut overlay);
            self.meta.set_overlay(key, overlay).await?;
            return Ok(());
        }
        if let Some(staged) = &staged {
            let _turn = staged.turn.lock().await;
            let (dirty, overlay, written) = {
                let mut st = staged.lock_state();
                change(&mut st.overlay);
                (st.dirty, st.overlay, st.written)
            };
            if dirty {
                return self
                    .journal_attributes(staged.file.key(), |entry| {
                        if entry.uploaded.is_none() {
                            entry.set_attributes(&overlay, Some(written));
                        }
                    })
                    .await;
            }
        }
        match self.node_data(ino)? {
            NodeData::File(file) => match self.writes.staging.journal().by_uploaded(file.id)? {
                // Uploaded, its metadata still to be given: the change goes with it.
                Some(mut row) => {
                    let mut overlay = row.overlay();
                    change(&mut overlay);
                    row.set_attributes(&overlay, row.mtime);
                    self.writes
                        .staging
                        .journal()
                        .upsert(&row, Durability::Lazy)
                        .await?;
                    let mut shown = file;
                    shown.file_type = crate::fs::write::upload::entry_meta(&row).encode();
                    self.became(ino, NodeData::File(shown)).await;
                    Ok(())
                }
                None => self.retag(ino, &file, mtime, change).await,
            },
            NodeData::Local(local) => {
                self.journal_attributes(local.key, |entry| {
                    let mut overlay = entry.overlay();
                    change(&mut overlay);
                    entry.set_attributes(&overlay, entry.mtime);
                })
                .await
            }
            NodeData::Root | NodeData::Folder(_) => Ok(()),
        }
    }

    /// Applies `change` to the journal entry of `key`, if it has one yet.
    async fn journal_attributes(
        &self,
        key: u64,
        change: impl FnOnce(&mut Entry),
    ) -> Result<(), FsError> {
        let journal = self.writes.staging.journal();
        if let Some(mut entry) = journal.get(key)? {
            change(&mut entry);
            journal.upsert(&entry, Durability::Lazy).await?;
        }
        Ok(())
    }

    /// What a close of changed file `ino` does: without write-back, has it uploaded and returns
    /// the outcome; with write-back, journals it and has the upload start after the delay.
    pub(in crate::fs) async fn closed(&self, ino: Ino) -> Result<(), FsError> {
        match self.writes.writeback.delay() {
            Some(delay) => self.journal_now(ino, delay).await,
            None => self.upload_now(ino).await,
        }
    }

    /// `flush` (each `close(2)`): a file changed through this handle is uploaded now, so that
    /// the caller learns the outcome (with write-back: journaled, and uploaded soon); a handle
    /// that changed nothing uploads nothing.
    pub async fn flush(&self, fh: u64) -> Result<(), FsError> {
        match self.ns.lock_tree().handles.get(fh) {
            Some(Handle::File { changed: false, .. }) => return Ok(()),
            Some(Handle::File { .. }) => {}
            _ => return Err(FsError::BadHandle),
        }
        let ino = self.handle_ino(fh)?;
        self.closed(ino).await?;
        // Until it writes again, the handle has nothing more to upload: its `release` (which
        // follows the last `flush`) does not send the file again for another handle's writes.
        if let Some(Handle::File { changed, .. }) = self.ns.lock_tree().handles.get_mut(fh) {
            *changed = false;
        }
        Ok(())
    }

    /// `fsync`: the file's changes, through whichever handle, are uploaded now, with or without
    /// write-back.
    pub async fn fsync(&self, fh: u64) -> Result<(), FsError> {
        match self.ns.lock_tree().handles.get(fh) {
            Some(Handle::File { write: false, .. }) => return Ok(()),
            Some(Handle::File { .. }) => {}
            _ => return Err(FsError::BadHandle),
        }
        let ino = self.handle_ino(fh)?;
        self.upload_now(ino).await
    }

    /// Closes file handle `fh`; a changed file not uploaded yet is uploaded first (a failure is
    /// logged and the file stays staged and journaled for a retry).
    pub async fn release(&self, fh: u64) -> Result<(), FsError> {
        let ino = self.handle_ino(fh)?;
        let changed = matches!(
            self.ns.lock_tree().handles.get(fh),
            Some(Handle::File { changed: true, .. })
        );
        let dirty = changed
            && self.staged_of(ino).is_some_and(|s| {
                let st = s.lock_state();
                st.dirty && !st.unlinked
            });
        if dirty {
            if let Err(e) = self.closed(ino).await {
                // The upload said why at warn; the file stays staged for a retry.
                log::debug!("file {ino} closed with its upload pending: {e}");
            }
        }
        self.release_handle(fh)?;
        self.unstage_if_idle(ino);
        Ok(())
    }
}

/// An operation on a file that is not made through a handle (a truncation by path), counted
/// as an open handle while it runs, so that `unstage_if_idle` keeps the file's staged copy.
struct InUse<'a, R: Remote> {
    core: &'a Core<R>,
    ino: Ino,
}

impl<'a, R: Remote> InUse<'a, R> {
    fn new(core: &'a Core<R>, ino: Ino) -> Self {
        core.ns.lock_tree().inodes.opened(ino);
        Self { core, ino }
    }
}

impl<R: Remote> Drop for InUse<'_, R> {
    fn drop(&mut self) {
        let mut tree = self.core.ns.lock_tree();
        tree.inodes.closed(self.ino);
        tree.drop_if_unreferenced(self.ino);
    }
}
