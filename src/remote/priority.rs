//! Whose request goes first. Work the filesystem does ahead of the user (listings of folders
//! not opened yet, upload dates nobody asked for yet, the walk of `--prefetch-tree`) runs inside
//! [`in_background`]: a `Remote` that limits its requests in flight lets such calls wait while
//! calls made for the user wait. None of the trait's methods carry a priority; it rides in a
//! task-local, so that a background future keeps it through every layer it calls.
//!
//! A user can come to need what background work is fetching (an `ls -l` reaching a file whose
//! date is queued): the caller who joins it [`Urgency::raise`]s it, and from then on it waits
//! like the user's own calls.
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

tokio::task_local! {
    static BACKGROUND: Urgency;
}

/// The urgency of one piece of background work, shared by whoever may come to need it.
#[derive(Clone, Debug, Default)]
pub struct Urgency(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    urgent: AtomicBool,
    raised: Notify,
}

impl Urgency {
    /// Work nobody waits for yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Someone waits for this work now: its calls go as the user's do.
    pub fn raise(&self) {
        if !self.0.urgent.swap(true, Ordering::SeqCst) {
            self.0.raised.notify_waiters();
        }
    }

    /// Whether someone waits for it.
    pub fn is_urgent(&self) -> bool {
        self.0.urgent.load(Ordering::SeqCst)
    }

    /// Resolves once the work is raised (at once if it is already).
    pub async fn raised(&self) {
        let notified = self.0.raised.notified();
        if self.is_urgent() {
            return;
        }
        notified.await;
    }
}

/// Runs `work` as background work of urgency `urgency`.
pub async fn in_background<F: Future>(urgency: Urgency, work: F) -> F::Output {
    BACKGROUND.scope(urgency, work).await
}

/// The background work the current task runs for, if any and not raised: `None` for the
/// user's own calls.
pub fn background() -> Option<Urgency> {
    BACKGROUND
        .try_with(Urgency::clone)
        .ok()
        .filter(|u| !u.is_urgent())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_are_the_users_unless_made_in_the_background_and_not_raised() {
        assert!(background().is_none());
        let urgency = Urgency::new();
        let seen = in_background(urgency.clone(), async { background().is_some() }).await;
        assert!(seen);
        urgency.raise();
        let seen = in_background(urgency.clone(), async { background().is_some() }).await;
        assert!(!seen, "raised work goes as the user's");
    }

    #[tokio::test]
    async fn waiting_for_a_raise_ends_when_it_comes() {
        let urgency = Urgency::new();
        let waiter = tokio::spawn({
            let urgency = urgency.clone();
            async move { urgency.raised().await }
        });
        tokio::task::yield_now().await;
        urgency.raise();
        waiter.await.unwrap();
        urgency.raised().await;
    }
}
