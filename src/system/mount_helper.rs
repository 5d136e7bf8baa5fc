//! The `mount.fuse.yetifs` entry point, so `mount -t fuse.yetifs NAME: /mnt/x -o ...` and
//! `/etc/fstab` lines work. `mount(8)` runs `/sbin/mount.fuse.yetifs SOURCE MOUNTPOINT -o
//! OPTIONS` (with `-n`, `-s`, `-v` or `-f` when it was given them) and expects it to return
//! once the filesystem is mounted, its exit code telling whether it is. When the binary is
//! called by that name (a symlink to `yetifs`), its arguments are translated to
//! `yetifs mount --daemon`: options naming a yetifs flag (`cache_dir=...`) become that flag, the
//! rest stay mount options.
use std::ffi::{OsStr, OsString};
use std::path::Path;

/// Names under which the binary acts as a mount helper.
pub const HELPER_NAMES: [&str; 2] = ["mount.fuse.yetifs", "mount.yetifs"];

/// `-o` options that are `yetifs mount` flags: the option name and the flag.
const FLAG_OPTIONS: [(&str, &str); 7] = [
    ("config", "--config"),
    ("cache_dir", "--cache-dir"),
    ("cache_size", "--cache-size"),
    ("memory_cache", "--memory-cache"),
    ("dir_ttl", "--dir-ttl"),
    ("pid_file", "--pid-file"),
    ("api_url", "--api-url"),
];

/// Options that would put a key on a command line and into fstab: refused. The helper passes no
/// key to `yetifs mount`, so a mount through it never gets the command-line key warning.
const KEY_OPTIONS: [&str; 2] = ["key1", "key2"];

/// Options `mount.fuse` would hand to the kernel itself; yetifs sets its own.
const DROPPED_OPTIONS: [&str; 2] = ["fsname", "subtype"];

/// Why a helper command line cannot be translated.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// The arguments are not `SOURCE MOUNTPOINT [-o OPTIONS] [-n] [-s] [-v] [-f]`.
    #[error("usage: mount.fuse.yetifs NAME: MOUNTPOINT [-o OPTIONS] ({0})")]
    Usage(String),
    /// A key was given as a mount option. Refused, and never repeated in the message: fstab
    /// and `mount`'s command line are readable by every user.
    #[error(
        "{0} cannot be a mount option: /etc/fstab and the mount command line are readable by \
         every user; keep the keys in the configuration file (`yetifs config add NAME` writes \
         it readable by its owner only) and mount NAME:"
    )]
    KeyOption(String),
}

/// What the helper is asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Run `yetifs` with these arguments (without the program name).
    Mount(Vec<OsString>),
    /// `mount -f`: pretend, do nothing.
    Fake,
}

/// Whether `argv0` (the program name as called) names the mount helper.
pub fn is_helper(argv0: &OsStr) -> bool {
    Path::new(argv0)
        .file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|name| HELPER_NAMES.contains(&name))
}

/// Translates the helper's arguments (after the program name) to those of `yetifs`.
pub fn translate(args: &[OsString]) -> Result<Invocation, HelperError> {
    let mut positional = Vec::new();
    let mut groups = Vec::new();
    let mut fake = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.to_str() {
            Some("-o") => {
                let group = rest
                    .next()
                    .ok_or_else(|| HelperError::Usage("-o needs options".into()))?;
                groups.push(utf8(group)?);
            }
            Some(flag) if flag.starts_with("-o") => groups.push(flag[2..].to_owned()),
            Some("-n" | "-s" | "-v") => {}
            Some("-f") => fake = true,
            Some(flag) if flag.starts_with('-') && flag.len() > 1 => {
                return Err(HelperError::Usage(format!("unknown flag {flag}")))
            }
            _ => positional.push(arg.clone()),
        }
    }
    let [source, mountpoint] = positional.as_slice() else {
        return Err(HelperError::Usage(format!(
            "expected a source and a mountpoint, got {} argument(s)",
            positional.len()
        )));
    };
    if fake {
        return Ok(Invocation::Fake);
    }
    let mut source = utf8(source)?;
    if source.is_empty() || source == ":" {
        return Err(HelperError::Usage(
            "the source must name a remote of config.toml, as NAME:".into(),
        ));
    }
    if !source.ends_with(':') {
        source.push(':');
    }
    let mut out: Vec<OsString> = vec!["mount".into(), "--daemon".into()];
    let mut passed = Vec::new();
    for option in groups.iter().flat_map(|g| g.split(',')) {
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (option, None),
        };
        if KEY_OPTIONS.contains(&key) {
            return Err(HelperError::KeyOption(key.to_owned()));
        }
        if let Some((_, flag)) = FLAG_OPTIONS.iter().find(|(name, _)| *name == key) {
            let value = value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| HelperError::Usage(format!("option {key} needs a value")))?;
            out.push((*flag).into());
            out.push(value.into());
        } else if !option.is_empty() && !DROPPED_OPTIONS.contains(&key) {
            passed.push(option);
        }
    }
    if !passed.is_empty() {
        out.push("-o".into());
        out.push(passed.join(",").into());
    }
    out.push(source.into());
    out.push(mountpoint.clone());
    Ok(Invocation::Mount(out))
}

