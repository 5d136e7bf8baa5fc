//! The emulator's metadata in SQLite (WAL, one connection behind a mutex, short statements):
//! accounts, tokens, sessions, login failures, folders, files, download tokens and scheduled
//! URL uploads. Content lives in `blobs.rs`; rows only name their blob.
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::cache::sqlite::{self, Schema, Synchronous};
use crate::sync::{Mutex, MutexGuard};

/// Result of a store operation.
pub type Result<T> = rusqlite::Result<T>;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY, key1 TEXT NOT NULL, key2 TEXT NOT NULL, username TEXT NOT NULL,
    is_admin INTEGER NOT NULL, created TEXT NOT NULL, last_login TEXT, last_login_ip TEXT);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY COLLATE NOCASE, account_id INTEGER NOT NULL, last_used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, account_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS login_failures (ip TEXT PRIMARY KEY, count INTEGER NOT NULL, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS folders (
    id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER NOT NULL, parent_id INTEGER,
    name TEXT NOT NULL, is_public INTEGER NOT NULL, password TEXT, status TEXT NOT NULL,
    date_added TEXT NOT NULL, date_updated TEXT);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER, folder_id INTEGER, name TEXT NOT NULL,
    short_url TEXT NOT NULL, file_type TEXT NOT NULL, extension TEXT NOT NULL, size INTEGER NOT NULL,
    blob TEXT NOT NULL, digest TEXT NOT NULL, status TEXT NOT NULL, uploaded_ip TEXT NOT NULL,
    uploaded_date TEXT NOT NULL, downloads INTEGER NOT NULL, keywords TEXT, upload_source TEXT NOT NULL,
    delete_hash TEXT NOT NULL, unique_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS files_by_folder ON files(account_id, folder_id, status);
CREATE INDEX IF NOT EXISTS files_by_digest ON files(digest, size);
CREATE INDEX IF NOT EXISTS files_by_short ON files(short_url);
CREATE TABLE IF NOT EXISTS download_tokens (token TEXT PRIMARY KEY, file_id INTEGER NOT NULL, expiry INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS url_uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER NOT NULL, folder_id INTEGER,
    url TEXT NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL, started TEXT, finished TEXT,
    total_size INTEGER NOT NULL, file_id INTEGER, error TEXT,
    downloaded_size INTEGER NOT NULL DEFAULT 0);
";

/// Columns a data directory of an earlier version lacks.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[(
    "url_uploads",
    "downloaded_size",
    "INTEGER NOT NULL DEFAULT 0",
)];

/// An account that may use the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Account id (`account_id` in requests).
    pub id: i64,
    /// First key.
    pub key1: String,
    /// Second key.
    pub key2: String,
    /// Login name shown by `account/info`.
    pub username: String,
    /// Admin accounts may omit `account_id` on `account/info` and use `package/*`.
    pub is_admin: bool,
    /// Creation date.
    pub created: String,
    /// Last `/authorize`.
    pub last_login: Option<String>,
    /// IP of the last `/authorize`.
    pub last_login_ip: Option<String>,
}

/// A folder row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderRow {
    /// Folder id.
    pub id: i64,
    /// Owner.
    pub account_id: i64,
    /// Parent folder; `None` at the root (may name a folder that does not exist).
    pub parent_id: Option<i64>,
    /// Stored name.
    pub name: String,
    /// 0 private, 1 unlisted, 2 public.
    pub is_public: i64,
    /// MD5 of the access password, if set.
    pub password: Option<String>,
    /// `active` or `trash`.
    pub status: String,
    /// Creation date.
    pub date_added: String,
    /// Last change by a delete.
    pub date_updated: Option<String>,
}

/// A file row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRow {
    /// File id.
    pub id: i64,
    /// Owner; `None` for the ownerless copies of a cookie-less `file/copy`.
    pub account_id: Option<i64>,
    /// Folder; `None` at the root, `Some(0)` after the 4.x null-move bug.
    pub folder_id: Option<i64>,
    /// Stored name.
    pub name: String,
    /// Short url code.
    pub short_url: String,
    /// MIME type.
    pub file_type: String,
    /// Extension column (lower case, at most 10 characters).
    pub extension: String,
    /// Size in bytes.
    pub size: i64,
    /// Blob file name under the data dir.
    pub blob: String,
    /// Content digest, for deduplication.
    pub digest: String,
    /// `active` or `trash`.
    pub status: String,
    /// Uploader's IP.
    pub uploaded_ip: String,
    /// Upload date.
    pub uploaded_date: String,
    /// Download count.
    pub downloads: i64,
    /// Search keywords.
    pub keywords: Option<String>,
    /// `api` or `direct`.
    pub upload_source: String,
    /// Hash of the delete link.
    pub delete_hash: String,
    /// Unique hash shown on upload.
    pub unique_hash: String,
}

