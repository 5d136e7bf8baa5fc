//! Why a filesystem operation failed, and the errno the kernel gets for it.
use std::sync::Arc;

use crate::cache::CacheError;
use crate::remote::RemoteError;
use crate::staging::{JournalError, StagingError};

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
    /// The name is taken (and the operation may not replace it).
    #[error("file exists")]
    Exists,
    /// A directory that must be empty is not.
    #[error("directory not empty")]
    NotEmpty,
    /// The request makes no sense here (a folder into its own subtree, a reserved name).
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// The name is longer than the server and the kernel allow.
    #[error("file name too long")]
    NameTooLong,
    /// The name has characters the server cannot store (outside the Basic Multilingual Plane).
    #[error("name has characters the server cannot store")]
    BadName,
    /// The file is larger than the account's package accepts.
    #[error("{size} bytes is over the package's upload limit of {max} bytes")]
    TooLarge {
        /// The size the file would have.
        size: u64,
        /// The package's `max_upload_size`.
        max: u64,
    },
    /// The operation is not available on this filesystem in this form.
    #[error("operation not supported")]
    Unsupported,
    /// The operation is refused by design (links, device files).
    #[error("operation not permitted")]
    NotPermitted,
    /// The metadata store failed.
    #[error(transparent)]
    Meta(Arc<CacheError>),
    /// The local staging area failed.
    #[error(transparent)]
    Staging(Arc<StagingError>),
    /// The file handle is not open (or not of the right kind).
    #[error("bad file handle")]
    BadHandle,
    /// The extended attribute does not exist.
    #[error("no such attribute")]
    NoAttr,
    /// The permission bits do not allow the access asked for.
    #[error("permission denied")]
    Denied,
    /// The server cannot be reached and what was asked for is not cached.
    #[error("the server is unreachable and this is not cached")]
    Unreachable,
    /// The server cannot be reached: the mount is read-only until it answers again.
    #[error("read-only while the server is unreachable")]
    Offline,
    /// The server call failed; shared by every request that waited on the same call.
    #[error(transparent)]
    Remote(Arc<RemoteError>),
    /// The upload a `close` or `fsync` waited for failed. Uploads also run with nobody waiting
    /// (write-back, retries), so the upload logs its failure itself: this says it did.
    #[error("upload failed: {0}")]
    Upload(Arc<FsError>),
}

impl From<RemoteError> for FsError {
    fn from(e: RemoteError) -> Self {
        FsError::Remote(Arc::new(e))
    }
}

impl From<StagingError> for FsError {
    fn from(e: StagingError) -> Self {
        FsError::Staging(Arc::new(e))
    }
}

impl From<CacheError> for FsError {
    fn from(e: CacheError) -> Self {
        FsError::Meta(Arc::new(e))
    }
}

impl From<JournalError> for FsError {
    fn from(e: JournalError) -> Self {
        StagingError::from(e).into()
    }
}

impl FsError {
    /// Whether the failure is the server being out of reach (rather than refusing).
    pub fn is_unreachable(&self) -> bool {
        match self {
            FsError::Unreachable | FsError::Offline => true,
            FsError::Remote(e) => super::connectivity::is_unreachable(e),
            FsError::Upload(e) => e.is_unreachable(),
            _ => false,
        }
    }

    /// The level the adapter logs the failure at: `Warn` for trouble with the server, the
    /// network or the local disk, or a file too large for the package; `Debug` for an answer
    /// to what the caller asked (no such name, not empty, refused by design, read-only while
    /// offline, which the mount said once when it went offline), and for an upload's failure,
    /// which the upload logged itself.
    pub fn log_level(&self) -> log::Level {
        let trouble = match self {
            FsError::TooLarge { .. }
            | FsError::Meta(_)
            | FsError::Staging(_)
            | FsError::Unreachable => true,
            FsError::Remote(e) => !matches!(e.as_ref(), RemoteError::NotFound(_)),
            FsError::NotFound
            | FsError::NotDir
            | FsError::IsDir
            | FsError::Exists
            | FsError::NotEmpty
            | FsError::Invalid(_)
            | FsError::NameTooLong
            | FsError::BadName
            | FsError::Unsupported
            | FsError::NotPermitted
            | FsError::BadHandle
            | FsError::NoAttr
            | FsError::Denied
            | FsError::Offline
            | FsError::Upload(_) => false,
        };
        if trouble {
            log::Level::Warn
        } else {
            log::Level::Debug
        }
    }

