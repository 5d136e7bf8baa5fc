//! The client against small scripted HTTP servers that misbehave on purpose: dead tokens under
//! concurrency, refused keys, rate limits, server faults, lost cookies, uploads, and downloads
//! with every broken range behaviour real servers show.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Form, Json, Router};
use futures_util::{stream, StreamExt};
use serde_json::{json, Value};
use yetifs::api::{Client, ClientConfig, Credentials, RetryPolicy, TokenPolicy};
use yetifs::remote::Remote;
use yetifs::remote::RemoteError;

const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const TOKEN_ERROR: &str =
    "Could not validate access_token and account_id, please reauthenticate or try again.";

/// One request the scripted server received.
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    form: HashMap<String, String>,
    cookie: Option<String>,
}

/// What a scripted API answers to a form request on `path`.
type Script = dyn Fn(&Hit, u32) -> Response + Send + Sync;

/// The state of a scripted server: its script and what it received.
struct Server {
    script: Box<Script>,
    hits: Mutex<Vec<Hit>>,
    counts: Mutex<HashMap<String, u32>>,
}

impl Server {
    fn hits(&self, path: &str) -> Vec<Hit> {
        let hits = self.hits.lock().unwrap();
        hits.iter().filter(|h| h.path == path).cloned().collect()
    }

