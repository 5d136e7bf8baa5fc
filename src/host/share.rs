//! Share links: a file's link and short code, a folder's page, sharing level and access
//! password. Links come with every listing (a mount shows them as `user.yetifs.*` attributes);
//! a folder's level and password change with `folder/edit`, which takes the password as the
//! MD5 hex of it, as the API page says.
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::{parent_of, Account};
use crate::api::model::Folder;
use crate::api::FolderEdit;

/// Who may see a folder: the `is_public` levels of the API.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Its owner only (0).
    Private,
    /// Anyone with its link (1).
    Unlisted,
    /// Anyone, and listed in the site's search (2).
    Public,
}

impl Level {
    /// The level the API's number stands for.
    pub fn from_api(level: u64) -> Option<Level> {
        match level {
            0 => Some(Level::Private),
            1 => Some(Level::Unlisted),
            2 => Some(Level::Public),
            _ => None,
        }
    }

    /// The API's number for the level.
    pub fn api(self) -> u8 {
        match self {
            Level::Private => 0,
            Level::Unlisted => 1,
            Level::Public => 2,
        }
    }

    /// The word shown for the level.
    pub fn word(self) -> &'static str {
        match self {
            Level::Private => "private",
            Level::Unlisted => "unlisted",
            Level::Public => "public",
        }
    }
}

/// What a file or folder shares, as the server gives it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ShareInfo {
    /// A file.
    File {
        /// Its id.
        id: u64,
        /// Its share link.
        url: Option<String>,
        /// Its short link code.
        short_url: Option<String>,
        /// How often it was downloaded.
        downloads: Option<u64>,
    },
    /// A folder.
    Folder {
        /// Its id.
        id: u64,
        /// Its page.
        url: Option<String>,
        /// Its sharing level.
        level: Option<Level>,
        /// Whether it has an access password, when known (listings do not say).
        #[serde(skip_serializing_if = "Option::is_none")]
        password: Option<bool>,
    },
}

/// A folder's access password to set, or its removal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Password {
    /// Set the password whose MD5 hex this is ([`md5_hex`]).
    Set(String),
    /// Take the password away.
    Remove,
}

/// The MD5 hex of `password`, the form `folder/edit` takes it in.
pub fn md5_hex(password: &str) -> String {
    Md5::digest(password.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A change of a folder's sharing.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShareChange {
    /// Its new level.
    pub level: Option<Level>,
    /// Its new password, or none.
    pub password: Option<Password>,
}

impl ShareChange {
    /// Whether it changes anything.
    pub fn is_empty(&self) -> bool {
        self.level.is_none() && self.password.is_none()
    }
}

/// What `yetifs share` asks a mount to change.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShareRequest {
    /// The folder, relative to the mount's root.
    pub path: String,
    /// The change.
    pub change: ShareChange,
}

/// Applies `change` to the folder at `path` of `account`, checks in the server's reply that
/// it took, and lists the folder holding it anew so that its attributes show the change.
/// Returns what the folder shares now.
pub async fn change<A: Account>(
    account: &A,
    path: &str,
    change: &ShareChange,
) -> Result<ShareInfo, String> {
    let Some(id) = account.folder(path).await? else {
        return Err("the root of the account has no sharing level: name a folder".into());
    };
    let edit = FolderEdit {
        is_public: change.level.map(Level::api),
        access_password: change.password.as_ref().map(|password| match password {
            Password::Set(md5) => md5.as_str(),
            Password::Remove => "",
        }),
        ..FolderEdit::default()
    };
    let folder = account
        .client()
        .folder_edit(id, &edit)
        .await
        .map_err(|e| e.to_string())?;
    let info = folder_info(&folder, true);
    check_took(change, &folder)?;
    account.relist(parent_of(path)).await;
    Ok(info)
}

/// What a folder the server described shares; `with_password`: the description is one that
/// carries `accessPassword` (`folder/info`, `folder/edit`; listings do not).
pub fn folder_info(folder: &Folder, with_password: bool) -> ShareInfo {
    ShareInfo::Folder {
        id: folder.id,
        url: folder.url_folder.clone(),
        level: folder.is_public.and_then(Level::from_api),
        password: with_password.then(|| has_password(folder)),
    }
}

/// Whether the server's description of a folder shows an access password.
fn has_password(folder: &Folder) -> bool {
    folder
        .access_password
        .as_deref()
        .is_some_and(|p| !p.trim().is_empty())
}

/// Refuses a change the server's reply shows it did not make, rather than saying it did.
fn check_took(change: &ShareChange, folder: &Folder) -> Result<(), String> {
    if let Some(level) = change.level {
        let now = folder.is_public.and_then(Level::from_api);
        if now != Some(level) {
            return Err(format!(
                "the server kept the folder {} instead of making it {}",
                now.map_or("at an unknown level", Level::word),
                level.word()
            ));
        }
    }
    match (&change.password, has_password(folder)) {
        (Some(Password::Remove), true) => Err(
            "the server kept the folder's access password: this host's API does not remove \
             one (the host's web page can)"
                .into(),
        ),
        (Some(Password::Set(_)), false) => {
            Err("the server did not keep the folder's access password".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(json: &str) -> Folder {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_password_goes_to_the_server_as_its_md5_hex() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex("password"), "5f4dcc3b5aa765d61d8327deb882cf99");
    }

    #[test]
    fn levels_are_the_apis_numbers() {
        for level in [Level::Private, Level::Unlisted, Level::Public] {
            assert_eq!(Level::from_api(level.api().into()), Some(level));
        }
        assert_eq!(Level::from_api(3), None);
    }

    #[test]
    fn a_change_the_reply_does_not_show_is_refused() {
        let public = folder(r#"{"id":1,"isPublic":"2","accessPassword":null}"#);
        let to_public = ShareChange {
            level: Some(Level::Public),
            password: None,
        };
        assert_eq!(check_took(&to_public, &public), Ok(()));
        let to_private = ShareChange {
            level: Some(Level::Private),
            password: None,
        };
        let refused = check_took(&to_private, &public).unwrap_err();
        assert!(refused.contains("kept the folder public"), "{refused}");
        let locked =
            folder(r#"{"id":1,"isPublic":2,"accessPassword":"5f4dcc3b5aa765d61d8327deb882cf99"}"#);
        let unlock = ShareChange {
            level: None,
            password: Some(Password::Remove),
        };
        assert!(check_took(&unlock, &locked).is_err());
        assert_eq!(check_took(&unlock, &public), Ok(()));
        let lock = ShareChange {
            level: None,
            password: Some(Password::Set(md5_hex("password"))),
        };
        assert_eq!(check_took(&lock, &locked), Ok(()));
        assert!(check_took(&lock, &public).is_err());
    }

    #[test]
    fn a_folder_reply_says_what_it_shares() {
        let shared = folder(
            r#"{"id":"7","isPublic":"1","accessPassword":"abc","url_folder":"http://h/folder/7/A"}"#,
        );
        assert_eq!(
            folder_info(&shared, true),
            ShareInfo::Folder {
                id: 7,
                url: Some("http://h/folder/7/A".into()),
                level: Some(Level::Unlisted),
                password: Some(true),
            }
        );
    }
}
