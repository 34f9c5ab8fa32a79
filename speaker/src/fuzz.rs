//! Fuzzed sequences of events for the daemon's core: bytes become a program of
//! inputs (peers coming and going, their UPDATEs as values and as wire bytes,
//! kernel route, link and address events, the routes a link takes with it,
//! reloads, drains, time passing) over a small world of three peers, two links
//! and a handful of prefixes, so that a few bytes reach interesting states. The
//! program runs through [`Replay`], which answers the core's FIB commands as the
//! kernel would and checks its invariants after every input; this module adds
//! the ones about sessions:
//!
//! - nothing learned from a peer survives the end of its session, unless
//!   graceful restart keeps it, and then not past the peer's restart time;
//! - a peer removed or changed by a reload keeps nothing;
//! - routes are only sent to a session that is up, under its own generation.
//!
//! The `core` fuzz target (`speaker/fuzz`) calls [`run`]; `tests/fuzz_corpus.rs`
//! runs the kept corpus through it in `cargo test`. A failing input can be written
//! out as a replay case (`config.yaml` and `events.jsonl`, see [`Failure`]) and so
//! becomes a test under `tests/replay/`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;
use std::time::Duration;

use ipnet::IpNet;

use crate::config::Config;
use crate::kernel_view::{AddressInfo, KernelEvent, KernelRoute, LinkInfo, RouteKind};
use crate::messages::{PeerEvent, SessionUp};
use crate::node::{Input, Output};
use crate::packet::{AfiSafi, Message, SessionCaps};
use crate::packet::{AsPath, Community, ExtendedCommunity, NextHop, Origin, PathAttributes};
use crate::replay::{Line, Replay};

/// The most inputs one program runs: longer ones find little more and slow the
/// fuzzer down.
pub const MAX_STEPS: usize = 48;

const BASE: &str = "
asNumber: 65001
routerID: 10.0.0.1
pools: [10.244.0.0/16, fd00:244::/48]
peers:
  - {peerIP: 10.0.0.2, asNumber: 65001, routeReflectorClient: true}
  - {peerIP: 10.1.0.5, asNumber: 65002, allowedPrefixes: [10.96.0.0/12]}
  - {peerIP: 'fd00::2', asNumber: 65001}
";

/// The configurations a reload picks from: a peer removed, one changed, one added.
const RELOADS: [&str; 4] = [
    "",
    "
peers:
  - {peerIP: 10.0.0.2, asNumber: 65001, routeReflectorClient: true}
  - {peerIP: 'fd00::2', asNumber: 65001}
",
    "
peers:
  - {peerIP: 10.0.0.2, asNumber: 65001, holdTime: 30}
  - {peerIP: 10.1.0.5, asNumber: 65002, allowedPrefixes: [10.96.0.0/12], numAllowedLocalASNumbers: 1}
  - {peerIP: 'fd00::2', asNumber: 65001, gracefulRestart: {enabled: false}}
",
    "
peers:
  - {peerIP: 10.0.0.2, asNumber: 65001, routeReflectorClient: true}
  - {peerIP: 10.1.0.5, asNumber: 65002, allowedPrefixes: [10.96.0.0/12]}
  - {peerIP: 'fd00::2', asNumber: 65001}
  - {peerIP: 10.0.0.3, asNumber: 65001}
",
];

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const fn v6(head: u16, tail: u16) -> Ipv6Addr {
    Ipv6Addr::new(head, 0, 0, 0, 0, 0, 0, tail)
}

/// Peers: address, our address on the session.
const PEERS: [(IpAddr, IpAddr); 4] = [
    (v4(10, 0, 0, 2), v4(10, 0, 0, 1)),
    (v4(10, 1, 0, 5), v4(10, 1, 0, 1)),
    (IpAddr::V6(v6(0xfd00, 2)), IpAddr::V6(v6(0xfd00, 1))),
    (v4(10, 0, 0, 3), v4(10, 0, 0, 1)),
];

