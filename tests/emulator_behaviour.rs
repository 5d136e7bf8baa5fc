//! Emulator behaviour beyond the 4.x transcripts: the 5.x profile, each host's endpoint set,
//! persistence across restarts, switches, faults, the access log, URL uploads (their queue,
//! progress and failures), folder passwords, isolation between accounts, concurrent uploads,
//! and the one live token per account.
mod common;

use common::origin::Origin;
use common::{args, Api};
use yetifs::emulator::{FaultSpec, HostKind, Profile, Quirk, RangeMode, ServeArgs};

fn with(f: impl FnOnce(&mut ServeArgs)) -> ServeArgs {
    let mut a = args();
    f(&mut a);
    a
}

#[tokio::test]
async fn v5_sends_native_numbers_and_lists_trashed_items_with_their_status() {
    let api = Api::start(with(|a| a.profile = Profile::V5)).await;
    let folder = api
        .call("folder/create", &[("folder_name", "Old")])
        .await
        .json();
    assert!(folder["data"]["id"].is_number());
    assert_eq!(folder["data"]["status"], "active");
    assert!(folder["data"].get("urlHash").is_some());
    let fid = folder["data"]["id"].to_string();
    let up = api.upload("a.txt", b"abc", &[]).await.json();
    assert!(up["data"][0]["file_id"].is_number());
    let file_id = up["data"][0]["file_id"].to_string();
    api.call("file/delete", &[("file_id", &file_id)]).await;
    api.call("folder/delete", &[("folder_id", &fid)]).await;
    let root = api.call("folder/listing", &[]).await.json();
    assert_eq!(root["data"]["folders"][0]["status"], "trash");
    assert_eq!(root["data"]["files"][0]["status"], "trash");
    let err = api.call("file/info", &[("file_id", "999")]).await.json();
    assert_eq!(err["_status"], "error");
    assert!(err.get("status").is_none());
    let unknown = api.call("file/nope", &[]).await;
    assert_eq!(unknown.status, 200);
    assert_eq!(
        unknown.json()["0"],
        "No method found within endpoint (file): nope"
    );
    // 5.x moves a file to the root properly.
    let f2 = api.upload("b.txt", b"abcd", &[]).await.json()["data"][0]["file_id"].to_string();
    let moved = api
        .call(
            "file/move",
            &[("file_id", &f2), ("new_parent_folder_id", "null")],
        )
        .await
        .json();
    assert!(moved["data"]["folderId"].is_null());
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn hosts_differ_in_url_upload_and_short_url_downloads() {
    for host in [HostKind::Zfils, HostKind::Zerolibrary] {
        let api = Api::start(with(|a| a.host = host)).await;
        let r = api
            .call(
                "file/url_upload_add",
                &[("file_url_base64", "aHR0cDovL3gveQ==")],
            )
            .await;
        assert_eq!(r.status, 404, "{host:?} answers like an unknown action");
        let up = api.upload("a.txt", b"abc", &[]).await.json();
        let short = up["data"][0]["short_url"].as_str().unwrap().to_string();
        let r = api
            .call("file/download", &[("short_url", &short)])
            .await
            .json();
        assert_eq!(r["response"], "Please provide the file_id param.");
        api.emu.shutdown().await.unwrap();
    }
    let api = Api::start(args()).await;
    let up = api.upload("a.txt", b"abc", &[]).await.json();
    let short = up["data"][0]["short_url"].as_str().unwrap().to_string();
    let r = api
        .call("file/download", &[("short_url", &short)])
        .await
        .json();
    assert_eq!(r["_status"], "success");
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn state_survives_a_restart_with_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let api = Api::start(with(|a| a.data = Some(data.clone()))).await;
    let (k1, k2) = (api.emu.key1().to_string(), api.emu.key2().to_string());
    api.call("folder/create", &[("folder_name", "Kept")]).await;
    let id = Api::file_id(&api.upload("kept.bin", &[9u8; 70_000], &[]).await);
    api.emu.shutdown().await.unwrap();

    let api = Api::start(with(|a| a.data = Some(data.clone()))).await;
    assert_eq!((api.emu.key1(), api.emu.key2()), (k1.as_str(), k2.as_str()));
    let root = api.call("folder/listing", &[]).await.json();
    assert_eq!(root["data"]["folders"][0]["folderName"], "Kept");
    let dl = api.call("file/download", &[("file_id", &id)]).await.json();
    let url = dl["data"]["download_url"].as_str().unwrap();
    let body = api
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], &[9u8; 70_000][..]);
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn quirks_can_be_switched_off() {
    let off = [
        Quirk::SingleToken,
        Quirk::UploadRenames,
        Quirk::Dedup,
        Quirk::NullMoveBug,
        Quirk::CopyNeedsSession,
        Quirk::TrashToRoot,
    ];
    let mut api = Api::start(with(|a| a.quirks_off = off.to_vec())).await;
    let first = api.token.clone();
    api.login().await;
    api.token = first;
    assert_eq!(
        api.call("folder/listing", &[]).await.json()["_status"],
        "success"
    );
    let a = api.upload(".bashrc", b"x", &[]).await.json();
    let b = api.upload(".bashrc", b"x", &[]).await.json();
    assert_eq!(a["data"][0]["name"], ".bashrc");
    assert_eq!(b["data"][0]["name"], ".bashrc");
    assert!(b["data"][0]["size"].is_number());
    let id = b["data"][0]["file_id"].as_str().unwrap().to_string();
    let moved = api
        .call(
            "file/move",
            &[("file_id", &id), ("new_parent_folder_id", "null")],
        )
        .await
        .json();
    assert!(moved["data"]["folderId"].is_null());
    let copy = common::client()
        .post(api.url("file/copy"))
        .form(&[
            ("access_token", api.token.as_str()),
            ("account_id", &api.account),
            ("file_id", &id),
            ("copy_to_folder_id", "null"),
        ])
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(copy["response"], "File successfully copyied.");
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn five_failed_logins_ban_the_ip_unless_switched_off() {
    let api = Api::start(args()).await;
    let bad = "b".repeat(64);
    for _ in 0..5 {
        api.post("authorize", &[("key1", &bad), ("key2", &bad)])
            .await;
    }
    let good = api
        .post(
            "authorize",
            &[("key1", api.emu.key1()), ("key2", api.emu.key2())],
        )
        .await;
    assert_eq!(good.json()["_status"], serde_json::Value::Null);
    assert_eq!(good.json()["status"], "error");
    api.emu.shutdown().await.unwrap();

    let api = Api::start(with(|a| a.quirks_off = vec![Quirk::LoginBan])).await;
    for _ in 0..6 {
        api.post("authorize", &[("key1", &bad), ("key2", &bad)])
            .await;
    }
    let good = api
        .post(
            "authorize",
            &[("key1", api.emu.key1()), ("key2", api.emu.key2())],
        )
        .await;
    assert_eq!(good.json()["_status"], "success");
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn yetifs_serve_logs_each_failed_login_with_its_count_and_the_ban_with_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_yetifs"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--data")
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(serve.stdout.take().unwrap()));
    let url = lines.next().unwrap().unwrap();
    let url = url.strip_prefix("api_url=").unwrap().to_owned();
    let http = common::client();
    let bad = "b".repeat(64);
    for _ in 0..6 {
        http.post(format!("{url}authorize"))
            .form(&[("key1", &bad), ("key2", &bad)])
            .send()
            .await
            .unwrap();
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    serve.kill().unwrap();
    serve.wait().unwrap();
    for n in 1..=5 {
        let line = format!("failed login from 127.0.0.1: {n} of 5 within 24 h");
        assert_eq!(logged.matches(&line).count(), 1, "{line:?} in {logged}");
    }
    let banned: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("127.0.0.1 is banned from logging in until "))
        .collect();
    assert_eq!(banned.len(), 1, "{logged}");
    assert!(banned[0].ends_with(" (5 failed logins)"), "{logged}");
    assert!(
        logged.contains("login from 127.0.0.1 refused: banned until "),
        "the sixth try is refused as banned: {logged}"
    );
    assert!(!logged.contains("6 of 5"), "{logged}");
}

