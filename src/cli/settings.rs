//! Where a mount's settings come from: command-line flags first, then `YETIFS_*` environment
//! variables (clap reads those), then a named remote in `~/.config/yetifs/config.toml`, then
//! defaults. Resolving them here keeps `main` free of precedence rules and makes them testable.
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::api::keys::{check_keys, KeyError};
use crate::api::ConcurrencyConfig;
use crate::fs::{WriteBackOptions, DEFAULT_TRANSFERS, DEFAULT_WRITE_BACK_DELAY};

/// What went wrong while putting a mount's settings together.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML of the expected shape.
    #[error("{path} is not a valid yetifs configuration: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// `NAME:` was given but the file has no such remote.
    #[error("no remote named {name:?} in {path}; add it with: yetifs config add {name}")]
    NoSuchRemote {
        /// The name asked for.
        name: String,
        /// The file searched.
        path: PathBuf,
    },
    /// `NAME:` was given but there is no configuration file at all.
    #[error(
        "there is no configuration file {path}, so no remote named {name:?}; add it with: \
         yetifs config add {name}"
    )]
    NoConfigFile {
        /// The name asked for.
        name: String,
        /// The file that is missing.
        path: PathBuf,
    },
    /// A setting every mount needs is missing.
    #[error("{0}")]
    Missing(String),
    /// A `-o` option or a value is not understood.
    #[error("{0}")]
    Invalid(String),
    /// A key cannot be right: refused before any login, which the host would count.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The file holds API keys and other users may read or change it. Refused as ssh refuses
    /// a private key others can read: the keys may already have leaked, and a file others can
    /// change could send them to another server.
    #[error(
        "{} is {} by other users (mode {mode:04o}) and holds API keys; run: chmod 600 {}",
        path.display(),
        if mode & 0o044 != 0 { "readable" } else { "writable" },
        shell_word(&path.to_string_lossy())
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Permission bits of a file holding keys that are refused: read or write by group or others.
pub const EXPOSED_BITS: u32 = 0o066;

/// `word` as one shell word, quoted only when it needs to be, so a command in a message can be
/// pasted as it is.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:=@%~".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// One `[remotes.NAME]` table of `config.toml`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RemoteEntry {
    /// The API base, e.g. `https://www.example.com/api/v2/`.
    pub api_url: Option<String>,
    /// First API key (64 characters).
    pub key1: Option<String>,
    /// Second API key (64 characters).
    pub key2: Option<String>,
    /// Cache directory for this remote.
    pub cache_dir: Option<PathBuf>,
    /// Disk cache bound, e.g. `"10GiB"`.
    pub cache_size: Option<String>,
    /// Directory cache lifetime in seconds.
    pub dir_ttl: Option<u64>,
    /// Bound of caches and buffers in memory together, e.g. `"256MiB"`.
    pub memory_limit: Option<String>,
    /// Mount options as with `-o`.
    pub options: Option<String>,
    /// Seconds a connection to the server may take to open.
    pub connect_timeout: Option<u64>,
    /// Write-back: `true` (the default delay), `false`, or the delay, e.g. `"10s"`.
    pub write_back: Option<WriteBackSetting>,
    /// Uploads sent at once.
    pub transfers: Option<usize>,
    /// Walk the account in the background after mounting.
    pub prefetch_tree: Option<bool>,
    /// API calls in flight at most.
    pub max_requests: Option<usize>,
}

/// How `write_back` is written in `config.toml`: `write_back = true` or `write_back = "10s"`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum WriteBackSetting {
    /// On with the default delay, or off.
    On(bool),
    /// On with this delay.
    Delay(String),
}

impl fmt::Debug for RemoteEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteEntry")
            .field("api_url", &self.api_url)
            .field("key1", &self.key1.as_ref().map(|_| "<redacted>"))
            .field("key2", &self.key2.as_ref().map(|_| "<redacted>"))
            .field("cache_dir", &self.cache_dir)
            .field("cache_size", &self.cache_size)
            .field("dir_ttl", &self.dir_ttl)
            .field("memory_limit", &self.memory_limit)
            .field("options", &self.options)
            .field("connect_timeout", &self.connect_timeout)
            .field("write_back", &self.write_back)
            .field("transfers", &self.transfers)
            .field("prefetch_tree", &self.prefetch_tree)
            .field("max_requests", &self.max_requests)
            .finish()
    }
}

