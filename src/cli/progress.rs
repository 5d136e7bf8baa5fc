//! Progress of long CLI operations (`yetifs demo` filling its account, flushing uploads at
//! unmount): a bar on a terminal, plain lines otherwise (a log file, a pipe, journald), so
//! logs stay readable. Both go to standard error, next to the log.
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// The least time between two plain progress lines: a log gets the pace, not every step.
const PLAIN_EVERY: Duration = Duration::from_secs(1);

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A task of `total` steps, shown as it advances.
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    bar: Option<ProgressBar>,
    /// When the last plain line was written.
    said: Option<Instant>,
}

impl Progress {
    /// Starts showing `label` with `total` steps: a bar if standard error is a terminal.
    pub fn new(label: &str, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {wide_msg}")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            label: label.to_owned(),
            total,
            done: 0,
            bar,
            said: None,
        }
    }

    /// Starts the next step, described by `message`.
    pub fn step(&mut self, message: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.done);
                bar.set_message(message.to_owned());
            }
            None => eprintln!(
                "{}: {} ({}/{})",
                self.label,
                message,
                self.done + 1,
                self.total
            ),
        }
        self.done = (self.done + 1).min(self.total);
    }

    /// Records that `done` steps are complete; shown only when it changed.
    pub fn set_done(&mut self, done: u64) {
        let done = done.min(self.total);
        if done == self.done {
            return;
        }
        self.done = done;
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let due = self.said.is_none_or(|at| at.elapsed() >= PLAIN_EVERY);
                if due || done == self.total {
                    self.said = Some(Instant::now());
                    eprintln!("{}: {done}/{} done", self.label, self.total);
                }
            }
        }
    }

    /// Ends the display with `message`.
    pub fn finish(self, message: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.done);
                bar.finish_with_message(message.to_owned());
                // The bar's last line has no line end: what is written next starts a line.
                eprintln!();
            }
            None => eprintln!("{}: {message}", self.label),
        }
    }
}
