//! Read-ahead for a sequential reader: one ranged read from the first missing block to the end
//! of the file, kept open and consumed only as far as the blocks claimed for it. The reader
//! claims blocks ahead of itself (the window); the task below fills them in order. Claimed
//! blocks are in flight for everyone, so other readers wait for them instead of fetching them.
//!
//! With `stream_lanes` above one, the blocks from the start are cut into segments of
//! `stream_segment` bytes dealt round-robin to that many tasks (lanes), each filling its
//! segments in order from a ranged read of the segment: one connection's throughput (or one
//! round trip per window) no longer bounds a sequential reader.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::fetch::BlockStream;
use super::inflight::Claim;
use super::Content;
use crate::remote::Remote;
use crate::sync::Mutex;

/// A running read-ahead over one file.
pub(crate) struct ReadAhead {
    start: u64,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    /// The mount's count of running read-aheads, which this one is part of until dropped.
    streams: Arc<AtomicUsize>,
}

/// What the reader and the streaming task share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// One per lane: rung when blocks are claimed.
    wake: Vec<Notify>,
}

struct State {
    /// Claimed blocks the task has not started yet.
    claims: BTreeMap<u64, Claim>,
    /// One past the last block ever claimed.
    claimed_until: u64,
    /// No block will be claimed any more (end of file, or a block someone else has).
    stopped: bool,
    /// Every lane has ended.
    finished: bool,
    /// Lanes still running.
    running: usize,
    /// Blocks read ahead and not yet passed by the reader, kept even if the cache drops them.
    ready: BTreeMap<u64, Bytes>,
}

impl State {
    /// No more claims, and those not fetched are released.
    fn stop(&mut self) {
        self.stopped = true;
        self.claims.clear();
    }

    /// Ends the read-ahead: stopped, and every lane over.
    fn finish(&mut self) {
        self.stop();
        self.running = 0;
        self.finished = true;
    }

    /// One lane has ended; with the last one the read-ahead has.
    fn lane_ended(&mut self) {
        self.running = self.running.saturating_sub(1);
        if self.running == 0 {
            self.finish();
        }
    }
}

impl Shared {
    /// A block this read-ahead has fetched, if the reader has not passed it yet.
    pub(crate) fn ready(&self, index: u64) -> Option<Bytes> {
        self.state.lock().ready.get(&index).cloned()
    }
}

impl ReadAhead {
    /// Starts reading file `file_id` (of `size` bytes) from block `start`, keeping the blocks a
    /// previous read-ahead had ready; nothing is fetched until blocks are claimed with `extend`.
    pub(crate) fn start<R: Remote>(
        content: &Arc<Content<R>>,
        file_id: u64,
        size: u64,
        start: u64,
        ready: BTreeMap<u64, Bytes>,
    ) -> Self {
        let block_size = content.cache.block_size();
        let segment = content.cfg.stream_segment.div_ceil(block_size).max(1);
        let remaining = size.div_ceil(block_size).saturating_sub(start);
        // No more lanes than segments left: a short tail needs no extra connections.
        let lanes =
            (content.cfg.stream_lanes.max(1) as u64).min(remaining.div_ceil(segment).max(1));
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                claims: BTreeMap::new(),
                claimed_until: start,
                stopped: false,
                finished: false,
                running: lanes as usize,
                ready,
            }),
            wake: (0..lanes).map(|_| Notify::new()).collect(),
        });
        let tasks = (0..lanes)
            .map(|lane| {
                tokio::spawn(run(
                    Arc::clone(content),
                    file_id,
                    size,
                    Arc::clone(&shared),
                    Lane {
                        start,
                        index: lane,
                        count: lanes,
                        segment,
                    },
                ))
            })
            .collect();
        let streams = Arc::clone(&content.streams);
        streams.fetch_add(1, Ordering::Relaxed);
        ReadAhead {
            start,
            shared,
            tasks,
            streams,
        }
    }

    /// The state shared with the task, for looking up blocks read ahead.
    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Whether a read starting at block `first` is one this read-ahead serves: not before its
    /// start (less `slack` blocks) and not beyond its claims plus `window` blocks.
    pub(crate) fn serves(&self, first: u64, slack: u64, window: u64) -> bool {
        let state = self.shared.state.lock();
        first + slack >= self.start && first <= state.claimed_until.saturating_add(window)
    }

    /// Whether the task has ended (end of file, a block someone else has, or a failure): blocks
    /// it has not fetched need a new read-ahead.
    pub(crate) fn is_finished(&self) -> bool {
        self.shared.state.lock().finished
    }

    /// Whether block `index` has been read ahead and not passed yet.
    pub(crate) fn has_ready(&self, index: u64) -> bool {
        self.shared.state.lock().ready.contains_key(&index)
    }

    /// Takes the blocks read ahead, to hand them to the read-ahead replacing this one.
    pub(crate) fn take_ready(&self) -> BTreeMap<u64, Bytes> {
        std::mem::take(&mut self.shared.state.lock().ready)
    }

    /// Claims blocks up to (not including) `target`, stopping for good at the first block that
    /// is cached or fetched by someone else; forgets blocks read ahead before `passed`.
    pub(crate) fn extend<R: Remote>(
        &self,
        content: &Content<R>,
        file_id: u64,
        target: u64,
        passed: u64,
    ) {
        let mut state = self.shared.state.lock();
        state.ready = state.ready.split_off(&passed);
        let mut changed = false;
        while !state.stopped && state.claimed_until < target {
            let index = state.claimed_until;
            match content.inflight.try_claim((file_id, index), &content.cache) {
                Some(claim) => {
                    state.claims.insert(index, claim);
                    state.claimed_until += 1;
                }
                None => state.stopped = true,
            }
            changed = true;
        }
        if changed {
            for wake in &self.shared.wake {
                wake.notify_one();
            }
        }
    }
}

