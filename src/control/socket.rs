//! The control socket of a mount: a unix stream socket the mount process listens on, through
//! which `yetifs status MOUNTPOINT` asks for a [`StatusReport`]. Its place follows from the
//! canonical mountpoint alone, so the command finds it without any registry: the directory is
//! `$XDG_RUNTIME_DIR/yetifs`, else `/run/yetifs` for root, else `/tmp/yetifs-UID`, and the name
//! is a hash of the mountpoint. The socket is readable by its owner only (mode 0600), as the
//! report names files.
//!
//! Protocol: the client sends one line and the server answers in JSON lines, then closes:
//! - `status`: one line, the report (or `{"error": "..."}`);
//! - `sync` or `sync "PATH"` (a JSON string, relative to the mount's root): `yetifs sync`.
//!   Lines `{"progress": {"done": D, "total": T}}` as uploads complete (and at least every
//!   second, so that the client can tell a slow upload from a dead mount), then one
//!   `{"synced": {"total": T, "failed": [{"path": ..., "reason": ...}]}}`;
//! - `fetch {...}` and `share {...}`: `yetifs fetch` and `yetifs share` (see `hosted`).
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::control::hosted::{self, Fetcher, Sharer};
use crate::control::StatusReport;
use crate::fs::SyncReport;

/// How long either side waits for the other.
const PATIENCE: Duration = Duration::from_secs(5);
/// How often a sync in progress says so, at least.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a sync client waits for any line before it gives the mount up.
const SYNC_PATIENCE: Duration = Duration::from_secs(30);
/// The request for the status report.
const STATUS_REQUEST: &str = "status";
/// The request that waits for pending uploads.
const SYNC_REQUEST: &str = "sync";

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

/// Uploads done and to do, while a sync runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncProgress {
    /// Uploads completed (or failed) so far.
    pub done: usize,
    /// Uploads the sync waits for.
    pub total: usize,
}

/// Runs a sync of everything pending under a path (`None`: all), publishing its progress.
pub type Syncer = Arc<
    dyn Fn(Option<String>, watch::Sender<SyncProgress>) -> BoxFuture<'static, SyncReport>
        + Send
        + Sync,
>;

