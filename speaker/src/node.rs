//! The daemon's core, without I/O: everything the speaker decides. Kernel events,
//! peer events, FIB answers, reloads, drains and the passing of time come in as
//! [`Input`]s; what to send, what to change in the FIB and which sessions to start
//! or stop come out as [`Output`]s. No sockets and no clocks (time is given), so
//! recorded inputs replay to the same outputs, and the daemon (`daemon.rs`) is a
//! thin loop that carries them out.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::config::{Config, DrainMode, Neighbor};
use crate::fib_table::{FibTable, NextHops};
use crate::kernel_view::{KernelEvent, KernelView, ViewConfig};
use crate::messages::{Announcement, FibCmd, FibError, FibOp, FibReport, OutBatch, PeerEvent, SessionUp};
use crate::packet::{AfiSafi, CeaseSubcode};
use crate::rib::{self, Changes, FibChange, OutChange, PeerInfo, Rib, RibConfig};
use crate::services::{self, ServiceState};

/// With graceful restart off, how long routes a previous run left in the kernel
/// may wait for the peers' End-of-RIB before they are removed anyway.
pub const STALE_DEFERRAL: Duration = Duration::from_secs(30);

/// What comes into the core. Peer events are the common input; boxing them
/// would cost an allocation each to shrink the rarer ones.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// What the kernel watcher read: the first is a full dump.
    Kernel(Vec<KernelEvent>),
    /// After the first kernel dump: our routes a previous run left in the kernel
    /// (prefix, next hops). The sessions start.
    Start {
        own_routes: Vec<(IpNet, Vec<IpAddr>)>,
    },
    Peer(PeerEvent),
    Fib(FibReport),
    /// A new, valid configuration.
    Reload(Box<Config>),
    Drain {
        drain: bool,
    },
    /// The services and their endpoints, as the state file now holds them (a file
    /// that cannot be read or is wrong never comes here: the last good state stays).
    Services(crate::services::ServiceState),
    /// Time passed: the deadlines due run.
    Tick,
}

/// What the core asks the daemon to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// Start the session of a configured peer (see [`Node::neighbor`]); with
    /// `restarting`, its OPEN carries graceful restart's R bit.
    StartSession {
        peer: IpAddr,
        restarting: bool,
    },
    /// Stop a session for good, with a Cease.
    StopSession {
        peer: IpAddr,
        cease: CeaseSubcode,
    },
    /// Routes for one session of a peer.
    Send {
        peer: IpAddr,
        generation: u64,
        batch: OutBatch,
    },
    Fib(FibCmd),
    /// What a drain or undrain sent a peer.
    Drained {
        peer: IpAddr,
        withdrawn: usize,
        announced: usize,
    },
}

impl Serialize for FibCmd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FibCmd::Apply(op) => op.serialize(s),
            FibCmd::Read => s.serialize_str("read"),
        }
    }
}

impl<'de> Deserialize<'de> for FibCmd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Read(String),
            Op(FibOp),
        }
        match Raw::deserialize(d)? {
            Raw::Read(s) if s == "read" => Ok(FibCmd::Read),
            Raw::Read(s) => Err(serde::de::Error::custom(format!("unknown FIB command `{s}`"))),
            Raw::Op(op) => Ok(FibCmd::Apply(op)),
        }
    }
}

struct UpPeer {
    generation: u64,
    families: Vec<AfiSafi>,
    restart_time: Option<Duration>,
}

struct Peer {
    neighbor: Neighbor,
    up: Option<UpPeer>,
    /// Families the session carries whose routes we cannot advertise, and why.
    warnings: Vec<String>,
}

/// A read of our routes under way: what was written since it was asked.
#[derive(Debug, Default)]
struct FibRead {
    touched: HashSet<IpNet>,
    again: bool,
}

/// The FIB as the core sees it: what the RIB wants, what the kernel holds and
/// what is on its way (the table), what failed.
#[derive(Debug, Default)]
struct Fib {
    table: FibTable,
    failed: BTreeMap<IpNet, String>,
    read: Option<FibRead>,
}

/// See [`Node::fib_check_view`].
pub(crate) struct FibCheckView<'a> {
    pub best: HashMap<IpNet, Vec<IpAddr>>,
    pub wanted: HashMap<IpNet, Vec<IpAddr>>,
    pub installed: HashMap<IpNet, Vec<IpAddr>>,
    pub stale: &'a BTreeSet<IpNet>,
}

