//! The filesystem's view of the API: `Remote` implemented on [`Client`], choosing for each
//! operation the endpoints that work on every server generation (a file goes to the root with
//! `file/edit`, since `file/move` to the root loses it on 4.x).
use std::ops::Range;
use std::path::Path;

use super::client::{Client, FileEdit, FolderEdit};
use super::model::{limit, to_epoch, File, FileInfo, Folder};
use crate::remote::error::{RemoteError, Result};
use crate::remote::{
    ByteStream, FileChange, FileDetails, FileEntry, FolderEntry, Limits, Listing, Remote,
};

/// The `fileType` every upload gets, whatever the file (NOTES.md).
const UPLOADED_TYPE: &str = "application/octet-stream";

impl Client {
    /// A listing's folder as the filesystem sees it.
    fn folder_entry(&self, folder: Folder) -> FolderEntry {
        let offset = self.config().server_utc_offset;
        FolderEntry {
            trashed: folder.is_trashed(),
            id: folder.id,
            parent: folder.parent_id,
            name: folder.folder_name,
            is_public: folder.is_public.unwrap_or(0).min(2) as u8,
            created: folder.date_added.and_then(|d| to_epoch(d, offset)),
            updated: folder.date_updated.and_then(|d| to_epoch(d, offset)),
            url: folder.url_folder,
        }
    }
}

/// A listing's file as the filesystem sees it.
fn file_entry(file: File) -> FileEntry {
    FileEntry {
        trashed: file.is_trashed(),
        id: file.id,
        folder: file.folder_id,
        name: file.filename,
        size: file.file_size,
        short_url: file.short_url,
        url: file.url_file,
        downloads: file.downloads,
        file_type: file.file_type.unwrap_or_default(),
    }
}

/// A detailed file as the filesystem sees it.
fn info_entry(info: FileInfo) -> FileEntry {
    let trashed = info.is_trashed();
    FileEntry {
        trashed,
        ..file_entry(info.file)
    }
}

impl Remote for Client {
    async fn list_folder(&self, folder: Option<u64>) -> Result<Listing> {
        let listing = self.folder_listing(folder).await?;
        Ok(Listing {
            folders: listing
                .folders
                .into_iter()
                .map(|f| self.folder_entry(f))
                .collect(),
            files: listing.files.into_iter().map(file_entry).collect(),
        })
    }

    async fn file_info(&self, id: u64) -> Result<FileDetails> {
        let info = Client::file_info(self, id).await?;
        let uploaded = info
            .uploaded_date
            .and_then(|d| to_epoch(d, self.config().server_utc_offset));
        Ok(FileDetails {
            entry: info_entry(info),
            uploaded,
        })
    }

    async fn read(&self, id: u64, size: u64, range: Range<u64>) -> Result<ByteStream> {
        self.download(id, size, range).await
    }

    async fn upload(&self, folder: Option<u64>, name: &str, source: &Path) -> Result<FileEntry> {
        let stored = self.file_upload(folder, name, source).await?;
        Ok(FileEntry {
            id: stored.file_id,
            folder,
            name: stored.name,
            size: stored.size.unwrap_or_default(),
            short_url: stored.short_url,
            url: stored.url,
            downloads: 0,
            trashed: false,
            file_type: UPLOADED_TYPE.to_owned(),
        })
    }

    async fn edit_file(&self, id: u64, change: FileChange<'_>) -> Result<FileEntry> {
        let edit = FileEdit {
            filename: change.name,
            file_type: change.file_type,
            ..FileEdit::default()
        };
        self.file_edit(id, &edit).await.map(info_entry)
    }

    async fn move_file(&self, id: u64, folder: Option<u64>) -> Result<()> {
        match folder {
            Some(folder) => self.file_move(id, Some(folder)).await.map(drop),
            None => self.file_to_root(id).await.map(drop),
        }
    }

    async fn copy_file(&self, id: u64, folder: Option<u64>) -> Result<FileEntry> {
        let copy = self.file_copy(id, folder).await?;
        match folder {
            Some(_) => Ok(info_entry(copy.new_file)),
            // 4.x gives a copy to the root folder 0, which no listing shows; file/edit puts it
            // where it belongs (and changes nothing on servers that got it right).
            None => self
                .file_to_root(copy.new_file.file.id)
                .await
                .map(info_entry),
        }
    }

    async fn delete_file(&self, id: u64) -> Result<()> {
        self.file_delete(id).await.map(drop)
    }

    async fn create_folder(&self, parent: Option<u64>, name: &str) -> Result<FolderEntry> {
        let folder = self.folder_create(parent, name, None).await?;
        Ok(self.folder_entry(folder))
    }

    async fn rename_folder(&self, id: u64, name: &str) -> Result<()> {
        let edit = FolderEdit {
            name: Some(name),
            ..FolderEdit::default()
        };
        self.folder_edit(id, &edit).await.map(drop)
    }

    async fn move_folder(&self, id: u64, parent: Option<u64>) -> Result<()> {
        self.folder_move(id, parent).await.map(drop)
    }

    async fn set_folder_public(&self, id: u64, level: u8) -> Result<()> {
        if level > 2 {
            return Err(RemoteError::InvalidInput(format!(
                "sharing level {level} is not 0 (private), 1 (unlisted) or 2 (public)"
            )));
        }
        let edit = FolderEdit {
            is_public: Some(level),
            ..FolderEdit::default()
        };
        self.folder_edit(id, &edit).await.map(drop)
    }

    async fn delete_folder(&self, id: u64) -> Result<()> {
        self.folder_delete(id).await
    }

    async fn limits(&self) -> Result<Limits> {
        let (package, account) = tokio::join!(self.account_package(), self.account_info());
        let package = package?;
        let storage_override = match account {
            Ok(account) => limit(account.storage_limit_override),
            Err(e) => {
                log::debug!("account/info unavailable, using the package's storage limit: {e}");
                None
            }
        };
        Ok(Limits {
            max_upload_size: limit(package.max_upload_size),
            max_storage: storage_override.or(limit(package.max_storage_bytes)),
            concurrent_uploads: limit(package.concurrent_uploads)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        })
    }
}

impl Client {
    /// Moves a file to the root the way that works on every server: `file/edit` with
    /// `folder_id=null`.
    async fn file_to_root(&self, id: u64) -> Result<FileInfo> {
        let edit = FileEdit {
            folder: Some(None),
            ..FileEdit::default()
        };
        self.file_edit(id, &edit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fixtures::body;
    use crate::api::model::FolderListing;

    #[test]
    fn listing_entries_carry_ids_names_sizes_and_trash_state() {
        let reply: serde_json::Value =
            serde_json::from_str(&body("94_folder_listing_F1_with_files.txt")).unwrap();
        let listing: FolderListing = serde_json::from_value(reply["data"].clone()).unwrap();
        let first = listing.files[0].clone();
        let entry = file_entry(first.clone());
        assert_eq!(entry.id, first.id);
        assert_eq!(entry.name, first.filename);
        assert_eq!(entry.size, first.file_size);
        assert_eq!(entry.folder, Some(1));
        assert!(!entry.trashed);
    }

    #[test]
    fn a_trashed_file_info_is_a_trashed_entry() {
        let reply: serde_json::Value =
            serde_json::from_str(&body("133_file_info_trashed.txt")).unwrap();
        let info: FileInfo = serde_json::from_value(reply["data"].clone()).unwrap();
        assert!(info_entry(info).trashed);
    }
}
