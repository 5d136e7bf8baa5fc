//! When to send a failed request again and how long to wait first: exponential backoff with
//! jitter, `Retry-After` honoured, and only for requests that are safe to repeat.
use std::future::Future;
use std::time::{Duration, SystemTime};

use super::redact::redact;
use crate::remote::error::{RemoteError, Result};

/// How often and how patiently transient failures are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// The wait before the first retry (before jitter); it doubles with each retry.
    pub base_delay: Duration,
    /// The longest computed wait.
    pub max_delay: Duration,
    /// The longest `Retry-After` obeyed; a server asking for more gets the error returned.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry), or `None` when no retry is
    /// left or the server asks to wait longer than `max_retry_after`. `jitter` in `[0, 1)` picks
    /// the wait between half and all of the exponential step, so that clients that failed
    /// together do not retry together. A `Retry-After` of `retry_after` seconds is a minimum.
    pub fn delay(&self, retry: u32, retry_after: Option<u64>, jitter: f64) -> Option<Duration> {
        if retry.saturating_add(1) >= self.max_attempts {
            return None;
        }
        let step = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(self.max_delay);
        let jittered = step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        match retry_after.map(Duration::from_secs) {
            Some(asked) if asked > self.max_retry_after => None,
            Some(asked) => Some(asked.max(jittered)),
            None => Some(jittered),
        }
    }
}

/// Whether a request may be repeated after the server may have acted on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Safety {
    /// Repeating it has the same effect as sending it once (reads, edits, moves, deletes).
    Idempotent,
    /// Repeating it could do it twice (uploads, copies, folder creation): retried only when the
    /// server cannot have acted on it.
    Once,
}

/// A failed attempt, with what is known about whether the server saw it.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What went wrong.
    pub error: RemoteError,
    /// False when the request provably never reached the server (the connection failed).
    pub reached_server: bool,
}

impl Failure {
    /// A failure that happened before the request was sent (connecting, authorizing).
    pub fn not_sent(error: RemoteError) -> Self {
        Failure {
            error,
            reached_server: false,
        }
    }
}

impl From<RemoteError> for Failure {
    fn from(error: RemoteError) -> Self {
        Failure {
            error,
            reached_server: true,
        }
    }
}

impl Failure {
    /// Whether sending the request again may help and cannot do harm.
    pub fn may_retry(&self, safety: Safety) -> bool {
        if !self.reached_server {
            return self.error.is_transient();
        }
        match safety {
            Safety::Idempotent => self.error.is_transient(),
            // A 429 is the server refusing to act, so even a one-shot request may be resent.
            Safety::Once => matches!(self.error, RemoteError::Http { status: 429, .. }),
        }
    }
}

/// Runs `attempt` until it succeeds, fails in a way that must not be retried, or the policy
/// gives up; waits between attempts as the policy says.
pub(crate) async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    safety: Safety,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut retry = 0;
    loop {
        let failure = match attempt().await {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        if !failure.may_retry(safety) {
            return Err(failure.error);
        }
        let retry_after = match failure.error {
            RemoteError::Http { retry_after, .. } => retry_after,
            _ => None,
        };
        let Some(wait) = policy.delay(retry, retry_after, rand::random::<f64>()) else {
            return Err(failure.error);
        };
        log::debug!(
            "retrying in {:?} after: {}",
            wait,
            redact(&failure.error.to_string())
        );
        tokio::time::sleep(wait).await;
        retry += 1;
    }
}

/// The seconds a `Retry-After` header asks for: either a number of seconds or an HTTP date
/// (counted from `now`). Unreadable values give `None`.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds);
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(when.timestamp()).ok()?);
    Some(when.duration_since(now).map_or(0, |d| d.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// The same budget with waits short enough for tests that really sleep.
    fn quick() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            ..policy()
        }
    }

    fn http(status: u16) -> RemoteError {
        RemoteError::Http {
            status,
            detail: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_between_half_and_full_step() {
        let p = policy();
        assert_eq!(p.delay(0, None, 0.0), Some(Duration::from_millis(50)));
        assert_eq!(p.delay(0, None, 0.999_999).map(|d| d.as_millis()), Some(99));
        assert_eq!(p.delay(1, None, 0.0), Some(Duration::from_millis(100)));
        assert_eq!(p.delay(2, None, 0.0), Some(Duration::from_millis(150)));
        for jitter in [0.0, 0.3, 0.7, 0.99] {
            let d = p.delay(2, None, jitter).unwrap();
            assert!(d >= Duration::from_millis(150) && d <= Duration::from_millis(300));
        }
    }

    #[test]
    fn no_delay_is_given_once_the_attempts_are_spent() {
        let p = policy();
        assert!(p.delay(2, None, 0.5).is_some());
        assert_eq!(p.delay(3, None, 0.5), None);
        let single = RetryPolicy {
            max_attempts: 1,
            ..policy()
        };
        assert_eq!(single.delay(0, None, 0.5), None);
    }

    #[test]
    fn retry_after_is_a_minimum_and_too_long_a_wait_gives_up() {
        let p = policy();
        assert_eq!(p.delay(0, Some(7), 0.5), Some(Duration::from_secs(7)));
        assert_eq!(p.delay(0, Some(61), 0.5), None);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after(" 120 ", now), Some(120));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(30)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn idempotent_calls_retry_transient_errors_only() {
        let f = |e| Failure::from(e).may_retry(Safety::Idempotent);
        assert!(f(RemoteError::Transport("reset".into())));
        assert!(f(http(503)));
        assert!(f(http(429)));
        assert!(!f(http(404)));
        assert!(!f(RemoteError::NotFound("x".into())));
        assert!(!f(RemoteError::Auth("x".into())));
    }

    #[test]
    fn one_shot_calls_retry_only_when_the_server_cannot_have_acted() {
        let sent = |e| Failure::from(e).may_retry(Safety::Once);
        assert!(!sent(RemoteError::Transport("reset after body".into())));
        assert!(!sent(http(502)));
        assert!(sent(http(429)));
        let unsent = Failure::not_sent(RemoteError::Transport("connection refused".into()));
        assert!(unsent.may_retry(Safety::Once));
        let refused_login = Failure::not_sent(RemoteError::Auth("bad keys".into()));
        assert!(!refused_login.may_retry(Safety::Once));
    }

    #[tokio::test]
    async fn run_retries_until_success_within_the_budget() {
        let calls = AtomicU32::new(0);
        let out = run(&quick(), Safety::Idempotent, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(Failure::from(http(500)))
            } else {
                Ok("done")
            }
        })
        .await;
        assert_eq!(out.unwrap(), "done");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn run_gives_up_with_the_last_error_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let out: Result<()> = run(&quick(), Safety::Idempotent, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Failure::from(http(503)))
        })
        .await;
        assert!(matches!(out, Err(RemoteError::Http { status: 503, .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn run_does_not_repeat_a_permanent_error() {
        let calls = AtomicU32::new(0);
        let out: Result<()> = run(&quick(), Safety::Idempotent, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Failure::from(RemoteError::NotFound("gone".into())))
        })
        .await;
        assert!(matches!(out, Err(RemoteError::NotFound(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
