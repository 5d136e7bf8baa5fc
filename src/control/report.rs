//! What `yetifs status` reports about a live mount: the shape sent over the control socket
//! (JSON, the same as `--json` prints) and its rendering for people. The mount process fills
//! it (see `cli::mount`); the command only reads and shows it.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use indicatif::{HumanBytes, HumanDuration};
use serde::{Deserialize, Serialize};

use crate::api::metrics::{takeover_summary, EndpointStats, Failure, MetricsSnapshot, TokenStats};
use crate::api::ConcurrencyStats;
#[cfg(test)]
use crate::fs::JobState;
use crate::fs::{PendingUpload, TreeProgress, TreeState};

/// Uploads `render` lists one by one; `--json` has them all.
const SHOWN_UPLOADS: usize = 40;

/// Everything `yetifs status` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The mountpoint.
    pub mountpoint: String,
    /// The API base URL, secrets removed.
    pub server: String,
    /// The process serving the mount.
    pub pid: u32,
    /// When the mount went live, in milliseconds since the Unix epoch.
    pub mounted_ms: u64,
    /// When this report was made, in milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// Whether the server answered the last request and what failed last.
    pub server_state: ServerState,
    /// Uploads not done yet.
    pub uploads: Vec<UploadStatus>,
    /// Cache use against its bounds.
    pub cache: CacheUse,
    /// Bytes through the mount and from the server.
    pub traffic: TrafficStats,
    /// How often another client of the account took the access token: why requests wait.
    #[serde(default)]
    pub token: TokenStats,
    /// Calls in flight against the adaptive limit, and how often the server was overloaded.
    #[serde(default)]
    pub requests: ConcurrencyStats,
    /// The walk of `--prefetch-tree`.
    #[serde(default)]
    pub prefetch: TreeProgress,
    /// Requests and failures by endpoint.
    pub api: Vec<EndpointStats>,
    /// Failed requests of programs using the mount (see `ErrorCounts`).
    #[serde(default)]
    pub errors: ErrorCounts,
}

/// Failed requests of programs using the mount, by operation and then by errno name
/// (`{"lookup": {"ENOENT": 12}, "write": {"EIO": 1}}`), since it was mounted: what a `ls` of a
/// missing name or a failed upload at `close` came to.
pub type ErrorCounts = BTreeMap<String, BTreeMap<String, u64>>;

/// `lookup 12 (ENOENT 12), write 1 (EIO 1)`: the operations that failed most first, each with
/// its errnos; `none` when nothing failed.
fn errors_line(errors: &ErrorCounts) -> String {
    let mut ops: Vec<(&String, u64, &BTreeMap<String, u64>)> = errors
        .iter()
        .map(|(op, by_errno)| (op, by_errno.values().sum(), by_errno))
        .collect();
    if ops.is_empty() {
        return "none".to_owned();
    }
    ops.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = ops
        .into_iter()
        .map(|(op, total, by_errno)| {
            let mut errnos: Vec<(&String, &u64)> = by_errno.iter().collect();
            errnos.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let errnos: Vec<String> = errnos.iter().map(|(e, n)| format!("{e} {n}")).collect();
            format!("{op} {total} ({})", errnos.join(", "))
        })
        .collect();
    shown.join(", ")
}

/// Whether the server is reachable, as the last requests saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerState {
    /// Whether the server answered the last request; `None` before any request.
    pub online: Option<bool>,
    /// When the server last answered, in milliseconds since the Unix epoch.
    pub last_answer_ms: Option<u64>,
    /// The last failed request.
    pub last_failure: Option<Failure>,
}

/// Where an upload stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// A changed file still open: it is uploaded when closed.
    Open,
    /// Closed and journaled, waiting for its turn or for its last steps.
    Waiting,
    /// Being sent now.
    Uploading,
    /// The last attempt failed; it is tried again in the background, sooner at a close,
    /// `fsync`, `yetifs sync` or unmount.
    Failed,
}

/// One upload not done yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadStatus {
    /// The name it gets on the server.
    pub name: String,
    /// Its path in the mount, when known.
    #[serde(default)]
    pub path: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// Where it stands.
    pub state: UploadState,
    /// When its upload starts (write-back delay, or the next retry), in milliseconds from now.
    #[serde(default)]
    pub starts_in_ms: Option<u64>,
    /// Failed attempts in a row.
    #[serde(default)]
    pub failures: u32,
    /// Why the last attempt failed, as the mount saw it.
    #[serde(default)]
    pub reason: Option<String>,
    /// Bytes sent so far, while uploading.
    pub sent: Option<u64>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<Failure>,
}

