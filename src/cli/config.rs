//! `yetifs config`: named remotes in config.toml without writing TOML by hand. `add` checks the
//! keys locally and then with exactly one login (a refused pair counts towards the host's ban
//! of this address, so it is never sent twice and never written), and writes the file readable
//! by its owner only, keeping the other remotes and the file's comments. `list` and `show`
//! never print a key.
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{DocumentMut, Item, Table};

use crate::api::keys::{check_keys, KeyError, LoginRefused};
use crate::api::{Client, ClientConfig, Credentials, RetryPolicy};
use crate::cache::private::{DIR_MODE, FILE_MODE};
use crate::cli::settings::{
    default_config_path, parse_size, ConfigError, ConfigFile, MountOptions, RemoteEntry,
};
use crate::remote::error::RemoteError;

/// How long the one login of `config add` may take before the server counts as unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// Characters of a key that `show` prints; the rest is cut.
const SHOWN_KEY_CHARS: usize = 4;

/// Arguments of `yetifs config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The configuration file (default `~/.config/yetifs/config.toml`).
    #[arg(long, env = "YETIFS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// What to do with it.
    #[command(subcommand)]
    pub action: ConfigAction,
}

/// The `yetifs config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigAction {
    /// Add a remote: asks for what is missing (keys not echoed), checks the keys with one
    /// login, then writes the file readable by you only.
    Add(AddArgs),
    /// List the remotes: names and API URLs (never keys).
    List,
    /// Show a remote's settings, its keys cut to their first characters.
    Show {
        /// The remote.
        name: String,
    },
    /// Remove a remote.
    Remove {
        /// The remote.
        name: String,
    },
}

/// Arguments of `yetifs config add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The remote's name, as in `yetifs mount NAME: MOUNTPOINT`.
    pub name: String,
    /// The API base URL, e.g. `https://www.example.com/api/v2/`.
    #[arg(long)]
    pub api_url: Option<String>,
    /// First API key (64 characters, from the account settings page); asked for if missing.
    #[arg(long, env = "YETIFS_KEY1", hide_env_values = true)]
    pub key1: Option<String>,
    /// Second API key; asked for if missing.
    #[arg(long, env = "YETIFS_KEY2", hide_env_values = true)]
    pub key2: Option<String>,
    /// Cache directory of this remote's mounts.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Bound of the disk cache, e.g. `20GiB`.
    #[arg(long)]
    pub cache_size: Option<String>,
    /// Seconds a directory listing is trusted.
    #[arg(long)]
    pub dir_ttl: Option<u64>,
    /// Bound of memory caches and buffers together, e.g. `128MiB`.
    #[arg(long)]
    pub memory_limit: Option<String>,
    /// Mount options: ro, allow_other, default_permissions, uid=N, gid=N.
    #[arg(short = 'o', long = "options", value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Replace a remote of the same name.
    #[arg(long)]
    pub force: bool,
    /// Write the remote without logging in (when the server cannot be reached now).
    #[arg(long)]
    pub no_check: bool,
}

/// Why a `yetifs config` command failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigCmdError {
    /// Reading or checking the file failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No file was named and there is no home directory to find it in.
    #[error("cannot find the configuration file: HOME is not set (give --config FILE)")]
    NoPath,
    /// The name cannot be mounted as `NAME:`.
    #[error(
        "{0:?} cannot name a remote: use letters, digits, '-', '_' and '.', not starting with '-'"
    )]
    BadName(String),
    /// `add` of a name the file already has.
    #[error("{path} already has a remote named {name:?}; --force replaces it")]
    Exists {
        /// The name.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// A setting `add` needs was not given and there is no terminal to ask on.
    #[error("no {what} given: pass {flag}, or run on a terminal to be asked for it")]
    Missing {
        /// What is missing.
        what: &'static str,
        /// The flag giving it.
        flag: &'static str,
    },
    /// Reading an answer from the terminal failed.
    #[error("cannot read the answer from the terminal: {0}")]
    Prompt(std::io::Error),
    /// A key cannot be right; nothing was sent.
    #[error("{0}; nothing was sent and nothing was written")]
    Key(KeyError),
    /// The API URL or another setting is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The server refused the login.
    #[error("{refused} The remote {name:?} was not added.")]
    Refused {
        /// The refusal.
        refused: LoginRefused,
        /// The remote.
        name: String,
    },
    /// The keys could not be checked because the server cannot be reached.
    #[error(
        "{0}, so the keys could not be checked and nothing was written (--no-check writes the \
         remote without checking)"
    )]
    Unreachable(String),
    /// The server answers, but not as the API.
    #[error(
        "{url} does not answer as a File Upload API v2 endpoint (it should end in /api/v2/): \
         {error}; nothing was written"
    )]
    NotApi {
        /// The URL.
        url: String,
        /// What went wrong.
        error: RemoteError,
    },
    /// The login failed another way.
    #[error("the login to {url} failed: {error}; nothing was written")]
    Login {
        /// The URL.
        url: String,
        /// What went wrong.
        error: RemoteError,
    },
    /// The file's text cannot be edited.
    #[error("cannot edit {path}: {message}")]
    Edit {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Writing the file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing to standard output failed.
    #[error("cannot print: {0}")]
    Print(std::io::Error),
}

