//! The mount's background work: the write-back driver (`writeback`), fetching again the
//! listings shown from disk when they near their TTL, and, while the server is unreachable,
//! probing it with a growing delay; once it answers, the uploads that waited for it resume.
use std::sync::Arc;
use std::time::Duration;

use super::connectivity::{is_unreachable, Backoff};
use super::core::Core;
use super::namespace::inode::Ino;
use crate::remote::Remote;

impl<R: Remote> Core<R> {
    /// Runs for the life of the mount (spawn it once; a second call returns at once).
    pub async fn watch(self: Arc<Self>) {
        let Some(mut refresh) = self.refresh_queue.lock().take() else {
            return;
        };
        tokio::spawn(Arc::clone(&self).drive_uploads());
        tokio::spawn(Arc::clone(&self).run_ahead());
        loop {
            tokio::select! {
                dir = refresh.recv() => match dir {
                    Some(dir) => self.refresh_listing(dir).await,
                    None => return,
                },
                () = self.link.until_offline() => self.probe_until_back().await,
            }
        }
    }

    /// Fetches the listing of `dir` again, if the server answers and `dir` still exists.
    async fn refresh_listing(&self, dir: Ino) {
        if !self.link.is_online() {
            return;
        }
        if let Err(e) = self.children_within(dir, Duration::ZERO).await {
            log::debug!("background refresh of directory {dir} failed: {e}");
        }
    }

    /// Probes the server until it answers, then completes the uploads left pending.
    async fn probe_until_back(&self) {
        for delay in Backoff::default() {
            tokio::time::sleep(delay).await;
            if self.link.is_online() {
                break;
            }
            let probe = self.remote.limits().await;
            match &probe {
                Err(e) if is_unreachable(e) => {
                    log::debug!("the server is still unreachable: {e}");
                    self.link.lost(&e.to_string());
                }
                _ => {
                    self.link.reached();
                    break;
                }
            }
        }
        let pending = self.resume_journal();
        self.writes.writeback.unpark_all();
        if pending > 0 {
            log::info!("resuming {pending} upload(s) that waited for the server");
        }
    }
}
