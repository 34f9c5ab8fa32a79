//! The daemon: a thin loop around the core ([`Node`]). It feeds the core what the
//! kernel watcher, the sessions, the FIB thread, the API and the clock report, and
//! carries out what the core decides: FIB commands to the FIB thread (a few it
//! writes itself, when nothing is queued there), UPDATEs to the
//! sessions (as soon as what is already queued has been read: no timers on the
//! withdraw path), sessions started and stopped. With `record`, every input is
//! written as a line of JSON, to be replayed against the core in tests.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::bfd_io::{self, BfdHandle, BfdStatus};
use crate::config::{Config, Neighbor};
use crate::echoes::Echoes;
use crate::fib::{self, Fib};
use crate::kernel::{self, KernelBatch, KernelError};
use crate::messages::{ApiRequest, DrainPeer, DrainPlan, FibCmd, FibReport, PeerEvent, SessionCmd};
use crate::metrics::{PeerSample, SharedMetrics};
use crate::node::{Input, Node, Output};
use crate::packet::Notification;
use crate::service_watch::{self, FileStatus, Read};
use crate::session::{self, LocalSide, SessionHandle};
use crate::shutdown::{Shutdown, StopMode};
use crate::{api, listener, transport};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("kernel: {0}")]
    Kernel(#[from] KernelError),
    #[error("cannot listen on port {port}: {source} (is another BGP daemon running?)")]
    Listen { port: u16, source: std::io::Error },
    #[error("API socket {path}: {source}")]
    Api { path: String, source: std::io::Error },
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("peer {peer}: cannot set its TCP-MD5 password on the listening socket: {source}")]
    Md5 { peer: IpAddr, source: std::io::Error },
    #[error("cannot record the core's inputs to {path}: {source}")]
    Record { path: String, source: std::io::Error },
}

/// Writes each input of the core as `{"at_ms": …, "input": …}`.
struct Recorder {
    file: std::io::BufWriter<std::fs::File>,
}

impl Recorder {
    fn write(&mut self, at: Duration, input: &Input) {
        let line = json!({ "at_ms": at.as_millis() as u64, "input": input });
        let _ = writeln!(self.file, "{line}");
        let _ = self.file.flush();
    }
}

struct Daemon {
    node: Node,
    started: Instant,
    recorder: Option<Recorder>,
    /// What a session started by the core needs.
    local: LocalSide,
    peer_tx: mpsc::UnboundedSender<PeerEvent>,
    notify: broadcast::Sender<StopMode>,
    listener_peers: listener::Peers,
    listen_fd: std::os::fd::RawFd,
    listen_v6: bool,
    sessions: BTreeMap<IpAddr, SessionHandle>,
    fib_tx: mpsc::UnboundedSender<Vec<FibCmd>>,
    /// The FIB, shared with its thread: the core writes a few changes itself when
    /// nothing is queued for the thread.
    fib: Arc<Mutex<Fib>>,
    /// FIB commands sent to the thread whose reports have not been read yet.
    fib_in_flight: Arc<AtomicUsize>,
    /// Reports of the changes the core made itself, to read after the flush.
    fib_done_here: Vec<FibReport>,
    /// Inputs handled since the loop last let the other tasks run.
    turn_work: usize,
    metrics: SharedMetrics,
    /// When the oldest kernel change not yet flushed was read.
    kernel_event: Option<std::time::Instant>,
    /// What the last drain sent each peer.
    drained: Vec<(IpAddr, usize, usize)>,
    bfd: BfdHandle,
    /// The service state file as last read.
    services: FileStatus,
}

