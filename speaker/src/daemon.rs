//! The daemon: owns the RIB and wires the tasks together. Kernel changes and
//! peer events come in on channels; the resulting FIB operations go to the FIB
//! task and UPDATEs to the sessions, flushed as soon as what is already queued
//! has been applied (no timers on the withdraw path).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::config::{Config, DrainMode, Neighbor};
use crate::fib::{Fib, FibOp};
use crate::kernel::{self, KernelBatch, KernelChange, KernelError, WatchConfig};
use crate::metrics::{PeerSample, SharedMetrics};
use crate::packet::{AfiSafi, CeaseSubcode, NextHop, Notification, PathAttributes, SessionCaps, Update};
use crate::rib::{Changes, FibChange, OutChange, PeerInfo, Rib, RibConfig};
use crate::session::{self, LocalSide, PeerEvent, SessionCmd, SessionHandle, SyncResult};
use crate::shutdown::{Shutdown, StopMode};
use crate::{api, listener, transport};

/// With graceful restart off, how long stale routes of a previous run may wait
/// for the peers' End-of-RIB before they are removed anyway.
const STALE_DEFERRAL: Duration = Duration::from_secs(30);

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
}

/// A question from the API, answered with JSON.
#[derive(Debug)]
pub enum ApiRequest {
    Status(oneshot::Sender<Value>),
    Routes(oneshot::Sender<Value>),
    /// The Prometheus page.
    Metrics(oneshot::Sender<String>),
    /// Drain (`drain: true`) or undrain the node; `timeout` overrides the
    /// configured wait for the peers' acknowledgements.
    Drain {
        drain: bool,
        timeout: Option<Duration>,
        reply: oneshot::Sender<DrainPlan>,
    },
}

/// What a drain or undrain changed, and how to learn when each peer has it.
#[derive(Debug)]
pub struct DrainPlan {
    pub mode: Option<DrainMode>,
    pub timeout: Duration,
    pub peers: Vec<DrainPeer>,
}

#[derive(Debug)]
pub struct DrainPeer {
    pub address: IpAddr,
    /// What was sent, e.g. "withdrew 3 prefixes".
    pub action: String,
    pub delivered: oneshot::Receiver<SyncResult>,
}

struct UpPeer {
    generation: u64,
    caps: SessionCaps,
    families: Vec<AfiSafi>,
    restart_time: Option<Duration>,
}

struct Daemon {
    config: Config,
    /// What a session started later (by a reload) needs.
    local: LocalSide,
    peer_tx: mpsc::UnboundedSender<PeerEvent>,
    notify: broadcast::Sender<StopMode>,
    listener_peers: listener::Peers,
    listen_fd: std::os::fd::RawFd,
    listen_v6: bool,
    rib: Rib,
    sessions: BTreeMap<IpAddr, SessionHandle>,
    up: HashMap<IpAddr, UpPeer>,
    fib: Fib,
    fib_tx: mpsc::UnboundedSender<Vec<FibOp>>,
    /// Prefixes for which a route of another owner is in the kernel.
    foreign: HashSet<IpNet>,
    /// Our routes in the kernel, as we last wrote them.
    installed: HashMap<IpNet, Vec<IpAddr>>,
    /// The RIB's best learned routes.
    wanted: HashMap<IpNet, Vec<IpAddr>>,
    /// Our routes a previous run left, not re-learned yet.
    startup_stale: BTreeSet<IpNet>,
    stale_deadline: Option<Instant>,
    /// Families each peer has sent End-of-RIB for since we started.
    eor: HashMap<IpAddr, HashSet<AfiSafi>>,
    /// Graceful restart helper: when to give up on a peer's stale routes.
    gr_deadlines: HashMap<IpAddr, Instant>,
    pending_fib: Vec<FibOp>,
    pending_out: BTreeMap<IpAddr, Vec<OutChange>>,
    pending_eor: BTreeSet<IpAddr>,
    metrics: SharedMetrics,
    /// When the oldest kernel change not yet flushed was read.
    kernel_event: Option<std::time::Instant>,
}

