//! `yetifs mount` and `yetifs demo`: settle the settings, check the server and the mountpoint
//! before touching the kernel (so a bad URL, bad keys, an unreachable server or a busy
//! mountpoint end in a clear message and an exit code, never a hang), build the stack (client,
//! caches, core), mount, and stay until unmounted or signalled.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::signal::unix::{signal, SignalKind};

use crate::api::keys::LoginRefused;
use crate::api::{redact, Client, ClientConfig, Credentials, Secret};
use crate::cache::accounts;
use crate::cache::private;
use crate::cache::{BlockCache, BlockCacheConfig, MemoryBudget, MetaStore};
use crate::cli::progress::Progress;
use crate::cli::settings::{default_config_path, ConfigFile, MountFlags, MountSettings};
use crate::content::{Content, ContentConfig};
use crate::control::hosted::{self, Fetcher, Sharer};
use crate::control::socket::{ControlServer, Handlers, SyncProgress};
use crate::control::{merge_uploads, CacheUse, ServerState, StatusReport, TrafficStats};
use crate::fs::{Core, FsOptions, Owner};
use crate::fuse::{self, Errors, MountHandle, Traffic};
use crate::host::MountedAccount;
use crate::remote::RemoteError;
use crate::staging::{self, Staging};
use crate::sync::clock::now_ms;
use crate::system::pid_file::PidFile;

/// Size of the cached blocks: large enough for streaming, small enough for random reads.
const BLOCK_SIZE: u64 = 1 << 20;
/// Ranged reads a sequential reader's read-ahead runs at once: one connection does not carry
/// what the FUSE side can take, on loopback nor over a long round trip.
const READ_STREAMS: usize = 4;
/// The log of a mount started with `--daemon`, in the cache directory.
pub const LOG_FILE: &str = "yetifs.log";
/// How long the first contact with the server may take before the mount gives up.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(30);

/// Arguments of `yetifs mount`.
#[derive(Debug, clap::Args)]
pub struct MountArgs {
    /// `NAME:` of a remote in config.toml (optional), then the mountpoint.
    #[arg(value_name = "[NAME:] MOUNTPOINT", num_args = 1..=2, required = true)]
    pub targets: Vec<String>,
    /// The API base URL, e.g. `https://www.example.com/api/v2/`.
    #[arg(long, env = "YETIFS_API_URL")]
    pub api_url: Option<String>,
    /// First API key (64 characters, from the account settings page).
    #[arg(long, env = "YETIFS_KEY1", hide_env_values = true)]
    pub key1: Option<String>,
    /// Second API key.
    #[arg(long, env = "YETIFS_KEY2", hide_env_values = true)]
    pub key2: Option<String>,
    /// The configuration file with named remotes (default `~/.config/yetifs/config.toml`).
    #[arg(long, env = "YETIFS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where cached content and metadata are kept [default: ~/.cache/yetifs, or
    /// $XDG_CACHE_HOME/yetifs]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Bound of the disk cache, e.g. `20GiB`; 0 keeps no content on disk [default: 10GiB]
    #[arg(long, value_name = "SIZE")]
    pub cache_size: Option<String>,
    /// Bound of the memory cache, e.g. `512MiB` [default: 256MiB]
    #[arg(long, value_name = "SIZE")]
    pub memory_cache: Option<String>,
    /// Seconds a directory listing is trusted before it is fetched again [default: 30]
    #[arg(long, value_name = "SECS")]
    pub dir_ttl: Option<u64>,
    /// Bound of memory caches and buffers together, e.g. `128MiB` [default: none]
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// Seconds opening a connection to the server may take [default: 15]
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<u64>,
    /// Write-back: `close` returns once the bytes are safe in the cache directory's journal,
    /// and the upload starts DELAY after the file's last change (`yetifs sync` waits for it)
    /// [default DELAY: 5s]
    #[arg(long, value_name = "DELAY", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub write_back: Option<String>,
    /// Uploads sent at once [default: 4]
    #[arg(long, value_name = "N")]
    pub transfers: Option<usize>,
    /// After mounting, walk the whole account in the background (listings and upload dates,
    /// kept in the cache directory), yielding to your own requests; `yetifs status` shows it
    #[arg(long)]
    pub prefetch_tree: bool,
    /// API calls in flight at most; below it the number adapts to the server [default: 64]
    #[arg(long, value_name = "N")]
    pub max_requests: Option<usize>,
    /// Mount read-only (as `-o ro`)
    #[arg(long)]
    pub read_only: bool,
    /// Let other local users use the mount (as `-o allow_other`; implies
    /// default_permissions: the kernel checks modes and owners)
    #[arg(long)]
    pub allow_other: bool,
    /// Mount over a directory that is not empty, hiding its files (as `-o nonempty`)
    #[arg(long)]
    pub allow_non_empty: bool,
    /// Mount options: ro, allow_other, default_permissions, no_default_permissions, nonempty,
    /// uid=N, gid=N (fstab-only options such as _netdev and x-systemd.* are accepted)
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Return once the mount is live and keep serving in the background.
    #[arg(long)]
    pub daemon: bool,
    /// Write the serving process's id to this file once the mount is live (removed at exit).
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
}