/// A scheduled URL upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlUploadRow {
    /// Scheduled item id.
    pub id: i64,
    /// Owner.
    pub account_id: i64,
    /// Target folder.
    pub folder_id: Option<i64>,
    /// Source URL.
    pub url: String,
    /// `pending`, `downloading`, `complete` or `failed`.
    pub status: String,
    /// When it was scheduled.
    pub created: String,
    /// When the fetch started.
    pub started: Option<String>,
    /// When it ended.
    pub finished: Option<String>,
    /// Bytes to fetch: the `Content-Length` of the fetched URL once its reply began, else
    /// the bytes fetched once it ended.
    pub total_size: i64,
    /// Bytes fetched so far.
    pub downloaded_size: i64,
    /// The stored file once complete.
    pub file_id: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// What a new file row holds before it gets an id.
#[derive(Clone, Debug)]
pub struct NewFile {
    /// Owner.
    pub account_id: Option<i64>,
    /// Folder.
    pub folder_id: Option<i64>,
    /// MIME type.
    pub file_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Blob file name.
    pub blob: String,
    /// Content digest.
    pub digest: String,
    /// Uploader's IP.
    pub uploaded_ip: String,
    /// Upload date.
    pub uploaded_date: String,
    /// Search keywords.
    pub keywords: Option<String>,
    /// `api` or `direct`.
    pub upload_source: String,
    /// Hash of the delete link.
    pub delete_hash: String,
    /// Unique hash.
    pub unique_hash: String,
}

const FOLDER_COLS: &str =
    "id, account_id, parent_id, name, is_public, password, status, date_added, date_updated";
const FILE_COLS: &str = "id, account_id, folder_id, name, short_url, file_type, extension, size, \
     blob, digest, status, uploaded_ip, uploaded_date, downloads, keywords, upload_source, \
     delete_hash, unique_hash";

fn folder_row(r: &Row) -> Result<FolderRow> {
    Ok(FolderRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        parent_id: r.get(2)?,
        name: r.get(3)?,
        is_public: r.get(4)?,
        password: r.get(5)?,
        status: r.get(6)?,
        date_added: r.get(7)?,
        date_updated: r.get(8)?,
    })
}

fn file_row(r: &Row) -> Result<FileRow> {
    Ok(FileRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        folder_id: r.get(2)?,
        name: r.get(3)?,
        short_url: r.get(4)?,
        file_type: r.get(5)?,
        extension: r.get(6)?,
        size: r.get(7)?,
        blob: r.get(8)?,
        digest: r.get(9)?,
        status: r.get(10)?,
        uploaded_ip: r.get(11)?,
        uploaded_date: r.get(12)?,
        downloads: r.get(13)?,
        keywords: r.get(14)?,
        upload_source: r.get(15)?,
        delete_hash: r.get(16)?,
        unique_hash: r.get(17)?,
    })
}

fn account_row(r: &Row) -> Result<Account> {
    Ok(Account {
        id: r.get(0)?,
        key1: r.get(1)?,
        key2: r.get(2)?,
        username: r.get(3)?,
        is_admin: r.get::<_, i64>(4)? != 0,
        created: r.get(5)?,
        last_login: r.get(6)?,
        last_login_ip: r.get(7)?,
    })
}

fn url_upload_row(r: &Row) -> Result<UrlUploadRow> {
    Ok(UrlUploadRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        folder_id: r.get(2)?,
        url: r.get(3)?,
        status: r.get(4)?,
        created: r.get(5)?,
        started: r.get(6)?,
        finished: r.get(7)?,
        total_size: r.get(8)?,
        file_id: r.get(9)?,
        error: r.get(10)?,
        downloaded_size: r.get(11)?,
    })
}

