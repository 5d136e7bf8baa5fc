//! Write-back: the one component that gets staged files to the server. Every upload — the one
//! a `close` waits for, a delayed one under `--write-back`, a retry after a failure, the journal
//! an earlier mount left — is a *job* here, keyed by the staged file's key, and runs through
//! `Core::upload_key` (see `upload`), at most `transfers` at once.
//!
//! A job is in one of these states:
//! - **due** at some instant: the driver starts it then (`--write-back` delays it to
//!   `delay` after the file's last change; a failure pushes it back by a doubling delay, from
//!   1 s to 3 minutes);
//! - **parked** (no due time): it waits to be asked — by a `close`, `fsync`, `yetifs sync`, or,
//!   for one parked because the server was unreachable, by the server answering again;
//! - **running**: one run at a time per file, whoever started it.
//!
//! Whoever needs an upload — a `close` without write-back, `fsync`, `sync`, the unmount — asks
//! for the staged file's change *version* it must carry and waits: if no run is going, it
//! starts one itself on its own task (so nothing depends on the driver's timing); if one is
//! going, it waits for that run and, when the run carried an older version, for the next one.
//! So every caller gets the outcome of the first run that carried its bytes, whichever run
//! that was, and two closes of one file never upload twice at once.
//!
//! A run holds the staged file's `turn` while it sends, so its bytes never change under it:
//! writes to that file wait for the upload to end (`files`). A run that finds nothing changed
//! since the last upload sends nothing.
//!
//! Lock order: a staged file's `turn` (async, held across the run's server calls) comes first;
//! then, each only for short bookkeeping and never across an await, the disk or another of
//! them: `jobs` here, the core's `staged` and `detached` maps, a staged file's state, the
//! core's `state` (inodes, listings, handles). The journal is written only on the blocking pool,
//! under none of them; its separate read connection serves short reads.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

use crate::fs::core::Core;
use crate::fs::error::FsError;
use crate::remote::Remote;
use crate::sync::Mutex;

/// Uploads sent at once unless `--transfers` says otherwise.
pub const DEFAULT_TRANSFERS: usize = 4;
/// How long `--write-back` without a value waits after a file's last change.
pub const DEFAULT_WRITE_BACK_DELAY: Duration = Duration::from_secs(5);
/// The wait before the first retry of a failed upload; it doubles with each failure.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between retries.
const LAST_RETRY: Duration = Duration::from_secs(180);
/// When the driver looks again with nothing due (it is woken sooner by every change).
const IDLE_LOOK: Duration = Duration::from_secs(3600);
/// How long after an upload its last steps wait, without write-back: `tar -x`, `rsync -a` and
/// `cp -p` set times and modes right after closing a file, and those ride with them.
const SETTLE_DELAY: Duration = Duration::from_secs(1);

/// How uploads are scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteBackOptions {
    /// Uploads sent at once.
    pub transfers: usize,
    /// With write-back, the wait after a file's last change before its upload starts; `close`
    /// then returns once the bytes are journaled. Without, `close` waits for the upload.
    pub delay: Option<Duration>,
}

impl Default for WriteBackOptions {
    fn default() -> Self {
        Self {
            transfers: DEFAULT_TRANSFERS,
            delay: None,
        }
    }
}

/// What one run of a file's upload came to.
#[derive(Clone, Debug)]
pub(in crate::fs) enum Outcome {
    /// The server has the bytes, the name and the metadata.
    Done,
    /// The server has the bytes; the name fix, the metadata and the deletion of the replaced
    /// file follow `SETTLE_DELAY` later, so that times and modes set right after a close go
    /// with them.
    Uploaded,
    /// The server could not be reached: the bytes are journaled and go when it answers.
    Deferred,
    /// The run failed; the job is retried later.
    Failed(FsError),
}

impl Outcome {
    /// What the caller who waited for the run returns.
    pub(in crate::fs) fn result(&self) -> Result<(), FsError> {
        match self {
            Outcome::Done | Outcome::Uploaded | Outcome::Deferred => Ok(()),
            Outcome::Failed(e) => Err(FsError::Upload(Arc::new(e.clone()))),
        }
    }
}

/// One run: the change version of the staged file it carried, and how it went.
#[derive(Clone, Debug)]
pub(in crate::fs) struct Attempt {
    pub(in crate::fs) version: u64,
    pub(in crate::fs) outcome: Outcome,
}

impl Attempt {
    pub(in crate::fs) fn new(version: u64, outcome: Outcome) -> Self {
        Self { version, outcome }
    }
}

