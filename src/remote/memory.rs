//! A complete `Remote` held in memory: the account the filesystem core is tested against.
//! `MemoryRemote` is that account behind `Faulty`, which counts calls per operation and
//! injects failures and latency, so that tests can state exactly how many server calls an
//! operation costs and how errors surface.
//!
//! It behaves like a 5.x server as far as the filesystem can tell: files and folders have
//! separate id spaces starting at 1, listings include trashed items marked `trashed`, a deleted
//! file loses its folder, a deleted folder takes its subfolders and their files to the trash.
//! Names are stored as given (no server-side renaming of uploads).
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;

use super::faulty::Faulty;
pub use super::faulty::{Calls, Op};
use crate::remote::{
    ByteStream, FileChange, FileDetails, FileEntry, FolderEntry, Limits, Listing, Remote,
    RemoteError, Result,
};
use crate::sync::Mutex;

/// The `fileType` every upload gets.
const UPLOADED_TYPE: &str = "application/octet-stream";
/// Where the server cuts a `fileType`.
const FILE_TYPE_CHARS: usize = 140;

/// Bytes per item of the stream `read` returns, small enough that tests see several items.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Clone, Debug)]
struct StoredFile {
    entry: FileEntry,
    content: Bytes,
    uploaded: Option<i64>,
}

#[derive(Default)]
struct Account {
    folders: BTreeMap<u64, FolderEntry>,
    files: BTreeMap<u64, StoredFile>,
    next_folder: u64,
    next_file: u64,
    limits: Limits,
    clock: i64,
}

impl Account {
    /// A fresh timestamp; strictly increasing so that tests can tell items apart by time.
    fn tick(&mut self) -> i64 {
        self.clock += 1;
        self.clock
    }

    fn folder_exists(&self, folder: Option<u64>) -> Result<()> {
        match folder {
            None => Ok(()),
            Some(id) if self.folders.contains_key(&id) => Ok(()),
            Some(id) => Err(RemoteError::NotFound(format!("folder {id}"))),
        }
    }

    fn file_mut(&mut self, id: u64) -> Result<&mut StoredFile> {
        self.files
            .get_mut(&id)
            .ok_or_else(|| RemoteError::NotFound(format!("file {id}")))
    }

    fn folder_mut(&mut self, id: u64) -> Result<&mut FolderEntry> {
        self.folders
            .get_mut(&id)
            .ok_or_else(|| RemoteError::NotFound(format!("folder {id}")))
    }

    fn insert_file(&mut self, folder: Option<u64>, name: &str, content: Bytes) -> FileEntry {
        self.next_file += 1;
        let id = self.next_file;
        let short_url = format!("f{id:06}");
        let entry = FileEntry {
            id,
            folder,
            name: name.to_owned(),
            size: content.len() as u64,
            url: Some(format!("https://files.invalid/{short_url}")),
            short_url,
            downloads: 0,
            trashed: false,
            file_type: UPLOADED_TYPE.to_owned(),
        };
        let uploaded = Some(self.tick());
        self.files.insert(
            id,
            StoredFile {
                entry: entry.clone(),
                content,
                uploaded,
            },
        );
        entry
    }

    fn insert_folder(&mut self, parent: Option<u64>, name: &str) -> FolderEntry {
        self.next_folder += 1;
        let id = self.next_folder;
        let now = self.tick();
        let entry = FolderEntry {
            id,
            parent,
            name: name.to_owned(),
            is_public: 0,
            created: Some(now),
            updated: Some(now),
            url: Some(format!("https://files.invalid/folder/{id}")),
            trashed: false,
        };
        self.folders.insert(id, entry.clone());
        entry
    }

    /// `id` and every folder below it.
    fn subtree(&self, id: u64) -> Vec<u64> {
        let mut out = vec![id];
        let mut i = 0;
        while i < out.len() {
            let current = out[i];
            out.extend(
                self.folders
                    .values()
                    .filter(|f| f.parent == Some(current))
                    .map(|f| f.id),
            );
            i += 1;
        }
        out
    }
}

/// The in-memory account behind the fault-injecting wrapper: what the core's tests run on.
pub type MemoryRemote = Faulty<MemoryAccount>;

impl Faulty<MemoryAccount> {
    /// An empty account with unlimited storage, behaving well until told otherwise.
    pub fn new() -> Self {
        Faulty::wrap(MemoryAccount::default())
    }
}

/// A storage account in memory, implementing `Remote`.
#[derive(Default)]
pub struct MemoryAccount {
    account: Mutex<Account>,
    /// Acts as a modified host whose `file/edit` ignores `fileType`.
    drops_file_type: AtomicBool,
    listing_transit: Mutex<Option<Duration>>,
}

impl MemoryAccount {
    /// Creates a folder directly (not counted as a call); returns its id.
    pub fn add_folder(&self, parent: Option<u64>, name: &str) -> u64 {
        self.account.lock().insert_folder(parent, name).id
    }