/// Runs the daemon until `stop` resolves. Each configuration from `reloads`
/// (already validated) replaces the running one: peers whose settings did not
/// change keep their sessions. With `record`, the core's inputs go to that file.
pub async fn run(
    config: Config,
    stop: impl Future<Output = ()>,
    mut reloads: mpsc::UnboundedReceiver<Config>,
    record: Option<PathBuf>,
) -> Result<(), DaemonError> {
    let (notify, _) = broadcast::channel::<StopMode>(4);
    let shutdown = || Shutdown::new(notify.subscribe());
    let recorder = match &record {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|source| DaemonError::Record {
                path: path.display().to_string(),
                source,
            })?;
            Some(Recorder {
                file: std::io::BufWriter::new(file),
            })
        }
        None => None,
    };

    let metrics = SharedMetrics::default();
    let (fib_protocol, fib_table) = (config.fib.protocol, config.fib.table.0);
    let mut fib = Fib::new(fib_protocol, fib_table, metrics.clone())?;
    let own = fib.own_routes()?;

    let listener = listener::bind(config.listen_address, config.listen_port)
        .await
        .map_err(|source| DaemonError::Listen {
            port: config.listen_port,
            source,
        })?;
    let listen_fd = listener.as_raw_fd();
    let listen_v6 = listener.local_addr().is_ok_and(|a| a.is_ipv6());
    for n in config.neighbors() {
        if let Some(pw) = &n.password {
            transport::set_md5_key(listen_fd, listen_v6, n.address, Some(pw.as_bytes())).map_err(|source| {
                DaemonError::Md5 {
                    peer: n.address,
                    source,
                }
            })?;
        }
    }
    let api_listener = api::bind(&config.api_socket).map_err(|source| DaemonError::Api {
        path: config.api_socket.display().to_string(),
        source,
    })?;

    let (kernel_tx, mut kernel_rx) = mpsc::unbounded_channel();
    let echoes = Echoes::new(fib_protocol, fib_table);
    let fib = Arc::new(Mutex::new(fib.with_echoes(echoes.clone())));
    let kernel_task = tokio::spawn(kernel::watch(kernel_tx, Some(echoes), shutdown()));
    // The kernel's local routes are read before any session starts, so the first
    // table a peer gets, and the End-of-RIB after it, hold them: a peer helping our
    // graceful restart flushes at that End-of-RIB whatever it did not get, and our
    // blocks would flap in its FIB.
    let Some(initial) = kernel_rx.recv().await else {
        let e = match kernel_task.await {
            Ok(Err(e)) => e,
            _ => KernelError::Io(std::io::Error::other(
                "the kernel watcher ended before reading the routes",
            )),
        };
        return Err(DaemonError::Kernel(e));
    };

    let (fib_tx, fib_rx) = mpsc::unbounded_channel();
    let (fib_report_tx, mut fib_reports) = mpsc::unbounded_channel();
    // Blocking netlink writes, on a thread of their own; the thread hands the FIB
    // back when the daemon stops.
    let thread_fib = fib.clone();
    let fib_thread = std::thread::Builder::new()
        .name("fib".into())
        .spawn(move || fib::run(&thread_fib, fib_rx, fib_report_tx))
        .map_err(|e| DaemonError::Kernel(KernelError::Io(e)))?;

    let local = LocalSide {
        router_id: config.router_id,
        port: config.listen_port,
        restarting: false,
        metrics: metrics.clone(),
    };
    let (peer_tx, mut peer_rx) = mpsc::unbounded_channel();
    let incoming = listener::Peers::default();
    let listener_task = tokio::spawn(listener::serve(listener, incoming.clone(), shutdown()));
    let (api_tx, mut api_rx) = mpsc::channel(16);
    let metrics_task = match config.metrics_address {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::Metrics { addr, source })?;
            Some(tokio::spawn(crate::metrics::serve(l, api_tx.clone(), shutdown())))
        }
        None => None,
    };
    let api_task = tokio::spawn(api::serve(api_listener, api_tx, shutdown()));

    let (bfd, bfd_task) = bfd_io::spawn(shutdown());
    let service_file = config.service_state_file.clone();
    let mut node = Node::new(config);
    let sink = fib_tx.clone();
    let fib_in_flight = Arc::new(AtomicUsize::new(0));
    let in_flight = fib_in_flight.clone();
    node.set_fib_sink(Box::new(move |cmds| {
        in_flight.fetch_add(cmds.len(), Ordering::Relaxed);
        let _ = sink.send(cmds);
    }));
    let mut d = Daemon {
        node,
        started: Instant::now(),
        recorder,
        local,
        peer_tx,
        notify: notify.clone(),
        listener_peers: incoming,
        listen_fd,
        listen_v6,
        sessions: BTreeMap::new(),
        fib_tx,
        fib: fib.clone(),
        fib_in_flight,
        fib_done_here: Vec::new(),
        turn_work: 0,
        metrics: metrics.clone(),
        kernel_event: None,
        drained: Vec::new(),
        bfd,
        services: FileStatus::new(service_file.clone()),
    };
    d.input(Input::Kernel(initial.events));
    // The services too are known before the sessions start, for the same reason:
    // the watcher's first reading comes at once.
    let (services_tx, mut services_rx) = mpsc::unbounded_channel();
    let services_task = tokio::spawn(service_watch::watch(service_file, services_tx, shutdown()));
    if let Some(read) = services_rx.recv().await {
        d.services_read(read);
    }
    let own_routes = own.into_iter().map(|r| (r.prefix, r.gateways)).collect();
    d.input(Input::Start { own_routes });
    d.flush_all();
    // The dump is the starting state, not an event: it is not timed.
    d.kernel_event = None;
    info!(asn = d.node.config().as_number, router_id = %d.node.config().router_id, peers = d.sessions.len(), "speaker started");

    tokio::pin!(stop);
    loop {
        let deadline = d.node.next_deadline().map(|t| d.started + t);
        tokio::select! {
            biased;
            _ = &mut stop => break,
            Some(batch) = kernel_rx.recv() => d.kernel(batch),
            Some(event) = peer_rx.recv() => d.input(Input::Peer(event)),
            Some(reports) = fib_reports.recv() => d.fib_reports(reports),
            Some(req) = api_rx.recv() => d.api(req),
            Some(new) = reloads.recv() => d.input(Input::Reload(Box::new(new))),
            Some(read) = services_rx.recv() => d.services_read(read),
            _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => d.input(Input::Tick),
        }
        // Kernel changes first: they are the time-critical path.
        while let Ok(batch) = kernel_rx.try_recv() {
            d.kernel(batch);
        }
        d.flush_all();
        // Then whatever peers and the FIB sent meanwhile, a bounded amount at a time:
        // peers first, as a session that ended must take its routes away at once,
        // however much bookkeeping of routes already written is queued.
        for _ in 0..1024 {
            let Ok(event) = peer_rx.try_recv() else { break };
            d.input(Input::Peer(event));
        }
        if let Ok(reports) = fib_reports.try_recv() {
            d.fib_reports(reports);
        }
        d.flush_all();
        // The sessions, the watcher and this loop share one thread: after a long
        // turn, let them read what arrived meanwhile (a NOTIFICATION behind 100k
        // reports of routes written waited 0.1 s for its session to read it).
        if d.turn_work >= 512 {
            d.turn_work = 0;
            tokio::task::yield_now().await;
        }
    }

    let mode = if d.node.config().graceful_restart.enabled {
        StopMode::Graceful
    } else {
        StopMode::Hard
    };
    info!(?mode, "stopping");
    let _ = notify.send(mode);
    for (_, s) in std::mem::take(&mut d.sessions) {
        let _ = tokio::time::timeout(Duration::from_secs(3), s.task).await;
    }
    // Its peers get AdminDown, which they must not take for a failure.
    let _ = tokio::time::timeout(Duration::from_secs(1), bfd_task).await;
    let _ = listener_task.await;
    let _ = api_task.await;
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    let _ = kernel_task.await;
    let _ = services_task.await;
    let api_socket = d.node.config().api_socket.clone();
    drop(d);
    // The thread ends once the daemon's sender is gone.
    if !matches!(tokio::task::spawn_blocking(move || fib_thread.join()).await, Ok(Ok(()))) {
        warn!("the FIB thread failed");
    }
    if mode == StopMode::Hard {
        // Whatever the kernel holds of ours, as it holds it now.
        match fib.lock().unwrap_or_else(|p| p.into_inner()).remove_own() {
            Ok(n) => info!(routes = n, "our routes removed from the kernel"),
            Err(e) => warn!(error = %e, "cannot read our routes to remove them"),
        }
    } else {
        info!("graceful stop: routes left in the kernel for the restart");
    }
    let _ = std::fs::remove_file(&api_socket);
    Ok(())
}

