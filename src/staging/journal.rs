//! The journal: one durable row per file whose latest content or metadata the server does not
//! have yet. Written before an upload starts and removed only when the upload, the name fix
//! and the deletion of the replaced file are all done, so that every step can be completed
//! after a failure or a crash. SQLite with full
//! synchronous commits: a row that was committed survives `kill -9` and power loss.
//!
//! A synced commit waits for the disk; writes that need not survive a power cut (a file just
//! created, attributes set, a row whose work is done) are committed lazily: they survive the
//! process dying, and reach the disk with the next synced commit (the WAL is written in
//! order). Either way writes run on tokio's blocking pool, never on a worker
//! thread; reads go through a second connection, which in WAL mode never waits for a writer's
//! commit, so the short reads made on worker threads never stall behind a sync either.
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, Row};

use crate::cache::sqlite::{self, Schema, Synchronous};
use crate::cache::Overlay;
use crate::sync::{Mutex, MutexGuard};

const FILE_NAME: &str = "journal.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pending (
    key INTEGER PRIMARY KEY,
    folder INTEGER,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    replaces INTEGER,
    uploaded INTEGER,
    mtime_nanos INTEGER,
    mode INTEGER,
    uid INTEGER,
    gid INTEGER,
    symlink INTEGER NOT NULL DEFAULT 0
);
";

/// Columns added since the first version of the journal.
const ADDED_COLUMNS: [(&str, &str, &str); 3] = [
    ("pending", "uid", "INTEGER"),
    ("pending", "gid", "INTEGER"),
    ("pending", "symlink", "INTEGER NOT NULL DEFAULT 0"),
];

/// The journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// SQLite refused.
    #[error("staging journal: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The blocking task that wrote it did not finish.
    #[error("staging journal: the write was cut short: {0}")]
    Task(String),
}

/// One file the server does not have as it should.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The staged file's key (its bytes are `Staging::path(key)`).
    pub key: u64,
    /// The folder it belongs in (`None`: the root).
    pub folder: Option<u64>,
    /// The name it must have on the server.
    pub name: String,
    /// Its size; 0 for an empty file (stored as one byte marked empty).
    pub size: u64,
    /// The server file it replaces, deleted once the new one is in place.
    pub replaces: Option<u64>,
    /// The id the upload got, once it succeeded (the name fix and the deletion may remain).
    pub uploaded: Option<u64>,
    /// A modification time set locally.
    pub mtime: Option<SystemTime>,
    /// Permission bits set locally.
    pub mode: Option<u32>,
    /// Owner set locally.
    pub uid: Option<u32>,
    /// Group set locally.
    pub gid: Option<u32>,
    /// A symbolic link: the staged bytes are its target.
    pub symlink: bool,
}

impl Entry {
    /// An empty file `name` in `folder`, replacing nothing.
    pub fn new(key: u64, folder: Option<u64>, name: String) -> Self {
        Self {
            key,
            folder,
            name,
            size: 0,
            replaces: None,
            uploaded: None,
            mtime: None,
            mode: None,
            uid: None,
            gid: None,
            symlink: false,
        }
    }

    /// The times, mode and owner the entry carries, as the overlay a staged file keeps them in.
    pub fn overlay(&self) -> Overlay {
        Overlay {
            mtime: self.mtime,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            ..Overlay::default()
        }
    }

    /// Takes the mode and owner of `overlay`, and its mtime, or else `mtime`.
    pub fn set_attributes(&mut self, overlay: &Overlay, mtime: Option<SystemTime>) {
        self.mtime = overlay.mtime.or(mtime);
        self.mode = overlay.mode;
        self.uid = overlay.uid;
        self.gid = overlay.gid;
    }

    /// Whether the item exists only locally: nothing on the server stands for it yet.
    pub fn is_local_only(&self) -> bool {
        self.replaces.is_none() && self.uploaded.is_none()
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let id = |v: Option<i64>| v.map(|v| v as u64);
        Ok(Self {
            key: row.get::<_, i64>(0)? as u64,
            folder: id(row.get(1)?),
            name: row.get(2)?,
            size: row.get::<_, i64>(3)? as u64,
            replaces: id(row.get(4)?),
            uploaded: id(row.get(5)?),
            mtime: row
                .get::<_, Option<i64>>(6)?
                .and_then(|n| u64::try_from(n).ok())
                .map(|n| UNIX_EPOCH + Duration::from_nanos(n)),
            mode: row.get(7)?,
            uid: row.get(8)?,
            gid: row.get(9)?,
            symlink: row.get::<_, i64>(10)? != 0,
        })
    }
}

