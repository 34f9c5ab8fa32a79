//! The service state file, watched: read again whenever it changes (its inode, size
//! or modification time; writers replace it with a rename, as Calico's confd and
//! `kubectl ... > tmp && mv tmp FILE` do). A file that is missing, unreadable or
//! wrong is reported, never taken as "no services": the daemon keeps the last good
//! state and says so in its log, status and metrics.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::services::{self, ServiceState};
use crate::shutdown::Shutdown;

/// How often the file is looked at.
const POLL: Duration = Duration::from_millis(100);

/// One reading of the file.
#[derive(Debug)]
pub enum Read {
    State(ServiceState),
    Failed { problem: Problem, error: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    Missing,
    Unreadable,
    Invalid,
}

/// Reads and parses `path` once.
pub fn read(path: &Path) -> Read {
    let failed = |problem, error: String| Read::Failed {
        problem,
        error: format!("{}: {error}", path.display()),
    };
    match std::fs::read_to_string(path) {
        Ok(text) => match services::parse(&text) {
            Ok(state) => Read::State(state),
            Err(e) => failed(Problem::Invalid, e),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => failed(Problem::Missing, "no such file".into()),
        Err(e) => failed(Problem::Unreadable, e.to_string()),
    }
}

/// What tells one version of the file from the next.
#[derive(Debug, PartialEq, Eq)]
enum Stamp {
    Present { ino: u64, len: u64, mtime_ns: i64 },
    Absent(std::io::ErrorKind),
}

fn stamp(path: &Path) -> Stamp {
    match std::fs::metadata(path) {
        Ok(m) => Stamp::Present {
            ino: m.ino(),
            len: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        },
        Err(e) => Stamp::Absent(e.kind()),
    }
}

/// Sends a [`Read`] of `path` each time it changes, the first one at once.
pub async fn watch(path: PathBuf, tx: mpsc::UnboundedSender<Read>, mut shutdown: Shutdown) {
    let mut last = None;
    loop {
        let now = stamp(&path);
        if last.as_ref() != Some(&now) {
            last = Some(now);
            if tx.send(read(&path)).is_err() {
                return;
            }
        }
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// The file as the daemon last found it, for `speaker status` and the metrics.
#[derive(Clone, Debug, Serialize)]
pub struct FileStatus {
    pub file: PathBuf,
    /// `ok`, or what is wrong: the services of the last good reading stay.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the file was last read well.
    pub read_at: Option<String>,
    /// Readings that failed since the daemon started.
    pub errors: u64,
}

impl FileStatus {
    pub fn new(file: PathBuf) -> FileStatus {
        FileStatus {
            file,
            state: "not read yet",
            error: None,
            read_at: None,
            errors: 0,
        }
    }

    /// A good reading, at `at` (RFC 3339).
    pub fn ok(&mut self, at: String) {
        self.state = "ok";
        self.error = None;
        self.read_at = Some(at);
    }

    pub fn failed(&mut self, problem: Problem, error: String) {
        self.state = match problem {
            Problem::Missing => "missing",
            Problem::Unreadable => "unreadable",
            Problem::Invalid => "invalid",
        };
        self.error = Some(error);
        self.errors += 1;
    }

    pub fn is_ok(&self) -> bool {
        self.state == "ok"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wait(rx: &mut mpsc::UnboundedReceiver<Read>) -> Read {
        for _ in 0..40 {
            if let Ok(r) = rx.try_recv() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no reading within 2 s");
    }

    #[tokio::test]
    async fn changes_are_read_and_bad_versions_reported() {
        let dir = std::env::temp_dir().join(format!("speaker-svc-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("services.yaml");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (stop, _) = tokio::sync::broadcast::channel(1);
        let task = tokio::spawn(watch(path.clone(), tx, Shutdown::new(stop.subscribe())));
        assert!(matches!(
            wait(&mut rx).await,
            Read::Failed {
                problem: Problem::Missing,
                ..
            }
        ));
        let write = |text: &str| {
            let tmp = dir.join("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        };
        write("items: [{kind: Service, metadata: {name: a}, spec: {clusterIP: 10.96.0.1}}]");
        match wait(&mut rx).await {
            Read::State(s) => assert_eq!(s.services.len(), 1),
            other => panic!("{other:?}"),
        }
        write("items: [{kind: Service, metadata: {name: a}, spec: {clusterIP: nope}}]");
        match wait(&mut rx).await {
            Read::Failed { problem, error } => {
                assert_eq!(problem, Problem::Invalid);
                assert!(error.contains("services.yaml: items[0] (Service default/a)"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            wait(&mut rx).await,
            Read::Failed {
                problem: Problem::Missing,
                ..
            }
        ));
        let _ = stop.send(crate::shutdown::StopMode::Hard);
        task.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