fn utf8(arg: &OsStr) -> Result<String, HelperError> {
    arg.to_str()
        .map(str::to_owned)
        .ok_or_else(|| HelperError::Usage(format!("{arg:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_helper_is_known_by_the_basename_it_is_called_by() {
        assert!(is_helper(OsStr::new("/sbin/mount.fuse.yetifs")));
        assert!(is_helper(OsStr::new("mount.yetifs")));
        assert!(!is_helper(OsStr::new("/usr/bin/yetifs")));
    }

    #[test]
    fn a_mount_8_command_line_becomes_a_daemon_mount_with_flags_and_options() {
        let got = translate(&args(&[
            "work:",
            "/mnt/work",
            "-n",
            "-o",
            "rw,_netdev,cache_dir=/var/cache/yetifs,dir_ttl=60,allow_other,x-systemd.automount,config=/etc/yetifs/config.toml",
        ]))
        .unwrap();
        assert_eq!(
            got,
            Invocation::Mount(args(&[
                "mount",
                "--daemon",
                "--cache-dir",
                "/var/cache/yetifs",
                "--dir-ttl",
                "60",
                "--config",
                "/etc/yetifs/config.toml",
                "-o",
                "rw,_netdev,allow_other,x-systemd.automount",
                "work:",
                "/mnt/work",
            ]))
        );
    }

    #[test]
    fn a_source_without_its_colon_still_names_the_remote() {
        let Invocation::Mount(got) = translate(&args(&["work", "/mnt/w"])).unwrap() else {
            panic!("not a mount");
        };
        assert_eq!(got, args(&["mount", "--daemon", "work:", "/mnt/w"]));
    }

    #[test]
    fn options_glued_to_the_flag_and_fuse_naming_options_are_handled() {
        let Invocation::Mount(got) =
            translate(&args(&["-oro,fsname=x,pid_file=/run/y.pid", "w:", "/m"])).unwrap()
        else {
            panic!("not a mount");
        };
        assert_eq!(
            got,
            args(&[
                "mount",
                "--daemon",
                "--pid-file",
                "/run/y.pid",
                "-o",
                "ro",
                "w:",
                "/m"
            ])
        );
    }

    #[test]
    fn keys_as_mount_options_are_refused_without_repeating_them() {
        let key = "k".repeat(64);
        let err = translate(&args(&["w:", "/m", "-o", &format!("ro,key2={key}")])).unwrap_err();
        assert!(matches!(&err, HelperError::KeyOption(k) if k == "key2"));
        let message = err.to_string();
        assert!(message.contains("yetifs config add NAME"), "{message}");
        assert!(!message.contains(&key), "{message}");
    }

    #[test]
    fn a_fake_mount_does_nothing() {
        assert_eq!(
            translate(&args(&["-f", "w:", "/m"])).unwrap(),
            Invocation::Fake
        );
    }

    #[test]
    fn malformed_command_lines_are_refused() {
        assert!(translate(&args(&["/m"])).is_err());
        assert!(translate(&args(&["w:", "/m", "-o"])).is_err());
        assert!(translate(&args(&["w:", "/m", "-x"])).is_err());
        assert!(translate(&args(&["w:", "/m", "-o", "cache_dir="])).is_err());
        assert!(translate(&args(&[":", "/m"])).is_err());
    }
}