/// Runs the daemon until `stop` resolves. Each configuration from `reloads`
/// (already validated) replaces the running one: peers whose settings did not
/// change keep their sessions.
pub async fn run(
    config: Config,
    stop: impl Future<Output = ()>,
    mut reloads: mpsc::UnboundedReceiver<Config>,
) -> Result<(), DaemonError> {
    let (notify, _) = broadcast::channel::<StopMode>(4);
    let shutdown = || Shutdown::new(notify.subscribe());

    let metrics = SharedMetrics::default();
    let fib = Fib::new(config.fib.protocol, config.fib.table.0, metrics.clone())?;
    let own = fib.own_routes().await?;
    let gr = config.graceful_restart;
    let restarting = gr.enabled && !own.is_empty();
    let mut installed = HashMap::new();
    for r in &own {
        installed.insert(r.prefix, r.gateways.clone());
        fib.set_state(r.prefix, "stale (previous run)");
    }
    let startup_stale: BTreeSet<IpNet> = own.iter().map(|r| r.prefix).collect();
    if !startup_stale.is_empty() {
        info!(
            routes = startup_stale.len(),
            graceful_restart = gr.enabled,
            "found our routes from a previous run: kept until the peers re-send theirs"
        );
    }
    let deferral = if gr.enabled {
        Duration::from_secs(u64::from(gr.restart_time))
    } else {
        STALE_DEFERRAL
    };

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
    let watch = WatchConfig {
        pools: config.pools.clone(),
        pod_interface_prefix: config.pod_interface_prefix.clone(),
        protocol: config.fib.protocol,
        table: config.fib.table.0,
    };
    let kernel_task = tokio::spawn(kernel::watch(watch, kernel_tx, shutdown()));
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
    let fib_task = tokio::spawn(fib.clone().run(fib_rx));

    let mut rib = Rib::new(RibConfig {
        local_as: config.as_number,
        router_id: config.router_id,
        cluster_id: config.route_reflector.map(|r| r.cluster_id),
        pools: config.pools.clone(),
    });
    let local = LocalSide {
        asn: config.as_number,
        router_id: config.router_id,
        port: config.listen_port,
        restarting,
        metrics: metrics.clone(),
    };
    let (peer_tx, mut peer_rx) = mpsc::unbounded_channel();
    let mut sessions = BTreeMap::new();
    let incoming = listener::Peers::default();
    for n in config.neighbors() {
        rib.add_peer(peer_info(&n, None));
        let handle = session::spawn(n.clone(), local.clone(), peer_tx.clone(), shutdown());
        incoming
            .write()
            .expect("listener peers")
            .insert(n.address, handle.incoming.clone());
        sessions.insert(n.address, handle);
    }
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

    let mut d = Daemon {
        rib,
        sessions,
        up: HashMap::new(),
        fib,
        fib_tx,
        foreign: HashSet::new(),
        installed,
        wanted: HashMap::new(),
        stale_deadline: (!startup_stale.is_empty()).then(|| Instant::now() + deferral),
        startup_stale,
        eor: HashMap::new(),
        gr_deadlines: HashMap::new(),
        pending_fib: Vec::new(),
        pending_out: BTreeMap::new(),
        pending_eor: BTreeSet::new(),
        metrics,
        kernel_event: None,
        config,
        // Sessions a reload adds were not restarted with us: no R bit.
        local: LocalSide {
            restarting: false,
            ..local
        },
        peer_tx,
        notify: notify.clone(),
        listener_peers: incoming,
        listen_fd,
        listen_v6,
    };
    d.kernel(initial);
    // The dump is the starting state, not an event: it is not timed.
    d.kernel_event = None;
    d.check_startup_stale();
    info!(asn = d.config.as_number, router_id = %d.config.router_id, peers = d.sessions.len(), "speaker started");

    tokio::pin!(stop);
    loop {
        let deadline = d.gr_deadlines.values().chain(d.stale_deadline.iter()).min().copied();
        tokio::select! {
            biased;
            _ = &mut stop => break,
            Some(batch) = kernel_rx.recv() => d.kernel(batch),
            Some(event) = peer_rx.recv() => d.peer_event(event),
            Some(req) = api_rx.recv() => d.api(req),
            Some(new) = reloads.recv() => d.reload(new),
            _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => d.deadlines(),
        }
        // Kernel changes first: they are the time-critical path.
        while let Ok(batch) = kernel_rx.try_recv() {
            d.kernel(batch);
        }
        d.flush();
        // Then whatever peers sent meanwhile, a bounded amount at a time.
        for _ in 0..1024 {
            let Ok(event) = peer_rx.try_recv() else { break };
            d.peer_event(event);
        }
        d.flush();
    }

    let mode = if d.config.graceful_restart.enabled {
        StopMode::Graceful
    } else {
        StopMode::Hard
    };
    info!(?mode, "stopping");
    let _ = notify.send(mode);
    for (_, s) in std::mem::take(&mut d.sessions) {
        let _ = tokio::time::timeout(Duration::from_secs(3), s.task).await;
    }
    let _ = listener_task.await;
    let _ = api_task.await;
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    let _ = kernel_task.await;
    let Daemon {
        fib,
        fib_tx,
        installed,
        config,
        ..
    } = d;
    drop(fib_tx);
    let _ = fib_task.await;
    if mode == StopMode::Hard {
        for prefix in installed.into_keys() {
            fib.apply(FibOp::Remove { prefix }).await;
        }
        info!("our routes removed from the kernel");
    } else {
        info!("graceful stop: routes left in the kernel for the restart");
    }
    let _ = std::fs::remove_file(&config.api_socket);
    Ok(())
}

