//! Turns a server's HTTP reply into the JSON payload or a typed error. Servers signal errors
//! with HTTP 200 and one of several bodies (4.x `status`, 5.x `_status`, modified hosts'
//! `success`/`result`), or with HTML pages, 404s and redirects; all of them end up here.
use serde_json::{Map, Value};

use super::redact::redact;
use crate::remote::error::RemoteError;

/// The JSON object of a successful reply.
pub(crate) type Payload = Map<String, Value>;

/// The parts of an HTTP reply that decide its meaning.
#[derive(Debug)]
pub(crate) struct RawReply<'a> {
    /// HTTP status code.
    pub status: u16,
    /// The `Location` header, for redirects.
    pub location: Option<&'a str>,
    /// Seconds from the `Retry-After` header.
    pub retry_after: Option<u64>,
    /// The body, whole.
    pub body: &'a [u8],
}

/// Which call the reply answers: a login failure means something else than a call failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Context {
    /// `/authorize`: any error message means the credentials were refused.
    Authorize,
    /// Any other endpoint.
    Call,
}

/// Longest excerpt of a non-API body kept in an error.
const DETAIL_LEN: usize = 300;

/// The payload of a successful reply, or the error the reply stands for.
pub(crate) fn decode(raw: &RawReply<'_>, context: Context) -> Result<Payload, RemoteError> {
    let status = raw.status;
    if (300..400).contains(&status) {
        return Err(RemoteError::Http {
            status,
            detail: format!(
                "redirected to {}",
                redact(raw.location.unwrap_or("nowhere"))
            ),
            retry_after: None,
        });
    }
    let json = parse_json(raw.body);
    let message = json.as_ref().and_then(error_message);
    if !(200..300).contains(&status) {
        return Err(match (status, message) {
            (404, Some(message)) => RemoteError::Unsupported(message),
            (404, None) => RemoteError::Unsupported(format!("HTTP 404: {}", summary(raw.body))),
            (413, _) => RemoteError::TooLarge(format!("HTTP 413: {}", summary(raw.body))),
            (429 | 500..=599, _) | (_, None) => RemoteError::Http {
                status,
                detail: summary(raw.body),
                retry_after: raw.retry_after,
            },
            (_, Some(message)) => classify(&message, context),
        });
    }
    match (json, message) {
        (_, Some(message)) => Err(classify(&message, context)),
        (Some(Value::Object(payload)), None) => Ok(payload),
        (Some(other), None) => Err(RemoteError::Unparseable(format!(
            "expected a JSON object, got: {}",
            truncate(&redact(&other.to_string()))
        ))),
        (None, None) if looks_like_html(raw.body) => Err(RemoteError::Server(summary(raw.body))),
        (None, None) => Err(RemoteError::Unparseable(summary(raw.body))),
    }
}

/// The body as JSON, tolerating a byte-order mark and surrounding whitespace.
fn parse_json(body: &[u8]) -> Option<Value> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    serde_json::from_slice(body.trim_ascii()).ok()
}

/// The server's error message, if the JSON is an error reply in any known shape.
fn error_message(json: &Value) -> Option<String> {
    let obj = json.as_object()?;
    let is_error = |key: &str| obj.get(key).and_then(Value::as_str) == Some("error");
    let is_false = |key: &str| match obj.get(key) {
        Some(Value::Bool(b)) => !b,
        Some(Value::String(s)) => s == "false" || s == "0",
        Some(Value::Number(n)) => n.as_u64() == Some(0),
        _ => false,
    };
    if !(is_error("status") || is_error("_status") || is_false("success") || is_false("result")) {
        return None;
    }
    let text = ["response", "message", "0", "error", "msg"]
        .iter()
        .find_map(|key| match obj.get(*key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            _ => None,
        });
    Some(text.unwrap_or_else(|| "the server reported an error without a message".to_owned()))
}

