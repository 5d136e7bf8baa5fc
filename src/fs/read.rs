//! The read seam: how the core gets a file's bytes. For now every read is one ranged request
//! to the remote, collected; the content path (block caches, read-ahead) replaces the body of
//! `read_range` without changing its callers.
use bytes::{Bytes, BytesMut};
use futures_util::TryStreamExt;

use super::error::FsError;
use crate::remote::{ApiError, Remote};

/// Up to `len` bytes of file `id` (of `size` bytes) from `offset`; short only at the end of
/// the file, empty at or past it.
pub async fn read_range<R: Remote>(
    remote: &R,
    id: u64,
    size: u64,
    offset: u64,
    len: u32,
) -> Result<Bytes, FsError> {
    let end = offset.saturating_add(u64::from(len)).min(size);
    if offset >= end {
        return Ok(Bytes::new());
    }
    let expected = end - offset;
    let mut stream = remote.read(id, size, offset..end).await?;
    let mut out = BytesMut::with_capacity(usize::try_from(expected).unwrap_or(0));
    while let Some(chunk) = stream.try_next().await? {
        out.extend_from_slice(&chunk);
    }
    if out.len() as u64 != expected {
        return Err(ApiError::Integrity(format!(
            "file {id}: asked for {expected} bytes at {offset}, got {}",
            out.len()
        ))
        .into());
    }
    Ok(out.freeze())
}
