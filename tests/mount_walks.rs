//! Walking a tree other clients uploaded (no yetifs metadata: each file's date costs a
//! `file/info` of its own), over real mounts: what costs listings only, what fetches dates and
//! how, a busy server's 429s, and `--prefetch-tree`. Counted in the emulator's access log,
//! never timed.
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use common::mount::{count, mount_command, sh, Mount, Server};
use yetifs::control::StatusReport;
use yetifs::emulator::ServeArgs;
use yetifs::fs::TreeState;
use yetifs::remote::Remote;

/// How long a background walk may take in these tests.
const DEADLINE: Duration = Duration::from_secs(60);

/// A foreign tree: `folders` folders under `top/`, each with `per_folder` small files, and two
/// files at the root. Returns every path the mount must show and each file's upload date.
fn foreign_tree(server: &Server, folders: usize, per_folder: usize) -> Vec<(PathBuf, i64)> {
    let client = server.client();
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("upload");
    let mut made = Vec::new();
    let top = server
        .block_on(client.folder_create(None, "top", None))
        .unwrap()
        .id;
    let mut upload = |folder: Option<u64>, at: PathBuf| {
        fs::write(&source, at.display().to_string()).unwrap();
        let name = at.file_name().unwrap().to_str().unwrap().to_owned();
        let stored = server
            .block_on(client.file_upload(folder, &name, &source))
            .unwrap();
        let details = server
            .block_on(Remote::file_info(&client, stored.file_id))
            .unwrap();
        made.push((at, details.uploaded.unwrap()));
    };
    upload(None, PathBuf::from("a.txt"));
    upload(None, PathBuf::from("b.txt"));
    for d in 0..folders {
        let name = format!("d{d:02}");
        let id = server
            .block_on(client.folder_create(Some(top), &name, None))
            .unwrap()
            .id;
        for f in 0..per_folder {
            upload(Some(id), PathBuf::from(format!("top/{name}/f{f:02}.txt")));
        }
    }
    made
}

/// A mount's cache directory and its runtime directory (where its control socket goes), kept
/// for a remount and for `yetifs status`.
struct Dirs {
    cache: tempfile::TempDir,
    runtime: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs {
            cache: tempfile::tempdir().unwrap(),
            runtime: tempfile::tempdir().unwrap(),
        }
    }

    /// A mount of `server` with these directories, listings trusted for an hour.
    fn mount(&self, server: &Server, extra: &[&str]) -> Mount {
        self.mount_with_ttl(server, "3600", extra)
    }

    /// A mount of `server` with these directories, listings trusted for `ttl` seconds.
    fn mount_with_ttl(&self, server: &Server, ttl: &str, extra: &[&str]) -> Mount {
        let mut args = vec!["--dir-ttl", ttl];
        args.extend_from_slice(extra);
        let mut command = mount_command(server, self.cache.path(), &args);
        command.env("XDG_RUNTIME_DIR", self.runtime.path());
        Mount::spawn(command, tempfile::tempdir().unwrap())
    }

    /// `yetifs status MOUNTPOINT --json` of `mount`.
    fn status(&self, mount: &Mount) -> StatusReport {
        mount.status(self.runtime.path())
    }
}

/// The paths of files and folders `tree` holds, as `find .` prints them.
fn paths(tree: &[(PathBuf, i64)]) -> BTreeSet<String> {
    let mut out = BTreeSet::from([".".to_owned()]);
    for (path, _) in tree {
        let mut at = PathBuf::from(".");
        for part in path.iter() {
            at.push(part);
            out.insert(at.display().to_string());
        }
    }
    out
}

/// Asserts that `listing` (`ls -lR --time-style=+%s .`) shows every file of `tree` with its
/// upload date.
fn assert_dates(listing: &str, tree: &[(PathBuf, i64)]) {
    let mut shown = std::collections::BTreeMap::new();
    let mut dir = PathBuf::new();
    for line in listing.lines() {
        if let Some(heading) = line.strip_suffix(':') {
            dir = PathBuf::from(heading.trim_start_matches("./").trim_start_matches('.'));
        } else if line.starts_with('-') {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let [.., date, name] = fields[..] {
                shown.insert(dir.join(name), date.parse::<i64>().unwrap());
            }
        }
    }
    for (path, uploaded) in tree {
        assert_eq!(
            shown.get(path),
            Some(uploaded),
            "{} in:\n{listing}",
            path.display()
        );
    }
}

/// API calls logged since `before` (a count of calls).
fn since(server: &Server, before: usize) -> Vec<String> {
    server.calls().split_off(before)
}

/// Waits until `check` holds, or panics with the mount's log.
fn eventually(mount: &Mount, what: &str, check: impl FnMut() -> bool) {
    mount.eventually(what, DEADLINE, check);
}

