//! The typed async client of API v2: one pooled HTTP client, one shared token, typed replies,
//! typed errors, retries where they are safe, and downloads that survive broken range support.
//! `Client` implements [`crate::remote::Remote`].
mod client;
mod concurrency;
mod config;
mod download;
#[cfg(test)]
mod fixtures;
pub mod keys;
pub mod metrics;
pub mod model;
mod pacing;
mod redact;
mod remote_impl;
mod reply;
mod retry;
mod session;

pub use client::{Client, FileEdit, FolderEdit};
pub use concurrency::{ConcurrencyConfig, ConcurrencyStats};
pub use config::{ClientConfig, Credentials, Timeouts, TokenPolicy};
pub use metrics::{Metrics, MetricsSnapshot};
pub use redact::{redact, Secret};
pub use retry::RetryPolicy;