const PREFIXES: [&str; 16] = [
    "10.244.1.0/26",
    "10.244.2.0/26",
    "10.244.3.0/26",
    "10.244.1.5/32",
    "10.244.2.7/32",
    "10.244.0.0/16",
    "10.96.0.0/12",
    "192.168.0.0/24",
    "0.0.0.0/0",
    "10.0.0.0/24",
    "10.244.2.0/24",
    "fd00:244:0:1::/64",
    "fd00:244:0:2::/64",
    "fd00:244:0:1::5/128",
    "fd00::/64",
    "2001:db8::/32",
];

const V4_HOPS: [IpAddr; 6] = [
    v4(10, 0, 0, 2),
    v4(10, 0, 0, 9),
    v4(10, 1, 0, 5),
    v4(10, 0, 0, 1),
    v4(192, 168, 9, 9),
    v4(10, 244, 2, 1),
];
const V6_HOPS: [Ipv6Addr; 4] = [
    v6(0xfd00, 2),
    v6(0xfd00, 9),
    v6(0xfd00, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
];
const LINK_LOCAL: Ipv6Addr = v6(0xfe80, 1);
const PEER_LINK_LOCAL: Ipv6Addr = v6(0xfe80, 2);

/// Links: 2 and 3 carry the sessions, 10-12 are pods'.
const LINKS: [(u32, &str); 5] = [(2, "eth0"), (3, "eth1"), (10, "cali0a"), (11, "cali0b"), (12, "cali0c")];

/// A program that broke an invariant: the message, and the inputs up to the
/// failing one with the configuration they start from, to keep as a replay case.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub config_yaml: String,
    pub events: Vec<Line>,
}

impl Failure {
    /// The events as an `events.jsonl` file.
    pub fn events_jsonl(&self) -> String {
        let mut out = format!("# found by the core fuzz target: {}\n", self.message.replace('\n', " "));
        for l in &self.events {
            out.push_str(&serde_json::to_string(l).expect("a line serializes"));
            out.push('\n');
        }
        out
    }
}

/// Reads bytes as small numbers; past the end, zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

fn net(s: &str) -> IpNet {
    s.parse().expect("a prefix of the fuzz world")
}

/// `PREFIXES[i]`, parsed once.
fn prefix(i: usize) -> IpNet {
    static PARSED: OnceLock<Vec<IpNet>> = OnceLock::new();
    PARSED.get_or_init(|| PREFIXES.iter().map(|p| net(p)).collect())[i]
}

fn config_text(peers: &str, rr: bool, gr: bool) -> String {
    let mut text = BASE.to_string();
    if !peers.is_empty() {
        let start = text.find("peers:").expect("BASE has peers");
        text.truncate(start);
        text.push_str(peers.trim_start_matches('\n'));
    }
    if rr {
        text.push_str("routeReflector: {clusterID: 10.0.0.1}\n");
    } else {
        text = text.replace(", routeReflectorClient: true", "");
    }
    if !gr {
        text.push_str("gracefulRestart: {enabled: false}\n");
    }
    text
}

/// The configuration of the world: peers as `RELOADS[reload]` has them (the base
/// for 0), with a route reflector or not, graceful restart or not. Parsed once:
/// YAML would cost more than the program.
fn config(reload: usize, rr: bool, gr: bool) -> &'static Config {
    static CONFIGS: OnceLock<Vec<Config>> = OnceLock::new();
    let all = CONFIGS.get_or_init(|| {
        let mut all = Vec::new();
        for peers in RELOADS {
            for rr in [false, true] {
                for gr in [false, true] {
                    let text = config_text(peers, rr, gr);
                    let c = Config::parse("fuzz.yaml", &text)
                        .unwrap_or_else(|e| panic!("the fuzz world's configuration is invalid: {e}\n{text}"));
                    all.push(c);
                }
            }
        }
        all
    });
    &all[reload * 4 + usize::from(rr) * 2 + usize::from(gr)]
}

fn route(prefix: IpNet, protocol: u8, kind: RouteKind, oif: Option<u32>, gateways: Vec<IpAddr>) -> KernelRoute {
    KernelRoute {
        prefix,
        table: 254,
        protocol,
        kind,
        priority: 0,
        oif,
        gateways,
    }
}

