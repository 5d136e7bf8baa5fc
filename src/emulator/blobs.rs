//! File contents on disk: streamed into a temp file while a digest is computed, then renamed
//! into place, so a crash never leaves a half-written blob under a name a row points to.
use std::hash::Hasher;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes gathered before a write to disk, and read at a time when comparing: every disk
/// operation is a hop to the blocking pool, so few and large.
const CHUNK: usize = 1024 * 1024;

/// Runs blocking file work on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

/// The blob directory of a data dir.
pub struct Blobs {
    root: PathBuf,
    tmp: PathBuf,
}

/// A blob being written.
pub struct BlobWriter {
    /// `None` only while a write is under way on the blocking pool (or after it failed).
    file: Option<std::fs::File>,
    pending: Vec<u8>,
    path: PathBuf,
    size: u64,
    h1: std::hash::DefaultHasher,
    h2: std::hash::DefaultHasher,
    handed_over: bool,
}

/// A completely written temp blob, not yet in place.
pub struct TempBlob {
    /// Where it is.
    pub path: PathBuf,
    /// Its length.
    pub size: u64,
    /// A 128-bit digest of its content (for deduplication, confirmed byte by byte).
    pub digest: String,
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        // Once committed the path no longer exists; otherwise the temp file is garbage.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Blobs {
    /// Opens the blob store under `data`, creating its directories.
    pub fn open(data: &Path) -> io::Result<Blobs> {
        let root = data.join("blobs");
        let tmp = data.join("tmp");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(Blobs { root, tmp })
    }

    /// Starts a new temp blob.
    pub async fn writer(&self) -> io::Result<BlobWriter> {
        let path = self.tmp.join(random_name());
        let file = blocking({
            let path = path.clone();
            move || std::fs::File::create(path)
        })
        .await?;
        let mut h2 = std::hash::DefaultHasher::new();
        h2.write(b"yetifs-second-lane");
        Ok(BlobWriter {
            file: Some(file),
            pending: Vec::with_capacity(CHUNK),
            path,
            size: 0,
            h1: std::hash::DefaultHasher::new(),
            h2,
            handed_over: false,
        })
    }

    /// The path of a committed blob.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Moves a temp blob into place and returns its name.
    pub async fn commit(&self, temp: &TempBlob) -> io::Result<String> {
        let name = random_name();
        tokio::fs::rename(&temp.path, self.path(&name)).await?;
        Ok(name)
    }

    /// Whether a committed blob holds exactly the temp blob's bytes.
    pub async fn same_content(&self, name: &str, temp: &TempBlob) -> io::Result<bool> {
        let (a, b, size) = (self.path(name), temp.path.clone(), temp.size);
        blocking(move || {
            let mut a = std::fs::File::open(a)?;
            let mut b = std::fs::File::open(b)?;
            if a.metadata()?.len() != size {
                return Ok(false);
            }
            let mut ba = vec![0u8; CHUNK];
            let mut bb = vec![0u8; CHUNK];
            loop {
                let n = a.read(&mut ba)?;
                if n == 0 {
                    return Ok(true);
                }
                b.read_exact(&mut bb[..n])?;
                if ba[..n] != bb[..n] {
                    return Ok(false);
                }
            }
        })
        .await
    }
}

impl BlobWriter {
    /// Appends bytes.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.h1.write(chunk);
        self.h2.write(chunk);
        self.size += chunk.len() as u64;
        self.pending.extend_from_slice(chunk);
        if self.pending.len() >= CHUNK {
            self.write_pending().await?;
        }
        Ok(())
    }

    /// Writes the gathered bytes to the file.
    async fn write_pending(&mut self) -> io::Result<()> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "an earlier write failed"))?;
        let mut pending = std::mem::take(&mut self.pending);
        let (file, mut pending) = blocking(move || {
            file.write_all(&pending)?;
            pending.clear();
            Ok((file, pending))
        })
        .await?;
        pending.reserve(CHUNK);
        self.file = Some(file);
        self.pending = pending;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes to disk and returns the temp blob.
    pub async fn finish(mut self) -> io::Result<TempBlob> {
        self.write_pending().await?;
        if let Some(file) = self.file.take() {
            blocking(move || file.sync_all()).await?;
        }
        self.handed_over = true;
        Ok(TempBlob {
            path: self.path.clone(),
            size: self.size,
            digest: format!("{:016x}{:016x}", self.h1.finish(), self.h2.finish()),
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // An abandoned writer (failed upload) leaves nothing behind; a finished one has
        // handed its path to a TempBlob, which owns the cleanup from then on.
        if !self.handed_over {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// 32 random hex characters.
pub fn random_name() -> String {
    random_hex(32)
}

/// `n` random lower-case hex characters.
pub fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}
