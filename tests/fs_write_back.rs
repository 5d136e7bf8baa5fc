//! The write-back component over an in-memory account: closes that wait for the upload that
//! carried their bytes, background retries, delayed uploads, and the journal's crash points —
//! after a crash at any step, the next mount of the same cache directory completes the work
//! with exactly one file per name on the server.
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::core::{closing_uploads, crash, delayed, lookup, options_with};
use proptest::prelude::*;
use yetifs::fs::{Core, Ino, WriteBackOptions, ROOT_INO};
use yetifs::remote::memory::{MemoryRemote, Op};
use yetifs::remote::RemoteError;

/// A core keeping its metadata and staging area in `dir`, as a mount does in its cache dir,
/// with uploads scheduled by `write_back`.
fn core_in(
    remote: &Arc<MemoryRemote>,
    dir: &Path,
    write_back: WriteBackOptions,
) -> Arc<Core<MemoryRemote>> {
    let options = options_with(Duration::from_secs(60), write_back);
    Arc::new(common::core::core_in(remote, dir, options))
}

/// Every active file named `name` at the root, with its content.
async fn server_files(remote: &MemoryRemote, name: &str) -> Vec<Vec<u8>> {
    common::core::server_files(remote, None, name).await
}

/// Writes `content` over file `ino` through a new handle and closes it; returns what the
/// close (flush) returned.
async fn overwrite(core: &Core<MemoryRemote>, ino: Ino, content: &[u8]) -> i32 {
    let opened = core
        .open(ino, libc::O_WRONLY | libc::O_TRUNC)
        .await
        .unwrap();
    core.write(opened.fh, 0, content).await.unwrap();
    let flushed = core.flush(opened.fh).await;
    core.release(opened.fh).await.unwrap();
    flushed.map_or_else(|e| e.errno(), |()| 0)
}