#[test]
fn find_and_ls_without_l_on_a_cold_mount_cost_listings_only_and_show_every_entry() {
    let server = Server::with(ServeArgs::default());
    let tree = foreign_tree(&server, 6, 8);
    let dirs = Dirs::new();
    let mount = dirs.mount(&server, &[]);
    let before = server.calls().len();

    let found: BTreeSet<String> = sh(mount.path(), "find .")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(found, paths(&tree), "every entry is visible");
    let names = sh(mount.path(), "ls -R top | grep -c 'f0'");
    assert_eq!(names.trim(), "48", "ls -R shows every file");

    let calls = since(&server, before);
    assert_eq!(
        count(&calls, "file/info"),
        0,
        "no date was fetched: {calls:?}"
    );
    assert_eq!(
        count(&calls, "folder/listing"),
        1 + 1 + 6,
        "each folder listed once (root, top, six below): {calls:?}"
    );
}

#[test]
fn a_stat_after_a_walk_that_skipped_dates_shows_the_upload_date() {
    let server = Server::with(ServeArgs::default());
    let tree = foreign_tree(&server, 3, 4);
    // The mount's stand-in for an unknown date is its start: later than every upload here.
    std::thread::sleep(Duration::from_millis(2_100));
    let dirs = Dirs::new();
    let mount = dirs.mount(&server, &[]);
    sh(mount.path(), "find . > /dev/null");
    for (path, uploaded) in &tree {
        let meta = fs::symlink_metadata(mount.path().join(path)).unwrap();
        assert_eq!(meta.mtime(), *uploaded, "{}", path.display());
    }
}

#[test]
fn ls_l_fetches_a_folders_dates_at_once_and_each_date_once() {
    let server = Server::with(ServeArgs::default());
    let tree = foreign_tree(&server, 4, 10);
    let dirs = Dirs::new();
    let mount = dirs.mount(&server, &[]);
    let before = server.calls().len();

    let listing = sh(mount.path(), "ls -lR --time-style=+%s .");
    assert_dates(&listing, &tree);
    let calls = since(&server, before);
    assert_eq!(
        count(&calls, "file/info"),
        tree.len(),
        "one date per file, none twice: {calls:?}"
    );
    let again = server.calls().len();
    sh(mount.path(), "ls -lR . > /dev/null");
    assert!(
        since(&server, again).is_empty(),
        "a second walk costs nothing"
    );
}

#[test]
fn a_busy_server_lowers_the_calls_in_flight_and_every_call_still_succeeds() {
    let server = Server::with(ServeArgs {
        faults: "inflight=3,latency=20ms".parse().unwrap(),
        ..ServeArgs::default()
    });
    let tree = foreign_tree(&server, 5, 12);
    let dirs = Dirs::new();
    let mount = dirs.mount(&server, &[]);

    let listing = sh(mount.path(), "ls -lR --time-style=+%s .");
    assert_dates(&listing, &tree);
    assert!(server.calls_answered(429) > 0, "the server was made busy");
    let requests = dirs.status(&mount).requests;
    assert!(requests.slowdowns >= 1, "{requests:?}");
    assert!(
        requests.limit < 8,
        "the limit came down from its start towards what the server takes: {requests:?}"
    );
}

#[test]
fn the_tree_prefetch_fills_the_kept_tree_and_a_later_mount_walks_it_on_listings_only() {
    let server = Server::with(ServeArgs::default());
    let tree = foreign_tree(&server, 5, 6);
    let dirs = Dirs::new();
    let mount = dirs.mount(&server, &["--prefetch-tree"]);
    eventually(&mount, "the prefetch is done", || {
        dirs.status(&mount).prefetch.state == TreeState::Done
    });
    let progress = dirs.status(&mount).prefetch;
    assert_eq!(progress.folders, 1 + 1 + 5, "{progress:?}");
    assert_eq!(progress.files as usize, tree.len(), "{progress:?}");
    assert_eq!(progress.dates as usize, tree.len(), "{progress:?}");

    let before = server.calls().len();
    sh(mount.path(), "ls -lR . > /dev/null");
    assert!(
        since(&server, before).is_empty(),
        "the walked tree is served from memory"
    );
    assert_eq!(mount.unmount().code(), Some(0));

    let again = dirs.mount_with_ttl(&server, "0", &[]);
    let before = server.calls().len();
    sh(again.path(), "ls -lR . > /dev/null");
    let calls = since(&server, before);
    assert_eq!(
        count(&calls, "file/info"),
        0,
        "the dates were kept: {calls:?}"
    );
}

#[test]
fn the_tree_prefetch_stops_at_the_unmount() {
    let server = Server::with(ServeArgs {
        faults: "latency=50ms".parse().unwrap(),
        ..ServeArgs::default()
    });
    foreign_tree(&server, 30, 4);
    let dirs = Dirs::new();
    let mount = dirs.mount(&server, &["--prefetch-tree"]);
    eventually(&mount, "the walk is under way", || {
        let p = dirs.status(&mount).prefetch;
        p.state == TreeState::Walking && p.folders >= 2
    });
    let walked = dirs.status(&mount).prefetch;
    assert_eq!(mount.unmount().code(), Some(0));
    let at_exit = server.calls().len();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        server.calls().len(),
        at_exit,
        "nothing is sent once the mount is gone"
    );
    assert!(walked.folders < 32, "it was stopped part-way: {walked:?}");
}
