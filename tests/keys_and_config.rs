//! Keys kept safe, as ssh and rclone users expect: a config.toml holding keys that others can
//! read is refused before any request, with the command that fixes it; keys that cannot be
//! right are refused before any login; a refused pair costs exactly one login and says what the
//! host's ban rule is; keys typed on the command line are warned about once; `yetifs config`
//! writes remotes privately, checks them with one login, and never prints a key.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::mount::{
    count, is_mounted, run_within, write_file, write_private, yetifs, Mount, Server, PATIENCE,
};
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

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
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

// ---- yetifs config ----

/// A place for a config.toml that does not exist yet, in a directory that does not either.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Place {
        Place {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("yetifs").join("config.toml")
    }

    /// `yetifs config ARGS --config FILE` run with a permissive umask (000) and no terminal.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        run_within(
            Command::new("sh")
                .arg("-c")
                .arg("umask 000; exec \"$@\"")
                .arg("sh")
                .arg(env!("CARGO_BIN_EXE_yetifs"))
                .arg("config")
                .args(args)
                .arg("--config")
                .arg(self.config())
                .envs(env.iter().copied())
                .stdin(Stdio::null()),
            PATIENCE,
        )
    }

    /// Like [`Place::run`], expecting success; returns standard output.
    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    }

    /// Like [`Place::run`], expecting failure; returns standard error.
    fn fails(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(!out.status.success(), "{args:?}: {}", stdout(&out));
        stderr(&out)
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.config()).unwrap_or_default()
    }
}

/// `add NAME --api-url URL --key1 K --key2 K` arguments.
fn add_args<'a>(name: &'a str, url: &'a str, key1: &'a str, key2: &'a str) -> Vec<&'a str> {
    vec![
        "add",
        name,
        "--api-url",
        url,
        "--key1",
        key1,
        "--key2",
        key2,
    ]
}

