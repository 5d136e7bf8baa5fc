//! Keeps secrets out of logs and error messages. Keys, access tokens and download tokens end up
//! in URLs and form bodies, and from there in `reqwest` errors; everything the client turns into
//! text passes through [`redact`] first.
use std::fmt;

/// The query or form parameters whose values are secrets.
const SECRET_PARAMS: [&str; 6] = [
    "download_token=",
    "access_token=",
    "key1=",
    "key2=",
    "password=",
    "username=",
];

/// What a redacted value is replaced with.
const MASK: &str = "<redacted>";

/// `text` with the value of every secret parameter (`download_token=...`, `access_token=...`,
/// `key1=...`, `key2=...`, `password=...`, `username=...`) replaced by `<redacted>`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, param)) = next_secret(rest) {
        let value_start = at + param.len();
        out.push_str(&rest[..value_start]);
        let value_len = rest[value_start..]
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c == ')' || c.is_whitespace())
            .unwrap_or(rest.len() - value_start);
        if value_len > 0 {
            out.push_str(MASK);
        }
        rest = &rest[value_start + value_len..];
    }
    out.push_str(rest);
    out
}

/// The earliest secret parameter name in `text` (ASCII case-insensitive) and where it starts.
fn next_secret(text: &str) -> Option<(usize, &'static str)> {
    let lower = text.to_ascii_lowercase();
    SECRET_PARAMS
        .iter()
        .filter_map(|param| lower.find(param).map(|at| (at, *param)))
        .min_by_key(|(at, _)| *at)
}

/// A string that must never be printed: an access token, a key, a download URL. `Debug` and
/// `Display` show `<redacted>`; [`Secret::expose`] gives the value to the code that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for putting it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_token_in_a_url_is_masked() {
        let url = "http://h/1Z/rand1000.bin?download_token=20b78943330a0013caca5708353f";
        assert_eq!(
            redact(url),
            "http://h/1Z/rand1000.bin?download_token=<redacted>"
        );
    }

    #[test]
    fn every_secret_parameter_of_a_form_body_is_masked_and_others_kept() {
        let body = "key1=AAAA&key2=BBBB&account_id=1&access_token=CCCC&file_id=7";
        assert_eq!(
            redact(body),
            "key1=<redacted>&key2=<redacted>&account_id=1&access_token=<redacted>&file_id=7"
        );
    }

    #[test]
    fn secrets_inside_an_error_message_are_masked_up_to_the_closing_delimiter() {
        let msg = "error sending request for url (http://h/x?Download_Token=abc) : refused";
        assert_eq!(
            redact(msg),
            "error sending request for url (http://h/x?Download_Token=<redacted>) : refused"
        );
    }

    #[test]
    fn text_without_secrets_is_unchanged() {
        assert_eq!(redact("Could not find file."), "Could not find file.");
        assert_eq!(redact("download_token="), "download_token=");
    }

    #[test]
    fn a_secret_never_shows_in_debug_or_display() {
        let s = Secret::new("topsecret");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "topsecret");
    }
}
