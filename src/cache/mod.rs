//! The content caches and the metadata store. A file's content never changes under its id, so
//! blocks kept here are never stale: they are dropped only to respect the configured bounds.
pub mod accounts;
pub mod blocks;
pub mod budget;
pub(crate) mod buf;
mod disk;
pub mod error;
pub mod lacks;
mod memory;
pub mod meta;
pub mod private;
pub(crate) mod sqlite;

pub use blocks::{BlockCache, BlockCacheConfig, CacheStats};
pub use budget::MemoryBudget;
pub use error::CacheError;
pub use meta::{ItemKey, MetaStore, Overlay};

/// A block's identity: the remote file id and the block's index in that file.
pub(crate) type BlockKey = (u64, u64);