/// Whether `message` is one of the two replies to a dead access token, the only ones that
/// justify a new `/authorize`.
pub(crate) fn is_token_message(message: &str) -> bool {
    message
        .trim()
        .to_ascii_lowercase()
        .starts_with("could not validate access_token")
}

/// The error variant a server message stands for.
pub(crate) fn classify(message: &str, context: Context) -> RemoteError {
    let owned = message.to_owned();
    if context == Context::Authorize {
        return RemoteError::Auth(owned);
    }
    let m = message.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    if is_token_message(message) {
        RemoteError::Token(owned)
    } else if has(&["no method found", "curl module", "not available on this"]) {
        RemoteError::Unsupported(owned)
    } else if has(&[
        "could not authenticate",
        "does not have access to the file upload api",
        "must be an admin user",
    ]) {
        RemoteError::Auth(owned)
    } else if has(&[
        "quota",
        "no space",
        "disk full",
        "failed to write file to disk",
    ]) || (m.contains("storage")
        && has(&[
            "exceed",
            "limit",
            "full",
            "reached",
            "not enough",
            "insufficient",
        ]))
    {
        RemoteError::NoSpace(owned)
    } else if has(&[
        "too big",
        "too large",
        "upload_max_filesize",
        "max_file_size",
        "maximum file size",
        "maximum upload size",
    ]) {
        RemoteError::TooLarge(owned)
    } else if has(&[
        "could not find",
        "not found",
        "does not exist",
        "failed deleting the folder",
        "failed moving the folder",
    ]) {
        RemoteError::NotFound(owned)
    } else if has(&[
        "please provide",
        "must be",
        "can not match",
        "cannot match",
        "could not parse",
        "unexpected header",
        "filesize received was zero",
        "did not receive uploaded file",
        "invalid",
    ]) {
        RemoteError::InvalidInput(owned)
    } else {
        RemoteError::Server(owned)
    }
}

/// Whether a body is an HTML page (a PHP error page, a proxy's error page).
fn looks_like_html(body: &[u8]) -> bool {
    let start = String::from_utf8_lossy(&body[..body.len().min(512)]).to_lowercase();
    let start = start.trim_start();
    start.starts_with('<') || start.contains("<html") || start.contains("<body")
}

/// A short, readable, redacted excerpt of a body: HTML tags dropped, whitespace collapsed.
pub(crate) fn summary(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut plain = String::with_capacity(text.len().min(4 * DETAIL_LEN));
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => {
                in_tag = true;
                plain.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let collapsed = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        "empty reply".to_owned()
    } else {
        truncate(&redact(&collapsed))
    }
}

