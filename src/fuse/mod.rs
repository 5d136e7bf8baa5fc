//! The kernel side: `impl fuser::Filesystem` over the core. Each request that may reach the
//! network is decoded on the FUSE thread, handed to the core as a task on the tokio runtime, and
//! answered from that task, so the FUSE thread never waits on the network and slow requests do
//! not hold up fast ones. Requests the core answers from memory (extended attributes, `access`,
//! `opendir`) are answered on the FUSE thread: a hop to the runtime would cost more than the
//! answer, and `ls -l` asks for two extended attributes of every file.
use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fuser::{
    AccessFlags, BackgroundSession, BsdFileFlags, Config, CopyFileRangeFlags, Errno, FileAttr,
    FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags, IoctlFlags,
    KernelConfig, LockOwner, MountOption, OpenFlags, PollEvents, PollFlags, PollNotifier,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyIoctl, ReplyLseek, ReplyOpen, ReplyPoll, ReplyStatfs, ReplyWrite, ReplyXattr,
    Request, SessionACL, TimeOrNow, WriteFlags,
};
use std::time::SystemTime;
use tokio::runtime::Handle;

use crate::fs::namespace::names;
use crate::fs::{Attr, Core, FsError, Kind, Opened, SetAttr};
use crate::remote::Remote;
use crate::system::read_ahead;

/// Largest read and write the kernel is asked to send at once.
const MAX_IO: u32 = 1024 * 1024;
/// Requests the kernel may have outstanding in the background (read-ahead, async reads).
const MAX_BACKGROUND: u16 = 64;
/// Threads reading requests from the kernel. They only decode and spawn tasks, so a few keep
/// the queue drained while replies come from the tokio runtime.
const FUSE_THREADS: usize = 2;
/// Inode numbers are never reused while mounted, so every inode has generation 0.
const GENERATION: Generation = Generation(0);

/// How the filesystem is presented to the kernel (the owner and the directory TTL are the
/// core's options).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountOptions {
    /// Mount read-only.
    pub read_only: bool,
    /// Let users other than the mounting one use the mount.
    pub allow_other: bool,
    /// Let the kernel check permission bits.
    pub default_permissions: bool,
    /// The source name `mount` and `df` show.
    pub fsname: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            read_only: false,
            allow_other: false,
            default_permissions: true,
            fsname: "yetifs".to_owned(),
        }
    }
}

/// Why mounting failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// `mount` was called outside a tokio runtime, which the requests need to run on.
    #[error("mount must be called from within a tokio runtime")]
    NoRuntime,
    /// The kernel refused the mount, or the session could not start.
    #[error("mount failed: {0}")]
    Io(#[from] io::Error),
}

/// A mounted filesystem served in the background; unmounted on `unmount()` or on drop.
#[derive(Debug)]
pub struct MountHandle {
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
    traffic: Arc<Traffic>,
    errors: Arc<Errors>,
}

/// Bytes read and written through the mount (what the kernel asked and got), for
/// `yetifs status`.
#[derive(Debug, Default)]
pub struct Traffic {
    read: AtomicU64,
    written: AtomicU64,
}