fn peer_info(n: &Neighbor, up: Option<(&crate::fsm::Negotiated, IpAddr)>) -> PeerInfo {
    PeerInfo {
        address: n.address,
        remote_as: n.remote_as,
        router_id: up.map_or(std::net::Ipv4Addr::UNSPECIFIED, |(neg, _)| neg.remote.router_id),
        local_address: up.map(|(_, a)| a),
        local_link_local: None,
        rr_client: n.rr_client,
        next_hop_mode: n.next_hop_mode,
        allowed_local_as: n.allowed_local_as,
        allowed_prefixes: n.allowed_prefixes.clone(),
        families: up.map(|(neg, _)| neg.families.clone()).unwrap_or_default(),
    }
}

impl Daemon {
    fn kernel(&mut self, batch: KernelBatch) {
        self.kernel_event.get_or_insert(batch.received);
        for change in batch.changes {
            match change {
                KernelChange::Local { prefix, present } => {
                    debug!(%prefix, present, "local route");
                    let changes = if present {
                        self.rib.local_add(prefix)
                    } else {
                        self.rib.local_del(prefix)
                    };
                    self.absorb(changes);
                }
                KernelChange::Foreign { prefix, present } => {
                    if present {
                        self.foreign.insert(prefix);
                    } else {
                        self.foreign.remove(&prefix);
                    }
                    self.sync_fib(prefix);
                }
            }
        }
    }

