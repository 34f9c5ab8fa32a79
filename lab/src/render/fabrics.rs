//! The fabrics, each described once with the node speaker as a parameter: a mesh,
//! ToRs, two ToRs per rack, a route reflector, and the rack with a spine.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::intent::{NodeIntent, RouterIntent, RouterNeighbor};
use super::*;
use crate::labels::Role;

pub(super) fn mesh(cell: Cell) -> Plan {
    const ASN: u32 = 64512;
    let hosts: [u8; 3] = [11, 12, 13];
    let shown: Vec<String> = [(cell.v4(), "10.0.0.11-13/24"), (cell.v6(), "fd00::11-13/64")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, a)| a.to_string())
        .collect();
    let mut plan = Plan {
        cell,
        lab: format!("c-{}", cell.slug()),
        about: format!(
            "Calico's default: three Kubernetes nodes in an iBGP node-to-node mesh (AS {ASN}) on\none L2 segment (a switch container bridging its ports), {} as the node speaker.\nx1 is a scripted peer (ExaBGP) with two eBGP sessions to n1 (of each family), from AS\n{XA} and AS {XB}, for the robustness cases; it announces nothing unless a case makes it.\n\n          sw (bridge br0)\n     /      |      |      \\\n   n1      n2      n3      x1     {}, x1 hosts 100-101",
            cell.node.as_str(),
            shown.join(", ")
        ),
        nodes: vec![switch(hosts.len() + 1)],
        links: Vec::new(),
        registry: None,
    };
    let addr = |h: u8| seg_addrs(&cell, h);
    for (i, h) in hosts.iter().enumerate() {
        let k = i as u8 + 1;
        let name = format!("n{k}");
        let mut n = NodeIntent::new(ASN, seg4(*h), pools(&cell));
        n.blocks = blocks(&cell, k);
        n.addresses = addr(*h);
        n.node_to_node_mesh.enabled = true;
        n.node_to_node_mesh.peers = hosts.iter().filter(|o| *o != h).flat_map(|o| addr(*o)).collect();
        let mut about = "a Kubernetes node in Calico's node-to-node mesh (iBGP) with the other two.";
        if k == 1 {
            for (x, asn) in [(X_HOSTS[0], XA), (X_HOSTS[1], XB)] {
                for a in addr(x) {
                    n.peer(a, asn);
                    if asn == XA {
                        if let Some(p) = n.peers.last_mut() {
                            p.max_prefixes = Some(X_LIMIT);
                        }
                    }
                }
            }
            about = "a Kubernetes node in Calico's node-to-node mesh (iBGP) with the other two, and\nwith two eBGP BGPPeers (of each family) on x1, the first limited to 10 prefixes.";
        }
        plan.nodes
            .push(node(&name, about, &cell, &n, &segment_addrs(&addr(*h))));
        on_segment(&mut plan, &addr(*h));
        plan.links.push(PlanLink {
            a: (name, "eth1".into()),
            b: ("sw".into(), format!("eth{k}")),
            addrs: vec![],
        });
    }
    let about = "a scripted peer (ExaBGP) with two eBGP sessions (of each family) to n1.";
    let locals: Vec<(IpAddr, u32)> = [(X_HOSTS[0], XA), (X_HOSTS[1], XB)]
        .iter()
        .flat_map(|(h, asn)| addr(*h).into_iter().map(move |a| (a, *asn)))
        .collect();
    let mut exec = segment_addrs(&locals.iter().map(|(a, _)| *a).collect::<Vec<_>>());
    exec.extend(daemon_exec("exabgp"));
    plan.nodes.push(PlanNode {
        name: "x1".into(),
        role: Role::Peer,
        bgp: Some("exabgp"),
        image: "podlab/base:latest".into(),
        blocks: vec![],
        pods: 0,
        files: vec![(
            "exabgp.conf".into(),
            configs::exabgp_peer(about, "x1", &addr(hosts[0]), ASN, &locals),
            "/etc/exabgp/exabgp.conf".into(),
        )],
        exec,
        intent: None,
        router: None,
        addrs: locals.iter().map(|(a, _)| ("eth1".to_string(), seg_net(*a))).collect(),
        about: about.into(),
    });
    plan.links.push(PlanLink {
        a: ("x1".into(), "eth1".into()),
        b: ("sw".into(), format!("eth{}", hosts.len() + 1)),
        addrs: vec![],
    });
    plan
}

