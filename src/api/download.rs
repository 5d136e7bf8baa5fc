//! Downloads: the per-file download URL (reused while valid) and a byte stream for any range
//! that copes with the broken range handling of stock servers. A server may ignore the range
//! (200 with the whole file), honour it, send more than asked, cut the body short or drop the
//! connection; the stream checks status, `Content-Range` and `Content-Length` before trusting a
//! byte, skips what precedes the range, stops at its end, resumes after a short body, and
//! yields exactly the bytes asked for or an error.
use std::num::NonZeroUsize;
use std::ops::Range;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use lru::LruCache;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, LOCATION, RANGE, RETRY_AFTER};
use reqwest::Url;

use super::client::{header, transport, Client};
use super::metrics::DOWNLOAD;
use super::model::DownloadLink;
use super::redact::redact;
use super::retry::{parse_retry_after, RetryPolicy};
use crate::remote::error::{RemoteError, Result};
use crate::remote::ByteStream;
use crate::sync::Mutex;

/// Download URLs by file id, each kept for a while: they stay valid for 24 hours, across token
/// changes, so one `file/download` serves many reads.
pub(crate) struct LinkCache {
    /// Most recently used links, with the time they were obtained.
    entries: Mutex<LruCache<u64, (Url, Instant)>>,
    /// How long a link is reused.
    ttl: Duration,
}

impl LinkCache {
    /// A cache of at most `capacity` links, each reused for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        LinkCache {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
            ttl,
        }
    }

    /// The link of file `id`, if one is known and still fresh.
    pub fn get(&self, id: u64) -> Option<Url> {
        let mut entries = self.entries.lock();
        match entries.get(&id) {
            Some((url, since)) if since.elapsed() < self.ttl => Some(url.clone()),
            Some(_) => {
                entries.pop(&id);
                None
            }
            None => None,
        }
    }

    /// Remembers the link of file `id`.
    pub fn put(&self, id: u64, url: Url) {
        let mut entries = self.entries.lock();
        entries.put(id, (url, Instant::now()));
    }

    /// Forgets the link of file `id` (the server refused it).
    pub fn forget(&self, id: u64) {
        let mut entries = self.entries.lock();
        entries.pop(&id);
    }
}

/// The URL to fetch a download link from. Servers build it as
/// `{fileserver}/{shortUrl}/{name}?download_token=...`; a name holding `?` or `#` breaks it, and
/// then `{fileserver}/{shortUrl}?download_token=...` is used, which always works.
pub(crate) fn fetch_url(link: &DownloadLink) -> Result<Url> {
    let raw = link.download_url.expose().trim();
    let unusable = || RemoteError::Unparseable(format!("download URL: {}", redact(raw)));
    let token_at = raw.rfind("download_token=").ok_or_else(unusable)?;
    let before = raw[..token_at]
        .strip_suffix(['?', '&'])
        .unwrap_or(&raw[..token_at]);
    let fixed = match before.find(['?', '#']) {
        None => raw.to_owned(),
        Some(first_special) => {
            let name_slashes = link
                .filename
                .split(['?', '#'])
                .next()
                .map_or(0, |head| head.matches('/').count());
            let mut head = &before[..first_special];
            for _ in 0..=name_slashes {
                head = &head[..head.rfind('/').ok_or_else(unusable)?];
            }
            format!("{head}?{}", &raw[token_at..])
        }
    };
    let url = Url::parse(&fixed).map_err(|_| unusable())?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(unusable()),
    }
}

/// The `Range` header for bytes `start..end` of a file of `size` bytes. Stock servers answer
/// `bytes=0-...` ranges with the whole file, so offset 0 asks for nothing; an open end is used
/// when the range reaches the end of the file, and nothing past the end is ever asked.
pub(crate) fn range_header(start: u64, end: u64, size: u64) -> Option<String> {
    match start {
        0 => None,
        _ if end >= size => Some(format!("bytes={start}-")),
        _ => Some(format!("bytes={start}-{}", end - 1)),
    }
}

/// What a download reply's head says about its body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The body holds the asked bytes after `skip` leading bytes; `length` is its announced
    /// length.
    Body {
        /// Bytes before the asked start.
        skip: u64,
        /// `Content-Length`, if sent.
        length: Option<u64>,
    },
    /// The server redirected, which it does when the download token is not (or no longer)
    /// valid.
    Redirect,
}

/// The head of a download reply, as far as deciding what to trust goes.
#[derive(Debug, Default)]
pub(crate) struct ReplyHead<'a> {
    /// HTTP status.
    pub status: u16,
    /// `Content-Range`.
    pub content_range: Option<&'a str>,
    /// `Content-Length`.
    pub content_length: Option<u64>,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