/// The whole `config.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Named remotes, mounted as `yetifs mount NAME: MOUNTPOINT`.
    #[serde(default)]
    pub remotes: BTreeMap<String, RemoteEntry>,
}

impl ConfigFile {
    /// Reads `path`; a missing file is an empty configuration. A file holding keys that other
    /// users may read or write is refused ([`ConfigError::Exposed`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_text(path).map(|(file, _)| file)
    }

    /// Like [`ConfigFile::load`], with the file's text as read (empty for a missing file), for
    /// editing it without losing its comments.
    pub fn load_text(path: &Path) -> Result<(Self, String), ConfigError> {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        let read_error = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Self::default(), String::new()))
            }
            Err(source) => return Err(read_error(source)),
        };
        let mode = file.metadata().map_err(read_error)?.permissions().mode() & 0o7777;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(read_error)?;
        let parsed: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        if mode & EXPOSED_BITS != 0 && parsed.holds_keys() {
            return Err(ConfigError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
        Ok((parsed, text))
    }

    /// Whether any remote carries a key.
    pub fn holds_keys(&self) -> bool {
        self.remotes
            .values()
            .any(|r| r.key1.is_some() || r.key2.is_some())
    }

    /// The remote called `name`.
    pub fn remote(&self, name: &str, path: &Path) -> Result<RemoteEntry, ConfigError> {
        if let Some(remote) = self.remotes.get(name) {
            return Ok(remote.clone());
        }
        if !path.exists() {
            return Err(ConfigError::NoConfigFile {
                name: name.to_owned(),
                path: path.to_owned(),
            });
        }
        Err(ConfigError::NoSuchRemote {
            name: name.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// The configuration file's usual place: `$XDG_CONFIG_HOME/yetifs/config.toml`, else
/// `~/.config/yetifs/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("yetifs").join("config.toml"))
}

/// The default cache directory: `$XDG_CACHE_HOME/yetifs`, else `~/.cache/yetifs`, else a
/// directory under the system's temporary directory.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("yetifs")
}

/// Parses a size such as `512MiB`, `10G` or `1048576`.
pub fn parse_size(text: &str) -> Result<u64, ConfigError> {
    parse_size::parse_size(text)
        .map_err(|e| ConfigError::Invalid(format!("invalid size {text:?}: {e}")))
}

/// The `-o` options of a mount, as FUSE and `mount(8)` spell them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// Read-only mount.
    pub read_only: bool,
    /// Let other users see the mount.
    pub allow_other: bool,
    /// Let the kernel check permissions from the mode bits and owners: asked for, or implied
    /// by `allow_other` (unless `no_default_permissions` says otherwise).
    pub default_permissions: bool,
    /// Mount over a directory that is not empty, hiding what it holds.
    pub nonempty: bool,
    /// Owner shown for every item.
    pub uid: Option<u32>,
    /// Group shown for every item.
    pub gid: Option<u32>,
}

impl MountOptions {
    /// Parses comma-separated options, possibly from several `-o` flags. Options that only
    /// matter to `mount(8)`, fstab or systemd (`_netdev`, `noauto`, `x-systemd.*`, ...) are
    /// accepted and ignored so that fstab lines work; anything else unknown is refused.
    ///
    /// `allow_other` implies `default_permissions`: without it, any local user could read a
    /// `0600` file of the mounting user and change the owner's directories. `-o
    /// allow_other,no_default_permissions` turns that off for those who check access otherwise.
    pub fn parse<'a>(groups: impl IntoIterator<Item = &'a str>) -> Result<Self, ConfigError> {
        let mut opts = Self::default();
        let mut unchecked = false;
        for option in groups.into_iter().flat_map(|g| g.split(',')) {
            let option = option.trim();
            let (key, value) = match option.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (option, None),
            };
            let number = |v: Option<&str>| -> Result<u32, ConfigError> {
                v.and_then(|v| v.parse().ok()).ok_or_else(|| {
                    ConfigError::Invalid(format!("-o {key} needs a number, as {key}=1000"))
                })
            };
            match key {
                "" | "rw" | "defaults" | "auto" | "noauto" | "user" | "nouser" | "users"
                | "_netdev" | "nofail" | "dev" | "nodev" | "suid" | "nosuid" | "exec"
                | "noexec" | "atime" | "noatime" | "relatime" | "async" => {}
                k if k.starts_with("x-") || k.starts_with("comment=") => {}
                "ro" => opts.read_only = true,
                "allow_other" => opts.allow_other = true,
                "default_permissions" => opts.default_permissions = true,
                "no_default_permissions" => unchecked = true,
                "nonempty" => opts.nonempty = true,
                "uid" => opts.uid = Some(number(value)?),
                "gid" => opts.gid = Some(number(value)?),
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "unknown mount option {option:?} (known: ro, allow_other, \
                         default_permissions, no_default_permissions, nonempty, uid=N, gid=N)"
                    )))
                }
            }
        }
        if unchecked && opts.default_permissions {
            return Err(ConfigError::Invalid(
                "-o default_permissions and no_default_permissions contradict each other".into(),
            ));
        }
        opts.default_permissions |= opts.allow_other && !unchecked;
        Ok(opts)
    }
}

