//! Typed errors of a `Remote`. Every failure the network, the server or the local disk can
//! produce ends up as one of these, with the server's own message kept, so that the filesystem
//! can map it to the right errno and the user can read what the server said. They belong to the
//! trait, not to the HTTP client that produces most of them, so the layers above the trait
//! never reach into `api`.
use std::io;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The key pair (or username/password) was rejected, or the account may not use the API.
    /// Never retried: servers ban an IP after five failed logins.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The access token was rejected even after a fresh authorization.
    #[error("access token rejected: {0}")]
    Token(String),
    /// The file, folder or scheduled item does not exist (or is not the account's).
    #[error("not found: {0}")]
    NotFound(String),
    /// The server refused a parameter (missing, malformed, not allowed).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The server refused the upload because the storage quota is used up.
    #[error("storage full: {0}")]
    NoSpace(String),
    /// The file is larger than the server or the package accepts.
    #[error("file too large: {0}")]
    TooLarge(String),
    /// The host does not offer this endpoint or action.
    #[error("not supported by this host: {0}")]
    Unsupported(String),
    /// The server answered with an error message not covered above.
    #[error("server error: {0}")]
    Server(String),
    /// The server answered with an HTTP status that carries no API reply (5xx, 429, 404 page).
    #[error("HTTP {status}: {detail}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// What the reply said, shortened.
        detail: String,
        /// Seconds the server asked us to wait (`Retry-After`), if any.
        retry_after: Option<u64>,
    },
    /// No connection could be made (refused, no route, unknown host, connect timeout): the
    /// server is unreachable, as opposed to answering badly. Only this takes a mount offline.
    #[error("cannot connect: {0}")]
    Unreachable(String),
    /// Sending or receiving failed on an established connection, or a timeout expired.
    #[error("transport: {0}")]
    Transport(String),
    /// The reply was not the JSON (or the bytes) the API promises.
    #[error("unparseable reply: {0}")]
    Unparseable(String),
    /// Downloaded bytes did not match what was asked for (wrong range, short body).
    #[error("download mismatch: {0}")]
    Integrity(String),
    /// A local file could not be read or written.
    #[error("local I/O: {0}")]
    Io(#[from] io::Error),
}

/// The same error again, for every waiter of a shared fetch (`io::Error` is not `Clone`: a local
/// I/O error is copied by its OS code, or its kind and message).
impl Clone for RemoteError {
    fn clone(&self) -> Self {
        match self {
            RemoteError::Auth(m) => RemoteError::Auth(m.clone()),
            RemoteError::Token(m) => RemoteError::Token(m.clone()),
            RemoteError::NotFound(m) => RemoteError::NotFound(m.clone()),
            RemoteError::InvalidInput(m) => RemoteError::InvalidInput(m.clone()),
            RemoteError::NoSpace(m) => RemoteError::NoSpace(m.clone()),
            RemoteError::TooLarge(m) => RemoteError::TooLarge(m.clone()),
            RemoteError::Unsupported(m) => RemoteError::Unsupported(m.clone()),
            RemoteError::Server(m) => RemoteError::Server(m.clone()),
            RemoteError::Http {
                status,
                detail,
                retry_after,
            } => RemoteError::Http {
                status: *status,
                detail: detail.clone(),
                retry_after: *retry_after,
            },
            RemoteError::Transport(m) => RemoteError::Transport(m.clone()),
            RemoteError::Unreachable(m) => RemoteError::Unreachable(m.clone()),
            RemoteError::Unparseable(m) => RemoteError::Unparseable(m.clone()),
            RemoteError::Integrity(m) => RemoteError::Integrity(m.clone()),
            RemoteError::Io(io_error) => RemoteError::Io(match io_error.raw_os_error() {
                Some(code) => io::Error::from_raw_os_error(code),
                None => io::Error::new(io_error.kind(), io_error.to_string()),
            }),
        }
    }
}

impl RemoteError {
    /// The errno a filesystem operation should fail with when the remote call failed this way.
    pub fn errno(&self) -> i32 {
        match self {
            RemoteError::NotFound(_) => libc::ENOENT,
            RemoteError::InvalidInput(_) => libc::EINVAL,
            RemoteError::NoSpace(_) => libc::ENOSPC,
            RemoteError::TooLarge(_) => libc::EFBIG,
            RemoteError::Unsupported(_) => libc::EOPNOTSUPP,
            RemoteError::Auth(_) | RemoteError::Token(_) => libc::EACCES,
            RemoteError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            RemoteError::Server(_)
            | RemoteError::Http { .. }
            | RemoteError::Transport(_)
            | RemoteError::Unreachable(_)
            | RemoteError::Unparseable(_)
            | RemoteError::Integrity(_) => libc::EIO,
        }
    }

    /// Whether the same request may succeed if sent again (transport trouble, 5xx, 429, a bad
    /// download). Only idempotent requests, or uploads the server cannot have stored, are retried.
    pub fn is_transient(&self) -> bool {
        match self {
            RemoteError::Transport(_) | RemoteError::Unreachable(_) | RemoteError::Integrity(_) => {
                true
            }
            RemoteError::Http { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// Results of API calls.
pub type Result<T, E = RemoteError> = std::result::Result<T, E>;
