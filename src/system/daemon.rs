//! `--daemon`: the mount detaches only once it is live, and a failed start is reported through
//! the exit code of the command the user ran. A multi-threaded process cannot safely `fork`, so
//! the command starts itself again as a child in a new session, with a pipe on its standard
//! output; the child writes one line there once the mount is live, then sends its output to a
//! log file. The parent waits for that line (exit 0) or for the child to die (its exit code).
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Set in the child's environment: it is the detached half and must announce readiness.
pub const CHILD_ENV: &str = "YETIFS_DAEMON_CHILD";
const READY_LINE: &str = "yetifs-ready";

/// Starts this program again with `args` (the same command line; the child knows itself by
/// `CHILD_ENV`) in a new session
/// and waits until it is ready or has failed. Returns the exit code for this process.
pub fn spawn_and_wait(args: &[OsString]) -> std::io::Result<i32> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .args(args)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: setsid is async-signal-safe and touches no memory of this process.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let ready = match child.stdout.take() {
        Some(out) => BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .any(|line| line == READY_LINE),
        None => false,
    };
    if ready {
        return Ok(0);
    }
    let status = child.wait()?;
    Ok(status.code().unwrap_or(1).max(1))
}

/// Whether this process is the detached child of `--daemon`.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// In the detached child: tells the waiting parent the mount is live, then sends standard
/// output and error to `log` (appended), so nothing writes to the terminal the user got back;
/// the log lines of the start-up go there first.
pub fn announce_ready(log: &Path) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{READY_LINE}")?;
    stdout.flush()?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(log)?;
    for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: dup2 on valid descriptors; the file stays open for the process's life
        // through the duplicated descriptors.
        if unsafe { libc::dup2(file.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    crate::system::logging::detached()
}
