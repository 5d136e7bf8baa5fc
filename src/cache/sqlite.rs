//! Upgrades of the SQLite files a cache directory holds. A cache made by an earlier version
//! lacks columns added since; they are added in place, so that its listings, attributes and
//! pending uploads survive the upgrade.
use rusqlite::Connection;

/// Adds each `(table, column, declaration)` the database lacks. The tables must exist.
pub(crate) fn add_missing_columns(
    conn: &Connection,
    columns: &[(&str, &str, &str)],
) -> rusqlite::Result<()> {
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