    /// Creates a file directly (not counted as a call); returns its id.
    pub fn add_file(&self, folder: Option<u64>, name: &str, content: impl Into<Bytes>) -> u64 {
        self.account
            .lock()
            .insert_file(folder, name, content.into())
            .id
    }

    /// Sets the upload time `file_info` reports for a file.
    pub fn set_uploaded(&self, file: u64, uploaded: Option<i64>) -> Result<()> {
        self.account.lock().file_mut(file)?.uploaded = uploaded;
        Ok(())
    }

    /// Sets a file's `fileType` directly (not counted as a call), as another client would.
    pub fn set_file_type(&self, file: u64, file_type: &str) -> Result<()> {
        self.account.lock().file_mut(file)?.entry.file_type = file_type.to_owned();
        Ok(())
    }

    /// Makes `edit_file` ignore `fileType` from now on, as some modified hosts may.
    pub fn drop_file_types(&self) {
        self.drops_file_type.store(true, Ordering::Relaxed);
    }

    fn keeps_file_type(&self) -> bool {
        !self.drops_file_type.load(Ordering::Relaxed)
    }

    /// Sets the package limits `limits` reports.
    pub fn set_limits(&self, limits: Limits) {
        self.account.lock().limits = limits;
    }

    /// Makes every later listing take `transit` between the moment the account is read and
    /// the answer: what changes meanwhile is missing from it, as with a real server's reply on
    /// its way.
    pub fn set_listing_transit(&self, transit: Duration) {
        *self.listing_transit.lock() = Some(transit);
    }
}

impl Remote for MemoryAccount {
    async fn list_folder(&self, folder: Option<u64>) -> Result<Listing> {
        let listing = {
            let account = self.account.lock();
            account.folder_exists(folder)?;
            let mut folders: Vec<FolderEntry> = account
                .folders
                .values()
                .filter(|f| f.parent == folder)
                .cloned()
                .collect();
            folders.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
            let mut files: Vec<FileEntry> = account
                .files
                .values()
                .filter(|f| f.entry.folder == folder)
                .map(|f| f.entry.clone())
                .collect();
            files.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
            Listing { folders, files }
        };
        let transit = *self.listing_transit.lock();
        if let Some(transit) = transit {
            tokio::time::sleep(transit).await;
        }
        Ok(listing)
    }

    async fn file_info(&self, id: u64) -> Result<FileDetails> {
        let mut account = self.account.lock();
        let file = account.file_mut(id)?;
        Ok(FileDetails {
            entry: file.entry.clone(),
            uploaded: file.uploaded,
        })
    }

    async fn read(&self, id: u64, size: u64, range: Range<u64>) -> Result<ByteStream> {
        let content = self.account.lock().file_mut(id)?.content.clone();
        let actual = content.len() as u64;
        if size != actual {
            return Err(RemoteError::Integrity(format!(
                "file {id} has {actual} bytes, caller expected {size}"
            )));
        }
        if range.start > range.end || range.end > actual {
            return Err(RemoteError::InvalidInput(format!(
                "range {}..{} outside file {id} of {actual} bytes",
                range.start, range.end
            )));
        }
        // In bounds: both ends are at most `actual`, which is a `usize` length.
        let wanted = content.slice(range.start as usize..range.end as usize);
        let chunks: Vec<Result<Bytes>> = (0..wanted.len())
            .step_by(READ_CHUNK)
            .map(|at| Ok(wanted.slice(at..(at + READ_CHUNK).min(wanted.len()))))
            .collect();
        Ok(Box::pin(stream::iter(chunks)))
    }

    async fn upload(&self, folder: Option<u64>, name: &str, source: &Path) -> Result<FileEntry> {
        let content = tokio::fs::read(source).await?;
        if content.is_empty() {
            return Err(RemoteError::InvalidInput(
                "Filesize received was zero.".to_owned(),
            ));
        }
        let mut account = self.account.lock();
        // A folder the account does not have silently means the root, as on real servers.
        let folder = folder.filter(|id| account.folders.contains_key(id));
        Ok(account.insert_file(folder, name, Bytes::from(content)))
    }

    async fn edit_file(&self, id: u64, change: FileChange<'_>) -> Result<FileEntry> {
        let keeps_file_type = self.keeps_file_type();
        let mut account = self.account.lock();
        let file = account.file_mut(id)?;
        if let Some(name) = change.name {
            file.entry.name = name.to_owned();
        }
        // As on real servers: trimmed, cut at 140 characters, a blank value changes nothing.
        match change.file_type.map(str::trim) {
            Some(kind) if !kind.is_empty() && keeps_file_type => {
                file.entry.file_type = kind.chars().take(FILE_TYPE_CHARS).collect();
            }
            _ => {}
        }
        Ok(file.entry.clone())
    }

    async fn move_file(&self, id: u64, folder: Option<u64>) -> Result<()> {
        let mut account = self.account.lock();
        account.folder_exists(folder)?;
        account.file_mut(id)?.entry.folder = folder;
        Ok(())
    }

