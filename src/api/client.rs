//! The client: one pooled `reqwest` client with a cookie jar, the base URL, the shared session,
//! and one typed method per API v2 endpoint. Every call goes through the same path: take the
//! shared token, send, decode; on a dead token renew it and resend until the token policy's
//! deadline (another client of the account may keep taking it); on transient trouble retry as
//! the endpoint's safety allows.
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{TryFutureExt, TryStreamExt};
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::multipart::{Form, Part};
use reqwest::{Body, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::io::ReaderStream;

use super::concurrency::{Concurrency, ConcurrencyStats, Signal};
use super::config::ClientConfig;
use super::download::LinkCache;
use super::metrics::{takeover_summary, Metrics};
use super::model::{
    Account, Authorization, CopyReply, DownloadLink, FileInfo, Folder, FolderListing, Package,
    UploadedFile, UrlUploadScheduled, UrlUploadStatus,
};
use super::redact::redact;
use super::reply::{self, Context, Payload, RawReply};
use super::retry::{self, parse_retry_after, Failure, Safety};
use super::session::{Refusal, Renewed, Session, Token};
use crate::remote::error::{RemoteError, Result};

/// Bytes read from a staged file per chunk of an upload body.
const UPLOAD_CHUNK: usize = 1024 * 1024;

/// The typed async client of API v2. Cheap to clone: clones share the connection pool, the
/// cookie jar, the token and the download-link cache.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

/// What clones of a [`Client`] share.
pub(crate) struct Inner {
    /// The HTTP client: pool, cookies, no automatic redirects.
    pub http: reqwest::Client,
    /// The API base, ending in `/`.
    pub base: Url,
    /// The settings.
    pub config: ClientConfig,
    /// The shared token.
    pub session: Session,
    /// Download URLs by file id.
    pub links: LinkCache,
    /// Requests, failures and uploads in progress, for `yetifs status`.
    pub metrics: Metrics,
    /// How many calls may be in flight.
    pub concurrency: Concurrency,
}

/// Changes `file/edit` makes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct FileEdit<'a> {
    /// A new name.
    pub filename: Option<&'a str>,
    /// A new MIME type.
    pub file_type: Option<&'a str>,
    /// A new folder; `Some(None)` is the root.
    pub folder: Option<Option<u64>>,
}

/// Changes `folder/edit` makes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct FolderEdit<'a> {
    /// A new name.
    pub name: Option<&'a str>,
    /// A new parent; `Some(None)` is the root.
    pub parent: Option<Option<u64>>,
    /// 0 private, 1 unlisted, 2 public.
    pub is_public: Option<u8>,
    /// MD5 hex of an access password.
    pub access_password: Option<&'a str>,
}

