//! Prometheus metrics on `metricsAddress`: a minimal HTTP/1.1 server answering
//! `GET /metrics` in the text exposition format (version 0.0.4). The daemon
//! renders the page from its own state; the counters that hot paths bump
//! without asking the daemon (FIB results, event-to-UPDATE latency) live here.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use crate::messages::ApiRequest;
use crate::node::FibSummary;
use crate::shutdown::Shutdown;

/// Upper bounds (seconds) of the event-to-UPDATE histogram: the interesting
/// range is tens of microseconds to a few milliseconds.
const BUCKETS: [f64; 13] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// A cumulative histogram updated with atomics, so the session writer can
/// observe without a lock.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, n) in BUCKETS.iter().zip(&self.counts) {
            if secs <= *bound {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, n) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", n.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Counters shared by the tasks that bump them.
#[derive(Debug, Default)]
pub struct Shared {
    pub fib_ok: AtomicU64,
    pub fib_failed: AtomicU64,
    /// From the kernel event to the UPDATE carrying it written to the socket.
    pub event_to_update: Histogram,
}

pub type SharedMetrics = Arc<Shared>;

/// One peer's numbers, as the daemon gathers them.
pub struct PeerSample {
    pub address: String,
    pub state: &'static str,
    pub transitions: u64,
    pub updates_in: u64,
    pub updates_out: u64,
    pub received: usize,
    pub accepted: usize,
    pub advertised: usize,
    /// Whether its BFD session is up, and its state changes; `None` without BFD.
    pub bfd: Option<(bool, u64)>,
}

/// The services as the daemon knows them.
#[derive(Default)]
pub struct ServiceSample {
    /// The state file's last reading was good.
    pub file_ok: bool,
    /// Readings of it that failed.
    pub file_errors: u64,
    pub routes: usize,
    pub services: usize,
}

const STATES: [&str; 6] = ["Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established"];

/// The exposition page.
pub fn render(peers: &[PeerSample], fib: &FibSummary, svc: &ServiceSample, shared: &Shared) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP speaker_sessions Configured BGP sessions by state.\n# TYPE speaker_sessions gauge"
    );
    for state in STATES {
        let n = peers.iter().filter(|p| p.state == state).count();
        let _ = writeln!(out, "speaker_sessions{{state=\"{state}\"}} {n}");
    }
    type Field = fn(&PeerSample) -> f64;
    let per_peer: [(&str, &str, &str, Field); 6] = [
        (
            "speaker_session_transitions_total",
            "counter",
            "FSM state changes of the session.",
            |p| p.transitions as f64,
        ),
        (
            "speaker_updates_received_total",
            "counter",
            "UPDATE messages received.",
            |p| p.updates_in as f64,
        ),
        ("speaker_updates_sent_total", "counter", "UPDATE messages sent.", |p| {
            p.updates_out as f64
        }),
        (
            "speaker_prefixes_received",
            "gauge",
            "Prefixes the peer advertises to us.",
            |p| p.received as f64,
        ),
        (
            "speaker_prefixes_accepted",
            "gauge",
            "Prefixes of the peer accepted by the import policy.",
            |p| p.accepted as f64,
        ),
        (
            "speaker_prefixes_advertised",
            "gauge",
            "Prefixes we advertise to the peer.",
            |p| p.advertised as f64,
        ),
    ];
    for (name, kind, help, field) in per_peer {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for p in peers {
            let _ = writeln!(out, "{name}{{peer=\"{}\"}} {}", p.address, field(p));
        }
    }
    type BfdField = fn((bool, u64)) -> u64;
    let bfd: [(&str, &str, &str, BfdField); 2] = [
        (
            "speaker_bfd_up",
            "gauge",
            "1 while the peer's BFD session is Up (peers with BFD only).",
            |(up, _)| u64::from(up),
        ),
        (
            "speaker_bfd_transitions_total",
            "counter",
            "State changes of the peer's BFD session.",
            |(_, n)| n,
        ),
    ];
    for (name, kind, help, field) in bfd {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for p in peers {
            if let Some(b) = p.bfd {
                let _ = writeln!(out, "{name}{{peer=\"{}\"}} {}", p.address, field(b));
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP speaker_fib_operations_total Kernel route writes by result.\n# TYPE speaker_fib_operations_total counter"
    );
    let _ = writeln!(
        out,
        "speaker_fib_operations_total{{result=\"ok\"}} {}\nspeaker_fib_operations_total{{result=\"failed\"}} {}",
        shared.fib_ok.load(Ordering::Relaxed),
        shared.fib_failed.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP speaker_fib_routes Learned best routes by what the kernel holds of them.\n# TYPE speaker_fib_routes gauge"
    );
    for (state, n) in [
        ("wanted", fib.wanted),
        ("installed", fib.installed),
        ("held_by_other", fib.held_by_other),
        ("failed", fib.failed),
        ("stale_from_previous_run", fib.stale_from_previous_run),
    ] {
        let _ = writeln!(out, "speaker_fib_routes{{state=\"{state}\"}} {n}");
    }
    for (name, kind, help, value) in [
        (
            "speaker_service_state_ok",
            "gauge",
            "1 when the service state file's last reading was good; 0 while the services of an earlier reading stay.",
            u64::from(svc.file_ok),
        ),
        (
            "speaker_service_state_errors_total",
            "counter",
            "Readings of the service state file that failed (missing, unreadable, invalid).",
            svc.file_errors,
        ),
        (
            "speaker_service_routes",
            "gauge",
            "Service routes advertised.",
            svc.routes as u64,
        ),
        (
            "speaker_services",
            "gauge",
            "Services known from the state file.",
            svc.services as u64,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }
    shared.event_to_update.render(
        &mut out,
        "speaker_event_to_update_seconds",
        "Time from a kernel route event to the UPDATE carrying it written to the peer's socket.",
    );
    out
}

/// Serves `GET /metrics` until shutdown.
pub async fn serve(listener: TcpListener, daemon: mpsc::Sender<ApiRequest>, mut shutdown: Shutdown) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving metrics");
    }
    loop {
        let accepted = tokio::select! {
            _ = shutdown.recv() => return,
            a = listener.accept() => a,
        };
        if let Ok((stream, _)) = accepted {
            let daemon = daemon.clone();
            tokio::spawn(async move {
                if let Err(e) = tokio::time::timeout(Duration::from_secs(5), answer(stream, daemon)).await {
                    debug!(error = %e, "metrics client too slow");
                }
            });
        }
    }
}

