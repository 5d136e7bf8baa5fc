//! Symbolic links. The server has no links: a link is a file whose content is its target,
//! marked `inode/symlink` in its `fileType` (`remote::file_meta`), so every mount shows it as a
//! link. rclone's links (`NAME.rclonelink` holding the target) read the same way. The kernel
//! follows links itself: all the filesystem does is create them and say where they point.
use bytes::Bytes;

use super::attr::{Attr, Kind};
use super::core::Core;
use super::error::FsError;
use super::namespace::inode::{Ino, NodeData};
use crate::remote::file_meta::MAX_TARGET;
use crate::remote::Remote;

impl<R: Remote> Core<R> {
    /// Creates the link `name` in `parent` pointing at `target`, and uploads it; counts one
    /// lookup. Targets longer than `MAX_TARGET` bytes are refused (`ENAMETOOLONG`).
    pub async fn symlink(&self, parent: Ino, name: &str, target: &[u8]) -> Result<Attr, FsError> {
        if target.len() > MAX_TARGET {
            return Err(FsError::NameTooLong);
        }
        if target.is_empty() {
            return Err(FsError::NotFound);
        }
        self.writable()?;
        if self.children(parent).await?.find(name).is_some() {
            return Err(FsError::Exists);
        }
        let (ino, staged) = self.new_file(parent, name, 0o777, true).await?;
        staged.file.write_at(0, target.to_vec()).await?;
        staged.lock_state().size = target.len() as u64;
        self.closed(ino).await?;
        self.unstage_if_idle(ino);
        self.getattr(ino).await
    }

    /// Where link `ino` points (`EINVAL` if it is no link). The target is the file's content:
    /// read once from the server, then from the content cache.
    pub async fn readlink(&self, ino: Ino) -> Result<Bytes, FsError> {
        let data = self.node_data(ino)?;
        if self.kind_of(&data) != Kind::Symlink {
            return Err(FsError::Invalid("not a symbolic link"));
        }
        let file = match data {
            NodeData::File(file) if self.staged_of(ino).is_none() => file,
            // Staged bytes (a link not uploaded yet) are the target as it stands.
            _ => {
                let staged = self.stage(ino).await?;
                self.materialize(&staged).await?;
                let size = staged.lock_state().size;
                let len = usize::try_from(size).map_err(|_| FsError::NameTooLong)?;
                return Ok(Bytes::from(staged.file.read_at(0, len).await?));
            }
        };
        if file.size > MAX_TARGET as u64 {
            return Err(FsError::NameTooLong);
        }
        if !self.link.is_online()
            && !self
                .reads
                .content
                .is_cached(file.id, file.size, 0, file.size as u32)
        {
            return Err(FsError::Unreachable);
        }
        let target = self
            .reads
            .content
            .open(file.id, file.size)
            .read(0, file.size as u32)
            .await?;
        if target.len() as u64 != file.size {
            return Err(FsError::Invalid("a symbolic link's target was cut short"));
        }
        Ok(target)
    }
}
