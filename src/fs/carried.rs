//! What a file shows beyond its listing entry, and how a change of it reaches the server.
//!
//! A file carries its kind, times, mode and owner in its `fileType` (`remote::file_meta`), so
//! that every mount of the account shows the same. What it carries wins, field by field, over
//! the local overlay of the metadata store, which then only holds what this machine knows and
//! the server does not: attributes set by versions that kept them locally, and everything on a
//! server whose `file/edit` does not keep `fileType` (the edit reply tells; the mount says so
//! once and keeps the attributes on this machine).
//!
//! Each `utimens`, `chmod` or `chown` of a file the server has is one `file/edit`; a file with
//! an upload pending takes the change into that upload instead.
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::attr::Kind;
use super::core::Core;
use super::error::FsError;
use super::namespace::inode::{Ino, NodeData};
use crate::cache::{ItemKey, Overlay};
use crate::remote::{FileChange, FileEntry, FileKind, FileMeta, Remote};

/// The attributes of `overlay` that a file carries, as metadata of kind `kind`; a file with no
/// time of its own is pinned at `mtime`.
pub(super) fn meta_of(kind: FileKind, overlay: &Overlay, mtime: Option<SystemTime>) -> FileMeta {
    FileMeta {
        kind,
        mtime: overlay.mtime.or(mtime),
        mode: overlay.mode,
        uid: overlay.uid,
        gid: overlay.gid,
    }
}

impl<R: Remote> Core<R> {
    /// The kind of `file` and the attributes set on it through a mount: what it carries, else
    /// what this machine kept.
    pub(super) fn file_carried(&self, file: &FileEntry) -> (FileKind, Overlay) {
        let stored = self
            .meta
            .overlay(ItemKey::File(file.id))
            .unwrap_or_default();
        let (meta, rclone_link) = FileMeta::of_file(&file.name, &file.file_type);
        match meta {
            Some(meta) => {
                let carried = Overlay {
                    mtime: meta.mtime.or(stored.mtime),
                    atime: meta.mtime.or(stored.atime),
                    mode: meta.mode.or(stored.mode),
                    uid: meta.uid.or(stored.uid),
                    gid: meta.gid.or(stored.gid),
                    kind: Some(meta.kind),
                };
                (meta.kind, carried)
            }
            None => {
                let guessed = if rclone_link {
                    FileKind::Symlink
                } else {
                    FileKind::Regular
                };
                (stored.kind.unwrap_or(guessed), stored)
            }
        }
    }

    /// What kind of inode `data` is.
    pub(super) fn kind_of(&self, data: &NodeData) -> Kind {
        match data {
            NodeData::Root | NodeData::Folder(_) => Kind::Dir,
            NodeData::File(file) => Kind::of_file(self.file_carried(file).0),
            NodeData::Local(local) if local.symlink => Kind::Symlink,
            NodeData::Local(_) => Kind::File,
        }
    }

    /// `file` as the mount shows it: an empty file has no content, whatever the server holds
    /// for it (one byte, since it refuses empty uploads).
    pub(super) fn presented(&self, mut file: FileEntry) -> FileEntry {
        if self.file_carried(&file).0 == FileKind::Empty {
            file.size = 0;
        }
        file
    }

    /// Records what the server answered to an edit that sent `wanted` for file `id`: nothing
    /// more when it kept the value, else `meta` goes to the local overlay (said once per mount).
    pub(super) async fn kept_or_local(
        &self,
        id: u64,
        wanted: &str,
        answer: &FileEntry,
        meta: &FileMeta,
    ) -> Result<(), FsError> {
        let key = ItemKey::File(id);
        if answer.file_type.trim() == wanted {
            if self.meta.overlay(key).is_some() {
                self.meta.remove(key).await?;
            }
            return Ok(());
        }
        if !self.said_file_type_lost.swap(true, Ordering::Relaxed) {
            log::warn!(
                "this server does not keep the fileType field (sent {wanted:?}, got back {:?}): \
                 times, modes, owners, empty files and symlinks written here stay on this \
                 machine, and other mounts see plain files",
                answer.file_type
            );
        }
        let overlay = Overlay {
            mtime: meta.mtime,
            atime: None,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            kind: Some(meta.kind),
        };
        self.meta.set_overlay(key, overlay).await?;
        Ok(())
    }

    /// Gives server file `file` (inode `ino`) the attributes `change` makes of the ones it
    /// shows, with one `file/edit`; nothing is sent when nothing changes. `mtime` is what the
    /// file shows now, so that a file with no time of its own keeps it.
    pub(super) async fn retag(
        &self,
        ino: Ino,
        file: &FileEntry,
        mtime: SystemTime,
        change: impl Fn(&mut Overlay),
    ) -> Result<(), FsError> {
        let (kind, before) = self.file_carried(file);
        let mut after = before;
        change(&mut after);
        if meta_of(kind, &after, None) == meta_of(kind, &before, None) {
            return Ok(());
        }
        let meta = meta_of(kind, &after, Some(mtime));
        let wanted = meta.encode();
        let change = FileChange {
            name: None,
            file_type: Some(&wanted),
        };
        let answer = self.remote.edit_file(file.id, change).await?;
        self.kept_or_local(file.id, &wanted, &answer, &meta).await?;
        let mut shown = file.clone();
        shown.file_type = answer.file_type;
        let shown = self.presented(shown);
        self.became(ino, NodeData::File(shown)).await;
        Ok(())
    }
}
