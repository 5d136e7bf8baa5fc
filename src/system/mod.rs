//! What talks to the operating system rather than the server: detaching (`daemon`), where log
//! lines go (`logging`), the pid file, systemd's readiness protocol (`notify`), the
//! `mount.fuse.yetifs` helper, the kernel's read-ahead for the mount, and the C allocator's
//! thresholds.
pub mod daemon;
pub mod logging;
pub mod malloc;
pub mod mount_helper;
pub mod notify;
pub mod pid_file;
pub mod read_ahead;