impl Traffic {
    /// Bytes returned to `read` requests.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Bytes accepted by `write` requests.
    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

/// How long `unmount` waits for releases the kernel has yet to deliver.
const UNMOUNT_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// `umount2(2)` on `path`.
fn umount2(path: &Path, flags: i32) -> io::Result<()> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::umount2(path.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl MountHandle {
    /// The mount's read and write counters.
    pub fn traffic(&self) -> Arc<Traffic> {
        Arc::clone(&self.traffic)
    }

    /// The mount's count of failed requests.
    pub fn errors(&self) -> Arc<Errors> {
        Arc::clone(&self.errors)
    }

    /// Whether the session has ended: the filesystem was unmounted from outside (`umount`).
    pub fn is_finished(&self) -> bool {
        self.session
            .as_ref()
            .is_none_or(|session| session.guard.is_finished())
    }

    /// Unmounts and waits for the session to end. Fails with `EBUSY` while files on the mount
    /// are open; the mount then stays up, and may be unmounted again later. The kernel sends a
    /// file's RELEASE after `close(2)` has returned, so a mount whose files were just closed is
    /// busy for a moment: that is waited out, up to `UNMOUNT_GRACE`.
    pub fn unmount(&mut self) -> Result<(), MountError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        if session.guard.is_finished() {
            // Unmounted from outside (`umount`): nothing is left to unmount.
            return Ok(session.join()?);
        }
        let deadline = std::time::Instant::now() + UNMOUNT_GRACE;
        let mut result = umount2(&self.mountpoint, 0);
        while matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EBUSY))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
            result = umount2(&self.mountpoint, 0);
        }
        match result {
            Ok(()) => Ok(session.join()?),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                self.session = Some(session);
                Err(e.into())
            }
            // Not permitted for an ordinary user, or already unmounted with `umount`: the
            // session's own unmount knows both cases.
            Err(_) => Ok(session.umount_and_join()?),
        }
    }
}

impl Drop for MountHandle {
    /// Unmounts; a busy mount is detached instead (it goes once its last file is closed) and
    /// the session thread is left to end by itself then.
    fn drop(&mut self) {
        match self.unmount() {
            Ok(()) => {}
            Err(MountError::Io(e)) if e.raw_os_error() == Some(libc::EBUSY) => {
                if let Err(e) = umount2(&self.mountpoint, libc::MNT_DETACH) {
                    log::warn!("detaching {} failed: {e}", self.mountpoint.display());
                }
            }
            Err(e) => log::warn!("unmounting {} failed: {e}", self.mountpoint.display()),
        }
    }
}

/// Mounts `core` at `mountpoint`. Must be called within a tokio runtime: requests run on it.
pub fn mount<R: Remote>(
    core: Arc<Core<R>>,
    mountpoint: &Path,
    options: &MountOptions,
) -> Result<MountHandle, MountError> {
    let runtime = Handle::try_current().map_err(|_| MountError::NoRuntime)?;
    let ttl = core.options().dir_ttl;
    let traffic = Arc::new(Traffic::default());
    let errors = Arc::new(Errors::default());
    let adapter = Adapter {
        shared: Arc::new(Shared {
            core,
            errors: Arc::clone(&errors),
        }),
        runtime,
        ttl,
        traffic: Arc::clone(&traffic),
    };
    let mut config = Config::default();
    config.n_threads = Some(FUSE_THREADS);
    config.clone_fd = true;
    config.mount_options = vec![
        MountOption::FSName(options.fsname.clone()),
        MountOption::Subtype("yetifs".to_owned()),
        MountOption::NoAtime,
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    if options.read_only {
        config.mount_options.push(MountOption::RO);
    }
    if options.default_permissions {
        config.mount_options.push(MountOption::DefaultPermissions);
    }
    if options.allow_other {
        config.acl = SessionACL::All;
    }
    let session = fuser::spawn_mount(adapter, mountpoint, &config)?;
    if let Err(e) = read_ahead::raise(mountpoint, read_ahead::READ_AHEAD_KIB) {
        log::debug!("kernel read-ahead left at its default: {e}");
    }
    Ok(MountHandle {
        session: Some(session),
        mountpoint: mountpoint
            .canonicalize()
            .unwrap_or_else(|_| mountpoint.to_path_buf()),
        traffic,
        errors,
    })
}

/// Requests that failed, by operation and errno, for `yetifs status`. A small map behind a
/// mutex, touched only when a request fails.
#[derive(Debug, Default)]
pub struct Errors {
    counts: Mutex<HashMap<(&'static str, i32), u64>>,
}

impl Errors {
    fn count(&self, op: &'static str, errno: i32) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry((op, errno)).or_default() += 1;
    }

    /// The failures so far, by operation, then by errno name (`lookup` → `ENOENT` → 12).
    pub fn counts(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (&(op, errno), &n) in counts.iter() {
            out.entry(op.to_owned())
                .or_default()
                .insert(errno_name(errno), n);
        }
        out
    }
}

/// The symbolic name of `errno` (`ENOENT`), for logs and `yetifs status`.
fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENODATA => "ENODATA",
        libc::EILSEQ => "EILSEQ",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EDQUOT => "EDQUOT",
        _ => return format!("errno {errno}"),
    };
    name.to_owned()
}

