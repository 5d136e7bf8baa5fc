//! Local state no other user can read, and the conventions sshfs and rclone users expect, on
//! real mounts: `allow_other` checked by the kernel, a private cache whatever the umask, the
//! mountpoint checks, messages that say what to do, `df -i`, quiet logs and the log options.
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::mount::{as_user, mount_command, run_within, sh, upload, yetifs, Mount, Server};
use yetifs::emulator::{Profile, RangeMode};

const QUICKLY: Duration = Duration::from_secs(20);

/// Asserts that every directory under `cache` is `0700` and every file `0600`; how many
/// entries there are.
fn assert_private(cache: &Path) -> usize {
    let mut seen = 0;
    let mut todo = vec![cache.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let mode = meta.mode() & 0o777;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
            todo.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if meta.is_file() {
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        seen += 1;
    }
    seen
}

/// Runs `yetifs mount ARGS MOUNTPOINT` expecting a quick failure; its standard error.
fn refused(server: &Server, extra: &[&str], mountpoint: &Path) -> String {
    let cache = tempfile::tempdir().unwrap();
    let out = run_within(
        mount_command(server, &cache.path().join("cache"), extra).arg(mountpoint),
        QUICKLY,
    );
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn with_allow_other_the_kernel_keeps_other_users_out_of_what_is_not_theirs() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let m = Mount::start(&server, &["--allow-other"]);
    let private = m.path().join("private.txt");
    fs::write(&private, "owner only\n").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(m.path().join("shared.txt"), "anyone\n").unwrap();
    fs::create_dir(m.path().join("owners")).unwrap();
    let other = 4711;
    assert!(as_user(other, m.path(), "cat shared.txt > /dev/null"));
    assert!(!as_user(other, m.path(), "cat private.txt 2> /dev/null"));
    assert!(!as_user(
        other,
        m.path(),
        "touch owners/intruder 2> /dev/null"
    ));
    assert!(!as_user(other, m.path(), "rm shared.txt 2> /dev/null"));
    assert!(!m.path().join("owners/intruder").exists());
    assert!(m.path().join("shared.txt").exists());
    assert!(m.unmount().success());

    let open = Mount::start(&server, &["-o", "allow_other,no_default_permissions"]);
    assert!(
        as_user(other, open.path(), "cat shared.txt > /dev/null"),
        "the way out keeps the old behaviour"
    );
    assert!(open.unmount().success());
}

#[test]
fn the_cache_is_private_whatever_the_umask_and_a_loose_one_is_tightened() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    upload(&server, None, "data.bin", &vec![5u8; 3 << 20]);
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let command = mount_command(&server, &cache, &[]);
    let args: Vec<String> = command
        .get_args()
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let line = format!(
        "umask 000; exec '{}' {} \"$0\"",
        command.get_program().to_string_lossy(),
        args.join(" ")
    );
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(line);
    let m = Mount::spawn(shell, tempfile::tempdir().unwrap());
    fs::read(m.path().join("data.bin")).unwrap();
    fs::write(m.path().join("new.txt"), "staged then uploaded\n").unwrap();
    assert!(
        assert_private(&cache) > 5,
        "blocks, metadata, journal and records are there"
    );
    assert!(m.unmount().success());

    for entry in ["", "accounts"] {
        let path = cache.join(entry);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let m = Mount::start_with_cache(&server, &cache, &[]);
    assert!(
        m.stderr().contains("could be read by other users"),
        "{}",
        m.stderr()
    );
    assert_private(&cache);
    assert!(m.unmount().success());
}

#[test]
fn a_mountpoint_that_is_missing_or_not_empty_is_refused_with_what_to_do() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("nowhere");
    let said = refused(&server, &[], &missing);
    assert!(
        said.contains(&format!("create it with mkdir -p {}", missing.display())),
        "{said}"
    );
    let full = work.path().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("keep.txt"), "mine").unwrap();
    let said = refused(&server, &[], &full);
    assert!(
        said.contains("is not empty") && said.contains("--allow-non-empty"),
        "{said}"
    );

    let dirs = tempfile::tempdir().unwrap();
    fs::create_dir(dirs.path().join("mnt")).unwrap();
    fs::write(dirs.path().join("mnt/keep.txt"), "mine").unwrap();
    let over = mount_command(&server, &work.path().join("cache"), &["--allow-non-empty"]);
    let m = Mount::spawn(over, dirs);
    assert!(
        !m.path().join("keep.txt").exists(),
        "hidden under the mount"
    );
    assert!(m.unmount().success());
}

