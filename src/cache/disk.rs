//! The disk tier of the block cache: one file per block under `<dir>/blocks/<file id>/<index>`,
//! bounded in bytes and evicted by last use. The last use is the file's modification time, so
//! the order survives remounts. Each file starts with a header naming the block size it was cut
//! with and its length, so that a partial, corrupt or foreign file is recognised and removed.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use bytes::Bytes;
use lru::LruCache;

use super::error::CacheError;
use super::BlockKey;

const MAGIC: &[u8; 8] = b"YFSBLK01";
const HEADER_LEN: u64 = 24;
const TEMP_SUFFIX: &str = ".tmp";

/// Blocks on disk and the index of what is there.
pub(crate) struct DiskTier {
    root: PathBuf,
    block_size: u64,
    capacity: u64,
    index: Mutex<DiskIndex>,
}

struct DiskIndex {
    /// Size on disk (header included) of every complete block file, least recently used first.
    lru: LruCache<BlockKey, u64>,
    /// Bytes of the indexed files plus space reserved for writes in progress.
    bytes: u64,
    evictions: u64,
}

/// What the disk tier holds, for statistics.
pub(crate) struct DiskUsage {
    pub(crate) bytes: u64,
    pub(crate) entries: u64,
    pub(crate) evictions: u64,
}

impl DiskTier {
    /// Opens the tier in `dir`, rebuilding its index from the files found there. Files that are
    /// not complete blocks of this block size are removed; if more than `capacity` bytes are
    /// found, the least recently used blocks are removed until the rest fits.
    pub(crate) fn open(dir: &Path, block_size: u64, capacity: u64) -> Result<Self, CacheError> {
        let root = dir.join("blocks");
        fs::create_dir_all(&root).map_err(|e| CacheError::io(&root, e))?;
        let mut found = scan(&root, block_size)?;
        found.sort_by_key(|(_, _, used)| *used);
        let mut lru = LruCache::unbounded();
        let mut bytes = 0;
        for (key, size, _) in found {
            lru.push(key, size);
            bytes += size;
        }
        let tier = DiskTier {
            root,
            block_size,
            capacity,
            index: Mutex::new(DiskIndex {
                lru,
                bytes,
                evictions: 0,
            }),
        };
        let evicted = tier.lock().evict_until(0, capacity);
        tier.remove_files(&evicted);
        Ok(tier)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DiskIndex> {
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn path(&self, key: BlockKey) -> PathBuf {
        self.root.join(key.0.to_string()).join(key.1.to_string())
    }

    /// Whether the block is on disk, without changing its recency.
    pub(crate) fn contains(&self, key: &BlockKey) -> bool {
        self.lock().lru.contains(key)
    }

    /// The block, if it is on disk and intact; marks it as just used. A file found damaged or
    /// missing is dropped from the index.
    pub(crate) fn read(&self, key: BlockKey) -> Option<Bytes> {
        self.lock().lru.get(&key)?;
        let path = self.path(key);
        match read_block(&path, self.block_size) {
            Ok(Some(data)) => Some(data),
            Ok(None) => {
                log::warn!("cache: dropping damaged block file {}", path.display());
                self.forget(key);
                None
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    log::warn!("cache: cannot read {}: {e}", path.display());
                }
                self.forget(key);
                None
            }
        }
    }

    fn forget(&self, key: BlockKey) {
        let removed = {
            let mut index = self.lock();
            match index.lru.pop(&key) {
                Some(size) => {
                    index.bytes -= size;
                    true
                }
                None => false,
            }
        };
        if removed {
            self.remove_files(&[key]);
        }
    }

    /// Writes a block, evicting least recently used blocks first so that the bound holds at
    /// every moment, the file being written included. Runs on the writer thread only.
    pub(crate) fn write(&self, key: BlockKey, data: &Bytes) -> Result<(), CacheError> {
        let size = HEADER_LEN + data.len() as u64;
        if data.is_empty() || data.len() as u64 > self.block_size || size > self.capacity {
            return Ok(());
        }
        let evicted = {
            let mut index = self.lock();
            if index.lru.get(&key) == Some(&size) {
                return Ok(());
            }
            let evicted = index.evict_until(size, self.capacity);
            index.bytes += size;
            evicted
        };
        self.remove_files(&evicted);
        let path = self.path(key);
        match write_block(&path, self.block_size, data) {
            Ok(()) => {
                let mut index = self.lock();
                if let Some(old) = index.lru.put(key, size) {
                    index.bytes -= old;
                }
                Ok(())
            }
            Err(e) => {
                self.lock().bytes -= size;
                Err(CacheError::io(path, e))
            }
        }
    }

    fn remove_files(&self, keys: &[BlockKey]) {
        for key in keys {
            let path = self.path(*key);
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    log::warn!("cache: cannot remove {}: {e}", path.display());
                }
            }
            if let Some(parent) = path.parent() {
                // Succeeds only once the file's last block is gone.
                let _ = fs::remove_dir(parent);
            }
        }
    }

    /// What the tier holds now.
    pub(crate) fn usage(&self) -> DiskUsage {
        let index = self.lock();
        DiskUsage {
            bytes: index.bytes,
            entries: index.lru.len() as u64,
            evictions: index.evictions,
        }
    }
}