impl MountArgs {
    /// The mountpoint and the named remote, if one was given as `NAME:`.
    fn split_targets(&self) -> anyhow::Result<(Option<&str>, &Path)> {
        match self.targets.as_slice() {
            [mountpoint] => Ok((None, Path::new(mountpoint))),
            [name, mountpoint] => match name.strip_suffix(':') {
                Some(name) if !name.is_empty() => Ok((Some(name), Path::new(mountpoint))),
                _ => bail!("expected NAME: (with a colon) before the mountpoint, got {name:?}"),
            },
            _ => bail!("expected [NAME:] MOUNTPOINT"),
        }
    }

    /// The `-o` groups, with the long flags that stand for mount options added.
    fn options_with_flags(&self) -> Vec<String> {
        let mut groups = self.options.clone();
        let flags = [
            (self.read_only, "ro"),
            (self.allow_other, "allow_other"),
            (self.allow_non_empty, "nonempty"),
        ];
        groups.extend(
            flags
                .into_iter()
                .filter(|(given, _)| *given)
                .map(|(_, option)| option.to_owned()),
        );
        groups
    }

    /// Settles flags, environment and the named remote into the mount's settings.
    pub fn settings(&self) -> anyhow::Result<(MountSettings, PathBuf)> {
        let (name, mountpoint) = self.split_targets()?;
        let named = match name {
            Some(name) => {
                let path = self
                    .config
                    .clone()
                    .or_else(default_config_path)
                    .context("cannot find the configuration file: HOME is not set")?;
                Some(ConfigFile::load(&path)?.remote(name, &path)?)
            }
            None => None,
        };
        let flags = MountFlags {
            api_url: self.api_url.clone(),
            key1: self.key1.clone(),
            key2: self.key2.clone(),
            cache_dir: self.cache_dir.clone(),
            cache_size: self.cache_size.clone(),
            memory_cache: self.memory_cache.clone(),
            dir_ttl: self.dir_ttl,
            memory_limit: self.memory_limit.clone(),
            options: self.options_with_flags(),
            connect_timeout: self.connect_timeout,
            write_back: self.write_back.clone(),
            transfers: self.transfers,
            prefetch_tree: self.prefetch_tree,
            max_requests: self.max_requests,
        };
        Ok((flags.resolve(named.as_ref())?, mountpoint.to_path_buf()))
    }
}

/// Runs `yetifs mount` until the filesystem is unmounted or a signal arrives.
pub async fn run(args: MountArgs) -> anyhow::Result<()> {
    let (settings, mountpoint) = args.settings()?;
    let mounted = mount(&settings, &mountpoint).await?;
    let pid_file = match &args.pid_file {
        Some(path) => Some(
            PidFile::create(path)
                .with_context(|| format!("cannot write the pid file {}", path.display()))?,
        ),
        None => None,
    };
    let served = serve_until_done(mounted, &settings).await;
    drop(pid_file);
    served
}

/// A live mount and what it needs to shut down.
pub struct Mounted {
    handle: MountHandle,
    mountpoint: PathBuf,
    cache: Arc<BlockCache>,
    core: Arc<Core<Client>>,
    control: Option<ControlServer>,
}

/// What the control socket's report is made from.
struct Sources {
    mountpoint: String,
    server: String,
    mounted_ms: u64,
    memory_limit: u64,
    disk_limit: u64,
    core: Arc<Core<Client>>,
    cache: Arc<BlockCache>,
    client: Arc<Client>,
    content: Arc<Content<Client>>,
    traffic: Arc<Traffic>,
    errors: Arc<Errors>,
}

