//! The operations the filesystem needs from a storage account, independent of HTTP.
//! `api::Client` implements it against a real server; tests implement it in memory and wrap it
//! to count calls or inject failures. Ids are the server's numeric ids; `None` as a folder means
//! the account's root.
use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

pub mod error;
pub mod faulty;
pub mod file_meta;
pub mod memory;
pub mod priority;

pub use self::file_meta::{FileKind, FileMeta};

pub use self::error::{RemoteError, Result};

/// A stream of file content; it ends when the asked range has been delivered in full, or yields
/// an error (never short or wrong bytes).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// A folder as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderEntry {
    /// The server's folder id.
    pub id: u64,
    /// The parent folder; `None` at the root.
    pub parent: Option<u64>,
    /// The name exactly as the server stores it (may contain `/`).
    pub name: String,
    /// 0 private, 1 unlisted, 2 public.
    pub is_public: u8,
    /// Creation time, seconds since the epoch.
    pub created: Option<i64>,
    /// Last change, seconds since the epoch.
    pub updated: Option<i64>,
    /// The folder's public page.
    pub url: Option<String>,
    /// In the trash (5.x says so; 4.x never does).
    pub trashed: bool,
}

/// A file as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// The server's file id; the content under it never changes.
    pub id: u64,
    /// The folder holding it; `None` at the root.
    pub folder: Option<u64>,
    /// The name exactly as the server stores it (may contain `/`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The short url code, as used in share links.
    pub short_url: String,
    /// The share link.
    pub url: Option<String>,
    /// How often it was downloaded.
    pub downloads: u64,
    /// In the trash.
    pub trashed: bool,
    /// The file's free field: a MIME type, or the metadata a mount stored in it
    /// (`fs::file_meta`). Empty when the server sends none.
    pub file_type: String,
}

/// What `Remote::edit_file` changes on a file; `None` leaves a field as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileChange<'a> {
    /// A new name.
    pub name: Option<&'a str>,
    /// A new `fileType` (see `FileEntry::file_type`).
    pub file_type: Option<&'a str>,
}

/// One folder's whole content (the API has no pagination).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Subfolders, trashed ones included when the server lists them.
    pub folders: Vec<FolderEntry>,
    /// Files, trashed ones included when the server lists them.
    pub files: Vec<FileEntry>,
}

/// What `file/info` adds to a listing entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDetails {
    /// The entry itself.
    pub entry: FileEntry,
    /// Upload time, seconds since the epoch.
    pub uploaded: Option<i64>,
}

/// The account's package limits; `None` means unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Largest file the package accepts.
    pub max_upload_size: Option<u64>,
    /// Total storage the package allows.
    pub max_storage: Option<u64>,
    /// Uploads the package allows at once.
    pub concurrent_uploads: Option<u32>,
}

/// A storage account as the filesystem sees it.
pub trait Remote: Send + Sync + 'static {
    /// Everything in a folder (`None`: the root).
    fn list_folder(&self, folder: Option<u64>) -> impl Future<Output = Result<Listing>> + Send;
    /// One file's details, including its upload time.
    fn file_info(&self, id: u64) -> impl Future<Output = Result<FileDetails>> + Send;
    /// The bytes `range` of file `id`, whose size is `size`. The stream yields exactly those
    /// bytes, verified, or an error.
    fn read(
        &self,
        id: u64,
        size: u64,
        range: Range<u64>,
    ) -> impl Future<Output = Result<ByteStream>> + Send;
    /// Uploads the local file `source` into `folder` as `name`; returns the stored entry, whose
    /// name is the one the server chose (it may differ from `name`).
    fn upload(
        &self,
        folder: Option<u64>,
        name: &str,
        source: &Path,
    ) -> impl Future<Output = Result<FileEntry>> + Send;
    /// Changes a file's name and free field in one request; returns the file as the server
    /// then has it (which tells whether the server kept the field).
    fn edit_file(
        &self,
        id: u64,
        change: FileChange<'_>,
    ) -> impl Future<Output = Result<FileEntry>> + Send;
    /// Renames a file in place.
    fn rename_file(&self, id: u64, name: &str) -> impl Future<Output = Result<FileEntry>> + Send {
        self.edit_file(
            id,
            FileChange {
                name: Some(name),
                file_type: None,
            },
        )
    }
    /// Moves a file to another folder (`None`: the root).
    fn move_file(&self, id: u64, folder: Option<u64>) -> impl Future<Output = Result<()>> + Send;
    /// Copies a file on the server into `folder`; returns the new entry.
    fn copy_file(
        &self,
        id: u64,
        folder: Option<u64>,
    ) -> impl Future<Output = Result<FileEntry>> + Send;
    /// Moves a file to the trash.
    fn delete_file(&self, id: u64) -> impl Future<Output = Result<()>> + Send;
    /// Creates a folder.
    fn create_folder(
        &self,
        parent: Option<u64>,
        name: &str,
    ) -> impl Future<Output = Result<FolderEntry>> + Send;
    /// Renames a folder in place.
    fn rename_folder(&self, id: u64, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// Moves a folder under another (`None`: the root). The caller refuses cycles.
    fn move_folder(&self, id: u64, parent: Option<u64>) -> impl Future<Output = Result<()>> + Send;
    /// Sets a folder's sharing level (0 private, 1 unlisted, 2 public).
    fn set_folder_public(&self, id: u64, level: u8) -> impl Future<Output = Result<()>> + Send;
    /// Moves a folder, its subfolders and their files to the trash.
    fn delete_folder(&self, id: u64) -> impl Future<Output = Result<()>> + Send;
    /// The package's limits.
    fn limits(&self) -> impl Future<Output = Result<Limits>> + Send;
}
