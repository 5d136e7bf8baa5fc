//! Per-file metadata the server gives only through an extra call (`file/info`), kept so that
//! each file id costs that call once. A file's content and upload time never change under its
//! id, so what is kept is never stale. The store is a trait so that a persistent one (kept
//! across mounts) can replace the in-memory one without touching the core.
use std::collections::HashMap;
use std::sync::Mutex;

/// What is kept about one file id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileMeta {
    /// Upload time, seconds since the epoch; `None` when the server has none.
    pub uploaded: Option<i64>,
}

/// Where file metadata is kept.
pub trait MetaStore: Send + Sync + 'static {
    /// What is known about file `id`, if anything.
    fn get(&self, id: u64) -> Option<FileMeta>;
    /// Records what is known about file `id`.
    fn put(&self, id: u64, meta: FileMeta);
}

/// A `MetaStore` that lives as long as the mount.
#[derive(Debug, Default)]
pub struct MemoryMeta {
    files: Mutex<HashMap<u64, FileMeta>>,
}

impl MemoryMeta {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl MetaStore for MemoryMeta {
    fn get(&self, id: u64) -> Option<FileMeta> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files.get(&id).copied()
    }

    fn put(&self, id: u64, meta: FileMeta) {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files.insert(id, meta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_put_is_got_back_per_file_id() {
        let store = MemoryMeta::new();
        assert_eq!(store.get(1), None);
        store.put(1, FileMeta { uploaded: Some(10) });
        store.put(2, FileMeta { uploaded: None });
        assert_eq!(store.get(1), Some(FileMeta { uploaded: Some(10) }));
        assert_eq!(store.get(2), Some(FileMeta { uploaded: None }));
    }
}
