//! Remote upload: the server fetches URLs into a folder of the account (`file/url_upload_add`),
//! and `file/url_upload_status` tells how each is doing until the file is there. The host may
//! lack both endpoints (zfils.com and zerolibrary.xyz do): the first call says so, and the
//! answer is remembered for the account ([`UrlUploadSupport`]) so that no later request is
//! sent to hear it again.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{joined, Account};
use crate::api::model::UrlUploadStatus;
use crate::api::FileEdit;
use crate::cache::lacks::UrlUploadSupport;
use crate::fs::namespace::names::{self, ItemKind};
use crate::remote::RemoteError;

/// The first wait between two rounds of `file/url_upload_status`, and again after a change.
const POLL_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between two rounds: a server's queue may hold an item for minutes.
const POLL_MOST: Duration = Duration::from_secs(2);
/// Status calls in a row that may fail before an item is given up (the client has retried
/// each already).
const STATUS_FAILURES: u32 = 5;

/// What `yetifs fetch` asks for: URLs for the server to fetch into one folder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FetchRequest {
    /// The folder, relative to the root of the mount or account, `/`-separated (`""`: the
    /// root).
    pub folder: String,
    /// The URLs, http or https.
    pub urls: Vec<String>,
    /// The name to store the one URL's file under: a rename once it has arrived.
    pub name: Option<String>,
    /// Whether to follow the uploads until each has ended; otherwise return once scheduled.
    pub wait: bool,
}

impl FetchRequest {
    /// Refuses what no server call could satisfy: no URL, a URL that is not http(s), a name
    /// for several URLs, a name the server would change.
    pub fn check(&self) -> Result<(), FetchError> {
        if self.urls.is_empty() {
            return Err(FetchError::Invalid("no URL to fetch".into()));
        }
        if let Some(url) = self.urls.iter().find(|url| !is_http(url)) {
            return Err(FetchError::Invalid(format!(
                "{url}: not an http or https URL (the server fetches only those)"
            )));
        }
        if let Some(name) = &self.name {
            if self.urls.len() != 1 {
                return Err(FetchError::Invalid(
                    "--name names the file of one URL; give one URL with it".into(),
                ));
            }
            names::storable(name).map_err(|why| {
                FetchError::Invalid(format!(
                    "--name {name:?}: the server cannot keep it ({why:?})"
                ))
            })?;
        }
        Ok(())
    }
}

/// Whether `url` is one the server can fetch.
fn is_http(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["http://", "https://"]
        .iter()
        .any(|scheme| lower.len() > scheme.len() && lower.starts_with(scheme))
}

/// Where one URL upload stands, as the server reports it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Scheduled, waiting for the server's background task (`pending`).
    Queued,
    /// Being fetched.
    Downloading,
    /// Fetched, being stored.
    Processing,
    /// In the account.
    Stored,
    /// The server gave up (`failed`, `cancelled`).
    Failed,
}

impl Stage {
    /// The stage a `file/url_upload_status` reply's `status` names.
    pub fn of_status(status: &str) -> Stage {
        match status.trim().to_ascii_lowercase().as_str() {
            "downloading" => Stage::Downloading,
            "processing" => Stage::Processing,
            "complete" | "completed" | "finished" => Stage::Stored,
            "failed" | "cancelled" | "canceled" | "error" => Stage::Failed,
            _ => Stage::Queued,
        }
    }

    /// The word progress lines show.
    pub fn word(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::Downloading => "downloading",
            Stage::Processing => "processing",
            Stage::Stored => "stored",
            Stage::Failed => "failed",
        }
    }
}

/// How one URL of a request is doing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FetchProgress {
    /// Which URL of the request.
    pub index: usize,
    /// Its stage.
    pub stage: Stage,
    /// Bytes fetched so far, when the server says.
    pub bytes: Option<u64>,
    /// Bytes to fetch, when the server knows.
    pub total: Option<u64>,
}

