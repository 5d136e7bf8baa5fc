//! Test access to the recorded replies of a real 4.x server in `tests/fixtures/transcripts/`:
//! each file holds the request, the status line, the headers and the raw body of one probe.
use std::path::PathBuf;

/// The whole transcript file `name`.
fn transcript(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "transcripts",
        name,
    ]
    .iter()
    .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The raw reply body recorded in transcript `name`.
pub(crate) fn body(name: &str) -> String {
    let text = transcript(name);
    let start = text
        .find("### BODY: ")
        .and_then(|at| text[at..].find('\n').map(|nl| at + nl + 1))
        .unwrap_or_else(|| panic!("{name}: no body"));
    let rest = &text[start..];
    let end = rest.find("\n### BODY (pretty):").unwrap_or(rest.len());
    rest[..end].trim_end_matches('\n').to_owned()
}

/// The final HTTP status of transcript `name`.
pub(crate) fn status(name: &str) -> u16 {
    let text = transcript(name);
    text.lines()
        .filter_map(|l| l.strip_prefix("< HTTP/1.1 "))
        .filter_map(|l| l.get(..3)?.parse().ok())
        .rfind(|s| *s != 100)
        .unwrap_or_else(|| panic!("{name}: no status"))
}

/// The value of response header `header` (case-insensitive) in transcript `name`.
pub(crate) fn header(name: &str, header: &str) -> Option<String> {
    let prefix = format!("{}:", header.to_ascii_lowercase());
    transcript(name)
        .lines()
        .filter_map(|l| l.strip_prefix("< "))
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_owned())
}