/// Decides whether a reply to a download from byte `start` of a `size`-byte file can be
/// trusted, and where in its body the asked bytes begin.
pub(crate) fn check_reply(head: &ReplyHead<'_>, start: u64, size: u64) -> Result<Verdict> {
    match head.status {
        200 => match head.content_length {
            Some(length) if length != size => Err(RemoteError::Integrity(format!(
                "the server sent {length} bytes for a file of {size}"
            ))),
            length => Ok(Verdict::Body {
                skip: start,
                length,
            }),
        },
        206 => {
            let range = head
                .content_range
                .and_then(parse_content_range)
                .ok_or_else(|| {
                    RemoteError::Integrity(format!(
                        "partial reply without a usable Content-Range ({:?})",
                        head.content_range
                    ))
                })?;
            if range.total.is_some_and(|total| total != size) {
                return Err(RemoteError::Integrity(format!(
                    "Content-Range {:?} does not describe a file of {size} bytes",
                    head.content_range.unwrap_or_default()
                )));
            }
            if range.first > start || range.last < start || head.content_length == Some(0) {
                return Err(RemoteError::Integrity(format!(
                    "asked for bytes from {start}, got Content-Range {:?}",
                    head.content_range.unwrap_or_default()
                )));
            }
            Ok(Verdict::Body {
                skip: start - range.first,
                length: head.content_length,
            })
        }
        300..=399 => Ok(Verdict::Redirect),
        404 | 410 => Err(RemoteError::NotFound(format!(
            "the download URL answered HTTP {}",
            head.status
        ))),
        416 => Err(RemoteError::Integrity(format!(
            "the server has fewer than {start} bytes of a file of {size}"
        ))),
        status => Err(RemoteError::Http {
            status,
            detail: "download refused".to_owned(),
            retry_after: head.retry_after,
        }),
    }
}

/// A parsed `Content-Range: bytes first-last/total`.
#[derive(Debug, PartialEq, Eq)]
struct ContentRange {
    /// First byte of the body.
    first: u64,
    /// Last byte the server claims (may lie past the end of the file).
    last: u64,
    /// The file size, unless `*`.
    total: Option<u64>,
}

/// Reads `bytes first-last/total` (total may be `*`).
fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.trim().split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    Some(ContentRange {
        first: first.trim().parse().ok()?,
        last: last.trim().parse().ok()?,
        total,
    })
}

/// The body of the reply being read.
struct OpenBody {
    /// Its chunks.
    chunks: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    /// Leading bytes still to drop.
    skip: u64,
    /// Bytes the body still has by its `Content-Length`.
    remaining: Option<u64>,
}

/// One ranged read in progress.
struct Reader {
    /// The client (pool, session, link cache).
    client: Client,
    /// The file.
    id: u64,
    /// Its size.
    size: u64,
    /// The next byte to deliver.
    pos: u64,
    /// One past the last byte to deliver.
    end: u64,
    /// The reply being read, if any.
    body: Option<OpenBody>,
    /// Whether a fresh link was already fetched after a redirect.
    relinked: bool,
    /// Failures since the last byte delivered.
    failures: u32,
    /// How often and how patiently to resume.
    policy: RetryPolicy,
}

impl Client {
    /// A URL to fetch file `id` from, reusing a recent one.
    pub async fn download_url(&self, id: u64) -> Result<Url> {
        if let Some(url) = self.inner.links.get(id) {
            return Ok(url);
        }
        let url = fetch_url(&self.file_download(id).await?)?;
        self.inner.links.put(id, url.clone());
        Ok(url)
    }

    /// Bytes `range` of file `id`, whose size is `size`, as a stream that yields exactly those
    /// bytes or an error. Errors of the first request (unknown file, refused login) come from
    /// this call; later trouble (dropped connections, short bodies) is resumed from the last
    /// byte delivered, a bounded number of times, before the stream yields an error.
    pub async fn download(&self, id: u64, size: u64, range: Range<u64>) -> Result<ByteStream> {
        if range.start > range.end || range.end > size {
            return Err(RemoteError::InvalidInput(format!(
                "bytes {}..{} are not within a file of {size} bytes",
                range.start, range.end
            )));
        }
        let config = &self.inner.config;
        let mut reader = Reader {
            client: self.clone(),
            id,
            size,
            pos: range.start,
            end: range.end,
            body: None,
            relinked: false,
            failures: 0,
            policy: RetryPolicy {
                max_attempts: config.download_resumes.saturating_add(1),
                ..config.retry.clone()
            },
        };
        if reader.pos < reader.end {
            reader.open().await?;
        }
        let stream = futures_util::stream::try_unfold(reader, |mut reader| async move {
            Ok(reader.next_chunk().await?.map(|chunk| (chunk, reader)))
        });
        Ok(Box::pin(stream))
    }
}

