//! The control socket's requests for `yetifs fetch` and `yetifs share` (see `crate::host`):
//! the mount holds the logged-in client and the listings, so a command acting on a path inside
//! a mount asks the mount rather than logging in itself, which would take the mount's token.
//!
//! Protocol, after the request line (`fetch` or `share`, a space, then the request as JSON):
//! - `fetch {FetchRequest}`: lines `{"progress": FetchProgress}` as the server reports (and
//!   `"alive"` at least every second while nothing is heard), then one
//!   `{"fetched": [Fetched, ...]}`, or `{"refused": FetchError}` when nothing was fetched;
//! - `share {ShareRequest}`: one line, `{"shared": ShareInfo}` or `{"error": "..."}`.
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::socket::{connect, send_line, socket_dirs, socket_name, ControlError};
use crate::host::fetch::{self, FetchError, FetchProgress, FetchRequest, Fetched};
use crate::host::share::{self, ShareInfo, ShareRequest};
use crate::host::Account;

/// The request that asks the server to fetch URLs into a folder.
pub(super) const FETCH_REQUEST: &str = "fetch";
/// The request that changes a folder's sharing.
pub(super) const SHARE_REQUEST: &str = "share";
/// How often a fetch in progress says it is alive, at least.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a command waits for any line of a fetch before it gives the mount up.
const FETCH_PATIENCE: Duration = Duration::from_secs(30);
/// How long a command waits for the answer to a share request: a folder edit and a listing,
/// over however slow a link.
const SHARE_PATIENCE: Duration = Duration::from_secs(120);

/// Carries out a fetch request, sending each progress report to the channel.
pub type Fetcher = Arc<
    dyn Fn(
            FetchRequest,
            mpsc::UnboundedSender<FetchProgress>,
        ) -> BoxFuture<'static, Result<Vec<Fetched>, FetchError>>
        + Send
        + Sync,
>;

/// Carries out a share request.
pub type Sharer =
    Arc<dyn Fn(ShareRequest) -> BoxFuture<'static, Result<ShareInfo, String>> + Send + Sync>;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FetchLine {
    Progress(FetchProgress),
    Alive,
    Fetched(Vec<Fetched>),
    Refused(FetchError),
    Error(String),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ShareLine {
    Shared(ShareInfo),
    Error(String),
}

/// What the control socket runs for `fetch` and `share`, on `account`.
pub fn handlers_for<A: Account + 'static>(account: Arc<A>) -> (Fetcher, Sharer) {
    let fetching = Arc::clone(&account);
    let fetcher: Fetcher = Arc::new(move |request: FetchRequest, progress| {
        let account = Arc::clone(&fetching);
        Box::pin(async move {
            fetch::run(account.as_ref(), &request, |now| {
                // A command that went away no longer listens; the fetch goes on.
                let _ = progress.send(now);
            })
            .await
        })
    });
    let sharer: Sharer = Arc::new(move |request: ShareRequest| {
        let account = Arc::clone(&account);
        Box::pin(
            async move { share::change(account.as_ref(), &request.path, &request.change).await },
        )
    });
    (fetcher, sharer)
}

/// Answers `fetch REQUEST`: runs it, sending its progress as it goes and its outcome at the
/// end. A command that goes away stops the progress, not the fetch.
pub(super) async fn answer_fetch(
    write: &mut (impl AsyncWriteExt + Unpin),
    fetcher: &Fetcher,
    request: &str,
) -> io::Result<()> {
    let request: FetchRequest = match serde_json::from_str(request) {
        Ok(request) => request,
        Err(e) => {
            let line = FetchLine::Error(format!("bad fetch request: {e}"));
            return send_line(write, &serde_json::to_string(&line)?).await;
        }
    };
    let (progress, mut heard) = mpsc::unbounded_channel();
    let run = tokio::spawn(fetcher(request, progress));
    tokio::pin!(run);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        let line = tokio::select! {
            outcome = &mut run => {
                // What was reported before the end goes first.
                while let Ok(now) = heard.try_recv() {
                    send_line(write, &serde_json::to_string(&FetchLine::Progress(now))?).await?;
                }
                let line = match outcome.map_err(io::Error::other)? {
                    Ok(fetched) => FetchLine::Fetched(fetched),
                    Err(refused) => FetchLine::Refused(refused),
                };
                return send_line(write, &serde_json::to_string(&line)?).await;
            }
            Some(now) = heard.recv() => FetchLine::Progress(now),
            _ = heartbeat.tick() => FetchLine::Alive,
        };
        send_line(write, &serde_json::to_string(&line)?).await?;
    }
}