/// The scripted peer's addresses on the mesh segment, its two ASes, and the prefix
/// limit n1 sets on the first session.
pub(super) const X_HOSTS: [u8; 2] = [100, 101];
pub(super) const XA: u32 = 65000;
pub(super) const XB: u32 = 65001;
pub(super) const X_LIMIT: u32 = 10;

pub(super) fn tor(cell: Cell, r: Router) -> Plan {
    let mut plan = Plan {
        cell,
        lab: format!("c-{}", cell.slug()),
        about: format!(
            "Two racks of two Kubernetes nodes, {} as the node speaker, each node eBGP (an AS per\nnode) to its rack's ToR ({}); the ToRs peer with each other.\n\n  tor1 (AS 65001) ---- tor2 (AS 65002)\n   |        |           |        |\n  n1       n2          n3       n4      (AS 65101..65104)",
            cell.node.as_str(),
            r.as_str()
        ),
        nodes: Vec::new(),
        links: Vec::new(),
        registry: None,
    };
    let mut tors = two_tors();
    for k in 1..=4u8 {
        let (rack, slot) = ((k - 1) / 2 + 1, (k - 1) % 2);
        let tor4 = Ipv4Addr::new(10, 1, rack, slot * 2);
        let node4 = Ipv4Addr::new(10, 1, rack, slot * 2 + 1);
        let tor6 = Ipv6Addr::new(0xfd00, 1, u16::from(rack), u16::from(slot), 0, 0, 0, 1);
        let node6 = Ipv6Addr::new(0xfd00, 1, u16::from(rack), u16::from(slot), 0, 0, 0, 2);
        let name = format!("n{k}");
        let asn = 65100 + u32::from(k);
        let mut n = NodeIntent::new(asn, node4, pools(&cell));
        n.blocks = blocks(&cell, k);
        services(&mut n, &name, &cell);
        let (v4, v6) = (cell.v4().then_some((tor4, node4)), cell.v6().then_some((tor6, node6)));
        let addrs = uplink(&mut n, &name, &mut tors[usize::from(rack - 1)], v4, v6);
        let about = format!("a Kubernetes node of rack {rack}, eBGP to its ToR (AS per node).");
        // The outside client's network through the node's ToR, as its default route
        // would take it (the ToRs do not advertise it: a node's routes are its pods').
        let to_client = client_routes(&cell, IpAddr::V4(tor4), IpAddr::V6(tor6));
        plan.nodes.push(node(&name, &about, &cell, &n, &to_client));
        plan.links.push(PlanLink {
            a: (format!("tor{rack}"), format!("eth{}", slot + 1)),
            b: (name, "eth1".into()),
            addrs,
        });
    }
    // The ToRs' own link.
    let mut addrs = Vec::new();
    if cell.v4() {
        addrs.push((net("10.0.255.0/31"), net("10.0.255.1/31")));
        let pairs: [(usize, IpAddr, u32); 2] = [
            (0, IpAddr::V4(Ipv4Addr::new(10, 0, 255, 1)), 65002),
            (1, IpAddr::V4(Ipv4Addr::new(10, 0, 255, 0)), 65001),
        ];
        for (t, addr, asn) in pairs {
            tors[t].neighbors.push(RouterNeighbor {
                name: format!("tor{}", 2 - t),
                address: addr,
                as_number: asn,
                rr_client: false,
                next_hop_self: false,
            });
        }
    }
    if cell.v6() {
        addrs.push((net("fd00:1:255::1/64"), net("fd00:1:255::2/64")));
        tors[0].neighbors.push(RouterNeighbor {
            name: "tor2".into(),
            address: "fd00:1:255::2".parse().expect("literal"),
            as_number: 65002,
            rr_client: false,
            next_hop_self: false,
        });
        tors[1].neighbors.push(RouterNeighbor {
            name: "tor1".into(),
            address: "fd00:1:255::1".parse().expect("literal"),
            as_number: 65001,
            rr_client: false,
            next_hop_self: false,
        });
    }
    plan.links.push(PlanLink {
        a: ("tor1".into(), "eth3".into()),
        b: ("tor2".into(), "eth3".into()),
        addrs,
    });
    add_tors(&mut plan, &tors, r, |t| {
        format!(
            "the top-of-rack router of rack {} ({}), eBGP to its nodes and the other ToR.",
            &t.name[3..],
            r.as_str()
        )
    });
    // The client behind tor1; tor2 reaches it through tor1.
    let tor2_to_client = client_routes(
        &cell,
        IpAddr::V4(Ipv4Addr::new(10, 0, 255, 0)),
        "fd00:1:255::1".parse().expect("literal"),
    );
    add_client(&mut plan, "tor1", "eth4", &[("tor2", tor2_to_client)]);
    plan
}

