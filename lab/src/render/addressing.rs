//! Every address of a cell: the pools and blocks, the node segment, the service
//! CIDRs and the client's link. The only home of these numbers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::*;

pub(super) const POOL4: &str = "10.244.0.0/16";
pub(super) const POOL6: &str = "fd00:244::/48";

pub(super) fn net(s: &str) -> IpNet {
    s.parse().expect("a literal network")
}

pub(super) fn pools(cell: &Cell) -> Vec<IpNet> {
    let mut p = Vec::new();
    if cell.v4() {
        p.push(net(POOL4));
    }
    if cell.v6() {
        p.push(net(POOL6));
    }
    p
}

/// Node `k`'s blocks (k from 1): a /26 and a /122 as the cell's families have them,
/// as Calico's IPAM makes them.
pub(super) fn blocks(cell: &Cell, k: u8) -> Vec<IpNet> {
    let mut b = Vec::new();
    if cell.v4() {
        b.push(net(&format!("10.244.{k}.0/26")));
    }
    if cell.v6() {
        b.push(net(&format!("fd00:244:0:{k}::/122")));
    }
    b
}

/// Addresses on a switch segment are set by hand (`ip addr add`), as containerlab
/// leaves bridged ports alone.
pub(super) fn segment_addrs(addrs: &[IpAddr]) -> Vec<String> {
    addrs
        .iter()
        .map(|a| match a {
            IpAddr::V4(v4) => format!("ip addr add {v4}/24 dev eth1"),
            IpAddr::V6(v6) => format!("ip addr add {v6}/64 dev eth1 nodad"),
        })
        .collect()
}

/// Host `h`'s addresses on a switch segment, of the cell's families:
/// 10.0.0.h and fd00::h.
pub(super) fn seg_addrs(cell: &Cell, h: u8) -> Vec<IpAddr> {
    let mut a = Vec::new();
    if cell.v4() {
        a.push(IpAddr::V4(seg4(h)));
    }
    if cell.v6() {
        a.push(IpAddr::V6(seg6(h)));
    }
    a
}

pub(super) fn seg4(host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, host)
}

/// An address on a switch segment, with its prefix length (/24, /64).
pub(super) fn seg_net(a: IpAddr) -> IpNet {
    IpNet::new(a, if a.is_ipv4() { 24 } else { 64 }).expect("a valid prefix length")
}

/// The last node added holds these addresses on its segment port, eth1.
pub(super) fn on_segment(plan: &mut Plan, addrs: &[IpAddr]) {
    if let Some(n) = plan.nodes.last_mut() {
        n.addrs = addrs.iter().map(|a| ("eth1".to_string(), seg_net(*a))).collect();
    }
}

/// `fd00::11` for host 11: the IPv4 host number read as the IPv6 one, as people write it.
pub(super) fn seg6(host: u8) -> Ipv6Addr {
    format!("fd00::{host}").parse().expect("a valid address")
}

/// The service CIDRs every node advertises (BGPConfiguration
/// `serviceLoadBalancerIPs`), of the cell's families: the SVC cases' services take
/// their IPs there.
pub const SERVICE_CIDR4: &str = "198.51.100.0/24";
pub const SERVICE_CIDR6: &str = "fd00:198::/112";
/// The external IP CIDRs (`serviceExternalIPs`: a Service's `spec.externalIPs`).
pub const EXTERNAL_CIDR4: &str = "203.0.113.0/24";
pub const EXTERNAL_CIDR6: &str = "fd00:203::/112";
/// The cluster IP CIDRs (`serviceClusterIPs`).
pub const CLUSTER_CIDR4: &str = "10.96.0.0/16";
pub const CLUSTER_CIDR6: &str = "fd00:96::/112";
/// The outside client's link to its router: the router's end, the client's end.
pub(super) const CLIENT4: (&str, &str) = ("10.1.9.0/31", "10.1.9.1/31");
pub(super) const CLIENT6: (&str, &str) = ("fd00:1:9::1/64", "fd00:1:9::2/64");