/// The block cache's use against its bounds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheUse {
    /// Bytes of blocks in memory.
    pub memory_bytes: u64,
    /// The memory bound (`--memory-cache`).
    pub memory_limit: u64,
    /// Bytes of blocks on disk.
    pub disk_bytes: u64,
    /// The disk bound (`--cache-size`).
    pub disk_limit: u64,
    /// Reads answered from the cache, in blocks.
    pub hits: u64,
    /// Reads the cache could not answer, in blocks.
    pub misses: u64,
    /// Blocks dropped to stay within the bounds.
    pub evictions: u64,
}

/// Bytes through the mount.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficStats {
    /// Bytes programs read from the mount.
    pub bytes_read: u64,
    /// Bytes programs wrote to the mount.
    pub bytes_written: u64,
    /// Content bytes downloaded from the server.
    pub bytes_fetched: u64,
}

/// Puts the core's pending uploads together with what the client knows of them: one being
/// sent is `uploading` with its progress, one whose last attempt failed is `failed` with the
/// error. An upload the client is sending that the core does not list (the last steps of an
/// earlier one) is listed too.
pub fn merge_uploads(pending: Vec<PendingUpload>, metrics: &MetricsSnapshot) -> Vec<UploadStatus> {
    let mut sending = metrics.uploads.clone();
    let mut list: Vec<UploadStatus> = pending
        .into_iter()
        .map(|p| {
            let in_flight = sending
                .iter()
                .position(|u| u.name == p.name)
                .map(|i| sending.remove(i));
            let last_error = metrics.upload_errors.get(&p.name).cloned();
            let job = &p.job;
            let state = if in_flight.is_some() || job.running {
                UploadState::Uploading
            } else if job.failures > 0 || last_error.is_some() {
                UploadState::Failed
            } else if p.journaled {
                UploadState::Waiting
            } else {
                UploadState::Open
            };
            UploadStatus {
                name: p.name,
                path: p.path,
                size: p.size,
                state,
                starts_in_ms: job.starts_in.map(|d| d.as_millis() as u64),
                failures: job.failures,
                reason: job.last_error.clone(),
                sent: in_flight.map(|u| u.sent),
                last_error,
            }
        })
        .collect();
    list.extend(sending.into_iter().map(|u| UploadStatus {
        last_error: metrics.upload_errors.get(&u.name).cloned(),
        name: u.name,
        path: None,
        size: u.size,
        state: UploadState::Uploading,
        starts_in_ms: None,
        failures: 0,
        reason: None,
        sent: Some(u.sent),
    }));
    list
}

/// How long before `now_ms` the moment `at_ms` was, for people.
fn ago(now_ms: u64, at_ms: u64) -> String {
    let elapsed = Duration::from_millis(now_ms.saturating_sub(at_ms));
    if elapsed < Duration::from_secs(1) {
        "just now".to_owned()
    } else {
        format!("{} ago", HumanDuration(elapsed))
    }
}

/// The calls in flight against their limit, those waiting, and the server's slowdowns.
fn requests_line(r: &ConcurrencyStats) -> String {
    let mut line = format!("{} in flight, limit {}", r.in_flight, r.limit);
    if r.waiting > 0 {
        let _ = write!(
            line,
            "; {} waiting ({} background)",
            r.waiting, r.waiting_background
        );
    }
    if r.slowdowns > 0 {
        let _ = write!(
            line,
            "; the server was overloaded {} time(s), {} call(s) held for its Retry-After",
            r.slowdowns, r.held
        );
    }
    line
}

/// Where `--prefetch-tree` stands; nothing when it was not asked for.
fn prefetch_line(p: &TreeProgress, now_ms: u64) -> Option<String> {
    let state = match p.state {
        TreeState::Off => return None,
        TreeState::Walking => "walking the account",
        TreeState::Done => "done",
        TreeState::Bounded => "stopped at its bound",
        TreeState::Stopped => "stopped",
    };
    let took = p
        .started_ms
        .map(|start| p.finished_ms.unwrap_or(now_ms).saturating_sub(start))
        .map(|ms| format!(" in {:.1} s", ms as f64 / 1000.0))
        .unwrap_or_default();
    let failed = match p.failed {
        0 => String::new(),
        n => format!(", {n} folder(s) failed"),
    };
    Some(format!(
        "{state}: {} folders, {} files, {} dates fetched{took}{failed}",
        p.folders, p.files, p.dates
    ))
}

/// What people are told about other clients taking the token; nothing if none ever did.
fn token_line(token: &TokenStats, now_ms: u64) -> Option<String> {
    if token.takeovers_last_minute > 0 {
        let waiting = match token.waiting {
            0 => String::new(),
            n => format!(" ({n} waiting now)"),
        };
        return Some(format!(
            "{}{waiting}",
            takeover_summary(token.takeovers_last_minute)
        ));
    }
    let last = token.last_takeover_ms?;
    let times = match token.takeovers {
        1 => "once".to_owned(),
        n => format!("{n} times"),
    };
    Some(format!(
        "another client of this account took the access token {times} since the mount \
         started, the last time {}",
        ago(now_ms, last)
    ))
}

