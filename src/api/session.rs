//! The account's one access token. Every `/authorize` kills the previous token, so all tasks
//! of a client share one, and a dead token is replaced by exactly one new authorization however
//! many calls notice it at once. Other clients of the account (other mounts, other programs)
//! kill it too: when that keeps happening, the next authorization waits as [`Pacing`] says, so
//! that the clients take turns. A refused login is remembered: servers ban an IP after five, so
//! later calls fail at once with the same error instead of trying again.
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::TokenPolicy;
use super::model::Authorization;
use super::pacing::Pacing;
use super::redact::Secret;
use crate::remote::error::{RemoteError, Result};
use crate::sync::Mutex;

/// Servers end a token after an hour without use: a token refused after this long unused
/// expired, rather than being taken by another client.
const EXPIRY_IDLE: Duration = Duration::from_secs(50 * 60);

/// A live token and the generation it belongs to.
#[derive(Debug)]
pub(crate) struct Token {
    /// The access token.
    pub access_token: Secret,
    /// The account it was issued for.
    pub account_id: u64,
    /// Counts authorizations: lets a caller whose token died tell whether another task has
    /// already replaced it.
    pub generation: u64,
    /// When it was issued: how young it was when taken decides the wait for the next one.
    issued: Instant,
    /// Whether the server accepted it at least once.
    served: AtomicBool,
    /// Milliseconds after `issued` of the latest request sent with it.
    last_sent_ms: AtomicU64,
}

impl Token {
    /// A token issued now.
    fn new(auth: Authorization, generation: u64) -> Self {
        Token {
            access_token: auth.access_token,
            account_id: auth.account_id,
            generation,
            issued: Instant::now(),
            served: AtomicBool::new(false),
            last_sent_ms: AtomicU64::new(0),
        }
    }

    /// Notes a request about to be sent with the token; returns how long it had been unused.
    pub fn sending(&self) -> Duration {
        let now = u64::try_from(self.issued.elapsed().as_millis()).unwrap_or(u64::MAX);
        let before = self.last_sent_ms.swap(now, Ordering::Relaxed);
        Duration::from_millis(now.saturating_sub(before))
    }

    /// Notes that the server accepted a request sent with the token.
    pub fn accepted(&self) {
        self.served.store(true, Ordering::Relaxed);
    }

    /// How long ago it was issued.
    pub fn age(&self) -> Duration {
        self.issued.elapsed()
    }
}

/// What a refused token means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Already known: another call reported this token first, or it was replaced already.
    Known,
    /// The token had been unused for so long that the server let it expire.
    Expired,
    /// Another client of the account took it (authorized since); the next `/authorize` waits
    /// `holdoff`.
    Taken {
        /// The wait before authorizing again.
        holdoff: Duration,
    },
}

/// How a renewal ended, when it did not fail.
#[derive(Debug)]
pub(crate) enum Renewed {
    /// A token newer than the refused one.
    Token(Arc<Token>),
    /// The next `/authorize` may not go before the caller's deadline.
    TooLate,
}

/// What is known about the login.
struct State {
    /// The current token; `None` before the first login and once it was refused.
    token: Option<Arc<Token>>,
    /// Authorizations done so far.
    generation: u64,
    /// The server's refusal of the credentials, once it happened.
    refused: Option<String>,
    /// When the next `/authorize` may go.
    pacing: Pacing,
}

/// The shared login state. Cheap to share behind the client's `Arc`.
pub(crate) struct Session {
    /// Read without waiting by every call.
    state: Mutex<State>,
    /// Held while authorizing (and while waiting to), so that only one `/authorize` is in
    /// flight.
    authorizing: tokio::sync::Mutex<()>,
}

impl Session {
    /// No token yet; authorizations paced by `policy`.
    pub fn new(policy: TokenPolicy) -> Self {
        Session {
            state: Mutex::new(State {
                token: None,
                generation: 0,
                refused: None,
                pacing: Pacing::new(policy),
            }),
            authorizing: tokio::sync::Mutex::new(()),
        }
    }

    /// Records that the server refused `token`, which had been unused for `idle` before the
    /// request. The first report of a token decides what it means and, if another client took
    /// it, how long the next `/authorize` waits (`jitter` in `[0, 1)` spreads the waits).
    pub fn refused(&self, token: &Token, idle: Duration, jitter: f64) -> Refusal {
        let mut state = self.state.lock();
        let current = state.token.as_ref().map(|t| t.generation);
        if current != Some(token.generation) {
            return Refusal::Known;
        }
        state.token = None;
        let served = token.served.load(Ordering::Relaxed);
        let holdoff = state
            .pacing
            .lost(token.issued, served, Instant::now(), jitter);
        if idle >= EXPIRY_IDLE {
            Refusal::Expired
        } else {
            Refusal::Taken { holdoff }
        }
    }