impl Drop for ReadAhead {
    /// Stops the task and releases the blocks it had not fetched yet.
    fn drop(&mut self) {
        self.streams.fetch_sub(1, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
        let mut state = self.shared.state.lock();
        state.finish();
        state.ready.clear();
    }
}

/// Which blocks one streaming task fills: segment `k` (of `segment` blocks, counted from
/// `start`) belongs to lane `k % count`.
#[derive(Clone, Copy)]
struct Lane {
    start: u64,
    index: u64,
    count: u64,
    segment: u64,
}

impl Lane {
    /// The lane's first block.
    fn first(&self) -> u64 {
        if self.count == 1 {
            self.start
        } else {
            self.start + self.index * self.segment
        }
    }

    /// The block after `pos` in this lane, and whether it starts a new segment (a new ranged
    /// read).
    fn next(&self, pos: u64) -> (u64, bool) {
        let next = pos + 1;
        if self.count > 1 && (next - self.start) % self.segment == 0 {
            (next + (self.count - 1) * self.segment, true)
        } else {
            (next, false)
        }
    }

    /// Where the ranged read for block `pos` ends (bytes, exclusive): the end of its segment,
    /// or of the file with a single lane.
    fn range_end(&self, pos: u64, block_size: u64, size: u64) -> u64 {
        if self.count == 1 {
            return size;
        }
        let segment_end = self.start + ((pos - self.start) / self.segment + 1) * self.segment;
        size.min(segment_end.saturating_mul(block_size))
    }
}

/// The streaming task of one lane: fills its claimed blocks in order from a ranged read,
/// reopening it (from the block it was filling) after a transient failure, up to the configured
/// retries. A failure given up stops the whole read-ahead.
async fn run<R: Remote>(
    content: Arc<Content<R>>,
    file_id: u64,
    size: u64,
    shared: Arc<Shared>,
    lane: Lane,
) {
    let block_size = content.cache.block_size();
    let wake = &shared.wake[lane.index as usize];
    let mut pos = lane.first();
    let mut source: Option<BlockStream> = None;
    let mut failures = 0;
    loop {
        let claim = loop {
            {
                let mut state = shared.state.lock();
                if let Some(claim) = state.claims.remove(&pos) {
                    break claim;
                }
                if state.stopped || pos * block_size >= size {
                    state.lane_ended();
                    return;
                }
            }
            wake.notified().await;
        };
        let offset = pos * block_size;
        let len = block_size.min(size - offset) as usize;
        let end = lane.range_end(pos, block_size, size);
        let outcome = loop {
            let attempt = async {
                let stream = match source.as_mut() {
                    Some(stream) => stream,
                    None => source
                        .insert(BlockStream::open(&content, file_id, size, offset, end).await?),
                };
                stream.next_block(&content, len).await
            };
            match attempt.await {
                Ok(data) => break Ok(data),
                Err(e) => {
                    source = None;
                    match content.retry_delay(&e, &mut failures) {
                        Some(delay) => tokio::time::sleep(delay).await,
                        None => break Err(e),
                    }
                }
            }
        };
        match outcome {
            Ok(data) => {
                failures = 0;
                shared.state.lock().ready.insert(pos, data.clone());
                claim.complete(&content.cache, Ok(data));
                let (next, new_segment) = lane.next(pos);
                if new_segment {
                    source = None;
                }
                pos = next;
            }
            Err(e) => {
                claim.complete(&content.cache, Err(e));
                let mut state = shared.state.lock();
                state.stop();
                state.lane_ended();
                return;
            }
        }
    }
}
