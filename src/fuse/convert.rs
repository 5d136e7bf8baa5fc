//! Between the core's types and fuser's: attributes, file types, open flags, times and names.
use std::ffi::OsStr;

use std::time::Duration;

use fuser::{Errno, FileAttr, FileType, FopenFlags, INodeNo, TimeOrNow};
use std::time::SystemTime;

use crate::fs::namespace::names;
use crate::fs::{Attr, Kind, Opened};

/// The kernel's file type of a kind of item.
pub(super) fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
    }
}

/// The kernel's attributes of an item.
pub(super) fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(attr.ino),
        size: attr.size,
        blocks: attr.blocks,
        atime: attr.atime,
        mtime: attr.mtime,
        ctime: attr.ctime,
        crtime: attr.mtime,
        kind: file_type(attr.kind),
        perm: attr.perm,
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        rdev: 0,
        blksize: attr.blksize,
        flags: 0,
    }
}

/// How long the kernel may keep `attr`: not at all when provisional (its times stand in for an
/// upload date not known yet), so that the next `stat` asks for it.
pub(super) fn attr_ttl(attr: &Attr, ttl: Duration) -> Duration {
    if attr.provisional {
        Duration::ZERO
    } else {
        ttl
    }
}

/// The open flags the kernel gets for a handle.
pub(super) fn fopen_flags(opened: &Opened) -> FopenFlags {
    if opened.keep_cache {
        FopenFlags::FOPEN_KEEP_CACHE
    } else {
        FopenFlags::empty()
    }
}

/// A time `setattr` asks for, `now` resolved.
pub(super) fn time_of(time: Option<TimeOrNow>) -> Option<SystemTime> {
    time.map(|t| match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    })
}

/// A file name from the kernel, which passes names of up to 1,024 bytes: `ENAMETOOLONG` past
/// `NAME_MAX`, else the name as UTF-8, or `not_utf8` for a name that is not (no entry has one,
/// and none can be stored on the server).
pub(super) fn name_arg(name: &OsStr, not_utf8: Errno) -> Result<String, (Errno, &'static str)> {
    if name.len() > names::NAME_MAX {
        return Err((Errno::ENAMETOOLONG, "name longer than 255 bytes"));
    }
    name.to_str()
        .map(str::to_owned)
        .ok_or((not_utf8, "name not in UTF-8"))
}
