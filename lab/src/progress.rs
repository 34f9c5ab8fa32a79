//! Progress of long steps: on a terminal, a line that updates in place while a step
//! runs; elsewhere (CI logs, pipes), plain lines, one per finished step.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    tty: bool,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            quiet,
        }
    }

    /// A step still running: updated in place on a terminal, not printed elsewhere.
    pub fn running(&self, msg: &str, since: Instant) {
        if self.tty && !self.quiet {
            let mut e = std::io::stderr();
            let _ = write!(e, "\r\x1b[2K  … {msg} ({:.1}s)", since.elapsed().as_secs_f64());
            let _ = e.flush();
        }
    }

    /// A finished step, with how long it took.
    pub fn done(&self, msg: &str, since: Instant) {
        if self.quiet {
            return;
        }
        let secs = since.elapsed().as_secs_f64();
        if self.tty {
            eprintln!("\r\x1b[2K  ✓ {msg} ({secs:.1}s)");
        } else {
            eprintln!("lab: {msg} ({secs:.1}s)");
        }
    }
}
