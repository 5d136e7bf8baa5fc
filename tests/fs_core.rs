//! The filesystem core over an in-memory account: what each operation shows and how many
//! server calls it costs.
mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::core::{errno, memory_core, names, options, read_all, OWNER};
use yetifs::fs::{Core, Kind, ROOT_INO};
use yetifs::remote::memory::{MemoryRemote, Op};
use yetifs::remote::{Limits, Remote, RemoteError};

const SHORT_TTL: Duration = Duration::from_millis(200);
/// The smallest step of the paused clock the tests take.
const TICK: Duration = Duration::from_millis(1);

fn core_with(remote: &Arc<MemoryRemote>, ttl: Duration) -> Core<MemoryRemote> {
    memory_core(remote, options(ttl))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

#[tokio::test(start_paused = true)]
async fn a_cold_readdir_costs_one_listing_a_warm_one_none_and_one_after_the_ttl() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "a.txt", "a");
    let core = core_with(&remote, SHORT_TTL);
    assert_eq!(names(&core, ROOT_INO).await, ["a.txt"]);
    assert_eq!(remote.calls().get(Op::ListFolder), 1);
    names(&core, ROOT_INO).await;
    core.lookup(ROOT_INO, "a.txt").await.unwrap();
    assert_eq!(remote.calls().get(Op::ListFolder), 1);
    tokio::time::advance(SHORT_TTL - TICK).await;
    names(&core, ROOT_INO).await;
    assert_eq!(
        remote.calls().get(Op::ListFolder),
        1,
        "trusted until its TTL"
    );
    tokio::time::advance(TICK).await;
    names(&core, ROOT_INO).await;
    assert_eq!(remote.calls().get(Op::ListFolder), 2);
}

#[tokio::test(start_paused = true)]
async fn inode_numbers_stay_the_same_across_ttl_refreshes() {
    let remote = Arc::new(MemoryRemote::new());
    let docs = remote.add_folder(None, "docs");
    remote.add_file(Some(docs), "x.bin", "x");
    let core = core_with(&remote, SHORT_TTL);
    let dir = core.lookup(ROOT_INO, "docs").await.unwrap();
    let file = core.lookup(dir.ino, "x.bin").await.unwrap();
    remote.add_file(Some(docs), "new.bin", "n");
    tokio::time::advance(SHORT_TTL).await;
    assert_eq!(core.lookup(ROOT_INO, "docs").await.unwrap().ino, dir.ino);
    assert_eq!(core.lookup(dir.ino, "x.bin").await.unwrap().ino, file.ino);
    assert_eq!(names(&core, dir.ino).await, ["new.bin", "x.bin"]);
    assert_eq!(remote.calls().get(Op::ListFolder), 4);
}

#[tokio::test(start_paused = true)]
async fn a_forgotten_inode_that_left_its_folder_is_dropped_and_keeps_its_number() {
    let remote = Arc::new(MemoryRemote::new());
    let elsewhere = remote.add_folder(None, "elsewhere");
    let id = remote.add_file(None, "moving.txt", "bye");
    let core = core_with(&remote, SHORT_TTL);
    let attr = core.lookup(ROOT_INO, "moving.txt").await.unwrap();
    let live = core.live_inodes();
    remote.move_file(id, Some(elsewhere)).await.unwrap();
    tokio::time::advance(SHORT_TTL).await;
    assert_eq!(names(&core, ROOT_INO).await, ["elsewhere"]);
    // Still looked up by the kernel: still answers.
    assert_eq!(core.getattr(attr.ino).await.unwrap().size, 3);
    core.forget(attr.ino, 1);
    assert_eq!(core.live_inodes(), live - 1);
    assert_eq!(errno(core.getattr(attr.ino).await), libc::ENOENT);
    let dir = core.lookup(ROOT_INO, "elsewhere").await.unwrap();
    let found = core.lookup(dir.ino, "moving.txt").await.unwrap();
    assert_eq!(found.ino, attr.ino);
}

#[tokio::test]
async fn a_forgotten_inode_still_in_a_cached_listing_stays_until_it_leaves() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "kept.txt", "k");
    let core = core_with(&remote, Duration::from_secs(60));
    let attr = core.lookup(ROOT_INO, "kept.txt").await.unwrap();
    core.forget(attr.ino, 1);
    assert_eq!(core.getattr(attr.ino).await.unwrap().ino, attr.ino);
    assert_eq!(
        core.lookup(ROOT_INO, "kept.txt").await.unwrap().ino,
        attr.ino
    );
}