impl StatusReport {
    /// The report as people read it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let up = HumanDuration(Duration::from_millis(
            self.now_ms.saturating_sub(self.mounted_ms),
        ));
        let _ = writeln!(
            out,
            "yetifs on {} (pid {}, mounted {up})",
            self.mountpoint, self.pid
        );
        let state = &self.server_state;
        let reach = match state.online {
            None => "no request yet".to_owned(),
            Some(true) => "online".to_owned(),
            Some(false) => "OFFLINE (the last request got no reply)".to_owned(),
        };
        let _ = writeln!(out, "server:   {} {reach}", self.server);
        if let Some(at) = state.last_answer_ms {
            let _ = writeln!(out, "          last answer {}", ago(self.now_ms, at));
        }
        if let Some(f) = &state.last_failure {
            let _ = writeln!(
                out,
                "          last error {}: {}: {}",
                ago(self.now_ms, f.at_ms),
                f.endpoint,
                f.error
            );
        }
        if let Some(line) = token_line(&self.token, self.now_ms) {
            let _ = writeln!(out, "token:    {line}");
        }
        let _ = writeln!(out, "requests: {}", requests_line(&self.requests));
        if let Some(line) = prefetch_line(&self.prefetch, self.now_ms) {
            let _ = writeln!(out, "prefetch: {line}");
        }
        let failed = self
            .uploads
            .iter()
            .filter(|u| u.state == UploadState::Failed)
            .count();
        let _ = writeln!(
            out,
            "uploads:  {} pending, {failed} failed",
            self.uploads.len()
        );
        for u in self.uploads.iter().take(SHOWN_UPLOADS) {
            let state = match u.state {
                UploadState::Open => "open",
                UploadState::Waiting => "waiting",
                UploadState::Uploading => "uploading",
                UploadState::Failed => "failed",
            };
            let progress = match u.sent {
                Some(sent) => format!(
                    "{} of {} ({}%)",
                    HumanBytes(sent),
                    HumanBytes(u.size),
                    sent * 100 / u.size.max(1)
                ),
                None => HumanBytes(u.size).to_string(),
            };
            let shown = u.path.as_deref().unwrap_or(&u.name);
            let when = match u.starts_in_ms {
                Some(ms) if u.state != UploadState::Uploading => {
                    format!(", starts in {}", HumanDuration(Duration::from_millis(ms)))
                }
                _ => String::new(),
            };
            let _ = writeln!(out, "  {state:<9} {shown}  {progress}{when}");
            if let Some(reason) = &u.reason {
                let _ = writeln!(out, "            failed {} time(s): {reason}", u.failures);
            } else if let Some(e) = &u.last_error {
                let _ = writeln!(
                    out,
                    "            last error {}: {}",
                    ago(self.now_ms, e.at_ms),
                    e.error
                );
            }
        }
        if self.uploads.len() > SHOWN_UPLOADS {
            let more = self.uploads.len() - SHOWN_UPLOADS;
            let _ = writeln!(out, "  ... and {more} more (all of them with --json)");
        }
        let c = &self.cache;
        let _ = writeln!(
            out,
            "cache:    memory {} of {}, disk {} of {} (hits {}, misses {}, evictions {})",
            HumanBytes(c.memory_bytes),
            HumanBytes(c.memory_limit),
            HumanBytes(c.disk_bytes),
            HumanBytes(c.disk_limit),
            c.hits,
            c.misses,
            c.evictions
        );
        let t = &self.traffic;
        let _ = writeln!(
            out,
            "traffic:  read {}, written {}, downloaded from the server {}",
            HumanBytes(t.bytes_read),
            HumanBytes(t.bytes_written),
            HumanBytes(t.bytes_fetched)
        );
        let _ = writeln!(out, "errors:   {}", errors_line(&self.errors));
        let _ = writeln!(out, "API requests (errors):");
        for e in &self.api {
            let _ = writeln!(out, "  {:<24} {:>7} ({})", e.endpoint, e.requests, e.errors);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::metrics::UploadProgress;

    fn pending(name: &str, journaled: bool) -> PendingUpload {
        PendingUpload {
            name: name.into(),
            path: Some(format!("dir/{name}")),
            size: 100,
            journaled,
            job: JobState::default(),
        }
    }

    fn failure(text: &str) -> Failure {
        Failure {
            endpoint: "file/upload".into(),
            error: text.into(),
            at_ms: 1,
        }
    }

    #[test]
    fn uploads_are_open_waiting_uploading_or_failed_from_what_core_and_client_know() {
        let mut metrics = MetricsSnapshot::default();
        metrics.uploads.push(UploadProgress {
            name: "b".into(),
            size: 100,
            sent: 30,
        });
        metrics.uploads.push(UploadProgress {
            name: "late".into(),
            size: 5,
            sent: 5,
        });
        metrics.upload_errors.insert("c".into(), failure("full"));
        let list = merge_uploads(
            vec![
                pending("a", true),
                pending("b", true),
                pending("c", true),
                pending("d", false),
            ],
            &metrics,
        );
        let states: Vec<_> = list
            .iter()
            .map(|u| (u.name.as_str(), u.state, u.sent))
            .collect();
        assert_eq!(
            states,
            [
                ("a", UploadState::Waiting, None),
                ("b", UploadState::Uploading, Some(30)),
                ("c", UploadState::Failed, None),
                ("d", UploadState::Open, None),
                ("late", UploadState::Uploading, Some(5)),
            ]
        );
        assert_eq!(list[2].last_error.as_ref().unwrap().error, "full");
    }

    #[test]
    fn the_rendering_shows_each_upload_the_bounds_and_the_endpoints() {
        let report = StatusReport {
            mountpoint: "/mnt/x".into(),
            server: "http://h/api/v2/".into(),
            pid: 7,
            mounted_ms: 0,
            now_ms: 60_000,
            server_state: ServerState {
                online: Some(false),
                last_answer_ms: Some(30_000),
                last_failure: Some(failure("transport: refused")),
            },
            uploads: vec![
                UploadStatus {
                    name: "big.bin".into(),
                    path: Some("in/big.bin".into()),
                    size: 1000,
                    state: UploadState::Uploading,
                    starts_in_ms: None,
                    failures: 0,
                    reason: None,
                    sent: Some(250),
                    last_error: None,
                },
                UploadStatus {
                    name: "late.txt".into(),
                    path: None,
                    size: 10,
                    state: UploadState::Failed,
                    starts_in_ms: Some(4_000),
                    failures: 2,
                    reason: Some("no space left on the account".into()),
                    sent: None,
                    last_error: None,
                },
            ],
            cache: CacheUse {
                memory_limit: 1 << 20,
                disk_limit: 1 << 30,
                ..CacheUse::default()
            },
            traffic: TrafficStats::default(),
            token: TokenStats {
                takeovers_last_minute: 14,
                takeovers: 40,
                last_takeover_ms: Some(59_000),
                waiting: 3,
            },
            prefetch: TreeProgress {
                state: TreeState::Walking,
                folders: 120,
                files: 2400,
                dates: 300,
                failed: 0,
                started_ms: Some(57_500),
                finished_ms: None,
            },
            requests: ConcurrencyStats {
                limit: 24,
                in_flight: 24,
                waiting: 9,
                waiting_background: 7,
                slowdowns: 2,
                held: 30,
            },
            api: vec![EndpointStats {
                endpoint: "folder/listing".into(),
                requests: 12,
                errors: 1,
            }],
            errors: ErrorCounts::from([
                ("write".into(), BTreeMap::from([("EIO".into(), 1)])),
                (
                    "lookup".into(),
                    BTreeMap::from([("ENOENT".into(), 12), ("ENAMETOOLONG".into(), 1)]),
                ),
            ]),
        };
        let text = report.render();
        for expected in [
            "OFFLINE",
            "uploading in/big.bin  250 B of 1000 B (25%)",
            "failed    late.txt  10 B, starts in 4 seconds",
            "failed 2 time(s): no space left on the account",
            "1 failed",
            "requests: 24 in flight, limit 24; 9 waiting (7 background); the server was \
             overloaded 2 time(s), 30 call(s) held for its Retry-After",
            "prefetch: walking the account: 120 folders, 2400 files, 300 dates fetched in 2.5 s",
            "1.00 MiB",
            "1.00 GiB",
            "folder/listing",
            "errors:   lookup 13 (ENOENT 12, ENAMETOOLONG 1), write 1 (EIO 1)",
            "transport: refused",
            "another client of this account took the access token 14 times in the last minute; \
             requests wait for a fresh token (3 waiting now)",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn the_errors_line_says_none_when_nothing_failed() {
        assert_eq!(errors_line(&ErrorCounts::new()), "none");
    }

    #[test]
    fn the_token_line_tells_a_past_contest_from_a_running_one_and_is_absent_without_one() {
        assert_eq!(token_line(&TokenStats::default(), 1_000), None);
        let past = TokenStats {
            takeovers_last_minute: 0,
            takeovers: 9,
            last_takeover_ms: Some(0),
            waiting: 0,
        };
        assert_eq!(
            token_line(&past, 300_000).unwrap(),
            "another client of this account took the access token 9 times since the mount \
             started, the last time 5 minutes ago"
        );
    }
}
