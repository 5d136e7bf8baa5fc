//! How many API calls are in flight at once: a limit that adapts to the server.
//!
//! Over a link tens of milliseconds long, a tree walk is as fast as its calls are many in
//! flight, and a server has a limit of its own that it does not publish: past it, it answers
//! 429 (often with `Retry-After`), 5xx, or stops answering in time. The limit here learns it
//! the way TCP learns a path's capacity:
//! - **slow start**: from `initial`, each call that succeeded while the limit was in use raises
//!   it by one (it doubles every round trip), until the first sign of overload;
//! - **additive increase**: after that, by `1/limit` per such call (one per round trip);
//! - **multiplicative decrease**: a 429, a 5xx or a transport failure halves it, once per
//!   round of calls — calls sent before the last decrease do not count again, since they were
//!   sent into the overload that caused it;
//! - **`Retry-After`** holds every new call until the time the server asked for.
//!
//! Two classes share the limit. The user's calls may use all of it. Background calls
//! (`remote::priority`) use at most three quarters, and none starts while a user's call
//! waits: a walk of the whole account never stands between the user and the server. Calls that
//! wait are woken whenever a call ends, the limit moves, or a background call is raised.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::remote::priority;
use crate::sync::Mutex;

/// The bounds of the adaptive limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConcurrencyConfig {
    /// Calls in flight at the start.
    pub initial: usize,
    /// The most calls ever in flight.
    pub max: usize,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        ConcurrencyConfig {
            initial: 16,
            max: 64,
        }
    }
}

/// What the end of a call says about the server's load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Answered (an API error included): it keeps up.
    Answered,
    /// 429, 5xx, or no answer: too much. `retry_after` is what the server asked to wait.
    Overloaded {
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
}

/// The state of the limit, for `yetifs status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcurrencyStats {
    /// The limit now (whole calls).
    pub limit: usize,
    /// Calls in flight now.
    pub in_flight: usize,
    /// Calls waiting for room: the user's and background ones.
    pub waiting: usize,
    /// Background calls among those waiting.
    pub waiting_background: usize,
    /// Times the server said it was overloaded, since the start.
    pub slowdowns: u64,
    /// Calls held because the server asked to wait (`Retry-After`), since the start.
    pub held: u64,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    waiting: usize,
    waiting_background: usize,
    /// Bumped at every decrease; a call started in an earlier one cannot decrease again.
    epoch: u64,
    /// Until the first overload: doubling per round trip.
    slow_start: bool,
    /// No call starts before this (the server's `Retry-After`).
    hold_until: Option<Instant>,
    slowdowns: u64,
    held: u64,
}

/// The adaptive limit of one client.
#[derive(Debug)]
pub(crate) struct Concurrency {
    config: ConcurrencyConfig,
    state: Mutex<State>,
    changed: Notify,
}

/// Room for one call; hand back what its end said with [`Permit::finish`]. Dropped without it
/// (the call was cancelled), it frees the room and says nothing.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    owner: &'a Concurrency,
    epoch: u64,
    /// Whether the call took the last room its class had: only such calls show that the limit
    /// could be higher.
    filled: bool,
    finished: bool,
}

impl Concurrency {
    /// A limit starting at `config.initial`.
    pub fn new(config: ConcurrencyConfig) -> Self {
        let max = config.max.max(1);
        let config = ConcurrencyConfig {
            initial: config.initial.clamp(1, max),
            max,
        };
        Concurrency {
            config,
            state: Mutex::new(State {
                limit: config.initial as f64,
                in_flight: 0,
                waiting: 0,
                waiting_background: 0,
                epoch: 0,
                slow_start: true,
                hold_until: None,
                slowdowns: 0,
                held: 0,
            }),
            changed: Notify::new(),
        }
    }

