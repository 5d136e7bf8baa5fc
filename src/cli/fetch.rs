//! `yetifs fetch URL... DEST`: remote upload. The server fetches each URL into the folder
//! DEST itself, so the bytes never cross the user's own link; the command follows each with a
//! progress bar (plain lines when standard error is not a terminal) until the file is there,
//! and a mount then shows it at once. DEST is a folder inside a mount, which the command asks
//! over its control socket, or `NAME:path` of a remote of config.toml, whose account the
//! command logs into itself.
use std::path::PathBuf;

use anyhow::Context;

use crate::cli::place::{open_remote, Place};
use crate::cli::progress::Transfers;
use crate::control::hosted;
use crate::host::fetch::{self, FetchError, FetchOutcome, FetchProgress, FetchRequest, Stage};

/// Arguments of `yetifs fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// The URLs to fetch, http or https.
    #[arg(value_name = "URL", num_args = 1.., required = true)]
    pub urls: Vec<String>,
    /// The folder to fetch them into: a folder inside a mount, or NAME:path of a remote of
    /// config.toml (NAME: for its root).
    #[arg(value_name = "DEST", required = true)]
    pub dest: String,
    /// Store the file under this name (one URL only): it is renamed once it has arrived.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Return once the server has scheduled each fetch, without following it.
    #[arg(long)]
    pub no_wait: bool,
    /// The configuration file with named remotes, for NAME:path (default
    /// `~/.config/yetifs/config.toml`).
    #[arg(long, env = "YETIFS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The exit code when a URL could not be fetched.
pub const FAILED: i32 = 1;
/// The exit code when the host offers no remote upload.
pub const UNSUPPORTED: i32 = 2;

/// Runs `yetifs fetch`; returns the exit code: 0 when every URL is in the folder (or
/// scheduled, with `--no-wait`).
pub async fn run(args: FetchArgs) -> anyhow::Result<i32> {
    let (urls, dest) = (&args.urls, &args.dest);
    let place = Place::of(dest).with_context(|| dest.clone())?;
    let folder = match &place {
        Place::Mounted { path, .. } | Place::Remote { path, .. } => path.clone(),
    };
    let request = FetchRequest {
        folder,
        urls: urls.to_vec(),
        name: args.name.clone(),
        wait: !args.no_wait,
    };
    request.check()?;
    let labels: Vec<String> = urls.iter().map(|url| label_of(url)).collect();
    let mut shown = Transfers::new(&labels);
    // A URL's end is shown once, by `Transfers::finish` below.
    let show = |now: FetchProgress| {
        if !matches!(now.stage, Stage::Stored | Stage::Failed) {
            shown.update(now.index, now.stage.word(), now.bytes, now.total);
        }
    };
    let outcome = match &place {
        Place::Mounted { mountpoint, .. } => hosted::fetch(mountpoint, &request, show).await?,
        Place::Remote { remote, .. } => {
            let account = open_remote(remote, args.config.as_deref()).await?;
            fetch::run(&account, &request, show).await
        }
    };
    let fetched = match outcome {
        Ok(fetched) => fetched,
        Err(refused) => {
            shown.close();
            eprintln!("yetifs: {refused}");
            return Ok(match refused {
                FetchError::Unsupported(_) => UNSUPPORTED,
                FetchError::Folder(_) | FetchError::Invalid(_) => FAILED,
            });
        }
    };
    for (index, one) in fetched.iter().enumerate() {
        match &one.outcome {
            FetchOutcome::Stored { name, .. } => {
                shown.finish(index, &format!("stored as {name}"), true)
            }
            FetchOutcome::Scheduled { item } => {
                shown.finish(index, &format!("scheduled as item {item}"), false)
            }
            FetchOutcome::Failed { .. } => shown.finish(index, "failed", false),
        }
    }
    shown.close();
    let mut code = 0;
    for one in &fetched {
        match &one.outcome {
            FetchOutcome::Stored { path, .. } => println!("{}", place.show(path)),
            FetchOutcome::Scheduled { item } => println!(
                "{}: scheduled as item {item}; the server fetches it in the background",
                one.url
            ),
            FetchOutcome::Failed { reason } => {
                eprintln!("yetifs: {}: {reason}", one.url);
                code = FAILED;
            }
        }
    }
    Ok(code)
}

/// What progress lines call a URL: its last path segment, else its host.
fn label_of(url: &str) -> String {
    let bare = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = bare.split_once("://").map_or(bare, |(_, rest)| rest);
    let (host, path) = after_scheme.split_once('/').unwrap_or((after_scheme, ""));
    path.rsplit('/')
        .find(|segment| !segment.is_empty())
        .unwrap_or(host)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_called_by_its_last_path_segment_or_its_host() {
        assert_eq!(label_of("https://h.example/a/b.iso?x=1"), "b.iso");
        assert_eq!(label_of("http://h.example/a/"), "a");
        assert_eq!(label_of("http://h.example"), "h.example");
    }
}
