//! Changes to the tree: create, mkdir, rmdir, unlink, rename. Each is one or two server calls,
//! and the cached listings are edited to match instead of being fetched again. Names the server
//! would store differently are refused, never silently changed.
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cache::{ItemKey, Overlay};
use crate::fs::attr::{Attr, Kind, DIR_PERM};
use crate::fs::core::{Core, Opened};
use crate::fs::error::FsError;
use crate::fs::namespace::inode::{Ino, LocalFile, NodeData, ROOT_INO};
use crate::fs::namespace::listed::Child;
use crate::fs::namespace::names::{self, Unstorable};
use crate::fs::write::staged::{Staged, StagedState};
use crate::remote::file_meta::RCLONE_LINK_SUFFIX;
use crate::remote::{FolderEntry, Remote, RemoteError};
use crate::staging::{Durability, Entry};

/// The server name for `shown`, or the errno that says why the server cannot keep it.
fn server_name(shown: &str) -> Result<String, FsError> {
    names::storable(shown).map_err(|why| match why {
        Unstorable::TooLong => FsError::NameTooLong,
        Unstorable::OutsideBmp => FsError::BadName,
        Unstorable::Altered => {
            FsError::Invalid("the server trims white space and strips <tags> from names")
        }
        Unstorable::Reserved => {
            FsError::Invalid("names starting with .yetifs-deleted- are reserved")
        }
    })
}

/// Refuses a name longer than a directory entry may be: no entry has it, and none can get it.
/// The kernel passes names of up to 1,024 bytes.
pub(in crate::fs) fn within_name_max(name: &str) -> Result<(), FsError> {
    if name.len() > names::NAME_MAX {
        Err(FsError::NameTooLong)
    } else {
        Ok(())
    }
}