    async fn copy_file(&self, id: u64, folder: Option<u64>) -> Result<FileEntry> {
        let mut account = self.account.lock();
        account.folder_exists(folder)?;
        let original = account.file_mut(id)?.clone();
        let mut copy = account.insert_file(folder, &original.entry.name, original.content);
        copy.file_type.clone_from(&original.entry.file_type);
        account.file_mut(copy.id)?.entry.file_type = copy.file_type.clone();
        Ok(copy)
    }

    async fn delete_file(&self, id: u64) -> Result<()> {
        let mut account = self.account.lock();
        let file = account.file_mut(id)?;
        file.entry.trashed = true;
        file.entry.folder = None;
        Ok(())
    }

    async fn create_folder(&self, parent: Option<u64>, name: &str) -> Result<FolderEntry> {
        let mut account = self.account.lock();
        account.folder_exists(parent)?;
        Ok(account.insert_folder(parent, name))
    }

    async fn rename_folder(&self, id: u64, name: &str) -> Result<()> {
        let mut account = self.account.lock();
        let now = account.tick();
        let folder = account.folder_mut(id)?;
        folder.name = name.to_owned();
        folder.updated = Some(now);
        Ok(())
    }

    async fn move_folder(&self, id: u64, parent: Option<u64>) -> Result<()> {
        let mut account = self.account.lock();
        account.folder_exists(parent)?;
        account.folder_mut(id)?.parent = parent;
        Ok(())
    }

    async fn set_folder_public(&self, id: u64, level: u8) -> Result<()> {
        if level > 2 {
            return Err(RemoteError::InvalidInput(format!("sharing level {level}")));
        }
        self.account.lock().folder_mut(id)?.is_public = level;
        Ok(())
    }

    async fn delete_folder(&self, id: u64) -> Result<()> {
        let mut account = self.account.lock();
        account.folder_mut(id)?;
        for folder in account.subtree(id) {
            account.folder_mut(folder)?.trashed = true;
            for file in account.files.values_mut() {
                if file.entry.folder == Some(folder) {
                    file.entry.trashed = true;
                }
            }
        }
        Ok(())
    }

    async fn limits(&self) -> Result<Limits> {
        Ok(self.account.lock().limits.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;

    async fn collect(remote: &MemoryRemote, id: u64, size: u64, range: Range<u64>) -> Vec<u8> {
        let chunks: Vec<Bytes> = remote
            .read(id, size, range)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        chunks.concat()
    }

    #[tokio::test]
    async fn read_yields_exactly_the_range_asked_for() {
        let remote = MemoryRemote::new();
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let id = remote.add_file(None, "big.bin", content.clone());
        let size = content.len() as u64;
        for (start, end) in [(0, 0), (0, 1), (5, 70_000), (65_536, 131_072), (0, size)] {
            let got = collect(&remote, id, size, start..end).await;
            assert_eq!(got, content[start as usize..end as usize]);
        }
    }

    #[tokio::test]
    async fn read_past_the_end_or_with_a_wrong_size_is_refused() {
        let remote = MemoryRemote::new();
        let id = remote.add_file(None, "a", "hello");
        assert!(matches!(
            remote.read(id, 5, 3..6).await.err(),
            Some(RemoteError::InvalidInput(_))
        ));
        assert!(matches!(
            remote.read(id, 4, 0..1).await.err(),
            Some(RemoteError::Integrity(_))
        ));
        assert!(matches!(
            remote.read(99, 5, 0..1).await.err(),
            Some(RemoteError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn deleted_items_stay_listed_as_trashed() {
        let remote = MemoryRemote::new();
        let docs = remote.add_folder(None, "docs");
        let sub = remote.add_folder(Some(docs), "sub");
        let deep = remote.add_file(Some(sub), "deep.txt", "x");
        let top = remote.add_file(None, "top.txt", "y");
        remote.delete_file(top).await.unwrap();
        remote.delete_folder(docs).await.unwrap();
        let root = remote.list_folder(None).await.unwrap();
        assert!(root.files.iter().all(|f| f.trashed));
        assert!(root.folders.iter().all(|f| f.trashed));
        let inner = remote.list_folder(Some(sub)).await.unwrap();
        assert_eq!(inner.files.len(), 1);
        assert_eq!(inner.files[0].id, deep);
        assert!(inner.files[0].trashed);
    }

    #[tokio::test]
    async fn upload_refuses_empty_files_and_keeps_the_name() {
        let remote = MemoryRemote::new();
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        let full = dir.path().join("full");
        std::fs::write(&empty, b"").unwrap();
        std::fs::write(&full, b"data").unwrap();
        assert!(remote.upload(None, ".env", &empty).await.is_err());
        let entry = remote.upload(Some(42), ".env", &full).await.unwrap();
        assert_eq!(entry.name, ".env");
        assert_eq!(entry.folder, None);
        assert_eq!(entry.size, 4);
    }
}