/// Everything a mount needs, settled.
#[derive(Clone)]
pub struct MountSettings {
    /// The API base URL.
    pub api_url: String,
    /// First API key.
    pub key1: String,
    /// Second API key.
    pub key2: String,
    /// Where the block cache, metadata and staged writes live.
    pub cache_dir: PathBuf,
    /// Bound of the disk cache in bytes.
    pub cache_size: u64,
    /// Bound of the memory cache in bytes.
    pub memory_cache: u64,
    /// How long a directory listing is trusted.
    pub dir_ttl: Duration,
    /// Bound of the memory cache, read-ahead windows and buffers together, in bytes.
    pub memory_limit: Option<u64>,
    /// The `-o` options.
    pub options: MountOptions,
    /// How long opening a connection to the server may take.
    pub connect_timeout: Duration,
    /// How uploads are scheduled: how many at once, and the write-back delay if any.
    pub write_back: WriteBackOptions,
    /// Whether to walk the account in the background after mounting (`--prefetch-tree`).
    pub prefetch_tree: bool,
    /// The most API calls in flight at once; the adaptive limit stays under it.
    pub max_requests: usize,
}

impl fmt::Debug for MountSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MountSettings")
            .field("api_url", &self.api_url)
            .field("key1", &"<redacted>")
            .field("key2", &"<redacted>")
            .field("cache_dir", &self.cache_dir)
            .field("cache_size", &self.cache_size)
            .field("memory_cache", &self.memory_cache)
            .field("dir_ttl", &self.dir_ttl)
            .field("memory_limit", &self.memory_limit)
            .field("options", &self.options)
            .field("connect_timeout", &self.connect_timeout)
            .field("write_back", &self.write_back)
            .field("prefetch_tree", &self.prefetch_tree)
            .field("max_requests", &self.max_requests)
            .finish()
    }
}

/// What the command line (with its environment fallbacks) said, before the config file.
#[derive(Clone, Debug, Default)]
pub struct MountFlags {
    /// `--api-url` / `YETIFS_API_URL`.
    pub api_url: Option<String>,
    /// `--key1` / `YETIFS_KEY1`.
    pub key1: Option<String>,
    /// `--key2` / `YETIFS_KEY2`.
    pub key2: Option<String>,
    /// `--cache-dir`.
    pub cache_dir: Option<PathBuf>,
    /// `--cache-size`.
    pub cache_size: Option<String>,
    /// `--memory-cache`.
    pub memory_cache: Option<String>,
    /// `--dir-ttl`.
    pub dir_ttl: Option<u64>,
    /// `--memory-limit`.
    pub memory_limit: Option<String>,
    /// Every `-o` group, with the long flags that stand for options (`--read-only`,
    /// `--allow-other`, `--allow-non-empty`) added as groups of their own.
    pub options: Vec<String>,
    /// `--connect-timeout`, in seconds.
    pub connect_timeout: Option<u64>,
    /// `--write-back[=DELAY]`: `Some("")` without a value.
    pub write_back: Option<String>,
    /// `--transfers`.
    pub transfers: Option<usize>,
    /// `--prefetch-tree`.
    pub prefetch_tree: bool,
    /// `--max-requests`.
    pub max_requests: Option<usize>,
}

