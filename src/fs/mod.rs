//! The filesystem core, free of fuser types: inodes, names, directory cache, attributes,
//! handles and the operations over them (`Core`). `crate::fuse` adapts it to the kernel.
mod ahead;
pub mod attr;
mod carried;
pub mod connectivity;
pub mod core;
pub mod dir_cache;
pub mod error;
mod files;
pub mod handles;
pub mod inode;
mod links;
pub mod names;
mod namespace;
mod refresh;
mod upload;
mod watch;
mod writeback;
pub mod xattr;

pub use self::ahead::{TreeProgress, TreeState, TREE_BOUND};
pub use self::attr::{Attr, Kind, Owner};
pub use self::core::{
    Core, DirEntry, DirEntryPlus, FsOptions, Opened, SetupError, StatFs, DEFAULT_DIR_TTL,
};
pub use self::error::FsError;
pub use self::files::SetAttr;
pub use self::inode::{Ino, ROOT_INO};
pub use self::upload::PendingUpload;
pub use self::writeback::{
    JobState, SyncFailure, SyncReport, WriteBackOptions, DEFAULT_TRANSFERS,
    DEFAULT_WRITE_BACK_DELAY,
};