#[tokio::test]
async fn a_close_during_an_upload_of_older_bytes_waits_for_the_upload_of_its_own() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "doc", "v0");
    let dir = tempfile::tempdir().unwrap();
    let core = core_in(&remote, dir.path(), closing_uploads());
    let ino = lookup(&core, "doc").await;
    let first = core.open(ino, libc::O_WRONLY).await.unwrap();
    let second = core.open(ino, libc::O_WRONLY).await.unwrap();
    core.write(first.fh, 0, b"first").await.unwrap();
    remote.set_latency(Op::Upload, Duration::from_millis(200));
    let early = {
        let core = Arc::clone(&core);
        tokio::spawn(async move { core.flush(first.fh).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The upload of "first" is on its way: this write waits for it, then its close uploads.
    core.write(second.fh, 0, b"SECOND").await.unwrap();
    core.flush(second.fh).await.unwrap();
    early.await.unwrap().unwrap();
    assert_eq!(server_files(&remote, "doc").await, [b"SECOND".to_vec()]);
    assert_eq!(remote.calls().get(Op::Upload), 2);
    for fh in [first.fh, second.fh] {
        core.release(fh).await.unwrap();
    }
    assert_eq!(remote.calls().get(Op::Upload), 2, "nothing changed since");
}

#[tokio::test]
async fn a_handle_that_wrote_nothing_uploads_nothing_and_a_failed_upload_fails_its_close_only() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "doc", "v0");
    let dir = tempfile::tempdir().unwrap();
    let core = core_in(&remote, dir.path(), closing_uploads());
    let ino = lookup(&core, "doc").await;
    let reader = core.open(ino, libc::O_RDONLY).await.unwrap();
    let idle_writer = core.open(ino, libc::O_RDWR).await.unwrap();
    core.flush(reader.fh).await.unwrap();
    core.flush(idle_writer.fh).await.unwrap();
    assert_eq!(remote.calls().get(Op::Upload), 0);
    remote.fail_next(
        Op::Upload,
        RemoteError::NoSpace("Upload storage full".into()),
    );
    assert_eq!(overwrite(&core, ino, b"v1").await, libc::ENOSPC);
    assert_eq!(overwrite(&core, ino, b"v2").await, 0);
    assert_eq!(server_files(&remote, "doc").await, [b"v2".to_vec()]);
    for fh in [reader.fh, idle_writer.fh] {
        core.release(fh).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn with_write_back_close_returns_at_once_and_the_upload_starts_after_the_delay() {
    let remote = Arc::new(MemoryRemote::new());
    let dir = tempfile::tempdir().unwrap();
    let core = core_in(&remote, dir.path(), delayed(Duration::from_secs(5)));
    tokio::spawn(Arc::clone(&core).watch());
    let (attr, opened) = core
        .create(ROOT_INO, "late", 0o644, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    core.write(opened.fh, 0, b"bytes").await.unwrap();
    core.flush(opened.fh).await.unwrap();
    core.release(opened.fh).await.unwrap();
    assert_eq!(remote.calls().get(Op::Upload), 0);
    let pending = core.pending_upload_list();
    assert_eq!(pending.len(), 1);
    assert!(pending[0]
        .job
        .starts_in
        .is_some_and(|d| d > Duration::from_secs(4)));
    // Times set after the close ride along with the upload.
    let when = std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let times = yetifs::fs::SetAttr {
        mtime: Some(when),
        ..Default::default()
    };
    core.setattr(attr.ino, times).await.unwrap();
    assert_eq!(remote.calls().get(Op::EditFile), 0);
    tokio::time::sleep(Duration::from_secs(6)).await;
    while core.pending_uploads() > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server_files(&remote, "late").await, [b"bytes".to_vec()]);
    assert_eq!(remote.calls().get(Op::Upload), 1);
    assert_eq!(
        remote.calls().get(Op::EditFile),
        1,
        "the upload's own edit only"
    );
    assert_eq!(core.getattr(attr.ino).await.unwrap().mtime, when);
}

#[tokio::test(start_paused = true)]
async fn a_failed_background_upload_is_retried_with_a_doubling_wait_until_it_succeeds() {
    let remote = Arc::new(MemoryRemote::new());
    let dir = tempfile::tempdir().unwrap();
    let core = core_in(&remote, dir.path(), delayed(Duration::ZERO));
    tokio::spawn(Arc::clone(&core).watch());
    for _ in 0..3 {
        remote.fail_next(Op::Upload, RemoteError::Server("Failed moving file".into()));
    }
    let (_, opened) = core
        .create(ROOT_INO, "retried", 0o644, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    core.write(opened.fh, 0, b"bytes").await.unwrap();
    core.flush(opened.fh).await.unwrap();
    core.release(opened.fh).await.unwrap();
    let mut failures_seen = Vec::new();
    while core.pending_uploads() > 0 {
        if let Some(p) = core.pending_upload_list().first() {
            if failures_seen.last() != Some(&p.job.failures) {
                failures_seen.push(p.job.failures);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failures_seen, [0, 1, 2, 3]);
    assert_eq!(server_files(&remote, "retried").await, [b"bytes".to_vec()]);
    assert_eq!(remote.calls().get(Op::Upload), 4);
}

#[tokio::test]
async fn fsync_uploads_at_once_even_with_write_back_and_sync_waits_for_everything() {
    let remote = Arc::new(MemoryRemote::new());
    let dir = tempfile::tempdir().unwrap();
    let core = core_in(&remote, dir.path(), delayed(Duration::from_secs(3600)));
    let (_, opened) = core
        .create(ROOT_INO, "synced", 0o644, libc::O_WRONLY | libc::O_CREAT)
        .await
        .unwrap();
    core.write(opened.fh, 0, b"now").await.unwrap();
    core.fsync(opened.fh).await.unwrap();
    assert_eq!(server_files(&remote, "synced").await, [b"now".to_vec()]);
    core.release(opened.fh).await.unwrap();
    for name in ["a", "b", "c"] {
        let (_, opened) = core
            .create(ROOT_INO, name, 0o644, libc::O_WRONLY | libc::O_CREAT)
            .await
            .unwrap();
        core.write(opened.fh, 0, name.as_bytes()).await.unwrap();
        core.release(opened.fh).await.unwrap();
    }
    assert_eq!(core.pending_uploads(), 3);
    let report = core.sync(Some("b"), |_, _| {}).await;
    assert_eq!((report.total, report.failed.len()), (1, 0));
    assert_eq!(core.pending_uploads(), 2);
    let report = core.sync(None, |_, _| {}).await;
    assert_eq!((report.total, report.failed.len()), (2, 0));
    for name in ["a", "b", "c"] {
        assert_eq!(
            server_files(&remote, name).await,
            [name.as_bytes().to_vec()]
        );
    }
}

/// Where a simulated crash interrupts the journal's steps.
#[derive(Clone, Copy, Debug)]
enum CrashPoint {
    /// Nothing interrupted: the process dies after all closes.
    None,
    /// The upload failed (the row has no upload id).
    Upload,
    /// The name and metadata edit failed (the row has the id).
    Edit,
    /// The deletion of the replaced file failed.
    Delete,
}

fn crash_points() -> impl Strategy<Value = CrashPoint> {
    prop_oneof![
        Just(CrashPoint::None),
        Just(CrashPoint::Upload),
        Just(CrashPoint::Edit),
        Just(CrashPoint::Delete),
    ]
}

/// One step of a crash scenario: a new file, or a new version of an existing one.
#[derive(Clone, Debug)]
struct Step {
    name: usize,
    content: Vec<u8>,
    crash: CrashPoint,
    write_back: bool,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            0..3usize,
            prop::collection::vec(any::<u8>(), 1..64),
            crash_points(),
            any::<bool>(),
        )
            .prop_map(|(name, content, crash, write_back)| Step {
                name,
                content,
                crash,
                write_back,
            }),
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever step of whichever upload a crash interrupts, the next mount of the same cache
    /// directory brings the server to the last closed content of every file, once each.
    #[test]
    fn after_a_crash_at_any_step_the_next_mount_completes_every_upload_once(
        steps in steps(),
        existing in prop::collection::vec(any::<bool>(), 3),
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let remote = Arc::new(MemoryRemote::new());
            let names = ["f0", "f1", "f2"];
            let mut expected: Vec<Option<Vec<u8>>> = vec![None; 3];
            for (i, exists) in existing.iter().enumerate() {
                if *exists {
                    remote.add_file(None, names[i], "old");
                    expected[i] = Some(b"old".to_vec());
                }
            }
            let dir = tempfile::tempdir().unwrap();
            for step in &steps {
                let options = if step.write_back {
                    delayed(Duration::from_secs(3600))
                } else {
                    closing_uploads()
                };
                let core = core_in(&remote, dir.path(), options);
                let name = names[step.name];
                let failing = match step.crash {
                    CrashPoint::None => None,
                    CrashPoint::Upload => Some(Op::Upload),
                    CrashPoint::Edit => Some(Op::EditFile),
                    CrashPoint::Delete => Some(Op::DeleteFile),
                };
                if let Some(op) = failing {
                    remote.fail_next(op, RemoteError::Server("interrupted".into()));
                }
                let ino = match core.lookup(ROOT_INO, name).await {
                    Ok(attr) => attr.ino,
                    Err(_) => {
                        let (attr, opened) = core
                            .create(ROOT_INO, name, 0o644, libc::O_WRONLY | libc::O_CREAT)
                            .await
                            .unwrap();
                        core.release(opened.fh).await.unwrap();
                        attr.ino
                    }
                };
                let opened = core.open(ino, libc::O_WRONLY | libc::O_TRUNC).await.unwrap();
                core.write(opened.fh, 0, &step.content).await.unwrap();
                // The close may report the interrupted step; the bytes are journaled anyway.
                let _ = core.flush(opened.fh).await;
                expected[step.name] = Some(step.content.clone());
                // The process dies: no release, no unmount.
                crash(core);
                remote.clear_failures();
            }
            let core = core_in(&remote, dir.path(), closing_uploads());
            let report = core.sync(None, |_, _| {}).await;
            prop_assert!(report.failed.is_empty(), "{:?}", report.failed);
            prop_assert_eq!(core.pending_uploads(), 0);
            for (i, want) in expected.iter().enumerate() {
                let found = server_files(&remote, names[i]).await;
                match want {
                    Some(bytes) => prop_assert_eq!(found, vec![bytes.clone()]),
                    None => prop_assert!(found.is_empty()),
                }
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn files_an_earlier_mount_left_pending_read_back_before_and_after_their_upload() {
    let remote = Arc::new(MemoryRemote::new());
    let dir = tempfile::tempdir().unwrap();
    {
        let core = core_in(&remote, dir.path(), delayed(Duration::from_secs(3600)));
        for name in ["a", "b"] {
            let (_, opened) = core
                .create(ROOT_INO, name, 0o644, libc::O_WRONLY | libc::O_CREAT)
                .await
                .unwrap();
            core.write(opened.fh, 0, name.repeat(3).as_bytes())
                .await
                .unwrap();
            core.release(opened.fh).await.unwrap();
        }
        crash(core);
    }
    let core = core_in(&remote, dir.path(), closing_uploads());
    let read = |name: &'static str| {
        let core = Arc::clone(&core);
        async move {
            let ino = lookup(&core, name).await;
            let opened = core.open(ino, libc::O_RDONLY).await.unwrap();
            let bytes = core.read(opened.fh, 0, 100).await.unwrap();
            core.release(opened.fh).await.unwrap();
            bytes.to_vec()
        }
    };
    assert_eq!(read("a").await, b"aaa");
    let ino_b = lookup(&core, "b").await;
    assert_eq!(core.resume_journal(), 2);
    let report = core.sync(None, |_, _| {}).await;
    assert_eq!((report.total, report.failed.len()), (2, 0));
    assert_eq!(read("a").await, b"aaa");
    assert_eq!(read("b").await, b"bbb");
    assert_eq!(
        lookup(&core, "b").await,
        ino_b,
        "the same inode, now the server's file"
    );
    assert_eq!(server_files(&remote, "b").await, [b"bbb".to_vec()]);
}