/// A node of a fabric with a client outside the cluster advertises the service
/// CIDRs (the speaker from its configuration; BIRD and FRR as static routes of
/// theirs, `services/confd.rs`).
pub(super) fn services(n: &mut NodeIntent, name: &str, cell: &Cell) {
    n.node_name = Some(name.to_string());
    for (on, lb, cluster, external) in [
        (cell.v4(), SERVICE_CIDR4, CLUSTER_CIDR4, EXTERNAL_CIDR4),
        (cell.v6(), SERVICE_CIDR6, CLUSTER_CIDR6, EXTERNAL_CIDR6),
    ] {
        if on {
            n.service_load_balancer_ips.push(intent::CidrIntent { cidr: net(lb) });
            n.service_cluster_ips.push(intent::CidrIntent { cidr: net(cluster) });
            n.service_external_ips.push(intent::CidrIntent { cidr: net(external) });
        }
    }
}

/// `ip route add` of the client's network through `via4` / `via6`, of the cell's
/// families.
pub(super) fn client_routes(cell: &Cell, via4: IpAddr, via6: IpAddr) -> Vec<String> {
    let mut r = Vec::new();
    if cell.v4() {
        r.push(format!("ip route add {} via {via4}", net(CLIENT4.1).trunc()));
    }
    if cell.v6() {
        r.push(format!("ip -6 route add {} via {via6}", net(CLIENT6.1).trunc()));
    }
    r
}

/// A client outside the cluster (SVC cases): a plain container linked to `router`'s
/// `iface`, routing the service CIDRs to it; the router hashes ECMP on ports, so that
/// connections to a service spread over the nodes that advertise it, and `others`
/// get their routes to the client's network.
pub(super) fn add_client(plan: &mut Plan, router: &str, iface: &str, others: &[(&str, Vec<String>)]) {
    let cell = plan.cell;
    let mut exec = Vec::new();
    let mut addrs = Vec::new();
    for (on, (r, c), lb, cluster, external, f) in [
        (cell.v4(), CLIENT4, SERVICE_CIDR4, CLUSTER_CIDR4, EXTERNAL_CIDR4, ""),
        (cell.v6(), CLIENT6, SERVICE_CIDR6, CLUSTER_CIDR6, EXTERNAL_CIDR6, "-6 "),
    ] {
        if on {
            for cidr in [lb, cluster, external] {
                exec.push(format!("ip {f}route add {cidr} via {}", net(r).addr()));
            }
            addrs.push((net(r), net(c)));
        }
    }
    for n in plan.nodes.iter_mut() {
        if n.name == router {
            n.exec.insert(
                0,
                "sysctl -qw net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1".into(),
            );
        }
        if let Some((_, routes)) = others.iter().find(|(o, _)| *o == n.name) {
            for (i, r) in routes.iter().enumerate() {
                n.exec.insert(i, r.clone());
            }
        }
    }
    plan.nodes.push(PlanNode {
        name: "client".into(),
        role: Role::Client,
        bgp: None,
        image: "podlab/base:latest".into(),
        blocks: vec![],
        pods: 0,
        files: vec![],
        exec,
        intent: None,
        router: None,
        addrs: addrs.iter().map(|(_, c)| ("eth1".to_string(), *c)).collect(),
        about: "a host outside the cluster, routed by the fabric: the SVC cases' client.".into(),
    });
    plan.links.push(PlanLink {
        a: (router.into(), iface.into()),
        b: ("client".into(), "eth1".into()),
        addrs,
    });
}