impl Reader {
    /// Sends the request for the bytes from `pos`, until a reply can be trusted, an error is
    /// permanent, or the resumes are spent.
    async fn open(&mut self) -> Result<()> {
        loop {
            let at = Position {
                id: self.id,
                pos: self.pos,
                end: self.end,
                size: self.size,
            };
            // The link comes from an API call that has already retried on its own; retrying
            // it again here would multiply the attempts (and the wait) against a server that
            // is down, so its failure ends this open.
            let url = self.client.download_url(self.id).await?;
            let error = match request(&self.client, url, at).await {
                Ok(Some(body)) => {
                    self.body = Some(body);
                    return Ok(());
                }
                Ok(None) => {
                    self.client.inner.links.forget(self.id);
                    if self.relinked {
                        return Err(RemoteError::Http {
                            status: 302,
                            detail: "the server refused a fresh download link".to_owned(),
                            retry_after: None,
                        });
                    }
                    self.relinked = true;
                    continue;
                }
                Err(error) if error.is_transient() => error,
                Err(error) => return Err(error),
            };
            self.back_off(error).await?;
        }
    }

    /// The next bytes of the range, `None` once it is delivered in full.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        let idle = self.client.inner.config.timeouts.read_idle;
        loop {
            if self.pos >= self.end {
                self.finish();
                return Ok(None);
            }
            if self.body.is_none() {
                self.open().await?;
            }
            let Some(body) = self.body.as_mut() else {
                continue;
            };
            let error = match tokio::time::timeout(idle, body.chunks.next()).await {
                Ok(Some(Ok(mut chunk))) => {
                    let got = chunk.len() as u64;
                    body.remaining = body.remaining.map(|r| r.saturating_sub(got));
                    let dropped = body.skip.min(got);
                    body.skip -= dropped;
                    let wanted = (got - dropped).min(self.end - self.pos);
                    chunk = chunk.slice(dropped as usize..(dropped + wanted) as usize);
                    if chunk.is_empty() {
                        continue;
                    }
                    self.pos += wanted;
                    self.failures = 0;
                    return Ok(Some(chunk));
                }
                Ok(Some(Err(e))) => transport(&e),
                Ok(None) => RemoteError::Integrity(format!(
                    "the body ended at byte {} of {}",
                    self.pos, self.end
                )),
                Err(_) => RemoteError::Transport(format!("no data for {idle:?}")),
            };
            self.body = None;
            self.back_off(error).await?;
        }
    }

    /// Waits before resuming after `error`, or returns it when the resumes are spent.
    async fn back_off(&mut self, error: RemoteError) -> Result<()> {
        let retry_after = match error {
            RemoteError::Http { retry_after, .. } => retry_after,
            _ => None,
        };
        let Some(wait) = self
            .policy
            .delay(self.failures, retry_after, rand::random::<f64>())
        else {
            return Err(error);
        };
        log::debug!(
            "download of file {} resumes at byte {} in {wait:?} after: {error}",
            self.id,
            self.pos
        );
        self.failures += 1;
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Lets go of the reply. One read to its announced end is polled to completion so that its
    /// connection returns to the pool; any other is dropped unread, which closes its connection
    /// (reusing it could read the rest of this body as the next reply).
    fn finish(&mut self) {
        if let Some(mut body) = self.body.take() {
            if body.remaining == Some(0) {
                let _ = body.chunks.next().now_or_never();
            }
        }
    }
}

/// Where a read stands: what [`request`] needs, apart from the reply being read.
#[derive(Clone, Copy, Debug)]
struct Position {
    /// The file.
    id: u64,
    /// The next byte to deliver.
    pos: u64,
    /// One past the last byte to deliver.
    end: u64,
    /// The file's size.
    size: u64,
}