/// At most this many FIB changes are made by the core itself (see `Daemon::flush`).
const FIB_HERE_MAX: usize = 64;

impl Daemon {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn input(&mut self, input: Input) {
        self.turn_work += 1;
        let now = self.now();

        if let Some(r) = &mut self.recorder {
            r.write(now, &input);
        }
        self.node.handle(now, input);
    }

    /// A reading of the service state file: a good one replaces the services, a
    /// bad one leaves them as they were, and says so.
    fn services_read(&mut self, read: Read) {
        let wanted = !self.node.config().service_cidrs().is_empty();
        let (routes, known) = self.node.service_counts();
        match read {
            Read::State(state) => {
                if !self.services.is_ok() || state.services.len() != known {
                    info!(services = state.services.len(), file = %self.services.file.display(), "service state read");
                }
                self.services.ok(rfc3339(SystemTime::now()));
                self.input(Input::Services(state));
            }
            Read::Failed { problem, error } => {
                let first = self.services.error.as_deref() != Some(&error);
                self.services.failed(problem, error.clone());
                match (first, wanted || known > 0) {
                    (true, true) => {
                        warn!(%error, services = known, routes, "service state not read: the services read before stay advertised")
                    }
                    (true, false) => debug!(%error, "no service state"),
                    (false, _) => {}
                }
            }
        }
    }

