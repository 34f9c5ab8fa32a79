//! The oracle: what every container of a cell must hold once BGP has converged,
//! computed from the cell's plan (the data that rendered it) and what the cases did
//! (blocks released or allocated, pods made, daemons down). Each prefix a node
//! originates is carried over the plan's sessions with BGP's rules (AS_PATH loops,
//! iBGP split horizon and route reflection with ORIGINATOR_ID and CLUSTER_LIST,
//! next hop self on eBGP, next hops that must be on a connected subnet), and each
//! speaker's best paths (shortest AS_PATH, eBGP over iBGP, the ties as ECMP) give its
//! expected RIB and, where its daemon programs the kernel, its expected FIB. Pure:
//! no Docker here, only the plan and the state.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use crate::render::Plan;

/// A next hop as the oracle names it: the router it leads to and the interface out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hop {
    pub router: String,
    pub dev: String,
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dev {}", self.router, self.dev)
    }
}

/// What a route must be in a kernel FIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// A node's own block, as Calico's IPAM makes it.
    Blackhole,
    /// A pod of this node, on its interface.
    Pod(String),
    /// Learned: one route with exactly these next hops (ECMP when several).
    Via(BTreeSet<Hop>),
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Want::Blackhole => f.write_str("blackhole"),
            Want::Pod(dev) => write!(f, "dev {dev}"),
            Want::Via(hops) => {
                let hops: Vec<String> = hops.iter().map(|h| format!("via {h}")).collect();
                f.write_str(&hops.join(" + "))
            }
        }
    }
}

/// A speaker's expected best path to a prefix: its next hops (several: ECMP) and the
/// length of its AS_PATH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Best {
    pub hops: BTreeSet<Hop>,
    pub as_path_len: usize,
}

/// A pod as the oracle needs it: where it is, its addresses, its interface there.
#[derive(Debug, Clone)]
pub struct PodAt {
    pub node: String,
    pub addrs: Vec<IpAddr>,
    pub iface: String,
}

/// What the cases made of the cell.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Containers whose BGP daemon does not run (stopped, killed, paused).
    pub down: BTreeSet<String>,
    /// Each Kubernetes node's blocks as they are now.
    pub blocks: BTreeMap<String, Vec<IpNet>>,
    pub pods: Vec<PodAt>,
}

/// The converged state of a cell.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Per container whose daemon programs its kernel (and runs): every route inside
    /// the pools.
    pub fibs: BTreeMap<String, BTreeMap<IpNet, Want>>,
    /// Per running BGP speaker: its best path to every prefix it learned.
    pub ribs: BTreeMap<String, BTreeMap<IpNet, Best>>,
    /// Per running BGP speaker and prefix: the speakers it takes a path from (what
    /// its import does not refuse: AS_PATH loops, its own ORIGINATOR_ID or cluster).
    pub accepted: BTreeMap<String, BTreeMap<IpNet, BTreeSet<String>>>,
}

/// A BGP speaker of the plan.
struct Speaker {
    name: String,
    asn: u32,
    router_id: Ipv4Addr,
    cluster: Option<Ipv4Addr>,
    kernel: bool,
    addrs: Vec<(String, IpNet)>,
}