async fn answer(mut stream: TcpStream, daemon: mpsc::Sender<ApiRequest>) -> std::io::Result<()> {
    // Only the request line matters; read until the end of the headers (bounded).
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (status, ctype, body) = match (method, path.split('?').next().unwrap_or_default()) {
        ("GET", "/metrics") => {
            let (tx, rx) = oneshot::channel();
            let body = match daemon.send(ApiRequest::Metrics(tx)).await {
                Ok(()) => rx.await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
        }
        ("GET", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "metrics are at /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_string(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_has_every_family_and_cumulative_buckets() {
        let shared = Shared::default();
        shared.event_to_update.observe(Duration::from_micros(30));
        shared.event_to_update.observe(Duration::from_millis(3));
        shared.fib_ok.fetch_add(2, Ordering::Relaxed);
        let peers = [PeerSample {
            address: "10.0.0.2".into(),
            state: "Established",
            transitions: 4,
            updates_in: 3,
            updates_out: 5,
            received: 2,
            accepted: 1,
            advertised: 1,
            bfd: Some((true, 3)),
        }];
        let page = render(&peers, &FibSummary::default(), &ServiceSample::default(), &shared);
        for line in [
            "speaker_sessions{state=\"Established\"} 1",
            "speaker_sessions{state=\"Idle\"} 0",
            "speaker_updates_sent_total{peer=\"10.0.0.2\"} 5",
            "speaker_prefixes_accepted{peer=\"10.0.0.2\"} 1",
            "speaker_bfd_up{peer=\"10.0.0.2\"} 1",
            "speaker_bfd_transitions_total{peer=\"10.0.0.2\"} 3",
            "speaker_fib_operations_total{result=\"ok\"} 2",
            "speaker_event_to_update_seconds_bucket{le=\"0.00005\"} 1",
            "speaker_event_to_update_seconds_bucket{le=\"0.001\"} 1",
            "speaker_event_to_update_seconds_bucket{le=\"0.005\"} 2",
            "speaker_event_to_update_seconds_count 2",
        ] {
            assert!(page.lines().any(|l| l == line), "missing `{line}` in\n{page}");
        }
    }
}