    fn peer_event(&mut self, event: PeerEvent) {
        match event {
            PeerEvent::Up {
                peer,
                generation,
                negotiated,
                local_address,
                link_local,
            } => {
                let Some(session) = self.sessions.get(&peer) else {
                    return;
                };
                let mut info = peer_info(&session.neighbor, Some((&negotiated, local_address)));
                info.local_link_local = link_local;
                self.up.insert(
                    peer,
                    UpPeer {
                        generation,
                        caps: negotiated.caps,
                        families: negotiated.families.clone(),
                        restart_time: negotiated.peer_restart_time(),
                    },
                );
                let changes = self.rib.peer_up(info);
                self.absorb(changes);
                self.pending_eor.insert(peer);
            }
            PeerEvent::Down { peer, graceful } => {
                let restart_time = self.up.remove(&peer).and_then(|u| u.restart_time);
                self.pending_out.remove(&peer);
                self.pending_eor.remove(&peer);
                let keep = graceful && restart_time.is_some_and(|t| !t.is_zero());
                let changes = self.rib.peer_down(peer, keep);
                self.absorb(changes);
                if keep {
                    let t = restart_time.expect("checked");
                    info!(%peer, restart_time = ?t, "graceful restart: keeping the peer's routes as stale");
                    self.gr_deadlines.insert(peer, Instant::now() + t);
                } else {
                    self.gr_deadlines.remove(&peer);
                }
                self.report_accepted(peer);
            }
            PeerEvent::Update { peer, update } => {
                let withdrawn = update.withdrawn_prefixes();
                let announced: Vec<(IpNet, NextHop)> = update.announced_prefixes();
                let changes = self.rib.update(peer, &update.attrs, &announced, &withdrawn);
                self.absorb(changes);
                self.report_accepted(peer);
            }
            PeerEvent::EndOfRib { peer, family } => {
                self.eor.entry(peer).or_default().insert(family);
                let changes = self.rib.flush_stale(peer, Some(family));
                self.absorb(changes);
                if !self.rib.has_stale(peer) {
                    self.gr_deadlines.remove(&peer);
                }
                self.report_accepted(peer);
                self.check_startup_stale();
            }
            PeerEvent::RouteRefresh { peer } => {
                let changes = self.rib.resend(peer);
                self.absorb(changes);
            }
        }
    }

    /// Applies a new configuration: removed peers are stopped with Cease/Peer
    /// De-configured, changed ones reset, added ones started; the others are
    /// left alone. Settings that need a restart are reported and kept.
    fn reload(&mut self, new: Config) {
        let old = &self.config;
        let mut needs_restart = Vec::new();
        let checks: [(&str, bool); 10] = [
            ("asNumber", new.as_number != old.as_number),
            ("routerID", new.router_id != old.router_id),
            ("listenPort", new.listen_port != old.listen_port),
            ("listenAddress", new.listen_address != old.listen_address),
            ("pools", new.pools != old.pools),
            (
                "podInterfacePrefix",
                new.pod_interface_prefix != old.pod_interface_prefix,
            ),
            ("routeReflector", new.route_reflector != old.route_reflector),
            ("fib", new.fib != old.fib),
            ("apiSocket", new.api_socket != old.api_socket),
            ("metricsAddress", new.metrics_address != old.metrics_address),
        ];
        for (field, changed) in checks {
            if changed {
                needs_restart.push(field);
            }
        }
        if !needs_restart.is_empty() {
            warn!(fields = ?needs_restart, "reload: these settings take effect only after a restart; the running values stay");
        }
        let wanted: BTreeMap<IpAddr, Neighbor> = new.neighbors().into_iter().map(|n| (n.address, n)).collect();
        let current: Vec<(IpAddr, Neighbor)> = self.sessions.iter().map(|(a, s)| (*a, s.neighbor.clone())).collect();
        let (mut added, mut removed, mut changed) = (0, 0, 0);
        for (addr, neighbor) in current {
            match wanted.get(&addr) {
                None => {
                    removed += 1;
                    self.stop_peer(addr, &neighbor, CeaseSubcode::PeerDeconfigured);
                }
                Some(n) if *n != neighbor => {
                    changed += 1;
                    self.stop_peer(addr, &neighbor, CeaseSubcode::OtherConfigurationChange);
                }
                Some(_) => {}
            }
        }
        for n in wanted.into_values() {
            if !self.sessions.contains_key(&n.address) {
                added += 1;
                self.start_peer(n);
            }
        }
        self.config = Config {
            peers: new.peers,
            node_to_node_mesh: new.node_to_node_mesh,
            graceful_restart: new.graceful_restart,
            drain: new.drain,
            ..self.config.clone()
        };
        info!(added, removed, changed, "configuration reloaded");
        self.check_startup_stale();
    }