#[tokio::test]
async fn correct_ranges_follow_rfc_7233() {
    let api = Api::start(with(|a| a.ranges = RangeMode::Correct)).await;
    let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let id = Api::file_id(&api.upload("r.bin", &data, &[]).await);
    let url = api.call("file/download", &[("file_id", &id)]).await.json()["data"]["download_url"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api
        .http
        .get(&url)
        .header("Range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..], &data[..100]);
    let r = api
        .http
        .get(&url)
        .header("Range", "bytes=2000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 416);
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn seeded_faults_repeat_and_the_access_log_counts_requests() {
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: u64, log: std::path::PathBuf| async move {
        let spec: FaultSpec = "error=0.3,429=0.2".parse().unwrap();
        let emu = yetifs::emulator::Emulator::start(with(|a| {
            a.faults = spec;
            a.seed = Some(seed);
            a.access_log = Some(log);
        }))
        .await
        .unwrap();
        let http = common::client();
        let mut statuses = Vec::new();
        for _ in 0..20 {
            let r = http
                .post(format!("{}folder/listing", emu.base_url()))
                .send()
                .await
                .unwrap();
            if r.status().as_u16() == 429 {
                assert_eq!(r.headers()["retry-after"], "1");
            }
            statuses.push(r.status().as_u16());
        }
        emu.shutdown().await.unwrap();
        statuses
    };
    let a = run(42, dir.path().join("a.log")).await;
    let b = run(42, dir.path().join("b.log")).await;
    assert_eq!(a, b);
    assert!(
        a.contains(&500) && a.contains(&429) && a.contains(&200),
        "{a:?}"
    );
    let log = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 20);
    assert!(lines
        .iter()
        .all(|l| l.contains(" POST /api/v2/folder/listing ")));
    assert!(!log.contains("access_token"));
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let api = Api::start(with(|a| a.faults = "token_ttl=1s".parse().unwrap())).await;
    assert_eq!(
        api.call("folder/listing", &[]).await.json()["_status"],
        "success"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = api.call("folder/listing", &[]).await.json();
    assert_eq!(r["status"], "error");
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn url_upload_fetches_in_the_background() {
    let content: Vec<u8> = (0..50_000u32).map(|i| (i % 256) as u8).collect();
    let served = content.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/files/remote%20file.bin",
        axum::routing::get(move || {
            let body = served.clone();
            async move { body }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let api = Api::start(args()).await;
    use base64::Engine;
    let url = format!("http://{addr}/files/remote%20file.bin");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&url);
    let added = api
        .call("file/url_upload_add", &[("file_url_base64", &encoded)])
        .await
        .json();
    assert_eq!(added["response"], "File download from URL scheduled");
    let item = added["data"]["scheduled_item_id"].to_string();
    let mut status = serde_json::Value::Null;
    for _ in 0..100 {
        status = api
            .call("file/url_upload_status", &[("scheduled_item_id", &item)])
            .await
            .json();
        if status["data"]["status"] == "complete" || status["data"]["status"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status["data"]["status"], "complete", "{status}");
    assert_eq!(status["data"]["downloaded_file"]["name"], "remote file.bin");
    assert_eq!(status["data"]["total_size"], 50_000);
    let bad = api
        .call("file/url_upload_add", &[("file_url_base64", "%%%")])
        .await
        .json();
    assert_eq!(
        bad["response"],
        "Could not parse the file_url_base64 parameter. Ensure it's base64 encoded."
    );
    api.emu.shutdown().await.unwrap();
    server.abort();
}

/// Schedules a URL upload of `url`; returns its scheduled item id.
async fn add_url_upload(api: &Api, url: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(url);
    let added = api
        .call("file/url_upload_add", &[("file_url_base64", &encoded)])
        .await
        .json();
    added["data"]["scheduled_item_id"].to_string()
}

/// The `data` of `file/url_upload_status` for `item`.
async fn url_upload_status(api: &Api, item: &str) -> serde_json::Value {
    api.call("file/url_upload_status", &[("scheduled_item_id", item)])
        .await
        .json()["data"]
        .clone()
}

/// The status of `item` once `done` holds for it, asking every 20 ms, at most 1,500 times.
async fn url_upload_once(
    api: &Api,
    item: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut status = serde_json::Value::Null;
    for _ in 0..1500 {
        status = url_upload_status(api, item).await;
        if done(&status) {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("url upload {item} never got there: {status}");
}

#[tokio::test]
async fn url_uploads_wait_their_turn_and_show_their_bytes_while_downloading() {
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let origin = Origin::start(
        vec![("big.bin", big.clone()), ("small.txt", b"small".to_vec())],
        &["big.bin"],
    )
    .await;
    let api = Api::start(args()).await;
    let first = add_url_upload(&api, &origin.url("big.bin")).await;
    let second = add_url_upload(&api, &origin.url("small.txt")).await;
    let halfway = url_upload_once(&api, &first, |s| s["downloaded_size"] == 1_000_000).await;
    assert_eq!(halfway["status"], "downloading", "{halfway}");
    assert_eq!(halfway["total_size"], 2_000_000, "{halfway}");
    assert!(halfway["downloaded_file"].is_null(), "{halfway}");
    let waiting = url_upload_status(&api, &second).await;
    assert_eq!(
        waiting["status"], "pending",
        "queued behind the first: {waiting}"
    );
    assert!(waiting["started"].is_null(), "{waiting}");
    origin.release();
    let done = url_upload_once(&api, &first, |s| s["status"] == "complete").await;
    assert_eq!(done["downloaded_size"], 2_000_000, "{done}");
    assert_eq!(done["downloaded_file"]["name"], "big.bin");
    let id = done["downloaded_file"]["file_id"].to_string();
    let link = api.call("file/download", &[("file_id", &id)]).await.json();
    let url = link["data"]["download_url"].as_str().unwrap().to_owned();
    let fetched = common::client().get(url).send().await.unwrap();
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), big.as_slice());
    let small = url_upload_once(&api, &second, |s| s["status"] == "complete").await;
    assert_eq!(small["downloaded_file"]["size"], 5, "{small}");
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_url_upload_that_cannot_be_fetched_fails_with_the_reason() {
    let origin = Origin::start(Vec::new(), &[]).await;
    let api = Api::start(args()).await;
    let item = add_url_upload(&api, &origin.url("gone.iso")).await;
    let failed = url_upload_once(&api, &item, |s| {
        s["status"] != "pending" && s["status"] != "downloading"
    })
    .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let reason = failed["error"].as_str().unwrap();
    assert!(reason.contains("HTTP 404"), "{reason}");
    assert!(failed["downloaded_file"].is_null(), "{failed}");
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_access_password_sent_empty_takes_a_folders_password_away() {
    let api = Api::start(args()).await;
    let md5 = "5f4dcc3b5aa765d61d8327deb882cf99";
    let made = api
        .call(
            "folder/create",
            &[
                ("folder_name", "Locked"),
                ("access_password", md5),
                ("is_public", "1"),
            ],
        )
        .await;
    let id = Api::data_id(&made);
    assert_eq!(made.json()["data"]["accessPassword"], md5);
    let kept = api
        .call("folder/edit", &[("folder_id", &id), ("is_public", "2")])
        .await
        .json();
    assert_eq!(kept["data"]["accessPassword"], md5, "{kept}");
    assert_eq!(kept["data"]["isPublic"], "2", "{kept}");
    let opened = api
        .call(
            "folder/edit",
            &[("folder_id", &id), ("access_password", "")],
        )
        .await
        .json();
    assert!(opened["data"]["accessPassword"].is_null(), "{opened}");
    let info = api.call("folder/info", &[("folder_id", &id)]).await.json();
    assert!(info["data"]["accessPassword"].is_null(), "{info}");
    assert_eq!(info["data"]["isPublic"], "2", "{info}");
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn accounts_never_see_each_others_files_and_storage_is_enforced() {
    let api = Api::start(with(|a| a.max_storage = 100)).await;
    let other = api.emu.add_account().unwrap();
    let r = api
        .post("authorize", &[("key1", &other.key1), ("key2", &other.key2)])
        .await
        .json();
    let token = r["data"]["access_token"].as_str().unwrap().to_string();
    let account = r["data"]["account_id"].as_str().unwrap().to_string();
    let mine = Api::file_id(&api.upload("mine.txt", &[1u8; 60], &[]).await);
    let full = api.upload("more.txt", &[2u8; 60], &[]).await.json();
    assert_eq!(
        full["response"],
        "Upload storage full, please delete some active files and try again."
    );
    let form = [
        ("access_token", token.as_str()),
        ("account_id", account.as_str()),
        ("file_id", mine.as_str()),
    ];
    let seen = api
        .send(api.http.post(api.url("file/info")).form(&form))
        .await
        .json();
    assert_eq!(seen["response"], "Could not find file based on file_id.");
    let listing = api
        .send(api.http.post(api.url("folder/listing")).form(&form[..2]))
        .await
        .json();
    assert_eq!(listing["data"]["files"].as_array().unwrap().len(), 0);
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_uploads_all_arrive_intact() {
    let api = Api::start(args()).await;
    let uploads = (0..8u8).map(|i| {
        let api = &api;
        async move {
            let content = vec![i; 300_000 + i as usize];
            let r = api.upload(&format!("f{i}.bin"), &content, &[]).await;
            (Api::file_id(&r), content)
        }
    });
    for (id, content) in futures_util::future::join_all(uploads).await {
        let dl = api.call("file/download", &[("file_id", &id)]).await.json();
        let url = dl["data"]["download_url"].as_str().unwrap();
        let body = api
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(body.len(), content.len());
        assert!(body[..] == content[..]);
    }
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_authorize_kills_every_earlier_token_and_a_killed_token_is_refused_before_acting() {
    let mut api = Api::start(args()).await;
    let first = api.token.clone();
    // Another client (its own cookies) logs in to the same account twice.
    let other = common::client();
    let keys = [("key1", api.emu.key1()), ("key2", api.emu.key2())];
    let mut tokens = vec![first];
    for _ in 0..2 {
        let reply = api
            .send(other.post(api.url("authorize")).form(&keys))
            .await
            .json();
        tokens.push(reply["data"]["access_token"].as_str().unwrap().to_owned());
    }
    let refusals = [
        (
            "account/info",
            "Could not validate access_token, please reauthenticate or try again.",
        ),
        (
            "folder/listing",
            "Could not validate access_token and account_id, please reauthenticate or try again.",
        ),
    ];
    for dead in &tokens[..2] {
        api.token = dead.clone();
        for (path, message) in refusals {
            let reply = api.call(path, &[]).await.json();
            assert_eq!(reply["response"], message, "{path}: {reply}");
        }
        let upload = api
            .upload("sent-with-a-dead-token.txt", b"abc", &[])
            .await
            .json();
        assert_eq!(upload["response"], refusals[1].1, "{upload}");
    }
    api.token = tokens[2].clone();
    let listing = api.call("folder/listing", &[]).await.json();
    assert_eq!(
        listing["data"]["files"].as_array().unwrap().len(),
        0,
        "no upload with a dead token was stored: {listing}"
    );
    api.emu.shutdown().await.unwrap();
}