/// How one URL ended.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FetchOutcome {
    /// The file is in the folder.
    Stored {
        /// Its id.
        file_id: u64,
        /// Its name on the server.
        name: String,
        /// Its size, when the server says.
        size: Option<u64>,
        /// Where it shows, relative to the root of the mount or account.
        path: String,
    },
    /// Scheduled, not followed (`--no-wait`): the server fetches it in the background.
    Scheduled {
        /// The id `file/url_upload_status` knows it by.
        item: u64,
    },
    /// Not fetched, or not as asked.
    Failed {
        /// Why, in the server's words where it gave some.
        reason: String,
    },
}

/// One URL of a request and how it ended.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fetched {
    /// The URL.
    pub url: String,
    /// How it ended.
    pub outcome: FetchOutcome,
}

/// Why nothing of a request was fetched.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum FetchError {
    /// The host offers no remote upload; the server's answer (now or remembered).
    #[error("this host offers no remote upload (file/url_upload_add: {0})")]
    Unsupported(String),
    /// The destination is no folder of the account.
    #[error("{0}")]
    Folder(String),
    /// The request cannot be carried out as given.
    #[error("{0}")]
    Invalid(String),
}

/// Asks the server to fetch each URL of `request` into its folder of `account` and, when the
/// request waits, follows each until it is stored or has failed, telling `progress` how each
/// is doing on every round (the same state repeated while nothing changes, so that a display
/// can pace itself). A stored file is renamed as asked, then the folder is listed anew so that
/// it shows at once.
pub async fn run<A: Account>(
    account: &A,
    request: &FetchRequest,
    mut progress: impl FnMut(FetchProgress) + Send,
) -> Result<Vec<Fetched>, FetchError> {
    request.check()?;
    let support = account.url_upload();
    if let Some(answer) = support.lacking() {
        return Err(FetchError::Unsupported(answer));
    }
    let folder = account
        .folder(&request.folder)
        .await
        .map_err(FetchError::Folder)?;
    let client = account.client();
    let mut items: Vec<Item> = Vec::with_capacity(request.urls.len());
    for (index, url) in request.urls.iter().enumerate() {
        let state = match client.url_upload_add(url.trim(), folder).await {
            Ok(scheduled) => {
                progress(FetchProgress {
                    index,
                    stage: Stage::Queued,
                    bytes: None,
                    total: None,
                });
                State::Following {
                    item: scheduled.scheduled_item_id,
                    seen: Stage::Queued,
                    failures: 0,
                }
            }
            Err(RemoteError::Unsupported(answer)) => {
                remember_lacking(support, &answer);
                return Err(FetchError::Unsupported(answer));
            }
            Err(e) => State::Ended(FetchOutcome::Failed {
                reason: e.to_string(),
            }),
        };
        items.push(Item {
            url: url.clone(),
            state,
        });
    }
    if request.wait {
        follow(account, &mut items, &mut progress).await;
        if let Some(name) = &request.name {
            for item in &mut items {
                rename(account, item, name).await;
            }
        }
    } else {
        for item in &mut items {
            if let State::Following { item: id, .. } = item.state {
                item.state = State::Ended(FetchOutcome::Scheduled { item: id });
            }
        }
    }
    let fetched: Vec<Fetched> = items
        .into_iter()
        .map(|item| Fetched {
            url: item.url,
            outcome: match item.state {
                State::Ended(outcome) => outcome,
                // `follow` ends every item it is given.
                State::Following { item, .. } => FetchOutcome::Scheduled { item },
            },
        })
        .map(|mut fetched| {
            if let FetchOutcome::Stored {
                file_id,
                name,
                path,
                ..
            } = &mut fetched.outcome
            {
                *path = joined(
                    &request.folder,
                    &names::preferred(ItemKind::File, *file_id, name),
                );
            }
            fetched
        })
        .collect();
    let stored = fetched
        .iter()
        .any(|f| matches!(f.outcome, FetchOutcome::Stored { .. }));
    if stored {
        account.relist(&request.folder).await;
    }
    Ok(fetched)
}

/// One URL of a request being carried out.
struct Item {
    url: String,
    state: State,
}

