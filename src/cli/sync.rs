//! `yetifs sync MOUNTPOINT [PATH]`: waits until everything the mount has not uploaded yet —
//! under PATH, or all — is on the server, the way `sync(1)` waits for a disk. The mount starts
//! each of those uploads at once (a write-back delay does not apply) and reports each file it
//! could not upload; they stay pending and the mount keeps retrying them.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::cli::progress::Progress;
use crate::control::socket::{self, SyncProgress};

/// Arguments of `yetifs sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// The mountpoint of a running `yetifs mount`.
    pub mountpoint: PathBuf,
    /// Only what is inside this file or folder of the mount (absolute, or relative to the
    /// current directory).
    pub path: Option<PathBuf>,
}

/// The exit code when some files could not be uploaded.
pub const FAILED: i32 = 1;

/// Runs `yetifs sync`; returns the exit code: 0 when everything is on the server.
pub async fn run(args: SyncArgs) -> anyhow::Result<i32> {
    let under = match &args.path {
        Some(path) => Some(within_mount(&args.mountpoint, path)?),
        None => None,
    };
    let mut bar: Option<Progress> = None;
    let outcome = socket::sync(&args.mountpoint, under.as_deref(), |now: SyncProgress| {
        if now.total > 0 {
            bar.get_or_insert_with(|| Progress::new("uploading", now.total as u64))
                .set_done(now.done as u64);
        }
    })
    .await?;
    let ok = outcome.total - outcome.failed.len();
    if let Some(bar) = bar {
        bar.finish(&format!("{ok} of {} uploaded", outcome.total));
    }
    if outcome.failed.is_empty() {
        return Ok(0);
    }
    for failed in &outcome.failed {
        eprintln!("yetifs: {}: not uploaded: {}", failed.path, failed.reason);
    }
    eprintln!(
        "yetifs: {} of {} upload(s) failed; the mount keeps retrying them (see `yetifs status`)",
        outcome.failed.len(),
        outcome.total
    );
    Ok(FAILED)
}

/// `path` as a path relative to the root of the mount on `mountpoint` (`""`: the root).
fn within_mount(mountpoint: &Path, path: &Path) -> anyhow::Result<String> {
    let root = mountpoint
        .canonicalize()
        .with_context(|| format!("{}", mountpoint.display()))?;
    let full = path
        .canonicalize()
        .with_context(|| format!("{}", path.display()))?;
    let Ok(inside) = full.strip_prefix(&root) else {
        bail!(
            "{} is not inside the mount on {}",
            path.display(),
            root.display()
        );
    };
    inside
        .to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not valid UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_taken_relative_to_the_mount_and_one_outside_is_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        let inside = within_mount(root.path(), &root.path().join("a/./b")).unwrap();
        assert_eq!(inside, "a/b");
        assert_eq!(within_mount(root.path(), root.path()).unwrap(), "");
        let other = tempfile::tempdir().unwrap();
        let err = within_mount(root.path(), other.path()).unwrap_err();
        assert!(err.to_string().contains("is not inside the mount"), "{err}");
    }
}