/// Form fields of one request.
type Params = Vec<(&'static str, String)>;

/// The token one attempt of a request carries, and how long it had been unused. An upload
/// writes its token at the end of its body and may take a newer one than it was given, so the
/// attempt records which one the server saw.
#[derive(Clone)]
pub(crate) struct Carried(Arc<crate::sync::Mutex<(Arc<Token>, Duration)>>);

impl Carried {
    /// `token`, about to be sent.
    fn new(token: Arc<Token>) -> Self {
        let idle = token.sending();
        Carried(Arc::new(crate::sync::Mutex::new((token, idle))))
    }

    /// The token carried.
    pub fn token(&self) -> Arc<Token> {
        Arc::clone(&self.0.lock().0)
    }

    /// The token carried and how long it had been unused before this request.
    fn used(&self) -> (Arc<Token>, Duration) {
        let carried = self.0.lock();
        (Arc::clone(&carried.0), carried.1)
    }

    /// Carries `token` instead.
    fn set(&self, token: Arc<Token>) {
        let idle = token.sending();
        *self.0.lock() = (token, idle);
    }
}

/// A folder reference as the move and copy endpoints want it: the id, or the literal `null`
/// for the root (`0` and the empty string are refused).
/// What an API URL looks like, for messages about a wrong one.
const EXAMPLE_URL: &str = "https://www.example.com/api/v2/";

fn folder_param(folder: Option<u64>) -> String {
    folder.map_or_else(|| "null".to_owned(), |id| id.to_string())
}

impl Client {
    /// A client for the server and account `config` names. Nothing is sent until the first
    /// call.
    pub fn new(config: ClientConfig) -> Result<Client> {
        let mut base = Url::parse(config.base_url.trim()).map_err(|e| {
            RemoteError::InvalidInput(format!(
                "{:?} is not a URL ({e}); the API URL looks like {EXAMPLE_URL}",
                redact(&config.base_url)
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") || !base.has_host() {
            return Err(RemoteError::InvalidInput(format!(
                "{:?} is not an http or https URL; the API URL looks like {EXAMPLE_URL}",
                redact(&config.base_url)
            )));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeouts.connect)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_nodelay(true)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| RemoteError::InvalidInput(format!("HTTP client: {}", describe(&e))))?;
        let links = LinkCache::new(config.download_url_cache, config.download_url_ttl);
        let session = Session::new(config.token.clone());
        let concurrency = Concurrency::new(config.concurrency);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                config,
                session,
                links,
                metrics: Metrics::default(),
                concurrency,
            }),
        })
    }

    /// How many calls are in flight and may be, for `yetifs status`.
    pub fn concurrency(&self) -> ConcurrencyStats {
        self.inner.concurrency.stats()
    }

    /// What this client (and its clones) sent so far and how it went.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The settings this client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Makes sure the client holds a token, authorizing if it has none; returns the account id.
    pub async fn authorize(&self) -> Result<u64> {
        retry::run(&self.inner.config.retry, Safety::Idempotent, || {
            self.token().map_err(Failure::not_sent)
        })
        .await
        .map(|token| token.account_id)
    }

    /// Ends the current token on the server (`/disable_access_token`). A token the server no
    /// longer knows counts as ended.
    pub async fn disable_access_token(&self) -> Result<()> {
        let Ok(Some(token)) = self.inner.session.current() else {
            return Ok(());
        };
        let outcome = self
            .send_form("disable_access_token", &with_token(&token, Vec::new()))
            .await;
        self.inner.session.forget();
        match outcome {
            Ok(_)
            | Err(Failure {
                error: RemoteError::Token(_),
                ..
            }) => Ok(()),
            Err(failure) => Err(failure.error),
        }
    }

    /// `account/info`: the account.
    pub async fn account_info(&self) -> Result<Account> {
        data(
            self.call("account/info", Vec::new(), Safety::Idempotent)
                .await?,
        )
    }

    /// `account/package`: the package's limits.
    pub async fn account_package(&self) -> Result<Package> {
        data(
            self.call("account/package", Vec::new(), Safety::Idempotent)
                .await?,
        )
    }

    /// `folder/listing`: everything in `parent` (`None`: the root).
    pub async fn folder_listing(&self, parent: Option<u64>) -> Result<FolderListing> {
        let params = parent
            .map(|id| vec![("parent_folder_id", id.to_string())])
            .unwrap_or_default();
        data(
            self.call("folder/listing", params, Safety::Idempotent)
                .await?,
        )
    }

    /// `folder/info`: one folder.
    pub async fn folder_info(&self, id: u64) -> Result<Folder> {
        let params = vec![("folder_id", id.to_string())];
        data(self.call("folder/info", params, Safety::Idempotent).await?)
    }

    /// `folder/create`: a new folder `name` in `parent` (`None`: the root). Not retried once
    /// sent: a repeat would create a second folder.
    pub async fn folder_create(
        &self,
        parent: Option<u64>,
        name: &str,
        is_public: Option<u8>,
    ) -> Result<Folder> {
        let mut params = vec![("folder_name", name.to_owned())];
        if let Some(parent) = parent {
            params.push(("parent_id", parent.to_string()));
        }
        if let Some(level) = is_public {
            params.push(("is_public", level.to_string()));
        }
        data(self.call("folder/create", params, Safety::Once).await?)
    }

    /// `folder/edit`: renames, moves or re-shares a folder.
    pub async fn folder_edit(&self, id: u64, edit: &FolderEdit<'_>) -> Result<Folder> {
        let mut params = vec![("folder_id", id.to_string())];
        if let Some(name) = edit.name {
            params.push(("folder_name", name.to_owned()));
        }
        if let Some(parent) = edit.parent {
            params.push(("parent_id", folder_param(parent)));
        }
        if let Some(level) = edit.is_public {
            params.push(("is_public", level.to_string()));
        }
        if let Some(password) = edit.access_password {
            params.push(("access_password", password.to_owned()));
        }
        data(self.call("folder/edit", params, Safety::Idempotent).await?)
    }

    /// `folder/move`: moves a folder under `parent` (`None`: the root). The server does not
    /// refuse cycles; the caller must.
    pub async fn folder_move(&self, id: u64, parent: Option<u64>) -> Result<Folder> {
        let params = vec![
            ("folder_id", id.to_string()),
            ("new_parent_folder_id", folder_param(parent)),
        ];
        data(self.call("folder/move", params, Safety::Idempotent).await?)
    }

    /// `folder/delete`: moves a folder, its subfolders and their files to the trash.
    pub async fn folder_delete(&self, id: u64) -> Result<()> {
        let params = vec![("folder_id", id.to_string())];
        self.call("folder/delete", params, Safety::Idempotent)
            .await
            .map(drop)
    }

    /// `file/info`: one file, with its upload date.
    pub async fn file_info(&self, id: u64) -> Result<FileInfo> {
        let params = vec![("file_id", id.to_string())];
        data(self.call("file/info", params, Safety::Idempotent).await?)
    }

    /// `file/edit`: renames a file, changes its type, or moves it (`folder: Some(None)` moves it
    /// to the root, which works where `file/move` to the root does not).
    pub async fn file_edit(&self, id: u64, edit: &FileEdit<'_>) -> Result<FileInfo> {
        let mut params = vec![("file_id", id.to_string())];
        if let Some(name) = edit.filename {
            params.push(("filename", name.to_owned()));
        }
        if let Some(file_type) = edit.file_type {
            params.push(("fileType", file_type.to_owned()));
        }
        if let Some(folder) = edit.folder {
            params.push(("folder_id", folder_param(folder)));
        }
        data(self.call("file/edit", params, Safety::Idempotent).await?)
    }

    /// `file/move`: moves a file into `folder`. On 4.x servers a move to the root (`None`)
    /// loses the file from every listing; use [`Client::file_edit`] for that.
    pub async fn file_move(&self, id: u64, folder: Option<u64>) -> Result<FileInfo> {
        let params = vec![
            ("file_id", id.to_string()),
            ("new_parent_folder_id", folder_param(folder)),
        ];
        data(self.call("file/move", params, Safety::Idempotent).await?)
    }

    /// `file/copy`: copies a file on the server into `folder`. Needs the session cookie of
    /// `/authorize`, which the cookie jar keeps. Not retried once sent.
    pub async fn file_copy(&self, id: u64, folder: Option<u64>) -> Result<CopyReply> {
        let params = vec![
            ("file_id", id.to_string()),
            ("copy_to_folder_id", folder_param(folder)),
        ];
        parse(
            "file/copy",
            Value::Object(self.call("file/copy", params, Safety::Once).await?),
        )
    }

    /// `file/delete`: moves a file to the trash.
    pub async fn file_delete(&self, id: u64) -> Result<FileInfo> {
        let params = vec![("file_id", id.to_string())];
        data(self.call("file/delete", params, Safety::Idempotent).await?)
    }

    /// `file/download` by file id: a download URL valid for 24 hours.
    pub async fn file_download(&self, id: u64) -> Result<DownloadLink> {
        let params = vec![("file_id", id.to_string())];
        data(
            self.call("file/download", params, Safety::Idempotent)
                .await?,
        )
    }

    /// `file/download` by short url code (not every host accepts it).
    pub async fn file_download_by_short_url(&self, short_url: &str) -> Result<DownloadLink> {
        let params = vec![("short_url", short_url.to_owned())];
        data(
            self.call("file/download", params, Safety::Idempotent)
                .await?,
        )
    }

    /// `file/url_upload_add`: asks the server to fetch `url` into `folder` (not every host
    /// offers it).
    pub async fn url_upload_add(
        &self,
        url: &str,
        folder: Option<u64>,
    ) -> Result<UrlUploadScheduled> {
        use base64::Engine as _;
        let mut params = vec![(
            "file_url_base64",
            base64::engine::general_purpose::STANDARD.encode(url),
        )];
        if let Some(folder) = folder {
            params.push(("folder_id", folder.to_string()));
        }
        data(
            self.call("file/url_upload_add", params, Safety::Once)
                .await?,
        )
    }

    /// `file/url_upload_status`: how a scheduled URL upload is doing.
    pub async fn url_upload_status(&self, scheduled_item_id: u64) -> Result<UrlUploadStatus> {
        let params = vec![("scheduled_item_id", scheduled_item_id.to_string())];
        data(
            self.call("file/url_upload_status", params, Safety::Idempotent)
                .await?,
        )
    }

    /// `file/upload`: streams the local file `source` into `folder` as `name`. Returns what the
    /// server stored, whose name may differ (servers drop a leading dot, quotes, path parts, and
    /// number duplicates). Retried only when the server cannot have stored it — a refused token
    /// is such a case: the file is opened and sent again in full. The token goes at the end of
    /// the body, where the server reads it. Empty files are refused here, as every server
    /// refuses them.
    pub async fn file_upload(
        &self,
        folder: Option<u64>,
        name: &str,
        source: &Path,
    ) -> Result<UploadedFile> {
        let length = tokio::fs::metadata(source).await?.len();
        if length == 0 {
            return Err(RemoteError::InvalidInput(
                "empty files cannot be uploaded (the server refuses 0 bytes)".to_owned(),
            ));
        }
        let timeouts = &self.inner.config.timeouts;
        let timeout =
            timeouts.request + Duration::from_secs(length / timeouts.upload_min_rate.max(1));
        let filename = multipart_filename(name);
        let url = self.endpoint("file/upload")?;
        let progress = self.inner.metrics.upload_started(name, length);
        let payload = retry::run(&self.inner.config.retry, Safety::Once, || {
            self.authorized(|carried| {
                let url = url.clone();
                let filename = filename.clone();
                let sent = progress.sent();
                async move {
                    let file = tokio::fs::File::open(source)
                        .await
                        .map_err(|e| Failure::not_sent(e.into()))?;
                    sent.store(0, Ordering::Relaxed);
                    // Large reads: `tokio::fs::File` hands every read to the blocking pool, so
                    // the default 4 KiB chunks cost a thread hop per 4 KiB uploaded.
                    let chunks =
                        ReaderStream::with_capacity(file, UPLOAD_CHUNK).inspect_ok(move |chunk| {
                            sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        });
                    let content = Body::wrap_stream(chunks);
                    let part = Part::stream_with_length(content, length)
                        .file_name(filename)
                        .mime_str("application/octet-stream")
                        .map_err(|e| Failure::not_sent(transport(&e)))?;
                    let given = carried.token();
                    // The server checks the token once the whole body is in, so it goes last,
                    // taken when the file's bytes are sent: the token of that moment.
                    let token_field = {
                        let client = self.clone();
                        let carried = carried.clone();
                        let body_started = Instant::now();
                        futures_util::stream::once(async move {
                            let token = client.token_at_end_of_upload(&carried, body_started).await;
                            Ok::<_, std::io::Error>(token.access_token.expose().to_owned())
                        })
                    };
                    let token_length = given.access_token.expose().len() as u64;
                    let form = Form::new()
                        .part("upload_file", part)
                        .text("account_id", given.account_id.to_string())
                        .text(
                            "folder_id",
                            folder.map(|f| f.to_string()).unwrap_or_default(),
                        )
                        .part(
                            "access_token",
                            Part::stream_with_length(Body::wrap_stream(token_field), token_length),
                        );
                    let response = self
                        .inner
                        .http
                        .post(url)
                        .multipart(form)
                        .timeout(timeout)
                        .send()
                        .await
                        .map_err(|e| send_failure(&e));
                    let reply = match response {
                        Ok(response) => read_reply(response, Context::Call).await,
                        Err(failure) => Err(failure),
                    };
                    self.inner.metrics.record(
                        "file/upload",
                        reply.as_ref().map(drop).map_err(|f| &f.error),
                    );
                    reply
                }
            })
        })
        .await;
        let stored = payload.and_then(|payload| checked_upload(payload, name, length));
        progress.finish(stored.as_ref().map(drop));
        stored
    }

    /// Sends `params` to `path` with the shared token, renewing it once if it died, retrying
    /// as `safety` allows.
    async fn call(&self, path: &'static str, params: Params, safety: Safety) -> Result<Payload> {
        retry::run(&self.inner.config.retry, safety, || {
            self.authorized(|carried| {
                let form = with_token(&carried.token(), params.clone());
                async move { self.send_form(path, &form).await }
            })
        })
        .await
    }

    /// One attempt of a call: `send` with the current token; while the server says the token
    /// is dead, a single-flight renewal (paced: another client may be taking the token) and a
    /// resend, until the token policy's deadline. The server refuses a dead token before it
    /// acts, so even a one-shot request (an upload) may be resent.
    pub(crate) async fn authorized<T, F, Fut>(&self, send: F) -> Result<T, Failure>
    where
        F: Fn(Carried) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut token = self.token().await.map_err(Failure::not_sent)?;
        let mut give_up = None;
        loop {
            let carried = Carried::new(token);
            let message = match send(carried.clone()).await {
                Ok(value) => {
                    carried.token().accepted();
                    return Ok(value);
                }
                Err(Failure {
                    error: RemoteError::Token(message),
                    ..
                }) => message,
                Err(other) => return Err(other),
            };
            let (used, idle) = carried.used();
            self.note_refusal(&used, idle);
            let deadline = self.inner.config.token.refused_deadline;
            let give_up = *give_up.get_or_insert_with(|| Instant::now() + deadline);
            match self.renew(Some(used.generation), Some(give_up)).await {
                Ok(Renewed::Token(fresh)) => token = fresh,
                Ok(Renewed::TooLate) => {
                    log::warn!(
                        "no access token lasted long enough for a request within {deadline:?} \
                         ({message}); giving up on it"
                    );
                    return Err(Failure::from(RemoteError::Token(message)));
                }
                Err(error) => return Err(Failure::not_sent(error)),
            }
        }
    }

    /// The token to write at the end of an upload's body, which was given `carried` and began
    /// at `body_started`: the newest this client has. If other clients have been taking the
    /// token and the body took a while, the token is taken back first (paced like any
    /// `/authorize`), so that it is still alive when the server checks it a moment later; a
    /// long upload would otherwise fail whenever another client is busy. The token used is
    /// recorded in `carried`; one of another length than was given cannot be used.
    async fn token_at_end_of_upload(&self, carried: &Carried, body_started: Instant) -> Arc<Token> {
        let given = carried.token();
        let session = &self.inner.session;
        let policy = &self.inner.config.token;
        let young = policy.first_holdoff / 2;
        let newest = match session.current() {
            Ok(Some(current))
                if body_started.elapsed() >= young
                    && current.age() >= young
                    && session.contested_since(body_started) =>
            {
                self.renew(Some(current.generation), None).await.ok()
            }
            Ok(Some(current)) => Some(Renewed::Token(current)),
            Ok(None) => self.renew(None, None).await.ok(),
            Err(_) => None,
        };
        match newest {
            Some(Renewed::Token(token))
                if token.generation != given.generation
                    && token.access_token.expose().len() == given.access_token.expose().len() =>
            {
                carried.set(Arc::clone(&token));
                token
            }
            _ => given,
        }
    }

    /// Records a refusal of `token` (unused for `idle` before the request): counted and logged
    /// when another client took it.
    fn note_refusal(&self, token: &Token, idle: Duration) {
        match self
            .inner
            .session
            .refused(token, idle, rand::random::<f64>())
        {
            Refusal::Known => {}
            Refusal::Expired => {
                log::info!("the access token expired after {idle:?} unused; authorizing again");
            }
            Refusal::Taken { holdoff } => {
                if let Some(count) = self.inner.metrics.token_taken() {
                    log::warn!(
                        "{} (the server keeps one token per account, and several mounts or \
                         programs use this account)",
                        takeover_summary(count)
                    );
                }
                log::debug!("access token taken; authorizing again in {holdoff:?}");
            }
        }
    }

    /// The shared token, authorizing if there is none.
    async fn token(&self) -> Result<Arc<Token>> {
        if let Some(token) = self.inner.session.current()? {
            return Ok(token);
        }
        match self.renew(None, None).await? {
            Renewed::Token(token) => Ok(token),
            Renewed::TooLate => Err(RemoteError::Token(
                "no access token could be had in time".to_owned(),
            )),
        }
    }

    /// A token newer than generation `dead` (any, with `None`), or `TooLate` if the next
    /// `/authorize` may not go before `give_up`. Runs as a task of its own, so that a caller
    /// that gives up (a timeout, an interrupted read) never leaves a token issued and unknown:
    /// that would take the token from the account's other clients for nothing.
    async fn renew(&self, dead: Option<u64>, give_up: Option<Instant>) -> Result<Renewed> {
        let _waiting = self.inner.metrics.waiting_for_token();
        let client = self.clone();
        tokio::spawn(async move {
            let session = &client.inner.session;
            session
                .renew(dead, give_up, || client.authorize_request())
                .await
        })
        .await
        .unwrap_or_else(|e| {
            Err(RemoteError::Transport(format!(
                "renewing the access token failed: {e}"
            )))
        })
    }

    /// One `/authorize` request with the configured credentials.
    async fn authorize_request(&self) -> Result<Authorization> {
        let url = self.endpoint("authorize")?;
        let sent = self
            .inner
            .http
            .post(url)
            .form(&self.inner.config.credentials.form())
            .timeout(self.inner.config.timeouts.request)
            .send()
            .await
            .map_err(|e| transport(&e));
        let reply = match sent {
            Ok(response) => read_reply(response, Context::Authorize)
                .await
                .map_err(|f| f.error),
            Err(e) => Err(e),
        };
        self.inner
            .metrics
            .record("authorize", reply.as_ref().map(drop));
        data(reply?)
    }

    /// Posts a form to `path` and decodes the reply.
    async fn send_form(&self, path: &str, form: &Params) -> Result<Payload, Failure> {
        let permit = self.inner.concurrency.acquire().await;
        let response = self
            .inner
            .http
            .post(self.endpoint(path)?)
            .form(form)
            .timeout(self.inner.config.timeouts.request)
            .send()
            .await
            .map_err(|e| send_failure(&e));
        let reply = match response {
            Ok(response) => read_reply(response, Context::Call).await,
            Err(failure) => Err(failure),
        };
        let outcome = reply.as_ref().map(drop).map_err(|f| &f.error);
        self.inner.metrics.record(path, outcome);
        permit.finish(load_signal(outcome));
        reply
    }

    /// The URL of an endpoint.
    fn endpoint(&self, path: &str) -> Result<Url> {
        self.inner
            .base
            .join(path)
            .map_err(|e| RemoteError::InvalidInput(format!("endpoint {path}: {e}")))
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &redact(self.inner.base.as_str()))
            .finish_non_exhaustive()
    }
}

