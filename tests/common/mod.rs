//! Shared helpers of the tests. Here, those of the emulator tests: an in-process emulator, raw
//! HTTP calls (reqwest, no client library), and the comparison of a reply with a real server's
//! transcript by shape: same status, same keys, same JSON types, same messages; ids, tokens,
//! dates and other state-dependent values are not compared. `core`: the core over an in-memory
//! account; `mount`: real mounts over the emulator.
#![allow(dead_code)]

pub mod core;
pub mod mount;
pub mod origin;

use std::path::PathBuf;

use serde_json::Value;
use yetifs::emulator::{Emulator, ServeArgs};

/// A reply as the tests look at it.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

/// An emulator and a cookie-keeping HTTP client logged into its main account.
pub struct Api {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub token: String,
    pub account: String,
}

pub fn args() -> ServeArgs {
    ServeArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Api {
    pub async fn start(args: ServeArgs) -> Api {
        let emu = Emulator::start(args).await.unwrap();
        let mut api = Api {
            emu,
            http: client(),
            token: String::new(),
            account: String::new(),
        };
        api.login().await;
        api
    }

    /// Authorizes with the main keys; returns the reply.
    pub async fn login(&mut self) -> Resp {
        let (k1, k2) = (self.emu.key1().to_string(), self.emu.key2().to_string());
        let r = self
            .post("authorize", &[("key1", &k1), ("key2", &k2)])
            .await;
        let v = r.json();
        self.token = v["data"]["access_token"].as_str().unwrap().to_string();
        self.account = match &v["data"]["account_id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        r
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.emu.base_url(), path)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.unwrap();
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            text: r.text().await.unwrap_or_default(),
        }
    }

    /// POST form fields as given.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.send(self.http.post(self.url(path)).form(form)).await
    }

    /// POST with the current token and account id plus `form`.
    pub async fn call(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        let mut all = vec![
            ("access_token", self.token.as_str()),
            ("account_id", self.account.as_str()),
        ];
        all.extend_from_slice(form);
        self.post(path, &all).await
    }

    /// GET with the current token and account id plus `query`.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Resp {
        let mut all = vec![
            ("access_token", self.token.as_str()),
            ("account_id", self.account.as_str()),
        ];
        all.extend_from_slice(query);
        self.send(self.http.get(self.url(path)).query(&all)).await
    }

    /// Multipart upload of `content` as `filename` (field `upload_file`), with extra fields.
    pub async fn upload(&self, filename: &str, content: &[u8], fields: &[(&str, &str)]) -> Resp {
        let mut form = reqwest::multipart::Form::new()
            .text("access_token", self.token.clone())
            .text("account_id", self.account.clone());
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        let part =
            reqwest::multipart::Part::bytes(content.to_vec()).file_name(filename.to_string());
        form = form.part("upload_file", part);
        self.send(self.http.post(self.url("file/upload")).multipart(form))
            .await
    }

    /// The id (as text) in `data.file_id` of an upload reply.
    pub fn file_id(r: &Resp) -> String {
        let v = r.json();
        match &v["data"][0]["file_id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// The id (as text) in `data.id`.
    pub fn data_id(r: &Resp) -> String {
        let v = r.json();
        match &v["data"]["id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// A real server's reply, read from `tests/fixtures/transcripts/`.
pub struct Transcript {
    pub name: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub fn transcript(prefix: &str) -> Transcript {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transcripts");
    let mut found = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{prefix}_")))
        .collect::<Vec<_>>();
    assert_eq!(found.len(), 1, "transcript {prefix}: {found:?}");
    let name = found.remove(0);
    let text = std::fs::read_to_string(dir.join(&name)).unwrap();
    let mut status = 0;
    let mut headers = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("< HTTP/1.1 ") {
            let code: u16 = rest[..3].parse().unwrap();
            if status == 0 && code >= 200 {
                status = code;
            }
        } else if let Some(h) = line.strip_prefix("< ") {
            if status != 0 {
                if let Some((k, v)) = h.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
        }
    }
    let body = text
        .split_once("\n### BODY: ")
        .and_then(|(_, rest)| rest.split_once('\n'))
        .map(|(_, rest)| {
            rest.split("\n### BODY (pretty)")
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    Transcript {
        name,
        status,
        headers,
        body: body.trim_end_matches('\n').to_string(),
    }
}

/// The type skeleton of a JSON value; arrays by their first element.
pub fn shape(v: &Value) -> Value {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

/// Like `shape`, but arrays compare by first element only when both sides have one.
fn compare(path: &str, real: &Value, ours: &Value, errors: &mut Vec<String>) {
    match (real, ours) {
        (Value::Object(a), Value::Object(b)) => {
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                errors.push(format!("{path}.{k}: missing"));
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                errors.push(format!("{path}.{k}: not in the real reply"));
            }
            for (k, va) in a {
                if let Some(vb) = b.get(k) {
                    compare(&format!("{path}.{k}"), va, vb, errors);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if let (Some(x), Some(y)) = (a.first(), b.first()) {
                compare(&format!("{path}[0]"), x, y, errors);
            }
        }
        (a, b) if shape(a) != shape(b) => {
            errors.push(format!("{path}: real {a} vs ours {b}"));
        }
        _ => {}
    }
}

/// Asserts that `ours` answers like the transcript `prefix`: status, keys, JSON types, and
/// the texts of `response`, `status`, `_status` and `"0"`.
pub fn conforms(prefix: &str, ours: &Resp) {
    let t = transcript(prefix);
    assert_eq!(
        ours.status, t.status,
        "{}: status; body {}",
        t.name, ours.text
    );
    let Ok(real) = serde_json::from_str::<Value>(&t.body) else {
        assert!(
            serde_json::from_str::<Value>(&ours.text).is_err(),
            "{}: real reply is not JSON, ours is: {}",
            t.name,
            ours.text
        );
        return;
    };
    let mine = ours.json();
    let mut errors = Vec::new();
    compare("", &real, &mine, &mut errors);
    for key in ["response", "status", "_status"] {
        if real.get(key) != mine.get(key) {
            errors.push(format!(
                "{key}: real {:?} vs ours {:?}",
                real.get(key),
                mine.get(key)
            ));
        }
    }
    assert!(
        errors.is_empty(),
        "{}:\n{}\nours: {}",
        t.name,
        errors.join("\n"),
        ours.text
    );
}

/// Asserts a transcript's download headers (status, Content-Length, Content-Range, chunking).
pub fn conforms_download(prefix: &str, ours: &Resp) {
    let t = transcript(prefix);
    assert_eq!(ours.status, t.status, "{}", t.name);
    for name in [
        "content-length",
        "content-range",
        "accept-ranges",
        "content-type",
    ] {
        let real = t
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        let mine = ours.header(name);
        if name == "content-range" || name == "content-length" || real.is_some() {
            assert_eq!(mine, real, "{}: header {name}", t.name);
        }
    }
}
