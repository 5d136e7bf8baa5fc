//! `yetifs serve`: a faithful, persistent server of the YetiShare File Upload API v2, for trying
//! yetifs without an account and for every integration test and benchmark. It reproduces the
//! real servers' behaviour (`docs/emulator.md` lists the quirks and how to switch each off),
//! keeps metadata in SQLite and contents as blob files, and can inject faults.
//!
//! In-process use:
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let emu = yetifs::emulator::Emulator::start(yetifs::emulator::ServeArgs {
//!     listen: "127.0.0.1:0".parse()?,
//!     ..Default::default()
//! })
//! .await?;
//! println!("{} {} {}", emu.base_url(), emu.key1(), emu.key2());
//! emu.shutdown().await?;
//! # Ok(()) }
//! ```
mod access_log;
mod api;
mod blobs;
mod config;
mod download;
mod faults;
mod ingest;
mod names;
mod ranges;
mod reply;
mod request;
mod state;
mod store;
mod url_upload;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{HostKind, Profile, Quirk, ServeArgs};
pub use faults::{FaultSpec, FaultSpecError};
pub use ranges::RangeMode;

use blobs::{random_hex, Blobs};
use faults::{Fault, Faults};
use state::AppState;
use store::Store;

/// Keys of one emulated account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountKeys {
    /// The account id `/authorize` returns.
    pub id: i64,
    /// Key 1.
    pub key1: String,
    /// Key 2.
    pub key2: String,
}

/// A running emulator on the current tokio runtime.
pub struct Emulator {
    addr: SocketAddr,
    main: AccountKeys,
    data_dir: PathBuf,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    _temp: Option<tempfile::TempDir>,
}

fn ensure_account(store: &Store, key1: &str, key2: &str, now: &str) -> anyhow::Result<AccountKeys> {
    let account = match store.account_by_keys(key1, key2)? {
        Some(a) => a,
        None => {
            let first = store.first_account()?.is_none();
            store.add_account(key1, key2, first, now)?
        }
    };
    Ok(AccountKeys {
        id: account.id,
        key1: account.key1,
        key2: account.key2,
    })
}

fn main_account(store: &Store, args: &ServeArgs, now: &str) -> anyhow::Result<AccountKeys> {
    match (&args.key1, &args.key2) {
        (Some(k1), Some(k2)) => {
            config::check_key(k1)?;
            config::check_key(k2)?;
            ensure_account(store, k1, k2, now)
        }
        (None, None) => match store.first_account()? {
            Some(a) => Ok(AccountKeys {
                id: a.id,
                key1: a.key1,
                key2: a.key2,
            }),
            None => ensure_account(store, &random_hex(64), &random_hex(64), now),
        },
        _ => anyhow::bail!("--key1 and --key2 go together"),
    }
}

impl Emulator {
    /// Opens the data dir, creates the accounts, binds `args.listen` (port 0 allowed) and serves
    /// on the current tokio runtime until [`Emulator::shutdown`].
    pub async fn start(args: ServeArgs) -> anyhow::Result<Emulator> {
        let (data_dir, temp) = match &args.data {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                (dir.clone(), None)
            }
            None => {
                let t = tempfile::Builder::new().prefix("yetifs-serve-").tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let store = Store::open(&data_dir.join("emulator.sqlite"))
            .with_context(|| format!("opening the database in {}", data_dir.display()))?;
        let blobs = Blobs::open(&data_dir)?;
        let now = reply::now_string();
        let main = main_account(&store, &args, &now)?;
        for (k1, k2) in args.account_pairs()? {
            ensure_account(&store, &k1, &k2, &now)?;
        }
        let access_log = match &args.access_log {
            Some(path) => Some(
                access_log::AccessLog::open(path)
                    .with_context(|| format!("opening {}", path.display()))?,
            ),
            None => None,
        };
        let listener = match args.faults.bandwidth {
            Some(rate) => link_listener(args.listen, rate),
            None => tokio::net::TcpListener::bind(args.listen).await,
        }
        .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        let faults = Faults::new(args.faults.clone(), args.seed);
        let state = Arc::new(AppState {
            args,
            store,
            blobs,
            faults,
            access_log,
            http: reqwest::Client::new(),
            url_queue: tokio::sync::Mutex::new(()),
            bound: addr,
        });
        let app = Router::new()
            .fallback(front)
            .layer(DefaultBodyLimit::disable())
            .with_state(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
        });
        Ok(Emulator {
            addr,
            main,
            data_dir,
            state,
            stop: Some(stop),
            task,
            _temp: temp,
        })
    }

    /// `http://ADDR/api/v2/`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v2/", self.addr)
    }

    /// Key 1 of the main account.
    pub fn key1(&self) -> &str {
        &self.main.key1
    }

    /// Key 2 of the main account.
    pub fn key2(&self) -> &str {
        &self.main.key2
    }

    /// Id of the main account.
    pub fn account_id(&self) -> i64 {
        self.main.id
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where its database and blobs are.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Creates another (regular) account with random keys; it sees only its own files.
    pub fn add_account(&self) -> anyhow::Result<AccountKeys> {
        ensure_account(
            &self.state.store,
            &random_hex(64),
            &random_hex(64),
            &reply::now_string(),
        )
    }

    /// Stops serving and waits for open connections to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await??;
        Ok(())
    }
}

