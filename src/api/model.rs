//! The objects API v2 returns, read leniently: servers send numbers as strings or as numbers,
//! `null` or `false` for "nothing", leave fields out, add fields of their own, and write dates
//! as `Y-m-d H:i:s` in their local time without a zone. A reply is refused only when it lacks
//! what identifies the object (an id).
use chrono::{FixedOffset, Local, NaiveDateTime, TimeZone};
use serde::Deserialize;

use super::redact::Secret;

/// A server date: `Y-m-d H:i:s`, in the server's local time.
pub type ApiDate = NaiveDateTime;

/// Seconds since the epoch of a server date; `utc_offset` is the server's offset from UTC in
/// seconds, `None` meaning this machine's local zone.
pub fn to_epoch(date: ApiDate, utc_offset: Option<i32>) -> Option<i64> {
    match utc_offset {
        Some(offset) => FixedOffset::east_opt(offset)?
            .from_local_datetime(&date)
            .earliest()
            .map(|d| d.timestamp()),
        None => Local
            .from_local_datetime(&date)
            .earliest()
            .map(|d| d.timestamp()),
    }
}

/// The reply to `/authorize`: the account's one live token.
#[derive(Clone, Debug, Deserialize)]
pub struct Authorization {
    /// The access token (128 characters).
    pub access_token: Secret,
    /// The account the token belongs to.
    #[serde(deserialize_with = "de::id")]
    pub account_id: u64,
}

/// A folder, as `folder/listing`, `folder/info`, `folder/create`, `folder/edit` and
/// `folder/move` describe it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Folder {
    /// The folder id.
    #[serde(deserialize_with = "de::id")]
    pub id: u64,
    /// The parent folder; `None` at the root.
    #[serde(rename = "parentId", default, deserialize_with = "de::id_opt")]
    pub parent_id: Option<u64>,
    /// The name as stored.
    #[serde(rename = "folderName", default, deserialize_with = "de::string")]
    pub folder_name: String,
    /// Bytes of the files inside.
    #[serde(rename = "totalSize", default, deserialize_with = "de::u64_opt")]
    pub total_size: Option<u64>,
    /// 0 private, 1 unlisted, 2 public.
    #[serde(rename = "isPublic", default, deserialize_with = "de::u64_opt")]
    pub is_public: Option<u64>,
    /// Creation time.
    #[serde(default, deserialize_with = "de::date_opt")]
    pub date_added: Option<ApiDate>,
    /// Last change.
    #[serde(default, deserialize_with = "de::date_opt")]
    pub date_updated: Option<ApiDate>,
    /// The MD5 hex of the folder's access password; `folder/info` and the replies of
    /// `folder/create` and `folder/edit` carry it (null without one), listings do not.
    #[serde(
        rename = "accessPassword",
        default,
        deserialize_with = "de::string_opt"
    )]
    pub access_password: Option<String>,
    /// The public page.
    #[serde(default, deserialize_with = "de::string_opt")]
    pub url_folder: Option<String>,
    /// Downloads of the files inside.
    #[serde(default, deserialize_with = "de::u64_or_zero")]
    pub total_downloads: u64,
    /// Subfolders.
    #[serde(default, deserialize_with = "de::u64_or_zero")]
    pub child_folder_count: u64,
    /// Files inside.
    #[serde(default, deserialize_with = "de::u64_or_zero")]
    pub file_count: u64,
    /// `active` or `trash` on 5.x; absent on 4.x.
    #[serde(default, deserialize_with = "de::string_opt")]
    pub status: Option<String>,
}

impl Folder {
    /// Whether the server says the folder is in the trash (only 5.x says so).
    pub fn is_trashed(&self) -> bool {
        is_trash_status(self.status.as_deref())
    }
}

