//! One open file's reader: decides per read whether the reader is sequential (served by a
//! read-ahead) or random (served by single blocks), then gathers the blocks the read covers.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::future::try_join_all;

use super::inflight::{Acquire, Claim};
use super::stream::{ReadAhead, Shared};
use super::Content;
use crate::remote::error::RemoteError;
use crate::remote::Remote;
use crate::sync::Mutex;

/// Reads one file for one open handle; reads may run concurrently (`&self`).
pub struct Reader<R: Remote> {
    content: Arc<Content<R>>,
    file_id: u64,
    size: u64,
    state: Mutex<State>,
}

/// What the reader has learned of its caller's access pattern.
struct State {
    /// Where the previous read ended.
    last_end: Option<u64>,
    /// The first block of the previous read.
    last_first: u64,
    /// The current read-ahead window in bytes.
    window: u64,
    /// The read-ahead, while the caller reads sequentially.
    ahead: Option<ReadAhead>,
}

impl<R: Remote> Reader<R> {
    pub(super) fn new(content: Arc<Content<R>>, file_id: u64, size: u64) -> Self {
        let window = content.cfg.initial_window;
        Reader {
            content,
            file_id,
            size,
            state: Mutex::new(State {
                last_end: None,
                last_first: 0,
                window,
                ahead: None,
            }),
        }
    }

    /// Exactly `min(len, size - offset)` bytes of the file from `offset`; empty at or after the
    /// end. Fails, rather than hang, once the configured read timeout has passed.
    pub async fn read(&self, offset: u64, len: u32) -> Result<Bytes, RemoteError> {
        if len == 0 || offset >= self.size {
            return Ok(Bytes::new());
        }
        let end = self.size.min(offset + u64::from(len));
        let block_size = self.content.cache.block_size();
        let first = offset / block_size;
        let last = (end - 1) / block_size;
        let ahead = self.plan(offset, end, first, last);
        let timeout = self.content.cfg.read_timeout;
        let gather = try_join_all((first..=last).map(|index| self.block(index, ahead.as_deref())));
        let blocks = tokio::time::timeout(timeout, gather).await.map_err(|_| {
            RemoteError::Transport(format!(
                "reading file {} at offset {offset} took longer than {timeout:?}",
                self.file_id
            ))
        })??;
        let start = (offset - first * block_size) as usize;
        let stop = (end - last * block_size) as usize;
        if let [block] = blocks.as_slice() {
            return Ok(block.slice(start..stop));
        }
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        let count = blocks.len();
        for (i, block) in blocks.iter().enumerate() {
            let from = if i == 0 { start } else { 0 };
            let to = if i + 1 == count { stop } else { block.len() };
            out.extend_from_slice(&block[from..to]);
        }
        Ok(out.freeze())
    }

    /// Updates the access pattern with this read and starts, extends or drops the read-ahead;
    /// returns the read-ahead serving this read, if any.
    fn plan(&self, offset: u64, end: u64, first: u64, last: u64) -> Option<Arc<Shared>> {
        let content = &self.content;
        let cfg = &content.cfg;
        let block_size = content.cache.block_size();
        let blocks = |bytes: u64| bytes.div_ceil(block_size).max(1);
        let slack = blocks(cfg.sequential_slack);
        let mut state = self.state.lock();
        let sequential = match state.last_end {
            None => offset == 0,
            Some(last_end) => offset.abs_diff(last_end) <= cfg.sequential_slack,
        };
        let cap = content.window_cap();
        state.window = state.window.min(cap);
        let window = blocks(state.window);
        if let Some(ahead) = &state.ahead {
            if !ahead.serves(first, slack, window) {
                state.ahead = None;
            }
        }
        if state.ahead.is_some() || sequential {
            if first > state.last_first {
                state.window = (state.window * 2).min(cap);
            }
        } else {
            state.window = cfg.initial_window.min(cap);
        }
        let restart = match &state.ahead {
            Some(ahead) => ahead.is_finished(),
            None => sequential,
        };
        if restart {
            let missing = (first..=last).find(|&index| {
                !state.ahead.as_ref().is_some_and(|a| a.has_ready(index))
                    && content
                        .inflight
                        .is_missing((self.file_id, index), &content.cache)
            });
            if let Some(start) = missing {
                let ready = state
                    .ahead
                    .as_ref()
                    .map(ReadAhead::take_ready)
                    .unwrap_or_default();
                state.ahead = Some(ReadAhead::start(
                    content,
                    self.file_id,
                    self.size,
                    start,
                    ready,
                ));
            }
        }
        let target = (last + 1 + blocks(state.window)).min(self.size.div_ceil(block_size));
        if let Some(ahead) = &state.ahead {
            ahead.extend(content, self.file_id, target, first.saturating_sub(1));
        }
        state.last_end = Some(end);
        state.last_first = first;
        state.ahead.as_ref().map(ReadAhead::shared)
    }

    /// Block `index`: from the read-ahead, the cache, a fetch already under way, or a fetch
    /// started here.
    async fn block(&self, index: u64, ahead: Option<&Shared>) -> Result<Bytes, RemoteError> {
        let content = &self.content;
        let counters = &content.counters;
        let block_size = content.cache.block_size();
        let expected = block_size.min(self.size - index * block_size) as usize;
        let key = (self.file_id, index);
        let mut trust_cache = true;
        loop {
            if let Some(data) = ahead.and_then(|a| a.ready(index)) {
                counters.shared_hits.fetch_add(1, Ordering::Relaxed);
                return checked(data, expected);
            }
            let rx = match content
                .inflight
                .acquire(key, trust_cache.then_some(&*content.cache))
            {
                Acquire::Cached => {
                    match content.cache.get(self.file_id, index) {
                        Some(data) if data.len() == expected => {
                            counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                            return Ok(data);
                        }
                        Some(data) => {
                            log::warn!(
                                "cached block {index} of file {} has {} bytes, not {expected}",
                                self.file_id,
                                data.len()
                            );
                            trust_cache = false;
                        }
                        None => {}
                    }
                    continue;
                }
                Acquire::Wait(rx) => {
                    counters.shared_hits.fetch_add(1, Ordering::Relaxed);
                    rx
                }
                Acquire::Claimed(claim) => {
                    let claim = Claim::new(claim);
                    let rx = claim.subscribe();
                    tokio::spawn(Arc::clone(content).fetch_block(self.file_id, self.size, claim));
                    rx
                }
            };
            if let Some(outcome) = rx.outcome().await {
                return outcome.and_then(|data| checked(data, expected));
            }
        }
    }
}

/// The block if it has the length its place in the file requires; never wrong bytes.
fn checked(data: Bytes, expected: usize) -> Result<Bytes, RemoteError> {
    if data.len() == expected {
        Ok(data)
    } else {
        Err(RemoteError::Integrity(format!(
            "block of {} bytes where {expected} were expected",
            data.len()
        )))
    }
}
