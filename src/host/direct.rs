//! An account a command logs into itself, with the keys of a remote of config.toml, for a
//! `NAME:path` that no mount holds. Paths are found by listing folders from the root. The
//! login ends the account's other sessions (the server keeps one token per account); running
//! mounts log in again by themselves.
use std::path::Path;

use super::Account;
use crate::api::model::{File, Folder, FolderListing};
use crate::api::Client;
use crate::cache::lacks::UrlUploadSupport;
use crate::fs::namespace::names::{self, RESERVED_PREFIX};

/// A remote's account, as a command reaches it.
pub struct DirectAccount {
    client: Client,
    url_upload: UrlUploadSupport,
}

/// What a path of the account names.
#[derive(Clone, Debug)]
pub enum Item {
    /// The root.
    Root,
    /// A folder, as its parent's listing shows it.
    Folder(Folder),
    /// A file, as its folder's listing shows it.
    File(File),
}

impl DirectAccount {
    /// The account `client` logs into, whose cache directory is `account_dir` (where what is
    /// known of its host is remembered).
    pub fn new(client: Client, account_dir: &Path) -> DirectAccount {
        DirectAccount {
            client,
            url_upload: UrlUploadSupport::open(Some(account_dir)),
        }
    }

    /// What `path` names (relative to the account's root, `/`-separated; a name may be the
    /// server's own or the one a mount shows for it), or a sentence saying why nothing does.
    pub async fn item(&self, path: &str) -> Result<Item, String> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let Some((last, way)) = parts.split_last() else {
            return Ok(Item::Root);
        };
        let mut folder = None;
        for (depth, part) in way.iter().enumerate() {
            let listing = self.listing(folder).await?;
            let found = listing
                .folders
                .into_iter()
                .find(|f| names_match(&f.folder_name, part));
            let Some(found) = found else {
                return Err(format!("{}: no such folder", parts[..=depth].join("/")));
            };
            folder = Some(found.id);
        }
        let listing = self.listing(folder).await?;
        if let Some(found) = listing
            .folders
            .into_iter()
            .find(|f| names_match(&f.folder_name, last))
        {
            return Ok(Item::Folder(found));
        }
        listing
            .files
            .into_iter()
            .find(|f| !f.is_trashed() && names_match(&f.filename, last))
            .map(Item::File)
            .ok_or_else(|| format!("{path}: no such file or folder"))
    }

    /// The live items of `folder`'s listing.
    async fn listing(&self, folder: Option<u64>) -> Result<FolderListing, String> {
        let mut listing = self
            .client
            .folder_listing(folder)
            .await
            .map_err(|e| e.to_string())?;
        listing
            .folders
            .retain(|f| !f.is_trashed() && !f.folder_name.starts_with(RESERVED_PREFIX));
        Ok(listing)
    }
}

/// Whether the server name `server` is what a user typed as `typed`: itself, or the name a
/// mount shows for it.
fn names_match(server: &str, typed: &str) -> bool {
    server == typed || names::escape(server) == typed
}

impl Account for DirectAccount {
    fn client(&self) -> &Client {
        &self.client
    }

    fn url_upload(&self) -> &UrlUploadSupport {
        &self.url_upload
    }

    async fn folder(&self, path: &str) -> Result<Option<u64>, String> {
        match self.item(path).await? {
            Item::Root => Ok(None),
            Item::Folder(folder) => Ok(Some(folder.id)),
            Item::File(_) => Err(format!("{path}: not a folder")),
        }
    }

    /// Nothing to do: this account keeps no listings.
    async fn relist(&self, _path: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_matches_as_the_server_stores_it_or_as_a_mount_shows_it() {
        assert!(names_match("a/b", "a/b"));
        assert!(names_match("a/b", &names::escape("a/b")));
        assert!(!names_match("a", "b"));
    }
}
