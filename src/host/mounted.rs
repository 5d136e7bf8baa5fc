//! The account a running mount is logged into, for the control socket's `fetch` and `share`:
//! folders are found through the mount's own listings, and a folder the server changed is
//! listed anew so that the mount shows the change at once.
use std::path::Path;
use std::sync::Arc;

use super::Account;
use crate::api::Client;
use crate::cache::lacks::UrlUploadSupport;
use crate::fs::{Core, FsError};

/// A mount's account: its core, the client the core uses, and what is known of the host.
pub struct MountedAccount {
    core: Arc<Core<Client>>,
    client: Arc<Client>,
    url_upload: UrlUploadSupport,
}

impl MountedAccount {
    /// The account of the mount made of `core` over `client`, whose cache directory is
    /// `account_dir`.
    pub fn new(core: Arc<Core<Client>>, client: Arc<Client>, account_dir: &Path) -> Arc<Self> {
        Arc::new(MountedAccount {
            core,
            client,
            url_upload: UrlUploadSupport::open(Some(account_dir)),
        })
    }
}

impl Account for MountedAccount {
    fn client(&self) -> &Client {
        &self.client
    }

    fn url_upload(&self) -> &UrlUploadSupport {
        &self.url_upload
    }

    async fn folder(&self, path: &str) -> Result<Option<u64>, String> {
        self.core.folder_at(path, false).await.map_err(|e| match e {
            FsError::NotFound => format!("{}: no such folder in the mount", shown(path)),
            FsError::NotDir => format!("{}: not a folder", shown(path)),
            other => format!("{}: {other}", shown(path)),
        })
    }

    async fn relist(&self, path: &str) {
        if let Err(e) = self.core.folder_at(path, true).await {
            log::warn!("cannot list {} anew: {e}", shown(path));
        }
    }
}

/// A path relative to the mount's root as messages show it.
fn shown(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/'))
}
