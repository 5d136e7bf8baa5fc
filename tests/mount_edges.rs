//! Edge cases of the read side on a real mount: a server that goes away, a folder of many
//! entries, names the server allows but a directory cannot hold, lookups without a listing
//! first, and what a second open of an unchanged file costs.
mod common;

use std::os::unix::fs::{FileExt, MetadataExt};
use std::time::Duration;

use common::mount::{bytes, count, poll_until, sh, upload, Mount, Server};
use yetifs::api::FileEdit;
use yetifs::emulator::{Profile, RangeMode};

#[test]
fn a_read_the_server_cannot_serve_fails_with_eio_instead_of_hanging() {
    let mut server = Server::start(Profile::V4, RangeMode::Naive);
    upload(&server, None, "file.bin", &bytes(1, 3 << 20));
    let mount = Mount::start(&server, &[]);
    let file = std::fs::File::open(mount.path().join("file.bin")).unwrap();
    server.stop();
    let reading = std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        file.read_at(&mut buf, 2 << 20)
    });
    // The read path gives up at its 30 s read timeout; the kernel tries a failed page once
    // more before it reports the error. Looked at for up to four times that.
    assert!(
        poll_until(Duration::from_secs(120), Duration::from_millis(100), || {
            reading.is_finished()
        }),
        "the read hangs"
    );
    let err = reading.join().unwrap().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
}

#[test]
fn a_folder_of_many_entries_lists_every_one_exactly_once() {
    let server = Server::start(Profile::V5, RangeMode::Correct);
    let client = server.client();
    let folder = server
        .block_on(client.folder_create(None, "many", None))
        .unwrap()
        .id;
    let names: Vec<String> = (0..400)
        .map(|i| format!("entry number {i:04} with a fairly long name.txt"))
        .collect();
    for (i, name) in names.iter().enumerate() {
        upload(&server, Some(folder), name, format!("{i}\n").as_bytes());
    }
    let mount = Mount::start(&server, &[]);
    let mut shown: Vec<String> = std::fs::read_dir(mount.path().join("many"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    shown.sort();
    assert_eq!(shown, names);
    assert_eq!(sh(&mount.path().join("many"), "ls | wc -l").trim(), "400");
    assert_eq!(
        std::fs::read(mount.path().join("many").join(&names[399])).unwrap(),
        b"399\n"
    );
    assert!(mount.unmount().success());
}

#[test]
fn names_a_directory_cannot_hold_are_shown_readable() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let client = server.client();
    let rename = |id: u64, name: &str| {
        server
            .block_on(client.file_edit(
                id,
                &FileEdit {
                    filename: Some(name),
                    ..FileEdit::default()
                },
            ))
            .unwrap();
    };
    let dot = upload(&server, None, "profile", b"dot\n");
    rename(dot, ".profile");
    let long_name = format!("{}.txt", "x".repeat(300));
    let long = upload(&server, None, "long.txt", b"long\n");
    rename(long, &long_name);
    let folder = server
        .block_on(client.folder_create(None, "clash", None))
        .unwrap()
        .id;
    let clash = upload(&server, None, "clash.txt", b"clash\n");
    rename(clash, "clash");

    let mount = Mount::start(&server, &[]);
    let root = mount.path();
    assert_eq!(std::fs::read(root.join(".profile")).unwrap(), b"dot\n");
    let cut = format!(
        "{}~{long}.txt",
        "x".repeat(255 - 4 - 1 - long.to_string().len())
    );
    assert_eq!(cut.len(), 255);
    assert_eq!(std::fs::read(root.join(&cut)).unwrap(), b"long\n");
    // The folder has the lower id in its own sequence; the file is told apart by its id.
    let (dir_name, file_name) = if folder <= clash {
        ("clash".to_owned(), format!("clash~{clash}"))
    } else {
        (format!("clash~{folder}"), "clash".to_owned())
    };
    assert!(std::fs::metadata(root.join(&dir_name)).unwrap().is_dir());
    assert_eq!(std::fs::read(root.join(&file_name)).unwrap(), b"clash\n");
    assert!(mount.unmount().success());
}

#[test]
fn deep_paths_resolve_without_a_listing_first() {
    let server = Server::start(Profile::V5, RangeMode::Naive);
    let client = server.client();
    let mut parent = None;
    for name in ["one", "two", "three"] {
        parent = Some(
            server
                .block_on(client.folder_create(parent, name, None))
                .unwrap()
                .id,
        );
    }
    upload(&server, parent, "leaf.txt", b"leaf\n");
    let twin = upload(&server, parent, "other.txt", b"twin\n");
    server
        .block_on(client.file_edit(
            twin,
            &FileEdit {
                filename: Some("leaf.txt"),
                ..FileEdit::default()
            },
        ))
        .unwrap();
    let mount = Mount::start(&server, &[]);
    let dir = mount.path().join("one/two/three");
    assert_eq!(
        std::fs::read(dir.join(format!("leaf~{twin}.txt"))).unwrap(),
        b"twin\n"
    );
    assert_eq!(std::fs::read(dir.join("leaf.txt")).unwrap(), b"leaf\n");
    let missing = std::fs::metadata(dir.join("nothing.txt")).unwrap_err();
    assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
    assert!(mount.unmount().success());
}

#[test]
fn a_second_open_of_an_unchanged_file_is_served_from_the_page_cache() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let source = bytes(4, 6 << 20);
    upload(&server, None, "video.bin", &source);
    let mount = Mount::start(&server, &[]);
    let path = mount.path().join("video.bin");
    assert!(std::fs::read(&path).unwrap() == source);
    let before = server.calls();
    assert!(std::fs::read(&path).unwrap() == source);
    let again = server.calls().split_off(before.len());
    assert!(again.is_empty(), "a re-read asked the server: {again:?}");
    assert!(count(&before, "file/download") >= 1);

    let meta = std::fs::metadata(&path).unwrap();
    assert!(
        meta.blocks() * 512 >= meta.len(),
        "du would show {} blocks",
        meta.blocks()
    );
    let du: u64 = sh(mount.path(), "du -k video.bin")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(du, 6 << 10);
    assert!(mount.unmount().success());
}
