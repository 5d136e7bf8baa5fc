//! The read side of the core: the content layer (block caches, read-ahead) and the reader of
//! each open handle. Its lock, the readers map, is a leaf: nothing else is taken while it is
//! held.
use std::collections::HashMap;
use std::sync::Arc;

use crate::content::{Content, Reader};
use crate::remote::Remote;
use crate::sync::{Mutex, MutexGuard};

/// The file id an open handle reads, and its reader.
pub(super) type HandleReader<R> = (u64, Arc<Reader<R>>);

/// The content of files and who is reading it.
pub(super) struct Reads<R: Remote> {
    /// Block caches and fetches, shared by every handle.
    pub(super) content: Arc<Content<R>>,
    /// The reader of each open file handle, with the file id it reads.
    readers: Mutex<HashMap<u64, HandleReader<R>>>,
}

impl<R: Remote> Reads<R> {
    /// Reads through `content`, no handle open yet.
    pub(super) fn new(content: Arc<Content<R>>) -> Self {
        Self {
            content,
            readers: Mutex::default(),
        }
    }

    /// Takes the lock of the readers by handle.
    pub(super) fn lock_readers(&self) -> MutexGuard<'_, HashMap<u64, HandleReader<R>>> {
        self.readers.lock()
    }
}
