//! The emulator answers like the real 4.x server: each step replays the request of a
//! transcript in `tests/fixtures/transcripts/` (on equivalent state) and compares status, keys,
//! JSON types and messages with what the real server sent. Facts NOTES.md records without a
//! transcript (`fileType`) are checked by value, on both profiles.
mod common;

use common::{args, client, conforms, conforms_download, Api, Resp};
use serde_json::Value;
use yetifs::emulator::{Profile, ServeArgs};

const HELLO: &[u8] = b"Hello from the yetifs conformance set\n";
const BASHRC: &[u8] = b"export PATH=$HOME/bin:$PATH # rc\n";
const MAKEFILE: &[u8] = b"all:\n\techo hi\n";

fn thousand() -> Vec<u8> {
    (0..1000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn rand1000() -> Vec<u8> {
    (0..1000u32).map(|i| (i * 13 % 241) as u8 ^ 0x5a).collect()
}

#[tokio::test]
async fn authorization_tokens_and_transport_answer_like_the_real_server() {
    let mut api = Api::start(args()).await;
    let (k1, k2) = (api.emu.key1().to_string(), api.emu.key2().to_string());
    conforms("01", &api.login().await);
    conforms(
        "03",
        &api.post("authorize", &[("key1", "abcdefghij"), ("key2", &k2)])
            .await,
    );
    conforms(
        "04",
        &api.post("authorize", &[("key1", &k1), ("key2", &k2[..63])])
            .await,
    );
    conforms("05", &api.post("authorize", &[]).await);
    let get = api
        .send(
            api.http
                .get(api.url("authorize"))
                .query(&[("key1", &k1), ("key2", &k2)]),
        )
        .await;
    conforms("07", &get);
    let upper = api
        .post(
            "authorize",
            &[("key1", &k1.to_uppercase()), ("key2", &k2.to_uppercase())],
        )
        .await;
    conforms("08", &upper);
    let json_body = api
        .send(
            api.http
                .post(api.url("authorize"))
                .json(&serde_json::json!({"key1": k1, "key2": k2})),
        )
        .await;
    conforms("204", &json_body);
    conforms(
        "02",
        &api.post("authorize", &[("key1", &"a".repeat(64)), ("key2", &k2)])
            .await,
    );

    // One live token per account: a new authorize kills the previous token.
    conforms("10", &api.login().await);
    let t1 = api.token.clone();
    conforms("11", &api.call("account/info", &[]).await);
    conforms("12", &api.login().await);
    let t2 = api.token.clone();
    api.token = t1.clone();
    conforms("13", &api.call("account/info", &[]).await);
    conforms("14", &api.call("folder/listing", &[]).await);
    api.token = t2.clone();
    conforms("15", &api.call("folder/listing", &[]).await);
    api.token = t2.to_uppercase();
    conforms("16", &api.call("folder/listing", &[]).await);
    api.token = t2.clone();
    conforms(
        "17",
        &api.post(
            "folder/listing",
            &[("access_token", &t2), ("account_id", "74")],
        )
        .await,
    );
    conforms(
        "18",
        &api.post("folder/listing", &[("account_id", &api.account)])
            .await,
    );
    conforms(
        "19",
        &api.post("folder/listing", &[("access_token", &t2)]).await,
    );

    conforms("20", &api.call("account/info", &[]).await);
    conforms(
        "21",
        &api.post("account/info", &[("access_token", &t2)]).await,
    );
    conforms("22", &api.call("account/package", &[]).await);

    conforms("24", &api.call("file/nope", &[]).await);
    let unknown = api.call("nosuch/thing", &[]).await;
    conforms("25", &unknown);
    assert!(unknown
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    conforms("26", &api.post("file/nope", &[]).await);
    conforms("27", &api.get("folder/listing", &[]).await);
    conforms("28", &api.call("folder/listing", &[]).await);
    let as_json = api
        .send(
            api.http
                .post(api.url("folder/listing"))
                .json(&serde_json::json!({"access_token": t2, "account_id": 1})),
        )
        .await;
    conforms("29", &as_json);
    let in_query = api
        .send(
            api.http
                .post(api.url("folder/listing"))
                .query(&[("access_token", &t2), ("account_id", &api.account)]),
        )
        .await;
    conforms("30", &in_query);
    let overridden = api
        .send(
            api.http
                .post(api.url("folder/listing"))
                .header("X-HTTP-Method", "PATCH")
                .form(&[("access_token", &t2), ("account_id", &api.account)]),
        )
        .await;
    conforms("31", &overridden);
    let put = api
        .send(
            api.http
                .put(api.url("folder/listing"))
                .query(&[("access_token", &t2), ("account_id", &api.account)]),
        )
        .await;
    conforms("32", &put);
    let delete = api
        .send(
            api.http
                .delete(api.url("folder/listing"))
                .form(&[("access_token", &t2), ("account_id", &api.account)]),
        )
        .await;
    conforms("33", &delete);
    conforms("34", &api.call("FOLDER/LISTING", &[]).await);
    conforms("35", &api.call("folder/listing/", &[]).await);

    conforms(
        "205",
        &api.post("disable_access_token", &[("access_token", &t2)])
            .await,
    );
    conforms("206", &api.call("disable_access_token", &[]).await);
    conforms("207", &api.call("folder/listing", &[]).await);
    conforms("208", &api.call("disable_access_token", &[]).await);
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn folder_actions_answer_like_the_real_server() {
    let api = Api::start(args()).await;
    let docs = api
        .call("folder/create", &[("folder_name", "Documents")])
        .await;
    conforms("40", &docs);
    let f1 = Api::data_id(&docs);
    let git = api.call("folder/create", &[("folder_name", ".git")]).await;
    conforms("41", &git);
    assert_eq!(git.json()["data"]["folderName"], ".git");
    let fgit = Api::data_id(&git);
    let uni = api
        .call("folder/create", &[("folder_name", "Ünïcødé 日本語 🚀")])
        .await;
    conforms("42", &uni);
    assert_eq!(uni.json()["data"]["folderName"], "Ünïcødé 日本語 ????");
    let funi = Api::data_id(&uni);
    let dup = api
        .call("folder/create", &[("folder_name", "Documents")])
        .await;
    conforms("43", &dup);
    let fdup = Api::data_id(&dup);
    let sub = api
        .call(
            "folder/create",
            &[("folder_name", "Sub1"), ("parent_id", &f1)],
        )
        .await;
    conforms("44", &sub);
    let fsub = Api::data_id(&sub);
    let special = api
        .call(
            "folder/create",
            &[("folder_name", "  a/b \"q\" 'x' <b>tag</b> & c  ")],
        )
        .await;
    conforms("45", &special);
    assert_eq!(
        special.json()["data"]["folderName"],
        "a/b \"q\" 'x' tag & c"
    );
    assert!(special.json()["data"]["url_folder"]
        .as_str()
        .unwrap()
        .ends_with("/a/b__q___x__tag_&_c"));
    conforms("46", &api.call("folder/create", &[]).await);
    let orphan = api
        .call(
            "folder/create",
            &[("folder_name", "Orphan"), ("parent_id", "999999")],
        )
        .await;
    conforms("47", &orphan);
    assert_eq!(orphan.json()["data"]["parentId"], "999999");

    let root = api.call("folder/listing", &[]).await;
    conforms("50", &root);
    let names: Vec<String> = root.json()["data"]["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["folderName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            ".git",
            "a/b \"q\" 'x' tag & c",
            "Documents",
            "Documents",
            "Ünïcødé 日本語 ????"
        ]
    );
    conforms(
        "51",
        &api.call("folder/listing", &[("parent_folder_id", &f1)])
            .await,
    );
    conforms(
        "52",
        &api.call("folder/listing", &[("parent_folder_id", "999999")])
            .await,
    );
    conforms(
        "53",
        &api.call("folder/listing", &[("parent_folder_id", "0")])
            .await,
    );
    conforms("54", &api.call("folder/info", &[("folder_id", &f1)]).await);
    conforms(
        "55",
        &api.call("folder/info", &[("folder_id", "999999")]).await,
    );

    conforms(
        "56",
        &api.call(
            "folder/edit",
            &[("folder_id", &fsub), ("folder_name", "Renamed Sub")],
        )
        .await,
    );
    let hidden = api
        .call(
            "folder/edit",
            &[("folder_id", &fdup), ("folder_name", ".hidden")],
        )
        .await;
    conforms("57", &hidden);
    assert_eq!(hidden.json()["data"]["folderName"], ".hidden");
    conforms(
        "58",
        &api.call("folder/edit", &[("folder_id", &fgit), ("parent_id", &f1)])
            .await,
    );
    conforms(
        "59",
        &api.call(
            "folder/edit",
            &[("folder_id", &fgit), ("parent_id", "null")],
        )
        .await,
    );
    let ignored = api
        .call(
            "folder/edit",
            &[("folder_id", &fgit), ("parent_id", "999999")],
        )
        .await;
    conforms("60", &ignored);
    assert!(ignored.json()["data"]["parentId"].is_null());
    conforms(
        "61",
        &api.call("folder/edit", &[("folder_id", &fgit)]).await,
    );
    conforms(
        "62",
        &api.call(
            "folder/edit",
            &[("folder_id", "999999"), ("folder_name", "zzz")],
        )
        .await,
    );

    conforms(
        "63",
        &api.call(
            "folder/move",
            &[("folder_id", &funi), ("new_parent_folder_id", &f1)],
        )
        .await,
    );
    conforms(
        "64",
        &api.call(
            "folder/move",
            &[("folder_id", &funi), ("new_parent_folder_id", "null")],
        )
        .await,
    );
    conforms(
        "65",
        &api.call(
            "folder/move",
            &[("folder_id", &f1), ("new_parent_folder_id", &f1)],
        )
        .await,
    );
    conforms(
        "66",
        &api.call(
            "folder/move",
            &[("folder_id", &f1), ("new_parent_folder_id", &fsub)],
        )
        .await,
    );
    let after_cycle = api.call("folder/listing", &[]).await;
    conforms("66b", &after_cycle);
    assert!(
        !after_cycle.text.contains("\"Documents\""),
        "the cycle hides Documents"
    );
    conforms(
        "66c",
        &api.call(
            "folder/move",
            &[("folder_id", &f1), ("new_parent_folder_id", "null")],
        )
        .await,
    );
    conforms(
        "67",
        &api.call(
            "folder/move",
            &[("folder_id", &funi), ("new_parent_folder_id", "999999")],
        )
        .await,
    );
    conforms(
        "68",
        &api.call(
            "folder/move",
            &[("folder_id", &funi), ("new_parent_folder_id", "0")],
        )
        .await,
    );
    conforms(
        "69",
        &api.call(
            "folder/move",
            &[("folder_id", "999999"), ("new_parent_folder_id", "null")],
        )
        .await,
    );
    api.emu.shutdown().await.unwrap();
}

fn names_in(listing: &Resp) -> Vec<String> {
    listing.json()["data"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn file_actions_answer_like_the_real_server() {
    let mut api = Api::start(args()).await;
    let f1 = Api::data_id(
        &api.call("folder/create", &[("folder_name", "Documents")])
            .await,
    );
    let f2 = Api::data_id(
        &api.call(
            "folder/create",
            &[("folder_name", "Renamed Sub"), ("parent_id", &f1)],
        )
        .await,
    );

    let hello = api.upload("hello.txt", HELLO, &[("folder_id", &f1)]).await;
    conforms("70", &hello);
    let id1 = Api::file_id(&hello);
    conforms(
        "71",
        &api.upload("empty.bin", b"", &[("folder_id", &f1)]).await,
    );
    let again = api.upload("hello.txt", HELLO, &[("folder_id", &f1)]).await;
    conforms("72", &again);
    assert_eq!(again.json()["data"][0]["name"], "hello (2).txt");
    let id2 = Api::file_id(&again);
    let third = api.upload("hello.txt", HELLO, &[("folder_id", &f1)]).await;
    conforms("73", &third);
    assert_eq!(third.json()["data"][0]["name"], "hello (3).txt");
    let id3 = Api::file_id(&third);
    let rc = api.upload(".bashrc", BASHRC, &[("folder_id", &f1)]).await;
    conforms("74", &rc);
    assert_eq!(rc.json()["data"][0]["name"], "bashrc");
    let id4 = Api::file_id(&rc);
    let rc2 = api.upload(".bashrc", BASHRC, &[("folder_id", &f1)]).await;
    conforms("75", &rc2);
    assert_eq!(rc2.json()["data"][0]["name"], "bashr (2).bashrc");
    let weird = api
        .upload(
            "my file 'sq' %22dq%22 ünï 日本 🚀.txt",
            HELLO,
            &[("folder_id", &f1)],
        )
        .await;
    conforms("76", &weird);
    let id6 = Api::file_id(&weird);
    let th = api.upload("thousand.bin", &thousand(), &[]).await;
    conforms("77", &th);
    let id7 = Api::file_id(&th);
    conforms(
        "78",
        &api.upload("big20m.bin", &vec![7u8; 1 << 20], &[("folder_id", &f1)])
            .await,
    );
    let no_file = api
        .send(
            api.http.post(api.url("file/upload")).multipart(
                reqwest::multipart::Form::new()
                    .text("access_token", api.token.clone())
                    .text("account_id", api.account.clone()),
            ),
        )
        .await;
    conforms("79", &no_file);
    let mk = api
        .upload("Makefile", MAKEFILE, &[("folder_id", &f2)])
        .await;
    conforms("80", &mk);
    let id9 = Api::file_id(&mk);
    let mk2 = api
        .upload("Makefile", MAKEFILE, &[("folder_id", &f2)])
        .await;
    conforms("81", &mk2);
    assert_eq!(mk2.json()["data"][0]["name"], "Makefil (2).makefile");
    let env = api
        .upload(".env.local", b"A=1\n", &[("folder_id", &f2)])
        .await;
    conforms("82", &env);
    assert_eq!(env.json()["data"][0]["name"], "env.local");
    let path = api
        .upload("dir\\sub\\name.txt", HELLO, &[("folder_id", &f2)])
        .await;
    conforms("83", &path);
    assert_eq!(path.json()["data"][0]["name"], "name.txt");
    let bad_folder = api
        .upload("to_bad_folder.bin", &thousand(), &[("folder_id", "999999")])
        .await;
    conforms("84", &bad_folder);
    let id13 = Api::file_id(&bad_folder);
    conforms("85", &api.get("file/upload", &[]).await);
    let other_field = api
        .send(
            api.http.post(api.url("file/upload")).multipart(
                reqwest::multipart::Form::new()
                    .text("access_token", api.token.clone())
                    .text("account_id", api.account.clone())
                    .part(
                        "file",
                        reqwest::multipart::Part::bytes(HELLO.to_vec()).file_name("hello.txt"),
                    ),
            ),
        )
        .await;
    conforms("86", &other_field);

    conforms("90", &api.call("file/info", &[("file_id", &id1)]).await);
    let info6 = api.call("file/info", &[("file_id", &id6)]).await;
    conforms("91", &info6);
    assert_eq!(
        info6.json()["data"]["filename"],
        "my file sq %22dq%22 ünï 日本 ????.txt"
    );
    let info13 = api.call("file/info", &[("file_id", &id13)]).await;
    conforms("92", &info13);
    assert!(info13.json()["data"]["folderId"].is_null());
    conforms("93", &api.call("file/info", &[("file_id", "999999")]).await);
    conforms(
        "94",
        &api.call("folder/listing", &[("parent_folder_id", &f1)])
            .await,
    );

    let dot = api
        .call("file/edit", &[("file_id", &id4), ("filename", ".bashrc")])
        .await;
    conforms("100", &dot);
    assert_eq!(dot.json()["data"]["filename"], ".bashrc");
    conforms(
        "101",
        &api.call("file/edit", &[("file_id", &id3), ("filename", "hello.txt")])
            .await,
    );
    let plain = api
        .call(
            "file/edit",
            &[("file_id", &id2), ("filename", "renamed file.TXT")],
        )
        .await;
    conforms("102", &plain);
    assert_eq!(plain.json()["data"]["extension"], "txt");
    let noext = api
        .call(
            "file/edit",
            &[("file_id", &id2), ("filename", "NoExtension")],
        )
        .await;
    conforms("103", &noext);
    assert_eq!(noext.json()["data"]["extension"], "noextensio");
    let quotes = api
        .call(
            "file/edit",
            &[
                ("file_id", &id2),
                ("filename", "a \"b\" 'c' <i>x</i> é 🚀.md"),
            ],
        )
        .await;
    conforms("104", &quotes);
    assert_eq!(quotes.json()["data"]["filename"], "a \"b\" 'c' x é ????.md");
    conforms(
        "105",
        &api.call("file/edit", &[("file_id", &id2), ("folder_id", &f2)])
            .await,
    );
    let to_root = api
        .call("file/edit", &[("file_id", &id2), ("folder_id", "null")])
        .await;
    conforms("106", &to_root);
    assert!(to_root.json()["data"]["folderId"].is_null());
    conforms(
        "107",
        &api.call("file/edit", &[("file_id", &id2), ("folder_id", "999999")])
            .await,
    );
    conforms(
        "108",
        &api.call(
            "file/edit",
            &[("file_id", &id2), ("filename", "dir/name.txt")],
        )
        .await,
    );
    let f1_listing = api
        .call("folder/listing", &[("parent_folder_id", &f1)])
        .await;
    conforms("109", &f1_listing);
    let names = names_in(&f1_listing);
    assert_eq!(
        names.iter().filter(|n| *n == "hello.txt").count(),
        2,
        "{names:?}"
    );

    conforms(
        "110",
        &api.call(
            "file/move",
            &[("file_id", &id7), ("new_parent_folder_id", &f2)],
        )
        .await,
    );
    let lost = api
        .call(
            "file/move",
            &[("file_id", &id7), ("new_parent_folder_id", "null")],
        )
        .await;
    conforms("111", &lost);
    assert_eq!(lost.json()["data"]["folderId"], "0");
    conforms(
        "112",
        &api.call(
            "file/move",
            &[("file_id", &id7), ("new_parent_folder_id", "0")],
        )
        .await,
    );
    conforms(
        "113",
        &api.call(
            "file/move",
            &[("file_id", &id7), ("new_parent_folder_id", "999999")],
        )
        .await,
    );
    conforms(
        "114",
        &api.call(
            "file/move",
            &[("file_id", &id1), ("new_parent_folder_id", &f2)],
        )
        .await,
    );

    // Without the session cookie of /authorize, file/copy fails (and leaves an ownerless copy).
    let cookieless = client();
    let bare = |form: &[(&str, &str)]| {
        let mut all = vec![
            ("access_token", api.token.as_str()),
            ("account_id", api.account.as_str()),
        ];
        all.extend_from_slice(form);
        cookieless.post(api.url("file/copy")).form(&all)
    };
    conforms(
        "115",
        &api.send(bare(&[("file_id", &id7), ("copy_to_folder_id", &f1)]))
            .await,
    );
    conforms(
        "116",
        &api.send(bare(&[("file_id", &id1), ("copy_to_folder_id", "null")]))
            .await,
    );
    conforms(
        "117",
        &api.send(bare(&[("file_id", &id7), ("copy_to_folder_id", "null")]))
            .await,
    );
    conforms(
        "118",
        &api.send(bare(&[("file_id", &id7), ("copy_to_folder_id", "999999")]))
            .await,
    );
    let root = api.call("folder/listing", &[]).await;
    conforms("119", &root);
    assert!(
        !names_in(&root).contains(&"thousand.bin".to_string()),
        "moved to null, file vanishes"
    );

    conforms("120", &api.login().await);
    let copied = api
        .call(
            "file/copy",
            &[("file_id", &id9), ("copy_to_folder_id", &f1)],
        )
        .await;
    conforms("121", &copied);
    assert_eq!(copied.json()["new_file"]["data"]["filename"], "Makefile");
    conforms(
        "122",
        &api.call(
            "file/copy",
            &[("file_id", &id9), ("copy_to_folder_id", "null")],
        )
        .await,
    );
    let bare = |form: &[(&str, &str)]| {
        let mut all = vec![
            ("access_token", api.token.as_str()),
            ("account_id", api.account.as_str()),
        ];
        all.extend_from_slice(form);
        cookieless.post(api.url("file/copy")).form(&all)
    };
    conforms(
        "123",
        &api.send(bare(&[("file_id", &id9), ("copy_to_folder_id", &f1)]))
            .await,
    );

    let deleted = api.call("file/delete", &[("file_id", &id3)]).await;
    conforms("130", &deleted);
    let after = api
        .call("folder/listing", &[("parent_folder_id", &f1)])
        .await;
    conforms("131", &after);
    assert!(!after.text.contains(&format!("\"id\":\"{id3}\"")));
    conforms("132", &api.call("folder/listing", &[]).await);
    conforms("133", &api.call("file/info", &[("file_id", &id3)]).await);
    conforms("134", &api.call("file/delete", &[("file_id", &id3)]).await);
    conforms(
        "135",
        &api.call("file/download", &[("file_id", &id3)]).await,
    );
    let zombie = api
        .call(
            "file/edit",
            &[("file_id", &id3), ("filename", "zombie.txt")],
        )
        .await;
    conforms("136", &zombie);
    assert_eq!(zombie.json()["data"]["file_status"], "trash");
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn folder_delete_trashes_the_tree_and_v4_lists_it_at_the_root() {
    let api = Api::start(args()).await;
    api.call("folder/create", &[("folder_name", ".git")]).await;
    let parent = api
        .call("folder/create", &[("folder_name", "ToDelete")])
        .await;
    conforms("140", &parent);
    let p = Api::data_id(&parent);
    let child = api
        .call(
            "folder/create",
            &[("folder_name", "Child"), ("parent_id", &p)],
        )
        .await;
    conforms("141", &child);
    let c = Api::data_id(&child);
    conforms(
        "142",
        &api.upload("hello.txt", HELLO, &[("folder_id", &p)])
            .await
            .with_dedup(&api, HELLO)
            .await,
    );
    conforms(
        "143",
        &api.upload("thousand.bin", &thousand(), &[("folder_id", &c)])
            .await
            .with_dedup(&api, &thousand())
            .await,
    );
    conforms(
        "144",
        &api.call("folder/delete", &[("folder_id", &p)]).await,
    );
    let root = api.call("folder/listing", &[]).await;
    conforms("145", &root);
    assert!(
        root.text.contains("\"folderName\":\"ToDelete\""),
        "4.x lists the trashed folder at the root"
    );
    for folder in root.json()["data"]["folders"].as_array().unwrap() {
        assert!(
            folder.get("status").is_none(),
            "4.x folders carry no status"
        );
    }
    conforms(
        "146",
        &api.call("folder/listing", &[("parent_folder_id", &p)])
            .await,
    );
    conforms("147", &api.call("folder/info", &[("folder_id", &p)]).await);
    conforms(
        "148",
        &api.call("folder/listing", &[("parent_folder_id", &c)])
            .await,
    );
    conforms(
        "149",
        &api.call("folder/delete", &[("folder_id", "999999")]).await,
    );
    let into_trash = api.upload("Makefile", MAKEFILE, &[("folder_id", &p)]).await;
    assert_eq!(into_trash.status, 200);
    assert_eq!(into_trash.json()["_status"], "success");
    conforms(
        "151",
        &api.call(
            "folder/create",
            &[("folder_name", "InTrash"), ("parent_id", &p)],
        )
        .await,
    );
    conforms(
        "152",
        &api.call("folder/delete", &[("folder_id", &p)]).await,
    );
    api.emu.shutdown().await.unwrap();
}

trait Dedup {
    async fn with_dedup(self, api: &Api, content: &[u8]) -> Resp;
}

impl Dedup for Resp {
    /// The transcript's upload was deduplicated against earlier content: upload it once
    /// elsewhere first, then repeat, so that the compared reply is a deduplicated one too.
    async fn with_dedup(self, api: &Api, content: &[u8]) -> Resp {
        let seen = self.json()["data"][0]["hash"].is_string();
        if seen {
            return self;
        }
        let again = api.upload("dedup-probe.bin", content, &[]).await;
        assert!(again.json()["data"][0]["hash"].is_string());
        again
    }
}

#[tokio::test]
async fn downloads_follow_the_range_table_of_the_real_server() {
    let mut api = Api::start(args()).await;
    let f1 = Api::data_id(
        &api.call("folder/create", &[("folder_name", "Documents")])
            .await,
    );
    let th = Api::file_id(&api.upload("thousand.bin", &thousand(), &[]).await);
    conforms("160", &api.call("file/download", &[("file_id", &th)]).await);
    let up = api
        .upload("rand1000.bin", &rand1000(), &[("folder_id", &f1)])
        .await;
    conforms("172", &up);
    let rid = Api::file_id(&up);
    let dl = api.call("file/download", &[("file_id", &rid)]).await;
    conforms("173", &dl);
    let url = dl.json()["data"]["download_url"]
        .as_str()
        .unwrap()
        .to_string();
    let data = rand1000();

    let fetch = |range: Option<&'static str>| {
        let mut req = api.http.get(&url);
        if let Some(r) = range {
            req = req.header("Range", format!("bytes={r}"));
        }
        req
    };
    for (prefix, range, body) in [
        ("161", None, &data[..]),
        ("162", None, &data[..]),
        ("163", Some("0-99"), &data[..]),
        ("164", Some("100-199"), &data[100..200]),
        ("165", Some("100-"), &data[100..]),
        ("166", Some("-100"), &data[..]),
        ("167", Some("0-0"), &data[..]),
        ("168", Some("0-1"), &data[..2]),
        ("171", Some("0-9,20-29"), &data[..]),
        ("175", Some("1-1"), &data[1..2]),
        ("176", Some("999-999"), &data[999..]),
    ] {
        let r = fetch(range).send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap();
        conforms_download(
            prefix,
            &Resp {
                status,
                headers,
                text: String::new(),
            },
        );
        assert_eq!(&bytes[..], body, "{prefix}: body");
    }
    // Past EOF: the declared length is not delivered; the connection drops after 10 bytes.
    let r = fetch(Some("990-2000")).send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    conforms_download(
        "169",
        &Resp {
            status,
            headers,
            text: String::new(),
        },
    );
    let mut got = Vec::new();
    let mut stream = r.bytes_stream();
    let mut failed = false;
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body must break off");
    assert_eq!(&got[..], &data[990..]);
    let r = fetch(Some("2000-")).send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    assert!(r.bytes().await.unwrap().is_empty());
    conforms_download(
        "170",
        &Resp {
            status,
            headers,
            text: String::new(),
        },
    );

    let no_token = api.send(api.http.get(url.split('?').next().unwrap())).await;
    assert_eq!(no_token.status, common::transcript("190").status);
    assert!(no_token.header("location").unwrap().contains("error.html"));
    let bad = api
        .send(api.http.get(format!(
            "{}?download_token={}",
            url.split('?').next().unwrap(),
            "0".repeat(64)
        )))
        .await;
    assert_eq!(bad.status, common::transcript("191").status);
    let head = api.send(api.http.head(&url)).await;
    conforms_download("192", &head);

    let weird = Api::file_id(
        &api.upload("my file 'sq' ünï ????.txt", HELLO, &[("folder_id", &f1)])
            .await,
    );
    let wdl = api.call("file/download", &[("file_id", &weird)]).await;
    conforms("197", &wdl);
    let wurl = wdl.json()["data"]["download_url"]
        .as_str()
        .unwrap()
        .to_string();
    let broken = api.send(api.http.get(&wurl)).await;
    assert_eq!(
        broken.status,
        common::transcript("198").status,
        "a ? in the name breaks the URL"
    );
    let token = wurl.rsplit("download_token=").next().unwrap();
    let short = wurl
        .trim_start_matches("http://")
        .split('/')
        .nth(1)
        .unwrap();
    let origin = format!("http://{}", api.emu.addr());
    let by_short = api
        .send(
            api.http
                .get(format!("{origin}/{short}?download_token={token}")),
        )
        .await;
    conforms_download("199", &by_short);
    let wrong_name = api
        .send(api.http.get(format!(
            "{origin}/{short}/whatever.bin?download_token={token}"
        )))
        .await;
    assert_eq!(wrong_name.status, 200);

    let old_token = api.token.clone();
    conforms("200", &api.login().await);
    let after = api.send(api.http.get(&url)).await;
    conforms_download("201", &after);
    let stale = api
        .post(
            "file/info",
            &[
                ("access_token", &old_token),
                ("account_id", &api.account),
                ("file_id", &rid),
            ],
        )
        .await;
    conforms("202", &stale);
    conforms("203", &api.get("file/info", &[("file_id", &rid)]).await);
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_regular_user_sees_only_its_own_files() {
    let admin = Api::start(args()).await;
    let f1 = Api::data_id(
        &admin
            .call("folder/create", &[("folder_name", "Documents")])
            .await,
    );
    let a1 = Api::file_id(
        &admin
            .upload("hello.txt", HELLO, &[("folder_id", &f1)])
            .await,
    );
    let keys = admin.emu.add_account().unwrap();
    let user = client();
    let login = admin
        .send(
            user.post(admin.url("authorize"))
                .form(&[("key1", &keys.key1), ("key2", &keys.key2)]),
        )
        .await;
    conforms("210", &login);
    let t = login.json()["data"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let a = login.json()["data"]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let on_admin = |path: &str, form: Vec<(&str, String)>| user.post(admin.url(path)).form(&form);
    conforms(
        "211",
        &admin
            .send(on_admin("account/info", vec![("access_token", t.clone())]))
            .await,
    );
    conforms(
        "212",
        &admin
            .send(on_admin(
                "account/info",
                vec![
                    ("access_token", t.clone()),
                    ("account_id", admin.account.clone()),
                ],
            ))
            .await,
    );
    conforms(
        "213",
        &admin
            .send(on_admin(
                "file/info",
                vec![
                    ("access_token", t.clone()),
                    ("account_id", a.clone()),
                    ("file_id", a1.clone()),
                ],
            ))
            .await,
    );
    conforms(
        "214",
        &admin
            .send(on_admin(
                "folder/listing",
                vec![
                    ("access_token", t.clone()),
                    ("account_id", a.clone()),
                    ("parent_folder_id", f1.clone()),
                ],
            ))
            .await,
    );
    let part = reqwest::multipart::Part::bytes(HELLO.to_vec()).file_name("hello.txt");
    let form = reqwest::multipart::Form::new()
        .text("access_token", t.clone())
        .text("account_id", a.clone())
        .part("upload_file", part);
    conforms(
        "215",
        &admin
            .send(user.post(admin.url("file/upload")).multipart(form))
            .await,
    );
    let listing = admin
        .send(on_admin(
            "folder/listing",
            vec![("access_token", t.clone()), ("account_id", a.clone())],
        ))
        .await;
    conforms("216", &listing);
    assert_eq!(names_in(&listing), ["hello.txt"]);
    conforms(
        "217",
        &admin
            .send(on_admin(
                "folder/listing",
                vec![
                    ("access_token", t.clone()),
                    ("account_id", admin.account.clone()),
                ],
            ))
            .await,
    );
    conforms(
        "218",
        &admin
            .send(on_admin(
                "package/listing",
                vec![("access_token", t.clone()), ("account_id", a.clone())],
            ))
            .await,
    );
    admin.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn parallel_same_name_uploads_get_distinct_names() {
    let mut api = Api::start(args()).await;
    conforms("220", &api.login().await);
    let race = api.call("folder/create", &[("folder_name", "Race")]).await;
    conforms("221", &race);
    let folder = Api::data_id(&race);
    let uploads = (0..6u8).map(|i| {
        let content = vec![i + 1; 5000];
        let api = &api;
        let folder = folder.clone();
        async move {
            api.upload("same.bin", &content, &[("folder_id", &folder)])
                .await
        }
    });
    for r in futures_util::future::join_all(uploads).await {
        assert_eq!(r.json()["_status"], "success");
    }
    let listing = api
        .call("folder/listing", &[("parent_folder_id", &folder)])
        .await;
    conforms("223", &listing);
    assert_eq!(
        names_in(&listing),
        [
            "same (2).bin",
            "same (3).bin",
            "same (4).bin",
            "same (5).bin",
            "same (6).bin",
            "same.bin"
        ]
    );
    api.emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_20_mib_file_uploads_and_downloads_like_on_the_real_server() {
    let api = Api::start(args()).await;
    let folder = Api::data_id(
        &api.call("folder/create", &[("folder_name", "Documents")])
            .await,
    );
    let data: Vec<u8> = (0..20u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let up = api
        .upload("big20m.bin", &data, &[("folder_id", &folder)])
        .await;
    conforms("78", &up);
    let dl = api
        .call("file/download", &[("file_id", &Api::file_id(&up))])
        .await;
    conforms("174", &dl);
    let url = dl.json()["data"]["download_url"]
        .as_str()
        .unwrap()
        .to_string();
    let ten = 10 << 20;
    for (prefix, range, body) in [
        ("180", None, &data[..]),
        ("181", Some("0-99"), &data[..]),
        ("182", Some("100-199"), &data[100..200]),
        ("183", Some("100-"), &data[100..]),
        ("184", Some("-100"), &data[..]),
        ("185", Some("10485760-10551295"), &data[ten..ten + 65_536]),
    ] {
        let mut req = api.http.get(&url);
        if let Some(r) = range {
            req = req.header("Range", format!("bytes={r}"));
        }
        let r = req.send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let bytes = r.bytes().await.unwrap();
        conforms_download(
            prefix,
            &Resp {
                status,
                headers,
                text: String::new(),
            },
        );
        assert!(bytes[..] == body[..], "{prefix}: body differs");
    }
    // 186: keep-alive — ranged requests one after another on one connection each get their
    // own bytes.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    for (start, end) in [(100usize, 199usize), (200, 299)] {
        let r = http
            .get(&url)
            .header("Range", format!("bytes={start}-{end}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 206, "186: status");
        assert_eq!(&r.bytes().await.unwrap()[..], &data[start..=end], "186");
    }
    assert_eq!(
        http.get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .len(),
        data.len()
    );
}

// `fileType`, the one free-text field of a file (NOTES.md, "Mutations"). No transcript holds a
// `fileType` edit, so values are checked directly; on 4.x the replies are also compared with
// the real server's replies of the same actions.

/// A symlink as yetifs describes it; the real 4.x server gave it back verbatim in the listing.
const SYMLINK_TYPE: &str = "inode/symlink; yetifs=1; mtime=1700000000.123456789; mode=0755";

const OCTET_STREAM: &str = "application/octet-stream";

const PROFILES: [Profile; 2] = [Profile::V4, Profile::V5];

fn on(profile: Profile) -> ServeArgs {
    ServeArgs { profile, ..args() }
}

/// A database value as text: a string on 4.x, a number on 5.x.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Compares a reply with the real server's reply to the same action, where there is one (4.x).
fn conforms_on(profile: Profile, prefix: &str, ours: &Resp) {
    if profile == Profile::V4 {
        conforms(prefix, ours);
    }
}

/// `file/edit` of file `id` with `fileType=value` only.
async fn set_type(api: &Api, id: &str, value: &str) -> Resp {
    api.call("file/edit", &[("file_id", id), ("fileType", value)])
        .await
}

/// The type `file/edit`, `file/move` or `file/info` reports in `data`.
fn reported_type(reply: &Resp) -> String {
    let v = reply.json();
    v["data"]["fileType"]
        .as_str()
        .unwrap_or_else(|| panic!("no fileType in {v}"))
        .to_string()
}

/// Asserts that `file/info` and the listing of `folder` (`""`: the root) both show file `id`
/// with type `expected`; `case` names the profile and the step that looked.
async fn assert_stored(api: &Api, folder: &str, id: &str, expected: &str, case: (Profile, &str)) {
    let case = format!("{:?}: {}", case.0, case.1);
    let info = api.call("file/info", &[("file_id", id)]).await;
    assert_eq!(reported_type(&info), expected, "{case}: file/info");
    let listing = api
        .call("folder/listing", &[("parent_folder_id", folder)])
        .await
        .json();
    let listed = listing["data"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| text(&f["id"]) == id)
        .unwrap_or_else(|| panic!("{case}: file {id} not listed in {folder:?}: {listing}"));
    assert_eq!(listed["fileType"], expected, "{case}: folder/listing");
}

/// A new folder's id and a file uploaded into it.
async fn folder_with_file(api: &Api, folder: &str) -> (String, String) {
    let folder = Api::data_id(&api.call("folder/create", &[("folder_name", folder)]).await);
    let file = Api::file_id(
        &api.upload("hello.txt", HELLO, &[("folder_id", &folder)])
            .await,
    );
    (folder, file)
}

#[tokio::test]
async fn a_file_type_set_by_edit_comes_back_verbatim_in_the_edit_reply_listing_and_info() {
    for profile in PROFILES {
        let api = Api::start(on(profile)).await;
        let (folder, id) = folder_with_file(&api, "Documents").await;
        assert_stored(&api, &folder, &id, OCTET_STREAM, (profile, "uploaded")).await;

        let edited = set_type(&api, &id, SYMLINK_TYPE).await;
        conforms_on(profile, "102", &edited);
        assert_eq!(
            reported_type(&edited),
            SYMLINK_TYPE,
            "{profile:?}: edit reply"
        );
        assert_stored(&api, &folder, &id, SYMLINK_TYPE, (profile, "set")).await;
        conforms_on(
            profile,
            "94",
            &api.call("folder/listing", &[("parent_folder_id", &folder)])
                .await,
        );
        conforms_on(
            profile,
            "90",
            &api.call("file/info", &[("file_id", &id)]).await,
        );

        let replaced = set_type(&api, &id, "text/plain").await;
        assert_eq!(
            reported_type(&replaced),
            "text/plain",
            "{profile:?}: a new value replaces it"
        );
        assert_stored(&api, &folder, &id, "text/plain", (profile, "replaced")).await;
        api.emu.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_file_type_is_cut_silently_at_140_characters_not_bytes() {
    let a140 = "a".repeat(140);
    let cases = [
        ("exactly 140 ASCII characters", a140.clone(), a140.clone()),
        ("141 ASCII characters", "a".repeat(141), a140.clone()),
        ("2-byte characters", "é".repeat(150), "é".repeat(140)),
        ("3-byte characters", "日".repeat(141), "日".repeat(140)),
        (
            "a cut between multi-byte characters",
            format!("{}日本", "x".repeat(139)),
            format!("{}日", "x".repeat(139)),
        ),
        (
            "stripped tags do not count",
            format!("<b>{a140}</b>"),
            a140.clone(),
        ),
        (
            "trimmed white space does not count",
            format!("   {a140}   "),
            a140.clone(),
        ),
        (
            "a character outside the BMP is four characters once stored",
            format!("{}🚀", "x".repeat(138)),
            format!("{}??", "x".repeat(138)),
        ),
    ];
    for profile in PROFILES {
        let api = Api::start(on(profile)).await;
        let (folder, id) = folder_with_file(&api, "Documents").await;
        for (case, sent, kept) in &cases {
            let edited = set_type(&api, &id, sent).await;
            assert_eq!(
                edited.json()["_status"],
                "success",
                "{profile:?}, {case}: no error"
            );
            assert_eq!(
                &reported_type(&edited),
                kept,
                "{profile:?}, {case}: edit reply"
            );
            assert_stored(&api, &folder, &id, kept, (profile, case)).await;
        }
        api.emu.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_file_type_is_trimmed_and_tag_stripped_but_keeps_quotes() {
    let cases = [
        ("  text/plain \n", "text/plain"),
        ("<b>image</b>/png", "image/png"),
        ("a <i>b</i> c", "a b c"),
        (
            "text/plain; charset=\"utf-8\"; name='a b'",
            "text/plain; charset=\"utf-8\"; name='a b'",
        ),
        ("type é 日本 🚀", "type é 日本 ????"),
    ];
    for profile in PROFILES {
        let api = Api::start(on(profile)).await;
        let (folder, id) = folder_with_file(&api, "Documents").await;
        for (sent, kept) in cases {
            assert_eq!(
                reported_type(&set_type(&api, &id, sent).await),
                kept,
                "{profile:?}: {sent:?}"
            );
            assert_stored(&api, &folder, &id, kept, (profile, sent)).await;
        }
        api.emu.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_blank_file_type_leaves_the_stored_one_unchanged() {
    for profile in PROFILES {
        let api = Api::start(on(profile)).await;
        let (folder, id) = folder_with_file(&api, "Documents").await;
        set_type(&api, &id, SYMLINK_TYPE).await;
        for blank in ["", "   ", "\t\r\n", "<b></b>", " <i> </i> "] {
            let edited = set_type(&api, &id, blank).await;
            assert_eq!(
                edited.json()["_status"],
                "success",
                "{profile:?}: {blank:?}"
            );
            assert_eq!(
                reported_type(&edited),
                SYMLINK_TYPE,
                "{profile:?}: {blank:?}"
            );
        }
        assert_stored(&api, &folder, &id, SYMLINK_TYPE, (profile, "after blanks")).await;
        api.emu.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn renames_moves_and_copies_keep_the_file_type() {
    for profile in PROFILES {
        let api = Api::start(on(profile)).await;
        let (from, id) = folder_with_file(&api, "From").await;
        let to = Api::data_id(&api.call("folder/create", &[("folder_name", "To")]).await);
        set_type(&api, &id, SYMLINK_TYPE).await;

        let renamed = api
            .call(
                "file/edit",
                &[("file_id", &id), ("filename", "renamed.txt")],
            )
            .await;
        assert_eq!(reported_type(&renamed), SYMLINK_TYPE, "{profile:?}: rename");
        assert_stored(&api, &from, &id, SYMLINK_TYPE, (profile, "renamed")).await;

        let moved = api
            .call(
                "file/move",
                &[("file_id", &id), ("new_parent_folder_id", &to)],
            )
            .await;
        conforms_on(profile, "110", &moved);
        assert_eq!(
            reported_type(&moved),
            SYMLINK_TYPE,
            "{profile:?}: file/move"
        );
        assert_stored(&api, &to, &id, SYMLINK_TYPE, (profile, "moved")).await;

        let copied = api
            .call(
                "file/copy",
                &[("file_id", &id), ("copy_to_folder_id", &from)],
            )
            .await;
        conforms_on(profile, "121", &copied);
        let reply = copied.json();
        let (original, copy) = (&reply["original_file"]["data"], &reply["new_file"]["data"]);
        assert_eq!(
            original["fileType"], SYMLINK_TYPE,
            "{profile:?}: copy reply, original"
        );
        assert_eq!(
            copy["fileType"], SYMLINK_TYPE,
            "{profile:?}: copy reply, copy"
        );
        let copy = text(&copy["id"]);
        assert_ne!(copy, id, "{profile:?}: the copy is a new file");
        assert_stored(&api, &to, &id, SYMLINK_TYPE, (profile, "original")).await;
        assert_stored(&api, &from, &copy, SYMLINK_TYPE, (profile, "copy")).await;

        let to_root = api
            .call("file/edit", &[("file_id", &id), ("folder_id", "null")])
            .await;
        assert_eq!(
            reported_type(&to_root),
            SYMLINK_TYPE,
            "{profile:?}: edit to the root"
        );
        assert_stored(&api, "", &id, SYMLINK_TYPE, (profile, "at the root")).await;
        api.emu.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn uploads_store_application_octet_stream_whatever_type_the_part_declares() {
    let served = axum::Router::new().route(
        "/picture.png",
        axum::routing::get(|| async { ([("content-type", "image/png")], HELLO) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, served).await });

    for profile in PROFILES {
        let api = Api::start(on(profile)).await;
        for declared in ["text/plain", "image/png", SYMLINK_TYPE] {
            let part = reqwest::multipart::Part::bytes(declared.as_bytes().to_vec())
                .file_name("declared.bin")
                .mime_str(declared)
                .unwrap();
            let form = reqwest::multipart::Form::new()
                .text("access_token", api.token.clone())
                .text("account_id", api.account.clone())
                .part("upload_file", part);
            let up = api
                .send(api.http.post(api.url("file/upload")).multipart(form))
                .await;
            conforms_on(profile, "77", &up);
            assert_eq!(
                up.json()["data"][0]["type"],
                OCTET_STREAM,
                "{profile:?}: {declared}"
            );
            let id = Api::file_id(&up);
            assert_stored(&api, "", &id, OCTET_STREAM, (profile, declared)).await;
        }

        // A URL upload ignores the Content-Type the fetched server sends.
        use base64::Engine;
        let url = base64::engine::general_purpose::STANDARD.encode(format!("{origin}/picture.png"));
        let added = api
            .call("file/url_upload_add", &[("file_url_base64", &url)])
            .await
            .json();
        let item = text(&added["data"]["scheduled_item_id"]);
        let mut status = Value::Null;
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
        assert_eq!(
            status["data"]["status"], "complete",
            "{profile:?}: {status}"
        );
        let id = text(&status["data"]["downloaded_file"]["file_id"]);
        assert_stored(&api, "", &id, OCTET_STREAM, (profile, "URL upload")).await;
        api.emu.shutdown().await.unwrap();
    }
    server.abort();
}

#[tokio::test]
async fn a_file_type_survives_a_restart_of_the_emulator() {
    for profile in PROFILES {
        let dir = tempfile::tempdir().unwrap();
        let kept = ServeArgs {
            data: Some(dir.path().to_path_buf()),
            ..on(profile)
        };
        let api = Api::start(kept.clone()).await;
        let (folder, id) = folder_with_file(&api, "Documents").await;
        set_type(&api, &id, SYMLINK_TYPE).await;
        api.emu.shutdown().await.unwrap();

        let api = Api::start(kept).await;
        assert_stored(&api, &folder, &id, SYMLINK_TYPE, (profile, "restarted")).await;
        api.emu.shutdown().await.unwrap();
    }
}
