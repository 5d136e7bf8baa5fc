//! Build script: puts the commit the binary was built from into `yetifs --version`
//! (`yetifs 0.1.0 (abc1234 2026-12-01)`), so a bug report or a package names exactly what runs.
//!
//! It asks `git` and never fails the build: without git, outside a repository, or in a
//! repository that does not track this crate (a tarball unpacked inside another checkout, the
//! copy `cargo package` builds), the version is the crate's alone. Cargo reruns it when HEAD
//! moves: when the HEAD file changes (a checkout) or the branch it points to does (a commit).
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    println!("cargo:rerun-if-changed=build.rs");
    for path in head_files(&crate_dir) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let described = match commit(&crate_dir) {
        Some(commit) => format!("{version} ({commit})"),
        None => version,
    };
    println!("cargo:rustc-env=YETIFS_VERSION={described}");
}

/// `HASH DATE` of HEAD (abbreviated hash, commit date), if `dir` is in a git work tree that
/// tracks this crate's manifest.
fn commit(dir: &Path) -> Option<String> {
    git(dir, &["ls-files", "--error-unmatch", "Cargo.toml"])?;
    let line = git(
        dir,
        &["log", "-1", "--date=short", "--format=%h %cd", "HEAD"],
    )?;
    (!line.is_empty()).then_some(line)
}

/// The files whose change means HEAD moved: HEAD itself, the branch it names (its loose ref
/// file, or the folder such a file would be written to), and the packed and reftable stores.
/// Watched even when the repository does not track this crate yet, so the commit that adds it
/// is seen. None outside a repository.
fn head_files(dir: &Path) -> Vec<PathBuf> {
    let git_path = |name: &str| git(dir, &["rev-parse", "--git-path", name]).map(|p| dir.join(p));
    let mut files = vec![
        git_path("HEAD"),
        git_path("packed-refs"),
        git_path("reftable"),
    ];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        match git_path(&branch) {
            Some(loose) if loose.exists() => files.push(Some(loose)),
            Some(loose) => files.push(loose.parent().map(Path::to_path_buf)),
            None => {}
        }
    }
    files.into_iter().flatten().filter(|p| p.exists()).collect()
}

/// The trimmed standard output of `git ARGS` run in `dir`, if git ran and succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout)
        .ok()
        .map(|s| s.trim().to_owned())
}
