//! The filesystem core, free of fuser types: every operation the kernel can ask for, as an
//! async method of `Core` over a `Remote`, so tests drive it directly. `crate::fuse` adapts it
//! to the kernel.
//!
//! # The pieces
//! `Core` (`core`) composes components, each owning its state and its locks:
//! - the namespace (`namespace`): inodes, names, the listings kept and when they expire, the
//!   open handles, and the changes to the tree (create, mkdir, rename, unlink, rmdir);
//! - the read side (`read`): the content layer (`crate::content`) and a reader per handle;
//! - the write path (`write`): staged files, and the write-back component that uploads them;
//! - the metadata store (`crate::cache::MetaStore`): upload dates, local attributes, listings
//!   kept for the next mount, with its own connections and memo;
//! - connectivity (`connectivity`), work ahead of the user (`ahead`), the background task
//!   (`watch`).
//!
//! The operations that span components are `Core` methods in files named for their job:
//! `lookup` (lookups, directory handles, readdir), `stat` (attributes, dates, limits, xattrs,
//! access), `namespace::listing` and `namespace::changes`, `write::files` (open, read, write,
//! setattr, flush, release), `write::upload` and `write::writeback`, `links`.
//!
//! # Lock order
//! Take locks only in this order (a lock may be taken while holding those above it, never
//! one above while holding one below):
//!
//! 1. `Staged::fill` (tokio) — the server's content being copied into a staged file;
//! 2. `Staged::turn` (tokio) — an upload of the file, or what must not overlap one;
//! 3. `Writes::lock_staged` — the staged files by inode;
//! 4. `Staged::lock_state` — one staged file's size, dirtiness, versions;
//! 5. `Namespace::lock_tree` — inodes, listings, edits, handles;
//! 6. `Reads::lock_readers` — the reader of each handle (then the content layer's own).
//!
//! Every other lock of the core is a leaf, taken with nothing below it and released before any
//! other is taken: `Writes::lock_detached`, `Writes::lock_settling`, the uploads landed
//! (`Writes::landed`), `Namespace::lock_hidden`,
//! `Core::limits`, `Staged::journaled`, the write-back's jobs, the ahead work's sets,
//! connectivity's record. The two tokio locks are the only ones held across an `.await`: under
//! them the core calls the server and writes SQLite. Every `std` lock (`crate::sync::Mutex`) is
//! held for short synchronous work only — never across an `.await`, a server call, or a write to
//! SQLite or the disk (the guard is not `Send`, so a task cannot hold one across an `.await`).
//! Below the core, the metadata store takes its writer before its memo, and the journal its
//! writer alone.
//!
//! A function that runs under a lock takes the guarded value, never the lock's owner: the
//! methods of `namespace::Tree` (`relist`, `drop_if_unreferenced`) run under the tree lock, and
//! no other function expects one held. A function that takes a lock is named `lock_*` and
//! returns its guard.
mod ahead;
pub mod attr;
mod carried;
pub mod connectivity;
pub mod core;
pub mod error;
pub mod handles;
mod links;
mod local_times;
mod lookup;
pub mod namespace;
mod read;
mod refresh;
mod stat;
mod watch;
mod write;
pub mod xattr;

pub use self::ahead::{TreeProgress, TreeState, TREE_BOUND};
pub use self::attr::{Attr, Kind, Owner};
pub use self::core::{
    Core, DirEntry, DirEntryPlus, FsOptions, Opened, SetupError, StatFs, DEFAULT_DIR_TTL,
};
pub use self::error::FsError;
pub use self::namespace::inode::{Ino, ROOT_INO};
pub use self::write::files::SetAttr;
pub use self::write::upload::PendingUpload;
pub use self::write::writeback::{
    JobState, SyncFailure, SyncReport, WriteBackOptions, DEFAULT_TRANSFERS,
    DEFAULT_WRITE_BACK_DELAY,
};
