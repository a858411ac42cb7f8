//! The progress bar of the long commands (`udl keys rotate`, `udl cdc snapshot`): one line on
//! standard error, redrawn in place; without a known total, just the count so far.

use std::io::Write as _;

/// A one-line progress bar of `label`'s work.
pub struct ProgressBar {
    /// What is being done.
    pub label: String,
    /// Units to do, when known beforehand.
    pub total: Option<u64>,
}

impl ProgressBar {
    const WIDTH: u64 = 30;

    /// Shows `done` units done.
    pub fn show(&self, done: u64) {
        let mut err = std::io::stderr().lock();
        let _ = match self.total {
            Some(total) => {
                let filled = (done.min(total) * Self::WIDTH)
                    .checked_div(total)
                    .unwrap_or(Self::WIDTH);
                let bar = format!(
                    "{}{}",
                    "#".repeat(filled as usize),
                    "-".repeat((Self::WIDTH - filled) as usize)
                );
                write!(err, "\r{:<40} [{bar}] {done}/{total}", self.label)
            }
            None => write!(err, "\r{:<40} {done} read", self.label),
        };
        let _ = err.flush();
    }

    /// Shows `done` and ends the line.
    pub fn finish(&self, done: u64) {
        self.show(done);
        eprintln!();
    }
}