impl Sources {
    /// The status of the mount, now.
    fn report(&self) -> StatusReport {
        let metrics = self.client.metrics().snapshot();
        let cache = self.cache.stats();
        StatusReport {
            mountpoint: self.mountpoint.clone(),
            server: self.server.clone(),
            pid: std::process::id(),
            mounted_ms: self.mounted_ms,
            now_ms: now_ms(),
            server_state: ServerState {
                online: metrics.online,
                last_answer_ms: metrics.last_answer_ms,
                last_failure: metrics.last_failure.clone(),
            },
            uploads: merge_uploads(self.core.pending_upload_list(), &metrics),
            cache: CacheUse {
                memory_bytes: cache.memory_bytes,
                memory_limit: self.memory_limit,
                disk_bytes: cache.disk_bytes,
                disk_limit: self.disk_limit,
                hits: cache.hits,
                misses: cache.misses,
                evictions: cache.evictions,
            },
            traffic: TrafficStats {
                bytes_read: self.traffic.bytes_read(),
                bytes_written: self.traffic.bytes_written(),
                bytes_fetched: self.content.stats().bytes_fetched,
            },
            token: metrics.token,
            requests: self.client.concurrency(),
            prefetch: self.core.tree_progress(),
            api: metrics.endpoints,
            errors: self.errors.counts(),
        }
    }
}

/// The API client the mount talks through, configured from the settings.
fn api_client(settings: &MountSettings) -> anyhow::Result<Client> {
    let credentials = Credentials::Keys {
        key1: Secret::new(settings.key1.clone()),
        key2: Secret::new(settings.key2.clone()),
    };
    let mut config = ClientConfig::new(settings.api_url.clone(), credentials);
    config.timeouts.connect = settings.connect_timeout;
    config.concurrency.max = settings.max_requests;
    config.concurrency.initial = config.concurrency.initial.min(settings.max_requests);
    config.pool_max_idle_per_host = settings.max_requests;
    Client::new(config).map_err(|e| match e {
        RemoteError::InvalidInput(message) => anyhow::anyhow!(message),
        other => anyhow::anyhow!("cannot use the API URL: {other}"),
    })
}

/// The account the keys log into, and why the server cannot be reached if it cannot (then the
/// account is the one remembered from an earlier mount, and the mount starts offline).
async fn reach_account(
    client: &Client,
    settings: &MountSettings,
) -> anyhow::Result<(u64, Option<String>)> {
    Ok(match preflight(client, &settings.api_url).await? {
        Reach::Account(account) => {
            let (url, k1, k2) = (&settings.api_url, &settings.key1, &settings.key2);
            if let Err(e) = accounts::remember(&settings.cache_dir, url, k1, k2, account) {
                log::warn!("cannot remember the account for offline mounts: {e}");
            }
            (account, None)
        }
        Reach::Unreachable(why) => {
            let (url, k1, k2) = (&settings.api_url, &settings.key1, &settings.key2);
            match accounts::recall(&settings.cache_dir, url, k1, k2) {
                Some(account) => (account, Some(why)),
                None => bail!("{why}"),
            }
        }
    })
}

/// The memory cache's bound and the read-ahead windows' share of `--memory-limit`, if set.
fn memory_split(settings: &MountSettings) -> anyhow::Result<(u64, Option<u64>)> {
    Ok(match settings.memory_limit {
        Some(limit) => {
            let budget = MemoryBudget::split(limit, BLOCK_SIZE, settings.cache_size > 0)?;
            (
                budget.cache.min(settings.memory_cache),
                Some(budget.windows),
            )
        }
        None => (settings.memory_cache, None),
    })
}

/// Makes the cache directory private to its owner (see `cache::private`), saying what had to
/// be tightened.
async fn make_cache_private(settings: &MountSettings, account_key: String) -> anyhow::Result<()> {
    let cache_dir = settings.cache_dir.clone();
    let tightened = tokio::task::spawn_blocking(move || {
        let accounts = [account_key.as_str(), accounts::DIR_NAME];
        private::tighten_cache(&cache_dir, &accounts, &[LOG_FILE])
    })
    .await?;
    match tightened {
        Ok(0) => {}
        Ok(n) => log::warn!(
            "{n} file(s) and folder(s) of the cache in {} could be read by other users; they \
             are private now",
            settings.cache_dir.display()
        ),
        Err(e) => bail!(
            "cannot make the cache in {} private to its owner: {e}",
            settings.cache_dir.display()
        ),
    }
    Ok(())
}