/// One rack, two ToRs, every node dual-homed: a link and an eBGP session to each ToR
/// (an AS per node, an AS per ToR), so every node learns every other node's block
/// from both ToRs with AS paths of one length, and ECMP carries it over both.
pub(super) fn dual_tor(cell: Cell, r: Router) -> Plan {
    let mut plan = Plan {
        cell,
        lab: format!("c-{}", cell.slug()),
        about: format!(
            "One rack of three Kubernetes nodes, {} as the node speaker, each dual-homed: a link\nand an eBGP session (an AS per node) to each of the rack's two ToRs ({}). Every\nblock reaches the other nodes over both ToRs: one route, two next hops (ECMP).\n\n  tor1 (AS 65001)        tor2 (AS 65002)\n   |eth1 |eth2 |eth3      |eth1 |eth2 |eth3\n  n1    n2    n3  (eth1)  n1    n2    n3  (eth2)     n1..n3: AS 65101..65103",
            cell.node.as_str(),
            r.as_str()
        ),
        nodes: Vec::new(),
        links: Vec::new(),
        registry: None,
    };
    let mut tors = two_tors();
    for k in 1..=3u8 {
        let name = format!("n{k}");
        let asn = 65100 + u32::from(k);
        // Towards tor t: 10.t.k.0/31 (the ToR) and .1 (the node); fd00:t:k::1 and ::2.
        let ends = |t: u8| {
            (
                Ipv4Addr::new(10, t, k, 0),
                Ipv4Addr::new(10, t, k, 1),
                Ipv6Addr::new(0xfd00, u16::from(t), u16::from(k), 0, 0, 0, 0, 1),
                Ipv6Addr::new(0xfd00, u16::from(t), u16::from(k), 0, 0, 0, 0, 2),
            )
        };
        let mut n = NodeIntent::new(asn, ends(1).1, pools(&cell));
        n.blocks = blocks(&cell, k);
        for t in 1..=2u8 {
            let (tor4, node4, tor6, node6) = ends(t);
            let (v4, v6) = (cell.v4().then_some((tor4, node4)), cell.v6().then_some((tor6, node6)));
            let addrs = uplink(&mut n, &name, &mut tors[usize::from(t - 1)], v4, v6);
            plan.links.push(PlanLink {
                a: (format!("tor{t}"), format!("eth{k}")),
                b: (name.clone(), format!("eth{t}")),
                addrs,
            });
        }
        let about = "a Kubernetes node dual-homed to both ToRs, eBGP to each (AS per node).";
        plan.nodes.push(node(&name, about, &cell, &n, &[]));
    }
    add_tors(&mut plan, &tors, r, |_| {
        format!(
            "one of the rack's two top-of-rack routers ({}), eBGP to every node.",
            r.as_str()
        )
    });
    plan
}