/// What a failed request was about, for its log line.
#[derive(Clone, Copy, Debug)]
enum At<'a> {
    /// An inode: the request's own, or the one its handle is open on.
    Ino(u64),
    /// Entry `name` of directory `parent`.
    Entry(u64, &'a str),
    /// A rename: entry `name` of `parent` to entry `newname` of `newparent`.
    Rename(u64, &'a str, u64, &'a str),
}

/// What the task of every request shares: the core, and the count of failures.
struct Shared<R: Remote> {
    core: Arc<Core<R>>,
    errors: Arc<Errors>,
}

impl<R: Remote> Shared<R> {
    /// Counts and logs failed request `op` about `at`, at the level `error` calls for
    /// (`FsError::log_level`: warn for trouble with the server, the network or the disk, debug
    /// for an answer to what was asked); the errno to answer with. Every failed request goes
    /// through here (or `refused`), so each is logged once.
    fn failed(&self, op: &'static str, at: At<'_>, error: &FsError) -> Errno {
        self.record(op, at, error.errno(), error.log_level(), error)
    }

    /// Like `failed`, for what the adapter refuses itself: names it cannot take, requests a
    /// filesystem of remote files has nothing for. An answer, logged at debug.
    fn refused(&self, op: &'static str, at: At<'_>, errno: Errno, why: &str) -> Errno {
        self.record(op, at, errno.code(), log::Level::Debug, &why)
    }

    /// Where `failed` and `refused` meet: the one place a failure is counted and logged.
    fn record(
        &self,
        op: &'static str,
        at: At<'_>,
        errno: i32,
        level: log::Level,
        why: &dyn std::fmt::Display,
    ) -> Errno {
        self.errors.count(op, errno);
        if log::log_enabled!(level) {
            let at = self.describe(at);
            log::log!(level, "{op} {at}: {why} ({})", errno_name(errno));
        }
        Errno::from_i32(errno)
    }

    /// `at` as a path in the mount where the inodes are known, else by inode number.
    fn describe(&self, at: At<'_>) -> String {
        let path = |ino: u64| match self.core.path_of(ino) {
            Some(path) => format!("/{path}"),
            None => format!("inode {ino}"),
        };
        let entry = |parent: u64, name: &str| match self.core.path_of(parent) {
            Some(dir) if dir.is_empty() => format!("/{name}"),
            Some(dir) => format!("/{dir}/{name}"),
            None => format!("{name} in inode {parent}"),
        };
        match at {
            At::Ino(ino) => path(ino),
            At::Entry(parent, name) => entry(parent, name),
            At::Rename(parent, name, newparent, newname) => {
                format!("{} to {}", entry(parent, name), entry(newparent, newname))
            }
        }
    }

    /// Answers an operation that returns nothing but its outcome.
    fn reply_empty(
        &self,
        reply: ReplyEmpty,
        op: &'static str,
        at: At<'_>,
        result: Result<(), FsError>,
    ) {
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.failed(op, at, &e)),
        }
    }

    /// Answers an xattr request: the size when asked with size 0, `ERANGE` when the buffer is
    /// too small (the caller asks again with a larger one), else the bytes.
    fn reply_xattr(&self, reply: ReplyXattr, op: &'static str, ino: u64, size: u32, data: &[u8]) {
        match u32::try_from(data.len()) {
            Ok(len) if size == 0 => reply.size(len),
            Ok(len) if len <= size => reply.data(data),
            _ => reply.error(self.refused(op, At::Ino(ino), Errno::ERANGE, "buffer too small")),
        }
    }
}

