//! Where log lines go, and how many there are.
//!
//! `-v`/`-q` move the level (`RUST_LOG`, when set, wins over both, as env_logger documents:
//! `RUST_LOG=yetifs=trace`); `--log-file FILE` appends the lines to FILE instead of the
//! terminal.
//!
//! A mount started with `--daemon` logs to the terminal until it is live, then to its log file
//! (`daemon::announce_ready` points standard error there). The lines written before that —
//! the start-up: which account, what the cache holds, uploads completed from an earlier mount —
//! are kept in memory too and written at the head of the log file when the process detaches,
//! so the log tells the whole story of the mount.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::sync::Mutex;

/// How much of the start-up a detaching process keeps for its log file.
const EARLY_LINES_MAX: usize = 256 << 10;

/// What the command line says about logging.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// Each `-v` shows more: debug, then trace, of yetifs itself.
    pub verbose: u8,
    /// Each `-q` shows less: warnings only, then errors only.
    pub quiet: u8,
    /// Append log lines to this file instead of standard error.
    pub file: Option<PathBuf>,
}

impl LogOptions {
    /// The env_logger filter for these options, over the level a command starts from.
    fn filter(&self, default: log::LevelFilter) -> String {
        use log::LevelFilter::{Debug, Error, Info, Trace, Warn};
        let level = match (self.verbose, self.quiet) {
            (0, 0) => default,
            (0, 1) => Warn,
            (0, _) => Error,
            (1, _) => Debug,
            _ => Trace,
        };
        let others = match level {
            Trace | Debug => Info,
            Info | Warn | Error | log::LevelFilter::Off => level,
        };
        format!("{others},yetifs={level},fuser::mnt=error")
    }
}

/// Where the lines go.
enum Sink {
    /// Standard error; the lines are also kept while the process has yet to detach.
    Stderr { early: Option<Vec<u8>> },
    /// The `--log-file`.
    File(File),
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);
static LOG_FILE: OnceLock<PathBuf> = OnceLock::new();

fn sink() -> crate::sync::MutexGuard<'static, Option<Sink>> {
    SINK.lock()
}

/// The writer env_logger is given: every line goes through the one sink.
struct SinkWriter;

impl Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match sink().as_mut() {
            Some(Sink::File(file)) => file.write_all(buf)?,
            Some(Sink::Stderr { early }) => {
                if let Some(early) = early.as_mut().filter(|e| e.len() < EARLY_LINES_MAX) {
                    early.extend_from_slice(buf);
                }
                io::stderr().write_all(buf)?;
            }
            None => io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match sink().as_mut() {
            Some(Sink::File(file)) => file.flush(),
            _ => io::stderr().flush(),
        }
    }
}

/// Starts logging for a command whose usual level is `default`; `detaching` keeps the
/// start-up lines for the log file of a daemon. Fails only if `--log-file` cannot be opened.
pub fn init(options: &LogOptions, default: log::LevelFilter, detaching: bool) -> io::Result<()> {
    let target = match &options.file {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            let _ = LOG_FILE.set(path.clone());
            Sink::File(file)
        }
        None => Sink::Stderr {
            early: detaching.then(Vec::new),
        },
    };
    *sink() = Some(target);
    let filter = options.filter(default);
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter))
        .target(env_logger::Target::Pipe(Box::new(SinkWriter)))
        .init();
    Ok(())
}

/// The `--log-file` given, if any: a daemon logs there rather than to the cache directory.
pub fn log_file() -> Option<&'static Path> {
    LOG_FILE.get().map(PathBuf::as_path)
}

/// Standard error now goes to the log file: the start-up lines kept so far are written there
/// first, and no more are kept.
pub fn detached() -> io::Result<()> {
    let early = match sink().as_mut() {
        Some(Sink::Stderr { early }) => early.take(),
        _ => None,
    };
    match early {
        Some(lines) => io::stderr().write_all(&lines),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::LevelFilter::{Info, Warn};

    fn filter(verbose: u8, quiet: u8, default: log::LevelFilter) -> String {
        LogOptions {
            verbose,
            quiet,
            file: None,
        }
        .filter(default)
    }

    #[test]
    fn verbosity_moves_yetifs_own_level_and_keeps_libraries_quieter() {
        assert_eq!(filter(0, 0, Info), "INFO,yetifs=INFO,fuser::mnt=error");
        assert_eq!(filter(0, 0, Warn), "WARN,yetifs=WARN,fuser::mnt=error");
        assert_eq!(filter(1, 0, Warn), "INFO,yetifs=DEBUG,fuser::mnt=error");
        assert_eq!(filter(2, 0, Info), "INFO,yetifs=TRACE,fuser::mnt=error");
        assert_eq!(filter(0, 1, Info), "WARN,yetifs=WARN,fuser::mnt=error");
        assert_eq!(filter(0, 2, Info), "ERROR,yetifs=ERROR,fuser::mnt=error");
    }
}