    fn fib_reports(&mut self, (answered, reports): (usize, Vec<FibReport>)) {
        self.fib_in_flight.fetch_sub(answered, Ordering::Relaxed);
        self.turn_work += reports.len();
        for report in reports {
            self.input(Input::Fib(report));
        }
    }

    fn kernel(&mut self, batch: KernelBatch) {
        self.kernel_event.get_or_insert(batch.received);
        self.input(Input::Kernel(batch.events));
    }

    /// Carries out what the core decided.
    fn flush(&mut self) {
        let kernel_event = self.kernel_event.take();
        let mut fib = Vec::new();
        for output in self.node.flush() {
            match output {
                Output::Fib(cmd) => fib.push(cmd),
                Output::Send {
                    peer,
                    generation,
                    batch,
                } => {
                    if let Some(s) = self.sessions.get(&peer) {
                        let _ = s.cmd.send(SessionCmd::Send {
                            generation,
                            batch,
                            kernel_event,
                        });
                    }
                }
                Output::StartSession { peer, restarting } => {
                    if let Some(n) = self.node.neighbor(&peer).cloned() {
                        self.start_session(n, restarting);
                    }
                }
                Output::StopSession { peer, cease } => self.stop_session(peer, cease),
                Output::Drained {
                    peer,
                    withdrawn,
                    announced,
                } => self.drained.push((peer, withdrawn, announced)),
            }
        }
        if fib.is_empty() {
            return;
        }
        // A few changes with nothing queued for the thread: made here, at once,
        // rather than waking the thread (on another CPU of a virtual machine, that
        // wake-up alone cost a millisecond or more).
        if fib.len() <= FIB_HERE_MAX && self.fib_in_flight.load(Ordering::Relaxed) == 0 {
            if let Ok(mut f) = self.fib.try_lock() {
                let reports = f.execute(fib);
                self.fib_done_here.extend(reports);
                return;
            }
        }
        self.fib_in_flight.fetch_add(fib.len(), Ordering::Relaxed);
        let _ = self.fib_tx.send(fib);
    }

