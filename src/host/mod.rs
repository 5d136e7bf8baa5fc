//! What a file host does that a disk does not: remote upload, where the server fetches a URL
//! into the account itself so that the bytes never cross the user's own link (`yetifs fetch`,
//! [`fetch`]), and share links with a folder's sharing level and access password
//! (`yetifs share`, [`share`]).
//!
//! Both work on an [`Account`]: the one a running mount is logged into ([`MountedAccount`],
//! which the command reaches through the mount's control socket, so that no second login takes
//! the mount's access token), or one a command logs into itself for `NAME:path` of a remote of
//! config.toml ([`DirectAccount`]).
use std::future::Future;

use crate::api::Client;
use crate::cache::lacks::UrlUploadSupport;

mod direct;
pub mod fetch;
mod mounted;
pub mod share;

pub use direct::{DirectAccount, Item};
pub use mounted::MountedAccount;

/// An account the commands act on, and how its folders are found by path.
pub trait Account: Send + Sync {
    /// The client logged into the account.
    fn client(&self) -> &Client;

    /// What is known of the host's remote upload.
    fn url_upload(&self) -> &UrlUploadSupport;

    /// The folder id at `path` (relative to the account's root, `/`-separated, `""` the root;
    /// `None` for the root), or a sentence saying why there is none.
    fn folder(&self, path: &str) -> impl Future<Output = Result<Option<u64>, String>> + Send;

    /// Makes what the server now holds in the folder at `path` show wherever the account's
    /// listings are kept (a mount's), after the server changed it: best effort.
    fn relist(&self, path: &str) -> impl Future<Output = ()> + Send;
}

/// The path of the folder holding `path` (`""`: the root).
pub fn parent_of(path: &str) -> &str {
    let path = path.trim_end_matches('/');
    path.rfind('/').map_or("", |slash| &path[..slash])
}

/// `name` inside the folder at `folder` (`""`: the root).
pub fn joined(folder: &str, name: &str) -> String {
    let folder = folder.trim_end_matches('/');
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_split_into_its_folder_and_joined_back() {
        assert_eq!(parent_of("a/b/c"), "a/b");
        assert_eq!(parent_of("a"), "");
        assert_eq!(parent_of("a/b/"), "a");
        assert_eq!(joined("", "x"), "x");
        assert_eq!(joined("a/b", "x"), "a/b/x");
    }
}
