//! The one way yetifs opens a SQLite database: the metadata store and the upload journal of a
//! cache directory, and the emulator's store. A file is opened in WAL mode (readers never wait
//! for a writer's commit), with a busy timeout (another connection's lock is waited for, not
//! failed on), its tables created and, for a file made by an earlier version, the columns added
//! since put in place, so that its listings, attributes and pending uploads survive the upgrade.
//! A second, read-only connection can be asked for, so reads do not queue behind writes.
use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// How long a connection waits for a lock another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a database holds: its `CREATE TABLE IF NOT EXISTS` statements, and each
/// `(table, column, declaration)` added to a table after its first release.
pub(crate) struct Schema<'a> {
    /// Statements run at every open; they must be idempotent.
    pub tables: &'a str,
    /// Columns a database made by an earlier version may lack.
    pub added_columns: &'a [(&'a str, &'a str, &'a str)],
}

/// How the writing connection commits (SQLite's `synchronous`): `Full` survives a power cut,
/// `Normal` a crash of the process.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Synchronous {
    /// Survives a crash of the process; a power cut may lose the last commits.
    Normal,
    /// Every commit reaches the disk before it returns.
    Full,
}

impl Synchronous {
    /// The pragma's value.
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// An opened database: the connection that writes, and a read-only one beside it when asked
/// for and the database is a file (in memory there is only one connection to share).
pub(crate) struct Opened {
    /// The connection every write goes through.
    pub writer: Connection,
    /// A second connection for reads, if asked for and the database is a file.
    pub reader: Option<Connection>,
}

/// Opens (creating if needed) the database at `path`, or one in memory when `path` is `None`,
/// with `schema` in place.
pub(crate) fn open(
    path: Option<&Path>,
    schema: &Schema<'_>,
    synchronous: Synchronous,
    with_reader: bool,
) -> rusqlite::Result<Opened> {
    let Some(path) = path else {
        let conn = Connection::open_in_memory()?;
        prepare(&conn, schema)?;
        return Ok(Opened {
            writer: conn,
            reader: None,
        });
    };
    let writer = Connection::open(path)?;
    writer.busy_timeout(BUSY_TIMEOUT)?;
    writer.pragma_update(None, "journal_mode", "WAL")?;
    writer.pragma_update(None, "synchronous", synchronous.pragma())?;
    prepare(&writer, schema)?;
    let reader = if with_reader {
        let reader = Connection::open(path)?;
        reader.busy_timeout(BUSY_TIMEOUT)?;
        reader.pragma_update(None, "query_only", true)?;
        Some(reader)
    } else {
        None
    };
    Ok(Opened { writer, reader })
}

/// Creates the tables, and the columns a database made by an earlier version lacks.
fn prepare(conn: &Connection, schema: &Schema<'_>) -> rusqlite::Result<()> {
    conn.execute_batch(schema.tables)?;
    add_missing_columns(conn, schema.added_columns)
}

/// Adds each `(table, column, declaration)` the database lacks. The tables must exist.
fn add_missing_columns(conn: &Connection, columns: &[(&str, &str, &str)]) -> rusqlite::Result<()> {
    for (table, column, declaration) in columns {
        let mut info = conn.prepare(&format!("PRAGMA table_info({table})"))?;
        let present = info
            .query_map([], |row| row.get::<_, String>(1))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .iter()
            .any(|name| name == column);
        if !present {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {declaration}"
            ))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_opened_in_wal_mode_with_a_read_only_connection_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let schema = Schema {
            tables: "CREATE TABLE IF NOT EXISTS t (a INTEGER);",
            added_columns: &[],
        };
        let opened = open(Some(&path), &schema, Synchronous::Full, true).unwrap();
        let mode: String = opened
            .writer
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let reader = opened.reader.unwrap();
        opened
            .writer
            .execute("INSERT INTO t VALUES (1)", [])
            .unwrap();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        assert!(reader.execute("INSERT INTO t VALUES (2)", []).is_err());
        let again = open(Some(&path), &schema, Synchronous::Normal, false).unwrap();
        assert!(again.reader.is_none());
    }

    #[test]
    fn a_missing_column_is_added_once_and_old_rows_get_its_default() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        let columns = [("t", "b", "TEXT NOT NULL DEFAULT 'x'")];
        add_missing_columns(&conn, &columns).unwrap();
        add_missing_columns(&conn, &columns).unwrap();
        let b: String = conn.query_row("SELECT b FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(b, "x");
    }
}
