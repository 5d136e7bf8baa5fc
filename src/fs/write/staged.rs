//! A file with local content: its staged copy, what is known of it (size, dirtiness, the
//! version the journal and the server have), and the locks that keep an upload from sending
//! bytes that change under it.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::cache::Overlay;
use crate::fs::attr::{self, Attr, Owner};
use crate::fs::namespace::inode::Ino;
use crate::staging::StagedFile;
use crate::sync::{Mutex, MutexGuard};

/// Change versions, counted across every staged file of the process, so that a version never
/// repeats even when a file is staged again.
static CHANGES: AtomicU64 = AtomicU64::new(1);

/// What a staged file holds and whether the server has it.
#[derive(Clone, Debug)]
pub(in crate::fs) struct StagedState {
    /// The file's size.
    pub(in crate::fs) size: u64,
    /// The server content (file id, size) the file still stands for, not yet copied in.
    pub(in crate::fs) base: Option<(u64, u64)>,
    /// Changed since the server last got it.
    pub(in crate::fs) dirty: bool,
    /// The last change (see `CHANGES`), so that an upload knows which changes it carried.
    pub(in crate::fs) version: u64,
    /// When the content last changed (its mtime unless one was set).
    pub(in crate::fs) written: SystemTime,
    /// Times and mode set locally.
    pub(in crate::fs) overlay: Overlay,
    /// The file was deleted: nothing is uploaded any more.
    pub(in crate::fs) unlinked: bool,
    /// A symbolic link: the bytes are its target.
    pub(in crate::fs) symlink: bool,
}

/// A file with local content: its staged bytes and their state.
pub(in crate::fs) struct Staged {
    pub(in crate::fs) file: StagedFile,
    state: Mutex<StagedState>,
    /// Held while the server's content is copied in, so that it happens once.
    pub(in crate::fs) fill: tokio::sync::Mutex<()>,
    /// Held by an upload (and by what must not overlap one), one at a time per file.
    pub(in crate::fs) turn: tokio::sync::Mutex<()>,
    /// The change version a write-back `close` last journaled, so that the `release` after a
    /// `flush`, or a second close with nothing changed, syncs nothing again.
    pub(in crate::fs) journaled: Mutex<Option<u64>>,
}

impl Staged {
    /// A staged file over `file`, in `state`.
    pub(in crate::fs) fn new(file: StagedFile, state: StagedState) -> Self {
        Self {
            file,
            state: Mutex::new(state),
            fill: tokio::sync::Mutex::new(()),
            turn: tokio::sync::Mutex::new(()),
            journaled: Mutex::new(None),
        }
    }

    /// Takes the lock of the file's state (after any lock of the write path's maps).
    pub(in crate::fs) fn lock_state(&self) -> MutexGuard<'_, StagedState> {
        self.state.lock()
    }

    /// Records a change of content made by `change`: the file is dirty and modified now.
    pub(in crate::fs) fn changed(&self, change: impl FnOnce(&mut StagedState)) {
        let mut st = self.lock_state();
        change(&mut st);
        st.dirty = true;
        st.version = CHANGES.fetch_add(1, Ordering::Relaxed);
        st.written = SystemTime::now();
        st.overlay.mtime = None;
        st.overlay.atime = None;
    }

    /// The server got the content as of change `version`: clean unless it changed since.
    pub(in crate::fs) fn settled(&self, version: u64) {
        let mut st = self.lock_state();
        if st.version == version {
            st.dirty = false;
        }
    }

    /// The attributes of the staged file.
    pub(in crate::fs) fn attr(&self, ino: Ino, owner: Owner) -> Attr {
        let st = self.lock_state();
        let mut attr = attr::local_file_attr(ino, st.size, st.symlink, owner);
        attr.mtime = st.written;
        attr.atime = st.written;
        attr.ctime = st.written;
        attr.with_overlay(&st.overlay)
    }
}