/// Counts for the status and the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FibSummary {
    pub wanted: usize,
    pub installed: usize,
    /// Wanted, but a route of another owner holds the prefix: ours is not installed.
    pub held_by_other: usize,
    pub failed: usize,
    /// Ours from a previous run, kept until the peers have sent their tables.
    pub stale_from_previous_run: usize,
}

pub struct Node {
    config: Config,
    rib: Rib,
    kernel: KernelView,
    peers: BTreeMap<IpAddr, Peer>,
    fib: Fib,
    started: bool,
    /// Our routes a previous run left, not re-learned yet.
    startup_stale: BTreeSet<IpNet>,
    stale_deadline: Option<Duration>,
    /// Families each peer has sent End-of-RIB for since we started.
    eor: HashMap<IpAddr, HashSet<AfiSafi>>,
    /// Graceful restart helper: when to give up on a peer's stale routes.
    gr_deadlines: HashMap<IpAddr, Duration>,
    pending_out: BTreeMap<IpAddr, Vec<OutChange>>,
    pending_eor: BTreeSet<IpAddr>,
    outputs: Vec<Output>,
    now: Duration,
    fib_sink: Option<FibSink>,
    fib_early: Vec<FibCmd>,
    services: ServiceState,
    /// The service routes we advertise, with why (`services.rs`).
    service_routes: BTreeMap<IpNet, services::Why>,
}

/// Where FIB commands go as soon as they are decided, [`FIB_EARLY`] at a time, when
/// the daemon gives one: a peer that goes down with 100k routes starts emptying the
/// kernel while the core still works through the rest of them. The rest, and all of
/// them without a sink (the tests, replay, fuzzing), wait for [`Node::flush`] as
/// every other output does. Either way they leave in the order they were decided.
pub type FibSink = Box<dyn FnMut(Vec<FibCmd>) + Send>;
const FIB_EARLY: usize = 512;

impl Node {
    pub fn new(config: Config) -> Node {
        let mut rib = Rib::new(RibConfig {
            local_as: config.as_number,
            router_id: config.router_id,
            cluster_id: config.route_reflector.map(|r| r.cluster_id),
            pools: config.pools.clone(),
        });
        // Nothing to send yet: no peer is up.
        let _ = rib.set_advertisements(config.advertisements());
        let kernel = KernelView::new(ViewConfig {
            pools: config.pools.clone(),
            pod_interface_prefix: config.pod_interface_prefix.clone(),
            protocol: config.fib.protocol,
            table: config.fib.table.0,
        });
        Node {
            config,
            rib,
            kernel,
            peers: BTreeMap::new(),
            fib: Fib::default(),
            started: false,
            startup_stale: BTreeSet::new(),
            stale_deadline: None,
            eor: HashMap::new(),
            gr_deadlines: HashMap::new(),
            pending_out: BTreeMap::new(),
            pending_eor: BTreeSet::new(),
            outputs: Vec::new(),
            now: Duration::ZERO,
            fib_sink: None,
            fib_early: Vec::new(),
            services: ServiceState::default(),
            service_routes: BTreeMap::new(),
        }
    }

    /// Sends FIB commands to `sink` as they are decided instead of with `flush`.
    pub fn set_fib_sink(&mut self, sink: FibSink) {
        self.fib_sink = Some(sink);
    }

