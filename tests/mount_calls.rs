//! What a real mount costs the server, counted from the emulator's access log: a cold `ls -lR`
//! lists each folder once and asks `file/info` once per file; a warm one (within `--dir-ttl`)
//! asks nothing; after a remount on the same cache directory within the TTL the listings and
//! the upload times come from the metadata store, so nothing is asked again.
mod common;

use common::mount::{count, make_tree, sh, Mount, Server, TreeSpec};
use yetifs::emulator::{Profile, RangeMode};

/// The requests made while `action` ran.
fn calls_during(server: &Server, action: impl FnOnce()) -> Vec<String> {
    let before = server.calls().len();
    action();
    server.calls().split_off(before)
}

#[test]
fn ls_lr_costs_one_listing_per_folder_and_one_info_per_file_once_per_ttl_across_mounts() {
    let server = Server::start(Profile::V5, RangeMode::Naive);
    let tree = make_tree(
        &server,
        TreeSpec {
            large: 0,
            trashed_folder: true,
        },
    );
    let cache = tempfile::tempdir().unwrap();
    let options = ["--dir-ttl", "300"];

    let mount = Mount::start_with_cache(&server, cache.path(), &options);
    let cold = calls_during(&server, || {
        sh(mount.path(), "ls -lR .");
    });
    assert_eq!(count(&cold, "folder/listing"), tree.folders, "{cold:?}");
    assert_eq!(count(&cold, "file/info"), tree.files, "{cold:?}");
    assert_eq!(
        cold.len(),
        tree.folders + tree.files,
        "other calls: {cold:?}"
    );

    let warm = calls_during(&server, || {
        sh(mount.path(), "ls -lR .");
    });
    assert!(warm.is_empty(), "a warm ls -lR asked {warm:?}");
    assert!(mount.unmount().success());

    let mount = Mount::start_with_cache(&server, cache.path(), &options);
    let remounted = calls_during(&server, || {
        sh(mount.path(), "ls -lR .");
    });
    assert_eq!(
        count(&remounted, "folder/listing"),
        0,
        "listings were not kept: {remounted:?}"
    );
    assert_eq!(
        count(&remounted, "file/info"),
        0,
        "upload times were not kept: {remounted:?}"
    );
    assert!(mount.unmount().success());
}

#[test]
fn listings_are_fetched_again_once_the_dir_ttl_has_passed() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let tree = make_tree(
        &server,
        TreeSpec {
            large: 0,
            trashed_folder: false,
        },
    );
    let mount = Mount::start(&server, &["--dir-ttl", "1"]);
    sh(mount.path(), "ls -lR .");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let later = calls_during(&server, || {
        sh(mount.path(), "ls -lR .");
    });
    assert_eq!(count(&later, "folder/listing"), tree.folders, "{later:?}");
    assert_eq!(count(&later, "file/info"), 0, "{later:?}");
    assert!(mount.unmount().success());
}