/// The routes of others at start: connected routes, the node's block and a pod.
fn others_at_start() -> Vec<KernelRoute> {
    vec![
        route(net("10.0.0.0/24"), 2, RouteKind::Unicast, Some(2), vec![]),
        route(net("fd00::/64"), 2, RouteKind::Unicast, Some(2), vec![]),
        route(net("10.1.0.0/24"), 2, RouteKind::Unicast, Some(3), vec![]),
        route(net("10.244.1.0/26"), 3, RouteKind::Blackhole, None, vec![]),
        route(net("10.244.1.5/32"), 3, RouteKind::Unicast, Some(10), vec![]),
    ]
}

/// The node's own world at start: links up, its addresses, connected routes, its
/// block and a pod, and the routes of ours a previous run left.
fn dump(own: &[(IpNet, Vec<IpAddr>)], protocol: u8) -> KernelEvent {
    let mut links = vec![LinkInfo {
        index: 1,
        name: "lo".into(),
        up: true,
    }];
    links.extend(LINKS.iter().map(|(index, name)| LinkInfo {
        index: *index,
        name: (*name).into(),
        up: true,
    }));
    let addresses = [
        (2, "10.0.0.1/24"),
        (2, "fd00::1/64"),
        (2, "fe80::1/64"),
        (3, "10.1.0.1/24"),
    ]
    .iter()
    .map(|(index, a)| AddressInfo {
        index: *index,
        address: net(a),
    })
    .collect();
    let mut routes = others_at_start();
    routes.extend(
        own.iter()
            .map(|(p, hops)| route(*p, protocol, RouteKind::Unicast, None, hops.clone())),
    );
    KernelEvent::Dump {
        links,
        routes,
        addresses,
    }
}

#[derive(Clone, Copy, Default)]
struct PeerModel {
    up: bool,
    generation: u64,
    restart_time: Option<u16>,
    /// Down with its routes kept by graceful restart, until then (ms).
    kept_until: Option<u64>,
}

struct World {
    replay: Replay,
    lines: Vec<Line>,
    now: u64,
    rr: bool,
    gr: bool,
    peers: [PeerModel; PEERS.len()],
    generations: u64,
    /// Links by index: whether up.
    links_up: BTreeMap<u32, bool>,
    /// The routes of others in the kernel.
    others: Vec<KernelRoute>,
}

impl World {
    fn new(rr: bool, gr: bool) -> World {
        World {
            replay: Replay::new(config(0, rr, gr).clone()),
            lines: Vec::new(),
            now: 0,
            rr,
            gr,
            peers: [PeerModel::default(); PEERS.len()],
            generations: 0,
            links_up: LINKS.iter().map(|(i, _)| (*i, true)).collect(),
            others: others_at_start(),
        }
    }

    fn step(&mut self, line: Line) -> Result<Vec<Output>, String> {
        self.lines.push(line);
        let line = self.lines.last().expect("just pushed");
        let outputs = self.replay.step(line)?;
        for o in &outputs {
            match o {
                Output::Send { peer, generation, .. } => {
                    let m = PEERS.iter().position(|(a, _)| a == peer).map(|i| self.peers[i]);
                    if !m.is_some_and(|m| m.up && m.generation == *generation) {
                        return Err(format!(
                            "routes sent to {peer} (generation {generation}), whose session is not up under it"
                        ));
                    }
                }
                Output::StartSession { peer, .. } if self.replay.node().neighbor(peer).is_none() => {
                    return Err(format!("a session started for {peer}, which is not configured"));
                }
                _ => {}
            }
        }
        Ok(outputs)
    }

    fn input(&mut self, input: Input) -> Result<(), String> {
        self.input_dropping(input, Vec::new())
    }

