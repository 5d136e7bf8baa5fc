//! The account's one access token. Every `/authorize` kills the previous token, so all tasks
//! share one, and a dead token is replaced by exactly one new authorization however many calls
//! notice it at once. A refused login is remembered: servers ban an IP after five, so later
//! calls fail at once with the same error instead of trying again.
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use super::error::{ApiError, Result};
use super::model::Authorization;
use super::redact::Secret;

/// A live token and the generation it belongs to.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    /// The access token.
    pub access_token: Secret,
    /// The account it was issued for.
    pub account_id: u64,
    /// Counts authorizations: lets a caller whose token died tell whether another task has
    /// already replaced it.
    pub generation: u64,
}

/// What is known about the login.
#[derive(Default)]
struct State {
    /// The current token, if any.
    token: Option<Arc<Token>>,
    /// Authorizations done so far.
    generation: u64,
    /// The server's refusal of the credentials, once it happened.
    refused: Option<String>,
}

/// The shared login state. Cheap to share behind the client's `Arc`.
#[derive(Default)]
pub(crate) struct Session {
    /// Read without waiting by every call.
    state: Mutex<State>,
    /// Held while authorizing, so that only one `/authorize` is in flight.
    authorizing: tokio::sync::Mutex<()>,
}

impl Session {
    /// The current token, authorizing with `authorize` first if there is none.
    pub async fn token<F, Fut>(&self, authorize: F) -> Result<Arc<Token>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Authorization>>,
    {
        if let Some(token) = self.current()? {
            return Ok(token);
        }
        self.renew(None, authorize).await
    }

    /// A token newer than generation `dead` (the one the server just rejected): the one
    /// another task already obtained, or a fresh one from `authorize`. With `dead` = `None`,
    /// any live token will do.
    pub async fn renew<F, Fut>(&self, dead: Option<u64>, authorize: F) -> Result<Arc<Token>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Authorization>>,
    {
        let _single_flight = self.authorizing.lock().await;
        if let Some(token) = self.current()? {
            if dead != Some(token.generation) {
                return Ok(token);
            }
        }
        match authorize().await {
            Ok(auth) => {
                let mut state = self.lock();
                state.generation += 1;
                let token = Arc::new(Token {
                    access_token: auth.access_token,
                    account_id: auth.account_id,
                    generation: state.generation,
                });
                state.token = Some(Arc::clone(&token));
                Ok(token)
            }
            Err(ApiError::Auth(message)) => {
                let mut state = self.lock();
                state.token = None;
                state.refused = Some(message.clone());
                Err(ApiError::Auth(message))
            }
            Err(other) => Err(other),
        }
    }

    /// Forgets the current token (after `/disable_access_token`).
    pub fn forget(&self) {
        self.lock().token = None;
    }

    /// The current token; the remembered refusal if the login was refused.
    pub fn current(&self) -> Result<Option<Arc<Token>>> {
        let state = self.lock();
        match &state.refused {
            Some(message) => Err(ApiError::Auth(message.clone())),
            None => Ok(state.token.clone()),
        }
    }

    /// The state, even if a panicking task poisoned the lock (it holds no invariant a panic
    /// could break).
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    fn auth(n: u32) -> Authorization {
        Authorization {
            access_token: Secret::new(format!("token{n}")),
            account_id: 7,
        }
    }

    #[tokio::test]
    async fn the_first_call_authorizes_and_later_calls_reuse_the_token() {
        let session = Session::default();
        let count = AtomicU32::new(0);
        for _ in 0..3 {
            let t = session
                .token(|| async { Ok(auth(count.fetch_add(1, Ordering::SeqCst))) })
                .await
                .unwrap();
            assert_eq!(t.access_token.expose(), "token0");
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn many_tasks_renewing_the_same_dead_token_cause_one_authorization() {
        let session = Arc::new(Session::default());
        let count = Arc::new(AtomicU32::new(0));
        let first = session.token(|| async { Ok(auth(0)) }).await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let session = Arc::clone(&session);
                let count = Arc::clone(&count);
                let dead = first.generation;
                tokio::spawn(async move {
                    session
                        .renew(Some(dead), || async {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(auth(count.fetch_add(1, Ordering::SeqCst) + 1))
                        })
                        .await
                        .unwrap()
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
    async fn a_refused_login_is_remembered_and_never_sent_again() {
        let session = Session::default();
        let count = AtomicU32::new(0);
        let refuse = || async {
            count.fetch_add(1, Ordering::SeqCst);
            Err(ApiError::Auth("Could not authenticate user.".into()))
        };
        assert!(matches!(
            session.token(refuse).await,
            Err(ApiError::Auth(_))
        ));
        let again = session.token(refuse).await;
        assert!(matches!(again, Err(ApiError::Auth(m)) if m == "Could not authenticate user."));
        let renewed = session.renew(Some(0), refuse).await;
        assert!(matches!(renewed, Err(ApiError::Auth(_))));
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_transport_failure_while_authorizing_is_not_remembered() {
        let session = Session::default();
        let failed = session
            .token(|| async { Err(ApiError::Transport("refused".into())) })
            .await;
        assert!(matches!(failed, Err(ApiError::Transport(_))));
        let t = session.token(|| async { Ok(auth(1)) }).await.unwrap();
        assert_eq!(t.access_token.expose(), "token1");
    }

    #[tokio::test]
    async fn a_forgotten_token_is_replaced_on_next_use() {
        let session = Session::default();
        session.token(|| async { Ok(auth(0)) }).await.unwrap();
        session.forget();
        let t = session.token(|| async { Ok(auth(1)) }).await.unwrap();
        assert_eq!(t.access_token.expose(), "token1");
    }
}