#[test]
fn urls_that_cannot_work_are_refused_with_an_example_or_the_fix() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let (key1, key2) = server.keys();
    let point = tempfile::tempdir().unwrap();
    let run = |url: &str| {
        let out = run_within(
            yetifs()
                .args(["mount", "--api-url", url, "--key1", &key1, "--key2", &key2])
                .arg(point.path()),
            QUICKLY,
        );
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = run("notaurl");
    assert!(said.contains("https://www.example.com/api/v2/"), "{said}");
    assert!(!said.contains("relative URL without a base\n"), "{said}");
    let tls = server.url().replacen("http://", "https://", 1);
    let said = run(&tls);
    assert!(said.contains("the server speaks plain http"), "{said}");
}

#[test]
fn df_i_shows_no_more_inodes_used_than_there_are() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    upload(&server, None, "a.txt", b"a");
    let m = Mount::start(&server, &[]);
    sh(m.path(), "ls -l");
    let df = sh(m.path(), "df --output=itotal,iused,iavail .");
    let fields: Vec<u64> = df
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    let [total, used, free] = fields[..] else {
        panic!("{df}");
    };
    assert!((2..100).contains(&used), "{df}");
    assert_eq!(total, used + free, "{df}");
    assert!(m.unmount().success());
}

#[test]
fn everyday_tools_leave_no_warnings_in_the_log() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let m = Mount::start(&server, &[]);
    fs::write(m.path().join("conf.ini"), "a=1\n").unwrap();
    sh(m.path(), "sed -i 's/a=1/a=2/' conf.ini");
    sh(
        m.path(),
        "python3 -c 'open(\"conf.ini\").read(); open(\"out.txt\", \"w\").write(\"x\")' \
         || cat conf.ini > /dev/null",
    );
    sh(
        m.path(),
        "cp -a conf.ini copy.ini; setfattr -n user.x -v 1 copy.ini 2> /dev/null || true",
    );
    assert_eq!(
        fs::read_to_string(m.path().join("conf.ini")).unwrap(),
        "a=2\n"
    );
    let log = m.stderr();
    assert!(!log.contains("Not Implemented"), "{log}");
    assert!(!log.contains("WARN"), "{log}");
    assert!(m.unmount().success());
}

#[test]
fn quiet_verbose_and_log_file_choose_what_is_logged_and_where() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let m = Mount::start(&server, &["-q"]);
    let quiet = m.stderr();
    assert!(m.unmount().success());
    assert!(!quiet.contains("INFO"), "{quiet}");

    let m = Mount::start(&server, &["-v"]);
    sh(m.path(), "ls");
    let verbose = m.stderr();
    assert!(m.unmount().success());
    assert!(verbose.contains("DEBUG"), "{verbose}");

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mount.log");
    let m = Mount::start(&server, &["--log-file", log.to_str().unwrap()]);
    let terminal = m.stderr();
    assert!(m.unmount().success());
    let written = fs::read_to_string(&log).unwrap();
    assert!(written.contains("mounted"), "{written}");
    assert!(!terminal.contains("mounted"), "{terminal}");
}

#[test]
fn a_daemons_log_starts_with_its_start_up_lines() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let point = work.path().join("mnt");
    fs::create_dir(&point).unwrap();
    let out = run_within(
        mount_command(&server, &cache, &["--daemon"]).arg(&point),
        QUICKLY,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let terminal = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        terminal.contains("mounted"),
        "the terminal sees the start: {terminal}"
    );
    sh(&point, "ls");
    sh(work.path(), &format!("umount '{}'", point.display()));
    let deadline = std::time::Instant::now() + QUICKLY;
    let log = cache.join("yetifs.log");
    loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        if text.contains("was unmounted") {
            let mounted = text.find("mounted ").expect("the start-up is in the log");
            assert!(mounted < text.find("was unmounted").unwrap(), "{text}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(fs::metadata(&log).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn the_read_only_flag_is_the_ro_option() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    upload(&server, None, "a.txt", b"a");
    let m = Mount::start(&server, &["--read-only"]);
    let err = fs::write(m.path().join("b.txt"), "b").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    assert_eq!(fs::read(m.path().join("a.txt")).unwrap(), b"a");
    assert!(m.unmount().success());
}

#[test]
fn mount_help_gives_every_default() {
    let out = yetifs().args(["mount", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for default in [
        "[default: ~/.cache/yetifs",
        "[default: 10GiB]",
        "[default: 256MiB]",
        "[default: 30]",
        "[default: none]",
        "[default: 15]",
    ] {
        assert!(help.contains(default), "no {default:?} in {help}");
    }
    for flag in [
        "--read-only",
        "--allow-other",
        "--allow-non-empty",
        "--log-file",
        "-q",
    ] {
        assert!(help.contains(flag), "no {flag} in {help}");
    }
}
