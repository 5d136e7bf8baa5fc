//! What the task of every request shares: the core, and the one place a failed request is
//! counted and logged (once, at the level its error calls for), with replies common to several
//! operations.
use std::sync::Arc;
use std::time::Duration;

use fuser::{Errno, ReplyEmpty, ReplyEntry, ReplyXattr};

use crate::fs::{Attr, Core, FsError};
use crate::remote::Remote;

use super::convert::file_attr;
use super::errors::{errno_name, Errors};
use super::GENERATION;

/// What a failed request was about, for its log line.
#[derive(Clone, Copy, Debug)]
pub(super) enum At<'a> {
    /// An inode: the request's own, or the one its handle is open on.
    Ino(u64),
    /// Entry `name` of directory `parent`.
    Entry(u64, &'a str),
    /// A rename: entry `name` of `parent` to entry `newname` of `newparent`.
    Rename(u64, &'a str, u64, &'a str),
}

/// What the task of every request shares: the core, and the count of failures.
pub(super) struct Shared<R: Remote> {
    pub(super) core: Arc<Core<R>>,
    pub(super) errors: Arc<Errors>,
}

impl<R: Remote> Shared<R> {
    /// Counts and logs failed request `op` about `at`, at the level `error` calls for
    /// (`FsError::log_level`: warn for trouble with the server, the network or the disk, debug
    /// for an answer to what was asked); the errno to answer with. Every failed request goes
    /// through here (or `refused`), so each is logged once.
    pub(super) fn failed(&self, op: &'static str, at: At<'_>, error: &FsError) -> Errno {
        self.record(op, at, error.errno(), error.log_level(), error)
    }

    /// Like `failed`, for what the adapter refuses itself: names it cannot take, requests a
    /// filesystem of remote files has nothing for. An answer, logged at debug.
    pub(super) fn refused(&self, op: &'static str, at: At<'_>, errno: Errno, why: &str) -> Errno {
        self.record(op, at, errno.code(), log::Level::Debug, &why)
    }

    /// Where `failed` and `refused` meet: the one place a failure is counted and logged.
    fn record(
        &self,
        op: &'static str,
        at: At<'_>,
        errno: i32,
        level: log::Level,
        why: &dyn std::fmt::Display,
    ) -> Errno {
        self.errors.count(op, errno);
        if log::log_enabled!(level) {
            let at = self.describe(at);
            log::log!(level, "{op} {at}: {why} ({})", errno_name(errno));
        }
        Errno::from_i32(errno)
    }

    /// `at` as a path in the mount where the inodes are known, else by inode number.
    fn describe(&self, at: At<'_>) -> String {
        let path = |ino: u64| match self.core.path_of(ino) {
            Some(path) => format!("/{path}"),
            None => format!("inode {ino}"),
        };
        let entry = |parent: u64, name: &str| match self.core.path_of(parent) {
            Some(dir) if dir.is_empty() => format!("/{name}"),
            Some(dir) => format!("/{dir}/{name}"),
            None => format!("{name} in inode {parent}"),
        };
        match at {
            At::Ino(ino) => path(ino),
            At::Entry(parent, name) => entry(parent, name),
            At::Rename(parent, name, newparent, newname) => {
                format!("{} to {}", entry(parent, name), entry(newparent, newname))
            }
        }
    }

    /// Answers an operation that returns nothing but its outcome.
    pub(super) fn reply_empty(
        &self,
        reply: ReplyEmpty,
        op: &'static str,
        at: At<'_>,
        result: Result<(), FsError>,
    ) {
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.failed(op, at, &e)),
        }
    }

    /// Answers an operation that makes an entry (`mknod`, `symlink`, `mkdir`): its attributes,
    /// which the kernel may keep for `ttl`.
    pub(super) fn reply_entry(
        &self,
        reply: ReplyEntry,
        op: &'static str,
        at: At<'_>,
        ttl: Duration,
        result: Result<Attr, FsError>,
    ) {
        match result {
            Ok(attr) => reply.entry(&ttl, &file_attr(&attr), GENERATION),
            Err(e) => reply.error(self.failed(op, at, &e)),
        }
    }

    /// Answers an xattr request: the size when asked with size 0, `ERANGE` when the buffer is
    /// too small (the caller asks again with a larger one), else the bytes.
    pub(super) fn reply_xattr(
        &self,
        reply: ReplyXattr,
        op: &'static str,
        ino: u64,
        size: u32,
        data: &[u8],
    ) {
        match u32::try_from(data.len()) {
            Ok(len) if size == 0 => reply.size(len),
            Ok(len) if len <= size => reply.data(data),
            _ => reply.error(self.refused(op, At::Ino(ino), Errno::ERANGE, "buffer too small")),
        }
    }
}