/// One direction of a session: what `from` sends to `to`.
struct Session {
    from: usize,
    to: usize,
    /// `from`'s address on the session.
    local: IpAddr,
    /// `to` is a route-reflector client of `from`.
    client: bool,
    /// `from` gives its own address as the next hop of everything it sends `to`.
    next_hop_self: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Path {
    as_path: Vec<u32>,
    next_hop: IpAddr,
    /// The speaker the next hop belongs to.
    via: usize,
    originator: Option<Ipv4Addr>,
    clusters: Vec<Ipv4Addr>,
    /// The speaker it was learned from.
    from: usize,
    ibgp: bool,
    from_client: bool,
}

/// The plan's speakers and sessions, without the ones that are down.
struct Graph {
    speakers: Vec<Speaker>,
    sessions: Vec<Session>,
}

impl Graph {
    fn new(plan: &Plan, down: &BTreeSet<String>) -> Graph {
        let mut speakers = Vec::new();
        for n in plan.nodes.iter().filter(|n| !down.contains(&n.name)) {
            let (asn, router_id, cluster) = match (&n.intent, &n.router) {
                (Some(i), _) => (i.as_number, i.router_id, None),
                (None, Some(r)) => (r.as_number, r.router_id, r.cluster_id),
                _ => continue,
            };
            speakers.push(Speaker {
                name: n.name.clone(),
                asn,
                router_id,
                cluster,
                kernel: n.kernel(),
                addrs: n.addrs.clone(),
            });
        }
        let owner = |a: IpAddr| speakers.iter().position(|s| s.addrs.iter().any(|(_, n)| n.addr() == a));
        // Each configured end: (from, to, from's address, to is a client of from,
        // from's next hop self toward to).
        let mut ends: Vec<(usize, usize, IpAddr, bool, bool)> = Vec::new();
        for n in &plan.nodes {
            let Some(from) = speakers.iter().position(|s| s.name == n.name) else {
                continue;
            };
            if let Some(i) = &n.intent {
                for (peer, ..) in i.sessions() {
                    if let Some(to) = owner(peer) {
                        ends.push((from, to, i.address_of(peer), false, false));
                    }
                }
            }
            if let Some(r) = &n.router {
                for nb in &r.neighbors {
                    let local = speakers[from]
                        .addrs
                        .iter()
                        .find(|(_, net)| net.contains(&nb.address))
                        .map(|(_, net)| net.addr());
                    if let (Some(to), Some(local)) = (owner(nb.address), local) {
                        ends.push((from, to, local, nb.rr_client, nb.next_hop_self));
                    }
                }
            }
        }
        // A session is up only where both ends have it, each toward the other's address.
        let sessions = ends
            .iter()
            .filter(|(from, to, local, ..)| {
                ends.iter().any(|(f2, t2, l2, ..)| {
                    f2 == to && t2 == from && local.is_ipv4() == l2.is_ipv4() && owner(*l2) == Some(*to)
                })
            })
            .map(|(from, to, local, client, nhs)| Session {
                from: *from,
                to: *to,
                local: *local,
                client: *client,
                next_hop_self: *nhs,
            })
            .collect();
        Graph { speakers, sessions }
    }

    /// The interface of `s` whose subnet holds `a`.
    fn dev_to(&self, s: usize, a: IpAddr) -> Option<&str> {
        self.speakers[s]
            .addrs
            .iter()
            .find(|(_, net)| net.contains(&a) && net.addr() != a)
            .map(|(dev, _)| dev.as_str())
    }

    /// What `s.from` sends `s.to` when its best path is `best` (`None`: it originates
    /// the prefix), if anything.
    fn export(&self, s: &Session, best: Option<&Path>) -> Option<Path> {
        let (from, to) = (&self.speakers[s.from], &self.speakers[s.to]);
        let ebgp = from.asn != to.asn;
        let reverse_client = self
            .sessions
            .iter()
            .any(|r| r.from == s.to && r.to == s.from && r.client);
        let mut p = match best {
            None => Path {
                as_path: Vec::new(),
                next_hop: s.local,
                via: s.from,
                originator: None,
                clusters: Vec::new(),
                from: s.from,
                ibgp: !ebgp,
                from_client: reverse_client,
            },
            Some(b) => {
                if !ebgp && b.ibgp {
                    // iBGP split horizon, unless reflecting (RFC 4456).
                    let cluster = from.cluster?;
                    if !(b.from_client || s.client) {
                        return None;
                    }
                    let mut p = b.clone();
                    p.originator = Some(b.originator.unwrap_or(self.speakers[b.from].router_id));
                    p.clusters.insert(0, cluster);
                    p
                } else {
                    b.clone()
                }
            }
        };
        if ebgp {
            p.as_path.insert(0, from.asn);
            p.originator = None;
            p.clusters.clear();
        }
        if ebgp || s.next_hop_self {
            p.next_hop = s.local;
            p.via = s.from;
        }
        p.from = s.from;
        p.ibgp = !ebgp;
        p.from_client = reverse_client;
        // What the receiver's import refuses.
        let refused = (ebgp && p.as_path.contains(&to.asn))
            || p.originator == Some(to.router_id)
            || to.cluster.is_some_and(|c| p.clusters.contains(&c));
        (!refused).then_some(p)
    }

