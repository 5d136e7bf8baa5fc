//! What the client did, for `yetifs status`: requests and failures by endpoint, whether the
//! server answered the last request (and the last failure, with its time), and the uploads in
//! progress with the bytes sent so far, and how often another client of the account took the
//! access token (with how many calls wait for a fresh one now). Counting is a few atomic additions per HTTP request; the
//! locks are taken once per request at most, never while waiting on the network.
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::remote::error::RemoteError;
use crate::sync::clock::now_ms;
use crate::sync::Mutex;

/// The endpoints counted, as their paths under the API base; `download` stands for requests
/// to the file server (content), `other` for anything not listed.
pub const ENDPOINTS: [&str; 21] = [
    "authorize",
    "disable_access_token",
    "account/info",
    "account/package",
    "folder/listing",
    "folder/info",
    "folder/create",
    "folder/edit",
    "folder/move",
    "folder/delete",
    "file/info",
    "file/edit",
    "file/move",
    "file/copy",
    "file/delete",
    "file/download",
    "file/url_upload_add",
    "file/url_upload_status",
    "file/upload",
    "download",
    "other",
];

/// The name under which requests to the file server (content downloads) are counted.
pub const DOWNLOAD: &str = "download";

/// The window of the takeover rate, and the least time between two log lines about it.
const MINUTE_MS: u64 = 60_000;

/// Requests and failures of one endpoint.
#[derive(Default)]
struct Counter {
    requests: AtomicU64,
    errors: AtomicU64,
}

/// An upload being sent.
struct Sending {
    name: String,
    size: u64,
    sent: Arc<AtomicU64>,
}

/// The client's counters. One per [`super::Client`], shared by its clones.
#[derive(Default)]
pub struct Metrics {
    counters: [Counter; ENDPOINTS.len()],
    answered_last: AtomicBool,
    any_request: AtomicBool,
    last_answer_ms: AtomicU64,
    last_failure: Mutex<Option<Failure>>,
    sending: Mutex<BTreeMap<u64, Sending>>,
    next_upload: AtomicU64,
    upload_errors: Mutex<BTreeMap<String, Failure>>,
    takeovers: Mutex<Takeovers>,
    waiting: Arc<AtomicU64>,
}

/// When another client took the token.
#[derive(Default)]
struct Takeovers {
    /// Times of the takeovers of the last minute, oldest first.
    recent: VecDeque<u64>,
    /// All takeovers so far.
    total: u64,
    /// The latest one.
    last_ms: Option<u64>,
    /// When a line about them was last logged.
    logged_ms: Option<u64>,
}

impl Takeovers {
    /// Drops the times older than a minute before `now_ms`.
    fn prune(&mut self, now_ms: u64) {
        let since = now_ms.saturating_sub(MINUTE_MS);
        while self.recent.front().is_some_and(|&at| at <= since) {
            self.recent.pop_front();
        }
    }
}

/// Another client of the account taking the access token, as reported.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenStats {
    /// Times another client took the token in the last minute: while this is above zero,
    /// calls wait for fresh tokens and the mount is slower.
    pub takeovers_last_minute: u64,
    /// Times another client took the token since the client started.
    pub takeovers: u64,
    /// When it happened last, in milliseconds since the Unix epoch.
    pub last_takeover_ms: Option<u64>,
    /// Calls waiting for a fresh token now.
    pub waiting: u64,
}

/// A failed request: what went wrong and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The endpoint, as in [`ENDPOINTS`].
    pub endpoint: String,
    /// The error, secrets removed.
    pub error: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// Requests and failures of one endpoint, as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStats {
    /// The endpoint, as in [`ENDPOINTS`].
    pub endpoint: String,
    /// HTTP requests sent (retries and token renewals each count).
    pub requests: u64,
    /// Of those, the ones that failed (no reply, an HTTP error, or an API error).
    pub errors: u64,
}

/// An upload in progress, as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadProgress {
    /// The name it is uploaded as.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes handed to the connection so far.
    pub sent: u64,
}

/// Everything [`Metrics`] knows, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Endpoints with at least one request, in [`ENDPOINTS`] order.
    pub endpoints: Vec<EndpointStats>,
    /// Whether the server answered the last request (any reply, errors included); `None`
    /// before the first request.
    pub online: Option<bool>,
    /// When the server last answered, in milliseconds since the Unix epoch.
    pub last_answer_ms: Option<u64>,
    /// The last failed request.
    pub last_failure: Option<Failure>,
    /// Uploads being sent.
    pub uploads: Vec<UploadProgress>,
    /// The last failure of each upload (by name) that has not succeeded since.
    pub upload_errors: BTreeMap<String, Failure>,
    /// Other clients taking the access token.
    pub token: TokenStats,
}

