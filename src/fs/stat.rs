//! What a `stat` shows and what the kernel asks about an item besides its content: attributes
//! (with the upload date a file without carried metadata needs, fetched once per id and kept),
//! the package's limits behind `statfs`, the `user.yetifs.*` extended attributes and `access`.

use tokio::time::Instant;

use super::attr::{self, Attr};
use super::connectivity::is_unreachable;
use super::core::{Core, Dates, StatFs};
use super::error::FsError;
use super::namespace::inode::{Ino, LocalFile, NodeData};
use super::namespace::names;
use super::xattr;
use crate::cache::meta::epoch_secs;
use crate::cache::{ItemKey, Overlay};
use crate::remote::{Limits, Remote};
use crate::staging::Entry;

/// What `statfs` reports as the total size when the package sets no storage limit.
const UNLIMITED_STORAGE: u64 = 1 << 50;
/// The free inodes `statfs` reports: the server sets no limit on the number of files.
const FREE_INODES: u64 = u32::MAX as u64;
/// The block size `statfs` reports.
const STATFS_BLOCK: u64 = 4096;

impl<R: Remote> Core<R> {
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
        if self.ns.lock_tree().inodes.is_unlinked(attr.ino) {
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
        let entry = self
            .writes
            .staging
            .journal()
            .get(local.key)
            .unwrap_or_else(|e| {
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

    /// The attributes of `ino`.
    pub async fn getattr(&self, ino: Ino) -> Result<Attr, FsError> {
        let data = self.node_data(ino)?;
        self.attr_of_data(ino, &data, Dates::Wait).await
    }

    /// The package's limits, fetched at most once per directory TTL; while the server cannot
    /// be reached, the last ones known (or none).
    pub(super) async fn limits(&self) -> Result<Limits, FsError> {
        let ttl = self.options.dir_ttl;
        let cached = || {
            self.limits
                .lock()
                .as_ref()
                .filter(|(at, _)| at.elapsed() < ttl)
                .map(|(_, limits)| limits.clone())
        };
        let fetch = async {
            let known = || self.limits.lock().as_ref().map(|(_, l)| l.clone());
            if !self.link.is_online() {
                return Ok(known().unwrap_or_default());
            }
            let fetched = self.remote.limits().await;
            self.link.observe(&fetched);
            match fetched {
                Ok(limits) => {
                    *self.limits.lock() = Some((Instant::now(), limits.clone()));
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
            let state = self.ns.lock_tree();
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