/// What a call's outcome says about the server's load: an HTTP 429 or 5xx, or no reply on an
/// established connection (a timeout, a reset), is too much; any reply the API wrote is not.
fn load_signal(outcome: Result<(), &RemoteError>) -> Signal {
    match outcome {
        Err(RemoteError::Http {
            status,
            retry_after,
            ..
        }) if *status == 429 || *status >= 500 => Signal::Overloaded {
            retry_after: retry_after.map(Duration::from_secs),
        },
        Err(RemoteError::Transport(_)) => Signal::Overloaded { retry_after: None },
        _ => Signal::Answered,
    }
}

/// `params` preceded by the token fields every call needs.
fn with_token(token: &Token, params: Params) -> Params {
    let mut form = vec![
        ("access_token", token.access_token.expose().to_owned()),
        ("account_id", token.account_id.to_string()),
    ];
    form.extend(params);
    form
}

/// Reads a whole API reply and decodes it.
async fn read_reply(response: reqwest::Response, context: Context) -> Result<Payload, Failure> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|e| transport(&e))?;
    reply::decode(
        &RawReply {
            status,
            location: header(&headers, LOCATION),
            retry_after: header(&headers, RETRY_AFTER)
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
            body: &body,
        },
        context,
    )
    .map_err(Failure::from)
}

