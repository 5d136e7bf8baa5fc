//! File attributes as the core reports them, free of fuser types: the POSIX face of a remote
//! item (mode, owner, size, times) following DESIGN.md's semantics.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::namespace::inode::Ino;
use crate::cache::Overlay;
use crate::remote::{FileEntry, FileKind, FolderEntry};

/// Mode bits of every file.
pub const FILE_PERM: u16 = 0o644;
/// Mode bits of every directory.
pub const DIR_PERM: u16 = 0o755;
/// Mode bits of a symbolic link (Linux ignores them and shows these).
pub const LINK_PERM: u16 = 0o777;
/// The I/O size `stat` suggests: large, since every request to the server is costly. 1 MiB,
/// the mount's largest read and write, so that `cp` and friends (which size their buffer from
/// `st_blksize`) send one FUSE request per MiB instead of eight.
pub const BLOCK_SIZE: u32 = 1024 * 1024;

/// What an inode is: a folder, or a file that stands for a regular file or a symbolic link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory (a folder, or the root).
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (a file holding its target).
    Symlink,
}

impl Kind {
    /// The inode kind of a file of kind `kind`.
    pub fn of_file(kind: FileKind) -> Kind {
        match kind {
            FileKind::Symlink => Kind::Symlink,
            FileKind::Regular | FileKind::Empty => Kind::File,
        }
    }
}

/// Who owns every item of the mount (the server has no owners).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// User id shown as owner.
    pub uid: u32,
    /// Group id shown as owner.
    pub gid: u32,
}

/// What `stat` shows for one inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// Directory or file.
    pub kind: Kind,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Size in 512-byte blocks.
    pub blocks: u64,
    /// Last access: the server does not track reads, so the modification time, unless set
    /// with `utimens` (see `local_times`).
    pub atime: SystemTime,
    /// Last modification.
    pub mtime: SystemTime,
    /// Last status change: the modification time, or the last change of status made through
    /// this mount if later (see `local_times`).
    pub ctime: SystemTime,
    /// Permission bits.
    pub perm: u16,
    /// Link count: 1 for files; 1 for directories too, which tells `find` and friends that
    /// subdirectories are not counted (as btrfs does); 0 for an item removed while still open.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Preferred I/O size.
    pub blksize: u32,
    /// The times are a stand-in: the file's upload date is not known yet, and was not waited
    /// for (a lookup, a `readdirplus`). The kernel must not keep these attributes, so that a
    /// `stat` asks again and waits for the date; a walk that never stats (`find`) never does.
    pub provisional: bool,
}

