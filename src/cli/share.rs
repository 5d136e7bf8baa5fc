//! `yetifs share PATH...`: each file's share link and short link code, each folder's page and
//! sharing level, the same facts a mount shows as `user.yetifs.*` attributes, without
//! getfattr; `--public`, `--unlisted`, `--private`, `--password` and `--no-password` change a
//! folder's sharing. Inside a mount the links are read from those attributes and changes go
//! through the mount's control socket (so that the mount shows them at once); for
//! `NAME:path` of a remote of config.toml the command logs in itself.
use std::collections::HashMap;
use std::ffi::CString;
use std::io::{self, BufRead, IsTerminal};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::cli::place::{open_remote, Place};
use crate::control::hosted;
use crate::host::share::{self, md5_hex, Level, Password, ShareChange, ShareInfo, ShareRequest};
use crate::host::{DirectAccount, Item};

/// Arguments of `yetifs share`.
#[derive(Debug, clap::Args)]
pub struct ShareArgs {
    /// Files or folders inside a mount, or NAME:path of a remote of config.toml.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<String>,
    /// Make the folders public: anyone may see them, and the site's search lists them.
    #[arg(long, conflicts_with_all = ["unlisted", "private"])]
    pub public: bool,
    /// Make the folders unlisted: anyone with the link may see them.
    #[arg(long, conflicts_with = "private")]
    pub unlisted: bool,
    /// Make the folders private: their owner only.
    #[arg(long)]
    pub private: bool,
    /// Give the folders an access password: asked for on the terminal without echo, or read
    /// as the first line of standard input when that is not a terminal (never from the command
    /// line). The server gets its MD5.
    #[arg(long, conflicts_with = "no_password")]
    pub password: bool,
    /// Take the folders' access password away.
    #[arg(long)]
    pub no_password: bool,
    /// Print a JSON array, one object per path, for scripts.
    #[arg(long)]
    pub json: bool,
    /// The configuration file with named remotes, for NAME:path (default
    /// `~/.config/yetifs/config.toml`).
    #[arg(long, env = "YETIFS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ShareArgs {
    /// The sharing level the flags ask for.
    fn level(&self) -> Option<Level> {
        [
            (self.public, Level::Public),
            (self.unlisted, Level::Unlisted),
            (self.private, Level::Private),
        ]
        .into_iter()
        .find_map(|(asked, level)| asked.then_some(level))
    }
}

/// The exit code when a path has no share link or its change failed.
pub const FAILED: i32 = 1;

/// What one path shares, as printed.
#[derive(Serialize)]
struct Shared {
    /// The path as given.
    path: String,
    #[serde(flatten)]
    info: ShareInfo,
}

/// Runs `yetifs share`; returns the exit code: 0 when every path was shown (and changed).
pub async fn run(args: ShareArgs) -> anyhow::Result<i32> {
    let password = if args.password {
        Some(Password::Set(md5_hex(&read_password()?)))
    } else if args.no_password {
        Some(Password::Remove)
    } else {
        None
    };
    let change = ShareChange {
        level: args.level(),
        password,
    };
    let mut remotes: HashMap<String, DirectAccount> = HashMap::new();
    let mut shared = Vec::new();
    let mut code = 0;
    for given in &args.paths {
        match one(given, &change, args.config.as_deref(), &mut remotes).await {
            Ok(info) => shared.push(Shared {
                path: given.clone(),
                info,
            }),
            Err(e) => {
                eprintln!("yetifs: {given}: {e:#}");
                code = FAILED;
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&shared)?);
    } else {
        for one in &shared {
            println!("{}", line(one));
        }
    }
    Ok(code)
}

/// What `given` shares, after `change` if it changes anything.
async fn one(
    given: &str,
    change: &ShareChange,
    config: Option<&Path>,
    remotes: &mut HashMap<String, DirectAccount>,
) -> anyhow::Result<ShareInfo> {
    match Place::of(given)? {
        Place::Mounted { mountpoint, path } => {
            if change.is_empty() {
                return from_attributes(Path::new(given), path.is_empty());
            }
            if !Path::new(given).is_dir() {
                bail!(NOT_A_FOLDER);
            }
            let request = ShareRequest {
                path,
                change: change.clone(),
            };
            hosted::share(&mountpoint, &request)
                .await?
                .map_err(anyhow::Error::msg)
        }
        Place::Remote { remote, path } => {
            if !remotes.contains_key(&remote) {
                let account = open_remote(&remote, config).await?;
                remotes.insert(remote.clone(), account);
            }
            let account = remotes
                .get(&remote)
                .context("the remote's account was just opened")?;
            let item = account.item(&path).await.map_err(anyhow::Error::msg)?;
            match (item, change.is_empty()) {
                (Item::Root, _) => bail!(NO_ROOT_LINK),
                (Item::File(_), false) => bail!(NOT_A_FOLDER),
                (Item::File(file), true) => Ok(ShareInfo::File {
                    id: file.id,
                    url: file.url_file,
                    short_url: Some(file.short_url).filter(|s| !s.is_empty()),
                    downloads: Some(file.downloads),
                }),
                // A listing does not say whether a folder has a password.
                (Item::Folder(folder), true) => Ok(share::folder_info(&folder, false)),
                (Item::Folder(_), false) => share::change(account, &path, change)
                    .await
                    .map_err(anyhow::Error::msg),
            }
        }
    }
}

