//! The metadata store: what the server cannot tell or keep for us, by remote id. Upload times
//! (fetched once per file id with `file/info`, which costs a request) and attributes set
//! locally (`utimens`, `chmod`), so that `rsync -a` finds unchanged files unchanged on the next
//! mount; and the folder listings last fetched, so that a remount shows the tree at once and an
//! offline mount shows it at all. SQLite in the cache directory, or in memory when there is none.
//!
//! Writes are `async`: each runs on tokio's blocking pool, and its caller awaits it. A write is
//! a SQLite transaction that may wait for the disk (a WAL checkpoint syncs it); on a runtime
//! worker thread it would stall every filesystem call queued there, and the filesystem never
//! makes one under its state lock. Awaiting keeps the store read-your-writes: once a write has
//! returned, it is committed and in the memo, and every later read sees it. Reads stay
//! synchronous and short: mostly the memo, else one query, on disk through a connection of
//! their own that a write in progress does not hold.
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lru::LruCache;
use rusqlite::{params, Connection, OptionalExtension};

use super::error::CacheError;
use super::sqlite::{self, Schema, Synchronous};
use crate::remote::{FileEntry, FileKind, FolderEntry, Listing};
use crate::sync::Mutex;

const FILE_NAME: &str = "meta.sqlite";

