//! Single-flight: at most one fetch per key at a time, and everyone who needs the same thing
//! while it is under way waits for that fetch's outcome instead of asking the server again.
//!
//! One mechanism serves both shapes the crate needs. A fetch is a *claim* on a key, held in a
//! map while it runs; whoever finds the key claimed subscribes to the claim's outcome. Completing
//! a claim publishes the value or the error to every waiter; dropping it without completing (the
//! task was cancelled) releases the key, and its waiters try again. [`Flights::run`] is the
//! simple shape (check a cache, else fetch, share the result); the content layer uses the claims
//! directly, because a read-ahead claims a run of blocks at once and fills them one by one as a
//! stream delivers them.
//!
//! The cache check that decides whether to claim runs under the map's lock, and a fetch stores
//! what it got in its cache before its claim leaves the map: so a caller never misses both the
//! claim and the cached value, and never fetches twice what was just fetched.
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use tokio::sync::watch;

use super::Mutex;

/// A claim's outcome as its waiters see it.
enum Slot<V, E> {
    Pending,
    Done(Result<V, E>),
}

/// The keys being fetched right now, each with the channel its outcome will be sent on.
pub struct Flights<K, V, E> {
    map: Mutex<HashMap<K, watch::Receiver<Slot<V, E>>>>,
}

/// What a caller who needs a key must do.
pub enum Acquire<K: Hash + Eq + Copy, V: Clone, E: Clone> {
    /// The caller's cache has it.
    Cached,
    /// Someone is fetching it: wait on this.
    Wait(Waiter<V, E>),
    /// Nobody is: the caller now owns its fetch.
    Claimed(Claim<K, V, E>),
}

/// The right and duty to fetch one key. Completing it publishes the outcome; dropping it
/// without completing releases the key, and its waiters try again.
pub struct Claim<K: Hash + Eq + Copy, V: Clone, E: Clone> {
    key: K,
    tx: watch::Sender<Slot<V, E>>,
    owner: Arc<Flights<K, V, E>>,
}

/// A subscription to a claim's outcome.
pub struct Waiter<V, E>(watch::Receiver<Slot<V, E>>);

impl<K, V, E> Default for Flights<K, V, E> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Copy, V: Clone, E: Clone> Flights<K, V, E> {
    /// Claims `key`, or says who has it, unless `cached` (asked under the lock) says the
    /// caller's cache holds it.
    pub fn acquire_unless(
        self: &Arc<Self>,
        key: K,
        cached: impl FnOnce() -> bool,
    ) -> Acquire<K, V, E> {
        let mut map = self.map.lock();
        if let Some(rx) = map.get(&key) {
            return Acquire::Wait(Waiter(rx.clone()));
        }
        if cached() {
            return Acquire::Cached;
        }
        let (tx, rx) = watch::channel(Slot::Pending);
        map.insert(key, rx);
        Acquire::Claimed(Claim {
            key,
            tx,
            owner: Arc::clone(self),
        })
    }

    /// Whether a fetch of `key` is under way.
    pub fn is_claimed(&self, key: K) -> bool {
        self.map.lock().contains_key(&key)
    }

    /// Returns what `cached` has, or runs `fetch` for `key` and shares its outcome with every
    /// caller that comes for the same key meanwhile. `fetch` must store what it gets where
    /// `cached` finds it, so that callers arriving after it has finished find it there.
    pub async fn run(
        self: &Arc<Self>,
        key: K,
        cached: impl Fn() -> Option<V>,
        fetch: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        let claim = loop {
            let mut found = None;
            match self.acquire_unless(key, || {
                found = cached();
                found.is_some()
            }) {
                Acquire::Cached => {
                    if let Some(value) = found {
                        return Ok(value);
                    }
                }
                Acquire::Wait(waiter) => {
                    if let Some(outcome) = waiter.outcome().await {
                        return outcome;
                    }
                }
                Acquire::Claimed(claim) => break claim,
            }
        };
        let outcome = fetch.await;
        claim.complete(outcome.clone());
        outcome
    }
}

impl<K: Hash + Eq + Copy, V: Clone, E: Clone> Claim<K, V, E> {
    /// The claimed key.
    pub fn key(&self) -> K {
        self.key
    }

    /// A way to wait for this claim's outcome.
    pub fn subscribe(&self) -> Waiter<V, E> {
        Waiter(self.tx.subscribe())
    }

    /// Publishes the outcome to every waiter and releases the key.
    pub fn complete(self, outcome: Result<V, E>) {
        self.tx.send_replace(Slot::Done(outcome));
    }
}

impl<K: Hash + Eq + Copy, V: Clone, E: Clone> Drop for Claim<K, V, E> {
    fn drop(&mut self) {
        self.owner.map.lock().remove(&self.key);
    }
}

impl<V: Clone, E: Clone> Waiter<V, E> {
    /// The claim's outcome; `None` if it was abandoned and the key must be asked for again.
    pub async fn outcome(mut self) -> Option<Result<V, E>> {
        loop {
            if let Slot::Done(outcome) = &*self.0.borrow_and_update() {
                return Some(outcome.clone());
            }
            if self.0.changed().await.is_err() {
                return match &*self.0.borrow() {
                    Slot::Done(outcome) => Some(outcome.clone()),
                    Slot::Pending => None,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    type Flight = Arc<Flights<u64, u32, String>>;

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch() {
        let flight = Flight::default();
        let store = Arc::new(Mutex::new(None::<u32>));
        let fetches = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (flight, store, fetches) = (flight.clone(), store.clone(), fetches.clone());
                tokio::spawn(async move {
                    let cached = || *store.lock();
                    flight
                        .run(1, cached, async {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            *store.lock() = Some(42);
                            Ok(42)
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(42));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_share_the_error_of_the_fetch_they_waited_on() {
        let flight = Flight::default();
        let fetches = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (flight, fetches) = (flight.clone(), fetches.clone());
                tokio::spawn(async move {
                    flight
                        .run(1, || None, async {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Err("down".to_string())
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Err("down".to_string()));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_after_a_failed_fetch_tries_again() {
        let flight = Flight::default();
        let failed = flight.run(1, || None, async { Err("down".into()) }).await;
        assert!(failed.is_err());
        let again = flight.run(1, || None, async { Ok(7) }).await;
        assert_eq!(again, Ok(7));
        assert!(!flight.is_claimed(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_waiters_of_an_abandoned_claim_fetch_for_themselves() {
        let flight = Flight::default();
        let Acquire::Claimed(claim) = flight.acquire_unless(1, || false) else {
            panic!("the first caller claims the key");
        };
        let waiter = tokio::spawn({
            let flight = flight.clone();
            async move { flight.run(1, || None, async { Ok(9) }).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        drop(claim);
        assert_eq!(waiter.await.unwrap(), Ok(9));
    }

    #[test]
    fn a_key_held_in_the_cache_is_not_claimed() {
        let flight = Flight::default();
        assert!(matches!(flight.acquire_unless(1, || true), Acquire::Cached));
        assert!(!flight.is_claimed(1));
    }
}
