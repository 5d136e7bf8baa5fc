//! One account, several machines: what one mount writes — empty files, dotfiles, symlinks,
//! modes, times — every other mount of the account shows, each with a cache directory of its
//! own, on both server generations. Real mounts over the emulator, driven with rsync, tar, git,
//! diff and ls.
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::mount::{as_user, count, sh, yetifs, Mount, Server};
use yetifs::api::FileEdit;
use yetifs::emulator::{Profile, RangeMode};
use yetifs::remote::{FileKind, FileMeta, Remote};

/// Listings are trusted this long in these tests, so that one mount sees another's changes.
const TTL: &str = "1";

fn mount(server: &Server, cache: &Path) -> Mount {
    Mount::start_with_cache(server, cache, &["--dir-ttl", TTL])
}

/// Waits out the listing TTL (and the kernel's attribute cache, which follows it).
fn after_the_ttl() {
    std::thread::sleep(Duration::from_millis(1_600));
}

/// A tree with what local trees hold and object stores lose: empty files, dotfiles, modes, set
/// times, relative and absolute links to files and to folders, a dangling link.
fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("pkg/sub")).unwrap();
    fs::write(root.join(".env"), "K=V\n").unwrap();
    fs::write(root.join("pkg/__init__.py"), "").unwrap();
    fs::write(root.join("pkg/sub/.gitkeep"), "").unwrap();
    fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("secret"), "s3cr3t\n").unwrap();
    fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("old.txt"), "from 2001\n").unwrap();
    sh(root, "touch -d '2001-09-09 01:46:40.25' old.txt");
    symlink("run.sh", root.join("link-to-file")).unwrap();
    symlink("pkg/sub", root.join("link-to-dir")).unwrap();
    symlink("/etc/hostname", root.join("absolute")).unwrap();
    symlink("../nowhere", root.join("pkg/dangling")).unwrap();
}

/// What `lstat` and `readlink` show of every entry under `root`, folders' times left out (they
/// stay on the machine that set them).
fn shown(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            let line = if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                format!("link {} -> {}", meta.len(), target.display())
            } else if meta.is_dir() {
                todo.push(path.clone());
                format!("dir {:o}", meta.mode() & 0o7777)
            } else {
                format!(
                    "file {} {:o} {}.{:09}",
                    meta.len(),
                    meta.mode() & 0o7777,
                    meta.mtime(),
                    meta.mtime_nsec()
                )
            };
            out.insert(name, line);
        }
    }
    out
}

/// `fileType` of every file on the server, by path.
fn server_types(server: &Server) -> BTreeMap<String, String> {
    let client = server.client();
    server.block_on(async {
        let mut out = BTreeMap::new();
        let mut todo = vec![(None, String::new())];
        while let Some((folder, path)) = todo.pop() {
            let listing = client.list_folder(folder).await.unwrap();
            for f in listing.folders.iter().filter(|f| !f.trashed) {
                todo.push((Some(f.id), format!("{path}{}/", f.name)));
            }
            for f in listing.files.iter().filter(|f| !f.trashed) {
                out.insert(format!("{path}{}", f.name), f.file_type.clone());
            }
        }
        out
    })
}

fn kind_on_server(types: &BTreeMap<String, String>, path: &str) -> FileMeta {
    let value = types
        .get(path)
        .unwrap_or_else(|| panic!("{path} is not on the server: {types:?}"));
    FileMeta::parse(value).unwrap_or_else(|| panic!("{path} carries no metadata: {value}"))
}

fn a_tree_written_by_one_mount_is_the_same_tree_on_every_other(profile: Profile) {
    let server = Server::start(profile, RangeMode::Naive);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    sample_tree(&src);
    let a = mount(&server, &work.path().join("cache-a"));
    let b = mount(&server, &work.path().join("cache-b"));

    sh(
        work.path(),
        &format!("rsync -a src/ '{}/tree/'", a.path().display()),
    );
    after_the_ttl();
    let expected = shown(&src);
    assert_eq!(shown(&b.path().join("tree")), expected, "as B sees it");

    let again = sh(
        work.path(),
        &format!(
            "rsync -a --itemize-changes src/ '{}/tree/'",
            b.path().display()
        ),
    );
    let changed: Vec<&str> = again
        .lines()
        .filter(|line| !line.starts_with(".d"))
        .collect();
    assert!(changed.is_empty(), "rsync from B changed files: {again}");

    let types = server_types(&server);
    assert_eq!(
        kind_on_server(&types, "tree/pkg/__init__.py").kind,
        FileKind::Empty
    );
    assert_eq!(
        kind_on_server(&types, "tree/pkg/sub/.gitkeep").kind,
        FileKind::Empty
    );
    assert_eq!(
        kind_on_server(&types, "tree/link-to-dir").kind,
        FileKind::Symlink
    );
    assert_eq!(
        kind_on_server(&types, "tree/absolute").kind,
        FileKind::Symlink
    );
    let script = kind_on_server(&types, "tree/run.sh");
    assert_eq!((script.kind, script.mode), (FileKind::Regular, Some(0o755)));
    assert_eq!(kind_on_server(&types, "tree/secret").mode, Some(0o600));
    assert!(
        types["tree/old.txt"].contains("mtime=1000000000.25;"),
        "{types:?}"
    );
    b.unmount();

    let c = mount(&server, &work.path().join("cache-c"));
    sh(
        work.path(),
        &format!("diff -r --no-dereference src '{}/tree'", c.path().display()),
    );
    assert_eq!(
        fs::read_to_string(c.path().join("tree/link-to-dir/.gitkeep")).unwrap(),
        "",
        "the kernel follows a link to a folder"
    );
    c.unmount();
    a.unmount();
}