    /// [`Daemon::flush`], and again while the changes made here answer with more.
    fn flush_all(&mut self) {
        self.flush();
        while !self.fib_done_here.is_empty() {
            for report in std::mem::take(&mut self.fib_done_here) {
                self.input(Input::Fib(report));
            }
            self.flush();
        }
    }

    fn start_session(&mut self, n: Neighbor, restarting: bool) {
        if let Some(pw) = &n.password {
            if let Err(e) = transport::set_md5_key(self.listen_fd, self.listen_v6, n.address, Some(pw.as_bytes())) {
                warn!(peer = %n.address, error = %e, "cannot set the TCP-MD5 password on the listening socket");
            }
        }
        let local = LocalSide {
            restarting,
            ..self.local.clone()
        };
        let shutdown = Shutdown::new(self.notify.subscribe());
        let handle = session::spawn(n.clone(), local, self.peer_tx.clone(), shutdown);
        match n.bfd {
            Some(timers) => self.bfd.add(n.address, timers, handle.cmd.clone()),
            None => self.bfd.remove(n.address),
        }
        self.listener_peers
            .write()
            .expect("listener peers")
            .insert(n.address, handle.incoming.clone());
        self.sessions.insert(n.address, handle);
    }

    fn stop_session(&mut self, peer: IpAddr, cease: crate::packet::CeaseSubcode) {
        self.listener_peers.write().expect("listener peers").remove(&peer);
        self.bfd.remove(peer);
        if let Some(s) = self.sessions.remove(&peer) {
            let _ = s.cmd.send(SessionCmd::Stop(Notification::cease(cease)));
            if s.neighbor.password.is_some() {
                let _ = transport::set_md5_key(self.listen_fd, self.listen_v6, peer, None);
            }
        }
    }

    fn api(&mut self, req: ApiRequest) {
        match req {
            ApiRequest::Status(reply) => {
                let _ = reply.send(self.status());
            }
            ApiRequest::Routes {
                filter,
                after,
                limit,
                reply,
            } => {
                let _ = reply.send(self.node.routes_page(filter, after, limit));
            }
            ApiRequest::Metrics(reply) => {
                let _ = reply.send(self.metrics_page());
            }
            ApiRequest::Drain { drain, timeout, reply } => {
                let _ = reply.send(self.drain(drain, timeout));
            }
        }
    }

    /// Applies a drain or undrain to every peer, sends it at once, and asks each
    /// session to confirm delivery.
    fn drain(&mut self, drain: bool, timeout: Option<Duration>) -> DrainPlan {
        self.drained.clear();
        self.input(Input::Drain { drain });
        self.flush_all();
        let config = self.node.config();
        let mode = drain.then_some(config.drain.mode);
        let timeout = timeout.unwrap_or(Duration::from_secs(u64::from(config.drain.timeout_seconds)));
        let sent: HashMap<IpAddr, (usize, usize)> = self.drained.drain(..).map(|(p, w, a)| (p, (w, a))).collect();
        let peers = self
            .sessions
            .iter()
            .map(|(address, s)| {
                let (tx, rx) = oneshot::channel();
                let _ = s.cmd.send(SessionCmd::Sync { timeout, reply: tx });
                let (withdrawn, announced) = sent.get(address).copied().unwrap_or_default();
                DrainPeer {
                    address: *address,
                    action: drain_action(withdrawn, announced, mode),
                    delivered: rx,
                }
            })
            .collect();
        DrainPlan { mode, timeout, peers }
    }

