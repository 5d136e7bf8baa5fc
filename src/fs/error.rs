//! Why a filesystem operation failed, and the errno the kernel gets for it.
use std::sync::Arc;

use crate::remote::ApiError;

/// A failed filesystem operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FsError {
    /// No such inode, name or attribute holder.
    #[error("no such file or directory")]
    NotFound,
    /// A directory operation on a file.
    #[error("not a directory")]
    NotDir,
    /// A file operation on a directory.
    #[error("is a directory")]
    IsDir,
    /// A write was asked for where only reading is possible.
    #[error("read-only file system")]
    ReadOnly,
    /// The file handle is not open (or not of the right kind).
    #[error("bad file handle")]
    BadHandle,
    /// The extended attribute does not exist.
    #[error("no such attribute")]
    NoAttr,
    /// The permission bits do not allow the access asked for.
    #[error("permission denied")]
    Denied,
    /// The server call failed; shared by every request that waited on the same call.
    #[error(transparent)]
    Remote(Arc<ApiError>),
}

impl From<ApiError> for FsError {
    fn from(e: ApiError) -> Self {
        FsError::Remote(Arc::new(e))
    }
}

impl FsError {
    /// The errno to answer the kernel with.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::ReadOnly => libc::EROFS,
            FsError::BadHandle => libc::EBADF,
            FsError::NoAttr => libc::ENODATA,
            FsError::Denied => libc::EACCES,
            FsError::Remote(e) => e.errno(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_errors_map_to_their_errno() {
        assert_eq!(FsError::NotFound.errno(), libc::ENOENT);
        assert_eq!(FsError::NotDir.errno(), libc::ENOTDIR);
        assert_eq!(FsError::IsDir.errno(), libc::EISDIR);
        assert_eq!(FsError::ReadOnly.errno(), libc::EROFS);
        assert_eq!(FsError::BadHandle.errno(), libc::EBADF);
        assert_eq!(FsError::NoAttr.errno(), libc::ENODATA);
        assert_eq!(FsError::Denied.errno(), libc::EACCES);
    }

    #[test]
    fn remote_errors_keep_the_api_errno() {
        let cases = [
            (ApiError::NotFound("x".into()), libc::ENOENT),
            (ApiError::Transport("x".into()), libc::EIO),
            (ApiError::Token("x".into()), libc::EACCES),
            (ApiError::NoSpace("x".into()), libc::ENOSPC),
        ];
        for (api, errno) in cases {
            assert_eq!(FsError::from(api).errno(), errno);
        }
    }
}
