//! Stopping the daemon, after mini-redis: one broadcast tells every task how to
//! stop. Later stages (drain, reload) send more kinds of news on the same road.

use tokio::sync::broadcast;

/// How to stop. Graceful restart decides which one SIGTERM means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// Close sessions without a NOTIFICATION and leave the FIB as it is, so
    /// peers keep our routes and forwarding goes on (RFC 4724).
    Graceful,
    /// Send Cease/Administrative Shutdown and remove our routes from the FIB.
    Hard,
}

/// A task's end of the shutdown broadcast.
#[derive(Debug)]
pub struct Shutdown {
    mode: Option<StopMode>,
    notify: broadcast::Receiver<StopMode>,
}

impl Shutdown {
    pub fn new(notify: broadcast::Receiver<StopMode>) -> Self {
        Shutdown { mode: None, notify }
    }

    pub fn mode(&self) -> Option<StopMode> {
        self.mode
    }

    /// Waits for the stop. A closed channel (the daemon is gone) means a hard stop.
    pub async fn recv(&mut self) -> StopMode {
        if let Some(mode) = self.mode {
            return mode;
        }
        let mode = self.notify.recv().await.unwrap_or(StopMode::Hard);
        self.mode = Some(mode);
        mode
    }
}
