//! Whether the server can be reached. A transport failure (no connection, a timeout) takes the
//! mount offline: from then on it answers from what is cached, refuses new changes, and a
//! watcher probes the server with a growing delay until it answers again. Only transport
//! failures count: a server that answers, even with an error, is reachable.
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::remote::RemoteError;
use crate::sync::{Mutex, MutexGuard};

/// First pause between two probes of a server that went away.
pub const FIRST_PROBE_DELAY: Duration = Duration::from_secs(1);
/// Longest pause between two probes: the longest a returning server waits to be noticed.
pub const MAX_PROBE_DELAY: Duration = Duration::from_secs(15);

/// Whether a failed call means the server could not be reached at all.
pub fn is_unreachable(error: &RemoteError) -> bool {
    matches!(error, RemoteError::Unreachable(_))
}

#[derive(Debug, Default)]
struct Record {
    last_error: Option<String>,
    offline_since: Option<SystemTime>,
}

/// The reachability of one mount's server, shared by its operations and its watcher.
#[derive(Debug)]
pub struct Connectivity {
    online: watch::Sender<bool>,
    record: Mutex<Record>,
}

impl Default for Connectivity {
    fn default() -> Self {
        Connectivity {
            online: watch::Sender::new(true),
            record: Mutex::new(Record::default()),
        }
    }
}

impl Connectivity {
    fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock()
    }

    /// Whether the server answered the last time it was asked.
    pub fn is_online(&self) -> bool {
        *self.online.borrow()
    }

    /// The server could not be reached, for `why`; logged once per outage.
    pub fn lost(&self, why: &str) {
        {
            let mut record = self.record();
            record.last_error = Some(why.to_owned());
            record.offline_since.get_or_insert_with(SystemTime::now);
        }
        if self.online.send_replace(false) {
            log::warn!("the server is unreachable ({why}); serving what is cached, read-only");
        }
    }

    /// The server answered; logged once per recovery.
    pub fn reached(&self) {
        if !self.online.send_replace(true) {
            let since = self.record().offline_since.take();
            let lasted = since
                .and_then(|t| t.elapsed().ok())
                .map_or(String::new(), |d| format!(" after {}s", d.as_secs()));
            log::info!("the server is reachable again{lasted}");
        }
    }

    /// Records the outcome of a call to the server: a transport failure takes the mount
    /// offline, anything else proves the server reachable.
    pub fn observe<T>(&self, result: &Result<T, RemoteError>) {
        match result {
            Err(e) if is_unreachable(e) => self.lost(&e.to_string()),
            _ => self.reached(),
        }
    }

    /// The last reason the server could not be reached, kept after it came back.
    pub fn last_error(&self) -> Option<String> {
        self.record().last_error.clone()
    }

    /// Since when the server has been unreachable; `None` while online.
    pub fn offline_since(&self) -> Option<SystemTime> {
        self.record().offline_since
    }

    /// Waits until the mount is offline.
    pub async fn until_offline(&self) {
        let mut online = self.online.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail while we borrow it.
        let _ = online.wait_for(|online| !online).await;
    }
}

/// The pauses between probes: doubling from `FIRST_PROBE_DELAY` up to `MAX_PROBE_DELAY`.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: FIRST_PROBE_DELAY,
        }
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (delay * 2).min(MAX_PROBE_DELAY);
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transport_failures_take_the_mount_offline() {
        let link = Connectivity::default();
        link.observe::<()>(&Err(RemoteError::Http {
            status: 503,
            detail: "busy".into(),
            retry_after: None,
        }));
        assert!(link.is_online());
        link.observe::<()>(&Err(RemoteError::Unreachable("connection refused".into())));
        assert!(!link.is_online());
        assert!(link.offline_since().is_some());
        assert!(link.last_error().unwrap().contains("connection refused"));
    }

    #[test]
    fn an_answer_brings_the_mount_back_and_keeps_the_last_error() {
        let link = Connectivity::default();
        link.lost("timed out");
        link.observe(&Ok(()));
        assert!(link.is_online());
        assert_eq!(link.offline_since(), None);
        assert_eq!(link.last_error().as_deref(), Some("timed out"));
    }

    #[test]
    fn probes_back_off_up_to_the_maximum() {
        let delays: Vec<u64> = Backoff::default().take(6).map(|d| d.as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 15, 15]);
    }

    #[tokio::test]
    async fn waiting_for_an_outage_ends_when_it_starts() {
        let link = std::sync::Arc::new(Connectivity::default());
        let waiter = tokio::spawn({
            let link = link.clone();
            async move { link.until_offline().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        link.lost("gone");
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
