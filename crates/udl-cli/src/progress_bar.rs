//! A progress bar on standard error for long commands: redrawn in place on a terminal, one
//! line per tenth of the way otherwise (logs and CI keep a readable record).

use std::io::{IsTerminal as _, Write as _};

/// Draws the progress of `total` units of work.
pub struct ProgressBar {
    total: u64,
    terminal: bool,
    /// The last tenth printed, off a terminal.
    last_tenth: Option<u64>,
}

const WIDTH: u64 = 30;

impl ProgressBar {
    /// A bar for `total` units (0: nothing to do, shown as complete).
    pub fn new(total: u64) -> Self {
        ProgressBar {
            total,
            terminal: std::io::stderr().is_terminal(),
            last_tenth: None,
        }
    }

    /// Shows `done` units done, and what `detail` says.
    pub fn show(&mut self, done: u64, detail: &str) {
        let fraction = if self.total == 0 {
            1.0
        } else {
            (done as f64 / self.total as f64).min(1.0)
        };
        let filled = (fraction * WIDTH as f64) as u64;
        let line = format!(
            "[{}{}] {:>3}% {done}/{} {detail}",
            "#".repeat(filled as usize),
            "-".repeat((WIDTH - filled) as usize),
            (fraction * 100.0) as u64,
            self.total
        );
        let mut err = std::io::stderr();
        if self.terminal {
            let _ = write!(err, "\r{line}\x1b[K");
            let _ = err.flush();
            return;
        }
        let tenth = (fraction * 10.0) as u64;
        if self.last_tenth != Some(tenth) {
            self.last_tenth = Some(tenth);
            let _ = writeln!(err, "{line}");
        }
    }

    /// Ends the bar's line.
    pub fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}