    /// An input, the kernel having dropped `kernel_drops` of our routes silently
    /// with it; then the daemon's ticks and the session checks.
    fn input_dropping(&mut self, input: Input, kernel_drops: Vec<IpNet>) -> Result<(), String> {
        let line = Line {
            at_ms: self.now,
            input: Some(input),
            kernel_drops,
        };
        self.step(line)?;
        // The daemon wakes the core when a deadline is due.
        for _ in 0..4 {
            match self.replay.node().next_deadline() {
                Some(d) if d <= Duration::from_millis(self.now) => {
                    let tick = Line {
                        at_ms: self.now,
                        input: Some(Input::Tick),
                        kernel_drops: Vec::new(),
                    };
                    self.step(tick)?;
                }
                _ => break,
            }
        }
        self.check_sessions()
    }

    /// Nothing of a peer whose session ended survives, unless graceful restart
    /// keeps it and its time is not over.
    fn check_sessions(&self) -> Result<(), String> {
        for (i, (addr, _)) in PEERS.iter().enumerate() {
            let m = self.peers[i];
            if m.up || m.kept_until.is_some_and(|t| self.now < t) {
                continue;
            }
            let left = self.replay.node().paths_from(*addr);
            if left > 0 {
                return Err(format!(
                    "{addr}: {left} paths left after its session ended{}",
                    match m.kept_until {
                        Some(t) => format!(" and its graceful restart time ran out at {t} ms"),
                        None => " without graceful restart".into(),
                    }
                ));
            }
        }
        Ok(())
    }

    fn peer(&self, b: &mut Bytes) -> usize {
        b.below(PEERS.len())
    }

    fn attrs(&self, b: &mut Bytes) -> PathAttributes {
        let as_paths: [&[u32]; 5] = [&[], &[65002], &[65001], &[65002, 65003], &[65003]];
        let mut a = PathAttributes {
            origin: Some([Origin::Igp, Origin::Egp, Origin::Incomplete][b.below(3)]),
            as_path: Some(AsPath::sequence(as_paths[b.below(as_paths.len())].iter().copied())),
            ..PathAttributes::default()
        };
        let x = b.byte();
        if x & 1 != 0 {
            a.med = Some(u32::from(x >> 4));
        }
        if x & 2 != 0 {
            a.local_pref = Some(if x & 4 != 0 { 200 } else { 100 });
        }
        if x & 8 != 0 {
            a.communities.push(Community::NO_EXPORT);
        }
        let y = b.byte();
        a.originator_id =
            [None, Some(Ipv4Addr::new(10, 0, 0, 1)), Some(Ipv4Addr::new(10, 0, 0, 7))][usize::from(y % 3)];
        a.cluster_list = match (y / 3) % 3 {
            0 => vec![],
            1 => vec![Ipv4Addr::new(10, 0, 0, 1)],
            _ => vec![Ipv4Addr::new(10, 9, 9, 9)],
        };
        // A transitive and a non-transitive extended community, from the same byte
        // (no new input is read, so the kept corpus keeps its programs' shapes).
        a.extended_communities = match (y / 9) % 3 {
            0 => vec![],
            1 => vec![ExtendedCommunity([0, 2, 0xfd, 0xe8, 0, 0, 0, 100])],
            _ => vec![
                ExtendedCommunity([0, 2, 0xfd, 0xe8, 0, 0, 0, 100]),
                ExtendedCommunity([0x43, 2, 0, 0, 0, 0, 0, 1]),
            ],
        };
        a
    }

    fn next_hop(&self, b: &mut Bytes, prefix: &IpNet) -> NextHop {
        let v6 = |b: &mut Bytes| {
            let global = V6_HOPS[b.below(V6_HOPS.len())];
            let link_local = b.flag().then_some(PEER_LINK_LOCAL);
            NextHop::V6 { global, link_local }
        };
        match prefix {
            // RFC 5549 now and then.
            IpNet::V4(_) if b.below(5) != 0 => match V4_HOPS[b.below(V4_HOPS.len())] {
                IpAddr::V4(a) => NextHop::V4(a),
                IpAddr::V6(_) => unreachable!("V4_HOPS holds IPv4 addresses"),
            },
            _ => v6(b),
        }
    }