    fn count(&self, path: &str) -> u32 {
        self.counts.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn api_handler(
    State(server): State<Arc<Server>>,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let path = uri.path().trim_start_matches("/api/v2/").to_owned();
    let hit = Hit {
        path: path.clone(),
        form,
        cookie: headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let n = {
        let mut counts = server.counts.lock().unwrap();
        let n = counts.entry(path).or_insert(0);
        *n += 1;
        *n
    };
    server.hits.lock().unwrap().push(hit.clone());
    (server.script)(&hit, n)
}

/// Starts a server answering `/api/v2/*` forms with `script` plus the extra `routes`; returns
/// its state and the API base URL.
async fn serve(
    script: impl Fn(&Hit, u32) -> Response + Send + Sync + 'static,
    routes: Router,
) -> (Arc<Server>, String) {
    let server = Arc::new(Server {
        script: Box::new(script),
        hits: Mutex::default(),
        counts: Mutex::default(),
    });
    let api = Router::new()
        .route("/api/v2/{*path}", post(api_handler))
        .with_state(Arc::clone(&server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api.merge(routes)).await.unwrap() });
    (server, format!("http://{addr}/api/v2/"))
}

fn client(base: &str) -> Client {
    let mut config = ClientConfig::new(base, Credentials::keys(KEY, KEY));
    config.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(5),
    };
    config.token = quick_token_policy();
    config.download_resumes = 3;
    config.timeouts.request = Duration::from_secs(10);
    config.timeouts.read_idle = Duration::from_secs(5);
    Client::new(config).unwrap()
}

/// Token waits short enough for tests, in the proportions of the defaults.
fn quick_token_policy() -> TokenPolicy {
    TokenPolicy {
        refused_deadline: Duration::from_secs(1),
        min_spacing: Duration::from_millis(10),
        first_holdoff: Duration::from_millis(10),
        max_holdoff: Duration::from_millis(40),
        calm: Duration::from_secs(10),
    }
}

fn success(data: Value) -> Response {
    Json(json!({"data": data, "_status": "success", "_datetime": "2026-01-01 00:00:00"}))
        .into_response()
}

fn failure(message: &str) -> Response {
    Json(json!({"status": "error", "response": message, "_datetime": "2026-01-01 00:00:00"}))
        .into_response()
}

fn token(n: u32) -> Response {
    (
        [(header::SET_COOKIE, "filehosting=sess42; path=/")],
        success(json!({"access_token": format!("T{n}"), "account_id": "1"})),
    )
        .into_response()
}

fn empty_listing() -> Response {
    success(json!({"folders": [], "files": []}))
}

fn file_json(id: u64, folder: Option<u64>) -> Value {
    json!({"id": id.to_string(), "filename": "f.bin", "shortUrl": "x", "fileSize": "1000",
           "file_status": "active", "folderId": folder.map(|f| f.to_string()),
           "uploadedDate": "2026-01-01 00:00:00"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_calls_on_a_dead_token_causes_exactly_one_new_authorization() {
    let (server, base) = serve(
        |hit, n| match hit.path.as_str() {
            "authorize" => {
                std::thread::sleep(Duration::from_millis(20));
                token(n)
            }
            _ if hit.form["access_token"] == "T1" => failure(TOKEN_ERROR),
            _ => empty_listing(),
        },
        Router::new(),
    )
    .await;
    let client = client(&base);
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.list_folder(None).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(server.count("authorize"), 2, "one login, one renewal");
}

#[tokio::test]
async fn a_server_refusing_every_token_fails_the_call_at_the_deadline_with_logins_spaced() {
    let (server, base) = serve(
        |hit, n| match hit.path.as_str() {
            "authorize" => token(n),
            _ => failure(TOKEN_ERROR),
        },
        Router::new(),
    )
    .await;
    let policy = quick_token_policy();
    let err = client(&base).list_folder(Some(3)).await.unwrap_err();
    assert!(matches!(err, RemoteError::Token(_)), "{err:?}");
    let logins = server.count("authorize");
    // The first login, then renewals no closer than the minimum spacing until the deadline.
    let spaced = 2 + (policy.refused_deadline.as_millis() / policy.min_spacing.as_millis()) as u32;
    assert!(
        (3..=spaced).contains(&logins),
        "{logins} logins: renewed, at most {spaced} within the deadline"
    );
    assert_eq!(
        server.count("folder/listing"),
        logins,
        "each token was tried once"
    );
}

#[tokio::test]
async fn refused_keys_are_sent_once_and_later_calls_fail_fast_with_the_same_error() {
    let refusal = "Could not authenticate user. The key pair may be invalid or your account may be locked from too many failed logins.";
    let (server, base) = serve(move |_, _| failure(refusal), Router::new()).await;
    let client = client(&base);
    for _ in 0..3 {
        let err = client.list_folder(None).await.unwrap_err();
        assert!(
            matches!(&err, RemoteError::Auth(m) if m == refusal),
            "{err:?}"
        );
    }
    assert_eq!(server.count("authorize"), 1);
    assert_eq!(server.count("folder/listing"), 0);
}

#[tokio::test]
async fn a_rate_limited_call_waits_for_retry_after_then_succeeds() {
    let (server, base) = serve(
        |hit, n| match (hit.path.as_str(), n) {
            ("authorize", _) => token(n),
            (_, 1) => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "slow down",
            )
                .into_response(),
            _ => empty_listing(),
        },
        Router::new(),
    )
    .await;
    let call = tokio::spawn(async move { client(&base).list_folder(None).await });
    // Well within the second the server asked for, it is not sent again yet. (Client and
    // server talk over a real socket: the runtime's clock cannot be paused here.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server.count("folder/listing") <= 1,
        "sent again before Retry-After"
    );
    call.await.unwrap().unwrap();
    assert_eq!(server.count("folder/listing"), 2);
}

#[tokio::test]
async fn server_faults_are_retried_for_reads_but_not_for_folder_creation() {
    let (server, base) = serve(
        |hit, n| match (hit.path.as_str(), n) {
            ("authorize", _) => token(n),
            ("folder/listing", 3) => empty_listing(),
            _ => (StatusCode::BAD_GATEWAY, "<html>Bad Gateway</html>").into_response(),
        },
        Router::new(),
    )
    .await;
    let client = client(&base);
    client.list_folder(None).await.unwrap();
    assert_eq!(server.count("folder/listing"), 3);
    let err = client.create_folder(None, "new").await.unwrap_err();
    assert!(
        matches!(err, RemoteError::Http { status: 502, .. }),
        "{err:?}"
    );
    assert_eq!(server.count("folder/create"), 1);
}

#[tokio::test]
async fn copy_sends_the_session_cookie_and_a_copy_to_the_root_is_put_there_with_file_edit() {
    let (server, base) = serve(
        |hit, n| match hit.path.as_str() {
            "authorize" => token(n),
            "file/copy" if hit.cookie.as_deref() == Some("filehosting=sess42") => {
                Json(json!({"response": "File successfully copyied.",
                    "original_file": {"data": file_json(9, Some(5))},
                    "new_file": {"data": file_json(18, Some(0))},
                    "_status": "success"}))
                .into_response()
            }
            "file/copy" => failure("Could not find file based on file_id."),
            "file/edit" => success(file_json(18, None)),
            _ => failure("unexpected"),
        },
        Router::new(),
    )
    .await;
    let copy = client(&base).copy_file(9, None).await.unwrap();
    assert_eq!((copy.id, copy.folder), (18, None));
    assert_eq!(
        server.hits("file/copy")[0].form["copy_to_folder_id"],
        "null"
    );
    let edit = &server.hits("file/edit")[0].form;
    assert_eq!(
        (edit["file_id"].as_str(), edit["folder_id"].as_str()),
        ("18", "null")
    );
}

#[tokio::test]
async fn moving_a_file_to_the_root_uses_file_edit_and_to_a_folder_uses_file_move() {
    let (server, base) = serve(
        |hit, n| match hit.path.as_str() {
            "authorize" => token(n),
            "file/edit" => success(file_json(7, None)),
            "file/move" => success(file_json(7, Some(5))),
            "folder/move" => success(json!({"id": "3", "parentId": null, "folderName": "d"})),
            _ => failure("unexpected"),
        },
        Router::new(),
    )
    .await;
    let client = client(&base);
    client.move_file(7, None).await.unwrap();
    client.move_file(7, Some(5)).await.unwrap();
    client.move_folder(3, None).await.unwrap();
    assert_eq!(server.hits("file/edit")[0].form["folder_id"], "null");
    assert_eq!(
        server.hits("file/move")[0].form["new_parent_folder_id"],
        "5"
    );
    assert_eq!(
        server.hits("folder/move")[0].form["new_parent_folder_id"],
        "null"
    );
}

#[tokio::test]
async fn a_missing_endpoint_is_unsupported_on_both_server_generations() {
    let (_, base) = serve(
        |hit, n| match hit.path.as_str() {
            "authorize" => token(n),
            "file/url_upload_add" => {
                (StatusCode::NOT_FOUND, "<div>SYSTEM ERROR</div>").into_response()
            }
            _ => Json(
                json!({"0": "No method found within endpoint (file): url_upload_status",
                             "_status": "error"}),
            )
            .into_response(),
        },
        Router::new(),
    )
    .await;
    let client = client(&base);
    let add = client
        .url_upload_add("https://x/y", None)
        .await
        .unwrap_err();
    assert!(matches!(add, RemoteError::Unsupported(_)), "{add:?}");
    let status = client.url_upload_status(1).await.unwrap_err();
    assert!(matches!(status, RemoteError::Unsupported(_)), "{status:?}");
}

/// How the upload route answers.
type UploadReply = dyn Fn() -> Response + Send + Sync;

/// What the upload route received.
#[derive(Default)]
struct Received {
    fields: HashMap<String, String>,
    order: Vec<String>,
    filename: Option<String>,
    content: Vec<u8>,
}

async fn upload_handler(
    State((received, reply)): State<(Arc<Mutex<Received>>, Arc<UploadReply>)>,
    mut multipart: Multipart,
) -> Response {
    let mut got = Received::default();
    while let Some(field) = multipart.next_field().await.unwrap() {
        let name = field.name().unwrap_or_default().to_owned();
        got.order.push(name.clone());
        if name == "upload_file" {
            got.filename = field.file_name().map(str::to_owned);
            got.content = field.bytes().await.unwrap().to_vec();
        } else {
            got.fields.insert(name, field.text().await.unwrap());
        }
    }
    *received.lock().unwrap() = got;
    reply()
}

async fn upload_server(
    reply: impl Fn() -> Response + Send + Sync + 'static,
) -> (Arc<Mutex<Received>>, String) {
    let received = Arc::new(Mutex::new(Received::default()));
    let reply: Arc<UploadReply> = Arc::new(reply);
    let routes = Router::new()
        .route("/api/v2/file/upload", post(upload_handler))
        .with_state((Arc::clone(&received), reply));
    let (_, base) = serve(|_, n| token(n), routes).await;
    (received, base)
}

#[tokio::test]
async fn an_upload_streams_the_file_and_returns_the_name_the_server_chose() {
    let (received, base) = upload_server(|| {
        Json(
            json!({"response": "File uploaded", "data": [{"name": "hello (2).txt", "size": "38",
            "file_id": "31", "short_url": "1Z", "url": "http://h/1Z/hello.txt", "error": null}],
            "_status": "success"}),
        )
        .into_response()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hello.txt");
    let content = b"hello world, this is thirty-eight byte".to_vec();
    assert_eq!(content.len(), 38);
    std::fs::write(&path, &content).unwrap();
    let entry = client(&base)
        .upload(Some(7), "hello.txt", &path)
        .await
        .unwrap();
    assert_eq!(
        (entry.id, entry.name.as_str(), entry.size),
        (31, "hello (2).txt", 38)
    );
    assert_eq!(entry.folder, Some(7));
    let got = received.lock().unwrap();
    assert_eq!(got.content, content);
    assert_eq!(got.filename.as_deref(), Some("hello.txt"));
    assert_eq!(got.fields["folder_id"], "7");
    assert_eq!(got.fields["access_token"], "T1");
    assert_eq!(
        got.order,
        ["upload_file", "account_id", "folder_id", "access_token"],
        "the server checks the token once the body is in: it goes last"
    );
}

#[tokio::test]
async fn an_upload_refused_for_its_token_is_sent_again_in_full_with_each_fresh_token() {
    let count = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&count);
    let (received, base) = upload_server(move || {
        // Three times another client takes the token before the upload arrives.
        if seen.fetch_add(1, Ordering::SeqCst) < 3 {
            return failure(TOKEN_ERROR);
        }
        success(json!([{"name": "a.bin", "size": 100_000, "file_id": "5", "short_url": "a"}]))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.bin");
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let entry = client(&base).upload(None, "a.bin", &path).await.unwrap();
    assert_eq!((entry.id, entry.size), (5, 100_000));
    assert_eq!(count.load(Ordering::SeqCst), 4);
    let got = received.lock().unwrap();
    assert!(
        got.content == content,
        "the last attempt sent the whole file"
    );
    // Each refusal needs a newer token; a slow machine may see one more renewed on the way.
    let token: u32 = got.fields["access_token"]
        .trim_start_matches('T')
        .parse()
        .unwrap();
    assert!(
        token >= 4,
        "with a token newer than the refused ones, not T{token}"
    );
}

#[tokio::test]
async fn an_upload_the_server_failed_on_is_not_sent_again() {
    let count = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&count);
    let (_, base) = upload_server(move || {
        seen.fetch_add(1, Ordering::SeqCst);
        (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.bin");
    std::fs::write(&path, [1u8; 100]).unwrap();
    let err = client(&base)
        .upload(None, "a.bin", &path)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RemoteError::Http { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_upload_stored_with_another_size_or_a_per_file_error_is_an_error() {
    let (_, base) = upload_server(|| {
        success(json!([{"name": "a.bin", "size": 99, "file_id": "1", "short_url": "a"}]))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.bin");
    std::fs::write(&path, [1u8; 100]).unwrap();
    let err = client(&base)
        .upload(None, "a.bin", &path)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Integrity(_)), "{err:?}");

    let (_, base) = upload_server(|| {
        success(json!([{"name": "a.bin", "file_id": "1", "error": "File is too big"}]))
    })
    .await;
    let err = client(&base)
        .upload(None, "a.bin", &path)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::TooLarge(_)), "{err:?}");
}

#[tokio::test]
async fn an_empty_file_is_refused_without_asking_the_server() {
    let (server, base) = serve(|_, n| token(n), Router::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty");
    std::fs::write(&path, b"").unwrap();
    let err = client(&base)
        .upload(None, "empty", &path)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::InvalidInput(_)), "{err:?}");
    assert_eq!(server.count("authorize"), 0);
}

// ----- downloads -----

const SIZE: usize = 1000;

fn content() -> Vec<u8> {
    (0..SIZE).map(|i| (i * 7 % 251) as u8).collect()
}

/// How the file server answers one GET: given the Range header and the request's number.
type FileServer = dyn Fn(Option<&str>, &Uri, u32) -> Response + Send + Sync;

/// What the file route saw.
#[derive(Default)]
struct Downloads {
    ranges: Mutex<Vec<Option<String>>>,
    count: AtomicU32,
}

/// A server whose `file/download` hands out links to `/dl/...` answered by `files`; `token_of`
/// gives the download token of the n-th link.
async fn download_server(
    files: impl Fn(Option<&str>, &Uri, u32) -> Response + Send + Sync + 'static,
    token_of: fn(u32) -> &'static str,
) -> (Arc<Server>, Arc<Downloads>, String) {
    let seen = Arc::new(Downloads::default());
    let files: Arc<FileServer> = Arc::new(files);
    let state = (Arc::clone(&seen), files);
    let routes = Router::new()
        .route(
            "/dl/{*rest}",
            any(
                |State((seen, files)): State<(Arc<Downloads>, Arc<FileServer>)>,
                 uri: Uri,
                 headers: HeaderMap| async move {
                    let range = headers
                        .get(header::RANGE)
                        .map(|v| v.to_str().unwrap().to_owned());
                    seen.ranges.lock().unwrap().push(range.clone());
                    let n = seen.count.fetch_add(1, Ordering::SeqCst) + 1;
                    files(range.as_deref(), &uri, n)
                },
            ),
        )
        .with_state(state);
    let origin = Arc::new(Mutex::new(String::new()));
    let origin_for_script = Arc::clone(&origin);
    let (server, base) = serve(
        move |hit, n| match hit.path.as_str() {
            "authorize" => token(n),
            "file/download" => success(json!({"file_id": hit.form["file_id"], "filename": "f.bin",
                "download_url": format!("{}/dl/x/f.bin?download_token={}",
                    origin_for_script.lock().unwrap(), token_of(n))})),
            _ => failure("unexpected"),
        },
        routes,
    )
    .await;
    *origin.lock().unwrap() = base.trim_end_matches("/api/v2/").to_owned();
    (server, seen, base)
}

fn always_good(_: u32) -> &'static str {
    "good"
}

/// The start of a `bytes=a-` or `bytes=a-b` header.
fn range_start(range: Option<&str>) -> Option<usize> {
    range?
        .strip_prefix("bytes=")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// A 4.x server behind nginx: ranges starting at 0 get the whole file; others get a 206 whose
/// body starts right and is cut at the announced length.
fn stock_server(range: Option<&str>, _: &Uri, _: u32) -> Response {
    let data = content();
    match range_start(range) {
        Some(start) if start > 0 => {
            let span = range.unwrap().trim_start_matches("bytes=");
            let end = match span.split_once('-') {
                Some((_, "")) | None => SIZE - 1,
                Some((_, last)) => last.parse::<usize>().unwrap().min(SIZE - 1),
            };
            (
                StatusCode::PARTIAL_CONTENT,
                [(header::CONTENT_RANGE, format!("bytes {start}-{end}/{SIZE}"))],
                data[start..=end].to_vec(),
            )
                .into_response()
        }
        _ => (
            [(
                header::CONTENT_RANGE,
                format!("bytes 0-{}/{SIZE}", SIZE - 1),
            )],
            data,
        )
            .into_response(),
    }
}

async fn read_all(client: &Client, range: std::ops::Range<u64>) -> Result<Vec<u8>, RemoteError> {
    let mut stream = client.read(5, SIZE as u64, range).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[tokio::test]
async fn reads_from_a_stock_server_yield_exactly_the_asked_bytes_and_never_ask_from_zero() {
    let (_, seen, base) = download_server(stock_server, always_good).await;
    let client = client(&base);
    let data = content();
    for range in [0..10, 0..1000, 100..200, 990..1000, 999..1000, 1..2] {
        let got = read_all(&client, range.clone()).await.unwrap();
        assert_eq!(
            got,
            data[range.start as usize..range.end as usize],
            "{range:?}"
        );
    }
    assert!(read_all(&client, 500..500).await.unwrap().is_empty());
    let ranges = seen.ranges.lock().unwrap();
    assert!(
        ranges.iter().flatten().all(|r| !r.starts_with("bytes=0")),
        "{ranges:?}"
    );
    assert!(
        ranges.contains(&Some("bytes=990-".to_owned())),
        "{ranges:?}"
    );
    assert!(
        ranges.contains(&Some("bytes=100-199".to_owned())),
        "{ranges:?}"
    );
}

#[tokio::test]
async fn a_server_ignoring_ranges_is_read_by_skipping_to_the_start() {
    let (_, _, base) = download_server(|_, _, _| content().into_response(), always_good).await;
    let got = read_all(&client(&base), 300..450).await.unwrap();
    assert_eq!(got, content()[300..450]);
}

#[tokio::test]
async fn a_dropped_connection_resumes_from_the_last_byte_delivered() {
    let (_, seen, base) = download_server(
        |range, uri, n| {
            if n == 1 {
                let head = Bytes::from(content()[..300].to_vec());
                // The first 300 bytes go out; a moment later the connection breaks.
                let body = stream::iter([Ok(head)]).chain(stream::once(async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err(std::io::Error::other("connection reset"))
                }));
                (
                    [(header::CONTENT_LENGTH, SIZE.to_string())],
                    Body::from_stream(body),
                )
                    .into_response()
            } else {
                stock_server(range, uri, n)
            }
        },
        always_good,
    )
    .await;
    let got = read_all(&client(&base), 0..1000).await.unwrap();
    assert_eq!(got, content());
    let ranges = seen.ranges.lock().unwrap();
    assert_eq!(*ranges, vec![None, Some("bytes=300-".to_owned())]);
}

#[tokio::test]
async fn a_redirected_download_fetches_one_fresh_link_and_links_are_otherwise_reused() {
    let (server, _, base) = download_server(
        |range, uri, n| {
            if uri.query() == Some("download_token=stale") {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "/error.html?e=File+can+not+be+located")],
                )
                    .into_response()
            } else {
                stock_server(range, uri, n)
            }
        },
        |n| if n == 1 { "stale" } else { "fresh" },
    )
    .await;
    let client = client(&base);
    assert_eq!(
        read_all(&client, 100..200).await.unwrap(),
        content()[100..200]
    );
    assert_eq!(
        read_all(&client, 200..300).await.unwrap(),
        content()[200..300]
    );
    assert_eq!(
        server.count("file/download"),
        2,
        "one stale link, one fresh, reused"
    );
}

#[tokio::test]
async fn a_link_refused_even_when_fresh_is_an_error() {
    let (server, _, base) = download_server(
        |_, _, _| (StatusCode::FOUND, [(header::LOCATION, "/error.html")]).into_response(),
        always_good,
    )
    .await;
    let err = read_all(&client(&base), 0..10).await.unwrap_err();
    assert!(
        matches!(err, RemoteError::Http { status: 302, .. }),
        "{err:?}"
    );
    assert_eq!(server.count("file/download"), 2);
}

#[tokio::test]
async fn a_reply_that_is_not_the_file_is_refused_after_bounded_retries() {
    let (_, seen, base) =
        download_server(|_, _, _| vec![0u8; 500].into_response(), always_good).await;
    let err = read_all(&client(&base), 0..10).await.unwrap_err();
    assert!(matches!(err, RemoteError::Integrity(_)), "{err:?}");
    assert_eq!(
        seen.count.load(Ordering::SeqCst),
        4,
        "first try and three resumes"
    );
}

#[tokio::test]
async fn a_connection_error_never_shows_the_download_token() {
    let (_, base) = serve(
        |hit, n| match hit.path.as_str() {
            "authorize" => token(n),
            _ => success(json!({"file_id": "5", "filename": "f.bin",
                "download_url": "http://127.0.0.1:1/x/f.bin?download_token=SECRETTOKEN"})),
        },
        Router::new(),
    )
    .await;
    let err = read_all(&client(&base), 0..10).await.unwrap_err();
    // Nothing listens on port 1: the connection is refused, the file server unreachable.
    assert!(matches!(err, RemoteError::Unreachable(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("SECRETTOKEN"), "{err}");
}

#[tokio::test]
async fn a_range_outside_the_file_is_refused() {
    let (_, base) = serve(|_, n| token(n), Router::new()).await;
    let err = client(&base).read(1, 100, 50..101).await.err().unwrap();
    assert!(matches!(err, RemoteError::InvalidInput(_)), "{err:?}");
}
