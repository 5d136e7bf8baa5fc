//! Why opening or using a cache failed.
use std::io;
use std::path::PathBuf;

/// Errors of the block caches and the metadata store; the mount reports them at start-up (a
/// cache directory it cannot use) or as `EIO` when a locally set attribute cannot be saved.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The configuration cannot work (for example a block size of zero).
    #[error("invalid cache configuration: {0}")]
    Config(String),
    /// The cache directory or a file in it could not be used.
    #[error("cache at {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The metadata database refused an operation.
    #[error("metadata store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A write to the metadata store did not finish on the blocking pool: it panicked, or the
    /// runtime was shutting down before it ran.
    #[error("metadata store: write did not finish: {0}")]
    Interrupted(#[from] tokio::task::JoinError),
}

impl CacheError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        CacheError::Io {
            path: path.into(),
            source,
        }
    }
}