/// The stored file of an upload reply, checked: an error the server put in the reply, or a
/// size other than the `length` sent, is a failure.
fn checked_upload(payload: Payload, name: &str, length: u64) -> Result<UploadedFile> {
    let mut stored = uploaded(payload)?;
    if let Some(error) = stored.error.as_deref().filter(|e| !e.trim().is_empty()) {
        return Err(reply::classify(error, Context::Call));
    }
    match stored.size {
        Some(size) if size != length => Err(RemoteError::Integrity(format!(
            "sent {length} bytes of {name:?}, the server stored {size}"
        ))),
        _ => {
            stored.size = Some(length);
            Ok(stored)
        }
    }
}

/// A header's value as text.
pub(crate) fn header(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The `data` member of a reply, as `T`.
fn data<T: DeserializeOwned>(mut payload: Payload) -> Result<T> {
    match payload.remove("data") {
        Some(value) => parse("data", value),
        None => Err(RemoteError::Unparseable(
            "the reply has no \"data\" member".to_owned(),
        )),
    }
}

/// `value` as `T`, or an error naming `what`.
fn parse<T: DeserializeOwned>(what: &str, value: Value) -> Result<T> {
    serde_json::from_value(value)
        .map_err(|e| RemoteError::Unparseable(format!("{what}: {}", redact(&e.to_string()))))
}

/// The one stored file of an upload reply (`data` is a list of one; some servers send the
/// object alone).
fn uploaded(mut payload: Payload) -> Result<UploadedFile> {
    match payload.remove("data") {
        Some(Value::Array(items)) => match items.into_iter().next() {
            Some(item) => parse("upload reply", item),
            None => Err(RemoteError::Unparseable(
                "the upload reply lists no file".to_owned(),
            )),
        },
        Some(item @ Value::Object(_)) => parse("upload reply", item),
        _ => Err(RemoteError::Unparseable(
            "the upload reply has no file data".to_owned(),
        )),
    }
}

/// The filename to put in the multipart header. Servers strip everything up to the last `/` or
/// `\` and remove quotes and line breaks; doing that here keeps the header well-formed, and the
/// caller learns the stored name from the reply.
fn multipart_filename(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '"' | '\r' | '\n'))
        .map(|c| if matches!(c, '/' | '\\') { '_' } else { c })
        .collect()
}