/// Parses a write-back delay such as `5s`, `500ms` or `2m`.
pub fn parse_delay(text: &str) -> Result<Duration, ConfigError> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| {
        ConfigError::Invalid(format!(
            "invalid write-back delay {text:?} ({e}); write it as 5s, 500ms or 2m"
        ))
    })
}

/// The warning owed when `yetifs mount` or `yetifs config add` was given a key as a flag
/// typed on the command line (not read from `YETIFS_KEY1`/`YETIFS_KEY2`, which clap puts in the
/// same field): every user of the machine can read a command line. `None` when no key was
/// typed, and for commands whose keys are no account's (`yetifs serve`).
pub fn typed_keys_warning(matches: &clap::ArgMatches) -> Option<String> {
    let mut leaf = matches;
    let mut path = Vec::new();
    while let Some((name, sub)) = leaf.subcommand() {
        path.push(name);
        leaf = sub;
    }
    let safer = match path.as_slice() {
        ["mount"] => {
            "`yetifs config add NAME` keeps them in a file only you can read (then mount \
             NAME:), or set the YETIFS_KEY1 and YETIFS_KEY2 environment variables"
        }
        ["config", "add"] => {
            "leave them out to be asked for them (not echoed), or set the YETIFS_KEY1 and \
             YETIFS_KEY2 environment variables"
        }
        _ => return None,
    };
    let typed: Vec<String> = ["key1", "key2"]
        .into_iter()
        .filter(|id| {
            leaf.ids().any(|present| present.as_str() == *id)
                && leaf.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(|id| format!("--{id}"))
        .collect();
    if typed.is_empty() {
        return None;
    }
    Some(format!(
        "keys on the command line ({}) are visible to every user of this machine in `ps` and \
         kept in the shell's history; safer: {safer}",
        typed.join(", ")
    ))
}

/// Default disk cache bound.
pub const DEFAULT_CACHE_SIZE: u64 = 10 << 30;
/// Default memory cache bound.
pub const DEFAULT_MEMORY_CACHE: u64 = 256 << 20;
/// Default directory cache lifetime.
pub const DEFAULT_DIR_TTL: Duration = Duration::from_secs(30);
/// Default time a connection to the server may take to open.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

impl MountFlags {
    /// Settles the flags over the named remote (if any) and the defaults.
    pub fn resolve(self, named: Option<&RemoteEntry>) -> Result<MountSettings, ConfigError> {
        let named = named.cloned().unwrap_or_default();
        let api_url = self.api_url.or(named.api_url).ok_or_else(|| {
            ConfigError::Missing(
                "no API URL: give --api-url, set YETIFS_API_URL, or name a remote from \
                 config.toml as NAME:"
                    .into(),
            )
        })?;
        let key1 = self.key1.or(named.key1);
        let key2 = self.key2.or(named.key2);
        let (Some(key1), Some(key2)) = (key1, key2) else {
            return Err(ConfigError::Missing(
                "no API keys: give --key1 and --key2, set YETIFS_KEY1 and YETIFS_KEY2, or name \
                 a remote from config.toml as NAME: (the keys are on the host's account \
                 settings page)"
                    .into(),
            ));
        };
        check_keys(&key1, &key2)?;
        let cache_size = match self.cache_size.or(named.cache_size) {
            Some(s) => parse_size(&s)?,
            None => DEFAULT_CACHE_SIZE,
        };
        let memory_cache = match self.memory_cache {
            Some(s) => parse_size(&s)?,
            None => DEFAULT_MEMORY_CACHE,
        };
        let dir_ttl = self
            .dir_ttl
            .or(named.dir_ttl)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_DIR_TTL);
        let memory_limit = self
            .memory_limit
            .or(named.memory_limit)
            .map(|s| parse_size(&s))
            .transpose()?;
        let mut groups = Vec::new();
        groups.extend(named.options);
        groups.extend(self.options);
        let options = MountOptions::parse(groups.iter().map(String::as_str))?;
        let connect_timeout = match self.connect_timeout.or(named.connect_timeout) {
            Some(0) => {
                return Err(ConfigError::Invalid(
                    "--connect-timeout must be at least 1 second".into(),
                ))
            }
            Some(secs) => Duration::from_secs(secs),
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        let delay = match (self.write_back, named.write_back) {
            (Some(text), _) if text.is_empty() => Some(DEFAULT_WRITE_BACK_DELAY),
            (Some(text), _) | (None, Some(WriteBackSetting::Delay(text))) => {
                Some(parse_delay(&text)?)
            }
            (None, Some(WriteBackSetting::On(true))) => Some(DEFAULT_WRITE_BACK_DELAY),
            (None, Some(WriteBackSetting::On(false)) | None) => None,
        };
        let transfers = match self.transfers.or(named.transfers) {
            Some(0) => {
                return Err(ConfigError::Invalid(
                    "--transfers must be at least 1".into(),
                ))
            }
            Some(n) => n,
            None => DEFAULT_TRANSFERS,
        };
        let max_requests = match self.max_requests.or(named.max_requests) {
            Some(0) => {
                return Err(ConfigError::Invalid(
                    "--max-requests must be at least 1".into(),
                ))
            }
            Some(n) => n,
            None => ConcurrencyConfig::default().max,
        };
        Ok(MountSettings {
            api_url,
            key1,
            key2,
            cache_dir: self
                .cache_dir
                .or(named.cache_dir)
                .unwrap_or_else(default_cache_dir),
            cache_size,
            memory_cache,
            dir_ttl,
            memory_limit,
            options,
            connect_timeout,
            write_back: WriteBackOptions { transfers, delay },
            prefetch_tree: self.prefetch_tree || named.prefetch_tree.unwrap_or(false),
            max_requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_remote_without_a_config_file_says_the_file_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let err = ConfigFile::load(&path)
            .unwrap()
            .remote("work", &path)
            .unwrap_err();
        assert!(matches!(err, ConfigError::NoConfigFile { .. }), "{err}");
        assert!(err.to_string().contains("yetifs config add work"), "{err}");
    }

    fn flags_with_keys() -> MountFlags {
        MountFlags {
            api_url: Some("http://127.0.0.1:1/api/v2/".into()),
            key1: Some("a".repeat(64)),
            key2: Some("b".repeat(64)),
            ..MountFlags::default()
        }
    }

    #[test]
    fn flags_win_over_the_named_remote() {
        let named = RemoteEntry {
            api_url: Some("http://named/api/v2/".into()),
            key1: Some("n".repeat(64)),
            dir_ttl: Some(5),
            ..RemoteEntry::default()
        };
        let s = flags_with_keys().resolve(Some(&named)).unwrap();
        assert_eq!(s.api_url, "http://127.0.0.1:1/api/v2/");
        assert_eq!(s.key1, "a".repeat(64));
        assert_eq!(s.dir_ttl, Duration::from_secs(5));
    }

    #[test]
    fn the_named_remote_fills_what_flags_leave_out() {
        let named = RemoteEntry {
            api_url: Some("http://named/api/v2/".into()),
            key1: Some("n".repeat(64)),
            key2: Some("m".repeat(64)),
            options: Some("ro,uid=7".into()),
            cache_size: Some("1GiB".into()),
            ..RemoteEntry::default()
        };
        let s = MountFlags::default().resolve(Some(&named)).unwrap();
        assert_eq!(s.api_url, "http://named/api/v2/");
        assert_eq!(s.key2, "m".repeat(64));
        assert!(s.options.read_only);
        assert_eq!(s.options.uid, Some(7));
        assert_eq!(s.cache_size, 1 << 30);
        assert_eq!(s.memory_limit, None);
    }

    #[test]
    fn the_memory_limit_comes_from_the_flag_or_the_named_remote() {
        let named = RemoteEntry {
            memory_limit: Some("96MiB".into()),
            ..RemoteEntry::default()
        };
        let s = flags_with_keys().resolve(Some(&named)).unwrap();
        assert_eq!(s.memory_limit, Some(96 << 20));
        let flags = MountFlags {
            memory_limit: Some("1GiB".into()),
            ..flags_with_keys()
        };
        assert_eq!(
            flags.resolve(Some(&named)).unwrap().memory_limit,
            Some(1 << 30)
        );
    }

    #[test]
    fn missing_keys_say_where_keys_come_from() {
        let flags = MountFlags {
            key2: None,
            ..flags_with_keys()
        };
        let err = flags.resolve(None).unwrap_err().to_string();
        assert!(
            err.contains("--key1") && err.contains("YETIFS_KEY1"),
            "{err}"
        );
    }

    #[test]
    fn the_connect_timeout_comes_from_the_flag_or_the_named_remote_and_is_never_zero() {
        assert_eq!(
            flags_with_keys().resolve(None).unwrap().connect_timeout,
            DEFAULT_CONNECT_TIMEOUT
        );
        let named = RemoteEntry {
            connect_timeout: Some(3),
            ..RemoteEntry::default()
        };
        let s = flags_with_keys().resolve(Some(&named)).unwrap();
        assert_eq!(s.connect_timeout, Duration::from_secs(3));
        let flags = MountFlags {
            connect_timeout: Some(0),
            ..flags_with_keys()
        };
        assert!(matches!(flags.resolve(None), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn the_tree_walk_and_the_calls_in_flight_come_from_the_flag_or_the_named_remote() {
        let plain = flags_with_keys().resolve(None).unwrap();
        assert!(!plain.prefetch_tree);
        assert_eq!(plain.max_requests, ConcurrencyConfig::default().max);
        let named: ConfigFile = toml::from_str(
            "[remotes.work]\napi_url = \"http://h/api/v2/\"\nprefetch_tree = true\nmax_requests = 8\n",
        )
        .unwrap();
        let s = flags_with_keys()
            .resolve(named.remotes.get("work"))
            .unwrap();
        assert!(s.prefetch_tree);
        assert_eq!(s.max_requests, 8);
        let flags = MountFlags {
            max_requests: Some(12),
            ..flags_with_keys()
        };
        assert_eq!(
            flags
                .resolve(named.remotes.get("work"))
                .unwrap()
                .max_requests,
            12
        );
        let zero = MountFlags {
            max_requests: Some(0),
            ..flags_with_keys()
        };
        assert!(matches!(zero.resolve(None), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn missing_url_is_an_error() {
        let flags = MountFlags {
            api_url: None,
            ..flags_with_keys()
        };
        assert!(matches!(flags.resolve(None), Err(ConfigError::Missing(_))));
    }

    #[test]
    fn mount_options_parse_known_and_ignore_fstab_only_ones() {
        let o = MountOptions::parse([
            "ro,allow_other",
            "uid=1000,gid=100,_netdev,x-systemd.automount",
        ])
        .unwrap();
        assert_eq!(
            o,
            MountOptions {
                read_only: true,
                allow_other: true,
                default_permissions: true,
                nonempty: false,
                uid: Some(1000),
                gid: Some(100),
            }
        );
    }

    #[test]
    fn allow_other_implies_default_permissions_unless_explicitly_turned_off() {
        let checked = MountOptions::parse(["allow_other"]).unwrap();
        assert!(checked.default_permissions);
        let unchecked = MountOptions::parse(["allow_other,no_default_permissions"]).unwrap();
        assert!(unchecked.allow_other && !unchecked.default_permissions);
        let alone = MountOptions::parse(["rw"]).unwrap();
        assert!(!alone.default_permissions);
        assert!(MountOptions::parse(["default_permissions,no_default_permissions"]).is_err());
        assert!(MountOptions::parse(["nonempty"]).unwrap().nonempty);
    }

    #[test]
    fn unknown_or_malformed_mount_options_are_refused() {
        assert!(MountOptions::parse(["bogus"]).is_err());
        assert!(MountOptions::parse(["uid=me"]).is_err());
        assert!(MountOptions::parse(["uid"]).is_err());
    }

    #[test]
    fn config_file_reads_named_remotes_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert!(ConfigFile::load(&path).unwrap().remotes.is_empty());
        write_with_mode(
            &path,
            "[remotes.work]\napi_url = \"https://h/api/v2/\"\nkey1 = \"k\"\nkey2 = \"l\"\n",
            0o600,
        );
        let file = ConfigFile::load(&path).unwrap();
        assert_eq!(
            file.remote("work", &path).unwrap().api_url.as_deref(),
            Some("https://h/api/v2/")
        );
        assert!(matches!(
            file.remote("home", &path),
            Err(ConfigError::NoSuchRemote { .. })
        ));
    }

    fn write_with_mode(path: &Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    const WITH_KEYS: &str = "[remotes.work]\nkey1 = \"k\"\n";

    #[test]
    fn a_file_with_keys_that_others_can_read_is_refused_with_the_command_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        write_with_mode(&path, WITH_KEYS, 0o644);
        let err = ConfigFile::load(&path).unwrap_err();
        assert!(matches!(err, ConfigError::Exposed { mode: 0o644, .. }));
        let p = path.display();
        assert_eq!(
            err.to_string(),
            format!(
                "{p} is readable by other users (mode 0644) and holds API keys; run: chmod 600 {p}"
            )
        );
        write_with_mode(&path, WITH_KEYS, 0o640);
        assert!(ConfigFile::load(&path)
            .unwrap_err()
            .to_string()
            .contains("is readable by other users (mode 0640)"));
        write_with_mode(&path, WITH_KEYS, 0o620);
        assert!(ConfigFile::load(&path)
            .unwrap_err()
            .to_string()
            .contains("is writable by other users (mode 0620)"));
    }

    #[test]
    fn a_file_with_keys_readable_by_its_owner_only_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        for mode in [0o600, 0o400, 0o700] {
            write_with_mode(&path, WITH_KEYS, mode);
            assert!(ConfigFile::load(&path).is_ok(), "mode {mode:o}");
        }
    }

    #[test]
    fn a_file_without_keys_may_be_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        write_with_mode(
            &path,
            "[remotes.work]\napi_url = \"https://h/api/v2/\"\n",
            0o644,
        );
        assert!(ConfigFile::load(&path).is_ok());
    }

    #[test]
    fn the_chmod_command_quotes_a_path_the_shell_would_split() {
        assert_eq!(
            shell_word("/home/u/.config/yetifs/config.toml"),
            "/home/u/.config/yetifs/config.toml"
        );
        assert_eq!(
            shell_word("/tmp/my dir/it's.toml"),
            r"'/tmp/my dir/it'\''s.toml'"
        );
    }

    #[test]
    fn keys_that_cannot_be_right_are_refused_while_settling_naming_the_key() {
        let flags = MountFlags {
            key2: Some(format!("{} ", "b".repeat(63))),
            ..flags_with_keys()
        };
        let err = flags.resolve(None).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Key(KeyError::WhiteSpace {
                    which: "key2",
                    at: 64,
                    ..
                })
            ),
            "{err}"
        );
        let named = RemoteEntry {
            api_url: Some("http://named/api/v2/".into()),
            key1: Some("n".repeat(40)),
            key2: Some("m".repeat(64)),
            ..RemoteEntry::default()
        };
        let err = MountFlags::default().resolve(Some(&named)).unwrap_err();
        assert!(
            err.to_string().starts_with("key1 is 40 characters long"),
            "{err}"
        );
    }

    fn warning_for(args: &[&str]) -> Option<String> {
        use clap::CommandFactory;
        let matches = crate::cli::Cli::command()
            .try_get_matches_from(std::iter::once("yetifs").chain(args.iter().copied()))
            .unwrap();
        typed_keys_warning(&matches)
    }

    #[test]
    fn keys_typed_on_the_command_line_of_mount_or_config_add_are_warned_about() {
        let key = "k".repeat(64);
        let mount = warning_for(&["mount", "--key1", &key, "--key2", &key, "/mnt"]).unwrap();
        assert!(mount.contains("(--key1, --key2)"), "{mount}");
        assert!(mount.contains("`ps`"), "{mount}");
        assert!(mount.contains("yetifs config add NAME"), "{mount}");
        assert!(mount.contains("YETIFS_KEY1"), "{mount}");
        assert!(!mount.contains(&key), "{mount}");
        let add = warning_for(&["config", "add", "work", "--key2", &key]).unwrap();
        assert!(add.contains("(--key2)"), "{add}");
        assert!(add.contains("asked for them"), "{add}");
    }

    #[test]
    fn no_warning_without_typed_keys_nor_for_the_emulator_s_keys() {
        assert_eq!(warning_for(&["mount", "work:", "/mnt"]), None);
        let key = "k".repeat(64);
        assert_eq!(
            warning_for(&["serve", "--key1", &key, "--key2", &key]),
            None
        );
        assert_eq!(warning_for(&["config", "list"]), None);
    }

    #[test]
    fn config_file_with_unknown_keys_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[remotes.work]\napi = 1\n").unwrap();
        let err = ConfigFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("config.toml"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_keys() {
        let s = flags_with_keys().resolve(None).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains(&"a".repeat(64)), "{shown}");
    }

    #[test]
    fn sizes_accept_binary_and_decimal_units() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("lots").is_err());
    }
}
