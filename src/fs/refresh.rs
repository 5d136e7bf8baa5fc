//! A folder of the mount named by its path, for the commands that act on one through the
//! control socket (`yetifs fetch`, `yetifs share`), with its listing fetched anew when the
//! server changed it behind the mount's back.
use std::time::Duration;

use super::core::Core;
use super::error::FsError;
use super::namespace::inode::ROOT_INO;
use crate::remote::Remote;

impl<R: Remote> Core<R> {
    /// The folder id of the directory at `path`, relative to the mount's root and in the names
    /// the mount shows (`""`: the root, `None`); a file there is `NotDir`. The way there is
    /// looked up as the kernel would, from listings while fresh. With `relist`, the folder's
    /// own listing is then fetched from the server whatever its age, so that what the server
    /// added or changed without the mount (a file a URL upload stored, a subfolder's sharing
    /// level) shows at once.
    pub async fn folder_at(&self, path: &str, relist: bool) -> Result<Option<u64>, FsError> {
        let mut dir = ROOT_INO;
        for name in path.split('/').filter(|name| !name.is_empty()) {
            let listed = self.children(dir).await?;
            dir = listed.find(name).ok_or(FsError::NotFound)?.ino;
        }
        let folder = self.folder_of(dir)?;
        if relist {
            self.children_within(dir, Duration::ZERO).await?;
        }
        Ok(folder)
    }
}
