//! The disk tier of the block cache: one file per block under `<dir>/blocks/<file id>/<index>`,
//! bounded in bytes and evicted by last use. The last use is the file's modification time, so
//! the order survives remounts. Each file starts with a header naming the block size it was cut
//! with and its length, so that a partial, corrupt or foreign file is recognised and removed.
//!
//! The header is padded to a page (`YFSBLK02`), so that the block lies page-aligned in its file
//! and a block in a page-aligned buffer (every block fetched from the server, see `buf`) is
//! written with direct I/O: the disk reads it from the buffer, where a buffered write would
//! have the kernel copy it into the page cache, allocate that cache and write it back later —
//! about a quarter of the CPU a cold sequential read cost. A tail shorter than a sector (the
//! last block of a file) is written through the page cache. Where the filesystem refuses direct
//! I/O, every write goes through the page cache. Files of the first format (`YFSBLK01`, a
//! 24-byte header) are still read.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use lru::LruCache;

use super::buf::{is_aligned, ALIGN};
use super::error::CacheError;
use super::BlockKey;
use crate::sync::Mutex;

/// The current format: the header padded to `HEADER_LEN`.
const MAGIC: &[u8; 8] = b"YFSBLK02";
/// The first format: the header's fields only.
const MAGIC_V1: &[u8; 8] = b"YFSBLK01";
/// Magic, block size and length.
const HEADER_FIELDS: usize = 24;
/// Where a block starts in its file (the current format).
const HEADER_LEN: u64 = ALIGN as u64;
const TEMP_SUFFIX: &str = ".tmp";

