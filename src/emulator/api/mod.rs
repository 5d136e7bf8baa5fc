//! The `/api/v2/` endpoints: request decoding, the PHP session cookie, token checks in the
//! server's order, and dispatch to the file, folder and account actions.
mod account;
mod files;
mod folders;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::blobs::random_hex;
use super::config::Profile;
use super::reply::Shapes;
use super::request::Params;
use super::state::{unix_now, AppState};

/// Name of the PHP session cookie.
const SESSION_COOKIE: &str = "filehosting";

const BAD_TOKEN_ACCOUNT: &str =
    "Could not validate access_token and account_id, please reauthenticate or try again.";

/// What an action answers.
pub enum Reply {
    /// A JSON success payload (without `_status`/`_datetime`).
    Ok(Value),
    /// An API error message (HTTP 200 in the profile's error shape).
    Err(String),
    /// A complete JSON body with its own status (unknown actions).
    Raw(StatusCode, Value),
    /// The PHP fatal-error page of an unknown endpoint.
    Html(StatusCode, String),
}

impl Reply {
    /// An API error.
    pub fn err(message: &str) -> Reply {
        Reply::Err(message.to_string())
    }
}

impl From<rusqlite::Error> for Reply {
    fn from(e: rusqlite::Error) -> Self {
        log::error!("database error: {e}");
        Reply::Html(StatusCode::INTERNAL_SERVER_ERROR, "database error".into())
    }
}

impl From<std::io::Error> for Reply {
    fn from(e: std::io::Error) -> Self {
        log::error!("storage error: {e}");
        Reply::Html(StatusCode::INTERNAL_SERVER_ERROR, "storage error".into())
    }
}

/// One API request being answered.
pub struct Ctx {
    /// Shared state.
    pub st: Arc<AppState>,
    /// Reply shapes for this request.
    pub shapes: Shapes,
    /// Decoded parameters.
    pub params: Params,
    /// The client's IP.
    pub ip: String,
    /// The session cookie the client sent, or the one we hand out now.
    pub session: String,
    /// Whether the client sent that cookie.
    pub session_sent: bool,
}

impl Ctx {
    /// The profile in use.
    pub fn profile(&self) -> Profile {
        self.st.args.profile
    }

    /// Checks `access_token` and `account_id` as folder/* and file/* do; the account id.
    pub fn auth(&self) -> Result<i64, Reply> {
        let token = self
            .params
            .non_empty("access_token")
            .ok_or_else(|| Reply::err("Please provide the access_token param."))?;
        let account = self
            .params
            .non_empty("account_id")
            .ok_or_else(|| Reply::err("Please provide the account_id param."))?;
        let owner = self.token_owner(token)?;
        match (owner, account.parse::<i64>()) {
            (Some(owner), Ok(asked)) if owner == asked => Ok(owner),
            _ => Err(Reply::err(BAD_TOKEN_ACCOUNT)),
        }
    }

    /// The account a token belongs to, renewing it.
    pub fn token_owner(&self, token: &str) -> Result<Option<i64>, Reply> {
        let idle = self.st.token_idle().as_secs() as i64;
        Ok(self.st.store.use_token(token, unix_now(), idle)?)
    }
}

fn html_error_page(detail: &str) -> String {
    format!(
        "<div style=\"padding:20px; background-color: #FFBABA; border: 1px solid; color: #D8000C;\">\
         <span style=\"font-family: Arial, Helvetica, sans-serif;\"><strong>SYSTEM ERROR:</strong>\
         <br/><br/><table cellspacing=\"0\" cellpadding=\"2\"><tr><td style=\"width: 150px; font-weight: bold;\">\
         Error Msg:</td><td>{detail}</td></tr></table></span></div>"
    )
}

fn session_from(req: &Request<Body>) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Answers a request under `/api/v2/`.
pub async fn handle(
    st: Arc<AppState>,
    peer: SocketAddr,
    origin: String,
    req: Request<Body>,
) -> Response {
    let shapes = Shapes {
        profile: st.args.profile,
        origin,
    };
    let sent = session_from(&req);
    let session = sent.clone().unwrap_or_else(|| random_hex(26));
    let reply = answer(&st, &shapes, peer, &session, sent.is_some(), req).await;
    let (status, body, content_type) = match reply {
        Reply::Ok(v) => (
            StatusCode::OK,
            shapes.success(v).to_string(),
            "application/json",
        ),
        Reply::Err(m) => (
            StatusCode::OK,
            shapes.error(&m).to_string(),
            "application/json",
        ),
        Reply::Raw(s, v) => (s, v.to_string(), "application/json"),
        Reply::Html(s, h) => (s, h, "text/html; charset=UTF-8"),
    };
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache, must-revalidate"),
    );
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={session}; Max-Age=86400; path=/"
    )) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    resp
}

async fn answer(
    st: &Arc<AppState>,
    shapes: &Shapes,
    peer: SocketAddr,
    session: &str,
    session_sent: bool,
    req: Request<Body>,
) -> Reply {
    let mut method = req.method().clone();
    if method == Method::POST {
        if let Some(over) = req.headers().get("x-http-method") {
            match over.to_str().unwrap_or("").to_ascii_uppercase().as_str() {
                "DELETE" => method = Method::DELETE,
                "PUT" => method = Method::PUT,
                _ => return Reply::err("Unexpected Header"),
            }
        }
    }
    let path = req.uri().path().to_ascii_lowercase();
    let rest = path.trim_start_matches("/api/v2/");
    let mut parts = rest.split('/').filter(|p| !p.is_empty());
    let endpoint = parts.next().unwrap_or("").to_string();
    let action = parts.next().unwrap_or("").to_string();
    let known = [
        "authorize",
        "disable_access_token",
        "account",
        "file",
        "folder",
        "package",
    ];
    if !known.contains(&endpoint.as_str()) {
        return Reply::Html(
            StatusCode::NOT_FOUND,
            html_error_page("Uncaught Error: Call to a member function processAPI() on string"),
        );
    }
    let params = match Params::read(req, &method, &st.blobs).await {
        Ok(p) => p,
        Err(e) => {
            log::warn!("bad request body: {e}");
            Params::default()
        }
    };
    let mut ctx = Ctx {
        st: st.clone(),
        shapes: shapes.clone(),
        params,
        ip: peer.ip().to_string(),
        session: session.to_string(),
        session_sent,
    };
    let result = match endpoint.as_str() {
        "authorize" => account::authorize(&ctx).await,
        "disable_access_token" => account::disable_token(&ctx),
        "account" => account::dispatch(&ctx, &action),
        "package" => account::package_dispatch(&ctx, &action),
        "file" => match ctx.auth() {
            Err(r) => Err(r),
            Ok(acct) => files::dispatch(&mut ctx, acct, &action).await,
        },
        _ => match ctx.auth() {
            Err(r) => Err(r),
            Ok(acct) => folders::dispatch(&ctx, acct, &action),
        },
    };
    result.unwrap_or_else(|r| r)
}

/// The reply to an action an endpoint lacks: 404 on 4.x, 200 on 5.x.
pub fn unknown_action(ctx: &Ctx, endpoint: &str, action: &str) -> Reply {
    let status = match ctx.profile() {
        Profile::V4 => StatusCode::NOT_FOUND,
        Profile::V5 => StatusCode::OK,
    };
    Reply::Raw(status, ctx.shapes.unknown_action(endpoint, action))
}

/// Outcome of an action: the reply either way.
pub type Outcome = Result<Reply, Reply>;