/// Who owns every item: `-o uid=,gid=`, else the mounting user.
fn owner(settings: &MountSettings) -> Owner {
    Owner {
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        uid: settings
            .options
            .uid
            .unwrap_or_else(|| unsafe { libc::getuid() }),
        gid: settings
            .options
            .gid
            .unwrap_or_else(|| unsafe { libc::getgid() }),
    }
}

/// Starts the control socket `yetifs status`, `sync`, `fetch` and `share` reach the mount
/// through; a mount without one still serves files.
fn start_control(
    canonical: &Path,
    sources: Sources,
    fetch: Fetcher,
    share: Sharer,
) -> Option<ControlServer> {
    let syncing = Arc::clone(&sources.core);
    let handlers = Handlers {
        report: Arc::new(move || sources.report()),
        sync: Arc::new(move |path: Option<String>, progress| {
            let core = Arc::clone(&syncing);
            Box::pin(async move {
                core.sync(path.as_deref(), |done, total| {
                    progress.send_replace(SyncProgress { done, total });
                })
                .await
            })
        }),
        fetch,
        share,
    };
    match ControlServer::start(canonical, handlers) {
        Ok(control) => {
            log::debug!("control socket: {}", control.path().display());
            Some(control)
        }
        Err(e) => {
            log::warn!("no control socket, `yetifs status` will not answer: {e}");
            None
        }
    }
}

/// Checks the mountpoint and the server, builds the stack and mounts it.
pub async fn mount(settings: &MountSettings, mountpoint: &Path) -> anyhow::Result<Mounted> {
    let canonical = check_mountpoint(mountpoint, settings.options.nonempty)?;
    private::private_umask();
    let client = api_client(settings)?;
    let (account, offline) = reach_account(&client, settings).await?;
    let (memory_bytes, window_budget) = memory_split(settings)?;

    let account_key = cache_key(&settings.api_url, account);
    let account_dir = settings.cache_dir.join(&account_key);
    make_cache_private(settings, account_key).await?;
    let cache = Arc::new(
        BlockCache::open(BlockCacheConfig {
            block_size: BLOCK_SIZE,
            memory_bytes,
            disk_dir: Some(account_dir.join("blocks")),
            disk_bytes: settings.cache_size,
        })
        .with_context(|| format!("cannot open the cache in {}", account_dir.display()))?,
    );
    let meta = Arc::new(MetaStore::open(Some(&account_dir)).with_context(|| {
        format!(
            "cannot open the metadata store in {}",
            account_dir.display()
        )
    })?);
    if let Some(why) = &offline {
        if !meta.has_listing(None) {
            bail!("{why}; no tree of this account is cached, so it cannot be mounted offline");
        }
    }
    let remote = Arc::new(client);
    let content = Arc::new(Content::new(
        Arc::clone(&remote),
        Arc::clone(&cache),
        ContentConfig {
            window_budget,
            stream_lanes: READ_STREAMS,
            ..ContentConfig::default()
        },
    ));
    let owner = owner(settings);
    let mut fs_options = FsOptions::new(owner);
    fs_options.dir_ttl = settings.dir_ttl;
    fs_options.write_back = settings.write_back;
    let staging_dir = account_dir.join(staging::DIR_NAME);
    let staging = Staging::open(&staging_dir)
        .with_context(|| format!("cannot open the staging area in {}", staging_dir.display()))?;
    let core = Arc::new(Core::with_stores(
        Arc::clone(&remote),
        fs_options,
        meta,
        Arc::clone(&content),
        staging,
    ));
    if let Some(why) = &offline {
        log::warn!(
            "mounting offline from the cache ({why}); read-only until the server answers, \
             then {} pending upload(s) resume",
            core.pending_uploads()
        );
        core.start_offline(why);
    }
    let mount_options = fuse::MountOptions {
        read_only: settings.options.read_only,
        allow_other: settings.options.allow_other,
        default_permissions: settings.options.default_permissions,
        fsname: format!("yetifs:{}", host_of(&settings.api_url)),
    };
    let handle = fuse::mount(Arc::clone(&core), mountpoint, &mount_options)
        .with_context(|| format!("cannot mount on {}", mountpoint.display()))?;
    tokio::spawn(Arc::clone(&core).watch());
    if offline.is_none() {
        if settings.prefetch_tree {
            log::info!("walking the account in the background (--prefetch-tree)");
            core.prefetch_tree();
        }
        let pending = core.resume_journal();
        if pending > 0 {
            log::info!(
                "resuming {pending} upload(s) left pending by an earlier mount, in the background"
            );
        }
    }
    log::info!(
        "mounted {} (account {account}) on {}",
        settings.api_url,
        mountpoint.display()
    );
    let sources = Sources {
        mountpoint: canonical.display().to_string(),
        server: redact(&settings.api_url),
        mounted_ms: now_ms(),
        memory_limit: memory_bytes,
        disk_limit: settings.cache_size,
        core: Arc::clone(&core),
        cache: Arc::clone(&cache),
        client: remote,
        content,
        traffic: handle.traffic(),
        errors: handle.errors(),
    };
    let account = MountedAccount::new(Arc::clone(&core), Arc::clone(&sources.client), &account_dir);
    let (fetch, share) = hosted::handlers_for(account);
    let control = start_control(&canonical, sources, fetch, share);
    Ok(Mounted {
        handle,
        mountpoint: mountpoint.to_path_buf(),
        cache,
        core,
        control,
    })
}

