//! Each Kubernetes node's BGP intent, written once in the shape of Calico's
//! BGPConfiguration and BGPPeer (the speaker's own configuration format), and the
//! fabric routers' intent. The node speakers' configurations are rendered from it:
//! the speaker reads it as it is; BIRD's and FRR's are rendered the way Calico's
//! confd renders BIRD's (see `configs.rs`).

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde::Serialize;

/// The lab's session timers: short enough that a lost peer shows within seconds.
pub const HOLD: u16 = 9;
pub const KEEPALIVE: u16 = 3;
pub const CONNECT_RETRY: u16 = 2;
/// Graceful restart time: Calico's is 120 s; the lab's is short enough that a peer
/// that never comes back (GR-03) is seen out within a case.
pub const RESTART_TIME: u16 = 10;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeIntent {
    pub as_number: u32,
    #[serde(rename = "routerID")]
    pub router_id: Ipv4Addr,
    pub pools: Vec<IpNet>,
    pub node_to_node_mesh: MeshIntent,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerIntent>,
    pub graceful_restart: GracefulRestartIntent,
    /// Where our speaker serves its Prometheus metrics (a field of ours): on every
    /// address, so the lab reads them from the host over the management network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_address: Option<String>,
    /// BGPConfiguration's `serviceLoadBalancerIPs`: where a cell has a client outside
    /// the cluster, the service CIDRs every node advertises (SVC cases).
    #[serde(rename = "serviceLoadBalancerIPs", skip_serializing_if = "Vec::is_empty")]
    pub service_load_balancer_ips: Vec<CidrIntent>,
    /// And `serviceClusterIPs`.
    #[serde(rename = "serviceClusterIPs", skip_serializing_if = "Vec::is_empty")]
    pub service_cluster_ips: Vec<CidrIntent>,
    /// And `serviceExternalIPs`.
    #[serde(rename = "serviceExternalIPs", skip_serializing_if = "Vec::is_empty")]
    pub service_external_ips: Vec<CidrIntent>,
    /// The Kubernetes node's name, as EndpointSlices name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Calico's BGPFilters (a case's change, POL): peers name them in `filters`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FilterIntent>,
    /// BGPConfiguration's named `communities`, and the `prefixAdvertisements`
    /// that attach them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<NamedCommunity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prefix_advertisements: Vec<PrefixAdvertisement>,
    /// The node's pod blocks (one per family): Calico's IPAM, not BGP config.
    #[serde(skip)]
    pub blocks: Vec<IpNet>,
    /// The node's own addresses, one per family, its sessions' source addresses.
    #[serde(skip)]
    pub addresses: Vec<IpAddr>,
}

/// `{cidr: ...}`, as Calico lists service CIDRs.
#[derive(Clone, Debug, Serialize)]
pub struct CidrIntent {
    pub cidr: IpNet,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshIntent {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<IpAddr>,
    pub hold_time: u16,
    pub keepalive_time: u16,
    pub connect_retry_time: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdIntent>,
}

/// BFD on a session, in milliseconds (a field of ours, not Calico's). BIRD:
/// `protocol bfd` and `bfd on`; FRR: `neighbor X bfd` (bfdd's defaults are these).
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BfdIntent {
    pub min_rx: u32,
    pub min_tx: u32,
    pub multiplier: u8,
}

/// 300 ms x 3, what FRR's bfdd and the speaker default to.
pub const BFD: BfdIntent = BfdIntent {
    min_rx: 300,
    min_tx: 300,
    multiplier: 3,
};

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerIntent {
    #[serde(rename = "peerIP")]
    pub peer_ip: IpAddr,
    pub as_number: u32,
    pub source_address: IpAddr,
    pub hold_time: u16,
    pub keepalive_time: u16,
    pub connect_retry_time: u16,
    /// A field of ours, not Calico's: the session stops (Cease, RFC 4486) when the
    /// peer sends more. BIRD: `import limit N action disable`; FRR: `maximum-prefix`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_prefixes: Option<u32>,
    /// TCP-MD5 (RFC 2385). BIRD: `password`; FRR: `neighbor X password`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// BGPFilters by name, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
}

/// A Calico BGPFilter (`projectcalico.org/v3`): its name and its `spec`'s rules,
/// the ones a case needs (a CIDR with a match operator).
#[derive(Clone, Debug, Serialize)]
pub struct FilterIntent {
    pub name: String,
    #[serde(rename = "importV4", skip_serializing_if = "Vec::is_empty")]
    pub import_v4: Vec<RuleIntent>,
    #[serde(rename = "importV6", skip_serializing_if = "Vec::is_empty")]
    pub import_v6: Vec<RuleIntent>,
    #[serde(rename = "exportV4", skip_serializing_if = "Vec::is_empty")]
    pub export_v4: Vec<RuleIntent>,
    #[serde(rename = "exportV6", skip_serializing_if = "Vec::is_empty")]
    pub export_v6: Vec<RuleIntent>,
}

/// One rule: `action` (`Accept` or `Reject`) when the route's prefix and `cidr`
/// meet as `matchOperator` (`Equal`, `NotEqual`, `In`, `NotIn`) says.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleIntent {
    pub action: &'static str,
    pub match_operator: &'static str,
    pub cidr: IpNet,
}

