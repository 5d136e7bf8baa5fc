//! Where a path given to `yetifs fetch` or `yetifs share` is: inside a running mount, whose
//! control socket the command then asks (the mount holds the login, and shows the change at
//! once), or `NAME:path` of a remote of config.toml, whose account the command then logs into
//! itself. As with scp and rsync, a colon before any slash makes a remote: `./a:b` is the local
//! `a:b`.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::api::keys::LoginRefused;
use crate::api::{Client, ClientConfig, Credentials};
use crate::cache::accounts;
use crate::cli::config::check_name;
use crate::cli::mount::cache_key;
use crate::cli::settings::{default_config_path, ConfigFile, MountFlags};
use crate::control::hosted::mount_of;
use crate::host::DirectAccount;
use crate::remote::RemoteError;

/// Where a path is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// Inside the mount on `mountpoint`, at `path` relative to its root (`""`: the root).
    Mounted {
        /// The mount's canonical mountpoint.
        mountpoint: PathBuf,
        /// The path inside it, `/`-separated.
        path: String,
    },
    /// `path` of the account of remote `remote`.
    Remote {
        /// The remote's name in config.toml.
        remote: String,
        /// The path in the account, `/`-separated (`""`: the root).
        path: String,
    },
}

impl Place {
    /// Where `given` is: `NAME:path`, or a path inside a running mount. Errors do not repeat
    /// the path: the caller names it.
    pub fn of(given: &str) -> anyhow::Result<Place> {
        if let Some((remote, path)) = remote_form(given) {
            return Ok(Place::Remote {
                remote: remote.to_owned(),
                path: path.trim_matches('/').to_owned(),
            });
        }
        let canonical = Path::new(given).canonicalize()?;
        let Some(mountpoint) = mount_of(&canonical) else {
            bail!("not inside a yetifs mount (for a remote of config.toml, write NAME:path)");
        };
        let inside = canonical
            .strip_prefix(&mountpoint)
            .with_context(|| format!("not inside {}", mountpoint.display()))?;
        let path = inside.to_str().context("not valid UTF-8")?.to_owned();
        Ok(Place::Mounted { mountpoint, path })
    }

    /// How `path`, a path of the same mount or account, is shown to the user.
    pub fn show(&self, path: &str) -> String {
        match self {
            Place::Mounted { mountpoint, .. } => mountpoint.join(path).display().to_string(),
            Place::Remote { remote, .. } => format!("{remote}:{path}"),
        }
    }
}

/// `NAME:path` split in two, if `given` is written so.
fn remote_form(given: &str) -> Option<(&str, &str)> {
    let (name, path) = given.split_once(':')?;
    (!name.contains('/') && check_name(name).is_ok()).then_some((name, path))
}

/// The account of remote `name` of the configuration file `config` (default:
/// `~/.config/yetifs/config.toml`). When the cache directory remembers which account the
/// remote's URL and keys log into, nothing is sent yet, so that what is remembered of the host
/// (its lack of remote upload) costs no request; otherwise this logs in to find out. The login
/// ends the account's other sessions; running mounts log in again by themselves.
pub async fn open_remote(name: &str, config: Option<&Path>) -> anyhow::Result<DirectAccount> {
    let config: PathBuf = match config {
        Some(path) => path.to_path_buf(),
        None => default_config_path()
            .context("no configuration file: give --config FILE or set HOME")?,
    };
    let entry = ConfigFile::load(&config)?.remote(name, &config)?;
    let settings = MountFlags::default().resolve(Some(&entry))?;
    let (url, key1, key2) = (&settings.api_url, &settings.key1, &settings.key2);
    let mut client_config = ClientConfig::new(url.clone(), Credentials::keys(key1, key2));
    client_config.timeouts.connect = settings.connect_timeout;
    let client = Client::new(client_config).map_err(|e| match e {
        RemoteError::InvalidInput(message) => anyhow::anyhow!(message),
        other => anyhow::anyhow!("cannot use the API URL of remote {name}: {other}"),
    })?;
    let account = match accounts::recall(&settings.cache_dir, url, key1, key2) {
        Some(account) => account,
        None => {
            let account = client.authorize().await.map_err(|e| match e {
                RemoteError::Auth(message) => {
                    LoginRefused::new(&client, url, &message, "this command").into()
                }
                other => anyhow::anyhow!("cannot log into remote {name} at {url}: {other}"),
            })?;
            if let Err(e) = accounts::remember(&settings.cache_dir, url, key1, key2, account) {
                log::warn!("cannot remember the account of remote {name}: {e}");
            }
            account
        }
    };
    let account_dir = settings.cache_dir.join(cache_key(url, account));
    Ok(DirectAccount::new(client, &account_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_colon_before_any_slash_makes_a_remote() {
        assert_eq!(remote_form("work:Docs/a"), Some(("work", "Docs/a")));
        assert_eq!(remote_form("work:"), Some(("work", "")));
        assert_eq!(remote_form("./work:Docs"), None);
        assert_eq!(remote_form("/mnt/a:b"), None);
        assert_eq!(remote_form("Docs"), None);
        assert_eq!(remote_form("-x:y"), None);
    }

    #[test]
    fn a_path_outside_every_mount_is_refused_with_the_remote_form_to_use() {
        let dir = tempfile::tempdir().unwrap();
        let given = dir.path().display().to_string();
        let err = Place::of(&given).unwrap_err().to_string();
        assert!(err.contains("not inside a yetifs mount"), "{err}");
        assert!(err.contains("NAME:path"), "{err}");
        assert_eq!(
            Place::of("work:/Docs/").unwrap(),
            Place::Remote {
                remote: "work".into(),
                path: "Docs".into()
            }
        );
    }
}
