//! Storing received content as a new file, the way the server's uploader does: the renames
//! (leading dot, quotes, duplicates), deduplication of identical content, the folder check.
//! Shared by `file/upload` and URL uploads.
use std::cell::RefCell;

use super::blobs::{random_hex, TempBlob};
use super::config::Quirk;
use super::names;
use super::reply::now_string;
use super::state::AppState;
use super::store::{FileRow, NewFile};

/// Why content could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The disk failed.
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
}

/// A stored upload.
pub struct Stored {
    /// The new row.
    pub file: FileRow,
    /// The name as the upload reply gives it (before the database mangles non-BMP text).
    pub reply_name: String,
    /// Whether the content was already stored under another file.
    pub deduplicated: bool,
}

/// Stores `temp` as a new file of `account` named after `raw_name` in `folder_id` (a folder the
/// account does not own means the root).
pub async fn store_file(
    st: &AppState,
    account: i64,
    folder_id: Option<i64>,
    raw_name: &str,
    temp: TempBlob,
    ip: &str,
) -> Result<Stored, IngestError> {
    let folder = match folder_id.filter(|id| *id > 0) {
        Some(id) => st.store.folder(account, id)?.map(|f| f.id),
        None => None,
    };
    let renames = st.args.quirk(Quirk::UploadRenames);
    let base_name = names::base_name(raw_name);
    let base = if renames {
        names::upload_base(base_name, chrono::Local::now())
    } else if base_name.trim().is_empty() {
        names::upload_base("", chrono::Local::now())
    } else {
        base_name.to_string()
    };

    let mut deduplicated = false;
    let mut blob_name = None;
    if st.args.quirk(Quirk::Dedup) {
        if let Some(existing) = st.store.find_duplicate(&temp.digest, temp.size as i64)? {
            if st.blobs.same_content(&existing.blob, &temp).await? {
                deduplicated = true;
                blob_name = Some(existing.blob);
            }
        }
    }
    let blob = match blob_name {
        Some(name) => name,
        None => st.blobs.commit(&temp).await?,
    };

    let reply_name = RefCell::new(String::new());
    let new = NewFile {
        account_id: Some(account),
        folder_id: folder,
        file_type: "application/octet-stream".into(),
        size: temp.size as i64,
        blob,
        digest: temp.digest.clone(),
        uploaded_ip: ip.to_string(),
        uploaded_date: now_string(),
        keywords: Some(names::keywords(&base)),
        upload_source: "api".into(),
        delete_hash: random_hex(32),
        unique_hash: random_hex(64),
    };
    let file = st.store.insert_file(&new, |taken| {
        let mut candidate = base.clone();
        if renames {
            let mut tracker = 2;
            while taken(&names::stored_form(&names::make_safe(&candidate)))? {
                candidate = names::duplicate_name(&base, tracker);
                tracker += 1;
            }
            candidate = names::make_safe(&candidate);
        }
        reply_name.replace(candidate.clone());
        Ok(names::stored_form(&candidate))
    })?;
    Ok(Stored {
        file,
        reply_name: reply_name.into_inner(),
        deduplicated,
    })
}