    fn push_fib(&mut self, cmd: FibCmd) {
        match &mut self.fib_sink {
            Some(sink) => {
                self.fib_early.push(cmd);
                if self.fib_early.len() >= FIB_EARLY {
                    sink(std::mem::take(&mut self.fib_early));
                }
            }
            None => self.outputs.push(Output::Fib(cmd)),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configured session of `peer`.
    pub fn neighbor(&self, peer: &IpAddr) -> Option<&Neighbor> {
        self.peers.get(peer).map(|p| &p.neighbor)
    }

    /// Whether [`Input::Start`] came: the sessions run.
    pub fn started(&self) -> bool {
        self.started
    }

    pub fn drained(&self) -> Option<DrainMode> {
        self.rib.drain()
    }

    /// When [`Input::Tick`] is next due.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.gr_deadlines
            .values()
            .chain(self.stale_deadline.iter())
            .min()
            .copied()
    }

    /// Takes one input at `now` (time since the daemon started).
    pub fn handle(&mut self, now: Duration, input: Input) {
        self.now = self.now.max(now);
        match input {
            Input::Kernel(events) => self.kernel(&events),
            Input::Start { own_routes } => self.start(own_routes),
            Input::Peer(event) => self.peer_event(event),
            Input::Fib(report) => self.fib_report(report),
            Input::Reload(config) => self.reload(*config),
            Input::Drain { drain } => self.drain(drain),
            Input::Services(state) => {
                self.services = state;
                self.refresh_services();
            }
            Input::Tick => self.deadlines(),
        }
    }

    /// What to do now: FIB commands in the order they were decided, then per peer
    /// its withdrawals, its announcements grouped by attributes, and End-of-RIB
    /// after a first full table.
    pub fn flush(&mut self) -> Vec<Output> {
        // What the sink has not taken yet leaves with the other outputs, after what it took.
        let early: Vec<Output> = self.fib_early.drain(..).map(Output::Fib).collect();
        self.outputs.splice(0..0, early);
        let out = std::mem::take(&mut self.pending_out);
        let eor = std::mem::take(&mut self.pending_eor);
        let peers: BTreeSet<IpAddr> = out.keys().chain(eor.iter()).copied().collect();
        for peer in peers {
            let Some(up) = self.peers.get(&peer).and_then(|p| p.up.as_ref()) else {
                continue;
            };
            let mut last: BTreeMap<IpNet, OutChange> = BTreeMap::new();
            for change in out.get(&peer).into_iter().flatten() {
                let prefix = match change {
                    OutChange::Announce { prefix, .. } | OutChange::Withdraw { prefix } => *prefix,
                };
                last.insert(prefix, change.clone());
            }
            let mut batch = OutBatch::default();
            for (prefix, change) in last {
                match change {
                    OutChange::Withdraw { .. } => batch.withdraw.push(prefix),
                    OutChange::Announce { attrs, next_hop, .. } => {
                        match batch
                            .announce
                            .iter_mut()
                            .find(|a| a.attrs == attrs && a.next_hop == next_hop)
                        {
                            Some(a) => a.prefixes.push(prefix),
                            None => batch.announce.push(Announcement {
                                attrs,
                                next_hop,
                                prefixes: vec![prefix],
                            }),
                        }
                    }
                }
            }
            if eor.contains(&peer) {
                batch.end_of_rib = up.families.clone();
            }
            if !batch.is_empty() {
                self.outputs.push(Output::Send {
                    peer,
                    generation: up.generation,
                    batch,
                });
            }
        }
        std::mem::take(&mut self.outputs)
    }

    fn kernel(&mut self, events: &[KernelEvent]) {
        let changes = self.kernel.apply(events);
        for (prefix, present) in changes.local {
            debug!(%prefix, present, "local route");
            // A service route of the same prefix stays (a pod route is never one:
            // pools and service CIDRs do not meet).
            if !present && self.service_routes.contains_key(&prefix) {
                continue;
            }
            let c = if present {
                let interface = self.kernel.pod_interface(&prefix);
                self.rib.local_add(prefix, interface)
            } else {
                self.rib.local_del(prefix)
            };
            self.absorb(c);
        }
        let mut replaced = false;
        for (prefix, held) in changes.others {
            if held && self.fib.table.wanted(&prefix).is_some() {
                warn!(%prefix, "a route of another owner holds this prefix: ours stays out of the kernel");
            }
            self.sync_fib(prefix);
            // What sync_fib keeps beside theirs is a previous run's route: with
            // `ip route replace` theirs took its place, with no event for ours; at
            // another metric both are there. Only a read tells.
            replaced |= held && self.fib.table.installed(&prefix).is_some();
        }
        if changes.reach {
            let kernel = &self.kernel;
            let c = self.rib.refresh_next_hops(&|nh| kernel.unresolvable(nh));
            self.absorb(c);
            // What the kernel refused may go in now that its routes changed.
            let failed: Vec<IpNet> = std::mem::take(&mut self.fib.failed).into_keys().collect();
            for prefix in failed {
                self.sync_fib(prefix);
            }
        }
        for (prefix, mut hops) in changes.own_deleted {
            // Our own removals were forgotten when they were sent; a route of ours
            // the kernel drops that we still hold as installed went behind our back.
            hops.sort();
            if self.fib.table.installed(&prefix).is_some_and(|i| *i == hops) {
                warn!(%prefix, "a route of ours was deleted behind our back: putting it back");
                self.fib.table.set_installed(prefix, None, false);
                self.sync_fib(prefix);
            }
        }
        // A route of our protocol we do not know of (not an echo of our own
        // write): someone wrote under our number, and we would never remove it.
        // Read our routes back; what is not wanted then goes.
        let unknown = changes.own_added.into_iter().any(|(prefix, mut hops)| {
            hops.sort();
            self.fib.table.installed(&prefix).is_none_or(|i| *i != hops)
        });
        if (changes.fib_suspect || unknown || replaced) && self.started {
            debug!(
                suspect = changes.fib_suspect,
                unknown, replaced, "reading our routes back from the kernel"
            );
            self.read_fib();
        }
    }

    fn start(&mut self, own_routes: Vec<(IpNet, Vec<IpAddr>)>) {
        if self.started {
            return;
        }
        self.started = true;
        let gr = self.config.graceful_restart;
        let restarting = gr.enabled && !own_routes.is_empty();
        for (prefix, mut next_hops) in own_routes {
            next_hops.sort();
            self.fib
                .table
                .set_installed(prefix, Some(NextHops::new(&next_hops)), true);
            self.startup_stale.insert(prefix);
        }
        if !self.startup_stale.is_empty() {
            info!(
                routes = self.startup_stale.len(),
                graceful_restart = gr.enabled,
                "found our routes from a previous run: kept until the peers re-send theirs"
            );
            let deferral = if gr.enabled {
                Duration::from_secs(u64::from(gr.restart_time))
            } else {
                STALE_DEFERRAL
            };
            self.stale_deadline = Some(self.now + deferral);
        }
        for n in self.config.neighbors() {
            self.add_peer(n, restarting);
        }
        // The configured service CIDRs are advertised from the start, whatever the
        // service state file holds (or whether there is one yet): they are the
        // configuration's, as Calico advertises them from BGPConfiguration.
        self.refresh_services();
        self.check_startup_stale();
    }

    fn add_peer(&mut self, n: Neighbor, restarting: bool) {
        let peer = n.address;
        self.rib.add_peer(peer_info(&n, None));
        self.peers.insert(
            peer,
            Peer {
                neighbor: n,
                up: None,
                warnings: Vec::new(),
            },
        );
        self.outputs.push(Output::StartSession { peer, restarting });
    }

    fn peer_event(&mut self, event: PeerEvent) {
        match event {
            PeerEvent::Up(up) => {
                let peer = up.peer;
                let Some(p) = self.peers.get_mut(&peer) else { return };
                let info = peer_info(&p.neighbor, Some(&up));
                // Never silently: a family the session carries whose routes we
                // cannot give a next hop of our own is said in the log and status.
                let any_of = |f: AfiSafi| -> Option<IpNet> {
                    match f {
                        AfiSafi::IPV4_UNICAST => "0.0.0.0/0".parse().ok(),
                        AfiSafi::IPV6_UNICAST => "::/0".parse().ok(),
                        _ => None,
                    }
                };
                p.warnings = up
                    .families
                    .iter()
                    .filter(|f| any_of(**f).is_some_and(|p| rib::self_next_hop(&info, &p).is_none()))
                    .map(|f| {
                        format!(
                            "{f} routes are not advertised: no address of that family on the interface of local address {}",
                            up.local_address
                        )
                    })
                    .collect();
                for w in &p.warnings {
                    warn!(%peer, "{w}");
                }
                p.up = Some(UpPeer {
                    generation: up.generation,
                    families: up.families.clone(),
                    restart_time: up.peer_restart_time.map(|t| Duration::from_secs(u64::from(t))),
                });
                let c = self.rib.peer_up(info);
                self.absorb(c);
                self.pending_eor.insert(peer);
            }
            PeerEvent::Down { peer, graceful } => {
                let restart_time = self
                    .peers
                    .get_mut(&peer)
                    .and_then(|p| p.up.take())
                    .and_then(|u| u.restart_time);
                self.pending_out.remove(&peer);
                self.pending_eor.remove(&peer);
                let keep = graceful && restart_time.is_some_and(|t| !t.is_zero());
                // In chunks: the FIB commands of the first leave (through the sink)
                // while the rest are worked out.
                let prefixes = self.rib.peer_down_prefixes(peer, keep);
                for chunk in prefixes.chunks(FIB_EARLY) {
                    let c = self.rib.recompute_prefixes(chunk);
                    self.absorb(c);
                }
                if keep {
                    let t = restart_time.expect("checked");
                    info!(%peer, restart_time = ?t, "graceful restart: keeping the peer's routes as stale");
                    self.gr_deadlines.insert(peer, self.now + t);
                } else {
                    self.gr_deadlines.remove(&peer);
                }
            }
            PeerEvent::Routes {
                peer,
                attrs,
                announced,
                withdrawn,
            } => {
                if self.peers.get(&peer).is_none_or(|p| p.up.is_none()) {
                    return;
                }
                let kernel = &self.kernel;
                let c = self
                    .rib
                    .update(peer, &attrs, &announced, &withdrawn, &|nh| kernel.unresolvable(nh));
                self.absorb(c);
            }
            PeerEvent::EndOfRib { peer, family } => {
                self.eor.entry(peer).or_default().insert(family);
                let c = self.rib.flush_stale(peer, Some(family));
                self.absorb(c);
                if !self.rib.has_stale(peer) {
                    self.gr_deadlines.remove(&peer);
                }
                self.check_startup_stale();
            }
            PeerEvent::RouteRefresh { peer } => {
                let c = self.rib.resend(peer);
                self.absorb(c);
            }
        }
    }

    /// Applies a new configuration: removed peers are stopped with Cease/Peer
    /// De-configured, changed ones reset, added ones started; the others are
    /// left alone. Settings that need a restart are reported and kept.
    fn reload(&mut self, new: Config) {
        let old = &self.config;
        let checks: [(&str, bool); 11] = [
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
            ("serviceStateFile", new.service_state_file != old.service_state_file),
        ];
        let needs_restart: Vec<&str> = checks.iter().filter(|(_, c)| *c).map(|(f, _)| *f).collect();
        if !needs_restart.is_empty() {
            warn!(fields = ?needs_restart, "reload: these settings take effect only after a restart; the running values stay");
        }
        let wanted: BTreeMap<IpAddr, Neighbor> = new.neighbors().into_iter().map(|n| (n.address, n)).collect();
        let current: Vec<(IpAddr, Neighbor)> = self.peers.iter().map(|(a, p)| (*a, p.neighbor.clone())).collect();
        let (mut added, mut removed, mut changed) = (0, 0, 0);
        for (addr, neighbor) in current {
            match wanted.get(&addr) {
                None => {
                    removed += 1;
                    self.remove_peer(addr, CeaseSubcode::PeerDeconfigured);
                }
                Some(n) if !n.same_session(&neighbor) => {
                    changed += 1;
                    self.remove_peer(addr, CeaseSubcode::OtherConfigurationChange);
                }
                Some(n) if n.filters != neighbor.filters => {
                    info!(peer = %addr, "reload: new filters, applied to what was received and sent");
                    if let Some(p) = self.peers.get_mut(&addr) {
                        p.neighbor.filters = n.filters.clone();
                    }
                    let c = self.rib.set_filters(addr, n.filters.clone());
                    self.absorb(c);
                }
                Some(_) => {}
            }
        }
        for n in wanted.into_values() {
            if !self.peers.contains_key(&n.address) {
                added += 1;
                // Sessions a reload adds were not restarted with us: no R bit.
                self.add_peer(n, false);
            }
        }
        self.config = Config {
            peers: new.peers,
            node_to_node_mesh: new.node_to_node_mesh,
            graceful_restart: new.graceful_restart,
            drain: new.drain,
            service_cluster_ips: new.service_cluster_ips,
            service_external_ips: new.service_external_ips,
            service_load_balancer_ips: new.service_load_balancer_ips,
            node_name: new.node_name,
            filters: new.filters,
            communities: new.communities,
            prefix_advertisements: new.prefix_advertisements,
            ..self.config.clone()
        };
        let c = self.rib.set_advertisements(self.config.advertisements());
        self.absorb(c);
        info!(added, removed, changed, "configuration reloaded");
        self.refresh_services();
        self.check_startup_stale();
    }

    /// Brings the service routes in line with the services and the configuration:
    /// new ones announced, gone ones withdrawn (unless a pod route of the kernel
    /// holds the same prefix).
    fn refresh_services(&mut self) {
        let new = services::routes(&self.config.service_cidrs(), self.config.node_name(), &self.services);
        let old = std::mem::take(&mut self.service_routes);
        for prefix in old.keys().filter(|p| !new.contains_key(p)) {
            info!(%prefix, "service route withdrawn");
            if !self.kernel.advertised().contains(prefix) {
                let c = self.rib.local_del(*prefix);
                self.absorb(c);
            }
        }
        for (prefix, why) in &new {
            if !old.contains_key(prefix) {
                info!(%prefix, field = why.field, policy = ?why.policy, "service route advertised");
                let c = self.rib.local_add(*prefix, None);
                self.absorb(c);
            }
        }
        self.service_routes = new;
    }

    /// How many service routes we advertise, and the services known.
    pub fn service_counts(&self) -> (usize, usize) {
        (self.service_routes.len(), self.services.services.len())
    }

    fn remove_peer(&mut self, peer: IpAddr, cease: CeaseSubcode) {
        info!(%peer, reason = ?cease, "reload: stopping the session");
        self.peers.remove(&peer);
        self.outputs.push(Output::StopSession { peer, cease });
        self.pending_out.remove(&peer);
        self.pending_eor.remove(&peer);
        self.gr_deadlines.remove(&peer);
        self.eor.remove(&peer);
        let c = self.rib.remove_peer(peer);
        self.absorb(c);
    }

    fn drain(&mut self, drain: bool) {
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
        for peer in self.peers.keys() {
            let (withdrawn, announced) = sent.get(peer).copied().unwrap_or_default();
            self.outputs.push(Output::Drained {
                peer: *peer,
                withdrawn,
                announced,
            });
        }
    }

    fn deadlines(&mut self) {
        let now = self.now;
        let mut expired: Vec<IpAddr> = self
            .gr_deadlines
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(p, _)| *p)
            .collect();
        expired.sort();
        for peer in expired {
            self.gr_deadlines.remove(&peer);
            warn!(%peer, "graceful restart time over: removing the peer's stale routes");
            let c = self.rib.flush_stale(peer, None);
            self.absorb(c);
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
        let all_in = self.peers.iter().all(|(addr, p)| {
            let Some(up) = &p.up else { return false };
            let got = self.eor.get(addr);
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
            self.sync_fib(prefix);
        }
    }

    fn absorb(&mut self, changes: Changes) {
        for f in changes.fib {
            match f {
                FibChange::Install { prefix, next_hops } => {
                    self.fib.table.set_wanted(prefix, Some(&next_hops));
                    self.sync_fib(prefix);
                }
                FibChange::Remove { prefix } => {
                    self.fib.table.set_wanted(prefix, None);
                    self.sync_fib(prefix);
                }
            }
        }
        for (peer, out) in changes.out {
            self.pending_out.entry(peer).or_default().extend(out);
        }
    }

    /// Brings our kernel route for `prefix` in line with the RIB. A prefix that
    /// holds a route of another owner gets none of ours: we never compete with,
    /// replace or delete what someone else put there.
    fn sync_fib(&mut self, prefix: IpNet) {
        let held = self.kernel.held_by_other(&prefix);
        let desired = self.fib.table.wanted(&prefix).filter(|_| !held).cloned();
        let current = self.fib.table.installed(&prefix).cloned();
        let op = match desired {
            Some(next_hops) => {
                self.startup_stale.remove(&prefix);
                (current.as_ref() != Some(&next_hops)).then(|| {
                    self.fib.table.set_installed(prefix, Some(next_hops.clone()), false);
                    let next_hops = next_hops.to_vec();
                    if current.is_some() {
                        FibOp::Replace { prefix, next_hops }
                    } else {
                        FibOp::Add { prefix, next_hops }
                    }
                })
            }
            None if current.is_some() && !self.startup_stale.contains(&prefix) => {
                self.fib.table.set_installed(prefix, None, false);
                Some(FibOp::Remove { prefix })
            }
            None => None,
        };
        if held || self.fib.table.wanted(&prefix).is_none() {
            self.fib.failed.remove(&prefix);
        }
        if let Some(op) = op {
            if let Some(read) = &mut self.fib.read {
                read.touched.insert(prefix);
            }
            self.fib.table.sent(prefix);
            self.push_fib(FibCmd::Apply(op));
        }
    }

    /// Asks the FIB thread to read our routes back, once at a time.
    fn read_fib(&mut self) {
        match &mut self.fib.read {
            Some(read) => read.again = true,
            None => {
                self.fib.read = Some(FibRead::default());
                self.push_fib(FibCmd::Read);
            }
        }
    }

    fn fib_report(&mut self, report: FibReport) {
        match report {
            FibReport::Done { op, error: None } => {
                let prefix = op.prefix();
                self.fib.table.answered(prefix);
                self.fib.failed.remove(&prefix);
                if let FibOp::Add { next_hops, .. } | FibOp::Replace { next_hops, .. } = &op {
                    self.fib.table.confirm(&prefix, next_hops);
                }
            }
            FibReport::Done { op, error: Some(e) } => {
                let prefix = op.prefix();
                if !self.fib.table.answered(prefix) {
                    // A later change of the prefix is on its way, and what we hold
                    // as installed is its; its answer will say how it went. What a
                    // failed replace or remove left of ours is not known: read it.
                    warn!(%prefix, ?op, error = ?e, "the kernel refused a route change since superseded");
                    if !matches!(op, FibOp::Add { .. }) {
                        self.read_fib();
                    }
                    return;
                }
                let why = match &e {
                    FibError::HeldByOther => "a route of another owner holds this prefix".to_string(),
                    FibError::Failed(msg) => msg.clone(),
                };
                warn!(%prefix, ?op, error = %why, "the kernel refused a route change");
                match (&op, &e) {
                    // Nothing of ours was created.
                    (FibOp::Add { .. }, _) | (_, FibError::HeldByOther) => {
                        self.fib.table.set_installed(prefix, None, false);
                    }
                    // What is left of ours is not known: read it back.
                    _ => {
                        self.fib.table.set_installed(prefix, None, false);
                        self.read_fib();
                    }
                }
                if self.fib.table.wanted(&prefix).is_some() {
                    self.fib.failed.insert(prefix, why);
                }
            }
            FibReport::State(routes) => {
                let read = self.fib.read.take().unwrap_or_default();
                let kernel: HashMap<IpNet, Vec<IpAddr>> = routes
                    .into_iter()
                    .map(|(p, mut h)| {
                        h.sort();
                        (p, h)
                    })
                    .collect();
                let mut prefixes: BTreeSet<IpNet> = self.fib.table.installed_prefixes().map(|(p, _)| *p).collect();
                prefixes.extend(kernel.keys());
                prefixes.extend(self.fib.table.wanted_prefixes().map(|(p, _)| *p));
                let mut fixed = 0;
                for prefix in prefixes {
                    if read.touched.contains(&prefix) {
                        continue;
                    }
                    let actual = kernel.get(&prefix).map(|h| NextHops::new(h));
                    if self.fib.table.installed(&prefix) != actual.as_ref() {
                        fixed += 1;
                    }
                    let confirmed = actual.is_some();
                    if actual.is_none() {
                        // Nothing is left to keep of a previous run's route.
                        self.startup_stale.remove(&prefix);
                    }
                    self.fib.table.set_installed(prefix, actual, confirmed);
                    // A failed route is tried again with what the kernel holds now.
                    self.fib.failed.remove(&prefix);
                    self.sync_fib(prefix);
                }
                if fixed > 0 {
                    warn!(
                        routes = fixed,
                        "the kernel's copy of our routes had changed behind our back: put right"
                    );
                }
                if read.again {
                    self.read_fib();
                }
            }
        }
    }

    /// Counts for the status and the metrics.
    pub fn fib_summary(&self) -> FibSummary {
        let held = self
            .fib
            .table
            .wanted_prefixes()
            .filter(|(p, _)| self.kernel.held_by_other(p))
            .count();
        FibSummary {
            wanted: self.fib.table.wanted_len(),
            installed: self.fib.table.confirmed_len(),
            held_by_other: held,
            failed: self.fib.failed.len(),
            stale_from_previous_run: self.startup_stale.len(),
        }
    }

    /// What the FIB holds for `prefix`, as the API shows it.
    fn fib_state(&self, prefix: &IpNet) -> Option<String> {
        let wanted = self.fib.table.wanted(prefix);
        let installed = self.fib.table.installed(prefix);
        if self.startup_stale.contains(prefix) {
            return Some("stale (previous run)".into());
        }
        if wanted.is_some() && self.kernel.held_by_other(prefix) {
            return Some("not installed: a route of another owner holds this prefix".into());
        }
        if let Some(why) = self.fib.failed.get(prefix) {
            return Some(format!("failed: {why}"));
        }
        match (wanted, installed) {
            (Some(w), Some(i)) if w == i && self.fib.table.confirmed(prefix) => Some("installed".into()),
            (Some(_), _) => Some("installing".into()),
            (None, Some(_)) => Some("removing".into()),
            (None, None) => None,
        }
    }

    /// The sessions' share of `speaker status`: drain, FIB counts, and per peer
    /// the prefixes accepted and what cannot be advertised.
    pub fn status(&self) -> Value {
        let peers: serde_json::Map<String, Value> = self
            .peers
            .keys()
            .map(|addr| {
                let p = &self.peers[addr];
                (
                    addr.to_string(),
                    json!({
                        "prefixes_accepted": self.rib.counts(*addr).1,
                        "prefixes_advertised": self.rib.advertised_count(*addr),
                        "warnings": p.warnings,
                    }),
                )
            })
            .collect();
        json!({
            "router_id": self.config.router_id,
            "as": self.config.as_number,
            "drained": self.rib.drain().map(DrainMode::as_str),
            "fib": self.fib_summary(),
            "peers": peers,
        })
    }

    /// Local (advertised) and learned routes with every path and their FIB state.
    /// The routes for the API; with `filter`, only the prefixes that cover it or
    /// lie inside it.
    pub fn routes(&self, filter: Option<IpNet>) -> Value {
        self.routes_page(filter, None, usize::MAX)
    }

    /// A page of [`Node::routes`]: at most `limit` prefixes after `after`; `next`
    /// says where the next page starts, when there is one. The node's own prefixes
    /// and the stale ones come with the first page.
    pub fn routes_page(&self, filter: Option<IpNet>, after: Option<IpNet>, limit: usize) -> Value {
        let first = after.is_none();
        let local: Vec<String> = self
            .rib
            .local_routes()
            .filter(|p| first && filter.is_none_or(|f| crate::rib::overlaps(f, **p)))
            .map(|p| p.to_string())
            .collect();
        let (page, more) = self.rib.routes_page(filter, after, limit);
        let next = more.then(|| page.last().map(|r| r.prefix.to_string())).flatten();
        let learned: Vec<Value> = page
            .into_iter()
            .filter(|r| r.paths.iter().any(|p| p.from != "local"))
            .map(|r| {
                json!({
                    "prefix": r.prefix,
                    "fib": self.fib_state(&r.prefix),
                    "paths": r.paths,
                })
            })
            .collect();
        let stale: Vec<String> = if first {
            self.startup_stale.iter().map(|p| p.to_string()).collect()
        } else {
            Vec::new()
        };
        let services: Vec<Value> = self
            .service_routes
            .iter()
            .filter(|(p, _)| first && filter.is_none_or(|f| crate::rib::overlaps(f, **p)))
            .map(|(p, why)| {
                let mut v = json!(why);
                v["prefix"] = json!(p);
                v
            })
            .collect();
        let mut v = json!({
            "local": local,
            "services": services,
            "learned": learned,
            "stale_from_previous_run": stale,
        });
        if let Some(next) = next {
            v["next"] = next.into();
        }
        v
    }

    /// Prefixes `peer` has been sent and not withdrawn.
    pub fn advertised_count(&self, peer: IpAddr) -> usize {
        self.rib.advertised_count(peer)
    }

    /// Prefixes received from `peer` and how many were accepted.
    pub fn counts(&self, peer: IpAddr) -> (usize, usize) {
        self.rib.counts(peer)
    }

    /// Paths from `peer` the RIB still holds (see [`Rib::paths_from`]).
    pub fn paths_from(&self, peer: IpAddr) -> usize {
        self.rib.paths_from(peer)
    }

    /// The FIB as the core sees it, for the replay harness's checks: what the RIB's
    /// best routes are, what the core wants in the kernel, what it believes is
    /// there, and its routes from a previous run.
    pub(crate) fn fib_check_view(&self) -> FibCheckView<'_> {
        FibCheckView {
            best: self.rib.fib_routes().into_iter().collect(),
            wanted: self
                .fib
                .table
                .wanted_prefixes()
                .map(|(p, h)| (*p, h.to_vec()))
                .collect(),
            installed: self
                .fib
                .table
                .installed_prefixes()
                .map(|(p, h)| (*p, h.to_vec()))
                .collect(),
            stale: &self.startup_stale,
        }
    }

    /// What the core believes the kernel holds of ours, and what it wants there:
    /// the replay tests' view of the FIB.
    pub fn fib_view(&self) -> Value {
        let sorted = |m: &mut dyn Iterator<Item = (&IpNet, &NextHops)>| -> BTreeMap<String, Vec<IpAddr>> {
            m.map(|(p, h)| (p.to_string(), h.to_vec())).collect()
        };
        json!({
            "wanted": sorted(&mut self.fib.table.wanted_prefixes()),
            "installed": sorted(&mut self.fib.table.installed_prefixes()),
            "failed": self.fib.failed,
            "stale_from_previous_run": self.startup_stale,
        })
    }
}

/// What the RIB knows of a peer: its configuration, and once up its session.
fn peer_info(n: &Neighbor, up: Option<&SessionUp>) -> PeerInfo {
    PeerInfo {
        address: n.address,
        remote_as: n.remote_as,
        router_id: up.map_or(std::net::Ipv4Addr::UNSPECIFIED, |u| u.router_id),
        local_address: up.map(|u| u.local_address),
        local_link_local: up.and_then(|u| u.link_local),
        local_v4: up.and_then(|u| u.local_v4),
        local_v6: up.and_then(|u| u.local_v6),
        rr_client: n.rr_client,
        next_hop_mode: n.next_hop_mode,
        local_as: n.local_as,
        allowed_local_as: n.allowed_local_as,
        enforce_first_as: n.enforce_first_as,
        allowed_prefixes: n.allowed_prefixes.clone(),
        filters: n.filters.clone(),
        families: up.map(|u| u.families.clone()).unwrap_or_default(),
    }
}