    fn status(&self) -> Value {
        let core = self.node.status();
        let bfd = self.bfd.status.lock().expect("bfd status").clone();
        let peers: Vec<Value> = self
            .sessions
            .values()
            .map(|s| {
                let st = s.status.lock().expect("status").clone();
                let addr = s.neighbor.address;
                let since_unix = st.since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let ours = &core["peers"][addr.to_string()];
                let mut warnings = ours["warnings"].as_array().cloned().unwrap_or_default();
                let bfd = bfd.get(&addr);
                if let Some(b) = bfd.filter(|b| b.state != crate::bfd::State::Up) {
                    let why = b.error.clone().unwrap_or_else(|| match b.diag {
                        "" => "no answer from the peer yet".to_string(),
                        diag => diag.to_string(),
                    });
                    warnings.push(json!(format!("BFD is configured but {}: {why}", b.state)));
                }
                json!({
                    "address": addr,
                    "remote_as": s.neighbor.remote_as,
                    "type": s.neighbor.peer_type.as_str(),
                    "state": st.state.as_str(),
                    "since": rfc3339(st.since),
                    "since_unix": since_unix,
                    "uptime_secs": st.established_at.map_or(0, |t| t.elapsed().as_secs()),
                    "prefixes_received": st.prefixes_received,
                    "prefixes_accepted": ours["prefixes_accepted"],
                    "prefixes_advertised": ours["prefixes_advertised"],
                    "transitions": st.transitions,
                    "info": st.info,
                    "warnings": warnings,
                    "bfd": bfd.map(bfd_json),
                })
            })
            .collect();
        json!({
            "router_id": core["router_id"],
            "as": core["as"],
            "drained": core["drained"],
            "fib": core["fib"],
            "services": self.services_json(),
            "peers": peers,
        })
    }

    fn services_json(&self) -> Value {
        let (routes, services) = self.node.service_counts();
        let mut v = json!(self.services);
        v["services"] = json!(services);
        v["routes"] = json!(routes);
        v
    }

    fn metrics_page(&self) -> String {
        let bfd = self.bfd.status.lock().expect("bfd status").clone();
        let peers: Vec<PeerSample> = self
            .sessions
            .iter()
            .map(|(addr, s)| {
                let st = s.status.lock().expect("status");
                PeerSample {
                    bfd: bfd.get(addr).map(|b| (b.state == crate::bfd::State::Up, b.transitions)),
                    address: addr.to_string(),
                    state: st.state.as_str(),
                    transitions: st.transitions,
                    updates_in: st.updates_in,
                    updates_out: st.updates_out,
                    received: st.prefixes_received,
                    accepted: self.node.counts(*addr).1,
                    advertised: self.node.advertised_count(*addr),
                }
            })
            .collect();
        let (routes, services) = self.node.service_counts();
        let svc = crate::metrics::ServiceSample {
            file_ok: self.services.is_ok(),
            file_errors: self.services.errors,
            routes,
            services,
        };
        crate::metrics::render(&peers, &self.node.fib_summary(), &svc, &self.metrics)
    }
}

/// A peer's BFD session as `speaker status --json` shows it.
fn bfd_json(b: &BfdStatus) -> Value {
    json!({
        "state": b.state.as_str(),
        "diag": b.diag,
        "detect_ms": b.detect.as_millis() as u64,
        "since": rfc3339(b.since),
        "transitions": b.transitions,
        "error": b.error,
    })
}

/// What a drain or undrain sent a peer, in words.
fn drain_action(withdrawn: usize, announced: usize, mode: Option<crate::config::DrainMode>) -> String {
    let n = |k: usize| {
        if k == 1 {
            "1 prefix".to_string()
        } else {
            format!("{k} prefixes")
        }
    };
    match (withdrawn, announced, mode) {
        (0, 0, _) => "nothing to change".to_string(),
        (w, 0, _) => format!("withdrew {}", n(w)),
        (0, a, Some(crate::config::DrainMode::GracefulShutdown)) => {
            format!("re-advertised {} with GRACEFUL_SHUTDOWN", n(a))
        }
        (0, a, _) => format!("advertised {}", n(a)),
        (w, a, _) => format!("withdrew {} and advertised {}", n(w), n(a)),
    }
}

/// `2024-05-01T12:00:00Z`, without a date crate.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86400, secs % 86400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "2024-02-29T12:34:56Z"
        );
    }
}