/// Where a job stands, for `yetifs status` and `yetifs sync`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobState {
    /// Being sent now.
    pub running: bool,
    /// When the driver starts it, from now; `None`: when asked.
    pub starts_in: Option<Duration>,
    /// Failed runs in a row.
    pub failures: u32,
    /// Why the last run failed.
    pub last_error: Option<String>,
}

struct Job {
    due: Option<Instant>,
    running: bool,
    /// A change scheduled the job while it ran: it stays after the run, due then.
    again: Option<Option<Instant>>,
    failures: u32,
    last_error: Option<String>,
    done: watch::Sender<Option<Attempt>>,
}

impl Job {
    fn new() -> Self {
        Self {
            due: None,
            running: false,
            again: None,
            failures: 0,
            last_error: None,
            done: watch::channel(None).0,
        }
    }
}

/// The write-back queue of one mount.
pub(in crate::fs) struct WriteBack {
    options: WriteBackOptions,
    /// By key: the oldest file first, as the driver starts them.
    jobs: Mutex<BTreeMap<u64, Job>>,
    slots: Semaphore,
    wake: Notify,
}

impl WriteBack {
    pub(in crate::fs) fn new(options: WriteBackOptions) -> Self {
        Self {
            options,
            jobs: Mutex::new(BTreeMap::new()),
            slots: Semaphore::new(options.transfers.max(1)),
            wake: Notify::new(),
        }
    }

    /// The delay of write-back mode, if the mount is in it.
    pub(in crate::fs) fn delay(&self) -> Option<Duration> {
        self.options.delay
    }

    /// Makes the job of `key` due at `at` (the latest change decides), or parks it (`None`).
    pub(in crate::fs) fn schedule(&self, key: u64, at: Option<Instant>) {
        {
            let mut jobs = self.jobs.lock();
            let job = jobs.entry(key).or_insert_with(Job::new);
            if job.running {
                job.again = Some(at);
            } else {
                job.due = at;
            }
        }
        self.wake.notify_one();
    }

    /// Makes every parked job due now: the server answers again.
    pub(in crate::fs) fn unpark_all(&self) {
        let now = Instant::now();
        for job in self.jobs.lock().values_mut() {
            if job.due.is_none() && !job.running {
                job.due = Some(now);
            }
        }
        self.wake.notify_one();
    }

    /// The state of every job, by key.
    pub(in crate::fs) fn states(&self) -> HashMap<u64, JobState> {
        let now = Instant::now();
        self.jobs
            .lock()
            .iter()
            .map(|(&key, job)| {
                let state = JobState {
                    running: job.running,
                    starts_in: job.due.map(|due| due.saturating_duration_since(now)),
                    failures: job.failures,
                    last_error: job.last_error.clone(),
                };
                (key, state)
            })
            .collect()
    }

    /// Claims the jobs due by now for the driver; returns them and when the next one is due.
    fn claim_due(&self) -> (Vec<u64>, Option<Instant>) {
        let now = Instant::now();
        let mut ready = Vec::new();
        let mut next: Option<Instant> = None;
        for (&key, job) in self.jobs.lock().iter_mut() {
            match job.due {
                _ if job.running => {}
                Some(due) if due <= now => {
                    job.running = true;
                    job.due = None;
                    ready.push(key);
                }
                Some(due) => next = Some(next.map_or(due, |n| n.min(due))),
                None => {}
            }
        }
        (ready, next)
    }

    /// Records how a run of `key` went and wakes whoever waits for it.
    fn record(&self, key: u64, attempt: Attempt) {
        let mut jobs = self.jobs.lock();
        let Some(job) = jobs.get_mut(&key) else {
            return;
        };
        job.running = false;
        let again = job.again.take();
        match &attempt.outcome {
            Outcome::Done => {
                job.failures = 0;
                job.last_error = None;
                job.done.send_replace(Some(attempt));
                match again {
                    Some(due) => job.due = due,
                    None => {
                        jobs.remove(&key);
                    }
                }
            }
            Outcome::Uploaded => {
                job.failures = 0;
                job.last_error = None;
                let settle = Instant::now() + SETTLE_DELAY;
                job.due = Some(match again {
                    Some(Some(due)) => due.min(settle),
                    _ => settle,
                });
                job.done.send_replace(Some(attempt));
            }
            Outcome::Deferred => {
                job.due = None;
                job.done.send_replace(Some(attempt));
            }
            Outcome::Failed(e) => {
                job.failures += 1;
                job.last_error = Some(e.to_string());
                let retry = if matches!(e, FsError::TooLarge { .. }) {
                    // Only a change can make it fit: the next close asks again.
                    None
                } else {
                    Some(Instant::now() + retry_delay(job.failures))
                };
                job.due = match again {
                    Some(Some(due)) => Some(retry.map_or(due, |r| r.max(due))),
                    _ => retry,
                };
                job.done.send_replace(Some(attempt));
            }
        }
        drop(jobs);
        self.wake.notify_one();
    }
}