    /// A token newer than generation `dead` (the one the server just refused): the one another
    /// task already obtained, or a fresh one from `authorize` once the pacing allows, unless
    /// that is after `give_up`. With `dead` = `None`, any live token will do.
    pub async fn renew<F, Fut>(
        &self,
        dead: Option<u64>,
        give_up: Option<Instant>,
        authorize: F,
    ) -> Result<Renewed>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Authorization>>,
    {
        let _single_flight = self.authorizing.lock().await;
        if let Some(token) = self.current()? {
            if dead.is_none_or(|dead| token.generation > dead) {
                return Ok(Renewed::Token(token));
            }
        }
        let not_before = self.state.lock().pacing.next_authorize();
        if let Some(at) = not_before {
            if give_up.is_some_and(|give_up| at > give_up) {
                return Ok(Renewed::TooLate);
            }
            tokio::time::sleep_until(at.into()).await;
        }
        self.state.lock().pacing.authorizing(Instant::now());
        match authorize().await {
            Ok(auth) => {
                let mut state = self.state.lock();
                state.generation += 1;
                let token = Arc::new(Token::new(auth, state.generation));
                state.token = Some(Arc::clone(&token));
                Ok(Renewed::Token(token))
            }
            Err(RemoteError::Auth(message)) => {
                let mut state = self.state.lock();
                state.token = None;
                state.refused = Some(message.clone());
                Err(RemoteError::Auth(message))
            }
            Err(other) => Err(other),
        }
    }

    /// Whether another client took a token of this one after `since`, or shortly before.
    pub fn contested_since(&self, since: Instant) -> bool {
        self.state.lock().pacing.contested_since(since)
    }

    /// Forgets the current token (after `/disable_access_token`).
    pub fn forget(&self) {
        self.state.lock().token = None;
    }

