//! A web server on loopback for URL uploads to fetch from: each file at its path, with its
//! `Content-Length`; a held file sends its first half and then waits until the test releases
//! it, so that a test sees a fetch in the middle, deterministically. Anything else is a 404.
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::watch;

/// What the origin serves.
struct Files {
    bodies: HashMap<String, Vec<u8>>,
    held: Vec<String>,
    released: watch::Receiver<bool>,
}

/// A running origin; dropping it stops serving.
pub struct Origin {
    addr: SocketAddr,
    release: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Origin {
    /// Serves each `(name, body)` of `files` at `/name` on the current runtime; the names in
    /// `held` send half their body, then wait for [`Origin::release`].
    pub async fn start(files: Vec<(&str, Vec<u8>)>, held: &[&str]) -> Origin {
        let (release, released) = watch::channel(false);
        let files = Arc::new(Files {
            bodies: files
                .into_iter()
                .map(|(name, body)| (name.to_owned(), body))
                .collect(),
            held: held.iter().map(|name| (*name).to_owned()).collect(),
            released,
        });
        let app = axum::Router::new()
            .route("/{name}", axum::routing::get(serve))
            .with_state(files);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Origin {
            addr,
            release,
            task,
        }
    }

    /// The URL of file `name`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// Lets every held file send the rest of its body.
    pub fn release(&self) {
        self.release.send_replace(true);
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(State(files): State<Arc<Files>>, Path(name): Path<String>) -> Response {
    let Some(body) = files.bodies.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let length = body.len();
    let hold = files.held.contains(&name);
    let (first, rest) = if hold {
        let (first, rest) = body.split_at(length / 2);
        (Bytes::from(first.to_vec()), Bytes::from(rest.to_vec()))
    } else {
        (Bytes::from(body.clone()), Bytes::new())
    };
    let mut released = files.released.clone();
    let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(first) }).chain(
        futures_util::stream::once(async move {
            if hold {
                // The sender lives as long as the origin; a dropped one ends the hold too.
                let _ = released.wait_for(|released| *released).await;
            }
            Ok(rest)
        }),
    );
    (
        [(header::CONTENT_LENGTH, length.to_string())],
        Body::from_stream(stream),
    )
        .into_response()
}