struct Adapter<R: Remote> {
    shared: Arc<Shared<R>>,
    runtime: Handle,
    ttl: Duration,
    traffic: Arc<Traffic>,
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
    }
}

fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(attr.ino),
        size: attr.size,
        blocks: attr.blocks,
        atime: attr.atime,
        mtime: attr.mtime,
        ctime: attr.ctime,
        crtime: attr.mtime,
        kind: file_type(attr.kind),
        perm: attr.perm,
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        rdev: 0,
        blksize: attr.blksize,
        flags: 0,
    }
}

/// How long the kernel may keep `attr`: not at all when provisional (its times stand in for an
/// upload date not known yet), so that the next `stat` asks for it.
fn attr_ttl(attr: &Attr, ttl: Duration) -> Duration {
    if attr.provisional {
        Duration::ZERO
    } else {
        ttl
    }
}

/// The open flags the kernel gets for a handle.
fn fopen_flags(opened: &Opened) -> FopenFlags {
    if opened.keep_cache {
        FopenFlags::FOPEN_KEEP_CACHE
    } else {
        FopenFlags::empty()
    }
}

/// A time `setattr` asks for, `now` resolved.
fn time_of(time: Option<TimeOrNow>) -> Option<SystemTime> {
    time.map(|t| match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    })
}

/// A file name from the kernel, which passes names of up to 1,024 bytes: `ENAMETOOLONG` past
/// `NAME_MAX`, else the name as UTF-8, or `not_utf8` for a name that is not (no entry has one,
/// and none can be stored on the server).
fn name_arg(name: &OsStr, not_utf8: Errno) -> Result<String, (Errno, &'static str)> {
    if name.len() > names::NAME_MAX {
        return Err((Errno::ENAMETOOLONG, "name longer than 255 bytes"));
    }
    name.to_str()
        .map(str::to_owned)
        .ok_or((not_utf8, "name not in UTF-8"))
}

impl<R: Remote> Adapter<R> {
    /// Runs `work` on the runtime with a handle on what requests share.
    fn spawn<F, Fut>(&self, work: F)
    where
        F: FnOnce(Arc<Shared<R>>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(work(Arc::clone(&self.shared)));
    }

    /// File name `name` of a request `op` in directory `parent` (see `name_arg`); a name it
    /// refuses is counted and logged as the request's failure.
    fn name(
        &self,
        op: &'static str,
        parent: INodeNo,
        name: &OsStr,
        not_utf8: Errno,
    ) -> Result<String, Errno> {
        name_arg(name, not_utf8).map_err(|(errno, why)| {
            let shown = name.to_string_lossy();
            self.shared
                .refused(op, At::Entry(parent.0, &shown), errno, why)
        })
    }
}

