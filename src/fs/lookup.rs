//! Finding things: lookups and the kernel's lookup counts, directory handles, and `readdir` /
//! `readdirplus` served from a snapshot of the listing taken at `opendir`, so that a listing
//! refreshed midway does not skip or repeat entries.
use std::sync::Arc;

use super::attr::{Attr, Kind};
use super::core::{Core, Dates, DirEntry, DirEntryPlus};
use super::error::FsError;
use super::handles::Handle;
use super::namespace::changes::within_name_max;
use super::namespace::inode::{Ino, NodeData};
use super::namespace::listed::Listed;
use crate::remote::Remote;

/// Entries one `readdir` or `readdirplus` answer carries at most. The kernel takes a page of
/// them per call (about 25 with attributes); the rest would be built, and their attributes
/// worked out, again on every call of a large directory.
const READDIR_BATCH: usize = 256;

impl<R: Remote> Core<R> {
    /// Resolves `name` in directory `parent`; counts one kernel lookup of the result. A name
    /// longer than any entry may have is `ENAMETOOLONG`, not `ENOENT`.
    pub async fn lookup(&self, parent: Ino, name: &str) -> Result<Attr, FsError> {
        within_name_max(name)?;
        let listed = self.children(parent).await?;
        let child = listed.find(name).ok_or(FsError::NotFound)?;
        let data = self.node_data(child.ino)?;
        let attr = self.attr_of_data(child.ino, &data, Dates::IfKnown).await?;
        let mut state = self.ns.lock_tree();
        if state.inodes.get(child.ino).is_none() {
            return Err(FsError::NotFound);
        }
        state.inodes.add_lookups(child.ino, 1);
        Ok(attr)
    }

    /// Counts kernel lookups the adapter handed out itself (entries of a readdirplus reply).
    pub fn add_lookups(&self, inos: &[Ino]) {
        let mut state = self.ns.lock_tree();
        for &ino in inos {
            state.inodes.add_lookups(ino, 1);
        }
    }

    /// The kernel forgot `n` lookups of `ino`; the inode's data goes once nothing refers to it.
    pub fn forget(&self, ino: Ino, n: u64) {
        let mut state = self.ns.lock_tree();
        state.inodes.forget(ino, n);
        state.drop_if_unreferenced(ino);
    }

    /// Opens directory `ino` for reading.
    pub fn opendir(&self, ino: Ino) -> Result<u64, FsError> {
        let mut state = self.ns.lock_tree();
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
        let kept = match self.ns.lock_tree().handles.get(fh) {
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
        if let Some(Handle::Dir { snapshot, .. }) = self.ns.lock_tree().handles.get_mut(fh) {
            *snapshot = Some(Arc::clone(&listed));
        }
        self.reading_dir(ino);
        Ok(listed)
    }

    /// The entries of directory `ino` from `offset` on, at most `READDIR_BATCH` of them (empty
    /// only at the end): `.` and `..` first, then the children sorted by name.
    pub async fn readdir(&self, ino: Ino, fh: u64, offset: u64) -> Result<Vec<DirEntry>, FsError> {
        let listed = self.dir_snapshot(ino, fh, offset).await?;
        let parent = self.parent_of(ino).ok_or(FsError::NotFound)?;
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
            let state = self.ns.lock_tree();
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
        let mut state = self.ns.lock_tree();
        let handle = state.handles.remove(fh).ok_or(FsError::BadHandle)?;
        self.reads.lock_readers().remove(&fh);
        state.inodes.closed(handle.ino());
        state.drop_if_unreferenced(handle.ino());
        Ok(())
    }

    /// The directory `ino` is in, if the inode is known.
    pub(super) fn parent_of(&self, ino: Ino) -> Option<Ino> {
        self.ns.lock_tree().inodes.get(ino).map(|node| node.parent)
    }
}