#[tokio::test]
async fn duplicate_names_are_shown_with_the_id_and_resolve_to_their_own_file() {
    let remote = Arc::new(MemoryRemote::new());
    let first = remote.add_file(None, "report.pdf", "first");
    let second = remote.add_file(None, "report.pdf", "second");
    let core = core_with(&remote, Duration::from_secs(60));
    let tagged = format!("report~{second}.pdf");
    let mut expected = vec!["report.pdf".to_owned(), tagged.clone()];
    expected.sort();
    assert_eq!(names(&core, ROOT_INO).await, expected);
    assert!(first < second);
    let plain = core.lookup(ROOT_INO, "report.pdf").await.unwrap();
    let other = core.lookup(ROOT_INO, &tagged).await.unwrap();
    assert_eq!(read_all(&core, plain.ino).await, b"first");
    assert_eq!(read_all(&core, other.ino).await, b"second");
}

#[tokio::test]
async fn slashes_in_server_names_are_shown_as_division_slashes() {
    let remote = Arc::new(MemoryRemote::new());
    let folder = remote.add_folder(None, "AC/DC");
    remote.add_file(Some(folder), "1/2.txt", "half");
    let core = core_with(&remote, Duration::from_secs(60));
    assert_eq!(names(&core, ROOT_INO).await, ["AC∕DC"]);
    let dir = core.lookup(ROOT_INO, "AC∕DC").await.unwrap();
    let file = core.lookup(dir.ino, "1∕2.txt").await.unwrap();
    assert_eq!(read_all(&core, file.ino).await, b"half");
    assert_eq!(
        core.lookup(ROOT_INO, "AC/DC").await.unwrap_err().errno(),
        libc::ENOENT
    );
}

#[tokio::test]
async fn trashed_and_hidden_items_are_invisible() {
    let remote = Arc::new(MemoryRemote::new());
    let old = remote.add_folder(None, "old");
    let reserved = remote.add_folder(None, ".yetifs-deleted");
    let ghost = remote.add_folder(None, "ghost");
    let file = remote.add_file(None, "trash.txt", "t");
    remote.add_file(None, "live.txt", "l");
    remote.delete_folder(old).await.unwrap();
    remote.delete_file(file).await.unwrap();
    let core = core_with(&remote, Duration::from_secs(60));
    core.hide_name(".yetifs-deleted");
    core.hide_folder(ghost);
    assert!(reserved != ghost);
    assert_eq!(names(&core, ROOT_INO).await, ["live.txt"]);
    for name in ["old", "ghost", "trash.txt", ".yetifs-deleted"] {
        let err = core.lookup(ROOT_INO, name).await.unwrap_err();
        assert_eq!(err.errno(), libc::ENOENT, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_lookups_in_one_folder_share_one_listing() {
    let remote = Arc::new(MemoryRemote::new());
    for i in 0..10 {
        remote.add_file(None, &format!("f{i}"), "x");
    }
    remote.set_latency(Op::ListFolder, Duration::from_millis(200));
    let core = Arc::new(core_with(&remote, Duration::from_secs(60)));
    let lookups: Vec<_> = (0..10)
        .map(|i| {
            let core = Arc::clone(&core);
            tokio::spawn(async move { core.lookup(ROOT_INO, &format!("f{i}")).await })
        })
        .collect();
    for lookup in lookups {
        lookup.await.unwrap().unwrap();
    }
    assert_eq!(remote.calls().get(Op::ListFolder), 1);
}

#[tokio::test]
async fn a_failed_listing_maps_to_its_errno_and_is_retried_next_time() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "a", "a");
    let core = core_with(&remote, Duration::from_secs(60));
    remote.fail_next(
        Op::ListFolder,
        RemoteError::Http {
            status: 502,
            detail: "bad gateway".into(),
            retry_after: None,
        },
    );
    assert_eq!(
        core.lookup(ROOT_INO, "a").await.unwrap_err().errno(),
        libc::EIO
    );
    remote.fail_next(Op::ListFolder, RemoteError::Token("expired".into()));
    assert_eq!(
        core.lookup(ROOT_INO, "a").await.unwrap_err().errno(),
        libc::EACCES
    );
    assert!(core.lookup(ROOT_INO, "a").await.is_ok());
}

#[tokio::test]
async fn operations_on_the_wrong_kind_or_handle_fail_with_the_posix_errno() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_folder(None, "dir");
    remote.add_file(None, "file", "data");
    let core = core_with(&remote, Duration::from_secs(60));
    let dir = core.lookup(ROOT_INO, "dir").await.unwrap();
    let file = core.lookup(ROOT_INO, "file").await.unwrap();
    assert_eq!(errno(core.lookup(ROOT_INO, "missing").await), libc::ENOENT);
    assert_eq!(errno(core.lookup(file.ino, "x").await), libc::ENOTDIR);
    assert_eq!(errno(core.opendir(file.ino)), libc::ENOTDIR);
    assert_eq!(
        errno(core.open(dir.ino, libc::O_RDONLY).await),
        libc::EISDIR
    );
    assert_eq!(
        errno(
            core.write(
                core.open(file.ino, libc::O_RDONLY).await.unwrap().fh,
                0,
                b"x"
            )
            .await
        ),
        libc::EBADF
    );
    assert_eq!(errno(core.read(999, 0, 10).await), libc::EBADF);
    assert_eq!(errno(core.release(999).await), libc::EBADF);
    assert_eq!(errno(core.getattr(12345).await), libc::ENOENT);
    let fh = core.opendir(dir.ino).unwrap();
    assert_eq!(errno(core.read(fh, 0, 1).await), libc::EBADF);
}

