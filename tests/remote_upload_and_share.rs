//! `yetifs fetch` and `yetifs share` against real mounts of the emulator: the server fetches a
//! URL served on loopback into a mounted folder, which lists it at once, byte for byte; the
//! progress of each URL is seen; a URL the server cannot fetch is reported with its reason; a
//! host without remote upload is told once and never asked again; share links are what
//! `folder/listing` and `file/info` give; a folder's level and password change. The same for
//! `NAME:path` of a remote of config.toml, without a mount.
mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use common::mount::{
    bytes, count, mount_command, run_within, upload, wait_within, write_private, yetifs, Mount,
    Server, PATIENCE,
};
use common::origin::Origin;
use serde_json::Value;
use yetifs::emulator::{HostKind, Profile, RangeMode, ServeArgs};

/// A mount whose control socket lives in a runtime directory of the test's, whose listings are
/// trusted for an hour (so that only a listing fetched anew can show what the server added),
/// and whose cache directory outlives it.
struct Setup {
    mount: Mount,
    runtime: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Setup {
    fn mount(server: &Server) -> Setup {
        let runtime = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let mount = mount_in(server, runtime.path(), cache.path());
        Setup {
            mount,
            runtime,
            cache,
        }
    }

    /// `yetifs ARGS` as a command of this mount's user.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = yetifs();
        command
            .args(args)
            .env("XDG_RUNTIME_DIR", self.runtime.path());
        command
    }

    /// Runs `yetifs ARGS` to its end.
    fn run(&self, args: &[&str]) -> Output {
        run_within(&mut self.command(args), PATIENCE)
    }

    /// `PATH` inside the mount, as an argument.
    fn path(&self, inside: &str) -> String {
        self.mount.path().join(inside).display().to_string()
    }
}

/// A mount of `server` with its control socket under `runtime` and its cache in `cache`.
fn mount_in(server: &Server, runtime: &Path, cache: &Path) -> Mount {
    let dirs = tempfile::tempdir().unwrap();
    let mut command = mount_command(server, &cache.join("cache"), &["--dir-ttl", "3600"]);
    command.env("XDG_RUNTIME_DIR", runtime);
    Mount::spawn(command, dirs)
}

