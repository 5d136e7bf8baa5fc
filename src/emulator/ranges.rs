//! How the file server answers a `Range` header: `naive` reproduces the stock server's broken
//! handling row by row (NOTES.md, transcripts 161-186), `correct` follows RFC 7233 for single
//! ranges. Pure: the result says what to send, `download.rs` sends it.

/// Which range behaviour the file server has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RangeMode {
    /// As the stock server: ranges from 0 mostly ignored, ends past EOF trusted, no 416.
    Naive,
    /// RFC 7233 single ranges: 206 with the exact bytes, 416 past the end.
    Correct,
}

/// What to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// HTTP status (200, 206 or 416).
    pub status: u16,
    /// The `Content-Range` header, if one is sent.
    pub content_range: Option<String>,
    /// The declared `Content-Length`; `None` sends the body chunked.
    pub content_length: Option<u64>,
    /// First byte of the file to send.
    pub start: u64,
    /// How many bytes of the file to send (never past EOF). When it is less than
    /// `content_length`, the connection is dropped after them, as the stock server does.
    pub send: u64,
}

/// One `a-b` item of a `bytes=` header, as text (either side may be empty).
fn first_spec(header: &str) -> Option<(&str, &str)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let first = spec.split(',').next()?.trim();
    first.split_once('-')
}

/// The whole file with a 200.
fn whole(size: u64, content_range: Option<String>) -> Plan {
    Plan {
        status: 200,
        content_range,
        content_length: Some(size),
        start: 0,
        send: size,
    }
}

/// The plan for a file of `size` bytes and an optional `Range` header.
pub fn plan(mode: RangeMode, size: u64, header: Option<&str>) -> Plan {
    match mode {
        RangeMode::Naive => naive(size, header),
        RangeMode::Correct => correct(size, header),
    }
}

fn naive(size: u64, header: Option<&str>) -> Plan {
    let last = size.saturating_sub(1);
    let Some((a, b)) = header.and_then(first_spec) else {
        return whole(size, Some(format!("bytes 0-{last}/{size}")));
    };
    // PHP's empty() treats "0" as empty: an end of 0 means "to the end".
    let end_given = b.parse::<u64>().ok().filter(|e| *e > 0);
    let start = a.parse::<u64>().ok();
    match start {
        None => whole(size, Some(format!("bytes 0-{}/{size}", b))),
        Some(0) if end_given == Some(1) => Plan {
            status: 206,
            content_range: Some(format!("bytes 0-1/{size}")),
            content_length: Some(2),
            start: 0,
            send: 2.min(size),
        },
        Some(0) => whole(
            size,
            Some(format!("bytes 0-{}/{size}", end_given.unwrap_or(last))),
        ),
        Some(start) => {
            let end = end_given.unwrap_or(last);
            let available = size.saturating_sub(start);
            let declared = (end + 1).checked_sub(start).filter(|n| *n > 0);
            Plan {
                status: 206,
                content_range: Some(format!("bytes {start}-{end}/{size}")),
                content_length: declared,
                start: start.min(size),
                send: declared.map_or(0, |d| d.min(available)),
            }
        }
    }
}

fn correct(size: u64, header: Option<&str>) -> Plan {
    let Some(header) = header else {
        return whole(size, None);
    };
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return whole(size, None);
    };
    if spec.contains(',') {
        return whole(size, None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return whole(size, None);
    };
    let unsatisfiable = Plan {
        status: 416,
        content_range: Some(format!("bytes */{size}")),
        content_length: Some(0),
        start: 0,
        send: 0,
    };
    let (start, end) = match (a.trim().parse::<u64>().ok(), b.trim().parse::<u64>().ok()) {
        (Some(s), None) if b.trim().is_empty() => (s, size.saturating_sub(1)),
        (Some(s), Some(e)) if e >= s => (s, e.min(size.saturating_sub(1))),
        (None, Some(n)) if a.trim().is_empty() => {
            if n == 0 {
                return unsatisfiable;
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        _ => return whole(size, None),
    };
    if start >= size {
        return unsatisfiable;
    }
    let len = end - start + 1;
    Plan {
        status: 206,
        content_range: Some(format!("bytes {start}-{end}/{size}")),
        content_length: Some(len),
        start,
        send: len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(header: Option<&str>) -> (u16, Option<u64>, u64, u64, Option<String>) {
        let p = plan(RangeMode::Naive, 1000, header);
        (p.status, p.content_length, p.start, p.send, p.content_range)
    }

    #[test]
    fn naive_without_range_sends_the_whole_file_with_a_content_range() {
        assert_eq!(
            row(None),
            (200, Some(1000), 0, 1000, Some("bytes 0-999/1000".into()))
        );
    }

    #[test]
    fn naive_ignores_ranges_from_zero_suffixes_and_lists() {
        assert_eq!(
            row(Some("bytes=0-99")),
            (200, Some(1000), 0, 1000, Some("bytes 0-99/1000".into()))
        );
        assert_eq!(
            row(Some("bytes=0-0")),
            (200, Some(1000), 0, 1000, Some("bytes 0-999/1000".into()))
        );
        assert_eq!(
            row(Some("bytes=-100")),
            (200, Some(1000), 0, 1000, Some("bytes 0-100/1000".into()))
        );
        assert_eq!(
            row(Some("bytes=0-9,20-29")),
            (200, Some(1000), 0, 1000, Some("bytes 0-9/1000".into()))
        );
    }

    #[test]
    fn naive_honours_the_other_ranges() {
        assert_eq!(
            row(Some("bytes=0-1")),
            (206, Some(2), 0, 2, Some("bytes 0-1/1000".into()))
        );
        assert_eq!(
            row(Some("bytes=100-199")),
            (206, Some(100), 100, 100, Some("bytes 100-199/1000".into()))
        );
        assert_eq!(
            row(Some("bytes=100-")),
            (206, Some(900), 100, 900, Some("bytes 100-999/1000".into()))
        );
        assert_eq!(
            row(Some("bytes=999-999")),
            (206, Some(1), 999, 1, Some("bytes 999-999/1000".into()))
        );
    }

    #[test]
    fn naive_declares_past_eof_and_sends_less() {
        assert_eq!(
            row(Some("bytes=990-2000")),
            (206, Some(1011), 990, 10, Some("bytes 990-2000/1000".into()))
        );
        assert_eq!(
            row(Some("bytes=2000-")),
            (206, None, 1000, 0, Some("bytes 2000-999/1000".into()))
        );
    }

    #[test]
    fn correct_mode_follows_rfc_7233() {
        let p = plan(RangeMode::Correct, 1000, Some("bytes=0-99"));
        assert_eq!((p.status, p.start, p.send), (206, 0, 100));
        let p = plan(RangeMode::Correct, 1000, Some("bytes=-100"));
        assert_eq!((p.status, p.start, p.send), (206, 900, 100));
        let p = plan(RangeMode::Correct, 1000, Some("bytes=990-2000"));
        assert_eq!(
            (p.status, p.send, p.content_range),
            (206, 10, Some("bytes 990-999/1000".into()))
        );
        let p = plan(RangeMode::Correct, 1000, Some("bytes=2000-"));
        assert_eq!(p.status, 416);
        let p = plan(RangeMode::Correct, 1000, None);
        assert_eq!((p.status, p.content_range), (200, None));
    }
}
