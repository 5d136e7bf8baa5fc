//! How to reach a server and how patient to be with it: everything [`super::Client::new`] needs.
use std::fmt;
use std::time::Duration;

use super::concurrency::ConcurrencyConfig;
use super::redact::Secret;
use super::retry::RetryPolicy;

/// How the client logs in. Servers ban an IP after five rejected logins, so a rejected pair is
/// never sent twice.
#[derive(Clone)]
pub enum Credentials {
    /// The two 64-character API keys from the account settings page.
    Keys {
        /// The first key.
        key1: Secret,
        /// The second key.
        key2: Secret,
    },
    /// Username and password, on hosts configured to accept them.
    Password {
        /// The account's username.
        username: String,
        /// The account's password.
        password: Secret,
    },
}

impl Credentials {
    /// A key pair.
    pub fn keys(key1: impl Into<String>, key2: impl Into<String>) -> Self {
        Credentials::Keys {
            key1: Secret::new(key1),
            key2: Secret::new(key2),
        }
    }

    /// The form fields `/authorize` expects.
    pub(crate) fn form(&self) -> Vec<(&'static str, String)> {
        match self {
            Credentials::Keys { key1, key2 } => vec![
                ("key1", key1.expose().to_owned()),
                ("key2", key2.expose().to_owned()),
            ],
            Credentials::Password { username, password } => vec![
                ("username", username.clone()),
                ("password", password.expose().to_owned()),
            ],
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Keys { .. } => f.write_str("Keys(<redacted>)"),
            Credentials::Password { username, .. } => {
                write!(
                    f,
                    "Password {{ username: {username:?}, password: <redacted> }}"
                )
            }
        }
    }
}

/// Time limits. Every request has one; transfers are limited by inactivity rather than by total
/// time, because a large file legitimately takes long.
#[derive(Clone, Debug)]
pub struct Timeouts {
    /// Establishing a TCP (and TLS) connection.
    pub connect: Duration,
    /// A whole API call (request sent, reply read), and the wait for a download's headers.
    pub request: Duration,
    /// The longest a download may go without receiving a byte.
    pub read_idle: Duration,
    /// The slowest upload rate tolerated: an upload of `n` bytes may take
    /// `request + n / upload_min_rate` seconds.
    pub upload_min_rate: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(15),
            request: Duration::from_secs(60),
            read_idle: Duration::from_secs(60),
            upload_min_rate: 16 * 1024,
        }
    }
}

/// How a client shares its account's one access token with other clients of the account
/// (other mounts, other programs): every `/authorize` kills the token the others hold, so a
/// call refused for its token waits for a fresh one and is sent again, and the waits grow while
/// the others keep taking the token, so that the clients take turns instead of thrashing.
#[derive(Clone, Debug)]
pub struct TokenPolicy {
    /// How long one call keeps re-authorizing and resending after its token was first refused,
    /// before it fails with [`crate::remote::error::RemoteError::Token`]: long enough for a busy neighbour.
    pub refused_deadline: Duration,
    /// The least time between two `/authorize` of one client, whatever happens: bounds the
    /// login rate even against a server that refuses every token.
    pub min_spacing: Duration,
    /// The wait before re-authorizing after a young token was taken (before jitter); it
    /// doubles with each young token lost in a row.
    pub first_holdoff: Duration,
    /// The longest such wait: the longest turn this client leaves another one.
    pub max_holdoff: Duration,
    /// A token that lived this long before it was taken ends the contest: the next one taken
    /// is replaced at once.
    pub calm: Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        TokenPolicy {
            refused_deadline: Duration::from_secs(60),
            min_spacing: Duration::from_millis(500),
            first_holdoff: Duration::from_millis(500),
            max_holdoff: Duration::from_secs(3),
            calm: Duration::from_secs(15),
        }
    }
}

/// Everything that defines a client: server, login, limits, retries.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The API base, e.g. `https://host/api/v2/` (a missing final `/` is added).
    pub base_url: String,
    /// How to log in.
    pub credentials: Credentials,
    /// Time limits.
    pub timeouts: Timeouts,
    /// Retries of calls that are safe to repeat.
    pub retry: RetryPolicy,
    /// Sharing the account's one token with other clients.
    pub token: TokenPolicy,
    /// How many times one download may resume after a short body or a dropped connection.
    pub download_resumes: u32,
    /// How long a download URL is reused before asking for a new one (servers keep them valid
    /// for 24 hours).
    pub download_url_ttl: Duration,
    /// How many download URLs are remembered at most.
    pub download_url_cache: usize,
    /// The server's offset from UTC in seconds, for its zone-less dates; `None` reads them as
    /// this machine's local time.
    pub server_utc_offset: Option<i32>,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Idle connections kept per host: as many as calls may be in flight, so that a burst of
    /// calls does not open connections only to close them.
    pub pool_max_idle_per_host: usize,
    /// Bounds of the adaptive number of calls in flight.
    pub concurrency: ConcurrencyConfig,
}

impl ClientConfig {
    /// A configuration with sensible defaults for everything but the server and the login.
    pub fn new(base_url: impl Into<String>, credentials: Credentials) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            credentials,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            token: TokenPolicy::default(),
            download_resumes: 5,
            download_url_ttl: Duration::from_secs(12 * 3600),
            download_url_cache: 4096,
            server_utc_offset: None,
            user_agent: concat!("yetifs/", env!("CARGO_PKG_VERSION")).to_owned(),
            pool_max_idle_per_host: ConcurrencyConfig::default().max,
            concurrency: ConcurrencyConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_a_config_holds_no_key_or_password() {
        let keys = ClientConfig::new(
            "http://h/api/v2/",
            Credentials::keys("K1SECRET", "K2SECRET"),
        );
        let pw = Credentials::Password {
            username: "bob".into(),
            password: Secret::new("PWSECRET"),
        };
        let text = format!("{keys:?} {pw:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("bob"));
    }
}
