//! What a package installs besides the binary, as the binary prints it: completion scripts
//! naming every command, a manual page documenting every `yetifs mount` flag, and a version
//! line naming the commit it was built from.
use std::path::Path;
use std::process::{Command, Output};

use clap::CommandFactory;
use yetifs::cli::Cli;

fn yetifs(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_yetifs"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "yetifs {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(args: &[&str]) -> String {
    String::from_utf8(yetifs(args).stdout).unwrap()
}

/// The commands `yetifs --help` shows.
fn visible_commands() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_owned())
        .collect()
}

/// `text` with roff's escaped hyphens, as a flag appears in a page.
fn roff(text: &str) -> String {
    text.replace('-', "\\-")
}

#[test]
fn each_shell_gets_a_script_naming_every_command() {
    let commands = visible_commands();
    assert!(commands.len() >= 5, "{commands:?}");
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef yetifs"),
        ("fish", "complete -c yetifs"),
    ] {
        let script = stdout(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for command in &commands {
            assert!(script.contains(command.as_str()), "{shell}: no {command}");
        }
    }
}

#[test]
fn an_unknown_shell_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_yetifs"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}

#[test]
fn the_man_page_documents_every_command_and_every_mount_flag() {
    let page = stdout(&["man"]);
    assert!(page.contains("\n.TH yetifs 1"));
    assert!(page.contains("\n.SH NAME"));
    for command in visible_commands() {
        let heading = format!("\n.SH \"YETIFS {}\"\n", command.to_uppercase());
        assert!(page.contains(&heading), "no section for {command}");
    }
    let mount_section = page
        .split("\n.SH ")
        .find(|s| s.starts_with("\"YETIFS MOUNT\""))
        .expect("a YETIFS MOUNT section");
    // The first line of each option's entry (after `.TP`) names it.
    let entries: Vec<&str> = mount_section
        .lines()
        .zip(mount_section.lines().skip(1))
        .filter(|(tp, _)| *tp == ".TP")
        .map(|(_, entry)| entry)
        .collect();
    let mount = Cli::command().find_subcommand("mount").unwrap().clone();
    let args: Vec<_> = mount.get_arguments().filter(|a| !a.is_hide_set()).collect();
    assert!(args.len() >= 12, "mount has {} arguments", args.len());
    for arg in args {
        let needle = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("\\fB{}\\fR", roff(&format!("--{long}"))),
            (None, Some(short)) => format!("\\fB{}\\fR", roff(&format!("-{short}"))),
            (None, None) => arg.get_value_names().unwrap()[0].to_string(),
        };
        assert!(
            entries.iter().any(|e| e.contains(&needle)),
            "mount's {} is not documented: {needle}",
            arg.get_id()
        );
    }
}

#[test]
fn man_dir_writes_a_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    yetifs(&["man", "--dir", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("yetifs.1")).unwrap(),
        stdout(&["man"])
    );
    for command in visible_commands() {
        let page = std::fs::read_to_string(out.join(format!("yetifs-{command}.1"))).unwrap();
        assert!(page.contains(&format!(".TH yetifs-{command} 1")), "{page}");
        assert!(page.contains(".SH \"SEE ALSO\""));
    }
}

/// The short hash of HEAD, if this crate is built from a git checkout that tracks it (as the
/// build script checks).
fn checkout_head() -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    git(&["ls-files", "--error-unmatch", "Cargo.toml"])?;
    let out = git(&["rev-parse", "HEAD"])?;
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

#[test]
fn the_version_names_the_commit_and_its_date() {
    let line = stdout(&["--version"]);
    let line = line.trim_end();
    let version = env!("CARGO_PKG_VERSION");
    let Some(head) = checkout_head() else {
        assert_eq!(line, format!("yetifs {version}"));
        return;
    };
    let commit = line
        .strip_prefix(&format!("yetifs {version} ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not `yetifs {version} (HASH DATE)`: {line:?}"));
    let (hash, date) = commit.split_once(' ').unwrap();
    assert!(hash.len() >= 7, "{line:?}");
    assert!(head.starts_with(hash), "{hash} is not HEAD {head}");
    let parts: Vec<&str> = date.split('-').collect();
    assert!(
        date.len() == 10
            && parts.len() == 3
            && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit())),
        "not a YYYY-MM-DD date: {date:?}"
    );
}