/// The wait before retry number `failures` (1 for the first).
fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST_RETRY * 2u32.pow(doublings)).min(LAST_RETRY)
}

/// One upload `sync` waited for and could not complete (also what `yetifs sync` hears over
/// the control socket).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncFailure {
    /// The file, as a path in the mount (or its server name when its folder is not known).
    pub path: String,
    /// Why.
    pub reason: String,
}

/// What `sync` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncReport {
    /// Uploads it waited for.
    pub total: usize,
    /// Those that failed.
    pub failed: Vec<SyncFailure>,
}

impl<R: Remote> Core<R> {
    /// Waits until a run of the upload of `key` has carried change `version` (or a later one)
    /// to the server — and, when `whole`, through the upload's last steps — starting runs on
    /// this task when none is going; returns the outcome.
    pub(in crate::fs) async fn upload_through(
        &self,
        key: u64,
        version: u64,
        whole: bool,
    ) -> Outcome {
        let answers = |attempt: &Attempt| {
            attempt.version >= version && !(whole && matches!(attempt.outcome, Outcome::Uploaded))
        };
        loop {
            let (start, mut done) = {
                let mut jobs = self.writes.writeback.jobs.lock();
                let job = jobs.entry(key).or_insert_with(Job::new);
                // A failure from before the asking does not answer it: asking again retries.
                if let Some(attempt) = job.done.borrow().as_ref() {
                    let succeeded = !matches!(attempt.outcome, Outcome::Failed(_));
                    if answers(attempt) && succeeded {
                        return attempt.outcome.clone();
                    }
                }
                let start = !job.running;
                if start {
                    job.running = true;
                    job.due = None;
                }
                (start, job.done.subscribe())
            };
            if start {
                let attempt = self.run_upload(key).await;
                if answers(&attempt) {
                    return attempt.outcome;
                }
                continue;
            }
            // The run going now may carry an older version: look again once it ends (or the
            // job is gone, its work done).
            if done.changed().await.is_ok() {
                if let Some(attempt) = done.borrow_and_update().as_ref() {
                    if answers(attempt) {
                        return attempt.outcome.clone();
                    }
                }
            }
        }
    }

    /// One run of the upload of `key`, once a transfer slot is free; records its outcome.
    async fn run_upload(&self, key: u64) -> Attempt {
        let attempt = match self.writes.writeback.slots.acquire().await {
            Ok(_slot) => self.upload_key(key).await,
            Err(_) => Attempt::new(0, Outcome::Failed(FsError::Invalid("the mount is ending"))),
        };
        if let Outcome::Failed(e) = &attempt.outcome {
            // The one line the failure gets: whoever waited for the run hears it as an
            // `FsError::Upload`, which the adapter logs at debug only.
            let name = match self.writes.staging.journal().get(key) {
                Ok(Some(row)) => row.name,
                _ => format!("staged file {key}"),
            };
            log::warn!("upload of {name} failed: {e}");
        }
        self.writes.writeback.record(key, attempt.clone());
        attempt
    }