/// Uploads what is still pending, showing progress, and says how it went.
async fn finish_uploads(core: &Core<Client>) {
    core.stop_ahead();
    let total = core.pending_uploads();
    if total > 0 {
        crate::system::notify::status(&format!("uploading {total} pending file(s)"));
    }
    let progress = crate::sync::Mutex::new(None::<Progress>);
    let report = core
        .sync(None, |done, total| {
            if total == 0 {
                return;
            }
            let mut bar = progress.lock();
            bar.get_or_insert_with(|| Progress::new("flushing uploads", total as u64))
                .set_done(done as u64);
        })
        .await;
    if let Some(bar) = progress.into_inner() {
        bar.finish(&format!("{} upload(s) left", report.failed.len()));
    }
    for failure in &report.failed {
        log::error!("{}: not uploaded: {}", failure.path, failure.reason);
    }
    if !report.failed.is_empty() {
        log::error!(
            "{} upload(s) could not be completed; they stay in the cache directory's journal \
             and are completed on the next mount",
            report.failed.len()
        );
    }
}

/// Serves until `umount` from outside, SIGINT or SIGTERM; then unmounts cleanly.
pub async fn serve_until_done(mounted: Mounted, settings: &MountSettings) -> anyhow::Result<()> {
    if crate::system::daemon::is_child() {
        let log = crate::system::logging::log_file()
            .map_or_else(|| settings.cache_dir.join(LOG_FILE), Path::to_path_buf);
        crate::system::daemon::announce_ready(&log).context("cannot detach from the terminal")?;
    }
    crate::system::notify::ready(&format!("mounted on {}", mounted.mountpoint.display()));
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = poll.tick() => {
                if mounted.handle.is_finished() {
                    log::info!("{} was unmounted", mounted.mountpoint.display());
                    crate::system::notify::stopping("unmounted; uploading what is pending");
                    finish_uploads(&mounted.core).await;
                    mounted.cache.flush();
                    return Ok(());
                }
            }
        }
    }
    log::info!("unmounting {}", mounted.mountpoint.display());
    crate::system::notify::stopping("uploading what is pending, then unmounting");
    finish_uploads(&mounted.core).await;
    let Mounted {
        mut handle,
        mountpoint,
        cache,
        core,
        control,
    } = mounted;
    drop(control);
    let result = tokio::task::spawn_blocking(move || handle.unmount()).await?;
    finish_uploads(&core).await;
    cache.flush();
    result.with_context(|| {
        format!(
            "cannot unmount {}: files are still open on it (close them, or `umount -l`)",
            mountpoint.display()
        )
    })
}

/// Refuses a mountpoint that is missing, not a directory, or already a mount; returns its
/// canonical path.
fn check_mountpoint(mountpoint: &Path, nonempty: bool) -> anyhow::Result<PathBuf> {
    let shown = mountpoint.display();
    let meta = match std::fs::metadata(mountpoint) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("mountpoint {shown} does not exist: create it with mkdir -p {shown}")
        }
        Err(e) => return Err(e).with_context(|| format!("mountpoint {shown} is not usable")),
    };
    if !meta.is_dir() {
        bail!("mountpoint {shown} is not a directory");
    }
    let canonical = mountpoint.canonicalize()?;
    if is_mount_point(&canonical)? {
        bail!("mountpoint {shown} is busy: something is already mounted there");
    }
    if !nonempty {
        let entries = std::fs::read_dir(&canonical)
            .with_context(|| format!("mountpoint {shown} cannot be read"))?
            .count();
        if entries > 0 {
            bail!(
                "mountpoint {shown} is not empty ({entries} entries): the mount would hide them; \
                 use an empty directory, or pass --allow-non-empty (-o nonempty)"
            );
        }
    }
    Ok(canonical)
}

