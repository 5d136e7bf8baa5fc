//! A `Remote` wrapped to misbehave on demand: `Faulty<R>` sits in front of any `Remote` (the
//! in-memory account, or the HTTP client) and counts every call per operation, delays chosen
//! operations, fails the next calls (or every call) of an operation with a given error, and
//! makes content streams break, stall, slow down or arrive in small pieces. Tests state with it
//! exactly how many server calls an operation costs and how each failure surfaces; one wrapper
//! serves every test layer instead of a knob per double.
//!
//! It derefs to the wrapped remote, so a test reaches the account's own setup methods
//! (`add_file`, …) through the wrapper.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::{Deref, Range};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, StreamExt};

use super::{
    ByteStream, FileChange, FileDetails, FileEntry, FolderEntry, Limits, Listing, Remote,
    RemoteError, Result,
};
use crate::sync::Mutex;

/// One operation of the `Remote` trait, for counting calls and injecting faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `list_folder`
    ListFolder,
    /// `file_info`
    FileInfo,
    /// `read`
    Read,
    /// `upload`
    Upload,
    /// `edit_file` (and `rename_file`, which is one)
    EditFile,
    /// `move_file`
    MoveFile,
    /// `copy_file`
    CopyFile,
    /// `delete_file`
    DeleteFile,
    /// `create_folder`
    CreateFolder,
    /// `rename_folder`
    RenameFolder,
    /// `move_folder`
    MoveFolder,
    /// `set_folder_public`
    SetFolderPublic,
    /// `delete_folder`
    DeleteFolder,
    /// `limits`
    Limits,
}

/// A snapshot of how many times each operation was called (failed calls included).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Calls(BTreeMap<Op, u64>);

impl Calls {
    /// Calls of one operation.
    pub fn get(&self, op: Op) -> u64 {
        self.0.get(&op).copied().unwrap_or(0)
    }

    /// Calls of all operations together.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// What content streams do, for streams opened from now on.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamFaults {
    /// Pieces of at most this many bytes (0: as the wrapped remote sends them).
    pub piece: usize,
    /// A pause before each piece.
    pub piece_delay: Duration,
    /// Streams send nothing, ever.
    pub stall: bool,
}

/// Counters of the content streams the wrapper handed out.
#[derive(Default)]
struct StreamCounters {
    delivered: AtomicU64,
    open: AtomicU64,
    most_open: AtomicU64,
}

/// Any `Remote`, with call counters and fault injection in front of it.
#[derive(Default)]
pub struct Faulty<R> {
    inner: R,
    calls: Mutex<BTreeMap<Op, u64>>,
    failures: Mutex<HashMap<Op, VecDeque<RemoteError>>>,
    always: Mutex<HashMap<Op, RemoteError>>,
    latency: Mutex<HashMap<Op, Duration>>,
    ranges: Mutex<Vec<Range<u64>>>,
    stream_faults: Mutex<StreamFaults>,
    break_next_after: Mutex<Option<u64>>,
    counters: Arc<StreamCounters>,
}

impl<R> Deref for Faulty<R> {
    type Target = R;

    fn deref(&self) -> &R {
        &self.inner
    }
}

impl<R: Remote> Faulty<R> {
    /// `inner`, behaving well until told otherwise.
    pub fn wrap(inner: R) -> Self {
        Self {
            inner,
            calls: Mutex::default(),
            failures: Mutex::default(),
            always: Mutex::default(),
            latency: Mutex::default(),
            ranges: Mutex::default(),
            stream_faults: Mutex::default(),
            break_next_after: Mutex::default(),
            counters: Arc::default(),
        }
    }

    /// How often each operation has been called so far.
    pub fn calls(&self) -> Calls {
        Calls(self.calls.lock().clone())
    }

    /// Makes the next call of `op` fail with `error` (errors queue up in order).
    pub fn fail_next(&self, op: Op, error: RemoteError) {
        self.failures.lock().entry(op).or_default().push_back(error);
    }

    /// Makes every later call of `op` fail with `error`, until `clear_failures`.
    pub fn fail_always(&self, op: Op, error: RemoteError) {
        self.always.lock().insert(op, error);
    }

    /// Drops the failures queued by `fail_next` that no call took yet, and those set by
    /// `fail_always`.
    pub fn clear_failures(&self) {
        self.failures.lock().clear();
        self.always.lock().clear();
    }