/// What the control socket answers with.
#[derive(Clone)]
pub struct Handlers {
    /// For `status`.
    pub report: Reporter,
    /// For `sync`.
    pub sync: Syncer,
    /// For `fetch`.
    pub fetch: Fetcher,
    /// For `share`.
    pub share: Sharer,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SyncLine {
    Progress(SyncProgress),
    Synced(SyncReport),
    Error(String),
}

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
pub(super) fn socket_name(canonical: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    format!("{:016x}.sock", fnv1a(canonical.as_os_str().as_bytes()))
}

/// The directories a control socket may be in, the one a new mount uses first.
pub(super) fn socket_dirs() -> Vec<PathBuf> {
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
    /// Listens on the control socket of `canonical` (the mountpoint), answering with
    /// `handlers`. A socket file left by a mount that died is replaced.
    pub fn start(canonical: &Path, handlers: Handlers) -> io::Result<ControlServer> {
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
                        let handlers = handlers.clone();
                        tokio::spawn(async move {
                            if let Err(e) = answer(stream, handlers).await {
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
async fn answer(stream: UnixStream, handlers: Handlers) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::time::timeout(PATIENCE, BufReader::new(read).read_line(&mut line))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request"))??;
    let request = line.trim();
    if request == STATUS_REQUEST {
        let reply = serde_json::to_string(&(handlers.report)())?;
        send_line(&mut write, &reply).await?;
    } else if let Some(path) = request.strip_prefix(SYNC_REQUEST) {
        let path = path.trim();
        let path = if path.is_empty() {
            Ok(None)
        } else {
            serde_json::from_str::<String>(path).map(Some)
        };
        match path {
            Ok(path) => answer_sync(&mut write, &handlers.sync, path).await?,
            Err(e) => {
                let reply = serde_json::to_string(&SyncLine::Error(format!("bad path: {e}")))?;
                send_line(&mut write, &reply).await?;
            }
        }
    } else if let Some(body) = request.strip_prefix(hosted::FETCH_REQUEST) {
        hosted::answer_fetch(&mut write, &handlers.fetch, body.trim()).await?;
    } else if let Some(body) = request.strip_prefix(hosted::SHARE_REQUEST) {
        hosted::answer_share(&mut write, &handlers.share, body.trim()).await?;
    } else {
        let reply = serde_json::json!({ "error": format!("unknown request {request:?}") });
        send_line(&mut write, &reply.to_string()).await?;
    }
    write.shutdown().await
}

pub(super) async fn send_line(
    write: &mut (impl AsyncWriteExt + Unpin),
    line: &str,
) -> io::Result<()> {
    write.write_all(line.as_bytes()).await?;
    write.write_all(b"\n").await
}

/// Runs the sync, sending its progress as it goes and its outcome at the end. A client that
/// goes away stops the progress, not the uploads.
async fn answer_sync(
    write: &mut (impl AsyncWriteExt + Unpin),
    sync: &Syncer,
    path: Option<String>,
) -> io::Result<()> {
    let (progress, mut seen) = watch::channel(SyncProgress::default());
    let run = tokio::spawn(sync(path, progress));
    tokio::pin!(run);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            outcome = &mut run => {
                let outcome = outcome.map_err(io::Error::other)?;
                let line = serde_json::to_string(&SyncLine::Synced(outcome))?;
                return send_line(write, &line).await;
            }
            _ = seen.changed() => {}
            _ = heartbeat.tick() => {}
        }
        let now = *seen.borrow_and_update();
        send_line(write, &serde_json::to_string(&SyncLine::Progress(now))?).await?;
    }
}

/// Asks the mount on `mountpoint` to sync `path` (relative to its root; `None`: everything)
/// and waits for the outcome, telling `progress` how it goes.
pub async fn sync(
    mountpoint: &Path,
    path: Option<&str>,
    mut progress: impl FnMut(SyncProgress),
) -> Result<SyncReport, ControlError> {
    let (path_shown, mut stream) = connect(mountpoint).await?;
    let failed = |message: String| ControlError::Exchange {
        path: path_shown.clone(),
        message,
    };
    let request = match path {
        Some(path) => format!(
            "{SYNC_REQUEST} {}\n",
            serde_json::to_string(path).map_err(|e| failed(e.to_string()))?
        ),
        None => format!("{SYNC_REQUEST}\n"),
    };
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut lines = BufReader::new(stream).lines();
    loop {
        let line = tokio::time::timeout(SYNC_PATIENCE, lines.next_line())
            .await
            .map_err(|_| failed("the mount stopped answering".into()))?
            .map_err(|e| failed(e.to_string()))?
            .ok_or_else(|| failed("the mount closed the connection".into()))?;
        match serde_json::from_str(&line) {
            Ok(SyncLine::Progress(now)) => progress(now),
            Ok(SyncLine::Synced(outcome)) => return Ok(outcome),
            Ok(SyncLine::Error(message)) => return Err(failed(message)),
            Err(e) => return Err(failed(format!("unreadable answer ({e}): {line}"))),
        }
    }
}

/// Connects to the control socket of the mount on `mountpoint`; returns the socket's path too.
pub(super) async fn connect(mountpoint: &Path) -> Result<(String, UnixStream), ControlError> {
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
            return Ok((path.display().to_string(), stream));
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

/// Asks the mount on `mountpoint` for its status.
pub async fn query(mountpoint: &Path) -> Result<StatusReport, ControlError> {
    let (path, stream) = connect(mountpoint).await?;
    exchange(stream)
        .await
        .map_err(|message| ControlError::Exchange { path, message })
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
    use crate::control::{CacheUse, ServerState, TrafficStats};
    use crate::fs::SyncFailure;

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
            requests: Default::default(),
            prefetch: Default::default(),
            api: vec![],
            errors: Default::default(),
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
        let handlers = Handlers {
            report: Arc::new(move || report(&shown)),
            sync: Arc::new(|_, _| Box::pin(async { SyncReport::default() })),
            fetch: Arc::new(|_, _| Box::pin(async { Ok(Vec::new()) })),
            share: Arc::new(|_| Box::pin(async { Err("no".to_owned()) })),
        };
        let server = ControlServer::start(&canonical, handlers).unwrap();
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

    #[tokio::test]
    async fn a_sync_streams_its_progress_and_ends_with_the_failures() {
        let point = tempfile::tempdir().unwrap();
        let canonical = point.path().canonicalize().unwrap();
        let asked = Arc::new(crate::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&asked);
        let sync: Syncer = Arc::new(move |path, progress| {
            seen.lock().push(path);
            Box::pin(async move {
                for done in 0..=2 {
                    progress.send_replace(SyncProgress { done, total: 2 });
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                SyncReport {
                    total: 2,
                    failed: vec![SyncFailure {
                        path: "a/b".into(),
                        reason: "full".into(),
                    }],
                }
            })
        });
        let handlers = Handlers {
            report: Arc::new(|| report("x")),
            sync,
            fetch: Arc::new(|_, _| Box::pin(async { Ok(Vec::new()) })),
            share: Arc::new(|_| Box::pin(async { Err("no".to_owned()) })),
        };
        let _server = ControlServer::start(&canonical, handlers).unwrap();
        let mut heard = Vec::new();
        let outcome = super::sync(point.path(), Some("a b/ü"), |p| heard.push(p.done))
            .await
            .unwrap();
        assert_eq!(outcome.total, 2);
        assert_eq!(outcome.failed[0].path, "a/b");
        assert_eq!(heard.last(), Some(&2));
        super::sync(point.path(), None, |_| {}).await.unwrap();
        assert_eq!(*asked.lock(), [Some("a b/ü".to_owned()), None]);
    }
}
