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

    /// Runs a long step, ticking its line on a terminal until it finishes.
    pub async fn around<T>(&self, msg: &str, fut: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = tick.tick() => self.running(msg, start),
            }
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

    /// A line of its own (a case's verdict), whatever the terminal.
    pub fn note(&self, msg: &str) {
        if self.quiet {
            return;
        }
        if self.tty {
            eprintln!("\r\x1b[2K{msg}");
        } else {
            eprintln!("lab: {msg}");
        }
    }
}
