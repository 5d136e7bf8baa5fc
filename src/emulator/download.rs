//! The file server the `download_url`s point at: `/{shortUrl}[/{name}]?download_token=..`.
//! The name part is ignored, a bad or missing token gets a 302 to an HTML error page, ranges are
//! answered per `ranges.rs`, and the body streams from disk (cut short where the stock server
//! drops the connection, or where a reset fault strikes).
use std::io;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use std::io::{Read, Seek};

use super::blobs::blocking;
use super::ranges;
use super::state::{unix_now, AppState};

/// Bytes read from a blob at a time: large, since every read is a hop to the blocking pool.
const CHUNK: usize = 1024 * 1024;

fn redirect(origin: &str) -> Response {
    let location = format!("{origin}/error.html?e=File+is+not+publicly+available.");
    let mut resp = (StatusCode::FOUND, "").into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    resp
}

/// The page the redirect of a refused download lands on.
pub fn error_page(message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html><head><title>Error</title></head><body><p>{}</p></body></html>",
        message.replace('<', "&lt;")
    );
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    resp
}

/// A body of `send` bytes of `path` from `start`; it fails (dropping the connection) after
/// them when `fail_after` is set. Read in large chunks on the blocking pool, straight into the
/// buffer that is sent (no zeroing, no second copy as through `tokio::fs`).
fn file_body(path: std::path::PathBuf, start: u64, send: u64, fail_after: bool) -> Body {
    struct S {
        file: Option<std::fs::File>,
        path: std::path::PathBuf,
        start: u64,
        left: u64,
        fail_after: bool,
        done: bool,
    }
    let init = S {
        file: None,
        path,
        start,
        left: send,
        fail_after,
        done: false,
    };
    let s = stream::unfold(init, |mut s| async move {
        if s.done {
            return None;
        }
        if s.left == 0 {
            s.done = true;
            return if s.fail_after {
                // Let the bytes already queued reach the client before the connection drops.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Some((
                    Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "connection dropped",
                    )),
                    s,
                ))
            } else {
                None
            };
        }
        let want = (s.left as usize).min(CHUNK);
        let (file, path, start) = (s.file.take(), s.path.clone(), s.start);
        let read = blocking(move || {
            let mut file = match file {
                Some(file) => file,
                None => {
                    let mut file = std::fs::File::open(&path)?;
                    file.seek(io::SeekFrom::Start(start))?;
                    file
                }
            };
            let mut buf = Vec::with_capacity(want);
            (&mut file).take(want as u64).read_to_end(&mut buf)?;
            Ok((file, buf))
        })
        .await;
        match read {
            Ok((_, buf)) if buf.is_empty() => {
                s.done = true;
                Some((
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob shorter than its row",
                    )),
                    s,
                ))
            }
            Ok((file, buf)) => {
                s.file = Some(file);
                s.left -= buf.len() as u64;
                Some((Ok(Bytes::from(buf)), s))
            }
            Err(e) => {
                s.done = true;
                Some((Err(e), s))
            }
        }
    });
    Body::from_stream(s)
}

/// Answers a request outside `/api/v2/`. `reset` makes the body stop part-way (fault).
pub async fn handle(
    st: Arc<AppState>,
    origin: String,
    req: Request<Body>,
    reset: bool,
) -> Response {
    let path = req.uri().path().trim_start_matches('/');
    let short = path.split('/').next().unwrap_or("").to_string();
    let token = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "download_token")
            .map(|(_, v)| v.into_owned())
    });
    let Some(token) = token else {
        return redirect(&origin);
    };
    let file = match st.store.download_token_file(&token, unix_now()) {
        Ok(Some(id)) => st.store.file_any(id),
        Ok(None) => return redirect(&origin),
        Err(e) => Err(e),
    };
    let file = match file {
        Ok(Some(f)) if f.short_url == short => f,
        Ok(_) => return redirect(&origin),
        Err(e) => {
            log::error!("download lookup: {e}");
            return (StatusCode::INTERNAL_SERVER_ERROR, "database error").into_response();
        }
    };
    let size = file.size.max(0) as u64;
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let plan = ranges::plan(st.args.ranges, size, range);
    let head = req.method() == Method::HEAD;
    let (send, fail_after) = if reset && plan.send > 0 {
        (st.faults.cut_point(plan.send), true)
    } else {
        let short_body = plan.content_length.is_some_and(|cl| cl > plan.send);
        (plan.send, short_body)
    };
    let body = if head || plan.status == 416 {
        Body::empty()
    } else {
        if let Err(e) = st.store.count_download(file.id) {
            log::warn!("counting a download: {e}");
        }
        file_body(st.blobs.path(&file.blob), plan.start, send, fail_after)
    };
    let status = StatusCode::from_u16(plan.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) =
        HeaderValue::from_bytes(format!("attachment; filename=\"{}\"", file.name).as_bytes())
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(cr) = plan
        .content_range
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert(header::CONTENT_RANGE, cr);
    }
    if let Some(len) = plan.content_length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    resp
}
