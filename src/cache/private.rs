//! The cache directory holds an account's content, listings and files being written: no other
//! local user may read it. Everything a mount creates is made private (directories `0700`,
//! files `0600`) by the process's file mode mask, whatever the user's own; a cache made by an
//! earlier version, or copied in with looser modes, is tightened when it is mounted.
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What a directory of the cache gets.
pub const DIR_MODE: u32 = 0o700;
/// What a file of the cache gets.
pub const FILE_MODE: u32 = 0o600;

/// Makes every file and directory this process creates from now on private to its owner.
pub fn private_umask() {
    // SAFETY: umask only sets the process's file mode creation mask and cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Takes group and other permissions off the cache directory `cache_dir` and off what yetifs
/// keeps in it: the account directories and the records of known accounts, whole, and the
/// log. Nothing else in it is touched, in case it was pointed at a directory that holds more.
/// Returns how many entries had to change.
pub fn tighten_cache(cache_dir: &Path, accounts: &[&str], files: &[&str]) -> io::Result<usize> {
    let mut changed = tighten(cache_dir, Depth::Itself)?;
    for name in accounts {
        changed += tighten(&cache_dir.join(name), Depth::Whole)?;
    }
    for name in files {
        changed += tighten(&cache_dir.join(name), Depth::Itself)?;
    }
    Ok(changed)
}

/// How much of a directory [`tighten`] takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// The path alone.
    Itself,
    /// The path and everything under it.
    Whole,
}

/// Takes group and other permissions off `root` (and, with `Depth::Whole`, everything under
/// it; symbolic links are not followed); returns how many entries had to change.
fn tighten(root: &Path, depth: Depth) -> io::Result<usize> {
    let mut changed = 0;
    let mut todo = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let wanted = if meta.is_dir() {
            if depth == Depth::Whole {
                for entry in std::fs::read_dir(&path)? {
                    todo.push(entry?.path());
                }
            }
            DIR_MODE
        } else if meta.is_file() {
            FILE_MODE
        } else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & wanted))?;
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_loose_tree_is_made_private_and_a_private_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/block"), "x").unwrap();
        std::fs::write(root.join("meta.sqlite"), "x").unwrap();
        for (path, m) in [
            (root.clone(), 0o755),
            (root.join("a"), 0o775),
            (root.join("a/b"), 0o777),
            (root.join("a/b/block"), 0o666),
            (root.join("meta.sqlite"), 0o640),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        }
        assert_eq!(tighten(&root, Depth::Whole).unwrap(), 5);
        assert_eq!(
            [
                mode(&root),
                mode(&root.join("a/b")),
                mode(&root.join("a/b/block")),
                mode(&root.join("meta.sqlite")),
            ],
            [0o700, 0o700, 0o600, 0o600]
        );
        assert_eq!(tighten(&root, Depth::Whole).unwrap(), 0);
    }

    #[test]
    fn a_missing_cache_is_nothing_to_tighten() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            tighten(&dir.path().join("not-yet"), Depth::Whole).unwrap(),
            0
        );
        let missing = dir.path().join("not-yet");
        assert_eq!(tighten_cache(&missing, &["a"], &["log"]).unwrap(), 0);
    }

    #[test]
    fn only_what_yetifs_keeps_in_the_cache_directory_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path();
        std::fs::create_dir_all(cache.join("host-1/blocks")).unwrap();
        std::fs::write(cache.join("host-1/blocks/b"), "x").unwrap();
        std::fs::write(cache.join("yetifs.log"), "x").unwrap();
        std::fs::write(cache.join("someone-elses.txt"), "x").unwrap();
        for path in [
            cache.to_path_buf(),
            cache.join("host-1/blocks/b"),
            cache.join("yetifs.log"),
            cache.join("someone-elses.txt"),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        tighten_cache(cache, &["host-1"], &["yetifs.log"]).unwrap();
        assert_eq!(mode(cache), 0o700);
        assert_eq!(mode(&cache.join("host-1/blocks/b")), 0o600);
        assert_eq!(mode(&cache.join("yetifs.log")), 0o600);
        assert_eq!(mode(&cache.join("someone-elses.txt")), 0o755);
    }
}