/// Why a file's sharing is not changed.
const NOT_A_FOLDER: &str =
    "not a folder: the API sets the sharing level and password of folders only";
/// Why the root shows no link.
const NO_ROOT_LINK: &str = "the root of the account has no share link: name a file or folder";

/// What the `user.yetifs.*` attributes of `path` (inside a mount; `root`: its root) say.
fn from_attributes(path: &Path, root: bool) -> anyhow::Result<ShareInfo> {
    let Some(id) = attribute(path, "user.yetifs.id")? else {
        if root {
            bail!(NO_ROOT_LINK);
        }
        bail!("no share link: it is not on the server yet (see `yetifs status`)");
    };
    let id = id
        .parse()
        .with_context(|| format!("user.yetifs.id is not an id: {id:?}"))?;
    let url = attribute(path, "user.yetifs.url")?;
    if let Some(level) = attribute(path, "user.yetifs.public")? {
        return Ok(ShareInfo::Folder {
            id,
            url,
            level: level.parse().ok().and_then(Level::from_api),
            password: None,
        });
    }
    Ok(ShareInfo::File {
        id,
        url,
        short_url: attribute(path, "user.yetifs.short_url")?,
        downloads: attribute(path, "user.yetifs.downloads")?.and_then(|n| n.parse().ok()),
    })
}

/// The largest attribute value read.
const ATTRIBUTE_MAX: usize = 64 * 1024;

/// The extended attribute `name` of `path`; `None` when it has none of that name.
fn attribute(path: &Path, name: &str) -> io::Result<Option<String>> {
    let c_path = CString::new(path.as_os_str().as_bytes())?;
    let c_name = CString::new(name)?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: both strings are NUL-terminated and live across the call; the buffer is
        // valid for writes of `buf.len()` bytes.
        let read = unsafe {
            libc::getxattr(
                c_path.as_ptr(),
                c_name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if let Ok(read) = usize::try_from(read) {
            buf.truncate(read);
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            // A filesystem without such attributes has none of them either.
            Some(libc::ENODATA | libc::EOPNOTSUPP) => return Ok(None),
            Some(libc::ERANGE) if buf.len() < ATTRIBUTE_MAX => buf.resize(buf.len() * 4, 0),
            _ => return Err(error),
        }
    }
}

/// The access password to give: asked for twice on a terminal, else the first line of
/// standard input.
fn read_password() -> anyhow::Result<String> {
    let password = if io::stdin().is_terminal() {
        let first = rpassword::prompt_password("access password for the folders (not shown): ")
            .context("cannot read the password")?;
        let again = rpassword::prompt_password("again: ").context("cannot read the password")?;
        if first != again {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        let mut line = String::new();
        io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.is_empty() {
        bail!("the password is empty; --no-password takes a folder's password away");
    }
    Ok(password)
}

/// One path's line: `PATH: URL (short code b, 3 downloads)` or `PATH: URL (public, password
/// set)`.
fn line(shared: &Shared) -> String {
    let (url, details) = match &shared.info {
        ShareInfo::File {
            url,
            short_url,
            downloads,
            ..
        } => {
            let mut details = Vec::new();
            if let Some(code) = short_url {
                details.push(format!("short code {code}"));
            }
            if let Some(n) = downloads {
                details.push(format!("{n} download{}", if *n == 1 { "" } else { "s" }));
            }
            (url, details)
        }
        ShareInfo::Folder {
            url,
            level,
            password,
            ..
        } => {
            let mut details = vec![level
                .map_or("sharing level unknown", Level::word)
                .to_owned()];
            match password {
                Some(true) => details.push("password set".into()),
                Some(false) => details.push("no password".into()),
                None => {}
            }
            (url, details)
        }
    };
    format!(
        "{}: {} ({})",
        shared.path,
        url.as_deref().unwrap_or("no link"),
        details.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_the_link_and_what_goes_with_it() {
        let file = Shared {
            path: "/m/a.txt".into(),
            info: ShareInfo::File {
                id: 1,
                url: Some("http://h/b".into()),
                short_url: Some("b".into()),
                downloads: Some(1),
            },
        };
        assert_eq!(
            line(&file),
            "/m/a.txt: http://h/b (short code b, 1 download)"
        );
        let folder = Shared {
            path: "/m/Docs".into(),
            info: ShareInfo::Folder {
                id: 2,
                url: Some("http://h/folder/2/Docs".into()),
                level: Some(Level::Unlisted),
                password: Some(true),
            },
        };
        assert_eq!(
            line(&folder),
            "/m/Docs: http://h/folder/2/Docs (unlisted, password set)"
        );
    }

    #[test]
    fn one_flag_names_the_level() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Line {
            #[command(flatten)]
            share: ShareArgs,
        }
        let level = |flags: &[&str]| {
            let argv = ["share"].iter().chain(flags).chain(&["x"]);
            Line::try_parse_from(argv).map(|line| line.share.level())
        };
        assert_eq!(level(&["--unlisted"]).unwrap(), Some(Level::Unlisted));
        assert_eq!(level(&[]).unwrap(), None);
        assert!(level(&["--public", "--private"]).is_err());
        assert!(level(&["--password", "--no-password"]).is_err());
    }

    #[test]
    fn a_missing_attribute_is_none_and_a_missing_file_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(attribute(&file, "user.yetifs.nothing").unwrap(), None);
        assert!(attribute(&dir.path().join("gone"), "user.yetifs.id").is_err());
    }
}
