//! A generated account read back through a real mount (`yetifs mount` over the emulator) with
//! `std::fs`, `cp -r` + `diff -r`, `find` and `sha256sum`: every byte and every name as the
//! mount must show them, on both server generations and both range behaviours.
mod common;

use common::mount::{assert_same_tree, make_tree, sh, Mount, Server, TreeSpec};
use yetifs::emulator::{Profile, RangeMode};

/// Larger than 100 MiB and not a multiple of the block size.
const LARGE: usize = (101 << 20) + 12_345;

/// `find -printf '%y %s %P'` lines with the sizes of directories left out: those differ
/// between filesystems, while types, file sizes and names must not.
fn without_dir_sizes(find_output: &str) -> Vec<String> {
    find_output
        .lines()
        .map(|line| match line.strip_prefix("d ") {
            Some(rest) => format!("d {}", rest.split_once(' ').map_or("", |(_, p)| p)),
            None => line.to_owned(),
        })
        .collect()
}

/// Uploads the tree, mounts it, and checks it with every tool.
fn tree_reads_back(profile: Profile, ranges: RangeMode) {
    let server = Server::start(profile, ranges);
    let tree = make_tree(
        &server,
        TreeSpec {
            large: LARGE,
            trashed_folder: profile == Profile::V5,
        },
    );
    let mount = Mount::start(&server, &[]);
    let expected = tree.expected.path();

    assert_same_tree(expected, mount.path());

    let copy = tempfile::tempdir().unwrap();
    let target = copy.path().join("copy");
    sh(
        copy.path(),
        &format!("cp -r '{}' copy", mount.path().display()),
    );
    sh(
        copy.path(),
        &format!("diff -r '{}' '{}'", expected.display(), target.display()),
    );

    let listing = "find . -printf '%y %s %P\\n' | LC_ALL=C sort";
    let shown = without_dir_sizes(&sh(mount.path(), listing));
    let wanted = without_dir_sizes(&sh(expected, listing));
    assert_eq!(shown, wanted, "find shows other names, types or sizes");
    assert_eq!(
        shown.iter().filter(|l| l.starts_with("f ")).count(),
        tree.files
    );
    assert_eq!(
        shown.iter().filter(|l| l.starts_with("d ")).count(),
        tree.folders
    );

    let sums = "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum";
    assert_eq!(sh(mount.path(), sums), sh(expected, sums));

    let status = mount.unmount();
    assert!(status.success(), "yetifs mount exited with {status}");
}

#[test]
fn v4_server_with_naive_ranges_reads_back_byte_identical() {
    tree_reads_back(Profile::V4, RangeMode::Naive);
}

#[test]
fn v4_server_with_correct_ranges_reads_back_byte_identical() {
    tree_reads_back(Profile::V4, RangeMode::Correct);
}

#[test]
fn v5_server_with_naive_ranges_reads_back_byte_identical() {
    tree_reads_back(Profile::V5, RangeMode::Naive);
}

#[test]
fn v5_server_with_correct_ranges_reads_back_byte_identical() {
    tree_reads_back(Profile::V5, RangeMode::Correct);
}