/// How far a write must have gone when the call returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// On the disk: survives a power cut. For what `close` and `fsync` promise, and the id of
    /// a finished upload (without it, a crash would upload the file twice).
    Synced,
    /// Survives the process dying; on the disk with the next synced write.
    Lazy,
}

/// The durable list of pending work; thread-safe, every call short.
pub struct Journal {
    writer: Arc<Mutex<Connection>>,
    /// A connection for reads, when the journal is a file; in memory there is one connection.
    reader: Option<Mutex<Connection>>,
}

const COLUMNS: &str =
    "key, folder, name, size, replaces, uploaded, mtime_nanos, mode, uid, gid, symlink";

impl Journal {
    /// Opens (creating if needed) the journal in `dir`, or one in memory.
    pub fn open(dir: Option<&Path>) -> Result<Self, JournalError> {
        let path = dir.map(|dir| dir.join(FILE_NAME));
        let schema = Schema {
            tables: SCHEMA,
            added_columns: &ADDED_COLUMNS,
        };
        let sqlite::Opened { writer, reader } =
            sqlite::open(path.as_deref(), &schema, Synchronous::Full, true)?;
        let reader = reader.map(Mutex::new);
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            reader,
        })
    }

    fn read_conn(&self) -> MutexGuard<'_, Connection> {
        let conn = self.reader.as_ref().unwrap_or(&self.writer);
        conn.lock()
    }

    /// Runs `write` with the writing connection on the blocking pool, committed as
    /// `durability` says.
    async fn write<T: Send + 'static>(
        &self,
        durability: Durability,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, JournalError> {
        let writer = Arc::clone(&self.writer);
        let sync = match durability {
            Durability::Synced => Synchronous::Full,
            Durability::Lazy => Synchronous::Normal,
        };
        tokio::task::spawn_blocking(move || {
            let conn = writer.lock();
            conn.pragma_update(None, "synchronous", sync.pragma())?;
            write(&conn)
        })
        .await
        .map_err(|e| JournalError::Task(e.to_string()))?
        .map_err(JournalError::from)
    }

    /// Records `entry`, replacing the row of the same key.
    pub async fn upsert(&self, entry: &Entry, durability: Durability) -> Result<(), JournalError> {
        let entry = entry.clone();
        self.write(durability, move |conn| Self::upsert_row(conn, &entry))
            .await
    }

    fn upsert_row(conn: &Connection, entry: &Entry) -> rusqlite::Result<()> {
        let id = |v: Option<u64>| v.map(|v| v as i64);
        let mtime = entry.mtime.and_then(|t| {
            t.duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_nanos()).ok())
        });
        conn.execute(
            &format!("INSERT OR REPLACE INTO pending ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"),
            params![
                entry.key as i64,
                id(entry.folder),
                entry.name,
                entry.size as i64,
                id(entry.replaces),
                id(entry.uploaded),
                mtime,
                entry.mode,
                entry.uid,
                entry.gid,
                i64::from(entry.symlink)
            ],
        )?;
        Ok(())
    }

    /// Forgets the row of `key` (its work is done, or the file was deleted).
    pub async fn remove(&self, key: u64, durability: Durability) -> Result<(), JournalError> {
        self.write(durability, move |conn| {
            conn.execute("DELETE FROM pending WHERE key = ?1", params![key as i64])
                .map(drop)
        })
        .await
    }

    /// The row of `key`.
    pub fn get(&self, key: u64) -> Result<Option<Entry>, JournalError> {
        let conn = self.read_conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM pending WHERE key = ?1"))?;
        let mut rows = stmt.query_map(params![key as i64], Entry::from_row)?;
        Ok(rows.next().transpose()?)
    }

    /// The row of the upload that produced server file `id`, if its last steps are pending.
    pub fn by_uploaded(&self, id: u64) -> Result<Option<Entry>, JournalError> {
        let conn = self.read_conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM pending WHERE uploaded = ?1"
        ))?;
        let mut rows = stmt.query_map(params![id as i64], Entry::from_row)?;
        Ok(rows.next().transpose()?)
    }

    /// Every row, oldest first.
    pub fn entries(&self) -> Result<Vec<Entry>, JournalError> {
        let conn = self.read_conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM pending ORDER BY key"))?;
        let rows = stmt.query_map([], Entry::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The rows of `folder` (`None`: the root), oldest first.
    pub fn in_folder(&self, folder: Option<u64>) -> Result<Vec<Entry>, JournalError> {
        let conn = self.read_conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM pending WHERE folder IS ?1 ORDER BY key"
        ))?;
        let rows = stmt.query_map(params![folder.map(|f| f as i64)], Entry::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The highest key in use.
    pub fn max_key(&self) -> Result<Option<u64>, JournalError> {
        let max: Option<i64> =
            self.read_conn()
                .query_row("SELECT max(key) FROM pending", [], |row| row.get(0))?;
        Ok(max.map(|k| k as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: u64, folder: Option<u64>, name: &str) -> Entry {
        Entry::new(key, folder, name.to_owned())
    }

    #[tokio::test]
    async fn rows_round_trip_and_are_replaced_by_key() {
        let journal = Journal::open(None).unwrap();
        let mut e = entry(3, Some(9), "a.txt");
        e.size = 10;
        e.replaces = Some(4);
        e.mtime = Some(UNIX_EPOCH + Duration::new(1_600_000_000, 5));
        e.mode = Some(0o600);
        e.uid = Some(7);
        e.symlink = true;
        journal.upsert(&e, Durability::Synced).await.unwrap();
        assert_eq!(journal.get(3).unwrap(), Some(e.clone()));
        e.uploaded = Some(77);
        journal.upsert(&e, Durability::Synced).await.unwrap();
        assert_eq!(journal.entries().unwrap(), vec![e]);
        journal.remove(3, Durability::Lazy).await.unwrap();
        assert!(journal.entries().unwrap().is_empty());
        assert_eq!(journal.max_key().unwrap(), None);
    }

    #[test]
    fn attributes_go_to_an_overlay_and_back_the_mtime_falling_back_when_unset() {
        let mut e = entry(1, None, "f");
        let when = UNIX_EPOCH + Duration::from_secs(9);
        let overlay = Overlay {
            mode: Some(0o600),
            uid: Some(3),
            gid: Some(4),
            ..Overlay::default()
        };
        e.set_attributes(&overlay, Some(when));
        assert_eq!(
            e.overlay(),
            Overlay {
                mtime: Some(when),
                ..overlay
            }
        );
        e.set_attributes(&e.overlay(), None);
        assert_eq!(e.mtime, Some(when));
    }

    #[tokio::test]
    async fn rows_are_found_by_folder_root_included() {
        let journal = Journal::open(None).unwrap();
        journal
            .upsert(&entry(1, None, "root-empty"), Durability::Synced)
            .await
            .unwrap();
        journal
            .upsert(&entry(2, Some(5), "in-five"), Durability::Synced)
            .await
            .unwrap();
        let mut replacing = entry(3, Some(5), "replacing");
        replacing.replaces = Some(8);
        journal
            .upsert(&replacing, Durability::Synced)
            .await
            .unwrap();
        let names = |f| {
            journal
                .in_folder(f)
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(None), ["root-empty"]);
        assert_eq!(names(Some(5)), ["in-five", "replacing"]);
        assert_eq!(journal.max_key().unwrap(), Some(3));
    }

    #[tokio::test]
    async fn rows_survive_reopening_and_reads_see_committed_writes() {
        let dir = tempfile::tempdir().unwrap();
        let first = Journal::open(Some(dir.path())).unwrap();
        first
            .upsert(&entry(5, None, "kept"), Durability::Synced)
            .await
            .unwrap();
        assert_eq!(first.get(5).unwrap().map(|e| e.name), Some("kept".into()));
        drop(first);
        let journal = Journal::open(Some(dir.path())).unwrap();
        assert_eq!(journal.get(5).unwrap().map(|e| e.name), Some("kept".into()));
    }
}