    fn routes(&mut self, peer: IpAddr, b: &mut Bytes) -> Result<(), String> {
        let attrs = Box::new(self.attrs(b));
        let mut announced = Vec::new();
        for _ in 0..b.below(5) {
            let p = prefix(b.below(PREFIXES.len()));
            let nh = self.next_hop(b, &p);
            announced.push((p, nh));
        }
        let withdrawn = (0..b.below(4)).map(|_| prefix(b.below(PREFIXES.len()))).collect();
        self.input(Input::Peer(PeerEvent::Routes {
            peer,
            attrs,
            announced,
            withdrawn,
        }))
    }

    /// An UPDATE as bytes, handled as a session handles what it reads.
    fn wire(&mut self, i: usize, b: &mut Bytes) -> Result<(), String> {
        let peer = PEERS[i].0;
        let len = b.below(64);
        let body = b.take(len).to_vec();
        let mut msg = vec![0xff; 16];
        msg.extend_from_slice(&(19 + body.len() as u16).to_be_bytes());
        msg.push(2);
        msg.extend_from_slice(&body);
        let caps = SessionCaps { four_octet_as: true };
        match Message::decode(&msg, &caps) {
            Ok((Message::Update(update), _)) => {
                let event = match update.end_of_rib_afi_safi() {
                    Some(family) => PeerEvent::EndOfRib { peer, family },
                    None => PeerEvent::routes(peer, &update),
                };
                self.input(Input::Peer(event))
            }
            // A session reset, with graceful restart's rules for a NOTIFICATION
            // that is not a Hard Reset (RFC 8538).
            Ok(_) | Err(_) if self.peers[i].up => self.down(i, true),
            Ok(_) | Err(_) => Ok(()),
        }
    }