pub(super) fn rack(cell: Cell) -> Plan {
    let mut plan = Plan {
        cell,
        lab: format!("c-{}", cell.slug()),
        about: format!(
            "Calico's AS per rack: two racks of two Kubernetes nodes, {} as the node speaker,\neach rack one AS, its nodes iBGP route-reflector clients of their ToR (next hop\nself); the ToRs eBGP to a spine. Rack 1's ToR is FRR, rack 2's BIRD, the spine FRR.\n\n      client --- spine (FRR, AS 65000)\n                /                      \\\n  tor1 (FRR, AS 65101, RR)      tor2 (BIRD, AS 65102, RR)\n     |          |                  |          |\n    n1         n2                 n3         n4",
            cell.node.as_str()
        ),
        nodes: Vec::new(),
        links: Vec::new(),
        registry: None,
    };
    let mut tors: Vec<RouterIntent> = (1..=2u8)
        .map(|t| RouterIntent {
            name: format!("tor{t}"),
            as_number: 65100 + u32::from(t),
            router_id: Ipv4Addr::new(10, 0, 255, 2 * t - 1),
            cluster_id: Some(Ipv4Addr::new(10, 0, 255, 2 * t - 1)),
            neighbors: Vec::new(),
            addresses: Vec::new(),
        })
        .collect();
    let mut spine = RouterIntent {
        name: "spine".into(),
        as_number: 65000,
        router_id: Ipv4Addr::new(10, 0, 255, 254),
        cluster_id: None,
        neighbors: Vec::new(),
        addresses: Vec::new(),
    };
    for k in 1..=4u8 {
        let (rack, slot) = ((k - 1) / 2 + 1, (k - 1) % 2);
        let tor = &mut tors[usize::from(rack - 1)];
        let name = format!("n{k}");
        let tor4 = Ipv4Addr::new(10, 1, rack, slot * 2);
        let node4 = Ipv4Addr::new(10, 1, rack, slot * 2 + 1);
        let tor6 = Ipv6Addr::new(0xfd00, 1, u16::from(rack), u16::from(slot), 0, 0, 0, 1);
        let node6 = Ipv6Addr::new(0xfd00, 1, u16::from(rack), u16::from(slot), 0, 0, 0, 2);
        let mut n = NodeIntent::new(tor.as_number, node4, pools(&cell));
        n.blocks = blocks(&cell, k);
        services(&mut n, &name, &cell);
        let (v4, v6) = (cell.v4().then_some((tor4, node4)), cell.v6().then_some((tor6, node6)));
        let addrs = uplink(&mut n, &name, tor, v4, v6);
        let about =
            format!("a Kubernetes node of rack {rack}, an iBGP route-reflector client of its ToR (AS per rack).");
        let to_client = client_routes(&cell, IpAddr::V4(tor4), IpAddr::V6(tor6));
        plan.nodes.push(node(&name, &about, &cell, &n, &to_client));
        plan.links.push(PlanLink {
            a: (format!("tor{rack}"), format!("eth{}", slot + 1)),
            b: (name, "eth1".into()),
            addrs,
        });
    }
    // The ToRs' links to the spine: spine eth<t> to tor<t> eth3.
    let mut to_client = Vec::new();
    for t in 1..=2u8 {
        let tor = &mut tors[usize::from(t - 1)];
        let (spine4, tor4) = (
            Ipv4Addr::new(10, 0, 255, 2 * t - 2),
            Ipv4Addr::new(10, 0, 255, 2 * t - 1),
        );
        let (spine6, tor6) = (
            Ipv6Addr::new(0xfd00, 0, 255, u16::from(t), 0, 0, 0, 1),
            Ipv6Addr::new(0xfd00, 0, 255, u16::from(t), 0, 0, 0, 2),
        );
        let mut addrs = Vec::new();
        let ends = [
            (cell.v4(), IpAddr::V4(spine4), IpAddr::V4(tor4), 31),
            (cell.v6(), IpAddr::V6(spine6), IpAddr::V6(tor6), 64),
        ];
        for (_, s_ip, t_ip, len) in ends.into_iter().filter(|e| e.0) {
            spine.neighbors.push(RouterNeighbor {
                name: tor.name.clone(),
                address: t_ip,
                as_number: tor.as_number,
                rr_client: false,
                next_hop_self: false,
            });
            tor.neighbors.push(RouterNeighbor {
                name: "spine".into(),
                address: s_ip,
                as_number: spine.as_number,
                rr_client: false,
                next_hop_self: false,
            });
            addrs.push((IpNet::new(s_ip, len).expect("len"), IpNet::new(t_ip, len).expect("len")));
        }
        plan.links.push(PlanLink {
            a: ("spine".into(), format!("eth{t}")),
            b: (tor.name.clone(), "eth3".into()),
            addrs,
        });
        to_client.push((
            tor.name.clone(),
            client_routes(&cell, IpAddr::V4(spine4), IpAddr::V6(spine6)),
        ));
    }
    let routers = [
        (Router::Frr, &tors[0], "rack 1's top-of-rack router (FRR), AS 65101: a route reflector for its nodes, next\nhop self, eBGP to the spine.".to_string()),
        (Router::Bird, &tors[1], "rack 2's top-of-rack router (BIRD), AS 65102: a route reflector for its nodes, next\nhop self, eBGP to the spine.".to_string()),
        (Router::Frr, &spine, "the spine (FRR), AS 65000, eBGP to each rack's ToR.".to_string()),
    ];
    for (i, (r, ri, about)) in routers.into_iter().enumerate() {
        plan.nodes.insert(
            i,
            PlanNode {
                name: ri.name.clone(),
                role: if ri.name == "spine" { Role::Spine } else { Role::Tor },
                bgp: Some(r.as_str()),
                image: "podlab/base:latest".into(),
                blocks: vec![],
                pods: 0,
                files: router_files(r, &about, ri, cell.family, true),
                exec: daemon_exec(r.as_str()),
                intent: None,
                router: Some(ri.clone()),
                addrs: vec![],
                about,
            },
        );
    }
    // The client behind the spine, which spreads its connections over both racks.
    let others: Vec<(&str, Vec<String>)> = to_client.iter().map(|(t, r)| (t.as_str(), r.clone())).collect();
    add_client(&mut plan, "spine", "eth3", &others);
    plan
}