/// Answers `share REQUEST` with what the folder shares after the change.
pub(super) async fn answer_share(
    write: &mut (impl AsyncWriteExt + Unpin),
    sharer: &Sharer,
    request: &str,
) -> io::Result<()> {
    let line = match serde_json::from_str::<ShareRequest>(request) {
        Ok(request) => match sharer(request).await {
            Ok(info) => ShareLine::Shared(info),
            Err(message) => ShareLine::Error(message),
        },
        Err(e) => ShareLine::Error(format!("bad share request: {e}")),
    };
    send_line(write, &serde_json::to_string(&line)?).await
}

/// The mount `canonical` (a canonical path) is inside: the nearest folder above it, itself
/// included, whose control socket is there. `None`: no mount on this machine holds it.
pub fn mount_of(canonical: &Path) -> Option<PathBuf> {
    let dirs = socket_dirs();
    canonical
        .ancestors()
        .find(|point| {
            let name = socket_name(point);
            dirs.iter().any(|dir| dir.join(&name).exists())
        })
        .map(Path::to_path_buf)
}

/// Sends `line` to the mount on `mountpoint`; returns the lines of its answer and the
/// socket's path.
async fn ask(
    mountpoint: &Path,
    line: String,
) -> Result<(tokio::io::Lines<BufReader<tokio::net::UnixStream>>, String), ControlError> {
    let (path, mut stream) = connect(mountpoint).await?;
    stream
        .write_all(format!("{line}\n").as_bytes())
        .await
        .map_err(|e| ControlError::Exchange {
            path: path.clone(),
            message: e.to_string(),
        })?;
    Ok((BufReader::new(stream).lines(), path))
}

/// Reads the next line of an answer, waiting at most `patience`.
async fn next_line(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::UnixStream>>,
    path: &str,
    patience: Duration,
) -> Result<String, ControlError> {
    let failed = |message: String| ControlError::Exchange {
        path: path.to_owned(),
        message,
    };
    tokio::time::timeout(patience, lines.next_line())
        .await
        .map_err(|_| failed("the mount stopped answering".into()))?
        .map_err(|e| failed(e.to_string()))?
        .ok_or_else(|| failed("the mount closed the connection".into()))
}

/// Asks the mount on `mountpoint` to carry out `request`, telling `progress` what it reports;
/// the outer error is the exchange with the mount failing, the inner one the mount's refusal.
pub async fn fetch(
    mountpoint: &Path,
    request: &FetchRequest,
    mut progress: impl FnMut(FetchProgress),
) -> Result<Result<Vec<Fetched>, FetchError>, ControlError> {
    let body = serde_json::to_string(request).map_err(|e| ControlError::Exchange {
        path: mountpoint.display().to_string(),
        message: e.to_string(),
    })?;
    let (mut lines, path) = ask(mountpoint, format!("{FETCH_REQUEST} {body}")).await?;
    loop {
        let line = next_line(&mut lines, &path, FETCH_PATIENCE).await?;
        match serde_json::from_str(&line) {
            Ok(FetchLine::Progress(now)) => progress(now),
            Ok(FetchLine::Alive) => {}
            Ok(FetchLine::Fetched(fetched)) => return Ok(Ok(fetched)),
            Ok(FetchLine::Refused(refused)) => return Ok(Err(refused)),
            Ok(FetchLine::Error(message)) => return Err(ControlError::Exchange { path, message }),
            Err(e) => {
                return Err(ControlError::Exchange {
                    path,
                    message: format!("unreadable answer ({e}): {line}"),
                })
            }
        }
    }
}

