//! Mounting and unmounting: the options the kernel gets, the background session that serves
//! the mount, and the handle that unmounts it (lazily, after a grace period for a busy mount)
//! and counts its traffic.
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fuser::{BackgroundSession, Config, MountOption, SessionACL};
use tokio::runtime::Handle;

use crate::fs::Core;
use crate::remote::Remote;
use crate::system::read_ahead;

use super::errors::Errors;
use super::shared::Shared;
use super::Adapter;

/// Threads reading requests from the kernel. They only decode and spawn tasks, so a few keep
/// the queue drained while replies come from the tokio runtime.
const FUSE_THREADS: usize = 2;

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
    pub(super) read: AtomicU64,
    pub(super) written: AtomicU64,
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