/// Where a URL of a request is.
enum State {
    /// Scheduled as `item`, last seen at `seen`, after `failures` failed status calls in a row.
    Following {
        item: u64,
        seen: Stage,
        failures: u32,
    },
    /// Done with.
    Ended(FetchOutcome),
}

/// Remembers that the host lacks remote upload, saying so if the record cannot be kept.
fn remember_lacking(support: &UrlUploadSupport, answer: &str) {
    if let Err(e) = support.remember_lacking(answer) {
        log::warn!("cannot remember that this host lacks remote upload: {e}");
    }
}

/// Asks for the status of every item still followed, round after round, until each has ended.
async fn follow<A: Account>(
    account: &A,
    items: &mut [Item],
    progress: &mut (impl FnMut(FetchProgress) + Send),
) {
    let client = account.client();
    let mut wait = POLL_FIRST;
    loop {
        let mut following = false;
        let mut changed = false;
        for (index, entry) in items.iter_mut().enumerate() {
            let State::Following {
                item,
                seen,
                failures,
            } = &mut entry.state
            else {
                continue;
            };
            match client.url_upload_status(*item).await {
                Ok(status) => {
                    *failures = 0;
                    let now = observed(index, &status);
                    changed |= now.stage != *seen;
                    *seen = now.stage;
                    progress(now);
                    match ended(&status) {
                        Some(outcome) => entry.state = State::Ended(outcome),
                        None => following = true,
                    }
                }
                Err(e) if *failures + 1 >= STATUS_FAILURES => {
                    entry.state = State::Ended(FetchOutcome::Failed {
                        reason: format!(
                            "lost track of it ({e}); the server may still fetch it as scheduled \
                             item {item}"
                        ),
                    });
                }
                Err(e) => {
                    log::debug!("url_upload_status of item {item}: {e}");
                    *failures += 1;
                    following = true;
                }
            }
        }
        if !following {
            return;
        }
        wait = if changed {
            POLL_FIRST
        } else {
            (wait * 2).min(POLL_MOST)
        };
        tokio::time::sleep(wait).await;
    }
}

/// The progress a status reply shows for URL `index`.
fn observed(index: usize, status: &UrlUploadStatus) -> FetchProgress {
    let stage = match Stage::of_status(&status.status) {
        // A reply that says complete but names no file is not done yet.
        Stage::Stored if status.downloaded_file.is_none() => Stage::Processing,
        stage => stage,
    };
    let stored_size = status.downloaded_file.as_ref().and_then(|f| f.size);
    let total = status.total_size.filter(|&n| n > 0).or(stored_size);
    let bytes = match stage {
        Stage::Stored => total,
        Stage::Downloading | Stage::Processing => status.downloaded_size,
        Stage::Queued | Stage::Failed => None,
    };
    FetchProgress {
        index,
        stage,
        bytes,
        total,
    }
}

/// How an item ended, if the status reply says it did.
fn ended(status: &UrlUploadStatus) -> Option<FetchOutcome> {
    match Stage::of_status(&status.status) {
        Stage::Stored => status
            .downloaded_file
            .as_ref()
            .map(|file| FetchOutcome::Stored {
                file_id: file.file_id,
                name: file.name.clone(),
                size: file.size,
                path: String::new(),
            }),
        Stage::Failed => Some(FetchOutcome::Failed {
            reason: match status.error.as_deref().map(str::trim) {
                Some(reason) if !reason.is_empty() => reason.to_owned(),
                _ => format!(
                    "the server could not fetch it (status {:?}, no reason given)",
                    status.status
                ),
            },
        }),
        _ => None,
    }
}

