//! The write path: files opened for writing get a staged copy (`files`, `staged`), and the
//! write-back component gets every staged file to the server (`writeback` schedules the jobs,
//! `upload` is the steps of one run). This module owns the write path's state and its locks.
use std::collections::HashMap;
use std::sync::Arc;

use crate::fs::namespace::inode::Ino;
use crate::remote::FileEntry;
use crate::staging::Staging;
use crate::sync::{Mutex, MutexGuard};

pub(in crate::fs) mod files;
pub(in crate::fs) mod staged;
pub(in crate::fs) mod upload;
pub(in crate::fs) mod writeback;

use self::staged::Staged;
use self::writeback::{WriteBack, WriteBackOptions};

/// What the write path holds. Its three maps are locked one at a time (none is taken while
/// another is held), each for short synchronous work; a `Staged` file's own lock comes after
/// any of them (see `fs` for the whole order).
pub(in crate::fs) struct Writes {
    /// Files being written, and the journal of pending uploads.
    pub(in crate::fs) staging: Staging,
    /// Every upload's schedule.
    pub(in crate::fs) writeback: WriteBack,
    /// Files with local content (being written, or waiting for their upload), by inode.
    staged: Mutex<HashMap<Ino, Arc<Staged>>>,
    /// Staged files of journal rows no inode holds yet, by key (see `upload`).
    detached: Mutex<HashMap<u64, Arc<Staged>>>,
    /// Uploads done whose last steps wait (see `upload`): the server's entry of each, by key.
    settling: Mutex<HashMap<u64, FileEntry>>,
    /// Uploads the server has stored whose id the journal may not hold yet: the server's file
    /// id of each, by key. A listing fetched in that window shows the server's file as the
    /// pending one, not beside it.
    landed: Mutex<HashMap<u64, u64>>,
}

impl Writes {
    /// The write path over `staging`, scheduling uploads as `options` say.
    pub(in crate::fs) fn new(staging: Staging, options: WriteBackOptions) -> Self {
        Self {
            staging,
            writeback: WriteBack::new(options),
            staged: Mutex::default(),
            detached: Mutex::default(),
            settling: Mutex::default(),
            landed: Mutex::default(),
        }
    }

    /// Takes the lock of the staged files by inode.
    pub(in crate::fs) fn lock_staged(&self) -> MutexGuard<'_, HashMap<Ino, Arc<Staged>>> {
        self.staged.lock()
    }

    /// Takes the lock of the staged files no inode holds, by journal key.
    pub(in crate::fs) fn lock_detached(&self) -> MutexGuard<'_, HashMap<u64, Arc<Staged>>> {
        self.detached.lock()
    }

    /// Takes the lock of the uploads whose last steps wait, by journal key.
    pub(in crate::fs) fn lock_settling(&self) -> MutexGuard<'_, HashMap<u64, FileEntry>> {
        self.settling.lock()
    }

    /// Records that the server stored the upload of `key` as file `id`.
    pub(in crate::fs) fn landed(&self, key: u64, id: u64) {
        self.landed.lock().insert(key, id);
    }

    /// Forgets the landing of `key`'s upload: the journal holds its id now, or a new upload of
    /// the key starts (an earlier one's id is not the new one's).
    pub(in crate::fs) fn forget_landed(&self, key: u64) {
        self.landed.lock().remove(&key);
    }

    /// The server's file ids of uploads whose ids the journal may not hold yet, by key.
    pub(in crate::fs) fn landed_ids(&self) -> HashMap<u64, u64> {
        self.landed.lock().clone()
    }
}
