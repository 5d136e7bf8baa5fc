//! What can be known about a key pair without asking the server, and what a refusal costs.
//! Hosts ban an address from logging in for 24 hours after five failed logins, so a key that
//! cannot be right is refused here, before any request, and a refused pair is explained with
//! that rule and with how many logins were spent on it.
use super::Client;

/// The length of each API key, in characters (the host's `Please provide key1. It must be 64
/// characters in length.`).
pub const KEY_LENGTH: usize = 64;
/// Failed logins from one address after which the host bans it from logging in.
pub const BAN_AFTER_FAILURES: u32 = 5;
/// How long such a ban lasts, in hours.
pub const BAN_HOURS: u32 = 24;

/// Why a key cannot be one the host accepts, found without sending it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key has white space in it, often a line break or a space pasted with it.
    #[error(
        "{which} has white space in it (character {at} of {length}); API keys are \
         {KEY_LENGTH} characters without spaces: copy it again from the account settings page"
    )]
    WhiteSpace {
        /// `key1` or `key2`.
        which: &'static str,
        /// Where the first white space is, counting from 1.
        at: usize,
        /// The key's length in characters.
        length: usize,
    },
    /// The key is not exactly [`KEY_LENGTH`] characters long.
    #[error(
        "{which} is {length} characters long; API keys are exactly {KEY_LENGTH}: copy it again \
         from the account settings page"
    )]
    Length {
        /// `key1` or `key2`.
        which: &'static str,
        /// The key's length in characters.
        length: usize,
    },
}

/// Checks one key as the host would before counting a login: exactly [`KEY_LENGTH`]
/// characters, none of them white space. Generated keys are letters and digits, but an admin
/// may store any 64 characters, so nothing else is checked. `which` names the key in the error.
pub fn check_key(which: &'static str, key: &str) -> Result<(), KeyError> {
    let length = key.chars().count();
    if let Some(index) = key.chars().position(char::is_whitespace) {
        return Err(KeyError::WhiteSpace {
            which,
            at: index + 1,
            length,
        });
    }
    if length != KEY_LENGTH {
        return Err(KeyError::Length { which, length });
    }
    Ok(())
}

/// Checks both keys of a pair, key1 first.
pub fn check_keys(key1: &str, key2: &str) -> Result<(), KeyError> {
    check_key("key1", key1)?;
    check_key("key2", key2)
}

/// The server refused a login at `/authorize`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefused {
    /// The key pair was refused: each such refusal counts towards a ban of this address.
    #[error(
        "the server at {url} refused the key pair ({message}). The host bans an address from \
         logging in for {BAN_HOURS} hours after {BAN_AFTER_FAILURES} failed logins; {who} sent \
         {sent} and will not retry. Check the keys on the account settings page."
    )]
    KeyPair {
        /// The API URL.
        url: String,
        /// What the server said.
        message: String,
        /// Who logged in, as the sentence names it (`this mount`).
        who: &'static str,
        /// How many logins it sent.
        sent: u64,
    },
    /// The host does not let this account's level use the API at all.
    #[error("the server at {url} does not let this account use the API: {message}")]
    NoApiAccess {
        /// The API URL.
        url: String,
        /// What the server said.
        message: String,
    },
}

impl LoginRefused {
    /// The refusal `message` that `client` got from `url`, with the number of logins it has
    /// sent; `who` names the client in the sentence (`this mount`).
    pub fn new(client: &Client, url: &str, message: &str, who: &'static str) -> Self {
        if message
            .to_lowercase()
            .contains("does not have access to the file upload api")
        {
            return LoginRefused::NoApiAccess {
                url: url.to_owned(),
                message: message.to_owned(),
            };
        }
        let sent = client
            .metrics()
            .snapshot()
            .endpoints
            .iter()
            .find(|e| e.endpoint == "authorize")
            .map_or(0, |e| e.requests);
        LoginRefused::KeyPair {
            url: url.to_owned(),
            message: message.to_owned(),
            who,
            sent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_of_64_characters_without_white_space_passes() {
        assert_eq!(check_key("key1", &"a1".repeat(32)), Ok(()));
        assert_eq!(check_key("key1", &"é".repeat(64)), Ok(()));
    }

    #[test]
    fn a_short_or_long_key_is_named_with_its_length() {
        let short = check_key("key2", &"a".repeat(63)).unwrap_err();
        assert_eq!(
            short,
            KeyError::Length {
                which: "key2",
                length: 63
            }
        );
        assert!(
            short
                .to_string()
                .starts_with("key2 is 63 characters long; API keys are exactly 64"),
            "{short}"
        );
        assert!(matches!(
            check_key("key1", &"a".repeat(65)),
            Err(KeyError::Length { length: 65, .. })
        ));
    }

    #[test]
    fn white_space_is_found_where_it_is_even_when_the_length_is_right() {
        let pasted = format!("{}\n", "a".repeat(63));
        let err = check_key("key1", &pasted).unwrap_err();
        assert_eq!(
            err,
            KeyError::WhiteSpace {
                which: "key1",
                at: 64,
                length: 64
            }
        );
        assert!(
            err.to_string()
                .starts_with("key1 has white space in it (character 64 of 64)"),
            "{err}"
        );
    }

    #[test]
    fn the_pair_is_checked_key1_first() {
        let err = check_keys("short", "also short").unwrap_err();
        assert!(matches!(err, KeyError::Length { which: "key1", .. }));
        let err = check_keys(&"a".repeat(64), "short").unwrap_err();
        assert!(matches!(err, KeyError::Length { which: "key2", .. }));
    }

    #[test]
    fn a_refused_pair_tells_the_ban_rule_and_the_logins_sent() {
        let refused = LoginRefused::KeyPair {
            url: "https://h/api/v2/".into(),
            message: "Could not authenticate user.".into(),
            who: "this mount",
            sent: 1,
        };
        assert_eq!(
            refused.to_string(),
            "the server at https://h/api/v2/ refused the key pair (Could not authenticate \
             user.). The host bans an address from logging in for 24 hours after 5 failed \
             logins; this mount sent 1 and will not retry. Check the keys on the account \
             settings page."
        );
    }
}
