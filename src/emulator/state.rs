//! What every request handler shares: configuration, database, blobs, fault dice, access log.
use std::time::Duration;

use super::access_log::AccessLog;
use super::blobs::Blobs;
use super::config::ServeArgs;
use super::faults::Faults;
use super::store::Store;

/// The emulator's shared state.
pub struct AppState {
    /// The command line it runs with.
    pub args: ServeArgs,
    /// Metadata.
    pub store: Store,
    /// Contents.
    pub blobs: Blobs,
    /// Fault injection.
    pub faults: Faults,
    /// The access log, if asked for.
    pub access_log: Option<AccessLog>,
    /// HTTP client of URL uploads.
    pub http: reqwest::Client,
    /// Whose turn it is to be fetched among the scheduled URL uploads: one at a time.
    pub url_queue: tokio::sync::Mutex<()>,
    /// The address actually bound (for URLs when a request has no `Host`).
    pub bound: std::net::SocketAddr,
}

impl AppState {
    /// How long a token lives without use.
    pub fn token_idle(&self) -> Duration {
        self.faults
            .spec
            .token_ttl
            .unwrap_or(Duration::from_secs(self.args.token_idle_secs))
    }
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
