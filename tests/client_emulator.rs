//! The client against the emulator (`yetifs serve` in process): every endpoint, on both server
//! generations, every host's endpoint set, both range modes, and with faults injected.
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use yetifs::api::{Client, ClientConfig, Credentials, FileEdit, RetryPolicy, TokenPolicy};
use yetifs::emulator::{Emulator, HostKind, Profile, RangeMode, ServeArgs};
use yetifs::remote::{FileEntry, Remote, RemoteError};

fn args(profile: Profile, host: HostKind, ranges: RangeMode) -> ServeArgs {
    ServeArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        profile,
        host,
        ranges,
        ..ServeArgs::default()
    }
}

fn client_with(emu: &Emulator, key1: &str, key2: &str) -> Client {
    let mut config = ClientConfig::new(emu.base_url(), Credentials::keys(key1, key2));
    config.retry = RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(3),
    };
    config.download_resumes = 8;
    config.server_utc_offset = Some(0);
    Client::new(config).unwrap()
}

fn client(emu: &Emulator) -> Client {
    client_with(emu, emu.key1(), emu.key2())
}

fn sample(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn upload(
    client: &Client,
    dir: &Path,
    folder: Option<u64>,
    name: &str,
    data: &[u8],
) -> FileEntry {
    let path = dir.join("upload.tmp");
    std::fs::write(&path, data).unwrap();
    client.upload(folder, name, &path).await.unwrap()
}

async fn read(client: &Client, file: &FileEntry, range: std::ops::Range<u64>) -> Vec<u8> {
    let mut stream = client.read(file.id, file.size, range).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// Everything the filesystem does, once, checked against listings.
async fn round_trip(profile: Profile, host: HostKind, ranges: RangeMode) {
    let emu = Emulator::start(args(profile, host, ranges)).await.unwrap();
    let client = client(&emu);
    let dir = tempfile::tempdir().unwrap();

    assert_eq!(client.authorize().await.unwrap(), emu.account_id() as u64);
    assert_eq!(
        client.account_info().await.unwrap().id,
        emu.account_id() as u64
    );
    let limits = client.limits().await.unwrap();
    assert_eq!(limits.max_upload_size, Some(5_368_709_120));

    let docs = client.create_folder(None, "Documents").await.unwrap();
    let sub = client
        .create_folder(Some(docs.id), ".hidden")
        .await
        .unwrap();
    assert_eq!((sub.parent, sub.name.as_str()), (Some(docs.id), ".hidden"));

    let data = sample(300_000, 1);
    let big = upload(&client, dir.path(), Some(docs.id), "big.bin", &data).await;
    assert_eq!((big.size, big.folder), (300_000, Some(docs.id)));
    let dot = upload(
        &client,
        dir.path(),
        Some(docs.id),
        ".bashrc",
        b"alias ll='ls -l'\n",
    )
    .await;
    assert_eq!(dot.name, "bashrc", "the server drops a leading dot");
    let again = upload(
        &client,
        dir.path(),
        Some(docs.id),
        "big.bin",
        &sample(10, 2),
    )
    .await;
    assert_eq!(again.name, "big (2).bin", "the server numbers duplicates");

    let listing = client.list_folder(Some(docs.id)).await.unwrap();
    let names: Vec<_> = listing.files.iter().map(|f| f.name.as_str()).collect();
    assert!(
        names.contains(&"big.bin") && names.contains(&"bashrc"),
        "{names:?}"
    );
    assert_eq!(listing.folders.len(), 1);

    let details = Remote::file_info(&client, big.id).await.unwrap();
    assert_eq!(details.entry.size, 300_000);
    assert!(details.uploaded.is_some());

    // Reads: whole, from zero, in the middle, at the end, across chunk boundaries.
    assert_eq!(read(&client, &big, 0..300_000).await, data);
    assert_eq!(read(&client, &big, 0..100).await, data[..100]);
    assert_eq!(read(&client, &big, 1000..70_000).await, data[1000..70_000]);
    assert_eq!(read(&client, &big, 299_990..300_000).await, data[299_990..]);

    // Renames and moves, files and folders, the root included.
    let renamed = client.rename_file(dot.id, ".bashrc").await.unwrap();
    assert_eq!(renamed.name, ".bashrc");
    client.move_file(big.id, Some(sub.id)).await.unwrap();
    assert!(client
        .list_folder(Some(sub.id))
        .await
        .unwrap()
        .files
        .iter()
        .any(|f| f.id == big.id));
    client.move_file(big.id, None).await.unwrap();
    let root = client.list_folder(None).await.unwrap();
    assert!(
        root.files.iter().any(|f| f.id == big.id),
        "moved to the root and listed there"
    );

    // Server-side copies, into a folder and to the root (which 4.x breaks by itself).
    let copy = client.copy_file(big.id, Some(docs.id)).await.unwrap();
    assert_eq!(copy.folder, Some(docs.id));
    let root_copy = client.copy_file(dot.id, None).await.unwrap();
    let root = client.list_folder(None).await.unwrap();
    assert!(
        root.files.iter().any(|f| f.id == root_copy.id),
        "copy listed at the root"
    );
    assert_eq!(read(&client, &copy, 5..10).await, data[5..10]);

    client.rename_folder(sub.id, "Renamed").await.unwrap();
    client.set_folder_public(sub.id, 2).await.unwrap();
    let info = client.folder_info(sub.id).await.unwrap();
    assert_eq!(
        (info.folder_name.as_str(), info.is_public),
        ("Renamed", Some(2))
    );
    client.move_folder(sub.id, None).await.unwrap();
    assert_eq!(client.folder_info(sub.id).await.unwrap().parent_id, None);

    // Deletes: the file leaves the active listing (or shows as trashed on 5.x).
    client.delete_file(copy.id).await.unwrap();
    let after = client.list_folder(Some(docs.id)).await.unwrap();
    assert!(after.files.iter().all(|f| f.id != copy.id || f.trashed));
    client.delete_folder(sub.id).await.unwrap();

    // Errors keep their meaning.
    assert!(matches!(
        client.file_info(999_999).await,
        Err(RemoteError::NotFound(_))
    ));
    assert!(matches!(
        client.list_folder(Some(999_999)).await,
        Err(RemoteError::NotFound(_))
    ));

    // A disabled token is replaced on the next call.
    client.disable_access_token().await.unwrap();
    client.list_folder(None).await.unwrap();
    emu.shutdown().await.unwrap();
}

const HOSTS: [HostKind; 3] = [HostKind::Zippyshare, HostKind::Zfils, HostKind::Zerolibrary];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_works_on_a_4x_server_of_every_host_with_stock_ranges() {
    for host in HOSTS {
        round_trip(Profile::V4, host, RangeMode::Naive).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_works_on_a_4x_server_of_every_host_with_correct_ranges() {
    for host in HOSTS {
        round_trip(Profile::V4, host, RangeMode::Correct).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_works_on_a_5x_server_of_every_host_with_stock_ranges() {
    for host in HOSTS {
        round_trip(Profile::V5, host, RangeMode::Naive).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_works_on_a_5x_server_of_every_host_with_correct_ranges() {
    for host in HOSTS {
        round_trip(Profile::V5, host, RangeMode::Correct).await;
    }
}

/// A symlink as yetifs describes it in `fileType`.
const SYMLINK_TYPE: &str = "inode/symlink; yetifs=1; mtime=1700000000.123456789; mode=0755";

/// `fileType` through the client: `file_edit` sets it, and `FileInfo.file_type` (edit, info,
/// move and copy replies) and `File.file_type` (listings) read it back, kept by renames, moves
/// and copies, unchanged by a blank value; a value past 140 characters comes back cut in the
/// edit reply, so a caller sees what the server kept.
async fn file_type_round_trip(profile: Profile) {
    let emu = Emulator::start(args(profile, HostKind::Zippyshare, RangeMode::Naive))
        .await
        .unwrap();
    let client = client(&emu);
    let dir = tempfile::tempdir().unwrap();
    let links = client.folder_create(None, "Links", None).await.unwrap().id;
    let other = client.folder_create(None, "Other", None).await.unwrap().id;
    let id = upload(&client, dir.path(), Some(links), "link", b"target")
        .await
        .id;
    let octet_stream = Some("application/octet-stream".to_owned());
    let symlink = Some(SYMLINK_TYPE.to_owned());
    assert_eq!(
        client.file_info(id).await.unwrap().file.file_type,
        octet_stream
    );

    let set = FileEdit {
        file_type: Some(SYMLINK_TYPE),
        ..FileEdit::default()
    };
    let edited = client.file_edit(id, &set).await.unwrap();
    assert_eq!(edited.file.file_type, symlink, "{profile:?}: edit reply");
    assert_eq!(client.file_info(id).await.unwrap().file.file_type, symlink);
    let listed = client.folder_listing(Some(links)).await.unwrap();
    let entry = listed.files.iter().find(|f| f.id == id).unwrap();
    assert_eq!(entry.file_type, symlink, "{profile:?}: listing");

    let rename = FileEdit {
        filename: Some("renamed"),
        ..FileEdit::default()
    };
    let renamed = client.file_edit(id, &rename).await.unwrap();
    assert_eq!(renamed.file.file_type, symlink, "{profile:?}: rename");
    let blank = FileEdit {
        file_type: Some("  "),
        ..FileEdit::default()
    };
    let unchanged = client.file_edit(id, &blank).await.unwrap();
    assert_eq!(unchanged.file.file_type, symlink, "{profile:?}: blank");
    let moved = client.file_move(id, Some(other)).await.unwrap();
    assert_eq!(moved.file.file_type, symlink, "{profile:?}: move");
    let copy = client.file_copy(id, Some(links)).await.unwrap();
    assert_eq!(copy.original_file.file.file_type, symlink, "{profile:?}");
    assert_eq!(copy.new_file.file.file_type, symlink, "{profile:?}: copy");
    let copy_id = copy.new_file.file.id;
    assert_eq!(
        client.file_info(copy_id).await.unwrap().file.file_type,
        symlink
    );

    let long = "é".repeat(200);
    let too_long = FileEdit {
        file_type: Some(&long),
        ..FileEdit::default()
    };
    let cut = client
        .file_edit(id, &too_long)
        .await
        .unwrap()
        .file
        .file_type;
    assert_eq!(
        cut,
        Some("é".repeat(140)),
        "{profile:?}: the reply shows the cut"
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_type_round_trips_through_the_client_on_a_4x_server() {
    file_type_round_trip(Profile::V4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_type_round_trips_through_the_client_on_a_5x_server() {
    file_type_round_trip(Profile::V5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_uploads_work_where_offered_and_are_unsupported_elsewhere() {
    let emu = Emulator::start(args(Profile::V4, HostKind::Zippyshare, RangeMode::Naive))
        .await
        .unwrap();
    let full = client(&emu);
    let dir = tempfile::tempdir().unwrap();
    let data = sample(5000, 3);
    let source = upload(&full, dir.path(), None, "source.bin", &data).await;
    let url = full.download_url(source.id).await.unwrap();
    let scheduled = full.url_upload_add(url.as_str(), None).await.unwrap();
    let mut stored = None;
    for _ in 0..100 {
        let status = full
            .url_upload_status(scheduled.scheduled_item_id)
            .await
            .unwrap();
        if let Some(file) = status.downloaded_file {
            stored = Some(file);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = stored.expect("the URL upload finished");
    assert_eq!(stored.size, Some(5000));
    let by_short_url = full
        .file_download_by_short_url(&source.short_url)
        .await
        .unwrap();
    assert_eq!(by_short_url.file_id, Some(source.id));
    emu.shutdown().await.unwrap();

    for host in [HostKind::Zfils, HostKind::Zerolibrary] {
        for profile in [Profile::V4, Profile::V5] {
            let emu = Emulator::start(args(profile, host, RangeMode::Naive))
                .await
                .unwrap();
            let limited = client(&emu);
            let err = limited
                .url_upload_add("http://x/y", None)
                .await
                .unwrap_err();
            assert!(
                matches!(err, RemoteError::Unsupported(_)),
                "{host:?} {profile:?}: {err:?}"
            );
            let err = limited.url_upload_status(1).await.unwrap_err();
            assert!(
                matches!(err, RemoteError::Unsupported(_)),
                "{host:?} {profile:?}: {err:?}"
            );
            emu.shutdown().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_sharing_keys_keep_working_though_each_login_kills_the_other_token() {
    let emu = Emulator::start(args(Profile::V4, HostKind::Zippyshare, RangeMode::Naive))
        .await
        .unwrap();
    let a = client(&emu);
    let b = client(&emu);
    for _ in 0..5 {
        a.list_folder(None).await.unwrap();
        b.list_folder(None).await.unwrap();
    }
    emu.shutdown().await.unwrap();
}

/// Token waits a tenth of the defaults: the same contest, ten times faster.
fn brisk() -> TokenPolicy {
    TokenPolicy {
        refused_deadline: Duration::from_secs(60),
        min_spacing: Duration::from_millis(50),
        first_holdoff: Duration::from_millis(50),
        max_holdoff: Duration::from_millis(300),
        calm: Duration::from_millis(1500),
    }
}

/// Workers per client, and the rounds of calls each does.
const WORKERS: usize = 8;
const ROUNDS: usize = 10;

/// `count` clients of one account, each with [`WORKERS`] workers that upload, list, look up and
/// read back their own files: every call succeeds, every file is then read back right by every
/// client, and every login after a client's first answers a takeover of its token.
async fn busy_clients_share_one_account(count: usize) {
    let emu = Emulator::start(args(Profile::V4, HostKind::Zippyshare, RangeMode::Naive))
        .await
        .unwrap();
    let clients: Vec<Client> = (0..count)
        .map(|_| {
            let mut config =
                ClientConfig::new(emu.base_url(), Credentials::keys(emu.key1(), emu.key2()));
            config.token = brisk();
            Client::new(config).unwrap()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut workers = Vec::new();
    for (c, client) in clients.iter().enumerate() {
        for w in 0..WORKERS {
            let client = client.clone();
            let dir = dir.path().to_owned();
            workers.push(tokio::spawn(async move {
                let mut written = Vec::new();
                for round in 0..ROUNDS {
                    let name = format!("c{c}-w{w}-{round}.bin");
                    let data = sample(1000 + 37 * round, (16 * c + w) as u8);
                    let source = dir.join(&name);
                    tokio::fs::write(&source, &data).await.unwrap();
                    let file = client.upload(None, &name, &source).await.unwrap();
                    assert_eq!(file.name, name);
                    client.list_folder(None).await.unwrap();
                    Remote::file_info(&client, file.id).await.unwrap();
                    assert_eq!(read(&client, &file, 0..file.size).await, data);
                    written.push((file, data));
                }
                written
            }));
        }
    }
    let mut written = Vec::new();
    for worker in workers {
        written.extend(worker.await.unwrap());
    }
    let readers: Vec<_> = clients
        .iter()
        .map(|client| {
            let client = client.clone();
            let written = written.clone();
            tokio::spawn(async move {
                let listed = client.list_folder(None).await.unwrap();
                for (file, data) in &written {
                    assert!(
                        listed.files.iter().any(|f| f.id == file.id),
                        "{}",
                        file.name
                    );
                    assert_eq!(
                        &read(&client, file, 0..file.size).await,
                        data,
                        "{}",
                        file.name
                    );
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.unwrap();
    }
    let mut takeovers = 0;
    for (c, client) in clients.iter().enumerate() {
        let metrics = client.metrics().snapshot();
        let logins = metrics
            .endpoints
            .iter()
            .find(|e| e.endpoint == "authorize")
            .map_or(0, |e| e.requests);
        let taken = metrics.token.takeovers;
        eprintln!("client {c} of {count}: {logins} logins, {taken} takeovers");
        // Every login after the first answers a takeover: the one renewal of the token taken
        // (never one per waiting worker), and, for an upload whose body outlasted the
        // takeover, a retake of the token before the server checks it.
        assert!(
            logins <= 1 + 2 * taken,
            "client {c}: {logins} logins for {taken} takeovers"
        );
        takeovers += taken;
    }
    assert!(
        takeovers > 0,
        "the clients did take the token from each other"
    );
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_busy_clients_of_one_account_take_turns_with_the_token_and_nothing_fails() {
    busy_clients_share_one_account(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_busy_clients_of_one_account_take_turns_with_the_token_and_nothing_fails() {
    busy_clients_share_one_account(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_longer_than_a_turn_gets_through_while_another_client_keeps_taking_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let emu = Emulator::start(ServeArgs {
        faults: "bandwidth=8MB/s".parse().unwrap(),
        access_log: Some(log.clone()),
        ..args(Profile::V4, HostKind::Zippyshare, RangeMode::Naive)
    })
    .await
    .unwrap();
    let contender = |emu: &Emulator| {
        Client::new(ClientConfig::new(
            emu.base_url(),
            Credentials::keys(emu.key1(), emu.key2()),
        ))
        .unwrap()
    };
    let (busy, uploader) = (contender(&emu), contender(&emu));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lister = {
        let done = std::sync::Arc::clone(&done);
        tokio::spawn(async move {
            let mut calls = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                busy.list_folder(None).await.unwrap();
                calls += 1;
            }
            calls
        })
    };
    // Five seconds of body at the capped rate: longer than any turn.
    let data = sample(40_000_000, 3);
    let file = upload(&uploader, dir.path(), None, "big.bin", &data).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(lister.await.unwrap() > 0);
    assert_eq!(file.size, 40_000_000);
    let sent = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("/file/upload"))
        .count();
    assert!(sent <= 2, "the upload was sent {sent} times");
    assert!(uploader.metrics().snapshot().token.takeovers > 0);
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_a_killed_token_renew_it_with_one_login() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let emu = Emulator::start(ServeArgs {
        access_log: Some(log.clone()),
        ..args(Profile::V5, HostKind::Zippyshare, RangeMode::Naive)
    })
    .await
    .unwrap();
    let client = client(&emu);
    client.authorize().await.unwrap();
    // Another login with the same keys kills the client's token.
    client_with(&emu, emu.key1(), emu.key2())
        .authorize()
        .await
        .unwrap();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.list_folder(None).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let logins = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("/authorize"))
        .count();
    assert_eq!(logins, 3, "first login, the other client's, one renewal");
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_are_tried_once_so_the_ip_is_never_banned() {
    let emu = Emulator::start(args(Profile::V4, HostKind::Zippyshare, RangeMode::Naive))
        .await
        .unwrap();
    let wrong = client_with(&emu, &"a".repeat(64), &"b".repeat(64));
    for _ in 0..10 {
        assert!(matches!(
            wrong.list_folder(None).await,
            Err(RemoteError::Auth(_))
        ));
    }
    client(&emu).list_folder(None).await.unwrap();
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_listings_survive_injected_faults() {
    let emu = Emulator::start(ServeArgs {
        faults: "error=0.15,429=0.1,reset=0.1".parse().unwrap(),
        seed: Some(7),
        ..args(Profile::V4, HostKind::Zippyshare, RangeMode::Naive)
    })
    .await
    .unwrap();
    let client = client(&emu);
    let dir = tempfile::tempdir().unwrap();
    let data = sample(200_000, 9);
    let path = dir.path().join("f.bin");
    std::fs::write(&path, &data).unwrap();
    let mut file = None;
    for _ in 0..20 {
        if let Ok(entry) = client.upload(None, "f.bin", &path).await {
            file = Some(entry);
            break;
        }
    }
    let file = file.expect("an upload got through");
    for _ in 0..10 {
        client.list_folder(None).await.unwrap();
        Remote::file_info(&client, file.id).await.unwrap();
    }
    for range in [0..200_000, 1..2, 150_000..200_000, 65_536..131_072] {
        let got = read(&client, &file, range.clone()).await;
        assert_eq!(got, data[range.start as usize..range.end as usize]);
    }
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_renewed_transparently() {
    let emu = Emulator::start(ServeArgs {
        faults: "token_ttl=1s".parse().unwrap(),
        ..args(Profile::V5, HostKind::Zerolibrary, RangeMode::Correct)
    })
    .await
    .unwrap();
    let client = client(&emu);
    client.list_folder(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    client.list_folder(None).await.unwrap();
    emu.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_link_that_cannot_be_had_is_asked_for_only_by_the_calls_own_retries() {
    let emu = Emulator::start(args(Profile::V4, HostKind::Zippyshare, RangeMode::Naive))
        .await
        .unwrap();
    let client = client(&emu);
    let dir = tempfile::tempdir().unwrap();
    let file = upload(&client, dir.path(), None, "f.bin", &sample(1000, 1)).await;
    let addr = emu.addr();
    emu.shutdown().await.unwrap();
    // In the server's place: something that takes each connection and closes it unanswered.
    let listener = std::net::TcpListener::bind(addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counter = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut accepted = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        accepted += 1;
                        drop(conn);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
            accepted
        })
    };
    let result = client.read(file.id, file.size, 0..file.size).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let accepted = counter.join().unwrap();
    assert!(result.is_err());
    let attempts = client.config().retry.max_attempts as usize;
    assert!(
        accepted <= attempts,
        "{accepted} connections for one download link (the call itself tries {attempts} times)"
    );
}
