//! JSON shapes of replies, per server generation: 4.x sends database numbers as strings and
//! errors as `{"status":"error","response":..}`, 5.x native numbers and
//! `{"response":..,"_status":"error"}`. Computed counts are numbers in both.
use serde_json::{json, Map, Value};

use super::config::Profile;
use super::names::url_name;
use super::store::{FileRow, FolderRow};

/// The server's local time as `Y-m-d H:i:s`.
pub fn now_string() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Builds replies for one request (profile and the origin URLs point at).
#[derive(Clone, Debug)]
pub struct Shapes {
    /// Server generation.
    pub profile: Profile,
    /// `http://host:port`, as the client reached us.
    pub origin: String,
}

/// A folder's computed counts.
#[derive(Clone, Copy, Debug, Default)]
pub struct FolderStats {
    /// Child folders.
    pub child_folders: i64,
    /// Active files.
    pub files: i64,
    /// Bytes of active files.
    pub total_size: i64,
}

impl Shapes {
    /// A database number: a string on 4.x, a number on 5.x.
    pub fn num(&self, n: i64) -> Value {
        match self.profile {
            Profile::V4 => Value::String(n.to_string()),
            Profile::V5 => Value::from(n),
        }
    }

    /// A nullable database number.
    pub fn opt_num(&self, n: Option<i64>) -> Value {
        n.map_or(Value::Null, |n| self.num(n))
    }

    /// An error reply.
    pub fn error(&self, message: &str) -> Value {
        match self.profile {
            Profile::V4 => {
                json!({"status": "error", "response": message, "_datetime": now_string()})
            }
            Profile::V5 => {
                json!({"response": message, "_status": "error", "_datetime": now_string()})
            }
        }
    }

    /// The reply to an action the endpoint does not have.
    pub fn unknown_action(&self, endpoint: &str, action: &str) -> Value {
        json!({
            "0": format!("No method found within endpoint ({endpoint}): {action}"),
            "_status": "error",
            "_datetime": now_string(),
        })
    }

    /// A success reply: `fields` plus `_status` and `_datetime`.
    pub fn success(&self, fields: Value) -> Value {
        let mut map = match fields {
            Value::Object(map) => map,
            other => {
                let mut m = Map::new();
                m.insert("data".into(), other);
                m
            }
        };
        map.insert("_status".into(), "success".into());
        map.insert("_datetime".into(), now_string().into());
        Value::Object(map)
    }

    /// The public page of a folder.
    pub fn folder_url(&self, folder: &FolderRow) -> String {
        format!(
            "{}/folder/{}/{}",
            self.origin,
            folder.id,
            url_name(&folder.name)
        )
    }

    /// A folder as `folder/info` and the mutations show it (`with_password`), or as a listing
    /// entry (without `accessPassword`).
    pub fn folder(&self, folder: &FolderRow, stats: FolderStats, with_password: bool) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), self.num(folder.id));
        m.insert("parentId".into(), self.opt_num(folder.parent_id));
        m.insert("folderName".into(), folder.name.clone().into());
        m.insert("totalSize".into(), self.num(stats.total_size));
        m.insert("isPublic".into(), self.num(folder.is_public));
        if with_password {
            m.insert(
                "accessPassword".into(),
                folder.password.clone().map_or(Value::Null, Value::from),
            );
        }
        m.insert("date_added".into(), folder.date_added.clone().into());
        m.insert(
            "date_updated".into(),
            folder.date_updated.clone().map_or(Value::Null, Value::from),
        );
        m.insert("url_folder".into(), self.folder_url(folder).into());
        m.insert("total_downloads".into(), 0.into());
        m.insert("child_folder_count".into(), stats.child_folders.into());
        m.insert("file_count".into(), stats.files.into());
        if self.profile == Profile::V5 {
            m.insert("status".into(), folder.status.clone().into());
            m.insert(
                "urlHash".into(),
                format!("{:x}", folder.id.wrapping_mul(0x9E37_79B9)).into(),
            );
        }
        Value::Object(m)
    }

    /// The share link of a file.
    pub fn file_url(&self, file: &FileRow) -> String {
        format!("{}/{}", self.origin, file.short_url)
    }

    /// A file as `file/info`, `file/edit`, `file/move`, `file/delete` and `file/copy` show it.
    pub fn file_full(&self, file: &FileRow) -> Value {
        let url = self.file_url(file);
        json!({
            "id": self.num(file.id),
            "filename": file.name,
            "shortUrl": file.short_url,
            "fileType": file.file_type,
            "extension": file.extension,
            "fileSize": self.num(file.size),
            "uploadedIP": file.uploaded_ip,
            "uploadedDate": file.uploaded_date,
            "file_status": file.status,
            "downloads": self.num(file.downloads),
            "lastAccessed": Value::Null,
            "folderId": self.opt_num(file.folder_id),
            "keywords": file.keywords,
            "isPublic": self.num(1),
            "uploadSource": file.upload_source,
            "url_file": url,
            "url_file_info": format!("{url}~i"),
            "url_file_stats": format!("{url}~s"),
            "url_file_delete": format!("{url}~d?{}", file.delete_hash),
        })
    }

    /// A file as a listing entry.
    pub fn file_listed(&self, file: &FileRow) -> Value {
        json!({
            "id": self.num(file.id),
            "filename": file.name,
            "shortUrl": file.short_url,
            "fileType": file.file_type,
            "extension": file.extension,
            "fileSize": self.num(file.size),
            "status": file.status,
            "downloads": self.num(file.downloads),
            "folderId": self.opt_num(file.folder_id),
            "keywords": file.keywords,
            "url_file": self.file_url(file),
        })
    }

    /// The link the upload reply and `file/download` give: short url, then the URL form of
    /// the name.
    pub fn named_url(&self, file: &FileRow) -> String {
        format!(
            "{}/{}/{}",
            self.origin,
            file.short_url,
            url_name(&file.name)
        )
    }

    /// One item of the upload reply. `reply_name` is the name before the database mangled it;
    /// a deduplicated upload reports its size as a string and the content hash.
    pub fn uploaded(
        &self,
        file: &FileRow,
        reply_name: &str,
        deduplicated: bool,
        hash: &str,
    ) -> Value {
        let url = self.named_url(file);
        let short = self.file_url(file);
        let size = if deduplicated {
            Value::String(file.size.to_string())
        } else {
            Value::from(file.size)
        };
        json!({
            "name": reply_name,
            "size": size,
            "type": file.file_type,
            "error": Value::Null,
            "url": url,
            "delete_url": format!("{short}~d?{}", file.delete_hash),
            "info_url": format!("{short}~i?{}", file.delete_hash),
            "delete_type": "DELETE",
            "delete_hash": file.delete_hash,
            "hash": if deduplicated { Value::from(hash) } else { Value::Bool(false) },
            "stats_url": format!("{short}~s"),
            "short_url": file.short_url,
            "file_id": self.num(file.id),
            "unique_hash": file.unique_hash,
            "url_html": format!(
                "&lt;a href=&quot;{url}&quot; target=&quot;_blank&quot; title=&quot;View image on yetifs emulator&quot;&gt;view {reply_name} on yetifs emulator&lt;/a&gt;"
            ),
            "url_bbcode": format!("[url]{url}[/url]"),
            "success_result_html": format!(
                "<td class=\"name\">{reply_name}</td><td class=\"url urlOff\"><a href=\"{url}\" target=\"_blank\">{url}</a></td>"
            ),
        })
    }
}