    fn stop_peer(&mut self, addr: IpAddr, neighbor: &Neighbor, why: CeaseSubcode) {
        info!(peer = %addr, reason = ?why, "reload: stopping the session");
        if let Some(s) = self.sessions.remove(&addr) {
            let _ = s.cmd.send(SessionCmd::Stop(Notification::cease(why)));
        }
        self.listener_peers.write().expect("listener peers").remove(&addr);
        if neighbor.password.is_some() {
            let _ = transport::set_md5_key(self.listen_fd, self.listen_v6, addr, None);
        }
        self.up.remove(&addr);
        self.pending_out.remove(&addr);
        self.pending_eor.remove(&addr);
        self.gr_deadlines.remove(&addr);
        self.eor.remove(&addr);
        let changes = self.rib.remove_peer(addr);
        self.absorb(changes);
    }

    fn start_peer(&mut self, n: Neighbor) {
        info!(peer = %n.address, "reload: starting a session");
        if let Some(pw) = &n.password {
            if let Err(e) = transport::set_md5_key(self.listen_fd, self.listen_v6, n.address, Some(pw.as_bytes())) {
                warn!(peer = %n.address, error = %e, "cannot set the TCP-MD5 password on the listening socket");
            }
        }
        self.rib.add_peer(peer_info(&n, None));
        let shutdown = Shutdown::new(self.notify.subscribe());
        let handle = session::spawn(n.clone(), self.local.clone(), self.peer_tx.clone(), shutdown);
        self.listener_peers
            .write()
            .expect("listener peers")
            .insert(n.address, handle.incoming.clone());
        self.sessions.insert(n.address, handle);
    }

    fn report_accepted(&self, peer: IpAddr) {
        if let Some(s) = self.sessions.get(&peer) {
            let _ = s.cmd.send(SessionCmd::Accepted(self.rib.counts(peer).1));
        }
    }

