//! A cell's plan: its nodes (what runs there, its files and commands, its intent),
//! its links, and the tweaks a case makes to a node's intent.

use std::net::IpAddr;

use ipnet::IpNet;

use super::intent::{NodeIntent, RouterIntent};
use super::*;
use crate::labels::Role;
use crate::registry::Registry;

/// A node of a rendered cell.
#[derive(Clone, Debug)]
pub struct PlanNode {
    pub name: String,
    /// `node`, `tor`, `rr`, `peer` (a scripted one), `switch`.
    pub role: Role,
    /// `speaker`, `bird`, `frr`, `gobgp`; none on a switch.
    pub bgp: Option<&'static str>,
    pub image: String,
    pub blocks: Vec<IpNet>,
    pub pods: usize,
    /// (file name in the node's folder, content, where it is mounted).
    pub files: Vec<(String, String, String)>,
    pub exec: Vec<String>,
    /// A Kubernetes node's BGP intent, from which its files were rendered.
    pub intent: Option<NodeIntent>,
    /// A fabric router's intent (ToR, spine, route reflector).
    pub router: Option<RouterIntent>,
    /// Its addresses on the lab's links: (interface, address with its prefix length).
    pub addrs: Vec<(String, IpNet)>,
    pub(super) about: String,
}

impl PlanNode {
    /// Its BGP router ID, from its intent (a Kubernetes node's or a fabric router's).
    pub fn router_id(&self) -> Option<std::net::Ipv4Addr> {
        self.intent
            .as_ref()
            .map(|i| i.router_id)
            .or(self.router.as_ref().map(|r| r.router_id))
    }

    /// Whether its daemon programs the container's kernel with what BGP learns: the
    /// rule of [`Role::programs_kernel`], as for a topology's nodes.
    pub fn kernel(&self) -> bool {
        self.bgp.is_some() && self.role.programs_kernel()
    }

    /// Its static routes through a gateway (`ip route replace ...`), from its exec
    /// commands: what a link that goes down takes away.
    pub fn static_routes(&self) -> Vec<String> {
        self.exec
            .iter()
            .filter(|e| (e.starts_with("ip route add ") || e.starts_with("ip -6 route add ")) && e.contains(" via "))
            .map(|e| e.replacen(" route add ", " route replace ", 1))
            .collect()
    }
}

/// A change to a node's intent a conformance case makes, to see what follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tweak {
    /// Every peer's AS number is wrong.
    WrongPeerAs,
    /// Graceful restart off.
    NoGracefulRestart,
    /// BFD (300 ms x 3) on the node-to-node mesh: both ends are the cell's node
    /// speaker (the fabric's routers and the scripted peer x1 have no such change).
    Bfd,
    /// The catalogue's hold time 3 s and keepalive 1 s on every session of the node
    /// (its peers take the lower hold time the node offers).
    ShortHold,
    /// A TCP-MD5 password on every session of the node, which its peers do not have.
    WrongPassword,
    /// A graceful-restart time of 5 s where every other daemon has 10 s: its helpers
    /// must keep its routes for the time it asks (RFC 4724 4.2), not their own.
    ShortRestart,
    /// A BGPFilter on every BGPPeer that rejects [`FILTERED`] on import (POL-01).
    ImportFilter,
    /// A BGPFilter that rejects the node's own blocks on export, on the first BGPPeer
    /// of each family only: the others still get them (POL-02).
    ExportFilter,
    /// `communities` and `prefixAdvertisements` that attach [`COMMUNITIES`] to the
    /// node's blocks (POL-03).
    Communities,
}

/// The prefixes [`Tweak::ImportFilter`] rejects, one per family (`Equal`).
pub const FILTERED: [&str; 2] = ["10.244.220.0/26", "fd00:244:0:220::/64"];
/// And the ranges whose prefixes it rejects, one per family (`In`: the range or
/// within it).
pub const FILTERED_IN: [&str; 2] = ["10.244.224.0/23", "fd00:244:0:224::/63"];
/// What [`Tweak::Communities`] attaches: one by name (`pol-a` is 65000:100), one
/// standard and one large by value.
pub const COMMUNITIES: [&str; 3] = ["pol-a", "65000:200", "65000:1:2"];