    /// Waits for room for a call of the current task's class (`remote::priority`).
    pub async fn acquire(&self) -> Permit<'_> {
        let background = priority::background();
        let mut waiter = Waiting {
            owner: self,
            counted: None,
        };
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let is_background = background.as_ref().is_some_and(|u| !u.is_urgent());
            let hold = {
                let mut state = self.state.lock();
                let now = Instant::now();
                let hold = state.hold_until.filter(|&until| until > now);
                let room = if is_background {
                    ((state.limit * 0.75) as usize).max(1)
                } else {
                    (state.limit as usize).max(1)
                };
                let others_wait = is_background && state.waiting > state.waiting_background;
                if hold.is_none() && state.in_flight < room && !others_wait {
                    uncount(&mut state, waiter.counted.take());
                    state.in_flight += 1;
                    if state.in_flight < room {
                        // Others of this class may fit as well.
                        self.changed.notify_waiters();
                    }
                    return Permit {
                        owner: self,
                        epoch: state.epoch,
                        filled: state.in_flight >= room,
                        finished: false,
                    };
                }
                if waiter.counted != Some(is_background) {
                    if waiter.counted.is_none() && hold.is_some() {
                        state.held += 1;
                    }
                    uncount(&mut state, waiter.counted);
                    state.waiting += 1;
                    if is_background {
                        state.waiting_background += 1;
                    }
                    waiter.counted = Some(is_background);
                }
                hold
            };
            match (hold, &background) {
                (Some(until), _) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(until) => {}
                    }
                }
                (None, Some(urgency)) if is_background => {
                    tokio::select! {
                        _ = changed => {}
                        _ = urgency.raised() => {}
                    }
                }
                (None, _) => changed.await,
            }
        }
    }

    /// The state now.
    pub fn stats(&self) -> ConcurrencyStats {
        let state = self.state.lock();
        ConcurrencyStats {
            limit: (state.limit as usize).max(1),
            in_flight: state.in_flight,
            waiting: state.waiting,
            waiting_background: state.waiting_background,
            slowdowns: state.slowdowns,
            held: state.held,
        }
    }

    fn end(&self, permit: &Permit<'_>, signal: Option<Signal>) {
        let mut state = self.state.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        match signal {
            Some(Signal::Answered) if permit.filled => {
                let step = if state.slow_start {
                    1.0
                } else {
                    1.0 / state.limit
                };
                state.limit = (state.limit + step).min(self.config.max as f64);
            }
            Some(Signal::Overloaded { retry_after }) => {
                if permit.epoch == state.epoch {
                    state.limit = (state.limit / 2.0).max(1.0);
                    state.epoch += 1;
                    state.slow_start = false;
                    state.slowdowns += 1;
                }
                if let Some(wait) = retry_after {
                    let until = Instant::now() + wait;
                    state.hold_until = Some(state.hold_until.map_or(until, |h| h.max(until)));
                }
            }
            _ => {}
        }
        drop(state);
        self.changed.notify_waiters();
    }
}

/// Uncounts a waiter of class `counted` (`Some(true)`: background).
fn uncount(state: &mut State, counted: Option<bool>) {
    if let Some(background) = counted {
        state.waiting = state.waiting.saturating_sub(1);
        if background {
            state.waiting_background = state.waiting_background.saturating_sub(1);
        }
    }
}

/// A waiter that may be cancelled while it waits: it is uncounted then.
struct Waiting<'a> {
    owner: &'a Concurrency,
    counted: Option<bool>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.counted.is_some() {
            uncount(&mut self.owner.state.lock(), self.counted);
            self.owner.changed.notify_waiters();
        }
    }
}

