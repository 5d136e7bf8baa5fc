//! The `yetifs serve` command line: where to listen and store, which server generation and host
//! to imitate, which quirks to switch off, limits, extra accounts and faults.
use std::net::SocketAddr;
use std::path::PathBuf;

use super::faults::FaultSpec;
use super::ranges::RangeMode;

/// Which server generation's reply shapes to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// The 4.x line: database numbers as strings, trashed folders listed without a status.
    V4,
    /// The 5.x rewrite: native numbers, trashed items listed with `status: "trash"`.
    V5,
}

/// Which host's endpoint set to offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HostKind {
    /// url_upload endpoints, download by `file_id` or `short_url`.
    Zippyshare,
    /// No url_upload endpoints, download by `file_id` only.
    Zfils,
    /// No url_upload endpoints, download by `file_id` only.
    Zerolibrary,
}

impl HostKind {
    /// Whether the host offers `file/url_upload_add` and `file/url_upload_status`.
    pub fn has_url_upload(self) -> bool {
        self == HostKind::Zippyshare
    }

    /// Whether `file/download` accepts `short_url` instead of `file_id`.
    pub fn downloads_by_short_url(self) -> bool {
        self == HostKind::Zippyshare
    }
}

/// A real-server behaviour that can be switched off (all are on by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Quirk {
    /// Each `/authorize` deletes the account's older tokens.
    SingleToken,
    /// Five failed key pairs from one IP ban it from logging in for 24 h.
    LoginBan,
    /// Uploads drop a leading dot and quotes and number duplicate names (`name (2).ext`).
    UploadRenames,
    /// Identical content is stored once; the upload reply's `size` is then a string.
    Dedup,
    /// 4.x: `file/move` and `file/copy` to `null` put the file in folder 0, out of every listing.
    NullMoveBug,
    /// `file/copy` needs the session cookie of `/authorize`; without it an ownerless copy is
    /// made and the reply is `Could not find file based on file_id.`.
    CopyNeedsSession,
    /// 4.x: a deleted folder's parent becomes null, so it is listed at the root.
    TrashToRoot,
}

/// Arguments of `yetifs serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory keeping the database and file contents across restarts (default: a temporary
    /// directory removed on exit).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Key 1 of the main account (64 characters; default: kept from `--data`, else random).
    #[arg(long)]
    pub key1: Option<String>,
    /// Key 2 of the main account (64 characters).
    #[arg(long)]
    pub key2: Option<String>,
    /// Server generation whose reply shapes to produce.
    #[arg(long, value_enum, default_value = "v4")]
    pub profile: Profile,
    /// Host whose endpoint set to offer.
    #[arg(long, value_enum, default_value = "zippyshare")]
    pub host: HostKind,
    /// Faults to inject, e.g. `error=0.05,429=0.02,reset=0.01,latency=20ms,bandwidth=50MB/s,token_ttl=30s`.
    #[arg(long, default_value = "")]
    pub faults: FaultSpec,
    /// Seed of the fault injector's randomness (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// File receiving one line per request (time, method, path, status, bytes, ms).
    #[arg(long)]
    pub access_log: Option<PathBuf>,
    /// Range handling of the file server.
    #[arg(long, value_enum, default_value = "naive")]
    pub ranges: RangeMode,
    /// Quirks to switch off, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub quirks_off: Vec<Quirk>,
    /// Seconds a token lives without use.
    #[arg(long, default_value_t = 3600)]
    pub token_idle_secs: u64,
    /// `max_upload_size` reported by `account/package` (not enforced, as on real servers).
    #[arg(long, default_value_t = 5_368_709_120)]
    pub max_upload_size: u64,
    /// Storage quota per account in bytes, reported and enforced (0: unlimited).
    #[arg(long, default_value_t = 0)]
    pub max_storage: u64,
    /// An extra account `KEY1:KEY2` (repeatable).
    #[arg(long = "account", value_name = "KEY1:KEY2")]
    pub accounts: Vec<String>,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: None,
            key1: None,
            key2: None,
            profile: Profile::V4,
            host: HostKind::Zippyshare,
            faults: FaultSpec::default(),
            seed: None,
            access_log: None,
            ranges: RangeMode::Naive,
            quirks_off: Vec::new(),
            token_idle_secs: 3600,
            max_upload_size: 5_368_709_120,
            max_storage: 0,
            accounts: Vec::new(),
        }
    }
}

impl ServeArgs {
    /// Whether a quirk is on.
    pub fn quirk(&self, quirk: Quirk) -> bool {
        !self.quirks_off.contains(&quirk)
    }

    /// The extra accounts as key pairs.
    pub fn account_pairs(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.accounts
            .iter()
            .map(|spec| {
                let (k1, k2) = spec
                    .split_once(':')
                    .ok_or_else(|| anyhow::anyhow!("--account wants KEY1:KEY2, got {spec:?}"))?;
                check_key(k1)?;
                check_key(k2)?;
                Ok((k1.to_string(), k2.to_string()))
            })
            .collect()
    }
}

/// Refuses a key the server would never accept.
pub fn check_key(key: &str) -> anyhow::Result<()> {
    if key.chars().count() != 64 {
        anyhow::bail!("a key must be 64 characters long, got {}", key.len());
    }
    Ok(())
}