#[test]
fn a_tree_written_by_one_mount_is_the_same_tree_on_every_other_on_v4() {
    a_tree_written_by_one_mount_is_the_same_tree_on_every_other(Profile::V4);
}

#[test]
fn a_tree_written_by_one_mount_is_the_same_tree_on_every_other_on_v5() {
    a_tree_written_by_one_mount_is_the_same_tree_on_every_other(Profile::V5);
}

fn tar_and_git_round_trip_between_two_mounts(profile: Profile) {
    let server = Server::start(profile, RangeMode::Naive);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    sample_tree(&src);
    sh(work.path(), "tar -cf tree.tar -C src .");
    let origin = work.path().join("origin");
    fs::create_dir(&origin).unwrap();
    sh(
        &origin,
        "git init -q -b main && mkdir -p docs && echo hello > docs/readme.md && \
         : > docs/.keep && printf '#!/bin/sh\\n' > tool.sh && chmod 755 tool.sh && \
         ln -s docs/readme.md README && ln -s docs doc-link && git add -A && \
         git -c user.name=t -c user.email=t@t commit -qm first",
    );
    let a = mount(&server, &work.path().join("cache-a"));
    let b = mount(&server, &work.path().join("cache-b"));

    fs::create_dir(a.path().join("unpacked")).unwrap();
    sh(
        work.path(),
        &format!("tar -xf tree.tar -C '{}/unpacked'", a.path().display()),
    );
    sh(
        work.path(),
        &format!("git clone -q origin '{}/repo'", a.path().display()),
    );
    after_the_ttl();
    sh(
        work.path(),
        &format!(
            "diff -r --no-dereference src '{}/unpacked'",
            b.path().display()
        ),
    );
    let status = sh(&b.path().join("repo"), "git status --porcelain");
    assert_eq!(status, "", "git status from the other mount");
    sh(&b.path().join("repo"), "git fsck --no-progress");
    assert_eq!(
        fs::read_link(b.path().join("repo/README")).unwrap(),
        Path::new("docs/readme.md")
    );
    b.unmount();
    a.unmount();
}

#[test]
fn tar_and_git_round_trip_between_two_mounts_on_v4() {
    tar_and_git_round_trip_between_two_mounts(Profile::V4);
}

#[test]
fn tar_and_git_round_trip_between_two_mounts_on_v5() {
    tar_and_git_round_trip_between_two_mounts(Profile::V5);
}

#[test]
fn a_cold_ls_of_a_tree_yetifs_wrote_costs_listings_only() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    sample_tree(&src);
    for i in 0..40 {
        fs::write(src.join(format!("pkg/file-{i}.txt")), format!("{i}\n")).unwrap();
    }
    let a = mount(&server, &work.path().join("cache-a"));
    sh(
        work.path(),
        &format!("rsync -a src/ '{}/tree/'", a.path().display()),
    );
    a.unmount();

    let before = server.calls();
    let b = mount(&server, &work.path().join("cache-b"));
    let listing = sh(b.path(), "ls -lR --time-style=+%s .");
    assert!(listing.contains("1000000000 old.txt"), "{listing}");
    let calls: Vec<String> = server.calls()[before.len()..].to_vec();
    assert_eq!(count(&calls, "file/info"), 0, "{calls:?}");
    assert!(count(&calls, "folder/listing") >= 3, "{calls:?}");
    b.unmount();
}

#[test]
fn bad_metadata_from_another_client_shows_a_plain_file() {
    let server = Server::start(Profile::V5, RangeMode::Naive);
    let id = common::mount::upload(&server, None, "report.pdf", b"%PDF-1.4");
    let client = server.client();
    let garbage = "inode/symlink; mtime=17; yetifs=1 trailing; <b>x</b>";
    let edit = FileEdit {
        file_type: Some(garbage),
        ..FileEdit::default()
    };
    server.block_on(client.file_edit(id, &edit)).unwrap();
    let m = mount(&server, &tempfile::tempdir().unwrap().path().join("cache"));
    let meta = fs::symlink_metadata(m.path().join("report.pdf")).unwrap();
    assert!(meta.is_file());
    assert_eq!((meta.len(), meta.mode() & 0o777), (8, 0o644));
    assert_eq!(fs::read(m.path().join("report.pdf")).unwrap(), b"%PDF-1.4");
    m.unmount();
}

#[test]
fn chown_is_kept_with_the_file_and_enforced_by_the_kernel() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let work = tempfile::tempdir().unwrap();
    let options = ["--dir-ttl", TTL, "-o", "allow_other,default_permissions"];
    let a = Mount::start_with_cache(&server, &work.path().join("cache-a"), &options);
    let file = a.path().join("private.txt");
    fs::write(&file, "for 4242 only\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&file, Some(4242), Some(4242)).unwrap();
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (4242, 4242, 0o600)
    );
    assert!(as_user(4242, a.path(), "cat private.txt > /dev/null"));
    assert!(!as_user(4343, a.path(), "cat private.txt 2> /dev/null"));
    // The mode and owner set right after the close ride with the upload's last steps.
    let synced = yetifs().arg("sync").arg(a.path()).status().unwrap();
    assert!(synced.success());

    let b = Mount::start_with_cache(&server, &work.path().join("cache-b"), &options);
    let seen = fs::metadata(b.path().join("private.txt")).unwrap();
    assert_eq!(
        (seen.uid(), seen.gid(), seen.mode() & 0o777),
        (4242, 4242, 0o600)
    );
    assert!(!as_user(4343, b.path(), "cat private.txt 2> /dev/null"));
    b.unmount();
    a.unmount();
}