const SHORT_URL_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The short url code of a file id (base 62 of id + 10: file 1 is `b`, as on the real server).
pub fn short_url_for(id: i64) -> String {
    let mut n = (id.max(0) as u64) + 10;
    let mut out = Vec::new();
    while n > 0 {
        out.push(SHORT_URL_ALPHABET[(n % 62) as usize]);
        n /= 62;
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// The database.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let schema = Schema {
            tables: SCHEMA,
            added_columns: ADDED_COLUMNS,
        };
        let opened = sqlite::open(Some(path), &schema, Synchronous::Normal, false)?;
        Ok(Store {
            conn: Mutex::new(opened.writer),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock()
    }

    // ---- accounts ----

    /// The account with these keys (compared ignoring case), if any.
    pub fn account_by_keys(&self, key1: &str, key2: &str) -> Result<Option<Account>> {
        self.conn()
            .query_row(
                "SELECT id, key1, key2, username, is_admin, created, last_login, last_login_ip \
                 FROM accounts WHERE lower(key1) = lower(?1) AND lower(key2) = lower(?2)",
                params![key1, key2],
                account_row,
            )
            .optional()
    }

    /// The account with this id.
    pub fn account(&self, id: i64) -> Result<Option<Account>> {
        self.conn()
            .query_row(
                "SELECT id, key1, key2, username, is_admin, created, last_login, last_login_ip \
                 FROM accounts WHERE id = ?1",
                params![id],
                account_row,
            )
            .optional()
    }

    /// The first account created (the main one), if any.
    pub fn first_account(&self) -> Result<Option<Account>> {
        self.conn()
            .query_row(
                "SELECT id, key1, key2, username, is_admin, created, last_login, last_login_ip \
                 FROM accounts ORDER BY id LIMIT 1",
                [],
                account_row,
            )
            .optional()
    }

    /// Creates an account.
    pub fn add_account(
        &self,
        key1: &str,
        key2: &str,
        is_admin: bool,
        now: &str,
    ) -> Result<Account> {
        let conn = self.conn();
        let next: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM accounts", [], |r| {
                r.get(0)
            })?;
        let username = if is_admin {
            "admin".to_string()
        } else {
            format!("user{next}")
        };
        conn.execute(
            "INSERT INTO accounts (id, key1, key2, username, is_admin, created) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![next, key1, key2, username, is_admin as i64, now],
        )?;
        Ok(Account {
            id: next,
            key1: key1.into(),
            key2: key2.into(),
            username,
            is_admin,
            created: now.into(),
            last_login: None,
            last_login_ip: None,
        })
    }

    /// Records a successful login.
    pub fn record_login(&self, account: i64, now: &str, ip: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE accounts SET last_login = ?2, last_login_ip = ?3 WHERE id = ?1",
            params![account, now, ip],
        )?;
        Ok(())
    }

    // ---- tokens and sessions ----

    /// Stores a new token; with `single`, the account's older tokens are deleted first.
    pub fn add_token(&self, token: &str, account: i64, now: i64, single: bool) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if single {
            tx.execute("DELETE FROM tokens WHERE account_id = ?1", params![account])?;
        }
        tx.execute(
            "INSERT INTO tokens (token, account_id, last_used) VALUES (?1, ?2, ?3)",
            params![token, account, now],
        )?;
        tx.commit()
    }

    /// The account a live token belongs to, renewing it; an idle token is deleted.
    pub fn use_token(&self, token: &str, now: i64, idle_secs: i64) -> Result<Option<i64>> {
        let conn = self.conn();
        let found: Option<(i64, i64)> = conn
            .query_row(
                "SELECT account_id, last_used FROM tokens WHERE token = ?1",
                params![token],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match found {
            Some((account, last_used)) if now - last_used <= idle_secs => {
                conn.execute(
                    "UPDATE tokens SET last_used = ?2 WHERE token = ?1",
                    params![token, now],
                )?;
                Ok(Some(account))
            }
            Some(_) => {
                conn.execute("DELETE FROM tokens WHERE token = ?1", params![token])?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Deletes a token.
    pub fn delete_token(&self, token: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM tokens WHERE token = ?1", params![token])?;
        Ok(())
    }

    /// Binds a session cookie to the account that logged in with it.
    pub fn add_session(&self, session: &str, account: i64) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO sessions (id, account_id) VALUES (?1, ?2)",
            params![session, account],
        )?;
        Ok(())
    }

    /// The account logged in under a session cookie.
    pub fn session_account(&self, session: &str) -> Result<Option<i64>> {
        self.conn()
            .query_row(
                "SELECT account_id FROM sessions WHERE id = ?1",
                params![session],
                |r| r.get(0),
            )
            .optional()
    }

    /// Failed logins of an IP that still count at `now` (the last one less than `window`
    /// seconds before), and the time of the last one: `(0, 0)` when none counts.
    pub fn login_failures(&self, ip: &str, now: i64, window: i64) -> Result<(i64, i64)> {
        let found: Option<(i64, i64)> = self
            .conn()
            .query_row(
                "SELECT count, last FROM login_failures WHERE ip = ?1",
                params![ip],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match found {
            Some((count, last)) if now - last <= window => (count, last),
            _ => (0, 0),
        })
    }

    /// Counts one more failed login of an IP; returns how many now count.
    pub fn add_login_failure(&self, ip: &str, now: i64, window: i64) -> Result<i64> {
        let (current, _) = self.login_failures(ip, now, window)?;
        self.conn().execute(
            "INSERT OR REPLACE INTO login_failures (ip, count, last) VALUES (?1, ?2, ?3)",
            params![ip, current + 1, now],
        )?;
        Ok(current + 1)
    }

    // ---- folders ----

    /// Creates a folder.
    pub fn create_folder(
        &self,
        account: i64,
        parent: Option<i64>,
        name: &str,
        is_public: i64,
        password: Option<&str>,
        now: &str,
    ) -> Result<FolderRow> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO folders (account_id, parent_id, name, is_public, password, status, date_added) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6)",
            params![account, parent, name, is_public, password, now],
        )?;
        let id = conn.last_insert_rowid();
        conn.query_row(
            &format!("SELECT {FOLDER_COLS} FROM folders WHERE id = ?1"),
            params![id],
            folder_row,
        )
    }

    /// A folder of this account (any status).
    pub fn folder(&self, account: i64, id: i64) -> Result<Option<FolderRow>> {
        self.conn()
            .query_row(
                &format!("SELECT {FOLDER_COLS} FROM folders WHERE id = ?1 AND account_id = ?2"),
                params![id, account],
                folder_row,
            )
            .optional()
    }

    /// The folders of an account under `parent` (any status), by name then id.
    pub fn child_folders(&self, account: i64, parent: Option<i64>) -> Result<Vec<FolderRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {FOLDER_COLS} FROM folders WHERE account_id = ?1 AND parent_id IS ?2 \
             ORDER BY lower(name), id"
        ))?;
        let rows = stmt.query_map(params![account, parent], folder_row)?;
        rows.collect()
    }

    /// Child folders (any status), active files and their total size, for a folder's reply.
    pub fn folder_stats(&self, id: i64) -> Result<(i64, i64, i64)> {
        let conn = self.conn();
        let children: i64 = conn.query_row(
            "SELECT COUNT(*) FROM folders WHERE parent_id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        let (files, size): (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE folder_id = ?1 AND status = 'active'",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((children, files, size))
    }

    /// Rewrites a folder's editable columns.
    pub fn update_folder(&self, folder: &FolderRow) -> Result<()> {
        self.conn().execute(
            "UPDATE folders SET parent_id = ?2, name = ?3, is_public = ?4, password = ?5 WHERE id = ?1",
            params![
                folder.id,
                folder.parent_id,
                folder.name,
                folder.is_public,
                folder.password
            ],
        )?;
        Ok(())
    }

    /// Trashes a folder, its subfolders and all their files; with `to_root`, the folder's
    /// parent becomes null (the 4.x behaviour).
    pub fn trash_folder(&self, account: i64, id: i64, to_root: bool, now: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut pending = vec![id];
        let mut all = Vec::new();
        while let Some(next) = pending.pop() {
            if all.contains(&next) {
                continue;
            }
            all.push(next);
            let mut stmt =
                tx.prepare("SELECT id FROM folders WHERE parent_id = ?1 AND account_id = ?2")?;
            let kids = stmt.query_map(params![next, account], |r| r.get::<_, i64>(0))?;
            for kid in kids {
                pending.push(kid?);
            }
        }
        for folder in &all {
            tx.execute(
                "UPDATE folders SET status = 'trash', date_updated = ?2 WHERE id = ?1",
                params![folder, now],
            )?;
            tx.execute(
                "UPDATE files SET status = 'trash' WHERE folder_id = ?1 AND account_id = ?2",
                params![folder, account],
            )?;
        }
        if to_root {
            tx.execute(
                "UPDATE folders SET parent_id = NULL WHERE id = ?1",
                params![id],
            )?;
        }
        tx.commit()
    }

    // ---- files ----

    /// Inserts a file under a name chosen inside the same transaction by `choose_name`, which is
    /// told whether a candidate is already taken by an active file of the folder.
    pub fn insert_file(
        &self,
        new: &NewFile,
        choose_name: impl Fn(&dyn Fn(&str) -> Result<bool>) -> Result<String>,
    ) -> Result<FileRow> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let name = {
            let taken = |candidate: &str| -> Result<bool> {
                let n: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM files WHERE name = ?1 AND status = 'active' \
                     AND account_id IS ?2 AND folder_id IS ?3",
                    params![candidate, new.account_id, new.folder_id],
                    |r| r.get(0),
                )?;
                Ok(n > 0)
            };
            choose_name(&taken)?
        };
        let extension = super::names::extension_of(&name);
        tx.execute(
            "INSERT INTO files (account_id, folder_id, name, short_url, file_type, extension, size, \
             blob, digest, status, uploaded_ip, uploaded_date, downloads, keywords, upload_source, \
             delete_hash, unique_hash) VALUES (?1, ?2, ?3, 'temp', ?4, ?5, ?6, ?7, ?8, 'active', \
             ?9, ?10, 0, ?11, ?12, ?13, ?14)",
            params![
                new.account_id,
                new.folder_id,
                name,
                new.file_type,
                extension,
                new.size,
                new.blob,
                new.digest,
                new.uploaded_ip,
                new.uploaded_date,
                new.keywords,
                new.upload_source,
                new.delete_hash,
                new.unique_hash
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE files SET short_url = ?2 WHERE id = ?1",
            params![id, short_url_for(id)],
        )?;
        let row = tx.query_row(
            &format!("SELECT {FILE_COLS} FROM files WHERE id = ?1"),
            params![id],
            file_row,
        )?;
        tx.commit()?;
        Ok(row)
    }

    /// A file of this account (any status, any folder).
    pub fn file(&self, account: i64, id: i64) -> Result<Option<FileRow>> {
        self.conn()
            .query_row(
                &format!("SELECT {FILE_COLS} FROM files WHERE id = ?1 AND account_id = ?2"),
                params![id, account],
                file_row,
            )
            .optional()
    }

    /// A file of this account by short url code.
    pub fn file_by_short_url(&self, account: i64, short: &str) -> Result<Option<FileRow>> {
        self.conn()
            .query_row(
                &format!("SELECT {FILE_COLS} FROM files WHERE short_url = ?1 AND account_id = ?2"),
                params![short, account],
                file_row,
            )
            .optional()
    }

    /// Any file by id, whoever owns it (the file server's view).
    pub fn file_any(&self, id: i64) -> Result<Option<FileRow>> {
        self.conn()
            .query_row(
                &format!("SELECT {FILE_COLS} FROM files WHERE id = ?1"),
                params![id],
                file_row,
            )
            .optional()
    }

    /// The files of an account in a folder, by name then id; trashed ones only with `trashed`.
    pub fn files_in(
        &self,
        account: i64,
        folder: Option<i64>,
        trashed: bool,
    ) -> Result<Vec<FileRow>> {
        let conn = self.conn();
        let status = if trashed { "" } else { "AND status = 'active'" };
        let mut stmt = conn.prepare(&format!(
            "SELECT {FILE_COLS} FROM files WHERE account_id = ?1 AND folder_id IS ?2 {status} \
             ORDER BY lower(name), id"
        ))?;
        let rows = stmt.query_map(params![account, folder], file_row)?;
        rows.collect()
    }

    /// An active file with this content, to share its blob.
    pub fn find_duplicate(&self, digest: &str, size: i64) -> Result<Option<FileRow>> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {FILE_COLS} FROM files WHERE digest = ?1 AND size = ?2 \
                     AND status = 'active' ORDER BY id LIMIT 1"
                ),
                params![digest, size],
                file_row,
            )
            .optional()
    }

    /// Bytes of an account's active files.
    pub fn storage_used(&self, account: i64) -> Result<i64> {
        self.conn().query_row(
            "SELECT COALESCE(SUM(size), 0) FROM files WHERE account_id = ?1 AND status = 'active'",
            params![account],
            |r| r.get(0),
        )
    }

    /// Rewrites a file's editable columns (name, extension, type, folder, status).
    pub fn update_file(&self, file: &FileRow) -> Result<()> {
        self.conn().execute(
            "UPDATE files SET name = ?2, extension = ?3, file_type = ?4, folder_id = ?5, status = ?6 \
             WHERE id = ?1",
            params![
                file.id,
                file.name,
                file.extension,
                file.file_type,
                file.folder_id,
                file.status
            ],
        )?;
        Ok(())
    }

    /// Counts a download.
    pub fn count_download(&self, id: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE files SET downloads = downloads + 1 WHERE id = ?1",
            params![id],
        )?;
        Ok(())
    }

    // ---- download tokens ----

    /// Stores a download token for a file.
    pub fn add_download_token(&self, token: &str, file: i64, expiry: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO download_tokens (token, file_id, expiry) VALUES (?1, ?2, ?3)",
            params![token, file, expiry],
        )?;
        Ok(())
    }

    /// The file a live download token opens.
    pub fn download_token_file(&self, token: &str, now: i64) -> Result<Option<i64>> {
        self.conn()
            .query_row(
                "SELECT file_id FROM download_tokens WHERE token = ?1 AND expiry > ?2",
                params![token, now],
                |r| r.get(0),
            )
            .optional()
    }

    // ---- url uploads ----

    /// Schedules a URL upload.
    pub fn add_url_upload(
        &self,
        account: i64,
        folder: Option<i64>,
        url: &str,
        now: &str,
    ) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO url_uploads (account_id, folder_id, url, status, created, total_size) \
             VALUES (?1, ?2, ?3, 'pending', ?4, 0)",
            params![account, folder, url, now],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// A scheduled URL upload of this account.
    pub fn url_upload(&self, account: i64, id: i64) -> Result<Option<UrlUploadRow>> {
        self.conn()
            .query_row(
                "SELECT id, account_id, folder_id, url, status, created, started, finished, \
                 total_size, file_id, error, downloaded_size FROM url_uploads \
                 WHERE id = ?1 AND account_id = ?2",
                params![id, account],
                url_upload_row,
            )
            .optional()
    }

    /// Moves a URL upload to `downloading`.
    pub fn url_upload_started(&self, id: i64, now: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE url_uploads SET status = 'downloading', started = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    /// Records how far a URL upload's fetch got: `downloaded` bytes of `total` (`None`: the
    /// fetched server did not say).
    pub fn url_upload_progress(&self, id: i64, downloaded: i64, total: Option<i64>) -> Result<()> {
        self.conn().execute(
            "UPDATE url_uploads SET downloaded_size = ?2, total_size = COALESCE(?3, total_size) \
             WHERE id = ?1",
            params![id, downloaded, total],
        )?;
        Ok(())
    }

    /// Ends a URL upload: `complete` with its file, or `failed` with a reason.
    pub fn url_upload_finished(
        &self,
        id: i64,
        now: &str,
        outcome: std::result::Result<(i64, i64), String>,
    ) -> Result<()> {
        let conn = self.conn();
        match outcome {
            Ok((file, size)) => conn.execute(
                "UPDATE url_uploads SET status = 'complete', finished = ?2, file_id = ?3, \
                 total_size = ?4, downloaded_size = ?4 WHERE id = ?1",
                params![id, now, file, size],
            )?,
            Err(reason) => conn.execute(
                "UPDATE url_uploads SET status = 'failed', finished = ?2, error = ?3 WHERE id = ?1",
                params![id, now, reason],
            )?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_urls_start_at_b_like_the_real_server() {
        assert_eq!(short_url_for(1), "b");
        assert_eq!(short_url_for(9), "j");
        assert_ne!(short_url_for(61), short_url_for(62));
    }

    #[test]
    fn a_new_token_kills_the_older_ones_of_the_account() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        store.add_token("t1", 1, 100, true).unwrap();
        store.add_token("t2", 1, 100, true).unwrap();
        assert_eq!(store.use_token("t1", 101, 3600).unwrap(), None);
        assert_eq!(store.use_token("T2", 101, 3600).unwrap(), Some(1));
        assert_eq!(store.use_token("t2", 101 + 3601, 3600).unwrap(), None);
    }
}