/// Runs `yetifs config`.
pub async fn run(args: ConfigArgs) -> anyhow::Result<()> {
    let path = match args.config {
        Some(path) => path,
        None => default_config_path().ok_or(ConfigCmdError::NoPath)?,
    };
    let mut out = std::io::stdout().lock();
    match args.action {
        ConfigAction::Add(add_args) => add(&path, add_args, &mut out).await?,
        ConfigAction::List => list(&path, &mut out)?,
        ConfigAction::Show { name } => show(&path, &name, &mut out)?,
        ConfigAction::Remove { name } => remove(&path, &name, &mut out)?,
    }
    Ok(())
}

/// `config add`: everything is checked before the one login, and the login before writing.
async fn add(path: &Path, args: AddArgs, out: &mut impl Write) -> Result<(), ConfigCmdError> {
    check_name(&args.name)?;
    let (file, text) = ConfigFile::load_text(path)?;
    if file.remotes.contains_key(&args.name) && !args.force {
        return Err(ConfigCmdError::Exists {
            name: args.name,
            path: path.to_owned(),
        });
    }
    let entry = settings(&args)?;
    let asking = std::io::stdin().is_terminal();
    let api_url = match args.api_url {
        Some(url) => url,
        None if asking => ask_line("API URL (e.g. https://www.example.com/api/v2/): ")?,
        None => {
            return Err(ConfigCmdError::Missing {
                what: "API URL",
                flag: "--api-url",
            })
        }
    };
    let key1 = key_or_ask(args.key1, "key1", "--key1", asking)?;
    let key2 = key_or_ask(args.key2, "key2", "--key2", asking)?;
    check_keys(&key1, &key2).map_err(ConfigCmdError::Key)?;
    let mut config = ClientConfig::new(api_url.clone(), Credentials::keys(&key1, &key2));
    config.retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let client = Client::new(config).map_err(|e| ConfigCmdError::Invalid(e.to_string()))?;
    let account = if args.no_check {
        None
    } else {
        Some(check_login(&client, &api_url, &args.name).await?)
    };
    let entry = RemoteEntry {
        api_url: Some(api_url.clone()),
        key1: Some(key1),
        key2: Some(key2),
        ..entry
    };
    let mut doc = editable(path, &text)?;
    put_remote(path, &mut doc, &args.name, &entry)?;
    write_private(path, &doc.to_string())?;
    let checked = match account {
        Some(account) => format!("keys checked: account {account}"),
        None => "keys not checked (--no-check)".to_owned(),
    };
    writeln!(
        out,
        "added remote {} ({api_url}, {checked}) to {}; mount it with: yetifs mount {}: MOUNTPOINT",
        args.name,
        path.display(),
        args.name
    )
    .map_err(ConfigCmdError::Print)
}