/// Seconds since the epoch as a time; times before the epoch are clamped to it.
pub fn epoch_seconds(seconds: Option<i64>) -> SystemTime {
    let secs = seconds.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The attributes of a file of kind `kind`, modified at its upload time, before what it
/// carries and what is set locally are applied.
pub fn file_attr(
    ino: Ino,
    entry: &FileEntry,
    kind: FileKind,
    uploaded: Option<i64>,
    owner: Owner,
) -> Attr {
    let time = epoch_seconds(uploaded);
    let kind = Kind::of_file(kind);
    Attr {
        ino,
        kind,
        size: entry.size,
        blocks: entry.size.div_ceil(512),
        atime: time,
        mtime: time,
        ctime: time,
        perm: if kind == Kind::Symlink {
            LINK_PERM
        } else {
            FILE_PERM
        },
        nlink: 1,
        uid: owner.uid,
        gid: owner.gid,
        blksize: BLOCK_SIZE,
        provisional: false,
    }
}

/// The attributes of a file the server does not have yet (or not as it is now), before its
/// times and mode are applied.
pub fn local_file_attr(ino: Ino, size: u64, symlink: bool, owner: Owner) -> Attr {
    Attr {
        ino,
        kind: if symlink { Kind::Symlink } else { Kind::File },
        size,
        blocks: size.div_ceil(512),
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        perm: if symlink { LINK_PERM } else { FILE_PERM },
        nlink: 1,
        uid: owner.uid,
        gid: owner.gid,
        blksize: BLOCK_SIZE,
        provisional: false,
    }
}

/// The attributes of a directory: a folder's times are its last update (else its creation);
/// the root, which has none, shows `fallback`.
pub fn dir_attr(
    ino: Ino,
    folder: Option<&FolderEntry>,
    fallback: SystemTime,
    owner: Owner,
) -> Attr {
    let time = folder
        .and_then(|f| f.updated.or(f.created))
        .map_or(fallback, |t| epoch_seconds(Some(t)));
    Attr {
        ino,
        kind: Kind::Dir,
        size: 0,
        blocks: 0,
        atime: time,
        mtime: time,
        ctime: time,
        perm: DIR_PERM,
        nlink: 1,
        uid: owner.uid,
        gid: owner.gid,
        blksize: BLOCK_SIZE,
        provisional: false,
    }
}

impl Attr {
    /// These attributes with the times, permission bits and owner set through a mount
    /// (`utimens`, `chmod`, `chown`).
    pub fn with_overlay(mut self, overlay: &Overlay) -> Self {
        if let Some(mtime) = overlay.mtime {
            self.mtime = mtime;
            self.ctime = mtime;
        }
        if let Some(atime) = overlay.atime {
            self.atime = atime;
        }
        if let Some(mode) = overlay.mode.filter(|_| self.kind != Kind::Symlink) {
            self.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = overlay.uid {
            self.uid = uid;
        }
        if let Some(gid) = overlay.gid {
            self.gid = gid;
        }
        self
    }

    /// Whether a caller with `uid`/`gid` may access this inode as `mask` (`R_OK`, `W_OK`,
    /// `X_OK` bits) by its permission bits; root may do anything but execute a file no one
    /// may execute.
    pub fn permits(&self, uid: u32, gid: u32, mask: i32) -> bool {
        let wanted = (mask & (libc::R_OK | libc::W_OK | libc::X_OK)) as u16;
        if uid == 0 {
            let any_exec = self.perm & 0o111 != 0;
            return wanted & (libc::X_OK as u16) == 0 || any_exec;
        }
        let granted = if uid == self.uid {
            self.perm >> 6
        } else if gid == self.gid {
            self.perm >> 3
        } else {
            self.perm
        } & 0o7;
        wanted & !granted == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Owner = Owner {
        uid: 1000,
        gid: 100,
    };

    fn entry(size: u64) -> FileEntry {
        FileEntry {
            id: 1,
            folder: None,
            name: "f".into(),
            size,
            short_url: String::new(),
            url: None,
            downloads: 0,
            trashed: false,
            file_type: String::new(),
        }
    }

    #[test]
    fn a_file_is_0644_owned_by_the_mount_owner_and_dated_by_its_upload() {
        let attr = file_attr(
            5,
            &entry(1025),
            FileKind::Regular,
            Some(1_700_000_000),
            OWNER,
        );
        assert_eq!((attr.kind, attr.perm, attr.nlink), (Kind::File, 0o644, 1));
        assert_eq!((attr.uid, attr.gid), (1000, 100));
        assert_eq!((attr.size, attr.blocks), (1025, 3));
        assert_eq!(attr.mtime, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    }

    #[test]
    fn a_folder_is_0755_dated_by_its_update_or_else_its_creation() {
        let mut folder = FolderEntry {
            id: 1,
            parent: None,
            name: "d".into(),
            is_public: 0,
            created: Some(100),
            updated: Some(200),
            url: None,
            trashed: false,
        };
        let attr = dir_attr(2, Some(&folder), UNIX_EPOCH, OWNER);
        assert_eq!((attr.kind, attr.perm), (Kind::Dir, 0o755));
        assert_eq!(attr.mtime, UNIX_EPOCH + Duration::from_secs(200));
        folder.updated = None;
        let attr = dir_attr(2, Some(&folder), UNIX_EPOCH, OWNER);
        assert_eq!(attr.mtime, UNIX_EPOCH + Duration::from_secs(100));
    }

    #[test]
    fn local_times_and_mode_override_the_servers() {
        let attr = file_attr(5, &entry(1), FileKind::Regular, Some(100), OWNER);
        let set = UNIX_EPOCH + Duration::new(1_234, 5);
        let overlay = Overlay {
            mtime: Some(set),
            mode: Some(0o100_600),
            uid: Some(0),
            ..Overlay::default()
        };
        let shown = attr.with_overlay(&overlay);
        assert_eq!(
            (shown.mtime, shown.atime, shown.perm),
            (set, attr.atime, 0o600)
        );
        assert_eq!((shown.uid, shown.gid), (0, OWNER.gid));
        assert_eq!(attr.with_overlay(&Overlay::default()), attr);
    }

    #[test]
    fn a_symlink_is_0777_whatever_mode_it_was_given() {
        let attr = file_attr(5, &entry(9), FileKind::Symlink, None, OWNER);
        assert_eq!((attr.kind, attr.perm, attr.size), (Kind::Symlink, 0o777, 9));
        let overlay = Overlay {
            mode: Some(0o600),
            ..Overlay::default()
        };
        assert_eq!(attr.with_overlay(&overlay).perm, 0o777);
    }

    #[test]
    fn unknown_or_negative_times_fall_back_to_the_epoch() {
        assert_eq!(epoch_seconds(None), UNIX_EPOCH);
        assert_eq!(epoch_seconds(Some(-5)), UNIX_EPOCH);
    }

    #[test]
    fn permission_bits_decide_access_for_owner_group_and_others() {
        let attr = file_attr(5, &entry(1), FileKind::Regular, None, OWNER);
        assert!(attr.permits(1000, 1, libc::R_OK | libc::W_OK));
        assert!(!attr.permits(1000, 1, libc::X_OK));
        assert!(attr.permits(2000, 100, libc::R_OK));
        assert!(!attr.permits(2000, 100, libc::W_OK));
        assert!(!attr.permits(2000, 2000, libc::W_OK));
        assert!(attr.permits(0, 0, libc::R_OK | libc::W_OK));
        assert!(!attr.permits(0, 0, libc::X_OK));
        let dir = dir_attr(1, None, UNIX_EPOCH, OWNER);
        assert!(dir.permits(0, 0, libc::X_OK));
        assert!(dir.permits(2000, 2000, libc::R_OK | libc::X_OK));
    }
}