/// Whether `path` (canonical) is the mountpoint of a mount, per `/proc/self/mountinfo`.
pub fn is_mount_point(path: &Path) -> std::io::Result<bool> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let wanted = path.to_string_lossy();
    Ok(info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|point| unescape_mountinfo(point) == wanted))
}

/// `/proc/self/mountinfo` writes space, tab, newline and backslash as octal escapes.
fn unescape_mountinfo(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// What the first contact with the server found.
enum Reach {
    /// The keys log into this account.
    Account(u64),
    /// The server could not be reached, for this reason (a sentence).
    Unreachable(String),
}

/// Logs in and reads the package once, turning each way this can fail into a sentence; a
/// server that cannot be reached is not an error yet (the mount may go on offline).
async fn preflight(client: &Client, url: &str) -> anyhow::Result<Reach> {
    let attempt = async {
        let account = client.authorize().await?;
        client.account_package().await?;
        Ok::<_, RemoteError>(account)
    };
    match tokio::time::timeout(PREFLIGHT_TIMEOUT, attempt).await {
        Err(_) => Ok(Reach::Unreachable(format!(
            "the server at {url} did not answer within {}s",
            PREFLIGHT_TIMEOUT.as_secs()
        ))),
        Ok(Ok(account)) => Ok(Reach::Account(account)),
        Ok(Err(RemoteError::Unreachable(message))) => Ok(Reach::Unreachable(format!(
            "cannot reach the server at {url}: {message}"
        ))),
        Ok(Err(e)) => Err(match e {
            RemoteError::Auth(message) => {
                LoginRefused::new(client, url, &message, "this mount").into()
            }
            RemoteError::Http { .. }
            | RemoteError::Unparseable(_)
            | RemoteError::Unsupported(_) => {
                anyhow::anyhow!(
                    "{url} does not answer as a File Upload API v2 endpoint (it should end in \
                     /api/v2/): {e}"
                )
            }
            RemoteError::Transport(message) => {
                anyhow::anyhow!("the connection to the server at {url} failed: {message}")
            }
            other => anyhow::anyhow!("the server at {url} refused the login: {other}"),
        }),
    }
}

/// A directory name per server and account, so that two accounts never share cached blocks.
pub fn cache_key(api_url: &str, account: u64) -> String {
    let host: String = host_of(api_url)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{host}-{account}")
}

/// The host (and port) part of a URL, for names shown to people.
fn host_of(api_url: &str) -> &str {
    let rest = api_url.split_once("://").map_or(api_url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_separate_hosts_ports_and_accounts() {
        assert_eq!(
            cache_key("http://127.0.0.1:8080/api/v2/", 1),
            "127.0.0.1_8080-1"
        );
        assert_ne!(
            cache_key("https://a.example/api/v2/", 1),
            cache_key("https://a.example/api/v2/", 2)
        );
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo("/mnt/my\\040files"), "/mnt/my files");
    }

    #[test]
    fn the_root_is_a_mount_point_and_a_fresh_directory_is_not() {
        assert!(is_mount_point(Path::new("/")).unwrap());
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mount_point(&dir.path().canonicalize().unwrap()).unwrap());
    }

    fn mount_args(line: &[&str]) -> MountArgs {
        use clap::Parser;
        let argv = ["yetifs", "mount"].iter().chain(line);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Mount(args) => args,
            other => panic!("not a mount: {other:?}"),
        }
    }

    #[test]
    fn named_remote_needs_its_colon() {
        assert!(mount_args(&["work", "/mnt"]).split_targets().is_err());
        let named = mount_args(&["work:", "/mnt"]);
        assert_eq!(named.split_targets().unwrap().0, Some("work"));
    }

    #[test]
    fn long_flags_stand_for_mount_options() {
        let args = mount_args(&["--read-only", "--allow-other", "--allow-non-empty", "/mnt"]);
        let options = crate::cli::settings::MountOptions::parse(
            args.options_with_flags().iter().map(String::as_str),
        )
        .unwrap();
        assert!(options.read_only && options.allow_other && options.nonempty);
        assert!(options.default_permissions, "allow_other implies it");
    }
}