/// The optional settings of `add`, checked as a mount would read them.
fn settings(args: &AddArgs) -> Result<RemoteEntry, ConfigCmdError> {
    for size in [&args.cache_size, &args.memory_limit].into_iter().flatten() {
        parse_size(size)?;
    }
    let options = (!args.options.is_empty()).then(|| args.options.join(","));
    if let Some(options) = &options {
        MountOptions::parse([options.as_str()])?;
    }
    Ok(RemoteEntry {
        cache_dir: args.cache_dir.clone(),
        cache_size: args.cache_size.clone(),
        dir_ttl: args.dir_ttl,
        memory_limit: args.memory_limit.clone(),
        options,
        ..RemoteEntry::default()
    })
}

/// Refuses names that `yetifs mount NAME:` or a shell would make awkward.
pub(crate) fn check_name(name: &str) -> Result<(), ConfigCmdError> {
    let fine = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if name.is_empty() || name.starts_with('-') || !name.chars().all(fine) {
        return Err(ConfigCmdError::BadName(name.to_owned()));
    }
    Ok(())
}

/// A key from the flags or the environment, else asked for without echo on a terminal.
fn key_or_ask(
    given: Option<String>,
    which: &'static str,
    flag: &'static str,
    asking: bool,
) -> Result<String, ConfigCmdError> {
    match given {
        Some(key) => Ok(key),
        None if asking => rpassword::prompt_password(format!(
            "{which} (64 characters, from the account settings page; not shown): "
        ))
        .map_err(ConfigCmdError::Prompt),
        None => Err(ConfigCmdError::Missing { what: which, flag }),
    }
}

/// One line from the terminal, prompted on standard error.
fn ask_line(prompt: &str) -> Result<String, ConfigCmdError> {
    let mut err = std::io::stderr().lock();
    write!(err, "{prompt}")
        .and_then(|()| err.flush())
        .map_err(ConfigCmdError::Prompt)?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(ConfigCmdError::Prompt)?;
    Ok(line.trim().to_owned())
}

/// Logs in once (the client does not retry) and returns the account id.
async fn check_login(client: &Client, url: &str, name: &str) -> Result<u64, ConfigCmdError> {
    match tokio::time::timeout(CHECK_TIMEOUT, client.authorize()).await {
        Err(_) => Err(ConfigCmdError::Unreachable(format!(
            "the server at {url} did not answer within {}s",
            CHECK_TIMEOUT.as_secs()
        ))),
        Ok(Ok(account)) => Ok(account),
        Ok(Err(RemoteError::Auth(message))) => Err(ConfigCmdError::Refused {
            refused: LoginRefused::new(client, url, &message, "this check"),
            name: name.to_owned(),
        }),
        Ok(Err(RemoteError::Unreachable(message) | RemoteError::Transport(message))) => Err(
            ConfigCmdError::Unreachable(format!("cannot reach the server at {url}: {message}")),
        ),
        Ok(Err(
            error @ (RemoteError::Http { .. }
            | RemoteError::Unparseable(_)
            | RemoteError::Unsupported(_)),
        )) => Err(ConfigCmdError::NotApi {
            url: url.to_owned(),
            error,
        }),
        Ok(Err(error)) => Err(ConfigCmdError::Login {
            url: url.to_owned(),
            error,
        }),
    }
}

/// The file's text as an editable document (it has already been read as a configuration).
fn editable(path: &Path, text: &str) -> Result<DocumentMut, ConfigCmdError> {
    text.parse()
        .map_err(|e: toml_edit::TomlError| ConfigCmdError::Edit {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })
}

/// The `[remotes]` table of `doc`, made if missing.
fn remotes_table<'d>(
    path: &Path,
    doc: &'d mut DocumentMut,
) -> Result<&'d mut Table, ConfigCmdError> {
    let item = doc.entry("remotes").or_insert_with(|| {
        let mut table = Table::new();
        table.set_implicit(true);
        Item::Table(table)
    });
    item.as_table_mut().ok_or_else(|| ConfigCmdError::Edit {
        path: path.to_owned(),
        message: "`remotes` is not written as [remotes.NAME] tables".to_owned(),
    })
}