#[tokio::test]
async fn a_failed_download_fails_the_read_with_eio_and_the_next_read_works() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "f", "content");
    let core = core_with(&remote, Duration::from_secs(60));
    let file = core.lookup(ROOT_INO, "f").await.unwrap();
    let opened = core.open(file.ino, libc::O_RDONLY).await.unwrap();
    remote.fail_next(Op::Read, RemoteError::Server("storage node offline".into()));
    assert_eq!(
        core.read(opened.fh, 0, 7).await.unwrap_err().errno(),
        libc::EIO
    );
    assert_eq!(&core.read(opened.fh, 0, 7).await.unwrap()[..], b"content");
}

#[tokio::test]
async fn a_transient_download_failure_is_retried_without_the_reader_noticing() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "f", "content");
    let core = core_with(&remote, Duration::from_secs(60));
    let file = core.lookup(ROOT_INO, "f").await.unwrap();
    let opened = core.open(file.ino, libc::O_RDONLY).await.unwrap();
    remote.fail_next(
        Op::Read,
        RemoteError::Http {
            status: 503,
            detail: "busy".into(),
            retry_after: None,
        },
    );
    assert_eq!(&core.read(opened.fh, 0, 7).await.unwrap()[..], b"content");
    assert_eq!(remote.calls().get(Op::Read), 2);
}

#[tokio::test]
async fn reads_return_exactly_the_bytes_at_any_offset_and_size() {
    let content = pattern(300_001);
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "big", content.clone());
    let core = core_with(&remote, Duration::from_secs(60));
    let file = core.lookup(ROOT_INO, "big").await.unwrap();
    let opened = core.open(file.ino, libc::O_RDONLY).await.unwrap();
    assert!(opened.keep_cache);
    let len = content.len() as u64;
    let cases: [(u64, u32); 9] = [
        (0, 0),
        (0, 1),
        (1, 4096),
        (65_535, 2),
        (131_072, 131_072),
        (len - 1, 10),
        (len, 10),
        (len + 100, 10),
        (0, u32::MAX),
    ];
    for (offset, size) in cases {
        let got = core.read(opened.fh, offset, size).await.unwrap();
        let start = offset.min(len) as usize;
        let end = (offset + u64::from(size)).min(len) as usize;
        assert_eq!(
            &got[..],
            &content[start..end],
            "offset {offset} size {size}"
        );
    }
}