impl<R: Remote> Filesystem for Adapter<R> {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        for flag in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_ASYNC_READ,
        ] {
            if config.add_capabilities(flag).is_err() {
                log::info!("kernel lacks {flag:?}");
            }
        }
        if let Err(nearest) = config.set_max_readahead(MAX_IO) {
            // Only fails when the kernel allows less; take what it allows.
            let _ = config.set_max_readahead(nearest);
        }
        if let Err(nearest) = config.set_max_write(MAX_IO) {
            let _ = config.set_max_write(nearest);
        }
        let _ = config.set_max_background(MAX_BACKGROUND);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = match self.name("lookup", parent, name, Errno::ENOENT) {
            Ok(name) => name,
            Err(e) => return reply.error(e),
        };
        let ttl = self.ttl;
        self.spawn(move |s| async move {
            match s.core.lookup(parent.0, &name).await {
                Ok(attr) => reply.entry_with_ttls(
                    &attr_ttl(&attr, ttl),
                    &ttl,
                    &file_attr(&attr),
                    GENERATION,
                ),
                Err(e) => reply.error(s.failed("lookup", At::Entry(parent.0, &name), &e)),
            }
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.shared.core.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let ttl = self.ttl;
        self.spawn(move |s| async move {
            match s.core.getattr(ino.0).await {
                Ok(attr) => reply.attr(&ttl, &file_attr(&attr)),
                Err(e) => reply.error(s.failed("getattr", At::Ino(ino.0), &e)),
            }
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.spawn(move |s| async move {
            match s.core.open(ino.0, flags.0).await {
                Ok(opened) => reply.opened(FileHandle(opened.fh), fopen_flags(&opened)),
                Err(e) => reply.error(s.failed("open", At::Ino(ino.0), &e)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let traffic = Arc::clone(&self.traffic);
        self.spawn(move |s| async move {
            match s.core.read(fh.0, offset, size).await {
                Ok(data) => {
                    traffic.read.fetch_add(data.len() as u64, Ordering::Relaxed);
                    reply.data(&data);
                }
                Err(e) => reply.error(s.failed("read", At::Ino(ino.0), &e)),
            }
        });
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn(move |s| async move {
            let released = s.core.release(fh.0).await;
            s.reply_empty(reply, "release", At::Ino(ino.0), released);
        });
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = data.to_vec();
        let traffic = Arc::clone(&self.traffic);
        self.spawn(move |s| async move {
            match s.core.write(fh.0, offset, &data).await {
                Ok(written) => {
                    traffic
                        .written
                        .fetch_add(u64::from(written), Ordering::Relaxed);
                    reply.written(written);
                }
                Err(e) => reply.error(s.failed("write", At::Ino(ino.0), &e)),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.spawn(move |s| async move {
            let flushed = s.core.flush(fh.0).await;
            s.reply_empty(reply, "flush", At::Ino(ino.0), flushed);
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn(move |s| async move {
            let synced = s.core.fsync(fh.0).await;
            s.reply_empty(reply, "fsync", At::Ino(ino.0), synced);
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let changes = SetAttr {
            size,
            mode,
            uid,
            gid,
            atime: time_of(atime),
            mtime: time_of(mtime),
            fh: fh.map(|fh| fh.0),
        };
        let ttl = self.ttl;
        self.spawn(move |s| async move {
            match s.core.setattr(ino.0, changes).await {
                Ok(attr) => reply.attr(&ttl, &file_attr(&attr)),
                Err(e) => reply.error(s.failed("setattr", At::Ino(ino.0), &e)),
            }
        });
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let name = match self.name("create", parent, name, Errno::EILSEQ) {
            Ok(name) => name,
            Err(e) => return reply.error(e),
        };
        let ttl = self.ttl;
        self.spawn(move |s| async move {
            match s.core.create(parent.0, &name, mode, flags).await {
                Ok((attr, opened)) => reply.created(
                    &ttl,
                    &file_attr(&attr),
                    GENERATION,
                    FileHandle(opened.fh),
                    fopen_flags(&opened),
                ),
                Err(e) => reply.error(s.failed("create", At::Entry(parent.0, &name), &e)),
            }
        });
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let name = match self.name("mknod", parent, name, Errno::EILSEQ) {
            Ok(name) => name,
            Err(e) => return reply.error(e),
        };
        let ttl = self.ttl;
        self.spawn(move |s| async move {
            match s.core.mknod(parent.0, &name, mode).await {
                Ok(attr) => reply.entry(&ttl, &file_attr(&attr), GENERATION),
                Err(e) => reply.error(s.failed("mknod", At::Entry(parent.0, &name), &e)),
            }
        });
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let name = match self.name("symlink", parent, link_name, Errno::EILSEQ) {
            Ok(name) => name,
            Err(e) => return reply.error(e),
        };
        let target = target.as_os_str().as_bytes().to_vec();
        let ttl = self.ttl;
        self.spawn(move |s| async move {
            match s.core.symlink(parent.0, &name, &target).await {
                Ok(attr) => reply.entry(&ttl, &file_attr(&attr), GENERATION),
                Err(e) => reply.error(s.failed("symlink", At::Entry(parent.0, &name), &e)),
            }
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.spawn(move |s| async move {
            match s.core.readlink(ino.0).await {
                Ok(target) => reply.data(&target),
                Err(e) => reply.error(s.failed("readlink", At::Ino(ino.0), &e)),
            }
        });
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let name = newname.to_string_lossy();
        let at = At::Entry(newparent.0, &name);
        reply.error(self.shared.failed("link", at, &FsError::NotPermitted));
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let name = match self.name("mkdir", parent, name, Errno::EILSEQ) {
            Ok(name) => name,
            Err(e) => return reply.error(e),
        };
        let ttl = self.ttl;
        self.spawn(move |s| async move {
            match s.core.mkdir(parent.0, &name, mode).await {
                Ok(attr) => reply.entry(&ttl, &file_attr(&attr), GENERATION),
                Err(e) => reply.error(s.failed("mkdir", At::Entry(parent.0, &name), &e)),
            }
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match self.name("unlink", parent, name, Errno::ENOENT) {
            Ok(name) => name,
            Err(e) => return reply.error(e),
        };
        self.spawn(move |s| async move {
            let removed = s.core.unlink(parent.0, &name).await;
            s.reply_empty(reply, "unlink", At::Entry(parent.0, &name), removed);
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match self.name("rmdir", parent, name, Errno::ENOENT) {
            Ok(name) => name,
            Err(e) => return reply.error(e),
        };
        self.spawn(move |s| async move {
            let removed = s.core.rmdir(parent.0, &name).await;
            s.reply_empty(reply, "rmdir", At::Entry(parent.0, &name), removed);
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let names = self
            .name("rename", parent, name, Errno::ENOENT)
            .and_then(|name| {
                Ok((
                    name,
                    self.name("rename", newparent, newname, Errno::EILSEQ)?,
                ))
            });
        let (name, newname) = match names {
            Ok(names) => names,
            Err(e) => return reply.error(e),
        };
        self.spawn(move |s| async move {
            let renamed = s
                .core
                .rename(parent.0, &name, newparent.0, &newname, flags.bits())
                .await;
            let at = At::Rename(parent.0, &name, newparent.0, &newname);
            s.reply_empty(reply, "rename", at, renamed);
        });
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.spawn(move |s| async move {
            let allocated = s.core.fallocate(fh.0, offset, length, mode).await;
            s.reply_empty(reply, "fallocate", At::Ino(ino.0), allocated);
        });
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        self.spawn(move |s| async move {
            let copied = s
                .core
                .copy_file_range(fh_in.0, offset_in, fh_out.0, offset_out, len)
                .await;
            match copied.and_then(|n| u32::try_from(n).map_err(|_| FsError::Unsupported)) {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(s.failed("copy_file_range", At::Ino(ino_out.0), &e)),
            }
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.shared.core.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(self.shared.failed("opendir", At::Ino(ino.0), &e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.spawn(move |s| async move {
            match s.core.readdir(ino.0, fh.0, offset).await {
                Ok(entries) => {
                    for e in entries {
                        if reply.add(INodeNo(e.ino), e.next_offset, file_type(e.kind), &e.name) {
                            break;
                        }
                    }
                    reply.ok();
                }
                Err(e) => reply.error(s.failed("readdir", At::Ino(ino.0), &e)),
            }
        });
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let ttl = self.ttl;
        self.spawn(move |s| async move {
            match s.core.readdirplus(ino.0, fh.0, offset).await {
                Ok(entries) => {
                    let mut sent = Vec::with_capacity(entries.len());
                    for e in entries {
                        // One TTL for the entry and its attributes: a provisional entry is
                        // looked up again, at no cost but a trip to the daemon.
                        let full = reply.add(
                            INodeNo(e.entry.ino),
                            e.entry.next_offset,
                            &e.entry.name,
                            &attr_ttl(&e.attr, ttl),
                            &file_attr(&e.attr),
                            GENERATION,
                        );
                        if full {
                            break;
                        }
                        // The kernel counts a lookup for every entry but `.` and `..`.
                        if e.entry.name != "." && e.entry.name != ".." {
                            sent.push(e.entry.ino);
                        }
                    }
                    s.core.add_lookups(&sent);
                    reply.ok();
                }
                Err(e) => reply.error(s.failed("readdirplus", At::Ino(ino.0), &e)),
            }
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let released = self.shared.core.releasedir(fh.0);
        self.shared
            .reply_empty(reply, "releasedir", At::Ino(ino.0), released);
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        self.spawn(move |s| async move {
            match s.core.statfs().await {
                Ok(f) => reply.statfs(
                    f.blocks, f.bfree, f.bavail, f.files, f.ffree, f.bsize, f.namelen, f.bsize,
                ),
                Err(e) => reply.error(s.failed("statfs", At::Ino(ino.0), &e)),
            }
        });
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let shared = &self.shared;
        let Some(name) = name.to_str() else {
            let why = "attribute name not in UTF-8";
            return reply.error(shared.refused("getxattr", At::Ino(ino.0), Errno::ENODATA, why));
        };
        match shared.core.getxattr(ino.0, name) {
            Ok(value) => shared.reply_xattr(reply, "getxattr", ino.0, size, &value),
            Err(e) => reply.error(shared.failed("getxattr", At::Ino(ino.0), &e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.shared.core.listxattr(ino.0) {
            Ok(names) => {
                let mut data = Vec::new();
                for name in names {
                    data.extend_from_slice(name.as_bytes());
                    data.push(0);
                }
                self.shared
                    .reply_xattr(reply, "listxattr", ino.0, size, &data);
            }
            Err(e) => reply.error(self.shared.failed("listxattr", At::Ino(ino.0), &e)),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let allowed = self
            .shared
            .core
            .access(ino.0, req.uid(), req.gid(), mask.bits());
        self.shared
            .reply_empty(reply, "access", At::Ino(ino.0), allowed);
    }

    // What follows answers the requests a filesystem of remote files has nothing for: tools
    // send them in passing (`sed -i` copies ACLs, Python's `open()` asks whether a file is a
    // terminal), and fuser would log each one as a warning. Refusals are counted and logged at
    // debug like any failure.

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(
            self.shared
                .failed("setxattr", At::Ino(ino.0), &FsError::Unsupported),
        );
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(
            self.shared
                .failed("removexattr", At::Ino(ino.0), &FsError::Unsupported),
        );
    }

    fn ioctl(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        let why = format!("no ioctl here (command {cmd:#x})");
        reply.error(
            self.shared
                .refused("ioctl", At::Ino(ino.0), Errno::ENOTTY, &why),
        );
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Every change of a directory is a server call that has completed: nothing to sync.
        reply.ok();
    }

    // `ENOSYS` to these is no failure: the kernel stops asking and does the work itself, for
    // every file of the mount. They are neither counted nor logged.

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: i64,
        _whence: i32,
        reply: ReplyLseek,
    ) {
        // The kernel then seeks by itself (files have no holes it would need to know of).
        reply.error(Errno::ENOSYS);
    }

    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _ph: PollNotifier,
        _events: PollEvents,
        _flags: PollFlags,
        reply: ReplyPoll,
    ) {
        // The kernel then reports every file always ready, as for any regular file.
        reply.error(Errno::ENOSYS);
    }
}