/// Puts `[remotes.NAME]` into `doc`, in the place and under the comments of the one it
/// replaces, if any.
fn put_remote(
    path: &Path,
    doc: &mut DocumentMut,
    name: &str,
    entry: &RemoteEntry,
) -> Result<(), ConfigCmdError> {
    // A file of comments only holds them after its (no) tables: keep them above the first.
    let comments = if doc.as_table().is_empty() {
        let text = doc.trailing().as_str().unwrap_or_default().to_owned();
        doc.set_trailing("");
        text
    } else {
        String::new()
    };
    let remotes = remotes_table(path, doc)?;
    let mut table = Table::new();
    table.decor_mut().set_prefix(comments);
    let mut set = |key: &str, value: toml_edit::Value| {
        table.insert(key, Item::Value(value));
    };
    for (key, value) in [
        ("api_url", &entry.api_url),
        ("key1", &entry.key1),
        ("key2", &entry.key2),
    ] {
        if let Some(value) = value {
            set(key, value.as_str().into());
        }
    }
    if let Some(dir) = &entry.cache_dir {
        set("cache_dir", dir.to_string_lossy().as_ref().into());
    }
    if let Some(size) = &entry.cache_size {
        set("cache_size", size.as_str().into());
    }
    if let Some(ttl) = entry.dir_ttl {
        set("dir_ttl", i64::try_from(ttl).unwrap_or(i64::MAX).into());
    }
    if let Some(limit) = &entry.memory_limit {
        set("memory_limit", limit.as_str().into());
    }
    if let Some(options) = &entry.options {
        set("options", options.as_str().into());
    }
    if let Some(old) = remotes.get(name).and_then(Item::as_table) {
        *table.decor_mut() = old.decor().clone();
        if let Some(position) = old.position() {
            table.set_position(Some(position));
        }
    }
    remotes.insert(name, Item::Table(table));
    Ok(())
}

/// Writes `text` to `path` readable and writable by its owner only, whatever the umask:
/// through a new file of mode 0600 in the same directory, renamed over the old one (the target
/// of a symlink, if `path` is one). A missing directory is made with mode 0700.
fn write_private(path: &Path, text: &str) -> Result<(), ConfigCmdError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| ConfigCmdError::Write { path, source }
    };
    let is_link = path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink());
    let target = if is_link {
        std::fs::canonicalize(path).map_err(write_error(path))?
    } else {
        path.to_owned()
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&dir)
            .and_then(|()| {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(DIR_MODE))
            })
            .map_err(write_error(&dir))?;
    }
    let private = std::fs::Permissions::from_mode(FILE_MODE);
    let mut file = tempfile::Builder::new()
        .prefix(".config.toml.")
        .permissions(private.clone())
        .tempfile_in(&dir)
        .map_err(write_error(&dir))?;
    file.as_file()
        .set_permissions(private)
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.as_file().sync_all())
        .map_err(write_error(&target))?;
    file.persist(&target)
        .map_err(|e| write_error(&target)(e.error))?;
    Ok(())
}

/// `config list`: one line per remote, its name and API URL.
fn list(path: &Path, out: &mut impl Write) -> Result<(), ConfigCmdError> {
    let file = ConfigFile::load(path)?;
    if file.remotes.is_empty() {
        eprintln!(
            "no remotes in {}; add one with: yetifs config add NAME",
            path.display()
        );
        return Ok(());
    }
    let width = file.remotes.keys().map(|n| n.chars().count()).max();
    for (name, remote) in &file.remotes {
        let url = remote.api_url.as_deref().unwrap_or("(no api_url)");
        writeln!(out, "{name:<width$}  {url}", width = width.unwrap_or(0))
            .map_err(ConfigCmdError::Print)?;
    }
    Ok(())
}

/// A key as `show` prints it: its first characters and `…`, or only `…` for a key too short to
/// spare any.
fn redacted(key: &str) -> String {
    let length = key.chars().count();
    let shown: String = if length >= 4 * SHOWN_KEY_CHARS {
        key.chars().take(SHOWN_KEY_CHARS).collect()
    } else {
        String::new()
    };
    format!("{shown}… ({length} characters)")
}