/// A server call whose item is already gone counts as done.
fn gone_is_done(result: Result<(), RemoteError>) -> Result<(), FsError> {
    match result {
        Ok(()) | Err(RemoteError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl<R: Remote> Core<R> {
    /// The entry `name` of directory `parent`.
    async fn child(&self, parent: Ino, name: &str) -> Result<Child, FsError> {
        within_name_max(name)?;
        self.children(parent)
            .await?
            .find(name)
            .cloned()
            .ok_or(FsError::NotFound)
    }

    /// Whether directory `dir` is `ancestor` or lies below it.
    fn is_within(&self, dir: Ino, ancestor: Ino) -> bool {
        let state = self.ns.lock_tree();
        let mut current = dir;
        loop {
            if current == ancestor {
                return true;
            }
            match state.inodes.get(current) {
                Some(node) if current != ROOT_INO => current = node.parent,
                _ => return false,
            }
        }
    }

    /// Creates file `name` in `parent` and opens it with `flags`; counts one lookup. The file
    /// is uploaded when it is closed, empty or not.
    pub async fn create(
        &self,
        parent: Ino,
        name: &str,
        mode: u32,
        flags: i32,
    ) -> Result<(Attr, Opened), FsError> {
        self.writable()?;
        within_name_max(name)?;
        if let Some(child) = self.children(parent).await?.find(name).cloned() {
            if flags & libc::O_EXCL != 0 {
                return Err(FsError::Exists);
            }
            let opened = self.open(child.ino, flags).await?;
            let attr = self.getattr(child.ino).await?;
            self.add_lookups(&[child.ino]);
            return Ok((attr, opened));
        }
        let (ino, staged) = self.new_file(parent, name, mode, false).await?;
        let opened = self.open(ino, flags & !libc::O_TRUNC).await?;
        self.changed_through(opened.fh);
        Ok((
            self.shown_attr(staged.attr(ino, self.options.owner)),
            opened,
        ))
    }

    /// `mknod`: a regular file is created (and uploaded, empty) as by `open(O_CREAT)` and
    /// `close`; fifos, sockets and devices cannot be stored (`EPERM`). Counts one lookup.
    pub async fn mknod(&self, parent: Ino, name: &str, mode: u32) -> Result<Attr, FsError> {
        if mode & libc::S_IFMT != libc::S_IFREG && mode & libc::S_IFMT != 0 {
            return Err(FsError::NotPermitted);
        }
        self.writable()?;
        within_name_max(name)?;
        if self.children(parent).await?.find(name).is_some() {
            return Err(FsError::Exists);
        }
        let (ino, _) = self.new_file(parent, name, mode, false).await?;
        self.closed(ino).await?;
        self.unstage_if_idle(ino);
        self.getattr(ino).await
    }

    /// A new file `name` in `parent`, staged and journaled, not on the server yet, with one
    /// lookup counted; `symlink` makes it a link whose target is still to be written.
    pub(in crate::fs) async fn new_file(
        &self,
        parent: Ino,
        name: &str,
        mode: u32,
        symlink: bool,
    ) -> Result<(Ino, Arc<Staged>), FsError> {
        let stored_name = server_name(name)?;
        let folder = self.folder_of(parent)?;
        let key = self.writes.staging.new_key();
        let now = SystemTime::now();
        let mut entry = Entry::new(key, folder, stored_name.clone());
        entry.mtime = Some(now);
        entry.mode = Some(mode & 0o7777);
        entry.symlink = symlink;
        let file = self.writes.staging.create(key)?;
        self.writes
            .staging
            .journal()
            .upsert(&entry, Durability::Lazy)
            .await?;
        let staged = Arc::new(Staged::new(
            file,
            StagedState {
                size: 0,
                base: None,
                dirty: true,
                version: 0,
                written: now,
                overlay: Overlay {
                    mode: entry.mode,
                    ..Overlay::default()
                },
                unlinked: false,
                symlink,
            },
        ));
        let local = LocalFile {
            key,
            folder,
            name: stored_name,
            size: 0,
            symlink,
        };
        let (ino, relisted) = {
            let mut state = self.ns.lock_tree();
            let ino = state
                .inodes
                .upsert(parent, name.to_owned(), NodeData::Local(local));
            state.inodes.add_lookups(ino, 1);
            let child = Child {
                name: name.to_owned(),
                ino,
                kind: if symlink { Kind::Symlink } else { Kind::File },
            };
            (ino, state.relist(parent, &[], Some(child)))
        };
        self.writes.lock_staged().insert(ino, Arc::clone(&staged));
        self.times.entries_changed(parent);
        self.expire_kept(relisted).await;
        Ok((ino, staged))
    }

    /// Creates directory `name` in `parent` with `folder/create`; counts one lookup.
    pub async fn mkdir(&self, parent: Ino, name: &str, mode: u32) -> Result<Attr, FsError> {
        self.writable()?;
        let stored_name = server_name(name)?;
        let folder = self.folder_of(parent)?;
        if self.children(parent).await?.find(name).is_some() {
            return Err(FsError::Exists);
        }
        let mut created = self.remote.create_folder(folder, &stored_name).await?;
        if created.name != stored_name {
            self.remote.rename_folder(created.id, &stored_name).await?;
            created.name = stored_name;
        }
        let perm = mode & 0o7777;
        if perm != u32::from(DIR_PERM) {
            let overlay = Overlay {
                mode: Some(perm),
                ..Overlay::default()
            };
            self.meta
                .set_overlay(ItemKey::Folder(created.id), overlay)
                .await?;
        }
        let (ino, relisted) = {
            let mut state = self.ns.lock_tree();
            let ino = state
                .inodes
                .upsert(parent, name.to_owned(), NodeData::Folder(created));
            state.inodes.add_lookups(ino, 1);
            let child = Child {
                name: name.to_owned(),
                ino,
                kind: Kind::Dir,
            };
            (ino, state.relist(parent, &[], Some(child)))
        };
        self.times.entries_changed(parent);
        self.expire_kept(relisted).await;
        self.getattr(ino).await
    }

    /// Deletes a folder so that no server generation brings it back: renamed to a reserved
    /// name (never listed) and remembered, then `folder/delete`.
    async fn delete_folder(&self, folder: &FolderEntry) -> Result<(), FsError> {
        let reserved = format!("{}{}", names::RESERVED_PREFIX, folder.id);
        gone_is_done(self.remote.rename_folder(folder.id, &reserved).await)?;
        self.hide_folder(folder.id);
        if let Err(e) = gone_is_done(self.remote.delete_folder(folder.id).await) {
            if let Err(back) = self.remote.rename_folder(folder.id, &folder.name).await {
                log::error!("folder {} keeps its reserved name: {back}", folder.name);
            }
            self.ns.lock_hidden().folders.remove(&folder.id);
            return Err(e);
        }
        if let Err(e) = self.meta.remove(ItemKey::Folder(folder.id)).await {
            log::warn!("cannot forget the attributes of folder {}: {e}", folder.id);
        }
        Ok(())
    }

    /// Whether directory `dir` is empty on the server right now (a fresh listing).
    async fn is_empty_dir(&self, dir: Ino) -> Result<bool, FsError> {
        Ok(self
            .children_within(dir, Duration::ZERO)
            .await?
            .children()
            .is_empty())
    }

    /// Removes the empty directory `name` of `parent`.
    pub async fn rmdir(&self, parent: Ino, name: &str) -> Result<(), FsError> {
        self.writable()?;
        let child = self.child(parent, name).await?;
        let NodeData::Folder(folder) = self.node_data(child.ino)? else {
            return Err(FsError::NotDir);
        };
        if !self.is_empty_dir(child.ino).await? {
            return Err(FsError::NotEmpty);
        }
        self.delete_folder(&folder).await?;
        let relisted = {
            let mut state = self.ns.lock_tree();
            state.listings.remove(&child.ino);
            state.inodes.mark_unlinked(child.ino);
            state.relist(parent, &[child.ino], None)
        };
        self.times.status_changed(child.ino);
        self.times.entries_changed(parent);
        self.expire_kept(relisted).await;
        Ok(())
    }

    /// Deletes file `ino`: its server file, its journal entry, and any upload it was waiting
    /// for. Open handles keep reading the staged bytes.
    async fn remove_file(&self, ino: Ino) -> Result<(), FsError> {
        let staged = self.staged_of(ino);
        let _turn = match &staged {
            Some(staged) => Some(staged.turn.lock().await),
            None => None,
        };
        let journal = self.writes.staging.journal();
        let data = self.node_data(ino)?;
        if data.is_dir() {
            return Err(FsError::IsDir);
        }
        // The rows of the file: its staged copy's, and that of an upload of it whose last
        // steps are pending (the version that upload replaces goes too).
        let mut rows = Vec::new();
        if let Some(staged) = &staged {
            staged.lock_state().unlinked = true;
            rows.extend(journal.get(staged.file.key())?);
        }
        match &data {
            NodeData::File(f) => rows.extend(journal.by_uploaded(f.id)?),
            NodeData::Local(l) => rows.extend(journal.get(l.key)?),
            NodeData::Root | NodeData::Folder(_) => {}
        }
        let mut doomed = Vec::new();
        if let NodeData::File(f) = &data {
            doomed.push(f.id);
        }
        for row in &rows {
            if row.uploaded.is_some() {
                doomed.extend(row.uploaded);
                doomed.extend(row.replaces);
            }
        }
        doomed.sort_unstable();
        doomed.dedup();
        for id in doomed {
            self.delete_server_file(id).await?;
        }
        for row in rows {
            self.writes.lock_settling().remove(&row.key);
            journal.remove(row.key, Durability::Synced).await?;
        }
        self.ns.lock_tree().inodes.mark_unlinked(ino);
        self.times.status_changed(ino);
        self.unstage_if_idle(ino);
        Ok(())
    }

    /// Removes file `name` of `parent`.
    pub async fn unlink(&self, parent: Ino, name: &str) -> Result<(), FsError> {
        self.writable()?;
        let child = self.child(parent, name).await?;
        if self.node_data(child.ino)?.is_dir() {
            return Err(FsError::IsDir);
        }
        self.remove_file(child.ino).await?;
        let relisted = self.ns.lock_tree().relist(parent, &[child.ino], None);
        self.times.entries_changed(parent);
        self.expire_kept(relisted).await;
        Ok(())
    }

    /// Moves item `ino` into `folder` under `stored_name` on the server; returns its new data.
    async fn move_item(
        &self,
        ino: Ino,
        from: Option<u64>,
        folder: Option<u64>,
        stored_name: &str,
    ) -> Result<NodeData, FsError> {
        let staged = self.staged_of(ino);
        let _turn = match &staged {
            Some(staged) => Some(staged.turn.lock().await),
            None => None,
        };
        let data = match self.node_data(ino)? {
            NodeData::File(mut f) => {
                let stored_name = match names::link_stem(&f) {
                    Some(_) => format!("{stored_name}{RCLONE_LINK_SUFFIX}"),
                    None => stored_name.to_owned(),
                };
                if from != folder {
                    self.remote.move_file(f.id, folder).await?;
                }
                if f.name != stored_name {
                    self.remote.rename_file(f.id, &stored_name).await?;
                }
                f.folder = folder;
                f.name = stored_name;
                NodeData::File(f)
            }
            NodeData::Local(mut l) => {
                l.folder = folder;
                l.name = stored_name.to_owned();
                NodeData::Local(l)
            }
            NodeData::Folder(mut d) => {
                if from != folder {
                    self.remote.move_folder(d.id, folder).await?;
                }
                if d.name != stored_name {
                    self.remote.rename_folder(d.id, stored_name).await?;
                }
                d.parent = folder;
                d.name = stored_name.to_owned();
                NodeData::Folder(d)
            }
            NodeData::Root => return Err(FsError::Invalid("the root cannot move")),
        };
        let journal_key = match (&staged, &data) {
            (Some(staged), _) => Some(staged.file.key()),
            (None, NodeData::Local(l)) => Some(l.key),
            (None, NodeData::File(f)) => self
                .writes
                .staging
                .journal()
                .by_uploaded(f.id)?
                .map(|r| r.key),
            _ => None,
        };
        if let (Some(key), NodeData::File(f)) = (journal_key, &data) {
            // The name fix still to come must not undo the move.
            if let Some(known) = self.writes.lock_settling().get_mut(&key) {
                known.name.clone_from(&f.name);
                known.folder = f.folder;
            }
        }
        if let Some(key) = journal_key {
            let journal = self.writes.staging.journal();
            if let Some(mut entry) = journal.get(key)? {
                entry.folder = folder;
                entry.name = stored_name.to_owned();
                journal.upsert(&entry, Durability::Lazy).await?;
            }
        }
        Ok(data)
    }

    /// Renames `name` of `parent` to `newname` of `newparent`, replacing what is there only
    /// after the move succeeded. `RENAME_NOREPLACE` is honoured; `RENAME_EXCHANGE` and
    /// `RENAME_WHITEOUT` (which leaves a device file behind) are not supported (`EINVAL`), nor
    /// is moving a folder into its own subtree.
    pub async fn rename(
        &self,
        parent: Ino,
        name: &str,
        newparent: Ino,
        newname: &str,
        flags: u32,
    ) -> Result<(), FsError> {
        self.writable()?;
        if flags & libc::RENAME_EXCHANGE != 0 {
            return Err(FsError::Invalid("RENAME_EXCHANGE is not supported"));
        }
        if flags & libc::RENAME_WHITEOUT != 0 {
            return Err(FsError::Invalid("RENAME_WHITEOUT is not supported"));
        }
        let stored_name = server_name(newname)?;
        let source = self.child(parent, name).await?;
        let target = self.children(newparent).await?.find(newname).cloned();
        if target.as_ref().is_some_and(|t| t.ino == source.ino) {
            return Ok(());
        }
        if let Some(target) = &target {
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(FsError::Exists);
            }
            match (source.kind, target.kind) {
                (Kind::Dir, Kind::File) => return Err(FsError::NotDir),
                (Kind::File, Kind::Dir) => return Err(FsError::IsDir),
                (Kind::Dir, Kind::Dir) if !self.is_empty_dir(target.ino).await? => {
                    return Err(FsError::NotEmpty)
                }
                _ => {}
            }
        }
        if source.kind == Kind::Dir && self.is_within(newparent, source.ino) {
            return Err(FsError::Invalid("a folder cannot move into itself"));
        }
        let from = self.folder_of(parent)?;
        let to = self.folder_of(newparent)?;
        let data = self.move_item(source.ino, from, to, &stored_name).await?;
        if let Some(target) = &target {
            match self.node_data(target.ino)? {
                NodeData::Folder(folder) => {
                    self.delete_folder(&folder).await?;
                    self.ns.lock_tree().inodes.mark_unlinked(target.ino);
                    self.times.status_changed(target.ino);
                }
                _ => self.remove_file(target.ino).await?,
            }
        }
        let relisted = {
            let mut state = self.ns.lock_tree();
            let displaced = state.inodes.rekey(source.ino, data);
            state
                .inodes
                .place(source.ino, newparent, newname.to_owned());
            let mut removed: Vec<Ino> = target.iter().map(|t| t.ino).chain(displaced).collect();
            if parent == newparent {
                removed.push(source.ino);
            }
            let child = Child {
                name: newname.to_owned(),
                ino: source.ino,
                kind: source.kind,
            };
            let into = state.relist(newparent, &removed, Some(child));
            let out_of = if parent != newparent {
                state.relist(parent, &[source.ino], None)
            } else {
                None
            };
            into.into_iter().chain(out_of)
        };
        self.times.status_changed(source.ino);
        self.times.entries_changed(parent);
        self.times.entries_changed(newparent);
        self.expire_kept(relisted).await;
        Ok(())
    }
}