impl DiskIndex {
    /// Drops least recently used entries until `incoming` more bytes fit in `capacity`; returns
    /// the dropped keys, whose files the caller removes.
    fn evict_until(&mut self, incoming: u64, capacity: u64) -> Vec<BlockKey> {
        let mut evicted = Vec::new();
        while self.bytes + incoming > capacity {
            match self.lru.pop_lru() {
                Some((key, size)) => {
                    self.bytes -= size;
                    self.evictions += 1;
                    evicted.push(key);
                }
                None => break,
            }
        }
        evicted
    }
}

/// Every complete block file under `root` with its size and last use; removes everything else.
fn scan(root: &Path, block_size: u64) -> Result<Vec<(BlockKey, u64, SystemTime)>, CacheError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(root).map_err(|e| CacheError::io(root, e))? {
        let entry = entry.map_err(|e| CacheError::io(root, e))?;
        let path = entry.path();
        let file_id = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u64>().ok());
        match (file_id, entry.file_type()) {
            (Some(file_id), Ok(t)) if t.is_dir() => {
                scan_file_dir(&path, file_id, block_size, &mut found)?;
                // Succeeds only when nothing valid was left in it.
                let _ = fs::remove_dir(&path);
            }
            _ => remove_stray(&path),
        }
    }
    Ok(found)
}

fn scan_file_dir(
    dir: &Path,
    file_id: u64,
    block_size: u64,
    found: &mut Vec<(BlockKey, u64, SystemTime)>,
) -> Result<(), CacheError> {
    for entry in fs::read_dir(dir).map_err(|e| CacheError::io(dir, e))? {
        let entry = entry.map_err(|e| CacheError::io(dir, e))?;
        let path = entry.path();
        let index = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u64>().ok());
        let valid = match index {
            Some(index) => check_header(&path, block_size).map(|size| (index, size)),
            None => None,
        };
        match valid {
            Some((index, size)) => {
                let used = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                found.push(((file_id, index), size, used));
            }
            None => remove_stray(&path),
        }
    }
    Ok(())
}

fn remove_stray(path: &Path) {
    let result = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    if let Err(e) = result {
        log::warn!("cache: cannot remove stray {}: {e}", path.display());
    }
}

fn header(block_size: u64, len: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&block_size.to_le_bytes());
    h[16..].copy_from_slice(&len.to_le_bytes());
    h
}

/// The payload length a header announces, if the header is ours and fits `block_size`.
fn parse_header(h: &[u8], block_size: u64) -> Option<u64> {
    if h.len() < HEADER_LEN as usize || &h[..8] != MAGIC {
        return None;
    }
    let stored_block_size = u64::from_le_bytes(h[8..16].try_into().ok()?);
    let len = u64::from_le_bytes(h[16..24].try_into().ok()?);
    (stored_block_size == block_size && len > 0 && len <= block_size).then_some(len)
}

/// The file's size if it is a complete block of this block size.
fn check_header(path: &Path, block_size: u64) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    let mut h = [0u8; HEADER_LEN as usize];
    file.read_exact(&mut h).ok()?;
    let len = parse_header(&h, block_size)?;
    let size = file.metadata().ok()?.len();
    (size == HEADER_LEN + len).then_some(size)
}

/// Reads a block file and marks it used; `Ok(None)` if the file is not a complete block.
fn read_block(path: &Path, block_size: u64) -> io::Result<Option<Bytes>> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut raw = Vec::new();
    file.read_to_end(&mut raw)?;
    let Some(len) = parse_header(&raw, block_size) else {
        return Ok(None);
    };
    if raw.len() as u64 != HEADER_LEN + len {
        return Ok(None);
    }
    if let Err(e) = file.set_modified(SystemTime::now()) {
        log::debug!("cache: cannot mark {} as used: {e}", path.display());
    }
    Ok(Some(Bytes::from(raw).slice(HEADER_LEN as usize..)))
}

/// Writes a block through a temporary file renamed into place, so a crash never leaves a
/// partial file under a block's name.
fn write_block(path: &Path, block_size: u64, data: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(TEMP_SUFFIX);
    let temp = PathBuf::from(temp);
    let written = File::create(&temp).and_then(|mut file| {
        file.write_all(&header(block_size, data.len() as u64))?;
        file.write_all(data)
    });
    match written.and_then(|()| fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}