/// What `count` takeovers in the last minute mean to a user, for the log and `yetifs status`.
pub fn takeover_summary(count: u64) -> String {
    let times = if count == 1 {
        "1 time".to_owned()
    } else {
        format!("{count} times")
    };
    format!(
        "another client of this account took the access token {times} in the last minute; \
         requests wait for a fresh token"
    )
}

/// Keeps an upload listed as in progress until dropped; feeds its byte count.
pub struct UploadGuard<'a> {
    metrics: &'a Metrics,
    id: u64,
    name: String,
    sent: Arc<AtomicU64>,
}

impl UploadGuard<'_> {
    /// The counter the request body adds its bytes to (reset on each attempt).
    pub fn sent(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.sent)
    }

    /// Records how the upload ended: a success clears the name's last error.
    pub fn finish(self, outcome: Result<(), &RemoteError>) {
        let mut errors = self.metrics.upload_errors.lock();
        match outcome {
            Ok(()) => {
                errors.remove(&self.name);
            }
            Err(e) => {
                errors.insert(
                    self.name.clone(),
                    Failure {
                        endpoint: "file/upload".to_owned(),
                        error: e.to_string(),
                        at_ms: now_ms(),
                    },
                );
            }
        }
    }
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        self.metrics.sending.lock().remove(&self.id);
    }
}

