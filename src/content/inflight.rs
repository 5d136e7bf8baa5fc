//! Single-flight of block fetches: at most one fetch per (file, block) at a time; everyone else
//! who needs that block waits for its outcome instead of asking the server again. The claims
//! are `sync::Flights`; what is particular to blocks lives here: the cache that decides whether
//! a block needs fetching, and a fetched block going to that cache before its waiters hear.
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::{BlockCache, BlockKey};
use crate::remote::error::RemoteError;
use crate::sync::{self, Flights};

/// What a caller who needs a block must do.
pub(crate) type Acquire = sync::Acquire<BlockKey, Bytes, RemoteError>;

/// A subscription to a block fetch's outcome.
pub(crate) type Waiter = sync::Waiter<Bytes, RemoteError>;

/// The blocks being fetched right now.
#[derive(Default)]
pub(crate) struct InFlight(Arc<Flights<BlockKey, Bytes, RemoteError>>);

/// The right and duty to fetch one block. Completing it publishes the outcome; dropping it
/// without completing releases the block, and its waiters try again.
pub(crate) struct Claim(sync::Claim<BlockKey, Bytes, RemoteError>);

impl InFlight {
    /// Claims the block, or tells where it is. With `cache` set, a cached block is not claimed;
    /// without, the cache is not consulted (its copy was found unusable).
    pub(crate) fn acquire(&self, key: BlockKey, cache: Option<&BlockCache>) -> Acquire {
        // Asked under the claims' lock: a fetch stores its block in the cache before its claim
        // leaves the map.
        self.0
            .acquire_unless(key, || cache.is_some_and(|c| c.contains(key.0, key.1)))
    }

    /// Claims the block only if it is neither cached nor being fetched.
    pub(crate) fn try_claim(&self, key: BlockKey, cache: &BlockCache) -> Option<Claim> {
        match self.acquire(key, Some(cache)) {
            Acquire::Claimed(claim) => Some(Claim(claim)),
            Acquire::Cached | Acquire::Wait(_) => None,
        }
    }

    /// Whether the block would have to be fetched: neither cached nor being fetched.
    pub(crate) fn is_missing(&self, key: BlockKey, cache: &BlockCache) -> bool {
        !self.0.is_claimed(key) && !cache.contains(key.0, key.1)
    }
}

impl Claim {
    /// Wraps a claim the caller got from [`InFlight::acquire`].
    pub(crate) fn new(claim: sync::Claim<BlockKey, Bytes, RemoteError>) -> Self {
        Self(claim)
    }

    /// The index of the claimed block in its file.
    pub(crate) fn index(&self) -> u64 {
        self.0.key().1
    }

    /// A way to wait for this claim's outcome.
    pub(crate) fn subscribe(&self) -> Waiter {
        self.0.subscribe()
    }

    /// Publishes the outcome: a fetched block goes to the cache first, then to the waiters.
    pub(crate) fn complete(self, cache: &BlockCache, outcome: Result<Bytes, RemoteError>) {
        if let Ok(data) = &outcome {
            cache.insert(self.0.key().0, self.0.key().1, data.clone());
        }
        self.0.complete(outcome);
    }
}