#[test]
fn config_add_list_show_remove_round_trip_keeps_the_file_private_and_never_prints_keys() {
    let server = server();
    let (key1, key2) = server.keys();
    let url = server.url();
    let place = Place::new();

    let mut add = add_args("work", &url, &key1, &key2);
    add.extend(["--cache-size", "2GiB", "--dir-ttl", "60", "-o", "ro"]);
    let out = place.run(&add, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("added remote work"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        occurrences(&stderr(&out), TYPED_KEYS),
        1,
        "{}",
        stderr(&out)
    );
    assert_eq!(mode(&place.config()), 0o600, "whatever the umask");
    assert_eq!(mode(place.config().parent().unwrap()), 0o700);
    assert_eq!(
        count(&server.calls(), "authorize"),
        1,
        "one login checks the pair"
    );

    let mut written = place.text();
    assert!(
        written.contains(&format!("api_url = \"{url}\"")),
        "{written}"
    );
    assert!(written.contains("options = \"ro\""), "{written}");
    written.insert_str(0, "# kept by hand\n");
    std::fs::write(place.config(), &written).unwrap();

    let out = place.run(
        &["add", "home", "--api-url", &url],
        &[("YETIFS_KEY1", &key1), ("YETIFS_KEY2", &key2)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        occurrences(&stderr(&out), TYPED_KEYS),
        0,
        "keys came from the environment"
    );
    assert!(
        place.text().starts_with("# kept by hand\n[remotes.work]"),
        "{}",
        place.text()
    );

    let list = place.ok(&["list"], &[]);
    assert_eq!(list, format!("home  {url}\nwork  {url}\n"));

    let show = place.ok(&["show", "work"], &[]);
    assert!(show.contains(&format!("api_url      {url}")), "{show}");
    assert!(
        show.contains(&format!("key1         {}… (64 characters)", &key1[..4])),
        "{show}"
    );
    assert!(show.contains("cache_size   2GiB"), "{show}");
    for output in [&list, &show] {
        for key in [&key1, &key2] {
            assert!(!output.contains(&key[..8]), "a key was printed: {output}");
        }
    }

    let err = place.fails(&add_args("work", &url, &key1, &key2), &[]);
    assert!(
        err.contains("already has a remote named \"work\"; --force replaces it"),
        "{err}"
    );
    let mut again = add_args("work", &url, &key1, &key2);
    again.push("--force");
    place.ok(&again, &[]);
    assert!(
        !place.text().contains("2GiB"),
        "replaced whole: {}",
        place.text()
    );
    assert!(
        place.text().starts_with("# kept by hand\n[remotes.work]"),
        "{}",
        place.text()
    );

    let mut mount = yetifs();
    mount
        .args(["mount", "--config"])
        .arg(place.config())
        .arg("--cache-dir")
        .arg(place.dir.path().join("cache"))
        .arg("work:");
    let mount = Mount::spawn(mount, tempfile::tempdir().unwrap());
    assert!(mount.unmount().success(), "the written remote mounts");

    assert!(place
        .ok(&["remove", "home"], &[])
        .contains("removed remote home"));
    assert_eq!(place.ok(&["list"], &[]), format!("work  {url}\n"));
    assert_eq!(mode(&place.config()), 0o600);
    let err = place.fails(&["show", "home"], &[]);
    assert!(err.contains("no remote named \"home\""), "{err}");
}

#[test]
fn config_add_writes_nothing_for_a_pair_the_server_refuses_after_one_login() {
    let server = server();
    let (key1, _) = server.keys();
    let wrong = "c".repeat(64);
    let place = Place::new();
    let err = place.fails(&add_args("work", &server.url(), &key1, &wrong), &[]);
    assert!(
        err.contains(
            "refused the key pair (Could not authenticate user. The key pair may be invalid or \
             your account may be locked from too many failed logins.). The host bans an address \
             from logging in for 24 hours after 5 failed logins; this check sent 1 and will not \
             retry."
        ),
        "{err}"
    );
    assert!(err.contains("The remote \"work\" was not added."), "{err}");
    assert_eq!(server.calls(), vec!["authorize".to_owned()]);
    assert!(!place.config().exists());
}

#[test]
fn config_add_checks_keys_locally_and_asks_for_nothing_without_a_terminal() {
    let server = server();
    let (key1, key2) = server.keys();
    let place = Place::new();
    let err = place.fails(&add_args("work", &server.url(), &key1[..10], &key2), &[]);
    assert!(err.contains("key1 is 10 characters long"), "{err}");
    assert!(
        err.contains("nothing was sent and nothing was written"),
        "{err}"
    );
    let err = place.fails(&["add", "work", "--api-url", &server.url()], &[]);
    assert!(
        err.contains("no key1 given: pass --key1, or run on a terminal to be asked for it"),
        "{err}"
    );
    let err = place.fails(&["add", "a:b", "--api-url", &server.url()], &[]);
    assert!(err.contains("cannot name a remote"), "{err}");
    assert_eq!(server.calls(), Vec::<String>::new(), "no request was sent");
    assert!(!place.config().exists());
}

#[test]
fn config_add_refuses_an_unreachable_server_unless_told_not_to_check() {
    let server = server();
    let (key1, key2) = server.keys();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v2/", free.local_addr().unwrap());
    drop(free);
    let place = Place::new();
    let err = place.fails(&add_args("work", &url, &key1, &key2), &[]);
    assert!(err.contains("cannot reach the server"), "{err}");
    assert!(
        err.contains("--no-check writes the remote without checking"),
        "{err}"
    );
    assert!(!place.config().exists());
    let mut unchecked = add_args("work", &url, &key1, &key2);
    unchecked.push("--no-check");
    let out = place.ok(&unchecked, &[]);
    assert!(out.contains("keys not checked"), "{out}");
    assert_eq!(mode(&place.config()), 0o600);
}

#[test]
fn config_commands_find_the_file_through_yetifs_config() {
    let server = server();
    let (key1, key2) = server.keys();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("elsewhere.toml");
    let run = |args: &[&str]| {
        run_within(
            yetifs()
                .arg("config")
                .args(args)
                .env("YETIFS_CONFIG", &config),
            PATIENCE,
        )
    };
    let out = run(&add_args("work", &server.url(), &key1, &key2));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&config), 0o600);
    let out = run(&["list"]);
    assert_eq!(stdout(&out), format!("work  {}\n", server.url()));
}

#[test]
fn config_commands_refuse_a_file_others_can_read() {
    let server = server();
    let place = Place::new();
    std::fs::create_dir_all(place.config().parent().unwrap()).unwrap();
    write_file(
        place.config().parent().unwrap(),
        "config.toml",
        &remote_text(&server, None),
    );
    std::fs::set_permissions(place.config(), std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = place.fails(&["list"], &[]);
    assert!(
        err.contains("is readable by other users (mode 0640)"),
        "{err}"
    );
    assert!(err.contains("run: chmod 600"), "{err}");
}