/// A file, as `folder/listing` describes it (and as the start of what `file/info` says).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct File {
    /// The file id; the content under it never changes.
    #[serde(deserialize_with = "de::id")]
    pub id: u64,
    /// The name as stored.
    #[serde(default, deserialize_with = "de::string")]
    pub filename: String,
    /// The short url code.
    #[serde(rename = "shortUrl", default, deserialize_with = "de::string")]
    pub short_url: String,
    /// The stored MIME type.
    #[serde(rename = "fileType", default, deserialize_with = "de::string_opt")]
    pub file_type: Option<String>,
    /// The extension the server derived from the name.
    #[serde(default, deserialize_with = "de::string_opt")]
    pub extension: Option<String>,
    /// Size in bytes.
    #[serde(rename = "fileSize", default, deserialize_with = "de::u64_or_zero")]
    pub file_size: u64,
    /// `active`, `trash`, `deleted` (listings).
    #[serde(default, deserialize_with = "de::string_opt")]
    pub status: Option<String>,
    /// Download count.
    #[serde(default, deserialize_with = "de::u64_or_zero")]
    pub downloads: u64,
    /// The folder holding it; `None` at the root.
    #[serde(rename = "folderId", default, deserialize_with = "de::id_opt")]
    pub folder_id: Option<u64>,
    /// Search keywords.
    #[serde(default, deserialize_with = "de::string_opt")]
    pub keywords: Option<String>,
    /// The share link.
    #[serde(default, deserialize_with = "de::string_opt")]
    pub url_file: Option<String>,
}

impl File {
    /// Whether the file is in the trash.
    pub fn is_trashed(&self) -> bool {
        is_trash_status(self.status.as_deref())
    }
}

/// A file as `file/info`, `file/edit`, `file/move`, `file/delete` and `file/copy` describe it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct FileInfo {
    /// What a listing says.
    #[serde(flatten)]
    pub file: File,
    /// Upload time.
    #[serde(rename = "uploadedDate", default, deserialize_with = "de::date_opt")]
    pub uploaded_date: Option<ApiDate>,
    /// Last download.
    #[serde(rename = "lastAccessed", default, deserialize_with = "de::date_opt")]
    pub last_accessed: Option<ApiDate>,
    /// `active`, `trash`, `deleted`.
    #[serde(default, deserialize_with = "de::string_opt")]
    pub file_status: Option<String>,
    /// Whether the file is public.
    #[serde(rename = "isPublic", default, deserialize_with = "de::u64_opt")]
    pub is_public: Option<u64>,
    /// The file's information page.
    #[serde(default, deserialize_with = "de::string_opt")]
    pub url_file_info: Option<String>,
}

impl FileInfo {
    /// Whether the file is in the trash.
    pub fn is_trashed(&self) -> bool {
        self.file.is_trashed() || is_trash_status(self.file_status.as_deref())
    }
}

/// Whether a status string means "in the trash".
fn is_trash_status(status: Option<&str>) -> bool {
    matches!(status.map(str::trim), Some(s) if s.eq_ignore_ascii_case("trash") || s.eq_ignore_ascii_case("deleted"))
}

/// The content of one folder.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct FolderListing {
    /// Subfolders.
    #[serde(default, deserialize_with = "de::list")]
    pub folders: Vec<Folder>,
    /// Files.
    #[serde(default, deserialize_with = "de::list")]
    pub files: Vec<File>,
}

/// The account, as `account/info` describes it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Account {
    /// The account id.
    #[serde(deserialize_with = "de::id")]
    pub id: u64,
    /// The login name.
    #[serde(default, deserialize_with = "de::string")]
    pub username: String,
    /// The account level.
    #[serde(default, deserialize_with = "de::u64_opt")]
    pub level_id: Option<u64>,
    /// The e-mail address.
    #[serde(default, deserialize_with = "de::string_opt")]
    pub email: Option<String>,
    /// `active`, ...
    #[serde(default, deserialize_with = "de::string_opt")]
    pub status: Option<String>,
    /// A storage limit set for this account alone, overriding the package's.
    #[serde(
        rename = "storageLimitOverride",
        default,
        deserialize_with = "de::u64_opt"
    )]
    pub storage_limit_override: Option<u64>,
    /// When paid access ends.
    #[serde(rename = "paidExpiryDate", default, deserialize_with = "de::date_opt")]
    pub paid_expiry_date: Option<ApiDate>,
}