/// `config show NAME`: the remote's settings, keys redacted.
fn show(path: &Path, name: &str, out: &mut impl Write) -> Result<(), ConfigCmdError> {
    let file = ConfigFile::load(path)?;
    let remote = file.remote(name, path)?;
    let mut lines = vec![("api_url", remote.api_url.clone())];
    lines.push(("key1", remote.key1.as_deref().map(redacted)));
    lines.push(("key2", remote.key2.as_deref().map(redacted)));
    lines.push((
        "cache_dir",
        remote.cache_dir.map(|d| d.display().to_string()),
    ));
    lines.push(("cache_size", remote.cache_size));
    lines.push(("dir_ttl", remote.dir_ttl.map(|t| format!("{t} s"))));
    lines.push(("memory_limit", remote.memory_limit));
    lines.push(("options", remote.options));
    writeln!(out, "{name}").map_err(ConfigCmdError::Print)?;
    for (key, value) in lines {
        if let Some(value) = value {
            writeln!(out, "  {key:<13}{value}").map_err(ConfigCmdError::Print)?;
        }
    }
    Ok(())
}

/// `config remove NAME`.
fn remove(path: &Path, name: &str, out: &mut impl Write) -> Result<(), ConfigCmdError> {
    let (file, text) = ConfigFile::load_text(path)?;
    file.remote(name, path)?;
    let mut doc = editable(path, &text)?;
    remotes_table(path, &mut doc)?.remove(name);
    write_private(path, &doc.to_string())?;
    writeln!(out, "removed remote {name} from {}", path.display()).map_err(ConfigCmdError::Print)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entry() -> RemoteEntry {
        RemoteEntry {
            api_url: Some("https://h/api/v2/".into()),
            key1: Some("a".repeat(64)),
            key2: Some("b".repeat(64)),
            cache_size: Some("20GiB".into()),
            dir_ttl: Some(60),
            ..RemoteEntry::default()
        }
    }

    #[test]
    fn a_new_remote_keeps_the_file_s_comments_and_other_remotes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text =
            "# my remotes\n\n[remotes.home]\n# the old box\napi_url = \"https://o/api/v2/\"\n";
        let mut doc = editable(&path, text).unwrap();
        put_remote(&path, &mut doc, "work", &entry()).unwrap();
        let written = doc.to_string();
        assert!(written.starts_with(text), "{written}");
        let file: ConfigFile = toml::from_str(&written).unwrap();
        assert_eq!(file.remotes["work"], entry());
        assert_eq!(
            file.remotes["home"].api_url.as_deref(),
            Some("https://o/api/v2/")
        );
    }

    #[test]
    fn the_comments_of_a_file_without_remotes_stay_at_its_top() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut doc = editable(&path, "# my remotes\n").unwrap();
        put_remote(&path, &mut doc, "work", &entry()).unwrap();
        let written = doc.to_string();
        assert!(
            written.starts_with("# my remotes\n[remotes.work]\n"),
            "{written}"
        );
    }

    #[test]
    fn a_replaced_remote_stays_in_its_place_under_its_comment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = "# work\n[remotes.work]\napi_url = \"x\"\n\n[remotes.home]\napi_url = \"y\"\n";
        let mut doc = editable(&path, text).unwrap();
        put_remote(&path, &mut doc, "work", &entry()).unwrap();
        let written = doc.to_string();
        assert!(written.starts_with("# work\n[remotes.work]\n"), "{written}");
        assert!(written.find("work]").unwrap() < written.find("home]").unwrap());
    }

    #[test]
    fn the_file_is_written_0600_and_its_new_directory_0700() {
        // A permissive umask is tried on the binary (tests/config_cmd.rs): changing it here
        // would change it for every test thread of this process.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("yetifs").join("config.toml");
        write_private(&path, "[remotes]\n").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[remotes]\n");
    }

    #[test]
    fn writing_through_a_symlink_replaces_the_file_it_points_to() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        std::fs::write(&real, "").unwrap();
        let link = dir.path().join("config.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_private(&link, "[remotes]\n").unwrap();
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "[remotes]\n");
    }

    #[test]
    fn names_must_be_usable_as_name_colon() {
        for good in ["work", "home-2", "a.b", "x_y"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a:b", "a b", "ü"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shown_keys_keep_four_characters_of_a_long_key_and_none_of_a_short_one() {
        assert_eq!(
            redacted(&format!("abcd{}", "x".repeat(60))),
            "abcd… (64 characters)"
        );
        assert_eq!(redacted("short"), "… (5 characters)");
    }
}
