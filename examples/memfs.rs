//! The FUSE ceiling of the machine: a trivial read-only filesystem that serves one file of a
//! given size straight from memory, mounted with the same kernel settings as yetifs (1 MiB
//! reads, async reads, the same kernel read-ahead). Whatever a read through it costs
//! is the cost of FUSE itself, so `scripts/bench` measures yetifs against it.
//!
//! `cargo run --release --example memfs -- MOUNTPOINT SIZE [NAME]` mounts, prints `mounted`
//! and serves until `umount MOUNTPOINT`.
use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyEntry, ReplyOpen, Request,
};
use yetifs::system::read_ahead;

/// Largest read the kernel is asked to send at once (as in yetifs).
const MAX_IO: u32 = 1024 * 1024;
/// Requests the kernel may have outstanding in the background (as in yetifs).
const MAX_BACKGROUND: u16 = 64;
/// Attributes never change, so the kernel may keep them for as long as it likes.
const TTL: Duration = Duration::from_secs(3600);
/// The inode of the one file.
const FILE_INO: INodeNo = INodeNo(2);

/// Why the example could not run.
#[derive(Debug, thiserror::Error)]
enum MemfsError {
    /// The command line was not `MOUNTPOINT SIZE [NAME]`.
    #[error("usage: memfs MOUNTPOINT SIZE [NAME]  (SIZE like 1GiB, NAME defaults to data.bin)")]
    Usage,
    /// SIZE was not a size.
    #[error("bad size {0:?}: {1}")]
    Size(String, parse_size::Error),
    /// The file does not fit in this process's address space.
    #[error("size {0} does not fit in memory")]
    TooLarge(u64),
    /// Mounting or serving failed.
    #[error("mount failed: {0}")]
    Mount(#[from] io::Error),
}

/// One file held in memory under the root directory.
struct MemFs {
    name: String,
    data: Vec<u8>,
    started: SystemTime,
}

impl MemFs {
    fn attr(&self, ino: INodeNo) -> Option<FileAttr> {
        let (kind, perm, nlink, size) = match ino {
            INodeNo::ROOT => (FileType::Directory, 0o755, 2, 0),
            FILE_INO => (FileType::RegularFile, 0o444, 1, self.data.len() as u64),
            _ => return None,
        };
        Some(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
            crtime: self.started,
            kind,
            perm,
            nlink,
            // SAFETY: getuid and getgid cannot fail.
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
            rdev: 0,
            blksize: MAX_IO,
            flags: 0,
        })
    }
}

impl Filesystem for MemFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // A kernel without async reads still works, only slower: the ceiling is what it allows.
        let _ = config.add_capabilities(InitFlags::FUSE_ASYNC_READ);
        if let Err(nearest) = config.set_max_readahead(MAX_IO) {
            let _ = config.set_max_readahead(nearest);
        }
        let _ = config.set_max_background(MAX_BACKGROUND);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.attr(FILE_INO) {
            Some(attr) if parent == INodeNo::ROOT && name == OsStr::new(&self.name) => {
                reply.entry(&TTL, &attr, Generation(0));
            }
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino == FILE_INO {
            reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE);
        } else {
            reply.error(Errno::EISDIR);
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let len = self.data.len();
        let start = usize::try_from(offset).map_or(len, |o| o.min(len));
        let end = start.saturating_add(size as usize).min(len);
        reply.data(&self.data[start..end]);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino != INodeNo::ROOT {
            reply.error(Errno::ENOTDIR);
            return;
        }
        let entries = [
            (INodeNo::ROOT, FileType::Directory, "."),
            (INodeNo::ROOT, FileType::Directory, ".."),
            (FILE_INO, FileType::RegularFile, self.name.as_str()),
        ];
        for (next, (ino, kind, name)) in (1u64..).zip(entries).skip(offset as usize) {
            if reply.add(ino, next, kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

/// A deterministic, not trivially compressible fill, so nothing downstream can shortcut it.
fn fill(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let take = (size - data.len()).min(8);
        data.extend_from_slice(&state.to_le_bytes()[..take]);
    }
    data
}

fn run() -> Result<(), MemfsError> {
    let mut args = std::env::args_os().skip(1);
    let mountpoint = PathBuf::from(args.next().ok_or(MemfsError::Usage)?);
    let size_arg = args
        .next()
        .ok_or(MemfsError::Usage)?
        .into_string()
        .map_err(|_| MemfsError::Usage)?;
    let name = match args.next() {
        Some(name) => name.into_string().map_err(|_| MemfsError::Usage)?,
        None => "data.bin".to_owned(),
    };
    if args.next().is_some() || name.is_empty() || name.contains('/') {
        return Err(MemfsError::Usage);
    }
    let size = parse_size::parse_size(&size_arg).map_err(|e| MemfsError::Size(size_arg, e))?;
    let len = usize::try_from(size).map_err(|_| MemfsError::TooLarge(size))?;
    let fs = MemFs {
        name,
        data: fill(len),
        started: SystemTime::now(),
    };
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("memfs".to_owned()),
        MountOption::RO,
        MountOption::NoAtime,
    ];
    let session = fuser::spawn_mount(fs, &mountpoint, &config)?;
    if let Err(e) = read_ahead::raise(&mountpoint, read_ahead::READ_AHEAD_KIB) {
        eprintln!("memfs: kernel read-ahead left at its default: {e}");
    }
    println!("mounted");
    io::stdout().flush()?;
    session.join()?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memfs: {e}");
            ExitCode::FAILURE
        }
    }
}