#[tokio::test]
async fn a_file_is_dated_by_its_upload_and_file_info_is_asked_once_per_file() {
    let remote = Arc::new(MemoryRemote::new());
    let id = remote.add_file(None, "dated", "12345");
    remote.set_uploaded(id, Some(1_600_000_000)).unwrap();
    let core = core_with(&remote, Duration::from_secs(60));
    let uploaded = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let found = core.lookup(ROOT_INO, "dated").await.unwrap();
    assert!(found.provisional, "a lookup never waits for a date");
    assert_ne!(found.mtime, uploaded);
    assert_eq!(remote.calls().get(Op::FileInfo), 0);
    let attr = core.getattr(found.ino).await.unwrap();
    assert_eq!(attr.mtime, uploaded);
    assert!(!attr.provisional);
    assert_eq!((attr.kind, attr.perm, attr.size), (Kind::File, 0o644, 5));
    assert_eq!((attr.uid, attr.gid), (OWNER.uid, OWNER.gid));
    let again = core.lookup(ROOT_INO, "dated").await.unwrap();
    assert_eq!((again.mtime, again.provisional), (uploaded, false));
    let fh = core.opendir(ROOT_INO).unwrap();
    let plus = core.readdirplus(ROOT_INO, fh, 0).await.unwrap();
    assert_eq!(
        plus[2].attr.mtime, uploaded,
        "a known date is shown at once"
    );
    assert_eq!(remote.calls().get(Op::FileInfo), 1);
}

#[tokio::test]
async fn readdirplus_gives_each_entry_its_attributes() {
    let remote = Arc::new(MemoryRemote::new());
    let sub = remote.add_folder(None, "sub");
    remote.add_file(Some(sub), "one", "1");
    remote.add_file(Some(sub), "two", "22");
    let core = core_with(&remote, Duration::from_secs(60));
    let dir = core.lookup(ROOT_INO, "sub").await.unwrap();
    let fh = core.opendir(dir.ino).unwrap();
    let entries = core.readdirplus(dir.ino, fh, 0).await.unwrap();
    let shown: Vec<(&str, Kind, u64)> = entries
        .iter()
        .map(|e| (e.entry.name.as_str(), e.attr.kind, e.attr.size))
        .collect();
    assert_eq!(
        shown,
        [
            (".", Kind::Dir, 0),
            ("..", Kind::Dir, 0),
            ("one", Kind::File, 1),
            ("two", Kind::File, 2)
        ]
    );
    assert_eq!(entries[1].entry.ino, ROOT_INO);
    assert!(entries.iter().all(|e| e.entry.ino == e.attr.ino));
}

#[tokio::test]
async fn a_large_directory_is_read_in_batches_that_together_list_it_once() {
    let remote = Arc::new(MemoryRemote::new());
    let dir = remote.add_folder(None, "big");
    for i in 0..700 {
        remote.add_file(Some(dir), &format!("f{i:03}"), "x");
    }
    let core = core_with(&remote, Duration::from_secs(60));
    let dir = core.lookup(ROOT_INO, "big").await.unwrap();
    let fh = core.opendir(dir.ino).unwrap();
    let mut names = Vec::new();
    let mut offset = 0;
    loop {
        let batch = core.readdirplus(dir.ino, fh, offset).await.unwrap();
        let Some(last) = batch.last() else { break };
        assert!(batch.len() < 700, "one call answered the whole directory");
        offset = last.entry.next_offset;
        names.extend(batch.into_iter().map(|e| e.entry.name));
    }
    let expected: Vec<String> = [".".to_owned(), "..".to_owned()]
        .into_iter()
        .chain((0..700).map(|i| format!("f{i:03}")))
        .collect();
    assert_eq!(names, expected);
    assert_eq!(
        remote.calls().get(Op::FileInfo),
        0,
        "readdirplus hands out provisional attributes instead of waiting for dates"
    );
    let mut plain = Vec::new();
    let mut offset = 0;
    loop {
        let batch = core.readdir(dir.ino, fh, offset).await.unwrap();
        let Some(last) = batch.last() else { break };
        assert!(batch.len() < 700, "one call answered the whole directory");
        offset = last.next_offset;
        plain.extend(batch.into_iter().map(|e| e.name));
    }
    assert_eq!(plain, expected);
}