/// A node's uplink to a ToR over a point-to-point link: the sessions over IPv4 and
/// IPv6 as the cell has them, on both sides, from the node's address on the link, and
/// the link's addresses (the ToR's end first). eBGP where the node has an AS of its
/// own; where it shares the ToR's (AS per rack), iBGP with the node the ToR's
/// route-reflector client and the ToR the next hop.
pub(super) fn uplink(
    n: &mut NodeIntent,
    name: &str,
    tor: &mut RouterIntent,
    v4: Option<(Ipv4Addr, Ipv4Addr)>,
    v6: Option<(Ipv6Addr, Ipv6Addr)>,
) -> Vec<(IpNet, IpNet)> {
    let ends = v4
        .map(|(t, m)| (IpAddr::V4(t), IpAddr::V4(m), 31))
        .into_iter()
        .chain(v6.map(|(t, m)| (IpAddr::V6(t), IpAddr::V6(m), 64)));
    let mut addrs = Vec::new();
    for (tor_ip, node_ip, len) in ends {
        n.addresses.push(node_ip);
        n.peer_from(tor_ip, tor.as_number, node_ip);
        tor.neighbors.push(RouterNeighbor {
            name: name.to_string(),
            address: node_ip,
            as_number: n.as_number,
            rr_client: n.as_number == tor.as_number,
            next_hop_self: n.as_number == tor.as_number,
        });
        addrs.push((
            IpNet::new(tor_ip, len).expect("len"),
            IpNet::new(node_ip, len).expect("len"),
        ));
    }
    addrs
}

/// tor1 (AS 65001) and tor2 (AS 65002), no neighbors yet.
pub(super) fn two_tors() -> Vec<RouterIntent> {
    (1..=2u8)
        .map(|t| RouterIntent {
            name: format!("tor{t}"),
            as_number: 65000 + u32::from(t),
            router_id: Ipv4Addr::new(10, 0, 255, t - 1),
            cluster_id: None,
            neighbors: Vec::new(),
            addresses: Vec::new(),
        })
        .collect()
}