    fn up(&mut self, i: usize, b: &mut Bytes) -> Result<(), String> {
        let (addr, local) = PEERS[i];
        let peer = addr;
        if self.peers[i].up || self.replay.node().neighbor(&peer).is_none() {
            return Ok(());
        }
        let families = match b.below(3) {
            0 => vec![AfiSafi::IPV4_UNICAST],
            1 => vec![AfiSafi::IPV6_UNICAST],
            _ => vec![AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST],
        };
        let restart_time = [None, Some(0), Some(1), Some(120)][b.below(4)];
        self.generations += 1;
        let generation = self.generations;
        let local_address = local;
        let on_eth0 = i != 1;
        let up = SessionUp {
            peer,
            generation,
            router_id: [
                Ipv4Addr::new(10, 0, 0, 2),
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 1, 0, 5),
            ][b.below(3)],
            caps: SessionCaps { four_octet_as: true },
            families,
            peer_restart_time: restart_time,
            local_address,
            local_v4: Some(if on_eth0 {
                Ipv4Addr::new(10, 0, 0, 1)
            } else {
                Ipv4Addr::new(10, 1, 0, 1)
            }),
            local_v6: on_eth0.then_some(v6(0xfd00, 1)),
            link_local: on_eth0.then_some(LINK_LOCAL),
        };
        self.peers[i] = PeerModel {
            up: true,
            generation,
            restart_time,
            kept_until: None,
        };
        self.input(Input::Peer(PeerEvent::Up(up)))
    }

    fn down(&mut self, i: usize, graceful: bool) -> Result<(), String> {
        let m = &mut self.peers[i];
        let kept = m.up && graceful && m.restart_time.is_some_and(|t| t > 0);
        m.kept_until = kept.then(|| self.now + 1000 * u64::from(m.restart_time.unwrap_or(0)));
        m.up = false;
        let peer = PEERS[i].0;
        self.input(Input::Peer(PeerEvent::Down { peer, graceful }))
    }

    /// A route of another owner comes or goes, or one of ours goes behind our
    /// back, or someone writes one under our protocol number. As the kernel
    /// allows: one route per prefix and metric (an add where one is fails, or
    /// with `ip route replace` takes its place), and only a route it holds goes.
    fn kernel_route(&mut self, b: &mut Bytes) -> Result<(), String> {
        let protocol = self.replay.node().config().fib.protocol;
        if !b.flag() {
            let ours: Vec<(IpNet, Vec<IpAddr>)> = self
                .replay
                .kernel_routes()
                .iter()
                .map(|(p, h)| (*p, h.clone()))
                .collect();
            let n = self.others.len() + ours.len();
            if n == 0 {
                return Ok(());
            }
            let i = b.below(n);
            let r = match i.checked_sub(self.others.len()) {
                None => self.others.remove(i),
                Some(j) => route(ours[j].0, protocol, RouteKind::Unicast, None, ours[j].1.clone()),
            };
            return self.input(Input::Kernel(vec![KernelEvent::Route {
                route: r,
                present: false,
            }]));
        }
        let prefix = prefix(b.below(PREFIXES.len()));
        let r = match b.below(6) {
            // An IPAM block of this node.
            0 => route(prefix, 3, RouteKind::Blackhole, None, vec![]),
            // A pod.
            1 => route(prefix, 3, RouteKind::Unicast, Some(LINKS[2 + b.below(3)].0), vec![]),
            // Another owner's route through a gateway.
            2 => route(prefix, 4, RouteKind::Unicast, Some(2), vec![V4_HOPS[b.below(2)]]),
            // A connected route.
            3 => route(prefix, 2, RouteKind::Unicast, Some(LINKS[b.below(2)].0), vec![]),
            // Someone else's unreachable route.
            4 => route(prefix, 4, RouteKind::Unreachable, None, vec![]),
            // A route with our protocol that we did not write: another process
            // under our number.
            _ => {
                let hop = if prefix.addr().is_ipv4() {
                    V4_HOPS[b.below(2)]
                } else {
                    IpAddr::V6(V6_HOPS[b.below(2)])
                };
                route(prefix, protocol, RouteKind::Unicast, None, vec![hop])
            }
        };
        let taken = self.others.iter().any(|o| o.prefix == prefix);
        let ours = self.replay.kernel_routes().contains_key(&prefix);
        let gateway_down = r.gateways.iter().any(|g| self.replay.unresolvable(*g).is_some());
        if taken || (ours && r.protocol == protocol) || (r.oif.is_none() && gateway_down) {
            // EEXIST, or no route onto the gateway: no change, no event.
            return Ok(());
        }
        if r.protocol != protocol {
            self.others.push(r.clone());
        }
        // `ip route replace` over one of ours: ours is gone, with no event of its own.
        let kernel_drops = if ours { vec![prefix] } else { Vec::new() };
        let event = KernelEvent::Route {
            route: r,
            present: true,
        };
        self.input_dropping(Input::Kernel(vec![event]), kernel_drops)
    }

    /// A link event. A link going down or away takes the IPv4 routes through it
    /// with it, without a notification for each, as the kernel does.
    fn link(&mut self, b: &mut Bytes) -> Result<(), String> {
        let (index, name) = LINKS[b.below(LINKS.len())];
        let event = match b.below(3) {
            0 => KernelEvent::Link {
                index,
                name: Some(name.into()),
                up: true,
            },
            1 => KernelEvent::Link {
                index,
                name: Some(name.into()),
                up: false,
            },
            _ => KernelEvent::LinkGone { index },
        };
        let subnet = match index {
            2 => Some(net("10.0.0.0/24")),
            3 => Some(net("10.1.0.0/24")),
            _ => None,
        };
        let was_up = self.links_up.get(&index).copied().unwrap_or(false);
        let up = matches!(event, KernelEvent::Link { up: true, .. });
        if !up {
            self.others.retain(|r| r.oif != Some(index));
        }
        if matches!(event, KernelEvent::LinkGone { .. }) {
            self.links_up.remove(&index);
        } else {
            self.links_up.insert(index, up);
        }
        let kernel_drops = match subnet {
            Some(subnet) if was_up && !up => self
                .replay
                .kernel_routes()
                .iter()
                .filter(|(p, hops)| p.addr().is_ipv4() && hops.iter().any(|h| subnet.contains(h)))
                .map(|(p, _)| *p)
                .collect(),
            _ => Vec::new(),
        };
        self.input_dropping(Input::Kernel(vec![event]), kernel_drops)
    }

    fn address(&mut self, b: &mut Bytes) -> Result<(), String> {
        let (index, address) = [
            (2, "10.0.0.1/24"),
            (2, "fd00::1/64"),
            (3, "10.1.0.1/24"),
            (3, "10.0.0.5/24"),
        ][b.below(4)];
        let present = b.flag();
        self.input(Input::Kernel(vec![KernelEvent::Address {
            address: AddressInfo {
                index,
                address: net(address),
            },
            present,
        }]))
    }

    fn reload(&mut self, b: &mut Bytes) -> Result<(), String> {
        let new = config(b.below(RELOADS.len()), self.rr, self.gr).clone();
        let node = self.replay.node();
        for (i, (peer, _)) in PEERS.iter().enumerate() {
            let kept = new.neighbors().into_iter().find(|n| n.address == *peer);
            if node.neighbor(peer) != kept.as_ref() {
                // Removed, changed (stopped and started again) or added: nothing
                // of its old session stays.
                self.peers[i] = PeerModel::default();
            }
        }
        self.input(Input::Reload(Box::new(new)))
    }
}