/// A config.toml in `dir` naming `server`'s account `work`, with the cache in `cache`.
fn config(server: &Server, dir: &Path, cache: &Path) -> PathBuf {
    let (key1, key2) = server.keys();
    let text = format!(
        "[remotes.work]\napi_url = \"{}\"\nkey1 = \"{key1}\"\nkey2 = \"{key2}\"\n\
         cache_dir = \"{}\"\n",
        server.url(),
        cache.display()
    );
    write_private(dir, "config.toml", &text)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The names in directory `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// An emulator of the host with remote upload.
fn zippyshare() -> Server {
    Server::start(Profile::V4, RangeMode::Naive)
}

#[test]
fn a_fetched_url_is_in_the_mounted_folder_byte_exact_and_listed_at_once() {
    let server = zippyshare();
    let content = bytes(7, 3_000_000);
    let origin = server.block_on(Origin::start(vec![("video.bin", content.clone())], &[]));
    let setup = Setup::mount(&server);
    let docs = setup.mount.path().join("Docs");
    fs::create_dir(&docs).unwrap();
    assert!(
        names_in(&docs).is_empty(),
        "listed empty, and trusted for an hour"
    );
    let out = setup.run(&["fetch", &origin.url("video.bin"), &setup.path("Docs")]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out),
        format!("{}\n", docs.join("video.bin").display())
    );
    assert_eq!(names_in(&docs), ["video.bin"]);
    assert!(fs::read(docs.join("video.bin")).unwrap() == content);
}

#[test]
fn fetch_shows_each_url_queued_then_downloading_with_its_bytes_until_stored() {
    let server = zippyshare();
    let held = bytes(8, 2_000_000);
    let files = vec![("held.bin", held.clone()), ("next.txt", b"next".to_vec())];
    let origin = server.block_on(Origin::start(files, &["held.bin"]));
    let setup = Setup::mount(&server);
    let mut child = setup
        .command(&[
            "fetch",
            &origin.url("held.bin"),
            &origin.url("next.txt"),
            &setup.path(""),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, heard) = mpsc::channel();
    let progress = BufReader::new(child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in progress.lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let halfway = |seen: &[String]| {
        seen.iter()
            .any(|l| l.starts_with("fetch: held.bin: downloading") && l.ends_with("(50%)"))
    };
    let queued = |seen: &[String]| seen.iter().any(|l| l == "fetch: next.txt: queued");
    let started = Instant::now();
    while !(halfway(&seen) && queued(&seen)) {
        let left = PATIENCE.saturating_sub(started.elapsed());
        match heard.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(e) => panic!("no halfway progress ({e}); heard {seen:#?}"),
        }
    }
    origin.release();
    let status = wait_within(&mut child, PATIENCE).expect("the fetch ends once released");
    reader.join().unwrap();
    seen.extend(heard.try_iter());
    assert!(status.success(), "{seen:#?}");
    assert!(
        seen.contains(&"fetch: held.bin: stored as held.bin".to_owned()),
        "{seen:#?}"
    );
    assert!(
        seen.contains(&"fetch: next.txt: stored as next.txt".to_owned()),
        "{seen:#?}"
    );
    let root = setup.mount.path();
    assert!(fs::read(root.join("held.bin")).unwrap() == held);
    assert_eq!(fs::read(root.join("next.txt")).unwrap(), b"next");
}

#[test]
fn a_url_the_server_cannot_fetch_is_reported_with_its_reason_and_exit_code_1() {
    let server = zippyshare();
    let origin = server.block_on(Origin::start(vec![("ok.txt", b"fine".to_vec())], &[]));
    let setup = Setup::mount(&server);
    let missing = origin.url("missing.iso");
    let out = setup.run(&["fetch", &origin.url("ok.txt"), &missing, &setup.path("")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = stderr(&out);
    let line = format!("yetifs: {missing}: Could not get remote file. {missing} (HTTP 404");
    assert!(said.contains(&line), "{said}");
    assert_eq!(stdout(&out), format!("{}\n", setup.path("ok.txt")));
    assert_eq!(names_in(setup.mount.path()), ["ok.txt"]);
}

#[test]
fn a_name_renames_the_arrived_file_and_no_wait_returns_once_scheduled() {
    let server = zippyshare();
    let files = vec![("a.txt", b"first".to_vec()), ("b.txt", b"second".to_vec())];
    let origin = server.block_on(Origin::start(files, &[]));
    let setup = Setup::mount(&server);
    let named = setup.run(&[
        "fetch",
        "--name",
        "report 2024.txt",
        &origin.url("a.txt"),
        &setup.path(""),
    ]);
    assert!(named.status.success(), "{named:?}");
    assert_eq!(
        stdout(&named),
        format!("{}\n", setup.path("report 2024.txt"))
    );
    assert_eq!(names_in(setup.mount.path()), ["report 2024.txt"]);
    assert_eq!(
        fs::read(setup.mount.path().join("report 2024.txt")).unwrap(),
        b"first"
    );

    let scheduled = setup.run(&["fetch", "--no-wait", &origin.url("b.txt"), &setup.path("")]);
    assert!(scheduled.status.success(), "{scheduled:?}");
    assert!(
        stdout(&scheduled).contains("scheduled as item"),
        "{scheduled:?}"
    );
    let client = server.client();
    setup
        .mount
        .eventually("the server stores b.txt", PATIENCE, || {
            let listing = server.block_on(client.folder_listing(None)).unwrap();
            listing.files.iter().any(|f| f.filename == "b.txt")
        });
}

#[test]
fn a_host_without_remote_upload_is_told_in_one_line_with_exit_code_2_and_never_asked_again() {
    let server = Server::with(ServeArgs {
        host: HostKind::Zfils,
        ..ServeArgs::default()
    });
    let setup = Setup::mount(&server);
    let url = "http://127.0.0.1:9/big.iso";
    let before = server.calls().len();
    let out = setup.run(&["fetch", url, &setup.path("")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = stderr(&out);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("this host offers no remote upload"), "{said}");
    assert_eq!(server.calls()[before..], ["file/url_upload_add"]);

    let asked = server.calls().len();
    let again = setup.run(&["fetch", url, &setup.path("")]);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    assert_eq!(
        server.calls().len(),
        asked,
        "the mount remembers the answer"
    );

    let Setup {
        mount,
        runtime,
        cache,
    } = setup;
    assert!(mount.unmount().success());
    let remounted = mount_in(&server, runtime.path(), cache.path());
    let mut command = yetifs();
    command
        .args(["fetch", url])
        .arg(remounted.path())
        .env("XDG_RUNTIME_DIR", runtime.path());
    let later = run_within(&mut command, PATIENCE);
    assert_eq!(later.status.code(), Some(2), "{later:?}");
    assert_eq!(count(&server.calls(), "file/url_upload_add"), 1);

    let place = tempfile::tempdir().unwrap();
    let config = config(&server, place.path(), &cache.path().join("cache"));
    let asked = server.calls().len();
    let direct = run_within(
        yetifs()
            .arg("fetch")
            .arg("--config")
            .arg(&config)
            .args([url, "work:"]),
        PATIENCE,
    );
    assert_eq!(direct.status.code(), Some(2), "{direct:?}");
    assert_eq!(server.calls().len(), asked, "not even a login");
}

#[test]
fn share_prints_the_links_that_folder_listing_and_file_info_give() {
    let server = zippyshare();
    let client = server.client();
    let folder = server
        .block_on(client.folder_create(None, "Photos", Some(1)))
        .unwrap();
    let file_id = upload(&server, Some(folder.id), "cat.jpg", b"meow");
    let root = server.block_on(client.folder_listing(None)).unwrap();
    let listed_folder = root.folders.iter().find(|f| f.id == folder.id).unwrap();
    let inside = server
        .block_on(client.folder_listing(Some(folder.id)))
        .unwrap();
    let listed_file = &inside.files[0];
    let info = server.block_on(client.file_info(file_id)).unwrap();
    assert_eq!(listed_file.url_file, info.file.url_file);

    let setup = Setup::mount(&server);
    let (photos, cat) = (setup.path("Photos"), setup.path("Photos/cat.jpg"));
    let out = setup.run(&["share", "--json", &photos, &cat]);
    assert!(out.status.success(), "{out:?}");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = serde_json::json!([
        {
            "path": photos,
            "kind": "folder",
            "id": folder.id,
            "url": listed_folder.url_folder,
            "level": "unlisted",
        },
        {
            "path": cat,
            "kind": "file",
            "id": file_id,
            "url": listed_file.url_file,
            "short_url": listed_file.short_url,
            "downloads": 0,
        },
    ]);
    assert_eq!(shown, expected);
    let plain = setup.run(&["share", &cat]);
    let link = info.file.url_file.as_deref().unwrap();
    let code = &listed_file.short_url;
    assert_eq!(
        stdout(&plain),
        format!("{cat}: {link} (short code {code}, 0 downloads)\n")
    );

    let place = tempfile::tempdir().unwrap();
    let config = config(&server, place.path(), &place.path().join("cache"));
    let direct = run_within(
        yetifs()
            .arg("share")
            .arg("--json")
            .arg("--config")
            .arg(&config)
            .args(["work:Photos", "work:Photos/cat.jpg"]),
        PATIENCE,
    );
    assert!(direct.status.success(), "{direct:?}");
    let shown: Value = serde_json::from_slice(&direct.stdout).unwrap();
    let mut expected = expected;
    expected[0]["path"] = "work:Photos".into();
    expected[1]["path"] = "work:Photos/cat.jpg".into();
    assert_eq!(shown, expected);
}

#[test]
fn share_sets_a_folders_level_and_password_and_the_mount_shows_the_level_at_once() {
    let server = zippyshare();
    let setup = Setup::mount(&server);
    fs::create_dir(setup.mount.path().join("Album")).unwrap();
    fs::write(setup.mount.path().join("Album/song.ogg"), b"la").unwrap();
    let album = setup.path("Album");
    let level_shown = || {
        let out = setup.run(&["share", "--json", &album]);
        assert!(out.status.success(), "{out:?}");
        let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
        shown[0]["level"].as_str().unwrap().to_owned()
    };
    assert_eq!(level_shown(), "private");
    let client = server.client();
    let root = server.block_on(client.folder_listing(None)).unwrap();
    let id = root.folders[0].id;
    let url = root.folders[0].url_folder.clone().unwrap();

    let public = setup.run(&["share", "--public", &album]);
    assert!(public.status.success(), "{public:?}");
    assert_eq!(
        stdout(&public),
        format!("{album}: {url} (public, no password)\n")
    );
    assert_eq!(level_shown(), "public");
    let on_server = server.block_on(client.folder_info(id)).unwrap();
    assert_eq!(on_server.is_public, Some(2));

    let mut locking = setup
        .command(&["share", "--password", &album])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    locking
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret\n")
        .unwrap();
    wait_within(&mut locking, PATIENCE).expect("the change ends");
    let locked = locking.wait_with_output().unwrap();
    assert!(locked.status.success(), "{locked:?}");
    assert_eq!(
        stdout(&locked),
        format!("{album}: {url} (public, password set)\n")
    );
    let on_server = server.block_on(client.folder_info(id)).unwrap();
    assert_eq!(
        on_server.access_password.as_deref(),
        Some("33e1b232a4e6fa0028a6670753749a17"),
        "the MD5 of the password"
    );

    let opened = setup.run(&["share", "--no-password", "--unlisted", &album]);
    assert!(opened.status.success(), "{opened:?}");
    assert_eq!(
        stdout(&opened),
        format!("{album}: {url} (unlisted, no password)\n")
    );
    assert_eq!(level_shown(), "unlisted");
    let on_server = server.block_on(client.folder_info(id)).unwrap();
    assert_eq!(
        (on_server.is_public, on_server.access_password),
        (Some(1), None)
    );

    let song = setup.path("Album/song.ogg");
    let refused = setup.run(&["share", "--private", &song]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(stderr(&refused).contains("not a folder"), "{refused:?}");
}

#[test]
fn a_remote_of_config_toml_is_fetched_into_without_a_mount() {
    let server = zippyshare();
    let content = bytes(9, 500_000);
    let origin = server.block_on(Origin::start(vec![("a.bin", content.clone())], &[]));
    let client = server.client();
    server
        .block_on(client.folder_create(None, "Inbox", None))
        .unwrap();
    let place = tempfile::tempdir().unwrap();
    let config = config(&server, place.path(), &place.path().join("cache"));
    let out = run_within(
        yetifs()
            .arg("fetch")
            .arg("--config")
            .arg(&config)
            .args([&origin.url("a.bin"), "work:Inbox"]),
        PATIENCE,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "work:Inbox/a.bin\n");
    let setup = Setup::mount(&server);
    assert!(fs::read(setup.mount.path().join("Inbox/a.bin")).unwrap() == content);
}
