//! Files being written, kept as local files under the cache directory until the server has
//! them, and the journal that says what must still reach the server. Together they make a
//! failed upload or a crash lose nothing: whatever was closed (or fsync'd) is in the journal
//! with its bytes on disk, and the next mount of the same cache directory completes it.
//!
//! Staged bytes are read and written on tokio's blocking pool: a write may wait for the disk,
//! and the worker threads serve every other request of the mount meanwhile.
mod journal;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use journal::{Durability, Entry, Journal, JournalError};

/// The directory, under a mount's account cache directory, that holds staged files.
pub const DIR_NAME: &str = "staging";
const DATA_SUFFIX: &str = ".data";
/// The file uploaded for an empty file: the server refuses empty uploads.
const EMPTY_STAND_IN: &str = "empty-file.byte";

/// Why staging failed.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// A staged file or the staging directory could not be used.
    #[error("staging area {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The staging area of one mount: a directory of staged files and its journal.
pub struct Staging {
    dir: PathBuf,
    journal: Journal,
    next_key: AtomicU64,
    empty_stand_in: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Staging {
    /// Opens (creating if needed) the staging area in `dir`. Staged files no journal entry
    /// refers to are left-overs of files that were never closed: they are removed.
    pub fn open(dir: &Path) -> Result<Self, StagingError> {
        std::fs::create_dir_all(dir).map_err(|source| StagingError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let journal = Journal::open(Some(dir))?;
        let staging = Self::with_journal(dir.to_path_buf(), journal, None)?;
        staging.remove_orphans()?;
        Ok(staging)
    }

    /// A staging area in a fresh temporary directory, removed when dropped (for mounts without
    /// a cache directory, and tests).
    pub fn temporary() -> Result<Self, StagingError> {
        let temp = tempfile::Builder::new()
            .prefix("yetifs-staging-")
            .tempdir()
            .map_err(|source| StagingError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let journal = Journal::open(Some(temp.path()))?;
        Self::with_journal(temp.path().to_path_buf(), journal, Some(temp))
    }

    fn with_journal(
        dir: PathBuf,
        journal: Journal,
        temp: Option<tempfile::TempDir>,
    ) -> Result<Self, StagingError> {
        let next = journal.max_key()?.map_or(1, |k| k + 1);
        let empty_stand_in = dir.join(EMPTY_STAND_IN);
        std::fs::write(&empty_stand_in, b"\n").map_err(|source| StagingError::Io {
            path: empty_stand_in.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            journal,
            next_key: AtomicU64::new(next),
            empty_stand_in,
            _temp: temp,
        })
    }

    fn remove_orphans(&self) -> Result<(), StagingError> {
        let kept: std::collections::HashSet<u64> =
            self.journal.entries()?.iter().map(|e| e.key).collect();
        let listing = std::fs::read_dir(&self.dir).map_err(|source| StagingError::Io {
            path: self.dir.clone(),
            source,
        })?;
        for item in listing.flatten() {
            let name = item.file_name();
            let key = name
                .to_str()
                .and_then(|n| n.strip_suffix(DATA_SUFFIX))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(key) = key.filter(|k| !kept.contains(k)) {
                if let Err(e) = std::fs::remove_file(item.path()) {
                    log::warn!("cannot remove stale staged file {key}: {e}");
                }
            }
        }
        Ok(())
    }

    /// The one-byte file uploaded in place of an empty file (the server refuses 0 bytes).
    pub fn empty_stand_in(&self) -> &Path {
        &self.empty_stand_in
    }

    /// The journal of pending work.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// A key no staged file or journal entry uses yet.
    pub fn new_key(&self) -> u64 {
        self.next_key.fetch_add(1, Ordering::SeqCst)
    }

    /// Where the staged bytes of `key` live.
    pub fn path(&self, key: u64) -> PathBuf {
        self.dir.join(format!("{key}{DATA_SUFFIX}"))
    }

    /// Creates (or empties) the staged file of `key`.
    pub fn create(&self, key: u64) -> Result<StagedFile, StagingError> {
        self.open_staged(key, true)
    }

    /// Opens the staged file of `key` as it is, creating it empty if it is missing.
    pub fn reopen(&self, key: u64) -> Result<StagedFile, StagingError> {
        self.open_staged(key, false)
    }

    fn open_staged(&self, key: u64, truncate: bool) -> Result<StagedFile, StagingError> {
        let path = self.path(key);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(truncate)
            .open(&path)
            .map_err(|source| StagingError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(StagedFile {
            key,
            path,
            file: Arc::new(file),
        })
    }

    /// Removes the staged bytes of `key`, if any.
    pub fn remove(&self, key: u64) {
        let path = self.path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("cannot remove staged file {}: {e}", path.display()),
        }
    }
}

/// One staged file: the bytes of a file being written, at `path`.
#[derive(Debug)]
pub struct StagedFile {
    key: u64,
    path: PathBuf,
    file: Arc<File>,
}

impl StagedFile {
    /// The key of its journal entry and file name.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// Where the bytes are (what an upload sends).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the file on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&File) -> io::Result<T> + Send + 'static,
    ) -> Result<T, StagingError> {
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || work(&file))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
            .map_err(|source| StagingError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Up to `len` bytes from `offset`; short only at the end of the file.
    pub async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, StagingError> {
        self.blocking(move |file| {
            let mut buf = vec![0; len];
            let mut filled = 0;
            while filled < len {
                match file.read_at(&mut buf[filled..], offset + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buf.truncate(filled);
            Ok(buf)
        })
        .await
    }

    /// Writes all of `data` at `offset`; a gap before it reads as zeros.
    pub async fn write_at(
        &self,
        offset: u64,
        data: impl AsRef<[u8]> + Send + 'static,
    ) -> Result<(), StagingError> {
        self.blocking(move |file| file.write_all_at(data.as_ref(), offset))
            .await
    }

    /// Cuts or extends (with zeros) the file to `len` bytes.
    pub async fn set_len(&self, len: u64) -> Result<(), StagingError> {
        self.blocking(move |file| file.set_len(len)).await
    }

    /// Forces the bytes to the disk, so that a journal entry written next can trust them.
    pub async fn sync(&self) -> Result<(), StagingError> {
        self.blocking(File::sync_data).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn staged_bytes_read_back_with_zeros_in_holes() {
        let staging = Staging::temporary().unwrap();
        let file = staging.create(staging.new_key()).unwrap();
        file.write_at(4, b"abc").await.unwrap();
        assert_eq!(file.read_at(0, 100).await.unwrap(), b"\0\0\0\0abc");
        file.set_len(5).await.unwrap();
        assert_eq!(file.read_at(3, 100).await.unwrap(), b"\0a");
        file.set_len(8).await.unwrap();
        assert_eq!(file.read_at(0, 100).await.unwrap(), b"\0\0\0\0a\0\0\0");
    }

    #[tokio::test]
    async fn keys_are_never_reused_across_reopen_of_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let staging = Staging::open(dir.path()).unwrap();
            let key = staging.new_key();
            staging.create(key).unwrap();
            staging
                .journal()
                .upsert(&Entry::new(key, None, "a".into()), Durability::Synced)
                .await
                .unwrap();
            key
        };
        let staging = Staging::open(dir.path()).unwrap();
        assert!(staging.new_key() > first);
        assert!(staging.path(first).exists());
    }

    #[tokio::test]
    async fn staged_files_without_a_journal_entry_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let orphan = {
            let staging = Staging::open(dir.path()).unwrap();
            let key = staging.new_key();
            staging
                .create(key)
                .unwrap()
                .write_at(0, b"x")
                .await
                .unwrap();
            staging.path(key)
        };
        assert!(orphan.exists());
        Staging::open(dir.path()).unwrap();
        assert!(!orphan.exists());
    }
}