/// Asks the mount on `mountpoint` to carry out `request`; the outer error is the exchange with
/// the mount failing, the inner one the change failing.
pub async fn share(
    mountpoint: &Path,
    request: &ShareRequest,
) -> Result<Result<ShareInfo, String>, ControlError> {
    let body = serde_json::to_string(request).map_err(|e| ControlError::Exchange {
        path: mountpoint.display().to_string(),
        message: e.to_string(),
    })?;
    let (mut lines, path) = ask(mountpoint, format!("{SHARE_REQUEST} {body}")).await?;
    let line = next_line(&mut lines, &path, SHARE_PATIENCE).await?;
    match serde_json::from_str(&line) {
        Ok(ShareLine::Shared(info)) => Ok(Ok(info)),
        Ok(ShareLine::Error(message)) => Ok(Err(message)),
        Err(e) => Err(ControlError::Exchange {
            path,
            message: format!("unreadable answer ({e}): {line}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::socket::{ControlServer, Handlers};
    use crate::control::StatusReport;
    use crate::fs::SyncReport;
    use crate::host::fetch::{FetchOutcome, Stage};
    use crate::host::share::{Level, ShareChange};

    fn handlers(fetch: Fetcher, share: Sharer) -> Handlers {
        Handlers {
            report: Arc::new(|| -> StatusReport { unreachable!("no status asked") }),
            sync: Arc::new(|_, _| Box::pin(async { SyncReport::default() })),
            fetch,
            share,
        }
    }

    fn request(urls: &[&str]) -> FetchRequest {
        FetchRequest {
            folder: "a b/ü".into(),
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            name: None,
            wait: true,
        }
    }

    #[tokio::test]
    async fn a_fetch_streams_its_progress_and_ends_with_each_urls_outcome() {
        let point = tempfile::tempdir().unwrap();
        let canonical = point.path().canonicalize().unwrap();
        let fetcher: Fetcher = Arc::new(|request: FetchRequest, progress| {
            Box::pin(async move {
                for bytes in [0, 50, 100] {
                    let now = FetchProgress {
                        index: 0,
                        stage: Stage::Downloading,
                        bytes: Some(bytes),
                        total: Some(100),
                    };
                    let _ = progress.send(now);
                }
                Ok(vec![Fetched {
                    url: request.urls[0].clone(),
                    outcome: FetchOutcome::Stored {
                        file_id: 3,
                        name: "x".into(),
                        size: Some(100),
                        path: format!("{}/x", request.folder),
                    },
                }])
            })
        });
        let sharer: Sharer = Arc::new(|_| Box::pin(async { Err("unused".to_owned()) }));
        let _server = ControlServer::start(&canonical, handlers(fetcher, sharer)).unwrap();
        assert_eq!(
            mount_of(&canonical.join("sub/dir")),
            Some(canonical.clone())
        );
        let mut heard = Vec::new();
        let fetched = fetch(point.path(), &request(&["http://h/x"]), |now| {
            heard.push(now.bytes)
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(heard, [Some(0), Some(50), Some(100)]);
        assert!(matches!(
            &fetched[0].outcome,
            FetchOutcome::Stored { path, .. } if path == "a b/ü/x"
        ));
    }

    #[tokio::test]
    async fn a_refused_fetch_and_a_share_come_back_as_the_mount_said() {
        let point = tempfile::tempdir().unwrap();
        let canonical = point.path().canonicalize().unwrap();
        let fetcher: Fetcher = Arc::new(|_, _| {
            Box::pin(async { Err(FetchError::Unsupported("No method found".into())) })
        });
        let sharer: Sharer = Arc::new(|request: ShareRequest| {
            Box::pin(async move {
                Ok(ShareInfo::Folder {
                    id: 4,
                    url: Some(format!("http://h/folder/4/{}", request.path)),
                    level: request.change.level,
                    password: Some(false),
                })
            })
        });
        let _server = ControlServer::start(&canonical, handlers(fetcher, sharer)).unwrap();
        let refused = fetch(point.path(), &request(&["http://h/x"]), |_| {})
            .await
            .unwrap();
        assert_eq!(
            refused,
            Err(FetchError::Unsupported("No method found".into()))
        );
        let change = ShareChange {
            level: Some(Level::Public),
            password: None,
        };
        let shared = share(
            point.path(),
            &ShareRequest {
                path: "Docs".into(),
                change,
            },
        )
        .await
        .unwrap()
        .unwrap();
        assert!(matches!(
            shared,
            ShareInfo::Folder { level: Some(Level::Public), ref url, .. }
                if url.as_deref() == Some("http://h/folder/4/Docs")
        ));
    }
}