/// `{name, value}` of BGPConfiguration's `communities`.
#[derive(Clone, Debug, Serialize)]
pub struct NamedCommunity {
    pub name: String,
    pub value: String,
}

/// One of BGPConfiguration's `prefixAdvertisements`: communities by name or value.
#[derive(Clone, Debug, Serialize)]
pub struct PrefixAdvertisement {
    pub cidr: IpNet,
    pub communities: Vec<String>,
}

impl FilterIntent {
    /// The rules of one direction (`import`: true) and family.
    pub fn rules(&self, import: bool, v4: bool) -> &[RuleIntent] {
        match (import, v4) {
            (true, true) => &self.import_v4,
            (true, false) => &self.import_v6,
            (false, true) => &self.export_v4,
            (false, false) => &self.export_v6,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GracefulRestartIntent {
    pub enabled: bool,
    pub restart_time: u16,
}

impl NodeIntent {
    /// Every configured service CIDR (cluster, then load balancer, then external).
    pub fn service_cidrs(&self) -> Vec<IpNet> {
        self.service_cluster_ips
            .iter()
            .chain(&self.service_load_balancer_ips)
            .chain(&self.service_external_ips)
            .map(|c| c.cidr)
            .collect()
    }

    pub fn new(as_number: u32, router_id: Ipv4Addr, pools: Vec<IpNet>) -> NodeIntent {
        NodeIntent {
            as_number,
            router_id,
            pools,
            node_to_node_mesh: MeshIntent {
                enabled: false,
                peers: Vec::new(),
                hold_time: HOLD,
                keepalive_time: KEEPALIVE,
                connect_retry_time: CONNECT_RETRY,
                bfd: None,
            },
            peers: Vec::new(),
            graceful_restart: GracefulRestartIntent {
                enabled: true,
                restart_time: RESTART_TIME,
            },
            metrics_address: Some(format!("0.0.0.0:{}", crate::suite::metrics::PORT)),
            service_load_balancer_ips: Vec::new(),
            service_cluster_ips: Vec::new(),
            service_external_ips: Vec::new(),
            node_name: None,
            filters: Vec::new(),
            communities: Vec::new(),
            prefix_advertisements: Vec::new(),
            blocks: Vec::new(),
            addresses: Vec::new(),
        }
    }

    /// A BGPPeer from this node to `peer_ip`, from our address of its family.
    pub fn peer(&mut self, peer_ip: IpAddr, as_number: u32) {
        let source_address = self.address_of(peer_ip);
        self.peers.push(PeerIntent {
            peer_ip,
            as_number,
            source_address,
            hold_time: HOLD,
            keepalive_time: KEEPALIVE,
            connect_retry_time: CONNECT_RETRY,
            max_prefixes: None,
            password: None,
            filters: Vec::new(),
        });
    }

    /// A BGPPeer from this node to `peer_ip`, from `source` (a node with a link to
    /// each of two routers peers from the address on each).
    pub fn peer_from(&mut self, peer_ip: IpAddr, as_number: u32, source: IpAddr) {
        self.peer(peer_ip, as_number);
        if let Some(p) = self.peers.last_mut() {
            p.source_address = source;
        }
    }

    /// Our address towards `peer`: the configured peer's source address, or our
    /// first address of its family.
    pub fn address_of(&self, peer: IpAddr) -> IpAddr {
        if let Some(p) = self.peers.iter().find(|p| p.peer_ip == peer) {
            return p.source_address;
        }
        *self
            .addresses
            .iter()
            .find(|a| a.is_ipv4() == peer.is_ipv4())
            .expect("the node has an address of each family it peers over")
    }

    /// The TCP-MD5 password of the BGPPeer to `peer`, if any.
    pub fn password(&self, peer: IpAddr) -> Option<&str> {
        self.peers
            .iter()
            .find(|p| p.peer_ip == peer)
            .and_then(|p| p.password.as_deref())
    }

    /// The BGPFilters of the BGPPeer to `peer`, in order (none for the mesh).
    pub fn filters_of(&self, peer: IpAddr) -> Vec<&FilterIntent> {
        let names = self
            .peers
            .iter()
            .find(|p| p.peer_ip == peer)
            .map(|p| p.filters.as_slice());
        names
            .unwrap_or_default()
            .iter()
            .filter_map(|name| self.filters.iter().find(|f| f.name == *name))
            .collect()
    }

    /// The prefix limit set on the BGPPeer to `peer`, if any.
    pub fn max_prefixes(&self, peer: IpAddr) -> Option<u32> {
        self.peers
            .iter()
            .find(|p| p.peer_ip == peer)
            .and_then(|p| p.max_prefixes)
    }

    /// BFD on the session with `peer`, if any (only the mesh has it).
    pub fn bfd(&self, peer: IpAddr) -> Option<BfdIntent> {
        self.node_to_node_mesh
            .bfd
            .filter(|_| self.node_to_node_mesh.peers.contains(&peer))
    }

    /// The hold time and keepalive time of the session with `peer`.
    pub fn timers(&self, peer: IpAddr) -> (u16, u16) {
        match self.peers.iter().find(|p| p.peer_ip == peer) {
            Some(p) => (p.hold_time, p.keepalive_time),
            None => (self.node_to_node_mesh.hold_time, self.node_to_node_mesh.keepalive_time),
        }
    }

    /// Every session of the node: (peer address, peer AS, passive), mesh first.
    pub fn sessions(&self) -> Vec<(IpAddr, u32, bool)> {
        let mut out: Vec<(IpAddr, u32, bool)> = self
            .node_to_node_mesh
            .peers
            .iter()
            // Calico makes the side with the lower address passive: the mesh is
            // unidirectional, and BIRD would otherwise collide on every pair.
            .map(|p| (*p, self.as_number, self.address_of(*p) < *p))
            .collect();
        out.extend(self.peers.iter().map(|p| (p.peer_ip, p.as_number, false)));
        out
    }
}

/// A fabric router (ToR, spine, route reflector) and its sessions.
#[derive(Clone, Debug)]
pub struct RouterIntent {
    pub name: String,
    pub as_number: u32,
    pub router_id: Ipv4Addr,
    /// Set on a route reflector.
    pub cluster_id: Option<Ipv4Addr>,
    pub neighbors: Vec<RouterNeighbor>,
    /// The router's addresses (one per family) on the node segment, when there is one.
    pub addresses: Vec<IpAddr>,
}

#[derive(Clone, Debug)]
pub struct RouterNeighbor {
    pub name: String,
    pub address: IpAddr,
    pub as_number: u32,
    /// A route reflector client of this router.
    pub rr_client: bool,
    /// This router gives its own address as the next hop of what it sends the
    /// neighbor, reflected routes too (FRR's `next-hop-self force`).
    pub next_hop_self: bool,
}