#[tokio::test(start_paused = true)]
async fn readdir_continues_from_an_offset_in_the_listing_it_started_with() {
    let remote = Arc::new(MemoryRemote::new());
    for name in ["a", "b", "c"] {
        remote.add_file(None, name, "x");
    }
    let core = core_with(&remote, SHORT_TTL);
    let fh = core.opendir(ROOT_INO).unwrap();
    let first = core.readdir(ROOT_INO, fh, 0).await.unwrap();
    assert_eq!(first.len(), 5);
    remote.add_file(None, "0-new", "x");
    tokio::time::advance(SHORT_TTL).await;
    let rest = core
        .readdir(ROOT_INO, fh, first[2].next_offset)
        .await
        .unwrap();
    let rest: Vec<&str> = rest.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(rest, ["b", "c"]);
    assert!(core.readdir(ROOT_INO, fh, 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn extended_attributes_expose_share_links_ids_and_sharing_level() {
    let remote = Arc::new(MemoryRemote::new());
    let folder = remote.add_folder(None, "shared");
    remote.set_folder_public(folder, 2).await.unwrap();
    let file = remote.add_file(None, "doc", "d");
    let core = core_with(&remote, Duration::from_secs(60));
    let f = core.lookup(ROOT_INO, "doc").await.unwrap();
    let d = core.lookup(ROOT_INO, "shared").await.unwrap();
    assert_eq!(
        core.listxattr(f.ino).unwrap(),
        [
            "user.yetifs.id",
            "user.yetifs.url",
            "user.yetifs.short_url",
            "user.yetifs.downloads"
        ]
    );
    let get = |ino, name| String::from_utf8(core.getxattr(ino, name).unwrap()).unwrap();
    assert_eq!(get(f.ino, "user.yetifs.id"), file.to_string());
    assert_eq!(get(f.ino, "user.yetifs.downloads"), "0");
    assert!(get(f.ino, "user.yetifs.url").ends_with(&get(f.ino, "user.yetifs.short_url")));
    assert_eq!(get(d.ino, "user.yetifs.public"), "2");
    assert_eq!(get(d.ino, "user.yetifs.id"), folder.to_string());
    let errno_of = |ino, name| core.getxattr(ino, name).unwrap_err().errno();
    assert_eq!(errno_of(d.ino, "user.yetifs.downloads"), libc::ENODATA);
    // Security labels and ACLs are not stored: "not supported", which `ls -l` remembers per
    // filesystem, where "no such attribute" would be asked again for every file.
    for name in ["security.selinux", "system.posix_acl_access", "trusted.x"] {
        assert_eq!(errno_of(f.ino, name), libc::EOPNOTSUPP, "{name}");
        assert_eq!(errno_of(ROOT_INO, name), libc::EOPNOTSUPP, "{name}");
    }
    assert!(core.listxattr(ROOT_INO).unwrap().is_empty());
}

#[tokio::test]
async fn statfs_reports_the_storage_limit_and_the_size_of_files_seen() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "a", vec![0u8; 8192]);
    remote.add_file(None, "b", vec![0u8; 4096]);
    remote.set_limits(Limits {
        max_storage: Some(1 << 30),
        ..Limits::default()
    });
    let core = core_with(&remote, Duration::from_secs(60));
    names(&core, ROOT_INO).await;
    let s = core.statfs().await.unwrap();
    assert_eq!(u64::from(s.bsize), 4096);
    assert_eq!(s.blocks, (1 << 30) / 4096);
    assert_eq!(s.blocks - s.bfree, 3);
    core.statfs().await.unwrap();
    assert_eq!(remote.calls().get(Op::Limits), 1);
}

#[tokio::test]
async fn access_follows_the_permission_bits_and_refuses_writing() {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "f", "x");
    let core = core_with(&remote, Duration::from_secs(60));
    let f = core.lookup(ROOT_INO, "f").await.unwrap();
    assert!(core.access(f.ino, OWNER.uid, OWNER.gid, libc::R_OK).is_ok());
    assert!(core
        .access(ROOT_INO, 4242, 4242, libc::R_OK | libc::X_OK)
        .is_ok());
    let denied = core.access(f.ino, OWNER.uid, OWNER.gid, libc::X_OK);
    assert_eq!(denied.unwrap_err().errno(), libc::EACCES);
    let write = core.access(f.ino, 4242, 4242, libc::W_OK);
    assert_eq!(write.unwrap_err().errno(), libc::EACCES);
}

#[tokio::test]
async fn the_root_shows_the_mount_time_and_directories_0755() {
    let before = SystemTime::now() - Duration::from_secs(1);
    let remote = Arc::new(MemoryRemote::new());
    let core = core_with(&remote, Duration::from_secs(60));
    let root = core.getattr(ROOT_INO).await.unwrap();
    assert_eq!(
        (root.kind, root.perm, root.ino),
        (Kind::Dir, 0o755, ROOT_INO)
    );
    assert!(root.mtime >= before);
    assert_eq!(remote.calls().total(), 0);
    assert!(remote.list_folder(None).await.unwrap().files.is_empty());
}