/// Runs the program the bytes describe; the first broken invariant ends it.
pub fn run(data: &[u8]) -> Result<(), Failure> {
    let mut b = Bytes(data);
    let flags = b.byte();
    let (rr, gr) = (flags & 1 != 0, flags & 2 != 0);
    let mut world = World::new(rr, gr);
    let protocol = world.replay.node().config().fib.protocol;
    // Routes of ours a previous run left.
    let mut own: BTreeMap<IpNet, Vec<IpAddr>> = BTreeMap::new();
    for _ in 0..b.below(4) {
        let p = prefix(b.below(PREFIXES.len()));
        let hop = if p.addr().is_ipv4() {
            V4_HOPS[b.below(3)]
        } else {
            IpAddr::V6(V6_HOPS[b.below(2)])
        };
        // The kernel holds one route per prefix and metric: none of ours where
        // another's is.
        if !world.others.iter().any(|r| r.prefix == p) {
            own.insert(p, vec![hop]);
        }
    }
    let own: Vec<(IpNet, Vec<IpAddr>)> = own.into_iter().collect();
    let result = (|| {
        world.input(Input::Kernel(vec![dump(&own, protocol)]))?;
        world.now += 1;
        world.input(Input::Start { own_routes: own })?;
        for _ in 0..MAX_STEPS {
            if b.is_empty() {
                break;
            }
            world.now += 1;
            match b.below(16) {
                0 | 1 => {
                    let i = world.peer(&mut b);
                    world.up(i, &mut b)?
                }
                2 => {
                    let i = world.peer(&mut b);
                    let graceful = b.flag();
                    if world.peers[i].up {
                        world.down(i, graceful)?
                    }
                }
                3..=5 => {
                    let i = world.peer(&mut b);
                    world.routes(PEERS[i].0, &mut b)?
                }
                6 => {
                    let i = world.peer(&mut b);
                    world.wire(i, &mut b)?
                }
                7 => {
                    let i = world.peer(&mut b);
                    let family = [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST][b.below(2)];
                    let peer = PEERS[i].0;
                    world.input(Input::Peer(PeerEvent::EndOfRib { peer, family }))?
                }
                8 => {
                    let peer = PEERS[world.peer(&mut b)].0;
                    world.input(Input::Peer(PeerEvent::RouteRefresh { peer }))?
                }
                9 | 10 => world.kernel_route(&mut b)?,
                12 => world.address(&mut b)?,
                11 | 13 => world.link(&mut b)?,
                14 => match b.below(3) {
                    0 => world.reload(&mut b)?,
                    n => world.input(Input::Drain { drain: n == 1 })?,
                },
                _ => {
                    world.now += 500 * u64::from(b.byte());
                    world.input(Input::Tick)?
                }
            }
        }
        Ok(())
    })();
    result.map_err(|message| Failure {
        message,
        config_yaml: format!("# found by the core fuzz target\n{}", config_text("", rr, gr)),
        events: world.lines,
    })
}