/// Counts a call as waiting for a fresh token until dropped.
pub struct WaitGuard(Arc<AtomicU64>);

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts one HTTP request to `endpoint` and how it ended.
    pub fn record(&self, endpoint: &str, outcome: Result<(), &RemoteError>) {
        let slot = ENDPOINTS
            .iter()
            .position(|e| *e == endpoint)
            .unwrap_or(ENDPOINTS.len() - 1);
        let counter = &self.counters[slot];
        counter.requests.fetch_add(1, Ordering::Relaxed);
        let answered = !matches!(
            outcome,
            Err(RemoteError::Transport(_) | RemoteError::Unreachable(_))
        );
        self.any_request.store(true, Ordering::Relaxed);
        self.answered_last.store(answered, Ordering::Relaxed);
        if answered {
            self.last_answer_ms.store(now_ms(), Ordering::Relaxed);
        }
        if let Err(e) = outcome {
            counter.errors.fetch_add(1, Ordering::Relaxed);
            *self.last_failure.lock() = Some(Failure {
                endpoint: ENDPOINTS[slot].to_owned(),
                error: e.to_string(),
                at_ms: now_ms(),
            });
        }
    }

    /// Lists an upload of `name` (`size` bytes) as in progress until the guard is dropped.
    pub fn upload_started(&self, name: &str, size: u64) -> UploadGuard<'_> {
        let id = self.next_upload.fetch_add(1, Ordering::Relaxed);
        let sent = Arc::new(AtomicU64::new(0));
        self.sending.lock().insert(
            id,
            Sending {
                name: name.to_owned(),
                size,
                sent: Arc::clone(&sent),
            },
        );
        UploadGuard {
            metrics: self,
            id,
            name: name.to_owned(),
            sent,
        }
    }

    /// Counts another client taking the token now. Returns the takeovers of the last minute
    /// when a line about them is due in the log (the first time, then at most once a minute).
    pub fn token_taken(&self) -> Option<u64> {
        self.token_taken_at(now_ms())
    }

    /// [`Metrics::token_taken`] at `at_ms`.
    pub(crate) fn token_taken_at(&self, at_ms: u64) -> Option<u64> {
        let mut takeovers = self.takeovers.lock();
        takeovers.total += 1;
        takeovers.last_ms = Some(at_ms);
        takeovers.recent.push_back(at_ms);
        takeovers.prune(at_ms);
        let due = takeovers
            .logged_ms
            .is_none_or(|logged| at_ms >= logged + MINUTE_MS);
        if !due {
            return None;
        }
        takeovers.logged_ms = Some(at_ms);
        Some(takeovers.recent.len() as u64)
    }

    /// Counts a call as waiting for a fresh token while the guard lives.
    pub fn waiting_for_token(&self) -> WaitGuard {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        WaitGuard(Arc::clone(&self.waiting))
    }

    /// The takeovers as of `now_ms`.
    fn token_stats(&self, now_ms: u64) -> TokenStats {
        let mut takeovers = self.takeovers.lock();
        takeovers.prune(now_ms);
        TokenStats {
            takeovers_last_minute: takeovers.recent.len() as u64,
            takeovers: takeovers.total,
            last_takeover_ms: takeovers.last_ms,
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    /// Everything counted so far.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let endpoints = ENDPOINTS
            .iter()
            .zip(&self.counters)
            .map(|(name, c)| EndpointStats {
                endpoint: (*name).to_owned(),
                requests: c.requests.load(Ordering::Relaxed),
                errors: c.errors.load(Ordering::Relaxed),
            })
            .filter(|s| s.requests > 0)
            .collect();
        let last_answer_ms = Some(self.last_answer_ms.load(Ordering::Relaxed)).filter(|&t| t > 0);
        let uploads = self
            .sending
            .lock()
            .values()
            .map(|s| UploadProgress {
                name: s.name.clone(),
                size: s.size,
                sent: s.sent.load(Ordering::Relaxed).min(s.size),
            })
            .collect();
        MetricsSnapshot {
            endpoints,
            online: self
                .any_request
                .load(Ordering::Relaxed)
                .then(|| self.answered_last.load(Ordering::Relaxed)),
            last_answer_ms,
            last_failure: self.last_failure.lock().clone(),
            uploads,
            upload_errors: self.upload_errors.lock().clone(),
            token: self.token_stats(now_ms()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_errors_are_counted_by_endpoint_in_table_order() {
        let m = Metrics::default();
        m.record("folder/listing", Ok(()));
        m.record("authorize", Ok(()));
        m.record(
            "folder/listing",
            Err(&RemoteError::Http {
                status: 500,
                detail: String::new(),
                retry_after: None,
            }),
        );
        let s = m.snapshot();
        let rows: Vec<_> = s
            .endpoints
            .iter()
            .map(|e| (e.endpoint.as_str(), e.requests, e.errors))
            .collect();
        assert_eq!(
            rows,
            [("authorize", 1, 0), ("folder/listing", 2, 1)],
            "{s:?}"
        );
        assert_eq!(s.last_failure.unwrap().endpoint, "folder/listing");
    }

    #[test]
    fn an_unknown_endpoint_is_counted_as_other() {
        let m = Metrics::default();
        m.record("file/frobnicate", Ok(()));
        assert_eq!(m.snapshot().endpoints[0].endpoint, "other");
    }

    #[test]
    fn the_server_is_offline_only_when_the_last_request_got_no_reply() {
        let m = Metrics::default();
        assert_eq!(m.snapshot().online, None);
        m.record("file/info", Err(&RemoteError::Transport("refused".into())));
        let s = m.snapshot();
        assert_eq!(s.online, Some(false));
        assert_eq!(s.last_answer_ms, None);
        m.record("file/info", Err(&RemoteError::NotFound("gone".into())));
        let s = m.snapshot();
        assert_eq!(s.online, Some(true));
        assert!(s.last_answer_ms.is_some());
    }

    #[test]
    fn an_upload_is_listed_with_its_progress_until_it_ends() {
        let m = Metrics::default();
        let guard = m.upload_started("a.bin", 100);
        guard.sent().fetch_add(40, Ordering::Relaxed);
        assert_eq!(
            m.snapshot().uploads,
            [UploadProgress {
                name: "a.bin".into(),
                size: 100,
                sent: 40
            }]
        );
        guard.finish(Err(&RemoteError::Transport("reset".into())));
        let s = m.snapshot();
        assert!(s.uploads.is_empty());
        assert!(s.upload_errors["a.bin"].error.contains("reset"));
        m.upload_started("a.bin", 100).finish(Ok(()));
        assert!(m.snapshot().upload_errors.is_empty());
    }

    #[test]
    fn takeovers_are_counted_over_the_last_minute_and_logged_at_most_once_a_minute() {
        let m = Metrics::default();
        let t0 = 1_000_000;
        assert_eq!(m.token_taken_at(t0), Some(1), "the first one is logged");
        let logged: Vec<_> = (1..=20).map(|i| m.token_taken_at(t0 + i * 4_000)).collect();
        assert_eq!(
            logged.iter().flatten().collect::<Vec<_>>(),
            [&15],
            "one line a minute later, with the minute's count: {logged:?}"
        );
        let stats = m.token_stats(t0 + 80_000);
        assert_eq!(stats.takeovers, 21);
        assert_eq!(stats.takeovers_last_minute, 15);
        assert_eq!(stats.last_takeover_ms, Some(t0 + 80_000));
        let quiet = m.token_stats(t0 + 200_000);
        assert_eq!((quiet.takeovers_last_minute, quiet.takeovers), (0, 21));
        assert_eq!(quiet.last_takeover_ms, Some(t0 + 80_000));
    }

    #[test]
    fn calls_count_as_waiting_for_a_token_while_their_guard_lives() {
        let m = Metrics::default();
        let a = m.waiting_for_token();
        let b = m.waiting_for_token();
        assert_eq!(m.snapshot().token.waiting, 2);
        drop(a);
        drop(b);
        assert_eq!(m.snapshot().token.waiting, 0);
    }
}