/// The ToRs as the first nodes of the plan, in order, each described by `about`.
pub(super) fn add_tors(plan: &mut Plan, tors: &[RouterIntent], r: Router, about: impl Fn(&RouterIntent) -> String) {
    for t in tors.iter().rev() {
        let about = about(t);
        plan.nodes.insert(
            0,
            PlanNode {
                name: t.name.clone(),
                role: Role::Tor,
                bgp: Some(r.as_str()),
                image: "podlab/base:latest".into(),
                blocks: vec![],
                pods: 0,
                files: router_files(r, &about, t, plan.cell.family, true),
                exec: daemon_exec(r.as_str()),
                intent: None,
                router: Some(t.clone()),
                addrs: vec![],
                about,
            },
        );
    }
}

pub(super) fn rr(cell: Cell, r: Router) -> Plan {
    const ASN: u32 = 64512;
    let hosts: [u8; 3] = [11, 12, 13];
    let mut plan = Plan {
        cell,
        lab: format!("c-{}", cell.slug()),
        about: format!(
            "Three Kubernetes nodes, {} as the node speaker, iBGP (AS {ASN}) clients of a route\nreflector ({}) on one L2 segment, as Calico runs with route reflectors (no mesh).\n\n            sw (bridge br0)\n     /      |      |      \\\n   rr      n1     n2      n3      10.0.0.2, 10.0.0.11-13/24",
            cell.node.as_str(),
            r.as_str()
        ),
        nodes: vec![switch(hosts.len() + 1)],
        links: Vec::new(),
        registry: None,
    };
    let addr = |h: u8| seg_addrs(&cell, h);
    let mut rri = RouterIntent {
        name: "rr".into(),
        as_number: ASN,
        router_id: seg4(2),
        cluster_id: Some(seg4(2)),
        neighbors: Vec::new(),
        addresses: addr(2),
    };
    for (i, h) in hosts.iter().enumerate() {
        let k = i as u8 + 1;
        let name = format!("n{k}");
        let mut n = NodeIntent::new(ASN, seg4(*h), pools(&cell));
        n.blocks = blocks(&cell, k);
        n.addresses = addr(*h);
        for a in addr(2) {
            n.peer(a, ASN);
        }
        for a in addr(*h) {
            rri.neighbors.push(RouterNeighbor {
                name: name.clone(),
                address: a,
                as_number: ASN,
                rr_client: true,
                next_hop_self: false,
            });
        }
        let about = "a Kubernetes node, an iBGP client of the route reflector (no node-to-node mesh).";
        plan.nodes
            .push(node(&name, about, &cell, &n, &segment_addrs(&addr(*h))));
        on_segment(&mut plan, &addr(*h));
        plan.links.push(PlanLink {
            a: (name, "eth1".into()),
            b: ("sw".into(), format!("eth{}", k + 1)),
            addrs: vec![],
        });
    }
    let about = format!("the route reflector ({}) of the nodes, cluster 10.0.0.2.", r.as_str());
    let mut exec = segment_addrs(&addr(2));
    exec.extend(daemon_exec(r.as_str()));
    plan.nodes.insert(
        1,
        // The reflectors only reflect (they program no kernel, `Role::Rr`): FRR's with
        // `bgp no-rib`, BIRD's without a kernel protocol, GoBGP's with none at all.
        PlanNode {
            name: "rr".into(),
            role: Role::Rr,
            bgp: Some(r.as_str()),
            image: "podlab/base:latest".into(),
            blocks: vec![],
            pods: 0,
            files: router_files(r, &about, &rri, cell.family, false),
            exec,
            intent: None,
            addrs: rri
                .addresses
                .iter()
                .map(|a| ("eth1".to_string(), seg_net(*a)))
                .collect(),
            router: Some(rri),
            about,
        },
    );
    plan.links.insert(
        0,
        PlanLink {
            a: ("rr".into(), "eth1".into()),
            b: ("sw".into(), "eth1".into()),
            addrs: vec![],
        },
    );
    plan
}