/// The package limits, as `account/package` describes them; 0 means unlimited.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Package {
    /// The package (account level) id.
    #[serde(default, deserialize_with = "de::u64_opt")]
    pub id: Option<u64>,
    /// Its name.
    #[serde(default, deserialize_with = "de::string")]
    pub label: String,
    /// Largest file accepted.
    #[serde(default, deserialize_with = "de::u64_opt")]
    pub max_upload_size: Option<u64>,
    /// Total storage allowed.
    #[serde(default, deserialize_with = "de::u64_opt")]
    pub max_storage_bytes: Option<u64>,
    /// Uploads allowed at once.
    #[serde(default, deserialize_with = "de::u64_opt")]
    pub concurrent_uploads: Option<u64>,
    /// 1 when uploads are allowed.
    #[serde(default, deserialize_with = "de::u64_opt")]
    pub can_upload: Option<u64>,
    /// `free user`, `paid user`, `admin`, ...
    #[serde(default, deserialize_with = "de::string_opt")]
    pub level_type: Option<String>,
}

/// `Some(n)` for a real limit, `None` for "unlimited" (0 or absent).
pub fn limit(value: Option<u64>) -> Option<u64> {
    value.filter(|v| *v > 0)
}

/// One stored file in the reply to `file/upload`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct UploadedFile {
    /// The name the server stored, which may differ from the one sent.
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    /// Size in bytes (a string when the content was deduplicated).
    #[serde(default, deserialize_with = "de::u64_opt")]
    pub size: Option<u64>,
    /// The new file's id.
    #[serde(deserialize_with = "de::id")]
    pub file_id: u64,
    /// The short url code.
    #[serde(default, deserialize_with = "de::string")]
    pub short_url: String,
    /// The share link.
    #[serde(default, deserialize_with = "de::string_opt")]
    pub url: Option<String>,
    /// A per-file error of the upload handler; `None` on success.
    #[serde(default, deserialize_with = "de::string_opt")]
    pub error: Option<String>,
}

/// The reply to `file/download`.
#[derive(Clone, Debug, Deserialize)]
pub struct DownloadLink {
    /// The file.
    #[serde(default, deserialize_with = "de::u64_opt")]
    pub file_id: Option<u64>,
    /// Its stored name.
    #[serde(default, deserialize_with = "de::string")]
    pub filename: String,
    /// `{fileserver}/{shortUrl}/{name}?download_token=...`, valid for 24 hours.
    pub download_url: Secret,
}

/// The reply to `file/copy`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct CopyReply {
    /// The file copied.
    #[serde(deserialize_with = "de::wrapped")]
    pub original_file: FileInfo,
    /// The new copy.
    #[serde(deserialize_with = "de::wrapped")]
    pub new_file: FileInfo,
}

/// The reply to `file/url_upload_add`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct UrlUploadScheduled {
    /// The id to ask `file/url_upload_status` about.
    #[serde(deserialize_with = "de::id")]
    pub scheduled_item_id: u64,
    /// The URL to be fetched.
    #[serde(default, deserialize_with = "de::string_opt")]
    pub url: Option<String>,
}

/// The reply to `file/url_upload_status`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct UrlUploadStatus {
    /// The scheduled item.
    #[serde(deserialize_with = "de::id")]
    pub scheduled_item_id: u64,
    /// `pending`, `downloading`, `complete`, `failed`, ...
    #[serde(default, deserialize_with = "de::string")]
    pub status: String,
    /// When it was scheduled.
    #[serde(default, deserialize_with = "de::date_opt")]
    pub created: Option<ApiDate>,
    /// When fetching started.
    #[serde(default, deserialize_with = "de::date_opt")]
    pub started: Option<ApiDate>,
    /// When fetching ended.
    #[serde(default, deserialize_with = "de::date_opt")]
    pub finished: Option<ApiDate>,
    /// Bytes to fetch.
    #[serde(default, deserialize_with = "de::u64_opt")]
    pub total_size: Option<u64>,
    /// Bytes fetched so far. The API page's sample reply lacks it (the server's queue table
    /// has the column); read when a server sends it, for a progress bar.
    #[serde(default, deserialize_with = "de::u64_opt")]
    pub downloaded_size: Option<u64>,
    /// Why a failed fetch failed, when the server says (`error`, or `notes` as the server's
    /// queue table calls it); the API page documents no failure reply.
    #[serde(default, alias = "notes", deserialize_with = "de::string_opt")]
    pub error: Option<String>,
    /// The stored file, once complete.
    #[serde(default, deserialize_with = "de::object_opt")]
    pub downloaded_file: Option<DownloadedFile>,
}