/// Items whose upload time and overlay are also kept in memory (a few megabytes at most). A
/// warm `ls -l` asks for both for every entry; from SQLite that was most of its time.
const MEMO_ITEMS: usize = 100_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS uploaded (
    id INTEGER PRIMARY KEY,
    secs INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS overlay (
    kind INTEGER NOT NULL,
    id INTEGER NOT NULL,
    mtime_secs INTEGER,
    mtime_nanos INTEGER,
    atime_secs INTEGER,
    atime_nanos INTEGER,
    mode INTEGER,
    uid INTEGER,
    gid INTEGER,
    file_kind INTEGER,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS listed (
    folder INTEGER PRIMARY KEY,
    fetched_secs INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS listed_folder (
    parent INTEGER NOT NULL,
    id INTEGER NOT NULL,
    name TEXT NOT NULL,
    is_public INTEGER NOT NULL,
    created INTEGER,
    updated INTEGER,
    url TEXT,
    PRIMARY KEY (parent, id)
);
CREATE TABLE IF NOT EXISTS listed_file (
    folder INTEGER NOT NULL,
    id INTEGER NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    short_url TEXT NOT NULL,
    url TEXT,
    downloads INTEGER NOT NULL,
    file_type TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (folder, id)
);
";

/// Columns added since the first version of the store.
const ADDED_COLUMNS: [(&str, &str, &str); 4] = [
    ("overlay", "uid", "INTEGER"),
    ("overlay", "gid", "INTEGER"),
    ("overlay", "file_kind", "INTEGER"),
    ("listed_file", "file_type", "TEXT NOT NULL DEFAULT ''"),
];

/// How a file kind is kept in the `file_kind` column.
fn kind_column(kind: Option<FileKind>) -> Option<i64> {
    kind.map(|kind| match kind {
        FileKind::Regular => 0,
        FileKind::Empty => 1,
        FileKind::Symlink => 2,
    })
}

fn kind_of_column(value: Option<i64>) -> Option<FileKind> {
    match value? {
        0 => Some(FileKind::Regular),
        1 => Some(FileKind::Empty),
        2 => Some(FileKind::Symlink),
        _ => None,
    }
}

/// The key of a folder in the listing tables: its id, 0 for the root (server ids start at 1).
fn folder_key(folder: Option<u64>) -> i64 {
    folder.map_or(0, |id| id as i64)
}

/// A folder id from the listing tables (0: the root).
fn folder_of_key(key: i64) -> Option<u64> {
    (key != 0).then_some(key as u64)
}

/// Seconds since the epoch of `time`, 0 before it.
pub(crate) fn epoch_secs(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The item an overlay belongs to: files and folders have separate id spaces on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemKey {
    /// A file, by remote file id.
    File(u64),
    /// A folder, by remote folder id.
    Folder(u64),
}

impl ItemKey {
    fn columns(self) -> (i64, i64) {
        match self {
            ItemKey::File(id) => (0, id as i64),
            ItemKey::Folder(id) => (1, id as i64),
        }
    }
}

/// Attributes kept on this machine only; `None` means "as the server says". Folders have no
/// field on the server to carry them; files carry theirs in `fileType` and have an overlay only
/// on a server that does not keep that field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overlay {
    /// Modification time set with `utimens`.
    pub mtime: Option<SystemTime>,
    /// Access time set with `utimens`.
    pub atime: Option<SystemTime>,
    /// Permission bits set with `chmod`.
    pub mode: Option<u32>,
    /// Owner set with `chown`.
    pub uid: Option<u32>,
    /// Group set with `chown`.
    pub gid: Option<u32>,
    /// What a file is (empty, symlink) when the server could not be told.
    pub kind: Option<FileKind>,
}

/// The persistent store of upload times and local attributes; thread-safe. Reads are short and
/// synchronous; writes are `async` and run on the blocking pool (see the module comment).
pub struct MetaStore {
    /// The connection writes go through, only ever used on the blocking pool.
    writer: Arc<Mutex<Connection>>,
    /// The connection reads go through. On disk a second one, so that a read never waits for a
    /// write to commit (WAL lets one connection read while another writes); in memory the
    /// writer itself, since a memory database is its connection's own (and its writes never
    /// wait for a disk).
    reader: Arc<Mutex<Connection>>,
    memo: Arc<Mutex<Memo>>,
}

/// The most recently used answers of the store, in front of SQLite. The store is the only writer
/// of its database, so every change goes through here and the memo never goes stale.
struct Memo {
    uploaded: LruCache<u64, i64>,
    /// `None`: known to have no overlay.
    overlay: LruCache<ItemKey, Option<Overlay>>,
    /// Changes made so far. A read holds no lock from its query to its filling of the memo (on
    /// disk it does not even use the writer's connection), so what it found may have been
    /// replaced since: it fills the memo only if no change came between its start and its end.
    changes: u64,
}

impl Memo {
    fn new() -> Self {
        let items = NonZeroUsize::new(MEMO_ITEMS).unwrap_or(NonZeroUsize::MIN);
        Memo {
            uploaded: LruCache::new(items),
            overlay: LruCache::new(items),
            changes: 0,
        }
    }

    /// Applies `change`, which the writer has just committed, and counts it. Called under the
    /// writer's lock, so that changes reach the memo in the order they reached the database.
    fn change(&mut self, change: impl FnOnce(&mut Self)) {
        change(self);
        self.changes = self.changes.wrapping_add(1);
    }

    /// Applies `fill`, what a read begun when `since` changes were made has found, unless a
    /// change came meanwhile: the read may have seen the database before it.
    fn fill(&mut self, since: u64, fill: impl FnOnce(&mut Self)) {
        if self.changes == since {
            fill(self);
        }
    }
}

impl MetaStore {
    /// Opens (creating if needed) the store in `dir`, or an empty one in memory when `dir` is
    /// `None`.
    pub fn open(dir: Option<&Path>) -> Result<Self, CacheError> {
        let path = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| CacheError::io(dir, e))?;
                Some(dir.join(FILE_NAME))
            }
            None => None,
        };
        let schema = Schema {
            tables: SCHEMA,
            added_columns: &ADDED_COLUMNS,
        };
        let opened = sqlite::open(path.as_deref(), &schema, Synchronous::Normal, true)?;
        let writer = Arc::new(Mutex::new(opened.writer));
        let reader = match opened.reader {
            Some(reader) => Arc::new(Mutex::new(reader)),
            None => Arc::clone(&writer),
        };
        Ok(MetaStore {
            writer,
            reader,
            memo: Arc::new(Mutex::new(Memo::new())),
        })
    }

    /// Runs `work` with the writing connection and the memo on the blocking pool, and waits for
    /// it. Once it returns, every read sees what it wrote.
    async fn write(
        &self,
        work: impl FnOnce(&mut Connection, &Mutex<Memo>) -> Result<(), CacheError> + Send + 'static,
    ) -> Result<(), CacheError> {
        let writer = Arc::clone(&self.writer);
        let memo = Arc::clone(&self.memo);
        tokio::task::spawn_blocking(move || work(&mut writer.lock(), &memo)).await?
    }

    /// The upload time of file `id`, seconds since the epoch, if known. A store that cannot be
    /// read answers `None` (the caller asks the server again) and logs why.
    pub fn uploaded(&self, id: u64) -> Option<i64> {
        let since = {
            let mut memo = self.memo.lock();
            if let Some(&secs) = memo.uploaded.get(&id) {
                return Some(secs);
            }
            memo.changes
        };
        let secs = self
            .reader
            .lock()
            .prepare_cached("SELECT secs FROM uploaded WHERE id = ?1")
            .and_then(|mut query| query.query_row(params![id as i64], |row| row.get(0)))
            .optional()
            .unwrap_or_else(|e| {
                log::warn!("metadata store: cannot read upload time of file {id}: {e}");
                None
            })?;
        self.memo.lock().fill(since, |memo| {
            memo.uploaded.put(id, secs);
        });
        Some(secs)
    }

    /// Remembers the upload time of file `id`.
    pub async fn set_uploaded(&self, id: u64, secs: i64) -> Result<(), CacheError> {
        self.write(move |conn, memo| {
            conn.prepare_cached(
                "INSERT INTO uploaded (id, secs) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET secs = excluded.secs",
            )?
            .execute(params![id as i64, secs])?;
            memo.lock().change(|memo| {
                memo.uploaded.put(id, secs);
            });
            Ok(())
        })
        .await
    }

    /// The attributes set locally on an item, if any. A store that cannot be read answers
    /// `None` (the item shows the server's attributes) and logs why.
    pub fn overlay(&self, key: ItemKey) -> Option<Overlay> {
        let since = {
            let mut memo = self.memo.lock();
            if let Some(&known) = memo.overlay.get(&key) {
                return known;
            }
            memo.changes
        };
        let (kind, id) = key.columns();
        let read = self
            .reader
            .lock()
            .query_row(
                "SELECT mtime_secs, mtime_nanos, atime_secs, atime_nanos, mode, uid, gid, file_kind
                 FROM overlay WHERE kind = ?1 AND id = ?2",
                params![kind, id],
                |row| {
                    Ok(Overlay {
                        mtime: time_from_columns(row.get(0)?, row.get(1)?),
                        atime: time_from_columns(row.get(2)?, row.get(3)?),
                        mode: row.get(4)?,
                        uid: row.get(5)?,
                        gid: row.get(6)?,
                        kind: kind_of_column(row.get(7)?),
                    })
                },
            )
            .optional();
        match read {
            Ok(overlay) => {
                self.memo.lock().fill(since, |memo| {
                    memo.overlay.put(key, overlay);
                });
                overlay
            }
            Err(e) => {
                log::warn!("metadata store: cannot read attributes of {key:?}: {e}");
                None
            }
        }
    }

    /// Replaces the attributes set locally on an item.
    pub async fn set_overlay(&self, key: ItemKey, overlay: Overlay) -> Result<(), CacheError> {
        let (kind, id) = key.columns();
        let (mtime_secs, mtime_nanos) = time_to_columns(overlay.mtime);
        let (atime_secs, atime_nanos) = time_to_columns(overlay.atime);
        self.write(move |conn, memo| {
            conn.execute(
                "INSERT INTO overlay (kind, id, mtime_secs, mtime_nanos, atime_secs, atime_nanos,
                                      mode, uid, gid, file_kind)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (kind, id) DO UPDATE SET
                    mtime_secs = excluded.mtime_secs, mtime_nanos = excluded.mtime_nanos,
                    atime_secs = excluded.atime_secs, atime_nanos = excluded.atime_nanos,
                    mode = excluded.mode, uid = excluded.uid, gid = excluded.gid,
                    file_kind = excluded.file_kind",
                params![
                    kind,
                    id,
                    mtime_secs,
                    mtime_nanos,
                    atime_secs,
                    atime_nanos,
                    overlay.mode,
                    overlay.uid,
                    overlay.gid,
                    kind_column(overlay.kind)
                ],
            )?;
            memo.lock().change(|memo| {
                memo.overlay.put(key, Some(overlay));
            });
            Ok(())
        })
        .await
    }

    /// Keeps the listing of `folder` (`None`: the root) as fetched at `fetched`, replacing the
    /// one kept before. Trashed entries are not kept: nothing shows them. The listing is taken
    /// whole: it is written on the blocking pool.
    pub async fn save_listing(
        &self,
        folder: Option<u64>,
        listing: Listing,
        fetched: SystemTime,
    ) -> Result<(), CacheError> {
        let key = folder_key(folder);
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM listed_folder WHERE parent = ?1", params![key])?;
            tx.execute("DELETE FROM listed_file WHERE folder = ?1", params![key])?;
            {
                let mut add_folder = tx.prepare(
                    "INSERT OR REPLACE INTO listed_folder
                     (parent, id, name, is_public, created, updated, url)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for f in listing.folders.iter().filter(|f| !f.trashed) {
                    add_folder.execute(params![
                        key,
                        f.id as i64,
                        f.name,
                        f.is_public,
                        f.created,
                        f.updated,
                        f.url
                    ])?;
                }
                let mut add_file = tx.prepare(
                    "INSERT OR REPLACE INTO listed_file
                     (folder, id, name, size, short_url, url, downloads, file_type)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for f in listing.files.iter().filter(|f| !f.trashed) {
                    add_file.execute(params![
                        key,
                        f.id as i64,
                        f.name,
                        f.size as i64,
                        f.short_url,
                        f.url,
                        f.downloads as i64,
                        f.file_type
                    ])?;
                }
            }
            tx.execute(
                "INSERT INTO listed (folder, fetched_secs) VALUES (?1, ?2)
                 ON CONFLICT (folder) DO UPDATE SET fetched_secs = excluded.fetched_secs",
                params![key, epoch_secs(fetched)],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The listing kept for `folder` and when it was fetched, if one is kept. A store that
    /// cannot be read answers `None` (the caller asks the server) and logs why.
    pub fn listing(&self, folder: Option<u64>) -> Option<(Listing, SystemTime)> {
        self.read_listing(folder).unwrap_or_else(|e| {
            log::warn!("metadata store: cannot read the listing of folder {folder:?}: {e}");
            None
        })
    }

    /// One transaction, so that the date and the entries come from the same saved listing
    /// even while a write replaces it.
    fn read_listing(
        &self,
        folder: Option<u64>,
    ) -> Result<Option<(Listing, SystemTime)>, rusqlite::Error> {
        let key = folder_key(folder);
        let mut conn = self.reader.lock();
        let tx = conn.transaction()?;
        let fetched: Option<i64> = tx
            .query_row(
                "SELECT fetched_secs FROM listed WHERE folder = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()?;
        let Some(fetched) = fetched else {
            return Ok(None);
        };
        let mut folders = tx.prepare(
            "SELECT id, name, is_public, created, updated, url FROM listed_folder
             WHERE parent = ?1 ORDER BY id",
        )?;
        let folders = folders
            .query_map(params![key], |row| {
                Ok(FolderEntry {
                    id: row.get::<_, i64>(0)? as u64,
                    parent: folder_of_key(key),
                    name: row.get(1)?,
                    is_public: row.get(2)?,
                    created: row.get(3)?,
                    updated: row.get(4)?,
                    url: row.get(5)?,
                    trashed: false,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut files = tx.prepare(
            "SELECT id, name, size, short_url, url, downloads, file_type FROM listed_file
             WHERE folder = ?1 ORDER BY id",
        )?;
        let files = files
            .query_map(params![key], |row| {
                Ok(FileEntry {
                    id: row.get::<_, i64>(0)? as u64,
                    folder: folder_of_key(key),
                    name: row.get(1)?,
                    size: row.get::<_, i64>(2)? as u64,
                    short_url: row.get(3)?,
                    url: row.get(4)?,
                    downloads: row.get::<_, i64>(5)? as u64,
                    trashed: false,
                    file_type: row.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let fetched = UNIX_EPOCH + Duration::from_secs(fetched.max(0) as u64);
        Ok(Some((Listing { folders, files }, fetched)))
    }

    /// Marks the listing kept for `folder` as out of date (this mount changed the folder):
    /// it is still shown while the server is unreachable, never while it answers.
    pub async fn expire_listing(&self, folder: Option<u64>) -> Result<(), CacheError> {
        let key = folder_key(folder);
        self.write(move |conn, _| {
            conn.execute(
                "UPDATE listed SET fetched_secs = 0 WHERE folder = ?1",
                params![key],
            )?;
            Ok(())
        })
        .await
    }

    /// Whether a listing of `folder` is kept, however old.
    pub fn has_listing(&self, folder: Option<u64>) -> bool {
        self.reader
            .lock()
            .query_row(
                "SELECT 1 FROM listed WHERE folder = ?1",
                params![folder_key(folder)],
                |_| Ok(()),
            )
            .optional()
            .unwrap_or_else(|e| {
                log::warn!("metadata store: cannot read the listings: {e}");
                None
            })
            .is_some()
    }

    /// Forgets everything kept about an item (it was deleted); for a file, its upload time too.
    pub async fn remove(&self, key: ItemKey) -> Result<(), CacheError> {
        let (kind, id) = key.columns();
        self.write(move |conn, memo| {
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM overlay WHERE kind = ?1 AND id = ?2",
                params![kind, id],
            )?;
            if let ItemKey::File(file_id) = key {
                tx.execute(
                    "DELETE FROM uploaded WHERE id = ?1",
                    params![file_id as i64],
                )?;
            }
            tx.commit()?;
            memo.lock().change(|memo| {
                memo.overlay.pop(&key);
                if let ItemKey::File(file_id) = key {
                    memo.uploaded.pop(&file_id);
                }
            });
            Ok(())
        })
        .await
    }
}

/// Seconds and nanoseconds since the epoch, the seconds negative before it.
fn time_to_columns(time: Option<SystemTime>) -> (Option<i64>, Option<i64>) {
    let Some(time) = time else {
        return (None, None);
    };
    let nanos: i128 = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    };
    let secs = nanos.div_euclid(1_000_000_000);
    let secs = secs.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    (Some(secs), Some(nanos.rem_euclid(1_000_000_000) as i64))
}

fn time_from_columns(secs: Option<i64>, nanos: Option<i64>) -> Option<SystemTime> {
    let secs = secs?;
    let nanos = Duration::from_nanos(nanos.unwrap_or(0).clamp(0, 999_999_999) as u64);
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64) + nanos)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .and_then(|t| t.checked_add(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn unknown_items_have_nothing_stored() {
        let store = MetaStore::open(None).unwrap();
        assert_eq!(store.uploaded(1), None);
        assert_eq!(store.overlay(ItemKey::File(1)), None);
    }

    #[tokio::test]
    async fn answers_kept_in_memory_follow_every_change() {
        let store = MetaStore::open(None).unwrap();
        let key = ItemKey::File(9);
        let overlay = Overlay {
            mode: Some(0o640),
            ..Overlay::default()
        };
        // Absent first, so the memo holds "nothing" before each change.
        assert_eq!((store.uploaded(9), store.overlay(key)), (None, None));
        store.set_uploaded(9, 100).await.unwrap();
        store.set_overlay(key, overlay).await.unwrap();
        assert_eq!(
            (store.uploaded(9), store.overlay(key)),
            (Some(100), Some(overlay))
        );
        store.remove(key).await.unwrap();
        assert_eq!((store.uploaded(9), store.overlay(key)), (None, None));
    }

    #[tokio::test]
    async fn answers_beyond_the_memory_are_read_from_the_database() {
        let store = MetaStore::open(None).unwrap();
        let items = MEMO_ITEMS as u64 + 10;
        for id in 0..items {
            store.set_uploaded(id, id as i64).await.unwrap();
        }
        assert_eq!(store.uploaded(0), Some(0));
        assert_eq!(store.uploaded(items - 1), Some(items as i64 - 1));
    }

    #[tokio::test]
    async fn upload_time_round_trips_and_is_replaced() {
        let store = MetaStore::open(None).unwrap();
        store.set_uploaded(7, 1_700_000_000).await.unwrap();
        assert_eq!(store.uploaded(7), Some(1_700_000_000));
        store.set_uploaded(7, 1_700_000_100).await.unwrap();
        assert_eq!(store.uploaded(7), Some(1_700_000_100));
    }

    #[tokio::test]
    async fn overlay_round_trips_with_nanoseconds() {
        let store = MetaStore::open(None).unwrap();
        let overlay = Overlay {
            mtime: Some(at(1_600_000_000, 123_456_789)),
            mode: Some(0o600),
            uid: Some(0),
            gid: Some(u32::MAX),
            kind: Some(FileKind::Symlink),
            ..Overlay::default()
        };
        store.set_overlay(ItemKey::File(3), overlay).await.unwrap();
        assert_eq!(store.overlay(ItemKey::File(3)), Some(overlay));
    }

    #[tokio::test]
    async fn files_and_folders_with_the_same_id_are_distinct() {
        let store = MetaStore::open(None).unwrap();
        let file = Overlay {
            mode: Some(0o600),
            ..Overlay::default()
        };
        let folder = Overlay {
            mode: Some(0o700),
            ..Overlay::default()
        };
        store.set_overlay(ItemKey::File(5), file).await.unwrap();
        store.set_overlay(ItemKey::Folder(5), folder).await.unwrap();
        assert_eq!(store.overlay(ItemKey::File(5)), Some(file));
        assert_eq!(store.overlay(ItemKey::Folder(5)), Some(folder));
    }

    #[tokio::test]
    async fn removing_a_file_forgets_its_overlay_and_upload_time() {
        let store = MetaStore::open(None).unwrap();
        store.set_uploaded(4, 10).await.unwrap();
        store
            .set_overlay(ItemKey::File(4), Overlay::default())
            .await
            .unwrap();
        store
            .set_overlay(ItemKey::Folder(4), Overlay::default())
            .await
            .unwrap();
        store.remove(ItemKey::File(4)).await.unwrap();
        assert_eq!(store.uploaded(4), None);
        assert_eq!(store.overlay(ItemKey::File(4)), None);
        assert_eq!(store.overlay(ItemKey::Folder(4)), Some(Overlay::default()));
    }

    #[tokio::test]
    async fn store_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let overlay = Overlay {
            mtime: Some(at(1_234, 5)),
            atime: Some(at(99, 0)),
            mode: Some(0o640),
            ..Overlay::default()
        };
        {
            let store = MetaStore::open(Some(dir.path())).unwrap();
            store.set_uploaded(11, 1_500_000_000).await.unwrap();
            store
                .set_overlay(ItemKey::Folder(12), overlay)
                .await
                .unwrap();
        }
        let store = MetaStore::open(Some(dir.path())).unwrap();
        assert_eq!(store.uploaded(11), Some(1_500_000_000));
        assert_eq!(store.overlay(ItemKey::Folder(12)), Some(overlay));
    }

    #[tokio::test]
    async fn a_store_made_before_file_types_and_owners_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
            conn.execute_batch(
                "CREATE TABLE overlay (kind INTEGER NOT NULL, id INTEGER NOT NULL,
                    mtime_secs INTEGER, mtime_nanos INTEGER, atime_secs INTEGER,
                    atime_nanos INTEGER, mode INTEGER, PRIMARY KEY (kind, id));
                 INSERT INTO overlay VALUES (1, 9, 100, 0, NULL, NULL, 448);
                 CREATE TABLE listed_file (folder INTEGER NOT NULL, id INTEGER NOT NULL,
                    name TEXT NOT NULL, size INTEGER NOT NULL, short_url TEXT NOT NULL,
                    url TEXT, downloads INTEGER NOT NULL, PRIMARY KEY (folder, id));
                 INSERT INTO listed_file VALUES (0, 3, 'old.txt', 5, 'x', NULL, 0);
                 CREATE TABLE listed (folder INTEGER PRIMARY KEY, fetched_secs INTEGER NOT NULL);
                 INSERT INTO listed VALUES (0, 50);",
            )
            .unwrap();
        }
        let store = MetaStore::open(Some(dir.path())).unwrap();
        let overlay = store.overlay(ItemKey::Folder(9)).unwrap();
        assert_eq!((overlay.mode, overlay.uid), (Some(0o700), None));
        let (listing, _) = store.listing(None).unwrap();
        assert_eq!(listing.files[0].file_type, "");
        store
            .set_overlay(
                ItemKey::Folder(9),
                Overlay {
                    uid: Some(5),
                    ..overlay
                },
            )
            .await
            .unwrap();
        assert_eq!(store.overlay(ItemKey::Folder(9)).unwrap().uid, Some(5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn store_is_usable_from_many_threads() {
        let store = Arc::new(MetaStore::open(None).unwrap());
        let tasks: Vec<_> = (0..4u64)
            .map(|t| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for i in 0..50 {
                        store.set_uploaded(t * 100 + i, i as i64).await.unwrap();
                        assert_eq!(store.uploaded(t * 100 + i), Some(i as i64));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.uploaded(349), Some(49));
    }

    #[tokio::test]
    async fn a_read_right_after_a_write_sees_it() {
        // On disk, where reads and writes go through different connections.
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(Some(dir.path())).unwrap();
        let overlay = Overlay {
            mode: Some(0o600),
            ..Overlay::default()
        };
        store.set_uploaded(1, 10).await.unwrap();
        assert_eq!(store.uploaded(1), Some(10));
        store.set_overlay(ItemKey::File(1), overlay).await.unwrap();
        assert_eq!(store.overlay(ItemKey::File(1)), Some(overlay));
        store.remove(ItemKey::File(1)).await.unwrap();
        assert_eq!(store.uploaded(1), None);
        assert_eq!(store.overlay(ItemKey::File(1)), None);
        let mut listing = sample_listing(Some(3));
        listing.files.retain(|f| !f.trashed);
        store
            .save_listing(Some(3), listing.clone(), at(500, 0))
            .await
            .unwrap();
        assert_eq!(store.listing(Some(3)), Some((listing, at(500, 0))));
        store.expire_listing(Some(3)).await.unwrap();
        assert_eq!(
            store.listing(Some(3)).map(|(_, when)| when),
            Some(UNIX_EPOCH)
        );
    }

    #[test]
    fn a_read_that_overlapped_a_write_leaves_the_memo_to_the_write() {
        let mut memo = Memo::new();
        let before = memo.changes;
        memo.change(|memo| {
            memo.uploaded.put(1, 20);
            memo.overlay.pop(&ItemKey::File(1));
        });
        // What the read found in the database before the write: dropped.
        memo.fill(before, |memo| {
            memo.uploaded.put(1, 10);
            memo.overlay.put(ItemKey::File(1), Some(Overlay::default()));
        });
        assert_eq!(memo.uploaded.get(&1), Some(&20));
        assert_eq!(memo.overlay.get(&ItemKey::File(1)), None);
        // A read with no write during it fills the memo.
        let since = memo.changes;
        memo.fill(since, |memo| {
            memo.overlay.put(ItemKey::File(1), None);
        });
        assert_eq!(memo.overlay.get(&ItemKey::File(1)), Some(&None));
    }

    fn sample_listing(folder: Option<u64>) -> Listing {
        Listing {
            folders: vec![FolderEntry {
                id: 40,
                parent: folder,
                name: "sub/dir".into(),
                is_public: 1,
                created: Some(1_600_000_000),
                updated: None,
                url: Some("https://host/folder/40".into()),
                trashed: false,
            }],
            files: vec![
                FileEntry {
                    id: 41,
                    folder,
                    name: "a.txt".into(),
                    size: 1234,
                    short_url: "abc".into(),
                    url: None,
                    downloads: 3,
                    trashed: false,
                    file_type: "inode/x-empty; yetifs=1".into(),
                },
                FileEntry {
                    id: 42,
                    folder,
                    name: "gone.txt".into(),
                    size: 1,
                    short_url: "def".into(),
                    url: None,
                    downloads: 0,
                    trashed: true,
                    file_type: String::new(),
                },
            ],
        }
    }

    #[tokio::test]
    async fn a_listing_survives_reopening_without_its_trashed_entries() {
        let dir = tempfile::tempdir().unwrap();
        let fetched = at(1_700_000_000, 0);
        let listing = sample_listing(Some(7));
        {
            let store = MetaStore::open(Some(dir.path())).unwrap();
            store
                .save_listing(Some(7), listing.clone(), fetched)
                .await
                .unwrap();
        }
        let store = MetaStore::open(Some(dir.path())).unwrap();
        let (kept, when) = store.listing(Some(7)).unwrap();
        assert_eq!(when, fetched);
        assert_eq!(kept.folders, listing.folders);
        assert_eq!(kept.files, listing.files[..1]);
        assert!(store.listing(None).is_none());
        assert!(store.has_listing(Some(7)) && !store.has_listing(None));
    }

    #[tokio::test]
    async fn a_saved_listing_replaces_the_previous_one_of_its_folder_only() {
        let store = MetaStore::open(None).unwrap();
        store
            .save_listing(None, sample_listing(None), at(10, 0))
            .await
            .unwrap();
        store
            .save_listing(Some(5), sample_listing(Some(5)), at(10, 0))
            .await
            .unwrap();
        store
            .save_listing(None, Listing::default(), at(20, 0))
            .await
            .unwrap();
        assert_eq!(
            store.listing(None).unwrap(),
            (Listing::default(), at(20, 0))
        );
        assert_eq!(store.listing(Some(5)).unwrap().0.files.len(), 1);
    }

    #[tokio::test]
    async fn an_expired_listing_is_kept_but_dated_at_the_epoch() {
        let store = MetaStore::open(None).unwrap();
        let listing = sample_listing(None);
        store
            .save_listing(None, listing, at(1_000, 0))
            .await
            .unwrap();
        store.expire_listing(None).await.unwrap();
        let (kept, when) = store.listing(None).unwrap();
        assert_eq!(when, UNIX_EPOCH);
        assert_eq!(kept.files.len(), 1);
    }

    proptest! {
        #[test]
        fn any_time_round_trips(nanos in -(1i128 << 80)..(1i128 << 80)) {
            let magnitude = Duration::new(
                (nanos.unsigned_abs() / 1_000_000_000) as u64,
                (nanos.unsigned_abs() % 1_000_000_000) as u32,
            );
            let time = if nanos >= 0 {
                UNIX_EPOCH.checked_add(magnitude)
            } else {
                UNIX_EPOCH.checked_sub(magnitude)
            };
            if let Some(time) = time {
                let (secs, ns) = time_to_columns(Some(time));
                prop_assert_eq!(time_from_columns(secs, ns), Some(time));
            }
        }
    }
}
