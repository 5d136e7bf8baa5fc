//! Open file and directory handles: what each `fh` number the kernel holds refers to. A
//! directory handle keeps the listing it started reading, so that offsets stay meaningful
//! while the cache refreshes underneath.
use std::collections::HashMap;
use std::sync::Arc;

use super::namespace::inode::Ino;
use super::namespace::listed::Listed;

/// What one handle refers to.
#[derive(Clone, Debug)]
pub enum Handle {
    /// An open file.
    File {
        /// The file's inode.
        ino: Ino,
        /// Opened for writing.
        write: bool,
        /// Opened with `O_APPEND`: every write goes to the end.
        append: bool,
        /// Changed the file through this handle (created it, wrote, truncated): its `close`
        /// uploads; the `close` of a handle that changed nothing does not.
        changed: bool,
    },
    /// An open directory.
    Dir {
        /// The directory's inode.
        ino: Ino,
        /// The listing being read, taken when reading starts at offset 0.
        snapshot: Option<Arc<Listed>>,
    },
}

impl Handle {
    /// The inode the handle is open on.
    pub fn ino(&self) -> Ino {
        match self {
            Handle::File { ino, .. } | Handle::Dir { ino, .. } => *ino,
        }
    }
}

/// All open handles.
#[derive(Debug, Default)]
pub struct Handles {
    open: HashMap<u64, Handle>,
    next: u64,
}

impl Handles {
    /// Registers a handle; returns its number (never 0, never reused).
    pub fn insert(&mut self, handle: Handle) -> u64 {
        self.next += 1;
        self.open.insert(self.next, handle);
        self.next
    }

    /// The handle `fh`.
    pub fn get(&self, fh: u64) -> Option<&Handle> {
        self.open.get(&fh)
    }

    /// The handle `fh`, to change.
    pub fn get_mut(&mut self, fh: u64) -> Option<&mut Handle> {
        self.open.get_mut(&fh)
    }

    /// Closes `fh`.
    pub fn remove(&mut self, fh: u64) -> Option<Handle> {
        self.open.remove(&fh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_get_distinct_nonzero_numbers_and_close_once() {
        let mut handles = Handles::default();
        let a = handles.insert(Handle::File {
            ino: 2,
            write: false,
            append: false,
            changed: false,
        });
        let b = handles.insert(Handle::Dir {
            ino: 1,
            snapshot: None,
        });
        assert!(a != 0 && b != 0 && a != b);
        assert_eq!(handles.get(a).map(Handle::ino), Some(2));
        assert!(handles.remove(a).is_some());
        assert!(handles.remove(a).is_none());
        assert!(handles.get_mut(b).is_some());
    }
}