/// `yetifs serve`: starts the emulator, prints `api_url=`, `key1=`, `key2=`, `account_id=` and
/// `data=` lines on stdout, and serves until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let emu = Emulator::start(args).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "api_url={}", emu.base_url())?;
        writeln!(out, "key1={}", emu.key1())?;
        writeln!(out, "key2={}", emu.key2())?;
        writeln!(out, "account_id={}", emu.account_id())?;
        writeln!(out, "data={}", emu.data_dir().display())?;
        out.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    emu.shutdown().await
}

/// A listener whose connections buffer about 50 ms of `rate` bytes per second on the way in:
/// with the bandwidth cap, a client can then get no further ahead of what the server has read
/// than over a real link of that rate, rather than the megabytes the local kernel would buffer.
fn link_listener(addr: SocketAddr, rate: u64) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    let window = (rate / 20).clamp(4096, 256 * 1024);
    socket.set_recv_buffer_size(u32::try_from(window).unwrap_or(u32::MAX))?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn throttle(body: Body, rate: u64) -> Body {
    let stream = body.into_data_stream().then(move |chunk| async move {
        if let Ok(bytes) = &chunk {
            tokio::time::sleep(Duration::from_secs_f64(bytes.len() as f64 / rate as f64)).await;
        }
        chunk
    });
    Body::from_stream(stream)
}

fn broken_body() -> Body {
    Body::from_stream(futures_util::stream::once(async {
        Err::<axum::body::Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected reset",
        ))
    }))
}

/// Every request enters here: faults, then the API or the file server, then the access log.
async fn front(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let spec = &st.faults.spec;
    let is_api = path.starts_with("/api/v2/") || path == "/api/v2";
    let admitted = if is_api { st.faults.admit() } else { None };
    if !spec.latency.is_zero() {
        tokio::time::sleep(spec.latency).await;
    }
    let fault = match admitted {
        None if is_api => Fault::TooMany,
        _ => st.faults.roll(),
    };
    let origin = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| format!("http://{}", st.bound), |h| format!("http://{h}"));
    let req = match spec.bandwidth {
        Some(rate) => req.map(|b| throttle(b, rate)),
        None => req,
    };
    let mut resp = match fault {
        Fault::ServerError => {
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        }
        Fault::TooMany => {
            let mut r = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Fault::Reset if is_api => (StatusCode::OK, broken_body()).into_response(),
        _ if is_api => api::handle(st.clone(), peer, origin, req).await,
        _ if path == "/error.html" => download::error_page("File is not publicly available."),
        _ => download::handle(st.clone(), origin, req, fault == Fault::Reset).await,
    };
    if let Some(rate) = spec.bandwidth {
        resp = resp.map(|b| throttle(b, rate));
    }
    drop(admitted);
    if let Some(log) = &st.access_log {
        use axum::body::HttpBody;
        let bytes = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .or_else(|| resp.body().size_hint().exact());
        log.log(
            &method,
            &path,
            resp.status().as_u16(),
            bytes,
            started.elapsed().as_millis(),
        );
    }
    resp
}