impl Permit<'_> {
    /// Ends the call with what it said about the server.
    pub fn finish(mut self, signal: Signal) {
        self.finished = true;
        self.owner.end(&self, Some(signal));
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.owner.end(self, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::remote::priority::{in_background, Urgency};

    fn limit(initial: usize, max: usize) -> Arc<Concurrency> {
        Arc::new(Concurrency::new(ConcurrencyConfig { initial, max }))
    }

    const OVERLOAD: Signal = Signal::Overloaded { retry_after: None };

    /// Whether `acquire` gets room within a moment (the clock is paused: a moment is free).
    async fn gets_room(c: &Concurrency) -> bool {
        tokio::time::timeout(Duration::from_millis(1), c.acquire())
            .await
            .map(drop)
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_raises_the_limit_by_one_per_call_that_used_all_of_it() {
        let c = limit(2, 64);
        let (a, b) = (c.acquire().await, c.acquire().await);
        assert!(!gets_room(&c).await, "the limit is 2");
        a.finish(Signal::Answered);
        b.finish(Signal::Answered);
        assert_eq!(
            c.stats().limit,
            3,
            "only the call that filled the room counts"
        );
        let permits = vec![c.acquire().await, c.acquire().await, c.acquire().await];
        for p in permits {
            p.finish(Signal::Answered);
        }
        assert_eq!(c.stats().limit, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_that_never_fill_the_room_do_not_raise_the_limit() {
        let c = limit(4, 64);
        for _ in 0..20 {
            c.acquire().await.finish(Signal::Answered);
        }
        assert_eq!(c.stats().limit, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn overload_halves_the_limit_once_for_the_calls_sent_into_it() {
        let c = limit(16, 64);
        let permits: Vec<_> = futures_util::future::join_all((0..16).map(|_| c.acquire())).await;
        for p in permits {
            p.finish(OVERLOAD);
        }
        let stats = c.stats();
        assert_eq!((stats.limit, stats.slowdowns), (8, 1));
        c.acquire().await.finish(OVERLOAD);
        assert_eq!(
            c.stats().limit,
            4,
            "a call sent after the decrease may decrease again"
        );
        for _ in 0..10 {
            let p = c.acquire().await;
            p.finish(OVERLOAD);
        }
        assert_eq!(c.stats().limit, 1, "never below one");
        assert!(gets_room(&c).await);
    }

    #[tokio::test(start_paused = true)]
    async fn after_an_overload_the_limit_grows_by_one_per_round() {
        let c = limit(4, 64);
        c.acquire().await.finish(OVERLOAD);
        assert_eq!(c.stats().limit, 2);
        for _ in 0..4 {
            let (a, b) = (c.acquire().await, c.acquire().await);
            a.finish(Signal::Answered);
            b.finish(Signal::Answered);
        }
        assert_eq!(c.stats().limit, 3, "2 + four rounds of 1/limit");
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_never_passes_its_maximum() {
        let c = limit(3, 4);
        for _ in 0..5 {
            let permits: Vec<_> = futures_util::future::join_all((0..4).map(|_| async {
                tokio::time::timeout(Duration::from_millis(1), c.acquire())
                    .await
                    .ok()
            }))
            .await;
            for p in permits.into_iter().flatten() {
                p.finish(Signal::Answered);
            }
        }
        assert_eq!(c.stats().limit, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_every_new_call_until_the_time_asked() {
        let c = limit(8, 64);
        c.acquire().await.finish(Signal::Overloaded {
            retry_after: Some(Duration::from_secs(2)),
        });
        let started = Instant::now();
        let waiter = tokio::spawn({
            let c = Arc::clone(&c);
            async move {
                c.acquire().await.finish(Signal::Answered);
                Instant::now()
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(c.stats().held, 1);
        let went = waiter.await.unwrap();
        assert_eq!(went - started, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn background_calls_use_three_quarters_and_wait_while_the_user_waits() {
        let c = limit(4, 4);
        let background = || in_background(Urgency::new(), c.acquire());
        let (b1, b2, b3) = (background().await, background().await, background().await);
        let fourth = tokio::time::timeout(Duration::from_millis(1), background()).await;
        assert!(fourth.is_err(), "three of four for the background");
        let user = c.acquire().await;
        let user_waits = tokio::spawn({
            let c = Arc::clone(&c);
            async move { c.acquire().await.finish(Signal::Answered) }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        b1.finish(Signal::Answered);
        let meanwhile = tokio::time::timeout(Duration::from_millis(1), background()).await;
        assert!(meanwhile.is_err(), "the user's waiting call goes first");
        user_waits.await.unwrap();
        drop((b2, b3, user));
    }

    #[tokio::test(start_paused = true)]
    async fn a_raised_background_call_takes_the_users_room() {
        let c = limit(4, 4);
        let held: Vec<_> = futures_util::future::join_all(
            (0..3).map(|_| in_background(Urgency::new(), c.acquire())),
        )
        .await;
        let urgency = Urgency::new();
        let queued = tokio::spawn({
            let (c, urgency) = (Arc::clone(&c), urgency.clone());
            async move {
                in_background(urgency, async {
                    c.acquire().await.finish(Signal::Answered)
                })
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(!queued.is_finished());
        assert_eq!(c.stats().waiting_background, 1);
        urgency.raise();
        queued.await.unwrap();
        drop(held);
        assert_eq!(c.stats().waiting, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_leaves_no_count_behind() {
        let c = limit(1, 1);
        let p = c.acquire().await;
        assert!(!gets_room(&c).await);
        assert_eq!(c.stats().waiting, 0);
        drop(p);
        assert_eq!(c.stats().in_flight, 0);
        assert!(gets_room(&c).await);
    }
}
