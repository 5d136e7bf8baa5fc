//! What an account's host was found to lack, remembered in the account's cache directory: a
//! host answers an endpoint it does not offer as an unknown action, and asking again later (a
//! second `yetifs fetch`, a later mount) would only send a request to hear the same answer.
//! Removing the record makes the next command ask the server again.
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::sync::Mutex;

/// The record, in the account's cache directory, that the host lacks remote upload
/// (`file/url_upload_add`); it holds the server's answer.
pub const NO_URL_UPLOAD: &str = "no-url-upload";

/// Whether an account's host offers remote upload, as far as is known.
pub struct UrlUploadSupport {
    /// The record's path; `None` keeps the answer in memory only.
    record: Option<PathBuf>,
    /// The server's answer when it said it has no remote upload.
    lacking: Mutex<Option<String>>,
}

impl UrlUploadSupport {
    /// What `account_dir` (the account's cache directory; `None`: none) remembers.
    pub fn open(account_dir: Option<&Path>) -> UrlUploadSupport {
        let record = account_dir.map(|dir| dir.join(NO_URL_UPLOAD));
        let lacking = record.as_deref().and_then(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            Some(text.trim().to_owned())
        });
        UrlUploadSupport {
            record,
            lacking: Mutex::new(lacking),
        }
    }

    /// The server's answer, when the host is known to lack remote upload.
    pub fn lacking(&self) -> Option<String> {
        self.lacking.lock().clone()
    }

    /// Remembers that the host lacks remote upload, `answer` being what it said: in memory,
    /// and in the record (private to its owner) when there is one. The memory holds it even
    /// when the record cannot be written, which is the error returned.
    pub fn remember_lacking(&self, answer: &str) -> io::Result<()> {
        *self.lacking.lock() = Some(answer.to_owned());
        let Some(path) = &self.record else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let temporary = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        writeln!(file, "{}", answer.trim())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_found_lacking_remote_upload_is_remembered_across_opens_of_the_account() {
        let dir = tempfile::tempdir().unwrap();
        let account = dir.path().join("host-1");
        let support = UrlUploadSupport::open(Some(&account));
        assert_eq!(support.lacking(), None);
        support.remember_lacking("No method found\n").unwrap();
        assert_eq!(support.lacking().as_deref(), Some("No method found\n"));
        let again = UrlUploadSupport::open(Some(&account));
        assert_eq!(again.lacking().as_deref(), Some("No method found"));
        let other = UrlUploadSupport::open(Some(&dir.path().join("host-2")));
        assert_eq!(other.lacking(), None);
    }

    #[test]
    fn without_a_cache_directory_the_answer_is_kept_in_memory() {
        let support = UrlUploadSupport::open(None);
        support.remember_lacking("No method found").unwrap();
        assert_eq!(support.lacking().as_deref(), Some("No method found"));
    }
}
