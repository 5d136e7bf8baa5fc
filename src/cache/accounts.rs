//! Which account an API URL and key pair log into, remembered in the cache directory: the
//! account's cache lives in a directory named after it, and a mount started while the server
//! is unreachable cannot ask. The keys are not stored, only a hash naming the record.
use std::io;
use std::path::{Path, PathBuf};

/// The directory of the cache directory that holds the records.
pub const DIR_NAME: &str = "accounts";

/// FNV-1a over the URL and the keys: stable across releases and platforms, unlike std's
/// hasher, so that a record written by one build is found by the next.
fn record_name(api_url: &str, key1: &str, key2: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [api_url, key1, key2] {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

fn record_path(cache_dir: &Path, api_url: &str, key1: &str, key2: &str) -> PathBuf {
    cache_dir
        .join(DIR_NAME)
        .join(record_name(api_url, key1, key2))
}

/// Remembers that `api_url` with these keys logs into `account`.
pub fn remember(
    cache_dir: &Path,
    api_url: &str,
    key1: &str,
    key2: &str,
    account: u64,
) -> io::Result<()> {
    let path = record_path(cache_dir, api_url, key1, key2);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{account}\n"))?;
    std::fs::rename(&tmp, &path)
}

/// The account `api_url` with these keys logged into last time, if remembered.
pub fn recall(cache_dir: &Path, api_url: &str, key1: &str, key2: &str) -> Option<u64> {
    let text = std::fs::read_to_string(record_path(cache_dir, api_url, key1, key2)).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_recalled_for_the_same_url_and_keys_only() {
        let dir = tempfile::tempdir().unwrap();
        remember(dir.path(), "http://h/api/v2/", "k1", "k2", 42).unwrap();
        assert_eq!(recall(dir.path(), "http://h/api/v2/", "k1", "k2"), Some(42));
        assert_eq!(recall(dir.path(), "http://h/api/v2/", "k1", "k3"), None);
        assert_eq!(recall(dir.path(), "http://g/api/v2/", "k1", "k2"), None);
        remember(dir.path(), "http://h/api/v2/", "k1", "k2", 43).unwrap();
        assert_eq!(recall(dir.path(), "http://h/api/v2/", "k1", "k2"), Some(43));
    }

    #[test]
    fn record_names_are_stable_and_keep_the_parts_apart() {
        assert_eq!(record_name("a", "b", "c"), record_name("a", "b", "c"));
        assert_ne!(record_name("ab", "", "c"), record_name("a", "b", "c"));
        assert_eq!(record_name("", "", "").len(), 16);
    }

    #[test]
    fn the_record_holds_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = "s".repeat(64);
        remember(dir.path(), "http://h/api/v2/", &key, &key, 1).unwrap();
        let path = record_path(dir.path(), "http://h/api/v2/", &key, &key);
        let text = std::fs::read_to_string(path).unwrap();
        assert!(!text.contains(&key));
    }
}
