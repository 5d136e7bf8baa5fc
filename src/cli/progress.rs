//! Progress of long CLI operations (`yetifs demo` filling its account, flushing uploads at
//! unmount, `yetifs fetch`): a bar on a terminal, plain lines otherwise (a log file, a pipe,
//! journald), so logs stay readable. Both go to standard error, next to the log.
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// The least time between two plain progress lines: a log gets the pace, not every step.
const PLAIN_EVERY: Duration = Duration::from_secs(1);

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

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

/// Several transfers at once (`yetifs fetch` of several URLs), each at a stage with, when
/// known, bytes of a total: a bar each on a terminal, plain lines otherwise, one when a
/// transfer changes stage and at most one a second while its bytes move.
pub struct Transfers {
    rows: Vec<Row>,
    /// What draws the bars, on a terminal.
    board: Option<MultiProgress>,
}

/// One transfer of [`Transfers`].
struct Row {
    label: String,
    bar: Option<ProgressBar>,
    /// The stage and bytes of the last plain line, and when it was written.
    said: Option<(String, Option<u64>, Instant)>,
}

impl Transfers {
    /// Starts showing a transfer for each of `labels`: bars if standard error is a terminal.
    pub fn new(labels: &[String]) -> Transfers {
        let board = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let rows = labels
            .iter()
            .map(|label| Row {
                label: label.clone(),
                bar: board.as_ref().map(|board| {
                    let bar = board.add(ProgressBar::new(0));
                    bar.set_style(Self::style(false));
                    bar.set_prefix(format!("{label:<width$}"));
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bar
                }),
                said: None,
            })
            .collect();
        Transfers { rows, board }
    }

    /// The look of a bar: with its bytes once their total is known, else the stage alone.
    fn style(with_bytes: bool) -> ProgressStyle {
        let template = if with_bytes {
            "{prefix} {msg} [{bar:30}] {bytes}/{total_bytes}"
        } else {
            "{prefix} {spinner} {msg}"
        };
        ProgressStyle::with_template(template)
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
    }

    /// Shows transfer `index` at `stage`, `bytes` done of `total` where known.
    pub fn update(&mut self, index: usize, stage: &str, bytes: Option<u64>, total: Option<u64>) {
        let Some(row) = self.rows.get_mut(index) else {
            return;
        };
        if let Some(bar) = &row.bar {
            match total {
                Some(total) => {
                    if bar.length() != Some(total) {
                        bar.set_style(Self::style(true));
                        bar.set_length(total);
                    }
                    bar.set_position(bytes.unwrap_or(0).min(total));
                }
                None => bar.set_style(Self::style(false)),
            }
            bar.set_message(stage.to_owned());
            return;
        }
        let due = match &row.said {
            None => true,
            Some((said, _, _)) if said != stage => true,
            Some((_, said_bytes, at)) => *said_bytes != bytes && at.elapsed() >= PLAIN_EVERY,
        };
        if due {
            eprintln!("fetch: {}: {}", row.label, describe(stage, bytes, total));
            row.said = Some((stage.to_owned(), bytes, Instant::now()));
        }
    }

    /// Ends transfer `index` with `message`; `complete`: its bar shows every byte done.
    pub fn finish(&mut self, index: usize, message: &str, complete: bool) {
        let Some(row) = self.rows.get_mut(index) else {
            return;
        };
        match &row.bar {
            Some(bar) => {
                if complete {
                    bar.set_position(bar.length().unwrap_or(0));
                }
                bar.finish_with_message(message.to_owned());
            }
            None => eprintln!("fetch: {}: {message}", row.label),
        }
    }

    /// Ends the display: the bars stay as they are, and what is written next starts a line.
    pub fn close(self) {
        if self.board.is_none() {
            return;
        }
        for bar in self.rows.iter().filter_map(|row| row.bar.as_ref()) {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
        // The last bar's line has no line end.
        eprintln!();
    }
}

/// `stage`, with `bytes` of `total` where known: `downloading 1.00 MiB of 4.00 MiB (25%)`.
fn describe(stage: &str, bytes: Option<u64>, total: Option<u64>) -> String {
    match (bytes, total) {
        (Some(bytes), Some(total)) if total > 0 => format!(
            "{stage} {} of {} ({}%)",
            HumanBytes(bytes),
            HumanBytes(total),
            bytes.min(total) * 100 / total
        ),
        (Some(bytes), _) if bytes > 0 => format!("{stage} {}", HumanBytes(bytes)),
        (_, Some(total)) if total > 0 => format!("{stage}, {}", HumanBytes(total)),
        _ => stage.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_says_the_stage_and_the_bytes_it_knows() {
        assert_eq!(describe("queued", None, None), "queued");
        assert_eq!(
            describe("downloading", Some(1 << 20), Some(4 << 20)),
            "downloading 1.00 MiB of 4.00 MiB (25%)"
        );
        assert_eq!(
            describe("downloading", Some(512), None),
            "downloading 512 B"
        );
        assert_eq!(describe("stored", None, Some(2048)), "stored, 2.00 KiB");
        assert_eq!(describe("downloading", Some(0), None), "downloading");
    }
}
