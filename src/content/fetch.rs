//! Getting blocks out of the server: cutting a byte stream into blocks, fetching single blocks
//! with bounded retries, and the pause between retries.
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;

use super::inflight::Claim;
use super::Content;
use crate::cache::buf::BlockBuf;
use crate::remote::error::RemoteError;
use crate::remote::{ByteStream, Remote};

/// A content stream read block by block; bytes of the next block left over from a chunk are
/// kept for the next call.
pub(crate) struct BlockStream {
    stream: ByteStream,
    leftover: Bytes,
}

impl BlockStream {
    /// Opens `remote.read(file_id, size, start..end)`, giving up if the server does not answer
    /// within `stall`.
    pub(crate) async fn open<R: Remote>(
        content: &Content<R>,
        file_id: u64,
        size: u64,
        start: u64,
        end: u64,
    ) -> Result<Self, RemoteError> {
        content.counters.requests.fetch_add(1, Ordering::Relaxed);
        let stall = content.cfg.stall_timeout;
        let stream = tokio::time::timeout(stall, content.remote.read(file_id, size, start..end))
            .await
            .map_err(|_| stalled(stall))??;
        Ok(BlockStream {
            stream,
            leftover: Bytes::new(),
        })
    }

    /// The next `len` bytes, copied into a page-aligned buffer of their own (`BlockBuf`), so
    /// that a cached block never pins a larger network buffer and the disk cache can write it
    /// with direct I/O. Fails if no data comes for `stall`, or the stream ends early.
    pub(crate) async fn next_block<R: Remote>(
        &mut self,
        content: &Content<R>,
        len: usize,
    ) -> Result<Bytes, RemoteError> {
        let stall = content.cfg.stall_timeout;
        let mut block = BlockBuf::with_capacity(len);
        while block.len() < len {
            if self.leftover.is_empty() {
                let chunk = tokio::time::timeout(stall, self.stream.next())
                    .await
                    .map_err(|_| stalled(stall))?;
                match chunk {
                    Some(chunk) => {
                        let chunk = chunk?;
                        content
                            .counters
                            .bytes_fetched
                            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        self.leftover = chunk;
                    }
                    None => {
                        return Err(RemoteError::Integrity(format!(
                            "content ended {} bytes before the end of a block",
                            len - block.len()
                        )))
                    }
                }
            }
            let take = (len - block.len()).min(self.leftover.len());
            let took = block.extend_from_slice(&self.leftover[..take]);
            self.leftover.advance(took);
        }
        Ok(block.freeze())
    }
}

fn stalled(stall: Duration) -> RemoteError {
    RemoteError::Transport(format!("no data from the server for {stall:?}"))
}

impl<R: Remote> Content<R> {
    /// Fetches one block by its own bounded range, retrying transient failures, and publishes
    /// the outcome through the claim. At most `max_parallel_fetches` run at once.
    pub(crate) async fn fetch_block(self: Arc<Self>, file_id: u64, size: u64, claim: Claim) {
        let Ok(_permit) = self.fetch_slots.acquire().await else {
            return;
        };
        let block_size = self.cache.block_size();
        let start = claim.index() * block_size;
        let end = (start + block_size).min(size);
        let mut failures = 0;
        loop {
            let attempt = async {
                let mut stream = BlockStream::open(&self, file_id, size, start, end).await?;
                stream.next_block(&self, (end - start) as usize).await
            };
            match attempt.await {
                Ok(data) => return claim.complete(&self.cache, Ok(data)),
                Err(e) => match self.retry_delay(&e, &mut failures) {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => return claim.complete(&self.cache, Err(e)),
                },
            }
        }
    }

    /// How long to wait before trying again after `e`, or `None` if it is not worth it (a
    /// permanent error, or retries used up). Counts the failure.
    pub(crate) fn retry_delay(&self, e: &RemoteError, failures: &mut u32) -> Option<Duration> {
        *failures += 1;
        if !e.is_transient() || *failures > self.cfg.retries {
            // The read that gets the error is logged at warn where it is answered (the FUSE
            // adapter); one nobody waits for (read-ahead) is counted in the failures only.
            log::debug!("read failed: {e}");
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        log::debug!("read failed, retrying: {e}");
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        let backoff = self
            .cfg
            .retry_delay
            .saturating_mul(1 << (*failures - 1).min(16));
        let asked = match e {
            RemoteError::Http {
                retry_after: Some(secs),
                ..
            } => Duration::from_secs(*secs),
            _ => Duration::ZERO,
        };
        Some(backoff.max(asked).min(self.cfg.read_timeout))
    }
}