/// The file a finished URL upload stored.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct DownloadedFile {
    /// Its id.
    #[serde(deserialize_with = "de::id")]
    pub file_id: u64,
    /// Its name.
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    /// Its size.
    #[serde(default, deserialize_with = "de::u64_opt")]
    pub size: Option<u64>,
    /// Its share link.
    #[serde(default, deserialize_with = "de::string_opt")]
    pub url: Option<String>,
}

/// Lenient field readers: every one goes through `serde_json::Value`, so that strings, numbers,
/// `null` and `false` are all understood.
mod de {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    use super::ApiDate;

    /// A non-negative integer in any spelling, or `None` for null, false, "" and garbage.
    fn number(value: &Value) -> Option<u64> {
        match value {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            }),
            Value::String(s) => {
                let s = s.trim();
                s.parse::<u64>().ok().or_else(|| {
                    s.parse::<f64>()
                        .ok()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && f.is_finite())
                        .map(|f| f as u64)
                })
            }
            Value::Bool(true) => Some(1),
            _ => None,
        }
    }

    /// A required id.
    pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let value = Value::deserialize(d)?;
        number(&value).ok_or_else(|| D::Error::custom(format!("not an id: {value}")))
    }

    /// A reference to a folder: 0, null and "" all mean the root (`None`).
    pub fn id_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(number(&Value::deserialize(d)?).filter(|id| *id != 0))
    }

    /// An optional count or size.
    pub fn u64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(number(&Value::deserialize(d)?))
    }

    /// A count or size that is 0 when unknown.
    pub fn u64_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Ok(number(&Value::deserialize(d)?).unwrap_or(0))
    }

    /// A text that may come as a number; null and false give `None`.
    pub fn string_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(true) => Some("1".to_owned()),
            _ => None,
        })
    }

    /// A text that is empty when missing.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(string_opt(d)?.unwrap_or_default())
    }

    /// A `Y-m-d H:i:s` date; null, zero dates and other spellings give `None`.
    pub fn date_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ApiDate>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => ApiDate::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S").ok(),
            _ => None,
        })
    }

    /// A list that PHP may also send as null, false or an object keyed by index.
    pub fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
        let items = match Value::deserialize(d)? {
            Value::Array(items) => items,
            Value::Object(map) => map.into_iter().map(|(_, v)| v).collect(),
            _ => Vec::new(),
        };
        items
            .into_iter()
            .map(|item| T::deserialize(item).map_err(D::Error::custom))
            .collect()
    }

    /// An object that is absent when the server sends null, false or an empty list.
    pub fn object_opt<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        match Value::deserialize(d)? {
            value @ Value::Object(_) => T::deserialize(value).map(Some).map_err(D::Error::custom),
            _ => Ok(None),
        }
    }

    /// An object that `file/copy` wraps as `{"data": {...}}`, or sends bare.
    pub fn wrapped<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
        let mut value = Value::deserialize(d)?;
        let inner = match value.get_mut("data") {
            Some(data) => data.take(),
            None => value,
        };
        T::deserialize(inner).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fixtures::body;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    /// The `data` member of the reply recorded in transcript `name`.
    fn data<T: DeserializeOwned>(name: &str) -> T {
        let reply: Value = serde_json::from_str(&body(name)).unwrap();
        serde_json::from_value(reply["data"].clone()).unwrap()
    }

    fn date(text: &str) -> ApiDate {
        ApiDate::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn authorization_reads_token_and_string_account_id() {
        let auth: Authorization = data("01_authorize_good_keys.txt");
        assert_eq!(auth.account_id, 1);
        assert_eq!(auth.access_token.expose(), "<ACCESS-TOKEN>");
    }

    #[test]
    fn a_4x_listing_reads_string_numbers_null_parents_and_odd_names() {
        let listing: FolderListing = data("145_folder_listing_root_after_folder_delete.txt");
        assert_eq!(listing.folders.len(), 6);
        let docs = listing.folders.iter().find(|f| f.id == 1).unwrap();
        assert_eq!(docs.folder_name, "Documents");
        assert_eq!(docs.parent_id, None);
        assert_eq!(docs.total_size, Some(20_971_812));
        assert_eq!(docs.file_count, 5);
        assert_eq!(docs.date_added, Some(date("2026-11-23 06:42:17")));
        assert_eq!(docs.date_updated, None);
        assert!(!docs.is_trashed(), "4.x never marks folders");
        let slash = listing.folders.iter().find(|f| f.id == 6).unwrap();
        assert_eq!(slash.folder_name, "a/b \"q\" 'x' tag & c");
        let file = &listing.files[0];
        assert_eq!(
            (file.id, file.filename.as_str(), file.short_url.as_str()),
            (2, "dir/name.txt", "c")
        );
        assert_eq!((file.file_size, file.folder_id), (38, None));
        assert!(!file.is_trashed());
    }

    #[test]
    fn a_subfolder_listing_reads_parent_and_folder_ids() {
        let listing: FolderListing = data("94_folder_listing_F1_with_files.txt");
        assert!(listing.folders.iter().all(|f| f.parent_id == Some(1)));
        assert!(!listing.files.is_empty());
        assert!(listing.files.iter().all(|f| f.folder_id == Some(1)));
    }

    #[test]
    fn a_5x_listing_with_native_numbers_and_trash_status_is_read() {
        let json = r#"{"folders":[{"id":12,"parentId":null,"folderName":"Old","totalSize":0,
            "isPublic":2,"date_added":"2024-01-02 03:04:05","status":"trash","urlHash":"ab"}],
            "files":[{"id":99,"filename":"a.bin","shortUrl":"x1","fileSize":1234,
            "status":"trash","downloads":7,"folderId":12,"extra":{"nested":true}}]}"#;
        let listing: FolderListing = serde_json::from_str(json).unwrap();
        assert!(listing.folders[0].is_trashed());
        assert_eq!(listing.folders[0].is_public, Some(2));
        let f = &listing.files[0];
        assert_eq!(
            (f.id, f.file_size, f.downloads, f.folder_id),
            (99, 1234, 7, Some(12))
        );
        assert!(f.is_trashed());
    }

    #[test]
    fn missing_null_false_and_empty_fields_default_instead_of_failing() {
        let json = r#"{"id":"5","filename":null,"fileSize":"","downloads":false,"folderId":"0"}"#;
        let f: File = serde_json::from_str(json).unwrap();
        assert_eq!(f.filename, "");
        assert_eq!((f.file_size, f.downloads, f.folder_id), (0, 0, None));
        let listing: FolderListing =
            serde_json::from_str(r#"{"folders":null,"files":{}}"#).unwrap();
        assert_eq!(listing, FolderListing::default());
        let keyed: FolderListing =
            serde_json::from_str(r#"{"files":{"0":{"id":1},"1":{"id":"2"}}}"#).unwrap();
        assert_eq!(keyed.files.len(), 2);
    }

    #[test]
    fn an_object_without_an_id_is_refused() {
        assert!(serde_json::from_str::<File>(r#"{"filename":"x"}"#).is_err());
        assert!(serde_json::from_str::<File>(r#"{"id":"abc"}"#).is_err());
    }

    #[test]
    fn file_info_adds_upload_date_and_trash_status() {
        let info: FileInfo = data("90_file_info.txt");
        assert_eq!(info.file.id, 1);
        assert_eq!(info.file.file_size, 38);
        assert_eq!(info.uploaded_date, Some(date("2026-11-23 06:42:44")));
        assert_eq!(info.last_accessed, None);
        assert!(!info.is_trashed());
        let trashed: FileInfo = data("133_file_info_trashed.txt");
        assert!(trashed.is_trashed());
        assert_eq!(trashed.file.folder_id, None);
    }

    #[test]
    fn account_and_package_read_their_limits() {
        let account: Account = data("20_account_info.txt");
        assert_eq!((account.id, account.username.as_str()), (1, "admin"));
        assert_eq!(account.storage_limit_override, None);
        let package: Package = data("22_account_package.txt");
        assert_eq!(package.max_upload_size, Some(5_368_709_120));
        assert_eq!(limit(package.max_storage_bytes), None, "0 means unlimited");
        assert_eq!(limit(package.concurrent_uploads), Some(1000));
    }

    #[test]
    fn upload_replies_read_numeric_and_deduplicated_string_sizes() {
        let fresh: Vec<UploadedFile> = data("70_file_upload_small.txt");
        assert_eq!(fresh[0].name, "hello.txt");
        assert_eq!((fresh[0].file_id, fresh[0].size), (1, Some(38)));
        assert_eq!(fresh[0].short_url, "b");
        assert_eq!(fresh[0].error, None);
        let dedup: Vec<UploadedFile> = data("72_file_upload_same_name_again.txt");
        assert_eq!(dedup[0].name, "hello (2).txt");
        assert_eq!(dedup[0].size, Some(38));
    }

    #[test]
    fn copy_reply_reads_both_wrapped_files() {
        let reply: Value =
            serde_json::from_str(&body("121_file_copy_with_session_cookie.txt")).unwrap();
        let copy: CopyReply = serde_json::from_value(reply).unwrap();
        assert_eq!(copy.original_file.file.id, 9);
        assert_eq!(copy.new_file.file.id, 17);
        assert_eq!(copy.new_file.file.folder_id, Some(1));
        let to_root: Value =
            serde_json::from_str(&body("122_file_copy_with_session_cookie_root_null.txt")).unwrap();
        let copy: CopyReply = serde_json::from_value(to_root).unwrap();
        assert_eq!(copy.new_file.file.folder_id, None, "folder 0 is no folder");
    }

    #[test]
    fn download_link_keeps_the_url_secret() {
        let link: DownloadLink = data("160_file_download_get_url.txt");
        assert_eq!(link.file_id, Some(7));
        assert!(link.download_url.expose().contains("download_token="));
        assert!(!format!("{link:?}").contains("download_token"));
    }

    #[test]
    fn url_upload_replies_are_read_with_and_without_a_finished_file() {
        let done: UrlUploadStatus = serde_json::from_str(
            r#"{"scheduled_item_id":51,"status":"complete","created":"2024-01-25 19:34:52",
            "started":"2024-01-25 20:24:53","finished":"2024-01-25 20:24:54","total_size":17262,
            "downloaded_file":{"file_id":11456,"name":"logo.png","size":17262,"url":"https://h/sZG"}}"#,
        )
        .unwrap();
        assert_eq!(done.downloaded_file.unwrap().file_id, 11456);
        assert_eq!(done.finished, Some(date("2024-01-25 20:24:54")));
        let pending: UrlUploadStatus = serde_json::from_str(
            r#"{"scheduled_item_id":"52","status":"pending","started":null,"downloaded_file":[]}"#,
        )
        .unwrap();
        assert_eq!(pending.downloaded_file, None);
        let added: UrlUploadScheduled =
            serde_json::from_str(r#"{"scheduled_item_id":52,"url":"https://x/y.png"}"#).unwrap();
        assert_eq!(added.scheduled_item_id, 52);
    }

    #[test]
    fn dates_convert_with_the_configured_server_offset() {
        let d = date("2024-01-01 02:00:00");
        assert_eq!(to_epoch(d, Some(0)), Some(1_704_074_400));
        assert_eq!(to_epoch(d, Some(7200)), Some(1_704_067_200));
        assert!(to_epoch(d, None).is_some());
        let bad: Folder =
            serde_json::from_str(r#"{"id":1,"date_added":"0000-00-00 00:00:00"}"#).unwrap();
        assert_eq!(bad.date_added, None);
    }
}