/// One request to `url` (the file's download link) for the bytes from `at.pos`; `None` when the
/// server redirected.
async fn request(client: &Client, url: Url, at: Position) -> Result<Option<OpenBody>> {
    let inner = &client.inner;
    let mut request = inner.http.get(url);
    if let Some(range) = range_header(at.pos, at.end, at.size) {
        request = request.header(RANGE, range);
    }
    let response = tokio::time::timeout(inner.config.timeouts.request, request.send())
        .await
        .map_err(|_| RemoteError::Transport("timed out waiting for the download to start".into()))
        .and_then(|sent| sent.map_err(|e| transport(&e)));
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            inner.metrics.record(DOWNLOAD, Err(&e));
            return Err(e);
        }
    };
    let headers = response.headers();
    let head = ReplyHead {
        status: response.status().as_u16(),
        content_range: header(headers, CONTENT_RANGE),
        content_length: header(headers, CONTENT_LENGTH).and_then(|v| v.trim().parse().ok()),
        retry_after: header(headers, RETRY_AFTER)
            .and_then(|v| parse_retry_after(v, SystemTime::now())),
    };
    let verdict = check_reply(&head, at.pos, at.size);
    inner.metrics.record(DOWNLOAD, verdict.as_ref().map(drop));
    match verdict? {
        Verdict::Redirect => {
            log::info!(
                "download of file {} redirected to {}",
                at.id,
                redact(header(headers, LOCATION).unwrap_or("nowhere"))
            );
            Ok(None)
        }
        Verdict::Body { skip, length } => Ok(Some(OpenBody {
            chunks: Box::pin(response.bytes_stream()),
            skip,
            remaining: length,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fixtures::{body, header, status};
    use crate::api::model::DownloadLink;
    use crate::api::redact::Secret;

    fn link(filename: &str, url: &str) -> DownloadLink {
        DownloadLink {
            file_id: Some(1),
            filename: filename.to_owned(),
            download_url: Secret::new(url),
        }
    }

    #[test]
    fn a_plain_download_url_is_used_as_given() {
        let reply: serde_json::Value =
            serde_json::from_str(&body("160_file_download_get_url.txt")).unwrap();
        let link: DownloadLink = serde_json::from_value(reply["data"].clone()).unwrap();
        let url = fetch_url(&link).unwrap();
        assert_eq!(url.path(), "/h/thousand.bin");
        assert!(url.query().unwrap().starts_with("download_token="));
    }

    #[test]
    fn a_name_with_a_question_mark_falls_back_to_the_short_url() {
        let reply: serde_json::Value =
            serde_json::from_str(&body("197_file_download_weird.txt")).unwrap();
        let link: DownloadLink = serde_json::from_value(reply["data"].clone()).unwrap();
        let url = fetch_url(&link).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8088/g?download_token=%3CKEY-OR-TOKEN-64%3E"
        );
    }

    #[test]
    fn slashes_and_hashes_in_a_name_do_not_confuse_the_fallback() {
        let l = link(
            "a/b?c.txt",
            "https://files.example/sub/xY/a/b?c.txt?download_token=ff",
        );
        assert_eq!(
            fetch_url(&l).unwrap().as_str(),
            "https://files.example/sub/xY?download_token=ff"
        );
        let l = link("x#1.txt", "https://f.example/Q1/x#1.txt?download_token=ee");
        assert_eq!(
            fetch_url(&l).unwrap().as_str(),
            "https://f.example/Q1?download_token=ee"
        );
    }

    #[test]
    fn a_download_url_without_token_or_host_is_refused_without_showing_it() {
        assert!(matches!(
            fetch_url(&link("a", "https://h/x/a")),
            Err(RemoteError::Unparseable(_))
        ));
        let e = fetch_url(&link("a", "nonsense?download_token=SECRET")).unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }

    #[test]
    fn range_headers_never_start_at_zero_nor_reach_past_the_end() {
        assert_eq!(range_header(0, 100, 1000), None);
        assert_eq!(range_header(0, 1000, 1000), None);
        assert_eq!(
            range_header(100, 200, 1000).as_deref(),
            Some("bytes=100-199")
        );
        assert_eq!(range_header(100, 1000, 1000).as_deref(), Some("bytes=100-"));
        assert_eq!(range_header(999, 1000, 1000).as_deref(), Some("bytes=999-"));
    }

    /// The verdict on the reply recorded in a transcript, for a read from `start`.
    fn verdict(name: &str, start: u64, size: u64) -> Result<Verdict> {
        let content_range = header(name, "Content-Range");
        let head = ReplyHead {
            status: status(name),
            content_range: content_range.as_deref(),
            content_length: header(name, "Content-Length").map(|v| v.parse().unwrap()),
            retry_after: None,
        };
        check_reply(&head, start, size)
    }

    #[test]
    fn real_server_replies_to_ranges_are_judged_correctly() {
        // No Range: 200 with the whole file.
        assert_eq!(
            verdict("161_dl_rand1000_norange.txt", 0, 1000).unwrap(),
            Verdict::Body {
                skip: 0,
                length: Some(1000)
            }
        );
        // bytes=0-99 ignored: a 200 with the whole file (and a misleading Content-Range); a
        // reader that wanted byte 100 onward skips 100 bytes.
        assert_eq!(
            verdict("163_dl_rand1000_range_0-99.txt", 100, 1000).unwrap(),
            Verdict::Body {
                skip: 100,
                length: Some(1000)
            }
        );
        // Honoured ranges.
        assert_eq!(
            verdict("164_dl_rand1000_range_100-199.txt", 100, 1000).unwrap(),
            Verdict::Body {
                skip: 0,
                length: Some(100)
            }
        );
        assert_eq!(
            verdict("165_dl_rand1000_range_100-.txt", 100, 1000).unwrap(),
            Verdict::Body {
                skip: 0,
                length: Some(900)
            }
        );
        // A Content-Length past the end: trusted for the start only; the reader stops at EOF.
        assert_eq!(
            verdict("169_dl_rand1000_range_990-2000.txt", 990, 1000).unwrap(),
            Verdict::Body {
                skip: 0,
                length: Some(1011)
            }
        );
        // Asking past the end gives a nonsense range: refused.
        assert!(matches!(
            verdict("170_dl_rand1000_range_2000-.txt", 2000, 1000),
            Err(RemoteError::Integrity(_))
        ));
        // A bad token: a redirect to an error page.
        assert_eq!(
            verdict("191_dl_bad_token.txt", 0, 1000).unwrap(),
            Verdict::Redirect
        );
    }

    #[test]
    fn replies_that_do_not_match_the_request_are_refused() {
        let head = |status, content_range, content_length| ReplyHead {
            status,
            content_range,
            content_length,
            retry_after: None,
        };
        let integrity = |r: Result<Verdict>| matches!(r, Err(RemoteError::Integrity(_)));
        // A 200 of another length is not this file (an error page, another file).
        assert!(integrity(check_reply(&head(200, None, Some(512)), 0, 1000)));
        // A 206 without Content-Range, or of another file size, or starting after the start.
        assert!(integrity(check_reply(
            &head(206, None, Some(100)),
            100,
            1000
        )));
        assert!(integrity(check_reply(
            &head(206, Some("bytes 100-199/999"), None),
            100,
            1000
        )));
        assert!(integrity(check_reply(
            &head(206, Some("bytes 150-199/1000"), None),
            100,
            1000
        )));
        assert!(integrity(check_reply(
            &head(206, Some("bytes 100-199/1000"), Some(0)),
            100,
            1000
        )));
        assert!(integrity(check_reply(&head(416, None, None), 100, 1000)));
        // A 206 starting earlier than asked: skip the difference.
        assert_eq!(
            check_reply(&head(206, Some("bytes 50-999/*"), None), 100, 1000).unwrap(),
            Verdict::Body {
                skip: 50,
                length: None
            }
        );
        // A chunked 200 cannot be checked up front, only counted.
        assert_eq!(
            check_reply(&head(200, None, None), 10, 1000).unwrap(),
            Verdict::Body {
                skip: 10,
                length: None
            }
        );
    }

    #[test]
    fn error_statuses_of_a_download_keep_their_meaning() {
        let head = ReplyHead {
            status: 503,
            retry_after: Some(4),
            ..ReplyHead::default()
        };
        let e = check_reply(&head, 0, 10).unwrap_err();
        assert!(matches!(
            e,
            RemoteError::Http {
                status: 503,
                retry_after: Some(4),
                ..
            }
        ));
        assert!(e.is_transient());
        let gone = ReplyHead {
            status: 404,
            ..ReplyHead::default()
        };
        assert!(matches!(
            check_reply(&gone, 0, 10),
            Err(RemoteError::NotFound(_))
        ));
    }

    #[test]
    fn content_range_parsing_accepts_spacing_and_unknown_totals() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some(ContentRange {
                first: 0,
                last: 99,
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range(" bytes  5-9/* "),
            Some(ContentRange {
                first: 5,
                last: 9,
                total: None
            })
        );
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn stale_links_are_not_reused_and_forgotten_links_are_gone() {
        let url = Url::parse("http://h/a?download_token=x").unwrap();
        let cache = LinkCache::new(2, Duration::from_secs(60));
        cache.put(1, url.clone());
        assert_eq!(cache.get(1), Some(url.clone()));
        cache.forget(1);
        assert_eq!(cache.get(1), None);
        let expired = LinkCache::new(2, Duration::ZERO);
        expired.put(1, url);
        assert_eq!(expired.get(1), None);
    }
}