/// The decoder's target: bytes read as a TCP stream of messages, the way a
/// session frames one. Decoding must never panic, and with 4-byte AS numbers
/// whatever decodes must encode and decode back the same (bar the RFC 7606 error
/// list, which describes the bytes received, not the message). The first byte
/// chooses the AS number size and whether a marker is supplied, so the fuzzer
/// spends its time on the bodies.
pub fn decode(data: &[u8]) -> Result<(), String> {
    let Some((&flags, data)) = data.split_first() else {
        return Ok(());
    };
    let caps = SessionCaps {
        four_octet_as: flags & 1 != 0,
    };
    let mut stream = Vec::with_capacity(data.len() + 16);
    if flags & 2 != 0 {
        stream.extend_from_slice(&[0xff; 16]);
    }
    stream.extend_from_slice(data);
    let without_errors = |msg: Message| match msg {
        Message::Update(mut update) => {
            update.errors.clear();
            Message::Update(update)
        }
        other => other,
    };
    let mut rest = stream.as_slice();
    while let Ok((msg, used)) = Message::decode(rest, &caps) {
        if !(19..=rest.len()).contains(&used) {
            return Err(format!("decode used {used} bytes of {}", rest.len()));
        }
        if caps.four_octet_as {
            let bytes = msg
                .to_bytes(&caps)
                .map_err(|e| format!("{msg:?} decoded but does not encode: {e}"))?;
            let (again, again_used) =
                Message::decode(&bytes, &caps).map_err(|e| format!("{msg:?} encoded but does not decode: {e}"))?;
            if again_used != bytes.len() {
                return Err(format!("{again_used} of {} encoded bytes read back", bytes.len()));
            }
            let (again, msg) = (without_errors(again), without_errors(msg));
            if again != msg {
                return Err(format!("round trip changed the message: {msg:?} became {again:?}"));
            }
        }
        rest = &rest[used..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configuration_of_the_world_parses() {
        for reload in 0..RELOADS.len() {
            for (rr, gr) in [(false, false), (true, true)] {
                config(reload, rr, gr);
            }
        }
    }

    /// Graceful restart on; peer 0 up (IPv4, restart time 120 s), one route,
    /// down without graceful restart: nothing of it may stay.
    const UP_ROUTE_DOWN: [u8; 21] = [2, 0, 0, 0, 0, 3, 0, 3, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 2, 0, 0];

    #[test]
    fn a_short_program_runs_clean() {
        run(&UP_ROUTE_DOWN).unwrap_or_else(|f| panic!("{}\n{}", f.message, f.events_jsonl()));
    }

    #[test]
    fn paths_left_after_a_session_ended_are_caught() {
        let mut w = World::new(false, true);
        w.input(Input::Kernel(vec![dump(&[], 201)])).unwrap();
        w.input(Input::Start { own_routes: vec![] }).unwrap();
        // Up, one route, as the program above has them.
        let mut b = Bytes(&UP_ROUTE_DOWN[2..18]);
        assert_eq!(b.below(16), 0);
        let i = w.peer(&mut b);
        w.up(i, &mut b).unwrap();
        assert_eq!(b.below(16), 3);
        let peer = PEERS[b.below(PEERS.len())].0;
        w.routes(peer, &mut b).unwrap();
        assert_eq!(
            w.replay.node().paths_from(peer),
            2,
            "the route is held, received and selected"
        );
        // The model is told the session ended; the core is not.
        w.peers[0].up = false;
        let e = w.check_sessions().expect_err("the path left behind is seen");
        assert!(
            e.contains("2 paths left after its session ended without graceful restart"),
            "{e}"
        );
        // Down with graceful restart keeps it for the restart time, and no longer.
        w.peers[0].up = true;
        w.down(0, true).unwrap();
        assert_eq!(w.replay.node().paths_from(peer), 2, "kept as stale");
        w.now += 121_000;
        w.input(Input::Tick).unwrap();
        assert_eq!(w.replay.node().paths_from(peer), 0);
    }
}
