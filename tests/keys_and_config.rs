//! Keys kept safe, as ssh and rclone users expect: a config.toml holding keys that others can
//! read is refused before any request, with the command that fixes it; keys that cannot be
//! right are refused before any login; a refused pair costs exactly one login and says what the
//! host's ban rule is; keys typed on the command line are warned about once.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::mount::{is_mounted, run_within, write_file, write_private, yetifs, Mount, Server};
use yetifs::emulator::{Profile, RangeMode};

/// How long a failing command may take to say so.
const QUICKLY: Duration = Duration::from_secs(20);

/// The start of the warning about keys typed on the command line.
const TYPED_KEYS: &str = "keys on the command line";

fn server() -> Server {
    Server::start(Profile::V4, RangeMode::Naive)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A config.toml naming the server's account `emu`, with `key2` instead of the real one if
/// given.
fn remote_text(server: &Server, key2: Option<&str>) -> String {
    let (key1, real_key2) = server.keys();
    format!(
        "[remotes.emu]\napi_url = \"{}\"\nkey1 = \"{key1}\"\nkey2 = \"{}\"\n",
        server.url(),
        key2.unwrap_or(&real_key2)
    )
}

/// Runs `yetifs mount` with `args`, a fresh cache and an empty mountpoint, and expects it to
/// fail; returns its error output.
fn mount_fails(args: &[&str], env: &[(&str, &str)]) -> String {
    let dirs = tempfile::tempdir().unwrap();
    let point = dirs.path().join("mnt");
    std::fs::create_dir(&point).unwrap();
    let out = run_within(
        yetifs()
            .arg("mount")
            .args(args)
            .arg("--cache-dir")
            .arg(dirs.path().join("cache"))
            .arg(&point)
            .envs(env.iter().copied()),
        QUICKLY,
    );
    assert!(
        !out.status.success(),
        "exit {}: {}",
        out.status,
        stderr(&out)
    );
    assert!(!is_mounted(&point.canonicalize().unwrap()));
    stderr(&out)
}

fn occurrences(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

// ---- config.toml holding keys must be private ----

#[test]
fn a_config_file_others_can_read_is_refused_before_any_request_with_the_chmod_to_run() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(dir.path(), "config.toml", &remote_text(&server, None));
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config_arg = config.to_str().unwrap();

    let err = mount_fails(&["--config", config_arg, "emu:"], &[]);
    let expected = format!(
        "yetifs: {config_arg} is readable by other users (mode 0644) and holds API keys; run: \
         chmod 600 {config_arg}"
    );
    assert!(err.contains(&expected), "{err}");
    assert_eq!(server.calls(), Vec::<String>::new(), "no request was sent");

    let command = err.split("run: ").nth(1).unwrap().trim();
    let ran = Command::new("sh").arg("-c").arg(command).status().unwrap();
    assert!(ran.success());
    assert_eq!(mode(&config), 0o600);
    let mut mount = yetifs();
    mount
        .args(["mount", "--config", config_arg, "--cache-dir"])
        .arg(dir.path().join("cache"))
        .arg("emu:");
    let mount = Mount::spawn(mount, tempfile::tempdir().unwrap());
    assert!(mount.unmount().success());
}

// ---- keys checked before any login ----

#[test]
fn keys_that_cannot_be_right_are_refused_naming_the_key_and_nothing_is_sent() {
    let server = server();
    let (key1, key2) = server.keys();
    let short = &key1[..63];
    let err = mount_fails(
        &["--api-url", &server.url(), "--key1", short, "--key2", &key2],
        &[],
    );
    assert!(
        err.contains("key1 is 63 characters long; API keys are exactly 64"),
        "{err}"
    );

    let spaced = format!("{} ", &key2[..63]);
    let err = mount_fails(
        &["--api-url", &server.url()],
        &[("YETIFS_KEY1", &key1), ("YETIFS_KEY2", &spaced)],
    );
    assert!(
        err.contains("key2 has white space in it (character 64 of 64)"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let long = format!("{key2}x");
    let config = write_private(
        dir.path(),
        "config.toml",
        &remote_text(&server, Some(&long)),
    );
    let err = mount_fails(&["--config", config.to_str().unwrap(), "emu:"], &[]);
    assert!(err.contains("key2 is 65 characters long"), "{err}");

    assert_eq!(server.calls(), Vec::<String>::new(), "no request was sent");
}

// ---- a refused pair ----

#[test]
fn a_refused_pair_says_what_the_server_said_and_the_ban_rule_after_one_login() {
    let server = server();
    let (key1, _) = server.keys();
    let wrong = "c".repeat(64);
    let err = mount_fails(
        &["--api-url", &server.url()],
        &[("YETIFS_KEY1", &key1), ("YETIFS_KEY2", &wrong)],
    );
    let expected = format!(
        "yetifs: the server at {} refused the key pair (Could not authenticate user. The key \
         pair may be invalid or your account may be locked from too many failed logins.). The \
         host bans an address from logging in for 24 hours after 5 failed logins; this mount \
         sent 1 and will not retry. Check the keys on the account settings page.",
        server.url()
    );
    assert!(err.contains(&expected), "{err}");
    assert_eq!(server.calls(), vec!["authorize".to_owned()]);
}

// ---- the warning about keys typed on the command line ----

#[test]
fn keys_typed_on_the_command_line_work_and_are_warned_about_once() {
    let server = server();
    let mount = Mount::start(&server, &[]);
    let err = mount.stderr();
    assert_eq!(occurrences(&err, TYPED_KEYS), 1, "{err}");
    assert!(
        err.contains("(--key1, --key2) are visible to every user"),
        "{err}"
    );
    assert!(err.contains("yetifs config add NAME"), "{err}");
    assert!(err.contains("YETIFS_KEY1 and YETIFS_KEY2"), "{err}");
    assert!(
        !err.contains(&server.keys().0),
        "the warning shows no key: {err}"
    );
    assert!(mount.unmount().success());
}

#[test]
fn the_detached_half_of_daemon_does_not_warn_again() {
    let server = server();
    let (key1, _) = server.keys();
    let wrong = "c".repeat(64);
    let err = mount_fails(
        &[
            "--daemon",
            "--api-url",
            &server.url(),
            "--key1",
            &key1,
            "--key2",
            &wrong,
        ],
        &[],
    );
    assert_eq!(occurrences(&err, TYPED_KEYS), 1, "{err}");
    assert!(err.contains("refused the key pair"), "{err}");
}

#[test]
fn keys_from_the_environment_or_the_config_file_bring_no_warning() {
    let server = server();
    let (key1, _) = server.keys();
    let wrong = "c".repeat(64);
    let err = mount_fails(
        &["--api-url", &server.url()],
        &[("YETIFS_KEY1", &key1), ("YETIFS_KEY2", &wrong)],
    );
    assert!(err.contains("refused the key pair"), "{err}");
    assert_eq!(occurrences(&err, TYPED_KEYS), 0, "{err}");

    let dir = tempfile::tempdir().unwrap();
    let config = write_private(
        dir.path(),
        "config.toml",
        &remote_text(&server, Some(&wrong)),
    );
    let err = mount_fails(&["--config", config.to_str().unwrap(), "emu:"], &[]);
    assert!(err.contains("refused the key pair"), "{err}");
    assert_eq!(occurrences(&err, TYPED_KEYS), 0, "{err}");
}