/// `text` cut to at most [`DETAIL_LEN`] characters.
fn truncate(text: &str) -> String {
    match text.char_indices().nth(DETAIL_LEN) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fixtures::{body, status};

    fn ok(body: &[u8]) -> RawReply<'_> {
        RawReply {
            status: 200,
            location: None,
            retry_after: None,
            body,
        }
    }

    fn decode_fixture(name: &str, context: Context) -> Result<Payload, RemoteError> {
        let b = body(name);
        decode(
            &RawReply {
                status: status(name),
                location: None,
                retry_after: None,
                body: b.as_bytes(),
            },
            context,
        )
    }

    #[test]
    fn a_success_reply_yields_its_payload() {
        let p = decode_fixture("90_file_info.txt", Context::Call).unwrap();
        assert_eq!(p["data"]["filename"], "hello.txt");
    }

    #[test]
    fn the_4x_error_shape_is_recognised() {
        let e = decode_fixture("93_file_info_nonexistent.txt", Context::Call).unwrap_err();
        assert!(
            matches!(&e, RemoteError::NotFound(m) if m == "Could not find file based on file_id."),
            "{e:?}"
        );
    }

    #[test]
    fn the_5x_error_shape_is_recognised() {
        let b = br#"{"response":"Could not find folder based on folder_id.","_status":"error","_datetime":"2024-01-01 00:00:00"}"#;
        assert!(matches!(
            decode(&ok(b), Context::Call),
            Err(RemoteError::NotFound(_))
        ));
    }

    #[test]
    fn modified_hosts_success_false_and_result_false_shapes_are_errors() {
        let b = br#"{"success":false,"message":"Filesize received was zero."}"#;
        assert!(matches!(
            decode(&ok(b), Context::Call),
            Err(RemoteError::InvalidInput(m)) if m == "Filesize received was zero."
        ));
        let b = br#"{"result":false,"message":"Something odd"}"#;
        assert!(
            matches!(decode(&ok(b), Context::Call), Err(RemoteError::Server(m)) if m == "Something odd")
        );
        let b = br#"{"success":true,"data":{}}"#;
        assert!(decode(&ok(b), Context::Call).is_ok());
    }

    #[test]
    fn an_unknown_action_is_unsupported_on_4x_404_and_on_5x_200() {
        let e = decode_fixture("24_unknown_action_file_nope.txt", Context::Call).unwrap_err();
        assert!(
            matches!(&e, RemoteError::Unsupported(m) if m.contains("No method found")),
            "{e:?}"
        );
        let b =
            br#"{"0":"No method found within endpoint (file): url_upload_add","_status":"error"}"#;
        assert!(matches!(
            decode(&ok(b), Context::Call),
            Err(RemoteError::Unsupported(_))
        ));
    }

    #[test]
    fn an_unknown_endpoint_html_404_is_unsupported_with_readable_text() {
        let e = decode_fixture("25_unknown_endpoint.txt", Context::Call).unwrap_err();
        match e {
            RemoteError::Unsupported(m) => {
                assert!(m.contains("SYSTEM ERROR"), "{m}");
                assert!(!m.contains('<'), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_html_page_with_status_200_is_a_server_error() {
        let b = b"<html><body><h1>Database error</h1></body></html>";
        assert!(
            matches!(decode(&ok(b), Context::Call), Err(RemoteError::Server(m)) if m == "Database error")
        );
    }

    #[test]
    fn garbage_is_unparseable_and_a_bom_is_tolerated() {
        assert!(matches!(
            decode(&ok(b"{\"data\": [1,"), Context::Call),
            Err(RemoteError::Unparseable(_))
        ));
        assert!(matches!(
            decode(&ok(b"[1,2]"), Context::Call),
            Err(RemoteError::Unparseable(_))
        ));
        let b = b"\xEF\xBB\xBF {\"data\":{},\"_status\":\"success\"}\n";
        assert!(decode(&ok(b), Context::Call).is_ok());
    }

    #[test]
    fn a_redirect_is_an_http_error_naming_its_target_without_secrets() {
        let raw = RawReply {
            status: 302,
            location: Some("http://h/error.html?download_token=abc&e=x"),
            retry_after: None,
            body: b"",
        };
        match decode(&raw, Context::Call) {
            Err(RemoteError::Http {
                status: 302,
                detail,
                ..
            }) => {
                assert!(
                    detail.contains("error.html") && !detail.contains("abc"),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rate_limits_and_server_faults_keep_status_and_retry_after() {
        let raw = RawReply {
            status: 429,
            location: None,
            retry_after: Some(3),
            body: b"<html>Too Many Requests</html>",
        };
        assert!(matches!(
            decode(&raw, Context::Call),
            Err(RemoteError::Http {
                status: 429,
                retry_after: Some(3),
                ..
            })
        ));
        let raw = RawReply {
            status: 502,
            body: b"Bad Gateway",
            ..raw
        };
        let e = decode(&raw, Context::Call).unwrap_err();
        assert!(e.is_transient());
    }

    #[test]
    fn a_web_server_body_limit_is_too_large() {
        let raw = RawReply {
            status: 413,
            location: None,
            retry_after: None,
            body: b"<html><title>413 Request Entity Too Large</title></html>",
        };
        assert!(matches!(
            decode(&raw, Context::Call),
            Err(RemoteError::TooLarge(_))
        ));
    }

    #[test]
    fn both_token_messages_and_only_they_are_token_errors() {
        for name in [
            "13_reauth_step4_use_old_T1.txt",
            "14_reauth_step5_use_old_T1_folder.txt",
        ] {
            let e = decode_fixture(name, Context::Call).unwrap_err();
            assert!(matches!(e, RemoteError::Token(_)), "{name}: {e:?}");
        }
        let e = decode_fixture("18_missing_access_token.txt", Context::Call).unwrap_err();
        assert!(matches!(e, RemoteError::InvalidInput(_)), "{e:?}");
    }

    #[test]
    fn every_authorize_failure_is_an_auth_error() {
        for name in [
            "00_authorize_default_config_access_type_admin.txt",
            "02_authorize_bad_keys.txt",
            "03_authorize_short_key1.txt",
        ] {
            let e = decode_fixture(name, Context::Authorize).unwrap_err();
            assert!(matches!(e, RemoteError::Auth(_)), "{name}: {e:?}");
        }
    }

    /// The variant name of an error, for tables of expectations.
    fn kind(e: &RemoteError) -> &'static str {
        match e {
            RemoteError::Auth(_) => "Auth",
            RemoteError::Token(_) => "Token",
            RemoteError::NotFound(_) => "NotFound",
            RemoteError::InvalidInput(_) => "InvalidInput",
            RemoteError::NoSpace(_) => "NoSpace",
            RemoteError::TooLarge(_) => "TooLarge",
            RemoteError::Unsupported(_) => "Unsupported",
            RemoteError::Server(_) => "Server",
            RemoteError::Http { .. } => "Http",
            RemoteError::Transport(_) => "Transport",
            RemoteError::Unreachable(_) => "Unreachable",
            RemoteError::Unparseable(_) => "Unparseable",
            RemoteError::Integrity(_) => "Integrity",
            RemoteError::Io(_) => "Io",
        }
    }

    #[test]
    fn known_server_messages_map_to_their_variants() {
        let cases = [
            ("Could not find file based on file_id.", "NotFound"),
            ("Could not find folder based on folder_id.", "NotFound"),
            ("Could not find the destination folder id defined by new_parent_folder_id.", "NotFound"),
            ("Failed deleting the folder.", "NotFound"),
            ("Failed moving the folder.", "NotFound"),
            ("Please provide the folder_name param.", "InvalidInput"),
            ("Param folder_id can not match new_parent_folder_id.", "InvalidInput"),
            ("Could not parse the file_url_base64 parameter. Ensure it's base64 encoded.", "InvalidInput"),
            ("Filesize received was zero.", "InvalidInput"),
            ("Did not receive uploaded file.", "InvalidInput"),
            ("Unexpected Header", "InvalidInput"),
            ("API user must be an admin user for this endpoint.", "Auth"),
            ("PHP Curl module does not exist on your server/web hosting. It will need to be enabled to use this feature.", "Unsupported"),
            ("File is too big", "TooLarge"),
            ("The uploaded file exceeds the upload_max_filesize directive in php.ini", "TooLarge"),
            ("You have reached the maximum storage limit for your account.", "NoSpace"),
            ("Could not validate access_token, please reauthenticate or try again.", "Token"),
            ("Error uploading file. No response received from: ", "Server"),
            ("Could not generate download url.", "Server"),
        ];
        for (message, expected) in cases {
            let e = classify(message, Context::Call);
            assert_eq!(kind(&e), expected, "{message}");
            assert!(e.to_string().contains(message.trim()), "message kept: {e}");
        }
    }

    #[test]
    fn summaries_are_short_and_secret_free() {
        let long = "x".repeat(1000);
        assert!(summary(long.as_bytes()).chars().count() <= DETAIL_LEN + 3);
        assert_eq!(
            summary(b"see ?access_token=abc"),
            "see ?access_token=<redacted>"
        );
        assert_eq!(summary(b"  "), "empty reply");
    }
}
