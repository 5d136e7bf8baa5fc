//! `file/url_upload_add` in the background: the URL is fetched with reqwest, streamed to a
//! blob and stored like an upload; the scheduled item moves pending → downloading → complete
//! or failed, which `file/url_upload_status` reports. Items are fetched one at a time in the
//! order they were scheduled, as the server's background task works through its queue: the
//! others wait as `pending`. While downloading, the item carries the bytes fetched so far and
//! the size the fetched server announced.
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::ingest::store_file;
use super::reply::now_string;
use super::state::AppState;

/// The file name a URL suggests: its last path segment without query, percent-decoded;
/// `file.txt` when there is none (as the server does).
pub fn name_from_url(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.rsplit('/').next().unwrap_or("");
    let last = last.split(';').next().unwrap_or("").trim();
    let decoded = percent_decode(last);
    if decoded.trim().is_empty() {
        "file.txt".into()
    } else {
        decoded
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The least time between two records of a fetch's progress: often enough for a progress
/// bar, seldom enough not to write the database for every chunk.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Queues scheduled item `id` for fetching on the current runtime.
pub fn spawn(
    st: Arc<AppState>,
    id: i64,
    account: i64,
    folder: Option<i64>,
    url: String,
    ip: String,
) {
    tokio::spawn(async move {
        // Tokio's mutex is fair: items get their turn in the order they were scheduled.
        let _turn = st.url_queue.lock().await;
        let outcome = fetch(&st, id, account, folder, &url, &ip).await;
        if let Err(reason) = &outcome {
            log::info!("url upload {id} of {url} failed: {reason}");
        }
        if let Err(e) = st.store.url_upload_finished(id, &now_string(), outcome) {
            log::error!("recording url upload {id}: {e}");
        }
    });
}

async fn fetch(
    st: &AppState,
    id: i64,
    account: i64,
    folder: Option<i64>,
    url: &str,
    ip: &str,
) -> Result<(i64, i64), String> {
    st.store
        .url_upload_started(id, &now_string())
        .map_err(|e| e.to_string())?;
    let resp = st
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("Could not get remote file. {url} ({e})"))?;
    if !resp.status().is_success() {
        return Err(format!(
            "Could not get remote file. {url} (HTTP {})",
            resp.status()
        ));
    }
    let name = name_from_url(url);
    let total = resp.content_length().and_then(|n| i64::try_from(n).ok());
    let record = |downloaded: u64| {
        let downloaded = i64::try_from(downloaded).unwrap_or(i64::MAX);
        st.store
            .url_upload_progress(id, downloaded, total)
            .map_err(|e| e.to_string())
    };
    record(0)?;
    let mut writer = st.blobs.writer().await.map_err(|e| e.to_string())?;
    let mut body = resp.bytes_stream();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let mut recorded = 0;
    loop {
        tokio::select! {
            chunk = body.next() => match chunk {
                None => break,
                Some(chunk) => {
                    let chunk =
                        chunk.map_err(|e| format!("Could not get remote file. {url} ({e})"))?;
                    writer.write(&chunk).await.map_err(|e| e.to_string())?;
                }
            },
            // On a clock rather than per chunk, so that a fetch that stalls shows how far it got.
            _ = tick.tick() => {
                if writer.size() != recorded {
                    recorded = writer.size();
                    record(recorded)?;
                }
            }
        }
    }
    if writer.size() == 0 {
        return Err("File received has zero size.".into());
    }
    let temp = writer.finish().await.map_err(|e| e.to_string())?;
    let stored = store_file(st, account, folder, &name, temp, ip)
        .await
        .map_err(|e| e.to_string())?;
    Ok((stored.file.id, stored.file.size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_decoded_last_path_segment() {
        assert_eq!(name_from_url("http://h/a/b%20c.txt?x=1"), "b c.txt");
        assert_eq!(name_from_url("http://h/"), "file.txt");
    }
}
