//! Times this mount knows and the server does not keep, so that `stat` shows what POSIX says:
//!
//! - the last status change (`ctime`) of an item: `chmod`, `chown`, `utimens`, `truncate`,
//!   `rename`, `unlink`. A file carries only its mtime, a folder nothing; a write moves the
//!   mtime, and the ctime shown is never older than the mtime, so writes need no record;
//! - a directory's modification by a change of its entries (create, remove, rename in or out):
//!   its mtime and ctime become now, until `utimens` sets its mtime again;
//! - a file's access time as `utimens` left it (set, or kept while only the mtime was set),
//!   shown for as long as the file keeps the mtime it had then (a write, or another machine's
//!   change, makes the atime the mtime again).
//!
//! They are kept in memory for the life of the mount, for the `KEPT` items changed last: an
//! item not among them (and every item after a remount) shows its mtime as ctime and atime.
use std::num::NonZeroUsize;
use std::time::SystemTime;

use lru::LruCache;

use super::attr::Attr;
use super::namespace::inode::Ino;
use crate::sync::Mutex;

/// Items whose times are kept. A few dozen bytes each: a mount that changes more items than
/// this forgets the oldest changes, which then show the item's mtime.
const KEPT: usize = 100_000;

/// What is kept of one item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Stamps {
    /// The last status change.
    ctime: Option<SystemTime>,
    /// A directory's last change of entries.
    mtime: Option<SystemTime>,
    /// An access time set on a file, and the mtime the file showed when it was set.
    atime: Option<(SystemTime, SystemTime)>,
}

/// The times of the items changed through this mount, by inode (numbers are stable while
/// mounted).
pub(super) struct LocalTimes {
    kept: Mutex<LruCache<Ino, Stamps>>,
}

impl Default for LocalTimes {
    fn default() -> Self {
        let kept = NonZeroUsize::new(KEPT).unwrap_or(NonZeroUsize::MIN);
        Self {
            kept: Mutex::new(LruCache::new(kept)),
        }
    }
}

impl LocalTimes {
    fn change(&self, ino: Ino, change: impl FnOnce(&mut Stamps)) {
        let mut kept = self.kept.lock();
        let stamps = kept.get_or_insert_mut(ino, Stamps::default);
        change(stamps);
    }

    /// The status of `ino` changed now (attributes set, renamed, unlinked).
    pub(super) fn status_changed(&self, ino: Ino) {
        let now = SystemTime::now();
        self.change(ino, |s| s.ctime = Some(now));
    }

    /// An entry of directory `dir` was created, removed or renamed now.
    pub(super) fn entries_changed(&self, dir: Ino) {
        let now = SystemTime::now();
        self.change(dir, |s| {
            s.ctime = Some(now);
            s.mtime = Some(now);
        });
    }

    /// `utimens` set the mtime of `ino`: it shows that from now on, not the time of its last
    /// change of entries.
    pub(super) fn mtime_set(&self, ino: Ino) {
        self.change(ino, |s| s.mtime = None);
    }

    /// `utimens` left file `ino` with access time `atime` and mtime `mtime`.
    pub(super) fn atime_set(&self, ino: Ino, atime: SystemTime, mtime: SystemTime) {
        self.change(ino, |s| s.atime = Some((atime, mtime)));
    }

    /// `attr` with the times kept for its inode.
    pub(super) fn apply(&self, mut attr: Attr) -> Attr {
        let Some(stamps) = self.kept.lock().peek(&attr.ino).copied() else {
            return attr;
        };
        if let Some(mtime) = stamps.mtime {
            attr.mtime = mtime;
        }
        attr.ctime = stamps.ctime.map_or(attr.mtime, |c| c.max(attr.mtime));
        match stamps.atime {
            Some((atime, at)) if at == attr.mtime => attr.atime = atime,
            Some(_) => attr.atime = attr.mtime,
            None => {}
        }
        attr
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::fs::attr::{local_file_attr, Owner};

    const OWNER: Owner = Owner { uid: 1, gid: 1 };

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn file(ino: Ino, mtime: SystemTime) -> Attr {
        let mut attr = local_file_attr(ino, 1, false, OWNER);
        attr.mtime = mtime;
        attr.atime = mtime;
        attr.ctime = mtime;
        attr
    }

    #[test]
    fn an_item_with_nothing_kept_shows_its_mtime_as_ctime() {
        let times = LocalTimes::default();
        let attr = file(2, at(100));
        assert_eq!(times.apply(attr), attr);
    }

    #[test]
    fn a_status_change_moves_the_ctime_only() {
        let times = LocalTimes::default();
        times.status_changed(2);
        let shown = times.apply(file(2, at(100)));
        assert_eq!((shown.mtime, shown.atime), (at(100), at(100)));
        assert!(shown.ctime > at(100));
    }

    #[test]
    fn the_ctime_shown_is_never_older_than_the_mtime() {
        let times = LocalTimes::default();
        times.status_changed(2);
        let later = SystemTime::now() + Duration::from_secs(3600);
        assert_eq!(times.apply(file(2, later)).ctime, later);
    }

    #[test]
    fn a_change_of_entries_moves_a_directorys_mtime_until_utimens_sets_it() {
        let times = LocalTimes::default();
        times.entries_changed(3);
        let shown = times.apply(file(3, at(100)));
        assert!(shown.mtime > at(100));
        assert_eq!(shown.ctime, shown.mtime);
        times.mtime_set(3);
        assert_eq!(times.apply(file(3, at(50))).mtime, at(50));
    }

    #[test]
    fn an_atime_set_lasts_while_the_mtime_it_was_set_with_does() {
        let times = LocalTimes::default();
        times.atime_set(2, at(7), at(100));
        assert_eq!(times.apply(file(2, at(100))).atime, at(7));
        assert_eq!(times.apply(file(2, at(200))).atime, at(200));
    }
}
