//! Single-flight of block fetches: at most one fetch per (file, block) at a time; everyone else
//! who needs that block waits for its outcome instead of asking the server again.
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;

use crate::cache::{BlockCache, BlockKey};
use crate::remote::error::RemoteError;

/// The outcome of a fetch as its waiters see it.
pub(crate) enum Slot {
    /// Still being fetched.
    Pending,
    /// Fetched; the block's bytes.
    Ready(Bytes),
    /// Given up after retries; why.
    Failed(Arc<RemoteError>),
}

/// The blocks being fetched right now.
#[derive(Default)]
pub(crate) struct InFlight {
    map: Mutex<HashMap<BlockKey, watch::Receiver<Slot>>>,
}

/// What a caller who needs a block must do.
pub(crate) enum Acquire {
    /// The block is in the cache.
    Cached,
    /// Someone is fetching it: wait on this.
    Wait(watch::Receiver<Slot>),
    /// Nobody is: the caller now owns its fetch.
    Claimed(Claim),
}

/// The right and duty to fetch one block. Completing it publishes the outcome; dropping it
/// without completing releases the block, and its waiters try again.
pub(crate) struct Claim {
    key: BlockKey,
    tx: watch::Sender<Slot>,
    owner: Arc<InFlight>,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<BlockKey, watch::Receiver<Slot>>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims the block, or tells where it is. With `cache` set, a cached block is not claimed;
    /// without, the cache is not consulted (its copy was found unusable).
    pub(crate) fn acquire(self: &Arc<Self>, key: BlockKey, cache: Option<&BlockCache>) -> Acquire {
        let mut map = self.lock();
        if let Some(rx) = map.get(&key) {
            return Acquire::Wait(rx.clone());
        }
        // Checked under the lock: a fetch stores its block in the cache before leaving the map.
        if cache.is_some_and(|c| c.contains(key.0, key.1)) {
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

    /// Claims the block only if it is neither cached nor being fetched.
    pub(crate) fn try_claim(self: &Arc<Self>, key: BlockKey, cache: &BlockCache) -> Option<Claim> {
        match self.acquire(key, Some(cache)) {
            Acquire::Claimed(claim) => Some(claim),
            Acquire::Cached | Acquire::Wait(_) => None,
        }
    }

    /// Whether the block would have to be fetched: neither cached nor being fetched.
    pub(crate) fn is_missing(&self, key: BlockKey, cache: &BlockCache) -> bool {
        !self.lock().contains_key(&key) && !cache.contains(key.0, key.1)
    }
}

impl Claim {
    /// The index of the claimed block in its file.
    pub(crate) fn index(&self) -> u64 {
        self.key.1
    }

    /// A way to wait for this claim's outcome.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Slot> {
        self.tx.subscribe()
    }

    /// Publishes the outcome: a fetched block goes to the cache first, then to the waiters.
    pub(crate) fn complete(self, cache: &BlockCache, outcome: Result<Bytes, RemoteError>) {
        let slot = match outcome {
            Ok(data) => {
                cache.insert(self.key.0, self.key.1, data.clone());
                Slot::Ready(data)
            }
            Err(e) => Slot::Failed(Arc::new(e)),
        };
        self.tx.send_replace(slot);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.owner.lock().remove(&self.key);
    }
}

/// Waits for a fetch's outcome; `None` if it was abandoned and the block must be asked again.
pub(crate) async fn wait(mut rx: watch::Receiver<Slot>) -> Option<Result<Bytes, RemoteError>> {
    loop {
        if let Some(outcome) = outcome(&rx.borrow_and_update()) {
            return Some(outcome);
        }
        if rx.changed().await.is_err() {
            return outcome(&rx.borrow());
        }
    }
}

fn outcome(slot: &Slot) -> Option<Result<Bytes, RemoteError>> {
    match slot {
        Slot::Pending => None,
        Slot::Ready(data) => Some(Ok(data.clone())),
        Slot::Failed(e) => Some(Err(share_error(e))),
    }
}

/// The same error for another waiter (`RemoteError` is not `Clone`: it may hold an `io::Error`).
fn share_error(e: &RemoteError) -> RemoteError {
    match e {
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