/// Blocks on disk and the index of what is there.
pub(crate) struct DiskTier {
    root: PathBuf,
    block_size: u64,
    capacity: u64,
    index: Mutex<DiskIndex>,
    /// Whether writes may still try direct I/O (false once the filesystem refused it).
    direct: AtomicBool,
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
            direct: AtomicBool::new(true),
        };
        let evicted = tier.index.lock().evict_until(0, capacity);
        tier.remove_files(&evicted);
        Ok(tier)
    }

    fn path(&self, key: BlockKey) -> PathBuf {
        self.root.join(key.0.to_string()).join(key.1.to_string())
    }

    /// Whether the block is on disk, without changing its recency.
    pub(crate) fn contains(&self, key: &BlockKey) -> bool {
        self.index.lock().lru.contains(key)
    }

    /// The block, if it is on disk and intact; marks it as just used. A file found damaged or
    /// missing is dropped from the index.
    pub(crate) fn read(&self, key: BlockKey) -> Option<Bytes> {
        self.index.lock().lru.get(&key)?;
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
            let mut index = self.index.lock();
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
    /// every moment, the file being written included. Runs on the writer threads only; `slot`
    /// is the writer's own, so that two writers of one block never share a temporary file.
    pub(crate) fn write(&self, key: BlockKey, data: &Bytes, slot: usize) -> Result<(), CacheError> {
        let size = HEADER_LEN + data.len() as u64;
        if data.is_empty() || data.len() as u64 > self.block_size || size > self.capacity {
            return Ok(());
        }
        let evicted = {
            let mut index = self.index.lock();
            if index.lru.get(&key) == Some(&size) {
                return Ok(());
            }
            let evicted = index.evict_until(size, self.capacity);
            index.bytes += size;
            evicted
        };
        self.remove_files(&evicted);
        let path = self.path(key);
        match write_block(&path, self.block_size, data, slot, &self.direct) {
            Ok(()) => {
                let mut index = self.index.lock();
                if let Some(old) = index.lru.put(key, size) {
                    index.bytes -= old;
                }
                Ok(())
            }
            Err(e) => {
                self.index.lock().bytes -= size;
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
        let index = self.index.lock();
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

/// The header of a block of `len` bytes, padded to a page and aligned for direct I/O.
#[repr(C, align(4096))]
struct HeaderPage([u8; HEADER_LEN as usize]);

fn header(block_size: u64, len: u64) -> HeaderPage {
    let mut h = HeaderPage([0u8; HEADER_LEN as usize]);
    h.0[..8].copy_from_slice(MAGIC);
    h.0[8..16].copy_from_slice(&block_size.to_le_bytes());
    h.0[16..HEADER_FIELDS].copy_from_slice(&len.to_le_bytes());
    h
}

/// Where the block starts and its length, as the header announces them, if the header is ours
/// (either format) and fits `block_size`.
fn parse_header(h: &[u8], block_size: u64) -> Option<(u64, u64)> {
    if h.len() < HEADER_FIELDS {
        return None;
    }
    let start = match &h[..8] {
        m if m == MAGIC => HEADER_LEN,
        m if m == MAGIC_V1 => HEADER_FIELDS as u64,
        _ => return None,
    };
    let stored_block_size = u64::from_le_bytes(h[8..16].try_into().ok()?);
    let len = u64::from_le_bytes(h[16..HEADER_FIELDS].try_into().ok()?);
    (stored_block_size == block_size && len > 0 && len <= block_size).then_some((start, len))
}

/// The file's size if it is a complete block of this block size.
fn check_header(path: &Path, block_size: u64) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    let mut h = [0u8; HEADER_FIELDS];
    file.read_exact(&mut h).ok()?;
    let (start, len) = parse_header(&h, block_size)?;
    let size = file.metadata().ok()?.len();
    (size == start + len).then_some(size)
}

/// Reads a block file and marks it used; `Ok(None)` if the file is not a complete block.
fn read_block(path: &Path, block_size: u64) -> io::Result<Option<Bytes>> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let size = file.metadata()?.len();
    let mut raw = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    file.read_to_end(&mut raw)?;
    let Some((start, len)) = parse_header(&raw, block_size) else {
        return Ok(None);
    };
    if raw.len() as u64 != start + len {
        return Ok(None);
    }
    if let Err(e) = file.set_modified(SystemTime::now()) {
        log::debug!("cache: cannot mark {} as used: {e}", path.display());
    }
    Ok(Some(Bytes::from(raw).slice(start as usize..)))
}

/// Writes a block through a temporary file (of writer `slot`) renamed into place, so a crash
/// never leaves a partial file under a block's name. Direct I/O while `direct` holds and the
/// block is aligned.
fn write_block(
    path: &Path,
    block_size: u64,
    data: &[u8],
    slot: usize,
    direct: &AtomicBool,
) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!("{TEMP_SUFFIX}{slot}"));
    let temp = PathBuf::from(temp);
    let head = header(block_size, data.len() as u64);
    let written = if direct.load(Ordering::Relaxed) && is_aligned(data) {
        match write_direct(&temp, &head, data) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                log::info!("cache: the disk refused direct I/O ({e}); writing blocks through the page cache");
                direct.store(false, Ordering::Relaxed);
                write_buffered(&temp, &head, data)
            }
            other => other,
        }
    } else {
        write_buffered(&temp, &head, data)
    };
    match written.and_then(|()| fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Writes the file through the page cache.
fn write_buffered(temp: &Path, head: &HeaderPage, data: &[u8]) -> io::Result<()> {
    let mut file = File::create(temp)?;
    file.write_all(&head.0)?;
    file.write_all(data)
}

/// Writes the header and the whole sectors of an aligned block with direct I/O, and the
/// remaining tail, if any, through the page cache (direct I/O moves whole sectors only).
fn write_direct(temp: &Path, head: &HeaderPage, data: &[u8]) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(temp)?;
    let (sectors, tail) = data.split_at(data.len() / ALIGN * ALIGN);
    file.write_all_at(&head.0, 0)?;
    if !sectors.is_empty() {
        file.write_all_at(sectors, HEADER_LEN)?;
    }
    if !tail.is_empty() {
        let file = OpenOptions::new().write(true).open(temp)?;
        file.write_all_at(tail, HEADER_LEN + sectors.len() as u64)?;
    }
    Ok(())
}
