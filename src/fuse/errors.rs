//! Requests that failed, counted by operation and errno for `yetifs status`, and the names of
//! errnos for logs.
use std::collections::{BTreeMap, HashMap};

use crate::sync::Mutex;

/// Requests that failed, by operation and errno, for `yetifs status`. A small map behind a
/// mutex, touched only when a request fails.
#[derive(Debug, Default)]
pub struct Errors {
    counts: Mutex<HashMap<(&'static str, i32), u64>>,
}

impl Errors {
    /// Counts one failure of `op` with `errno`.
    pub(super) fn count(&self, op: &'static str, errno: i32) {
        let mut counts = self.counts.lock();
        *counts.entry((op, errno)).or_default() += 1;
    }

    /// The failures so far, by operation, then by errno name (`lookup` → `ENOENT` → 12).
    pub fn counts(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let counts = self.counts.lock();
        let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (&(op, errno), &n) in counts.iter() {
            out.entry(op.to_owned())
                .or_default()
                .insert(errno_name(errno), n);
        }
        out
    }
}

/// The symbolic name of `errno` (`ENOENT`), for logs and `yetifs status`.
pub(super) fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENODATA => "ENODATA",
        libc::EILSEQ => "EILSEQ",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EDQUOT => "EDQUOT",
        _ => return format!("errno {errno}"),
    };
    name.to_owned()
}