/// A failed send: whether the request can have reached the server decides whether a one-shot
/// call may be retried.
fn send_failure(e: &reqwest::Error) -> Failure {
    Failure {
        error: transport(e),
        reached_server: !e.is_connect(),
    }
}

/// A `reqwest` error as a redacted transport error, with its causes.
pub(crate) fn transport(e: &reqwest::Error) -> RemoteError {
    let mut text = describe(e);
    if text.contains("InvalidContentType") || text.contains("corrupt message") {
        text.push_str(" (the server speaks plain http on this port: use an http:// URL)");
    }
    if e.is_connect() {
        RemoteError::Unreachable(text)
    } else if e.is_timeout() {
        RemoteError::Transport(format!("timed out: {text}"))
    } else {
        RemoteError::Transport(text)
    }
}

/// An error and its chain of causes on one line, secrets removed.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    redact(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_literal_null_for_move_and_copy() {
        assert_eq!(folder_param(None), "null");
        assert_eq!(folder_param(Some(42)), "42");
    }

    #[test]
    fn multipart_filenames_keep_unicode_and_lose_what_breaks_the_header() {
        assert_eq!(multipart_filename("ünï 日本.txt"), "ünï 日本.txt");
        assert_eq!(multipart_filename("a\"b\"\r\n.md"), "ab.md");
        assert_eq!(multipart_filename("dir/sub\\x.txt"), "dir_sub_x.txt");
    }

    #[test]
    fn an_upload_reply_is_read_as_a_list_or_as_a_single_object() {
        let list: Payload =
            serde_json::from_str(r#"{"data":[{"file_id":"3","name":"a"}]}"#).unwrap();
        assert_eq!(uploaded(list).unwrap().file_id, 3);
        let single: Payload = serde_json::from_str(r#"{"data":{"file_id":4,"name":"b"}}"#).unwrap();
        assert_eq!(uploaded(single).unwrap().file_id, 4);
        let empty: Payload = serde_json::from_str(r#"{"data":[]}"#).unwrap();
        assert!(matches!(uploaded(empty), Err(RemoteError::Unparseable(_))));
    }

    #[test]
    fn a_base_url_without_final_slash_still_reaches_the_endpoints() {
        let config = ClientConfig::new(
            "https://example.test/api/v2",
            super::super::config::Credentials::keys("a", "b"),
        );
        let client = Client::new(config).unwrap();
        assert_eq!(
            client.endpoint("file/info").unwrap().as_str(),
            "https://example.test/api/v2/file/info"
        );
    }

    #[test]
    fn a_base_url_that_is_not_http_is_refused() {
        let config = ClientConfig::new(
            "ftp://example.test/api/v2/",
            super::super::config::Credentials::keys("a", "b"),
        );
        assert!(matches!(
            Client::new(config),
            Err(RemoteError::InvalidInput(_))
        ));
    }
}
