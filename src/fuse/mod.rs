//! The kernel side: `impl fuser::Filesystem` over the core. Each request that may reach the
//! network is decoded on the FUSE thread, handed to the core as a task on the tokio runtime, and
//! answered from that task, so the FUSE thread never waits on the network and slow requests do
//! not hold up fast ones. Requests the core answers from memory (extended attributes, `access`,
//! `opendir`) are answered on the FUSE thread: a hop to the runtime would cost more than the
//! answer, and `ls -l` asks for two extended attributes of every file.
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, Errno, FileHandle, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenFlags, PollEvents,
    PollFlags, PollNotifier, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLseek, ReplyOpen, ReplyPoll,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use std::time::SystemTime;
use tokio::runtime::Handle;

use crate::fs::{FsError, SetAttr};
use crate::remote::Remote;

/// Largest read and write the kernel is asked to send at once.
const MAX_IO: u32 = 1024 * 1024;
/// Requests the kernel may have outstanding in the background (read-ahead, async reads).
const MAX_BACKGROUND: u16 = 64;
/// Inode numbers are never reused while mounted, so every inode has generation 0.
const GENERATION: Generation = Generation(0);

mod convert;
mod errors;
mod session;
mod shared;

use self::convert::{attr_ttl, file_attr, file_type, fopen_flags, name_arg, time_of};
pub use self::errors::Errors;
pub use self::session::{mount, MountError, MountHandle, MountOptions, Traffic};
use self::shared::{At, Shared};

/// The `fuser::Filesystem` over a core: what the FUSE threads hold.
struct Adapter<R: Remote> {
    shared: Arc<Shared<R>>,
    runtime: Handle,
    ttl: Duration,
    traffic: Arc<Traffic>,
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
            let made = s.core.mknod(parent.0, &name, mode).await;
            s.reply_entry(reply, "mknod", At::Entry(parent.0, &name), ttl, made);
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
            let made = s.core.symlink(parent.0, &name, &target).await;
            s.reply_entry(reply, "symlink", At::Entry(parent.0, &name), ttl, made);
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
            let made = s.core.mkdir(parent.0, &name, mode).await;
            s.reply_entry(reply, "mkdir", At::Entry(parent.0, &name), ttl, made);
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