/// A rule that `Reject`s exactly `cidr`.
fn reject_equal(cidr: IpNet) -> intent::RuleIntent {
    intent::RuleIntent {
        action: "Reject",
        match_operator: "Equal",
        cidr,
    }
}

/// A rule that `Reject`s `cidr` and every prefix within it.
fn reject_in(cidr: IpNet) -> intent::RuleIntent {
    intent::RuleIntent {
        action: "Reject",
        match_operator: "In",
        cidr,
    }
}

/// A filter of the `rules` for each family in one direction.
fn filter_of(name: &str, import: bool, rules: Vec<intent::RuleIntent>) -> intent::FilterIntent {
    let (v4, v6): (Vec<_>, Vec<_>) = rules.into_iter().partition(|r| r.cidr.addr().is_ipv4());
    let mut f = intent::FilterIntent {
        name: name.into(),
        import_v4: Vec::new(),
        import_v6: Vec::new(),
        export_v4: Vec::new(),
        export_v6: Vec::new(),
    };
    match import {
        true => (f.import_v4, f.import_v6) = (v4, v6),
        false => (f.export_v4, f.export_v6) = (v4, v6),
    }
    f
}

impl Tweak {
    /// Makes the change to a node's intent.
    pub fn apply(self, intent: &mut NodeIntent) {
        match self {
            Tweak::WrongPeerAs => {
                for p in &mut intent.peers {
                    p.as_number += 1000;
                }
                // The mesh takes the node's own AS: the peers become explicit.
                explicit_mesh(intent, intent.as_number + 1000);
            }
            Tweak::WrongPassword => {
                explicit_mesh(intent, intent.as_number);
                for p in &mut intent.peers {
                    p.password = Some("not-the-peers-password".into());
                }
            }
            Tweak::NoGracefulRestart => intent.graceful_restart.enabled = false,
            Tweak::ShortRestart => intent.graceful_restart.restart_time = 5,
            Tweak::Bfd => intent.node_to_node_mesh.bfd = Some(intent::BFD),
            Tweak::ImportFilter => {
                let rules = FILTERED
                    .iter()
                    .map(|p| reject_equal(net(p)))
                    .chain(FILTERED_IN.iter().map(|p| reject_in(net(p))))
                    .collect();
                intent.filters.push(filter_of("pol-import", true, rules));
                for p in &mut intent.peers {
                    p.filters.push("pol-import".into());
                }
            }
            Tweak::ExportFilter => {
                let rules = intent.blocks.iter().map(|b| reject_equal(*b)).collect();
                intent.filters.push(filter_of("pol-export", false, rules));
                for v4 in [true, false] {
                    if let Some(p) = intent.peers.iter_mut().find(|p| p.peer_ip.is_ipv4() == v4) {
                        p.filters.push("pol-export".into());
                    }
                }
            }
            Tweak::Communities => {
                intent.communities.push(intent::NamedCommunity {
                    name: COMMUNITIES[0].into(),
                    value: "65000:100".into(),
                });
                intent.prefix_advertisements = intent
                    .blocks
                    .iter()
                    .map(|b| intent::PrefixAdvertisement {
                        cidr: *b,
                        communities: COMMUNITIES.map(String::from).to_vec(),
                    })
                    .collect();
            }
            Tweak::ShortHold => {
                let m = &mut intent.node_to_node_mesh;
                (m.hold_time, m.keepalive_time) = (3, 1);
                for p in &mut intent.peers {
                    (p.hold_time, p.keepalive_time) = (3, 1);
                }
            }
        }
    }
}

/// The node-to-node mesh's peers as BGPPeers of AS `asn`, which a change can set
/// apart from the mesh's.
fn explicit_mesh(intent: &mut NodeIntent, asn: u32) {
    if intent.node_to_node_mesh.enabled {
        let peers: Vec<IpAddr> = std::mem::take(&mut intent.node_to_node_mesh.peers);
        intent.node_to_node_mesh.enabled = false;
        for p in peers {
            intent.peer(p, asn);
        }
    }
}

