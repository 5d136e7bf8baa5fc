//! `--access-log`: one line per request, flushed at once, so tests and benchmarks can count API
//! calls while the server runs. Lines never hold tokens, keys or query strings:
//! `2026-11-23T06:42:44.123+00:00 POST /api/v2/file/upload 200 1234 5`
//! (time, method, path, status, response bytes or `-` when streamed without a length, ms).
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::sync::Mutex;

/// The open log file.
pub struct AccessLog {
    file: Mutex<File>,
}

impl AccessLog {
    /// Opens `path` for appending.
    pub fn open(path: &Path) -> io::Result<AccessLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AccessLog {
            file: Mutex::new(file),
        })
    }

    /// Writes and flushes one line.
    pub fn log(&self, method: &str, path: &str, status: u16, bytes: Option<u64>, ms: u128) {
        let time = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        let bytes = bytes.map_or_else(|| "-".to_string(), |b| b.to_string());
        let line = format!("{time} {method} {path} {status} {bytes} {ms}\n");
        let mut file = self.file.lock();
        if let Err(e) = file.write_all(line.as_bytes()).and_then(|_| file.flush()) {
            log::warn!("access log write failed: {e}");
        }
    }
}