    /// Makes every later call of `op` take `delay` before it answers.
    pub fn set_latency(&self, op: Op, delay: Duration) {
        self.latency.lock().insert(op, delay);
    }

    /// Shapes the content streams opened from now on.
    pub fn set_stream_faults(&self, faults: StreamFaults) {
        *self.stream_faults.lock() = faults;
    }

    /// Makes the next content stream fail with a transport error once it has sent `bytes`.
    pub fn break_next_stream_after(&self, bytes: u64) {
        *self.break_next_after.lock() = Some(bytes);
    }

    /// The byte ranges `read` was asked for, in order.
    pub fn ranges(&self) -> Vec<Range<u64>> {
        self.ranges.lock().clone()
    }

    /// Content bytes the streams have delivered so far.
    pub fn bytes_delivered(&self) -> u64 {
        self.counters.delivered.load(Ordering::SeqCst)
    }

    /// The most content streams that were open at once.
    pub fn most_open_streams(&self) -> u64 {
        self.counters.most_open.load(Ordering::SeqCst)
    }

    /// Counts the call, waits the configured latency, then fails if a failure is set.
    async fn enter(&self, op: Op) -> Result<()> {
        *self.calls.lock().entry(op).or_default() += 1;
        let delay = self.latency.lock().get(&op).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(error) = self.always.lock().get(&op) {
            return Err(error.clone());
        }
        match self
            .failures
            .lock()
            .get_mut(&op)
            .and_then(VecDeque::pop_front)
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The wrapped remote's stream, shaped and counted as configured.
    fn shaped(&self, inner: ByteStream) -> ByteStream {
        let faults = *self.stream_faults.lock();
        if faults.stall {
            return Box::pin(stream::pending());
        }
        let break_after = self.break_next_after.lock().take();
        let counters = Arc::clone(&self.counters);
        let open = counters.open.fetch_add(1, Ordering::SeqCst) + 1;
        counters.most_open.fetch_max(open, Ordering::SeqCst);
        let guard = OpenStream(Arc::clone(&counters));
        let pieces = inner.flat_map(move |item| {
            let pieces: Vec<Result<Bytes>> = match item {
                Ok(chunk) if faults.piece > 0 && chunk.len() > faults.piece => chunk
                    .chunks(faults.piece)
                    .map(|piece| Ok(chunk.slice_ref(piece)))
                    .collect(),
                other => vec![other],
            };
            stream::iter(pieces)
        });
        let mut sent = 0u64;
        let shaped = pieces.then(move |item| {
            let _open = &guard;
            let counters = Arc::clone(&counters);
            let chunk_len = item.as_ref().map_or(0, |c| c.len() as u64);
            let broken = break_after.is_some_and(|limit| sent >= limit) && item.is_ok();
            sent += chunk_len;
            async move {
                if !faults.piece_delay.is_zero() {
                    tokio::time::sleep(faults.piece_delay).await;
                }
                if broken {
                    return Err(RemoteError::Transport("connection dropped".into()));
                }
                if item.is_ok() {
                    counters.delivered.fetch_add(chunk_len, Ordering::SeqCst);
                }
                item
            }
        });
        Box::pin(shaped)
    }
}

/// Counts a stream as open until it is dropped.
struct OpenStream(Arc<StreamCounters>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<R: Remote> Remote for Faulty<R> {
    async fn list_folder(&self, folder: Option<u64>) -> Result<Listing> {
        self.enter(Op::ListFolder).await?;
        self.inner.list_folder(folder).await
    }

    async fn file_info(&self, id: u64) -> Result<FileDetails> {
        self.enter(Op::FileInfo).await?;
        self.inner.file_info(id).await
    }

    async fn read(&self, id: u64, size: u64, range: Range<u64>) -> Result<ByteStream> {
        self.ranges.lock().push(range.clone());
        self.enter(Op::Read).await?;
        let inner = self.inner.read(id, size, range).await?;
        Ok(self.shaped(inner))
    }

    async fn upload(&self, folder: Option<u64>, name: &str, source: &Path) -> Result<FileEntry> {
        self.enter(Op::Upload).await?;
        self.inner.upload(folder, name, source).await
    }

    async fn edit_file(&self, id: u64, change: FileChange<'_>) -> Result<FileEntry> {
        self.enter(Op::EditFile).await?;
        self.inner.edit_file(id, change).await
    }

    async fn move_file(&self, id: u64, folder: Option<u64>) -> Result<()> {
        self.enter(Op::MoveFile).await?;
        self.inner.move_file(id, folder).await
    }

    async fn copy_file(&self, id: u64, folder: Option<u64>) -> Result<FileEntry> {
        self.enter(Op::CopyFile).await?;
        self.inner.copy_file(id, folder).await
    }

    async fn delete_file(&self, id: u64) -> Result<()> {
        self.enter(Op::DeleteFile).await?;
        self.inner.delete_file(id).await
    }

    async fn create_folder(&self, parent: Option<u64>, name: &str) -> Result<FolderEntry> {
        self.enter(Op::CreateFolder).await?;
        self.inner.create_folder(parent, name).await
    }

    async fn rename_folder(&self, id: u64, name: &str) -> Result<()> {
        self.enter(Op::RenameFolder).await?;
        self.inner.rename_folder(id, name).await
    }

    async fn move_folder(&self, id: u64, parent: Option<u64>) -> Result<()> {
        self.enter(Op::MoveFolder).await?;
        self.inner.move_folder(id, parent).await
    }

    async fn set_folder_public(&self, id: u64, level: u8) -> Result<()> {
        self.enter(Op::SetFolderPublic).await?;
        self.inner.set_folder_public(id, level).await
    }

    async fn delete_folder(&self, id: u64) -> Result<()> {
        self.enter(Op::DeleteFolder).await?;
        self.inner.delete_folder(id).await
    }

    async fn limits(&self) -> Result<Limits> {
        self.enter(Op::Limits).await?;
        self.inner.limits().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::memory::MemoryRemote;
    use futures_util::TryStreamExt;

    #[tokio::test]
    async fn calls_are_counted_per_operation_failed_ones_included() {
        let remote = MemoryRemote::new();
        remote.fail_next(Op::ListFolder, RemoteError::Server("boom".into()));
        assert!(remote.list_folder(None).await.is_err());
        assert!(remote.list_folder(None).await.is_ok());
        remote.limits().await.unwrap();
        let calls = remote.calls();
        assert_eq!(calls.get(Op::ListFolder), 2);
        assert_eq!(calls.get(Op::Limits), 1);
        assert_eq!(calls.get(Op::FileInfo), 0);
        assert_eq!(calls.total(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_delays_only_the_chosen_operation() {
        let remote = Arc::new(MemoryRemote::new());
        remote.set_latency(Op::Limits, Duration::from_secs(2));
        let call = |limits: bool| {
            let remote = Arc::clone(&remote);
            tokio::spawn(async move {
                if limits {
                    remote.limits().await.map(drop)
                } else {
                    remote.list_folder(None).await.map(drop)
                }
            })
        };
        let (listing, limits) = (call(false), call(true));
        tokio::time::sleep(Duration::from_millis(1_999)).await;
        assert!(listing.is_finished());
        assert!(!limits.is_finished());
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(limits.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_stream_comes_in_pieces_and_breaks_where_told() {
        let remote = MemoryRemote::new();
        let content: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let id = remote.add_file(None, "f", content.clone());
        remote.set_stream_faults(StreamFaults {
            piece: 1000,
            ..StreamFaults::default()
        });
        let pieces: Vec<Bytes> = remote
            .read(id, 10_000, 0..10_000)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(pieces.len(), 10);
        assert_eq!(pieces.concat(), content);
        remote.break_next_stream_after(3000);
        let mut stream = remote.read(id, 10_000, 0..10_000).await.unwrap();
        let mut got = 0;
        let error = loop {
            match stream.next().await {
                Some(Ok(piece)) => got += piece.len(),
                Some(Err(e)) => break e,
                None => panic!("the stream was to break"),
            }
        };
        assert_eq!(got, 3000);
        assert!(error.is_transient());
        assert_eq!(remote.bytes_delivered(), 13_000);
        assert_eq!(remote.ranges(), [0..10_000, 0..10_000]);
        assert_eq!(remote.most_open_streams(), 1);
    }

    #[tokio::test]
    async fn a_failure_set_for_always_holds_until_cleared() {
        let remote = MemoryRemote::new();
        remote.fail_always(Op::Limits, RemoteError::Transport("reset".into()));
        assert!(remote.limits().await.is_err());
        assert!(remote.limits().await.is_err());
        remote.clear_failures();
        assert!(remote.limits().await.is_ok());
        assert_eq!(remote.calls().get(Op::Limits), 3);
    }
}