/// A link of a rendered cell, with the addresses of each end.
#[derive(Clone, Debug)]
pub struct PlanLink {
    pub a: (String, String),
    pub b: (String, String),
    pub addrs: Vec<(IpNet, IpNet)>,
}

/// A cell made concrete: nodes, links, configurations.
#[derive(Clone, Debug)]
pub struct Plan {
    pub cell: Cell,
    pub lab: String,
    pub about: String,
    pub nodes: Vec<PlanNode>,
    pub links: Vec<PlanLink>,
    /// Where its nodes' images are pulled from; none: the local engine's (`lab images`).
    pub registry: Option<Registry>,
}

impl Plan {
    /// Renders a cell.
    pub fn new(cell: Cell) -> Result<Plan, String> {
        let mut plan = match cell.fabric {
            Fabric::Mesh => mesh(cell),
            Fabric::Tor(Router::Gobgp) => {
                return Err("GoBGP has no kernel FIB: it cannot be a ToR (FIELD-NOTES)".into())
            }
            Fabric::Tor(r) => tor(cell, r),
            Fabric::Rr(r) => rr(cell, r),
            Fabric::DualTor(Router::Gobgp) => {
                return Err("GoBGP has no kernel FIB: it cannot be a ToR (FIELD-NOTES)".into())
            }
            Fabric::DualTor(r) => dual_tor(cell, r),
            Fabric::Rack => rack(cell),
        };
        // Each end of a point-to-point link holds its address of the link.
        for i in 0..plan.nodes.len() {
            let addrs = plan.link_addrs(&plan.nodes[i].name);
            plan.nodes[i].addrs.extend(addrs);
        }
        Ok(plan)
    }

    /// The addresses the links' `ipv4`/`ipv6` give node `name`: (interface, address). A
    /// node on a switch's segment has its address in its own `exec` already.
    pub fn link_addrs(&self, name: &str) -> Vec<(String, IpNet)> {
        let mut out = Vec::new();
        for l in &self.links {
            for (end, pick) in [(&l.a, 0), (&l.b, 1)] {
                if end.0 == name {
                    for pair in &l.addrs {
                        out.push((end.1.clone(), if pick == 0 { pair.0 } else { pair.1 }));
                    }
                }
            }
        }
        out
    }

    /// The same cell with our speaker's nodes running `image` (a mutant's, say).
    pub fn with_speaker_image(mut self, image: &str) -> Plan {
        for n in self.nodes.iter_mut().filter(|n| n.bgp == Some("speaker")) {
            n.image = image.to_string();
        }
        self
    }

    /// The same cell with its images pulled from `registry`, where `lab images --push`
    /// put them.
    pub fn with_registry(mut self, registry: Registry) -> Plan {
        self.registry = Some(registry);
        self
    }

    /// A local image's name as this cell's nodes pull it.
    pub fn image(&self, local: &str) -> String {
        match &self.registry {
            Some(r) => r.name(local),
            None => local.to_string(),
        }
    }

    /// The pools the cell's pod addresses come from.
    pub fn pools(&self) -> Vec<IpNet> {
        vec![net(POOL4), net(POOL6)]
    }

    /// A Kubernetes node's configuration files rendered again from its intent, with
    /// `tweak` made to it (none: as the cell has it).
    pub fn node_files(&self, node: &str, tweaks: &[Tweak]) -> Result<Vec<(String, String, String)>, String> {
        let n = self
            .nodes
            .iter()
            .find(|n| n.name == node)
            .ok_or_else(|| format!("no node {node} in this cell"))?;
        let mut intent = n
            .intent
            .clone()
            .ok_or_else(|| format!("{node} is not a Kubernetes node: it has no BGP intent"))?;
        for tweak in tweaks {
            tweak.apply(&mut intent);
        }
        Ok(speaker_files(node, &n.about, &intent, self.cell.node))
    }

    /// The Kubernetes nodes.
    pub fn k8s_nodes(&self) -> impl Iterator<Item = &PlanNode> {
        self.nodes.iter().filter(|n| n.role == Role::Node)
    }
}
