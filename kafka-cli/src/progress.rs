//! Progress on stderr for long produces and consumes, only where stderr is a
//! terminal (scripts reading stderr see only the summary and errors).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Counts records and redraws one status line at most every 200 ms.
pub(crate) struct Progress {
    verb: &'static str,
    count: u64,
    bytes: u64,
    shown: Option<Instant>,
    start: Instant,
    terminal: bool,
}

impl Progress {
    /// A counter for `verb` ("produced", "consumed").
    pub(crate) fn new(verb: &'static str) -> Progress {
        Progress {
            verb,
            count: 0,
            bytes: 0,
            shown: None,
            start: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// One more record of `bytes` bytes.
    pub(crate) fn add(&mut self, bytes: usize) {
        self.count += 1;
        self.bytes += bytes as u64;
        if self.terminal
            && self
                .shown
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(200))
        {
            self.shown = Some(Instant::now());
            let mut err = std::io::stderr();
            let _ = write!(
                err,
                "\r{} {} records ({} bytes)",
                self.verb, self.count, self.bytes
            );
            let _ = err.flush();
        }
    }

    /// Records counted.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Ends the status line with a summary.
    pub(crate) fn finish(&self, what: &str) {
        let mut err = std::io::stderr();
        if self.terminal && self.shown.is_some() {
            let _ = write!(err, "\r");
        }
        let _ = writeln!(
            err,
            "{} {} records ({} bytes) {what} in {:.1?}",
            self.verb,
            self.count,
            self.bytes,
            self.start.elapsed()
        );
    }
}