    /// Whether `to` can use `p`'s next hop: not its own, on a subnet of its links.
    fn usable(&self, to: usize, p: &Path) -> bool {
        !self.speakers[to].addrs.iter().any(|(_, n)| n.addr() == p.next_hop) && self.dev_to(to, p.next_hop).is_some()
    }
}

/// The preferred paths among `paths`: shortest AS_PATH, then eBGP over iBGP; the
/// ties are multipath (ECMP), the first of them the one advertised on.
fn select(g: &Graph, paths: &[Path]) -> Vec<Path> {
    let key = |p: &Path| (p.as_path.len(), p.ibgp);
    let Some(top) = paths.iter().map(key).min() else {
        return Vec::new();
    };
    let mut best: Vec<Path> = paths.iter().filter(|p| key(p) == top).cloned().collect();
    best.sort_by_key(|p| (p.clusters.len(), g.speakers[p.from].router_id));
    best
}

/// The converged state of `plan` after what `state` says.
pub fn expected(plan: &Plan, state: &State) -> Expected {
    let g = Graph::new(plan, &state.down);
    let mut out = Expected::default();
    // What each running node originates: its blocks, and the addresses of its pods
    // that lie in none of them (borrowed IPs), as /32 and /128.
    let mut origins: Vec<(IpNet, usize)> = Vec::new();
    for (k, s) in g.speakers.iter().enumerate() {
        let blocks = state.blocks.get(&s.name).cloned().unwrap_or_default();
        for b in &blocks {
            origins.push((*b, k));
        }
        for p in state.pods.iter().filter(|p| p.node == s.name) {
            for a in p.addrs.iter().filter(|a| !blocks.iter().any(|b| b.contains(*a))) {
                origins.push((IpNet::from(*a), k));
            }
        }
    }
    for (prefix, origin) in origins {
        let (best, delivered) = propagate(&g, prefix, origin);
        for (to, from) in delivered {
            out.accepted
                .entry(g.speakers[to].name.clone())
                .or_default()
                .entry(prefix)
                .or_default()
                .insert(g.speakers[from].name.clone());
        }
        for (k, paths) in best.iter().enumerate() {
            if paths.is_empty() {
                continue;
            }
            let s = &g.speakers[k];
            let hops: BTreeSet<Hop> = paths
                .iter()
                .filter_map(|p| {
                    Some(Hop {
                        router: g.speakers[p.via].name.clone(),
                        dev: g.dev_to(k, p.next_hop)?.to_string(),
                    })
                })
                .collect();
            out.ribs.entry(s.name.clone()).or_default().insert(
                prefix,
                Best {
                    hops: hops.clone(),
                    as_path_len: paths[0].as_path.len(),
                },
            );
            if s.kernel {
                out.fibs
                    .entry(s.name.clone())
                    .or_default()
                    .insert(prefix, Want::Via(hops));
            }
        }
    }
    // Each node's own: its blocks as blackholes, its pods on their interfaces.
    for s in g.speakers.iter().filter(|s| s.kernel) {
        let fib = out.fibs.entry(s.name.clone()).or_default();
        for b in state.blocks.get(&s.name).into_iter().flatten() {
            fib.insert(*b, Want::Blackhole);
        }
        for p in state.pods.iter().filter(|p| p.node == s.name) {
            for a in &p.addrs {
                fib.insert(IpNet::from(*a), Want::Pod(p.iface.clone()));
            }
        }
    }
    out
}

/// Carries `prefix`, originated by `origin`, over the sessions of its family until
/// nothing changes; returns each speaker's best paths (none for the origin), and
/// each (receiver, sender) of a path the receiver's import takes.
fn propagate(g: &Graph, prefix: IpNet, origin: usize) -> (Vec<Vec<Path>>, Vec<(usize, usize)>) {
    let v4 = matches!(prefix, IpNet::V4(_));
    let sessions: Vec<&Session> = g.sessions.iter().filter(|s| s.local.is_ipv4() == v4).collect();
    // What each session last delivered.
    let mut adj_in: Vec<Option<Path>> = vec![None; sessions.len()];
    let mut best: Vec<Vec<Path>> = vec![Vec::new(); g.speakers.len()];
    // Paths grow by an AS a round at most: twice the speakers is past any fixpoint.
    for _ in 0..2 * g.speakers.len() + 2 {
        let mut changed = false;
        for (i, s) in sessions.iter().enumerate() {
            let sent = if s.from == origin {
                g.export(s, None)
            } else {
                best[s.from].first().and_then(|b| g.export(s, Some(b)))
            };
            if adj_in[i] != sent {
                adj_in[i] = sent;
                changed = true;
            }
        }
        for (k, b) in best.iter_mut().enumerate() {
            if k == origin {
                continue;
            }
            let paths: Vec<Path> = sessions
                .iter()
                .zip(&adj_in)
                .filter(|(s, _)| s.to == k)
                .filter_map(|(_, p)| p.clone())
                .filter(|p| g.usable(k, p))
                .collect();
            *b = select(g, &paths);
        }
        if !changed {
            break;
        }
    }
    let delivered = sessions
        .iter()
        .zip(&adj_in)
        .filter(|(_, p)| p.is_some())
        .map(|(s, _)| (s.to, s.from))
        .collect();
    (best, delivered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Cell, Fabric, Family, NodeSpeaker, Router};

    fn plan(fabric: &str, family: Family) -> Plan {
        Plan::new(Cell {
            node: NodeSpeaker::Speaker,
            fabric: fabric.parse().unwrap(),
            family,
        })
        .unwrap()
    }

    fn state(plan: &Plan) -> State {
        State {
            down: BTreeSet::new(),
            blocks: plan.k8s_nodes().map(|n| (n.name.clone(), n.blocks.clone())).collect(),
            pods: Vec::new(),
        }
    }

    fn hop(router: &str, dev: &str) -> Hop {
        Hop {
            router: router.into(),
            dev: dev.into(),
        }
    }

    fn via(hops: &[(&str, &str)]) -> Want {
        Want::Via(hops.iter().map(|(r, d)| hop(r, d)).collect())
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn racks_route_through_their_tors() {
        let p = plan("tor/frr", Family::Dual);
        let e = expected(&p, &state(&p));
        let n1 = &e.fibs["n1"];
        assert_eq!(n1[&net("10.244.1.0/26")], Want::Blackhole);
        assert_eq!(n1[&net("10.244.2.0/26")], via(&[("tor1", "eth1")]));
        assert_eq!(n1[&net("fd00:244:0:4::/122")], via(&[("tor1", "eth1")]));
        let tor1 = &e.fibs["tor1"];
        assert_eq!(tor1[&net("10.244.2.0/26")], via(&[("n2", "eth2")]));
        assert_eq!(tor1[&net("10.244.3.0/26")], via(&[("tor2", "eth3")]));
        assert_eq!(tor1[&net("fd00:244:0:3::/122")], via(&[("tor2", "eth3")]));
        assert_eq!(tor1.len(), 8, "{tor1:?}");
        assert_eq!(n1.len(), 8, "{n1:?}");
        assert_eq!(e.ribs["n1"][&net("10.244.4.0/26")].as_path_len, 3);
        assert_eq!(e.ribs["tor1"][&net("10.244.4.0/26")].as_path_len, 2);
    }

    #[test]
    fn racks_as_one_as_reflect_with_next_hop_self_and_go_through_the_spine() {
        let p = plan("rack", Family::V6);
        let e = expected(&p, &state(&p));
        let n1 = &e.fibs["n1"];
        assert_eq!(n1[&net("fd00:244:0:2::/122")], via(&[("tor1", "eth1")]), "{n1:?}");
        assert_eq!(n1[&net("fd00:244:0:3::/122")], via(&[("tor1", "eth1")]));
        assert_eq!(e.ribs["n1"][&net("fd00:244:0:3::/122")].as_path_len, 2);
        assert_eq!(e.fibs["tor1"][&net("fd00:244:0:3::/122")], via(&[("spine", "eth3")]));
        assert_eq!(e.fibs["spine"][&net("fd00:244:0:1::/122")], via(&[("tor1", "eth1")]));
        assert_eq!(e.fibs["tor2"][&net("fd00:244:0:4::/122")], via(&[("n4", "eth2")]));
        // Its own block comes back from the reflector: refused.
        assert!(!e.accepted["n1"].contains_key(&net("fd00:244:0:1::/122")));
        assert_eq!(n1.len(), 4, "{n1:?}");
    }

    #[test]
    fn a_dual_homed_rack_is_ecmp_over_both_tors() {
        let p = plan("dualtor/bird", Family::V4);
        let e = expected(&p, &state(&p));
        assert_eq!(
            e.fibs["n1"][&net("10.244.3.0/26")],
            via(&[("tor1", "eth1"), ("tor2", "eth2")])
        );
        assert_eq!(e.fibs["tor2"][&net("10.244.3.0/26")], via(&[("n3", "eth3")]));
    }

    #[test]
    fn the_mesh_routes_to_each_owner_and_a_down_node_takes_its_routes_along() {
        let p = plan("mesh", Family::V4);
        let mut s = state(&p);
        s.pods.push(PodAt {
            node: "n2".into(),
            addrs: vec!["10.244.250.1".parse().unwrap(), "10.244.2.9".parse().unwrap()],
            iface: "cali0".into(),
        });
        let e = expected(&p, &s);
        let n1 = &e.fibs["n1"];
        assert_eq!(n1[&net("10.244.3.0/26")], via(&[("n3", "eth1")]));
        // Borrowed: advertised on its own; in the block: beneath it.
        assert_eq!(n1[&net("10.244.250.1/32")], via(&[("n2", "eth1")]));
        assert!(!n1.contains_key(&net("10.244.2.9/32")));
        assert_eq!(e.fibs["n2"][&net("10.244.2.9/32")], Want::Pod("cali0".into()));
        assert!(!e.fibs.contains_key("x1") && !e.ribs.contains_key("x1"));
        s.down.insert("n2".into());
        let e = expected(&p, &s);
        assert!(!e.fibs.contains_key("n2"));
        assert!(!e.fibs["n1"].contains_key(&net("10.244.250.1/32")));
        assert!(!e.fibs["n1"].contains_key(&net("10.244.2.0/26")));
    }

    #[test]
    fn reflectors_keep_the_next_hop_and_program_no_kernel() {
        for r in [Router::Bird, Router::Frr, Router::Gobgp] {
            let p = plan(&Fabric::Rr(r).to_string(), Family::Dual);
            let e = expected(&p, &state(&p));
            assert_eq!(e.fibs["n1"][&net("fd00:244:0:2::/122")], via(&[("n2", "eth1")]));
            assert_eq!(e.ribs["rr"][&net("10.244.3.0/26")].hops, [hop("n3", "eth1")].into());
            assert!(!e.fibs.contains_key("rr"));
            // Its own block comes back reflected, with its ORIGINATOR_ID: refused.
            assert_eq!(e.fibs["n1"][&net("10.244.1.0/26")], Want::Blackhole);
            assert!(!e.ribs["n1"].contains_key(&net("10.244.1.0/26")));
            assert!(!e.accepted["n1"].contains_key(&net("10.244.1.0/26")));
            assert_eq!(e.accepted["n1"][&net("10.244.2.0/26")], ["rr".to_string()].into());
            assert_eq!(e.accepted["rr"][&net("10.244.2.0/26")], ["n2".to_string()].into());
        }
        let p = plan("rr/frr", Family::V4);
        let mut s = state(&p);
        s.down.insert("rr".into());
        let e = expected(&p, &s);
        assert_eq!(e.fibs["n1"].len(), 1, "{:?}", e.fibs["n1"]);
    }
}