    /// Starts each job when it is due, for the life of the mount: the delayed uploads of
    /// write-back, retries, and the journal an earlier mount left.
    pub(in crate::fs) async fn drive_uploads(self: Arc<Self>) {
        loop {
            let wake = self.writes.writeback.wake.notified();
            let next = if self.link.is_online() {
                let (ready, next) = self.writes.writeback.claim_due();
                for key in ready {
                    let core = Arc::clone(&self);
                    tokio::spawn(async move {
                        core.run_upload(key).await;
                    });
                }
                next
            } else {
                None
            };
            let until = next.unwrap_or_else(|| Instant::now() + IDLE_LOOK);
            tokio::select! {
                () = wake => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// Schedules every upload the journal holds (left by an earlier mount, or waiting for the
    /// server); the driver runs them in the background.
    pub fn resume_journal(&self) -> usize {
        let keys: Vec<u64> = match self.writes.staging.journal().entries() {
            Ok(entries) => entries.into_iter().map(|e| e.key).collect(),
            Err(e) => {
                log::error!("cannot read the journal of pending uploads: {e}");
                return 0;
            }
        };
        let now = Some(Instant::now());
        for &key in &keys {
            self.writes.writeback.schedule(key, now);
        }
        keys.len()
    }

    /// Waits until everything pending — changed files, open or not, and the journal — whose
    /// path is `under` (a path in the mount, `None`: all) is on the server, starting each upload
    /// now. `progress` hears (done, total) after each. Files that failed are reported; they
    /// stay pending and are retried in the background.
    pub async fn sync(&self, under: Option<&str>, progress: impl Fn(usize, usize)) -> SyncReport {
        let targets: Vec<(u64, u64, String)> = self
            .pending_targets()
            .into_iter()
            .filter(|t| match (under, &t.path) {
                (None, _) | (Some(_), None) => true,
                (Some(under), Some(path)) => is_within(path, under),
            })
            .map(|t| {
                let shown = t.path.unwrap_or(t.name);
                (t.key, t.version, shown)
            })
            .collect();
        let total = targets.len();
        progress(0, total);
        let mut done = 0;
        let mut failed = Vec::new();
        let mut runs = stream::iter(targets)
            .map(|(key, version, path)| async move {
                (path, self.upload_through(key, version, true).await)
            })
            .buffer_unordered(total.max(1));
        while let Some((path, outcome)) = runs.next().await {
            done += 1;
            progress(done, total);
            match outcome {
                Outcome::Done | Outcome::Uploaded => {}
                Outcome::Deferred => failed.push(SyncFailure {
                    path,
                    reason: "the server is unreachable; it is uploaded when it answers".into(),
                }),
                Outcome::Failed(e) => failed.push(SyncFailure {
                    path,
                    reason: e.to_string(),
                }),
            }
        }
        SyncReport { total, failed }
    }
}

/// Whether `path` is `dir` or inside it (both relative to the mount's root, `""` the root).
fn is_within(path: &str, dir: &str) -> bool {
    let dir = dir.trim_matches('/');
    dir.is_empty()
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_three_minutes() {
        let waits: Vec<u64> = (1..=10).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 180, 180]);
        assert_eq!(retry_delay(u32::MAX), LAST_RETRY);
    }

    #[test]
    fn a_path_is_within_itself_its_folders_and_the_root_only() {
        assert!(is_within("a/b/c", "a/b"));
        assert!(is_within("a/b", "a/b/"));
        assert!(is_within("a/b", ""));
        assert!(is_within("a/b", "/"));
        assert!(!is_within("a/bc", "a/b"));
        assert!(!is_within("a", "a/b"));
    }

    #[test]
    fn a_change_during_a_run_keeps_the_job_after_it_succeeds() {
        let wb = WriteBack::new(WriteBackOptions::default());
        wb.schedule(7, Some(Instant::now()));
        let (ready, _) = wb.claim_due();
        assert_eq!(ready, [7]);
        let later = Instant::now() + Duration::from_secs(5);
        wb.schedule(7, Some(later));
        wb.record(7, Attempt::new(1, Outcome::Done));
        assert_eq!(wb.jobs.lock().get(&7).and_then(|j| j.due), Some(later));
        let (ready, next) = wb.claim_due();
        assert!(ready.is_empty());
        assert_eq!(next, Some(later));
    }

    #[test]
    fn a_success_with_no_change_since_ends_the_job_and_a_failure_backs_off() {
        let wb = WriteBack::new(WriteBackOptions::default());
        wb.schedule(1, Some(Instant::now()));
        wb.claim_due();
        wb.record(1, Attempt::new(1, Outcome::Failed(FsError::Unreachable)));
        let state = wb.states().remove(&1).unwrap_or_default();
        assert_eq!(state.failures, 1);
        assert!(state.starts_in.is_some_and(|d| d <= FIRST_RETRY));
        wb.jobs.lock().get_mut(&1).unwrap().due = Some(Instant::now());
        wb.claim_due();
        wb.record(1, Attempt::new(1, Outcome::Done));
        assert!(wb.states().is_empty());
    }

    #[test]
    fn a_file_over_the_limit_waits_for_a_change_and_an_outage_for_the_server() {
        let wb = WriteBack::new(WriteBackOptions::default());
        for key in [1, 2] {
            wb.schedule(key, Some(Instant::now()));
        }
        wb.claim_due();
        wb.record(
            1,
            Attempt::new(1, Outcome::Failed(FsError::TooLarge { size: 2, max: 1 })),
        );
        wb.record(2, Attempt::new(1, Outcome::Deferred));
        let states = wb.states();
        assert_eq!(states[&1].starts_in, None);
        assert_eq!(states[&2].starts_in, None);
        wb.unpark_all();
        assert!(wb.states().values().all(|s| s.starts_in.is_some()));
    }
}