    /// The errno to answer the kernel with.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::Exists => libc::EEXIST,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::Invalid(_) => libc::EINVAL,
            FsError::NameTooLong => libc::ENAMETOOLONG,
            FsError::BadName => libc::EILSEQ,
            FsError::TooLarge { .. } => libc::EFBIG,
            FsError::Unsupported => libc::EOPNOTSUPP,
            FsError::NotPermitted => libc::EPERM,
            FsError::Meta(_) => libc::EIO,
            FsError::Staging(e) => match e.as_ref() {
                StagingError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
                StagingError::Journal(_) => libc::EIO,
            },
            FsError::BadHandle => libc::EBADF,
            FsError::NoAttr => libc::ENODATA,
            FsError::Denied => libc::EACCES,
            FsError::Unreachable => libc::EIO,
            FsError::Offline => libc::EROFS,
            FsError::Remote(e) => e.errno(),
            FsError::Upload(e) => e.errno(),
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
        assert_eq!(FsError::Exists.errno(), libc::EEXIST);
        assert_eq!(FsError::NotEmpty.errno(), libc::ENOTEMPTY);
        assert_eq!(FsError::Invalid("x").errno(), libc::EINVAL);
        assert_eq!(FsError::NameTooLong.errno(), libc::ENAMETOOLONG);
        assert_eq!(FsError::BadName.errno(), libc::EILSEQ);
        assert_eq!(FsError::TooLarge { size: 2, max: 1 }.errno(), libc::EFBIG);
        assert_eq!(FsError::Unsupported.errno(), libc::EOPNOTSUPP);
        assert_eq!(FsError::NotPermitted.errno(), libc::EPERM);
        assert_eq!(FsError::BadHandle.errno(), libc::EBADF);
        assert_eq!(FsError::NoAttr.errno(), libc::ENODATA);
        assert_eq!(FsError::Denied.errno(), libc::EACCES);
        assert_eq!(FsError::Unreachable.errno(), libc::EIO);
        assert_eq!(FsError::Offline.errno(), libc::EROFS);
    }

    #[test]
    fn server_network_and_disk_failures_are_warnings_answers_to_the_caller_are_not() {
        let trouble = [
            FsError::Unreachable,
            FsError::TooLarge { size: 2, max: 1 },
            FsError::from(RemoteError::Transport("reset".into())),
            FsError::from(RemoteError::NoSpace("full".into())),
        ];
        for e in trouble {
            assert_eq!(e.log_level(), log::Level::Warn, "{e}");
        }
        let answers = [
            FsError::NotFound,
            FsError::NotEmpty,
            FsError::NameTooLong,
            FsError::Offline,
            FsError::from(RemoteError::NotFound("gone".into())),
            FsError::Upload(Arc::new(FsError::Unreachable)),
        ];
        for e in answers {
            assert_eq!(e.log_level(), log::Level::Debug, "{e}");
        }
        let upload = FsError::Upload(Arc::new(FsError::from(RemoteError::NoSpace("x".into()))));
        assert_eq!(upload.errno(), libc::ENOSPC);
    }

    #[test]
    fn remote_errors_keep_the_api_errno() {
        let cases = [
            (RemoteError::NotFound("x".into()), libc::ENOENT),
            (RemoteError::Transport("x".into()), libc::EIO),
            (RemoteError::Token("x".into()), libc::EACCES),
            (RemoteError::NoSpace("x".into()), libc::ENOSPC),
        ];
        for (api, errno) in cases {
            assert_eq!(FsError::from(api).errno(), errno);
        }
    }
}
