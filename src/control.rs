//! The control socket of a mount: a unix stream socket the mount process listens on, through
//! which `yetifs status MOUNTPOINT` asks for a [`StatusReport`]. Its place follows from the
//! canonical mountpoint alone, so the command finds it without any registry: the directory is
//! `$XDG_RUNTIME_DIR/yetifs`, else `/run/yetifs` for root, else `/tmp/yetifs-UID`, and the name
//! is a hash of the mountpoint. The socket is readable by its owner only (mode 0600), as the
//! report names files.
//!
//! Protocol: the client sends one line, `status`; the server answers one line of JSON (the
//! report, or `{"error": "..."}`) and closes.
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::status::StatusReport;

/// How long either side waits for the other.
const PATIENCE: Duration = Duration::from_secs(5);
/// The one request understood.
const STATUS_REQUEST: &str = "status";

/// What went wrong while asking a mount for its status.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No control socket answers for the mountpoint.
    #[error("no yetifs mount answers for {mountpoint} (looked for {looked})")]
    NotFound {
        /// The mountpoint asked about.
        mountpoint: String,
        /// The socket paths tried.
        looked: String,
    },
    /// The mountpoint cannot be resolved.
    #[error("{path}: {reason}")]
    Mountpoint {
        /// The path given.
        path: String,
        /// Why (not a `source`: the message says it once).
        reason: io::Error,
    },
    /// The socket answered but the exchange failed.
    #[error("the mount's control socket {path} failed: {message}")]
    Exchange {
        /// The socket.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Produces the report when asked.
pub type Reporter = Arc<dyn Fn() -> StatusReport + Send + Sync>;

/// A listening control socket; dropping it stops listening and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    task: JoinHandle<()>,
}

/// FNV-1a, 64 bits: a short stable name for a path, the same in every build.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The socket's file name for a canonical mountpoint.
fn socket_name(canonical: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    format!("{:016x}.sock", fnv1a(canonical.as_os_str().as_bytes()))
}

/// The directories a control socket may be in, the one a new mount uses first.
fn socket_dirs() -> Vec<PathBuf> {
    // SAFETY: geteuid cannot fail and touches no memory.
    let euid = unsafe { libc::geteuid() };
    let mut dirs = Vec::new();
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(runtime).join("yetifs"));
    }
    let system = PathBuf::from("/run/yetifs");
    let private = std::env::temp_dir().join(format!("yetifs-{euid}"));
    if euid == 0 {
        dirs.extend([system, private]);
    } else {
        dirs.extend([private, system]);
    }
    dirs
}

/// Where the mount on `mountpoint` (canonical) puts its control socket.
pub fn socket_path(canonical: &Path) -> PathBuf {
    let name = socket_name(canonical);
    socket_dirs()
        .into_iter()
        .next()
        .unwrap_or_else(std::env::temp_dir)
        .join(name)
}

impl ControlServer {
    /// Listens on the control socket of `canonical` (the mountpoint), answering with what
    /// `report` makes. A socket file left by a mount that died is replaced.
    pub fn start(canonical: &Path, report: Reporter) -> io::Result<ControlServer> {
        let path = socket_path(canonical);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => log::info!("replaced a stale control socket {}", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let report = Arc::clone(&report);
                        tokio::spawn(async move {
                            if let Err(e) = answer(stream, report).await {
                                log::warn!("control socket: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        log::warn!("control socket: cannot accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(ControlServer { path, task })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        if let Err(e) = std::fs::remove_file(&self.path) {
            log::warn!("cannot remove control socket {}: {e}", self.path.display());
        }
    }
}

/// Reads the request line and writes the answer.
async fn answer(stream: UnixStream, report: Reporter) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::time::timeout(PATIENCE, BufReader::new(read).read_line(&mut line))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request"))??;
    let reply = if line.trim() == STATUS_REQUEST {
        serde_json::to_string(&report())?
    } else {
        serde_json::json!({ "error": format!("unknown request {:?}", line.trim()) }).to_string()
    };
    write.write_all(reply.as_bytes()).await?;
    write.write_all(b"\n").await?;
    write.shutdown().await
}

/// Asks the mount on `mountpoint` for its status.
pub async fn query(mountpoint: &Path) -> Result<StatusReport, ControlError> {
    let canonical = mountpoint
        .canonicalize()
        .map_err(|reason| ControlError::Mountpoint {
            path: mountpoint.display().to_string(),
            reason,
        })?;
    let name = socket_name(&canonical);
    let candidates: Vec<PathBuf> = socket_dirs().into_iter().map(|d| d.join(&name)).collect();
    for path in &candidates {
        if let Ok(stream) = UnixStream::connect(path).await {
            return exchange(stream)
                .await
                .map_err(|message| ControlError::Exchange {
                    path: path.display().to_string(),
                    message,
                });
        }
    }
    Err(ControlError::NotFound {
        mountpoint: canonical.display().to_string(),
        looked: candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Sends the request on `stream` and reads the report.
async fn exchange(mut stream: UnixStream) -> Result<StatusReport, String> {
    let talk = async {
        stream
            .write_all(format!("{STATUS_REQUEST}\n").as_bytes())
            .await?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await?;
        Ok::<_, io::Error>(line)
    };
    let line = tokio::time::timeout(PATIENCE, talk)
        .await
        .map_err(|_| "no answer".to_owned())?
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&line).map_err(|e| format!("unreadable answer ({e}): {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{CacheUse, ServerState, TrafficStats};

    fn report(mountpoint: &str) -> StatusReport {
        StatusReport {
            mountpoint: mountpoint.into(),
            server: "http://h/api/v2/".into(),
            pid: 1,
            mounted_ms: 0,
            now_ms: 0,
            server_state: ServerState {
                online: None,
                last_answer_ms: None,
                last_failure: None,
            },
            uploads: vec![],
            cache: CacheUse::default(),
            traffic: TrafficStats::default(),
            token: Default::default(),
            api: vec![],
        }
    }

    #[test]
    fn socket_names_differ_by_mountpoint_and_stay_short() {
        let a = socket_name(Path::new("/mnt/a"));
        assert_ne!(a, socket_name(Path::new("/mnt/b")));
        assert_eq!(a, socket_name(Path::new("/mnt/a")));
        assert_eq!(a.len(), 21);
    }

    #[tokio::test]
    async fn a_query_finds_the_mounts_socket_from_the_mountpoint_and_gets_its_report() {
        let point = tempfile::tempdir().unwrap();
        let canonical = point.path().canonicalize().unwrap();
        let shown = canonical.display().to_string();
        let expected = report(&shown);
        let server = ControlServer::start(&canonical, Arc::new(move || report(&shown))).unwrap();
        let mode = std::fs::metadata(server.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(query(point.path()).await.unwrap(), expected);
        let path = server.path().to_path_buf();
        drop(server);
        assert!(!path.exists());
        assert!(matches!(
            query(point.path()).await,
            Err(ControlError::NotFound { .. })
        ));
    }
}