    /// The current token; the remembered refusal if the login was refused.
    pub fn current(&self) -> Result<Option<Arc<Token>>> {
        let state = self.state.lock();
        match &state.refused {
            Some(message) => Err(RemoteError::Auth(message.clone())),
            None => Ok(state.token.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn auth(n: u32) -> Authorization {
        Authorization {
            access_token: Secret::new(format!("token{n}")),
            account_id: 7,
        }
    }

    /// No waits at all: these tests are about who authorizes, not when.
    fn eager() -> TokenPolicy {
        TokenPolicy {
            refused_deadline: Duration::from_secs(60),
            min_spacing: Duration::ZERO,
            first_holdoff: Duration::ZERO,
            max_holdoff: Duration::ZERO,
            calm: Duration::from_secs(3600),
        }
    }

    /// Waits far longer than any test runs.
    fn patient() -> TokenPolicy {
        TokenPolicy {
            min_spacing: Duration::from_secs(3600),
            first_holdoff: Duration::from_secs(3600),
            max_holdoff: Duration::from_secs(3600),
            ..eager()
        }
    }

    /// The current token, authorizing with `authorize` first if there is none (as a call's
    /// first step does).
    async fn login<F, Fut>(session: &Session, authorize: F) -> Result<Arc<Token>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Authorization>>,
    {
        if let Some(token) = session.current()? {
            return Ok(token);
        }
        match session.renew(None, None, authorize).await? {
            Renewed::Token(token) => Ok(token),
            Renewed::TooLate => panic!("no deadline was given"),
        }
    }

    async fn renewed(session: &Session, dead: u64, n: u32) -> Arc<Token> {
        match session
            .renew(Some(dead), None, || async move { Ok(auth(n)) })
            .await
            .unwrap()
        {
            Renewed::Token(token) => token,
            Renewed::TooLate => panic!("no deadline was given"),
        }
    }

    #[tokio::test]
    async fn the_first_call_authorizes_and_later_calls_reuse_the_token() {
        let session = Session::new(eager());
        let count = AtomicU32::new(0);
        for _ in 0..3 {
            let t = login(&session, || async {
                Ok(auth(count.fetch_add(1, Ordering::SeqCst)))
            })
            .await
            .unwrap();
            assert_eq!(t.access_token.expose(), "token0");
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn many_tasks_renewing_the_same_dead_token_cause_one_authorization() {
        let session = Arc::new(Session::new(eager()));
        let count = Arc::new(AtomicU32::new(0));
        let first = login(&session, || async { Ok(auth(0)) }).await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let session = Arc::clone(&session);
                let count = Arc::clone(&count);
                let first = Arc::clone(&first);
                tokio::spawn(async move {
                    session.refused(&first, Duration::ZERO, 0.5);
                    let renewed = session
                        .renew(Some(first.generation), None, || async {
                            tokio::task::yield_now().await;
                            Ok(auth(count.fetch_add(1, Ordering::SeqCst) + 1))
                        })
                        .await
                        .unwrap();
                    match renewed {
                        Renewed::Token(token) => token,
                        Renewed::TooLate => panic!("no deadline was given"),
                    }
                })
            })
            .collect();
        for task in tasks {
            let token = task.await.unwrap();
            assert_eq!(token.access_token.expose(), "token1");
            assert_eq!(token.generation, first.generation + 1);
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_first_report_of_a_refused_token_counts_and_later_ones_are_known() {
        let session = Session::new(eager());
        let token = login(&session, || async { Ok(auth(0)) }).await.unwrap();
        assert!(matches!(
            session.refused(&token, Duration::from_secs(1), 0.5),
            Refusal::Taken { .. }
        ));
        assert_eq!(
            session.refused(&token, Duration::from_secs(1), 0.5),
            Refusal::Known
        );
        assert!(
            session.current().unwrap().is_none(),
            "later calls wait for the next token instead of sending the dead one"
        );
    }

    #[tokio::test]
    async fn a_refusal_of_an_older_token_leaves_the_current_one_alone() {
        let session = Session::new(eager());
        let old = login(&session, || async { Ok(auth(0)) }).await.unwrap();
        session.refused(&old, Duration::ZERO, 0.5);
        let new = renewed(&session, old.generation, 1).await;
        assert_eq!(session.refused(&old, Duration::ZERO, 0.5), Refusal::Known);
        let current = session.current().unwrap().unwrap();
        assert_eq!(current.generation, new.generation);
    }

    #[tokio::test]
    async fn a_token_refused_after_an_hour_unused_expired_rather_than_being_taken() {
        let session = Session::new(eager());
        let token = login(&session, || async { Ok(auth(0)) }).await.unwrap();
        assert_eq!(
            session.refused(&token, Duration::from_secs(3600), 0.5),
            Refusal::Expired
        );
    }

    #[tokio::test]
    async fn a_renewal_that_would_have_to_wait_past_the_deadline_gives_up_without_authorizing() {
        let session = Session::new(patient());
        let count = AtomicU32::new(0);
        let token = login(&session, || async { Ok(auth(0)) }).await.unwrap();
        assert!(matches!(
            session.refused(&token, Duration::ZERO, 0.5),
            Refusal::Taken { holdoff } if holdoff >= Duration::from_secs(1800)
        ));
        let renewed = session
            .renew(Some(token.generation), Some(Instant::now()), || async {
                count.fetch_add(1, Ordering::SeqCst);
                Ok(auth(1))
            })
            .await
            .unwrap();
        assert!(matches!(renewed, Renewed::TooLate));
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_refused_login_is_remembered_and_never_sent_again() {
        let session = Session::new(eager());
        let count = AtomicU32::new(0);
        let refuse = || async {
            count.fetch_add(1, Ordering::SeqCst);
            Err(RemoteError::Auth("Could not authenticate user.".into()))
        };
        assert!(matches!(
            login(&session, refuse).await,
            Err(RemoteError::Auth(_))
        ));
        let again = login(&session, refuse).await;
        assert!(matches!(again, Err(RemoteError::Auth(m)) if m == "Could not authenticate user."));
        let renewed = session.renew(Some(0), None, refuse).await;
        assert!(matches!(renewed, Err(RemoteError::Auth(_))));
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_transport_failure_while_authorizing_is_not_remembered() {
        let session = Session::new(eager());
        let failed = login(&session, || async {
            Err(RemoteError::Transport("refused".into()))
        })
        .await;
        assert!(matches!(failed, Err(RemoteError::Transport(_))));
        let t = login(&session, || async { Ok(auth(1)) }).await.unwrap();
        assert_eq!(t.access_token.expose(), "token1");
    }

    #[tokio::test]
    async fn a_forgotten_token_is_replaced_on_next_use() {
        let session = Session::new(eager());
        login(&session, || async { Ok(auth(0)) }).await.unwrap();
        session.forget();
        let t = login(&session, || async { Ok(auth(1)) }).await.unwrap();
        assert_eq!(t.access_token.expose(), "token1");
    }

    #[test]
    fn a_token_tells_how_long_it_was_unused_before_each_request_and_whether_it_served() {
        let mut token = Token::new(auth(0), 1);
        if let Some(an_hour_ago) = Instant::now().checked_sub(Duration::from_secs(3600)) {
            token.issued = an_hour_ago;
            assert!(token.sending() >= Duration::from_secs(3599));
        }
        assert!(token.sending() < Duration::from_secs(60));
        assert!(!token.served.load(Ordering::Relaxed));
        token.accepted();
        assert!(token.served.load(Ordering::Relaxed));
    }
}