/// Renames a stored item's file to `wanted`; a rename the server refuses ends the item as
/// failed, saying under which name the file is.
async fn rename<A: Account>(account: &A, item: &mut Item, wanted: &str) {
    let State::Ended(FetchOutcome::Stored { file_id, name, .. }) = &mut item.state else {
        return;
    };
    let Ok(server_name) = names::storable(wanted) else {
        // `FetchRequest::check` refused such a name before anything was sent.
        return;
    };
    if *name == server_name {
        return;
    }
    let edit = FileEdit {
        filename: Some(&server_name),
        ..FileEdit::default()
    };
    match account.client().file_edit(*file_id, &edit).await {
        Ok(info) => *name = info.file.filename,
        Err(e) => {
            let reason = format!("stored as {name:?} but not renamed to {wanted:?}: {e}");
            item.state = State::Ended(FetchOutcome::Failed { reason });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: &str) -> UrlUploadStatus {
        serde_json::from_str(json).unwrap()
    }

    fn request(urls: &[&str], name: Option<&str>) -> FetchRequest {
        FetchRequest {
            folder: String::new(),
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            name: name.map(str::to_owned),
            wait: true,
        }
    }

    #[test]
    fn the_server_statuses_map_to_stages() {
        assert_eq!(Stage::of_status("pending"), Stage::Queued);
        assert_eq!(Stage::of_status("Downloading"), Stage::Downloading);
        assert_eq!(Stage::of_status("processing"), Stage::Processing);
        assert_eq!(Stage::of_status("complete"), Stage::Stored);
        assert_eq!(Stage::of_status("failed"), Stage::Failed);
        assert_eq!(Stage::of_status("cancelled"), Stage::Failed);
        assert_eq!(Stage::of_status("something new"), Stage::Queued);
    }

    #[test]
    fn a_download_in_progress_shows_its_bytes_and_a_finished_one_its_file() {
        let going = status(
            r#"{"scheduled_item_id":5,"status":"downloading","total_size":"2000",
            "downloaded_size":500,"downloaded_file":[]}"#,
        );
        let now = observed(1, &going);
        assert_eq!(
            (now.index, now.stage, now.bytes, now.total),
            (1, Stage::Downloading, Some(500), Some(2000))
        );
        assert_eq!(ended(&going), None);
        let done = status(
            r#"{"scheduled_item_id":5,"status":"complete","total_size":2000,
            "downloaded_file":{"file_id":9,"name":"a.bin","size":2000,"url":"http://h/j"}}"#,
        );
        assert_eq!(observed(0, &done).bytes, Some(2000));
        assert!(matches!(
            ended(&done),
            Some(FetchOutcome::Stored { file_id: 9, ref name, .. }) if name == "a.bin"
        ));
    }

    #[test]
    fn a_complete_status_naming_no_file_is_not_the_end_yet() {
        let odd = status(r#"{"scheduled_item_id":5,"status":"complete","downloaded_file":[]}"#);
        assert_eq!(observed(0, &odd).stage, Stage::Processing);
        assert_eq!(ended(&odd), None);
    }

    #[test]
    fn a_failure_carries_the_servers_reason_or_says_there_was_none() {
        let told = status(
            r#"{"scheduled_item_id":5,"status":"failed","error":"Could not get remote file."}"#,
        );
        assert_eq!(
            ended(&told),
            Some(FetchOutcome::Failed {
                reason: "Could not get remote file.".into()
            })
        );
        let noted = status(r#"{"scheduled_item_id":5,"status":"failed","notes":"Too big."}"#);
        assert_eq!(
            ended(&noted),
            Some(FetchOutcome::Failed {
                reason: "Too big.".into()
            })
        );
        let silent = status(r#"{"scheduled_item_id":5,"status":"failed"}"#);
        let Some(FetchOutcome::Failed { reason }) = ended(&silent) else {
            panic!("not a failure");
        };
        assert!(reason.contains("no reason given"), "{reason}");
    }

    #[test]
    fn requests_no_server_could_satisfy_are_refused_before_anything_is_sent() {
        assert!(request(&["https://x/a"], Some("b.bin")).check().is_ok());
        assert!(request(&["http://x/a", "http://x/b"], None).check().is_ok());
        for bad in [
            request(&[], None),
            request(&["ftp://x/a"], None),
            request(&["http://"], None),
            request(&["http://x/a", "http://x/b"], Some("c")),
            request(&["http://x/a"], Some(" spaced ")),
        ] {
            assert!(
                matches!(bad.check(), Err(FetchError::Invalid(_))),
                "{bad:?}"
            );
        }
    }
}