    fn deadlines(&mut self) {
        let now = Instant::now();
        let expired: Vec<IpAddr> = self
            .gr_deadlines
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            self.gr_deadlines.remove(&peer);
            warn!(%peer, "graceful restart time over: removing the peer's stale routes");
            let changes = self.rib.flush_stale(peer, None);
            self.absorb(changes);
            self.report_accepted(peer);
        }
        if self.stale_deadline.is_some_and(|d| d <= now) {
            warn!("not every peer sent End-of-RIB in time: removing the routes left by the previous run");
            self.flush_startup_stale();
        }
    }

    /// Removes the previous run's routes once every peer has sent its table.
    fn check_startup_stale(&mut self) {
        if self.startup_stale.is_empty() {
            self.stale_deadline = None;
            return;
        }
        let all_in = self.sessions.keys().all(|peer| {
            let Some(up) = self.up.get(peer) else { return false };
            let got = self.eor.get(peer);
            up.families.iter().all(|f| got.is_some_and(|g| g.contains(f)))
        });
        if all_in {
            info!("every peer sent End-of-RIB: removing routes of the previous run not re-learned");
            self.flush_startup_stale();
        }
    }

    fn flush_startup_stale(&mut self) {
        self.stale_deadline = None;
        for prefix in std::mem::take(&mut self.startup_stale) {
            if !self.wanted.contains_key(&prefix) || self.foreign.contains(&prefix) {
                self.installed.remove(&prefix);
                self.pending_fib.push(FibOp::Remove { prefix });
            }
        }
    }

    fn absorb(&mut self, changes: Changes) {
        for f in changes.fib {
            match f {
                FibChange::Install { prefix, next_hops } => {
                    self.wanted.insert(prefix, next_hops);
                    self.sync_fib(prefix);
                }
                FibChange::Remove { prefix } => {
                    self.wanted.remove(&prefix);
                    self.sync_fib(prefix);
                }
            }
        }
        for (peer, out) in changes.out {
            self.pending_out.entry(peer).or_default().extend(out);
        }
    }

    /// Brings our kernel route for `prefix` in line with the RIB, never
    /// competing with a route another owner put there.
    fn sync_fib(&mut self, prefix: IpNet) {
        let wanted = self.wanted.get(&prefix);
        let desired = if self.foreign.contains(&prefix) {
            if wanted.is_some() {
                warn!(%prefix, "a route of another protocol holds this prefix: not installing ours");
                self.fib
                    .set_state(prefix, "not installed: a route of another protocol exists");
            }
            None
        } else {
            wanted.cloned()
        };
        let current = self.installed.get(&prefix);
        match desired {
            Some(hops) => {
                self.startup_stale.remove(&prefix);
                if current != Some(&hops) {
                    self.installed.insert(prefix, hops.clone());
                    self.pending_fib.push(FibOp::Install {
                        prefix,
                        next_hops: hops,
                    });
                }
            }
            None => {
                if current.is_some() && !self.startup_stale.contains(&prefix) {
                    self.installed.remove(&prefix);
                    self.pending_fib.push(FibOp::Remove { prefix });
                }
                if wanted.is_none() && !self.foreign.contains(&prefix) && !self.installed.contains_key(&prefix) {
                    self.fib.states().lock().expect("fib states").remove(&prefix);
                }
            }
        }
    }

    /// Sends what has accumulated: FIB operations, then per peer its withdrawals
    /// in as few UPDATEs as fit, its announcements grouped by attributes, and
    /// End-of-RIB after a first full table.
    fn flush(&mut self) {
        if !self.pending_fib.is_empty() {
            let _ = self.fib_tx.send(std::mem::take(&mut self.pending_fib));
        }
        let out = std::mem::take(&mut self.pending_out);
        let eor = std::mem::take(&mut self.pending_eor);
        let kernel_event = self.kernel_event.take();
        let peers: BTreeSet<IpAddr> = out.keys().chain(eor.iter()).copied().collect();
        for peer in peers {
            let (Some(up), Some(session)) = (self.up.get(&peer), self.sessions.get(&peer)) else {
                continue;
            };
            let mut last: BTreeMap<IpNet, OutChange> = BTreeMap::new();
            for change in out.get(&peer).into_iter().flatten() {
                let prefix = match change {
                    OutChange::Announce { prefix, .. } | OutChange::Withdraw { prefix } => *prefix,
                };
                last.insert(prefix, change.clone());
            }
            let mut withdraw = Vec::new();
            let mut groups: Vec<(PathAttributes, NextHop, Vec<IpNet>)> = Vec::new();
            for (prefix, change) in last {
                match change {
                    OutChange::Withdraw { .. } => withdraw.push(prefix),
                    OutChange::Announce { attrs, next_hop, .. } => {
                        match groups.iter_mut().find(|(a, n, _)| *a == attrs && *n == next_hop) {
                            Some(g) => g.2.push(prefix),
                            None => groups.push((attrs, next_hop, vec![prefix])),
                        }
                    }
                }
            }
            let mut updates = Update::withdraw(&withdraw);
            for (attrs, next_hop, prefixes) in groups {
                match Update::announce(&up.caps, &attrs, next_hop, &prefixes) {
                    Ok(u) => updates.extend(u),
                    Err(e) => warn!(%peer, error = %e, "cannot encode announcement"),
                }
            }
            if eor.contains(&peer) {
                updates.extend(up.families.iter().map(|f| Update::end_of_rib(*f)));
            }
            if !updates.is_empty() {
                debug!(%peer, withdrawn = withdraw.len(), messages = updates.len(), "sending UPDATEs");
                let _ = session.cmd.send(SessionCmd::Send {
                    generation: up.generation,
                    updates,
                    kernel_event,
                });
            }
        }
    }

    fn api(&mut self, req: ApiRequest) {
        match req {
            ApiRequest::Status(reply) => {
                let _ = reply.send(self.status());
            }
            ApiRequest::Routes(reply) => {
                let _ = reply.send(self.routes());
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
        let mode = drain.then_some(self.config.drain.mode);
        let changes = self.rib.set_drain(mode);
        let mut sent: HashMap<IpAddr, (usize, usize)> = HashMap::new();
        for (peer, out) in &changes.out {
            let n = sent.entry(*peer).or_default();
            for c in out {
                match c {
                    OutChange::Withdraw { .. } => n.0 += 1,
                    OutChange::Announce { .. } => n.1 += 1,
                }
            }
        }
        info!(mode = mode.map_or("none", DrainMode::as_str), "drain state changed");
        self.absorb(changes);
        self.flush();
        let timeout = timeout.unwrap_or(Duration::from_secs(u64::from(self.config.drain.timeout_seconds)));
        let peers = self
            .sessions
            .iter()
            .map(|(address, s)| {
                let (tx, rx) = oneshot::channel();
                let _ = s.cmd.send(SessionCmd::Sync { timeout, reply: tx });
                let (withdrawn, announced) = sent.get(address).copied().unwrap_or_default();
                let n = |k: usize| {
                    if k == 1 {
                        "1 prefix".to_string()
                    } else {
                        format!("{k} prefixes")
                    }
                };
                let action = match (withdrawn, announced, mode) {
                    (0, 0, _) => "nothing to change".to_string(),
                    (w, 0, _) => format!("withdrew {}", n(w)),
                    (0, a, Some(DrainMode::GracefulShutdown)) => {
                        format!("re-advertised {} with GRACEFUL_SHUTDOWN", n(a))
                    }
                    (0, a, _) => format!("advertised {}", n(a)),
                    (w, a, _) => format!("withdrew {} and advertised {}", n(w), n(a)),
                };
                DrainPeer {
                    address: *address,
                    action,
                    delivered: rx,
                }
            })
            .collect();
        DrainPlan { mode, timeout, peers }
    }

    fn status(&self) -> Value {
        let peers: Vec<Value> = self
            .sessions
            .values()
            .map(|s| {
                let st = s.status.lock().expect("status").clone();
                let since_unix = st.since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                json!({
                    "address": s.neighbor.address,
                    "remote_as": s.neighbor.remote_as,
                    "type": s.neighbor.peer_type.as_str(),
                    "state": st.state.as_str(),
                    "since": rfc3339(st.since),
                    "since_unix": since_unix,
                    "uptime_secs": st.established_at.map_or(0, |t| t.elapsed().as_secs()),
                    "prefixes_received": st.prefixes_received,
                    "prefixes_accepted": st.prefixes_accepted,
                    "transitions": st.transitions,
                    "info": st.info,
                })
            })
            .collect();
        json!({
            "router_id": self.config.router_id,
            "as": self.config.as_number,
            "drained": self.rib.drain().map(DrainMode::as_str),
            "peers": peers,
        })
    }

    fn metrics_page(&self) -> String {
        let peers: Vec<PeerSample> = self
            .sessions
            .iter()
            .map(|(addr, s)| {
                let st = s.status.lock().expect("status");
                PeerSample {
                    address: addr.to_string(),
                    state: st.state.as_str(),
                    transitions: st.transitions,
                    updates_in: st.updates_in,
                    updates_out: st.updates_out,
                    received: st.prefixes_received,
                    accepted: st.prefixes_accepted,
                    advertised: self.rib.advertised_count(*addr),
                }
            })
            .collect();
        crate::metrics::render(&peers, &self.metrics)
    }

    fn routes(&self) -> Value {
        let fib = self.fib.states().lock().expect("fib states").clone();
        let local: Vec<String> = self.rib.local_routes().map(|p| p.to_string()).collect();
        let learned: Vec<Value> = self
            .rib
            .routes()
            .into_iter()
            .filter(|r| r.paths.iter().any(|p| p.from != "local"))
            .map(|r| {
                json!({
                    "prefix": r.prefix,
                    "fib": fib.get(&r.prefix),
                    "paths": r.paths,
                })
            })
            .collect();
        let stale: Vec<String> = self.startup_stale.iter().map(|p| p.to_string()).collect();
        json!({ "local": local, "learned": learned, "stale_from_previous_run": stale })
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
