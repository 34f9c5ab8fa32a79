//! A deployed cell as the cases see it: what the plan made (nodes, blocks, addresses),
//! what the cases changed since (pods, blocks, daemons down), and the readers of it:
//! commands run in its nodes, its nodes' daemons, who follows a route change.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use crate::bringup::UpReport;
use crate::pods::Pod;
use crate::probes::{self, Route};
use crate::render::{Cell, Plan};
use crate::runtime::Runtime;
use crate::topology::Topology;

/// A deployed cell and what the cases did to it.
pub struct Lab {
    pub cell: Cell,
    pub plan: Plan,
    /// Where the cell's folder is.
    pub dir: PathBuf,
    pub topo: Topology,
    pub up: UpReport,
    /// Each Kubernetes node's own addresses (on its links, not management).
    pub addresses: BTreeMap<String, Vec<IpAddr>>,
    /// Pods the cases made, by name.
    pub pods: BTreeMap<String, Pod>,
    /// Every address a case gave a pod, still known after the pod is gone.
    pub pod_ips: BTreeMap<String, IpAddr>,
    /// The services the case made (SVC), as applied to the nodes.
    pub services: Vec<crate::services::Service>,
    pub pod_ips6: BTreeMap<String, IpAddr>,
    /// Each Kubernetes node's blocks as they are now: its labels', less what a case
    /// released, plus what it allocated.
    pub blocks: BTreeMap<String, Vec<ipnet::IpNet>>,
    /// Nodes whose BGP daemon a case stopped or killed, or which it paused.
    pub down: BTreeSet<String>,
    /// What the cell held when it came up: who each address is, the routes outside
    /// the pools.
    pub baseline: Baseline,
    /// Borrowed addresses handed out so far.
    pub(super) borrowed: u16,
}

pub fn sh(cmd: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), cmd.into()]
}

pub async fn exec_ok(rt: &Runtime, lab: &Lab, node: &str, cmd: &[String]) -> Result<String, String> {
    let container = lab.topo.container_name(node);
    let out = rt.exec(&container, cmd).await.map_err(|e| e.to_string())?;
    if out.ok() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{node}: `{}` exited with {}: {}",
            cmd.join(" "),
            out.code,
            format!("{}{}", out.stdout, out.stderr).trim()
        ))
    }
}

/// The Kubernetes nodes of the cell.
pub fn k8s_nodes(lab: &Lab) -> Vec<String> {
    lab.plan.k8s_nodes().map(|n| n.name.clone()).collect()
}

/// A node's blocks as the cell made them (what `{n1.block}` names).
pub fn label_blocks(lab: &Lab, node: &str) -> Vec<IpNet> {
    lab.plan
        .nodes
        .iter()
        .find(|n| n.name == node)
        .map(|n| n.blocks.clone())
        .unwrap_or_default()
}

pub fn check_node(lab: &Lab, node: &str) -> Result<(), String> {
    if lab.topo.nodes.contains_key(node) {
        Ok(())
    } else {
        Err(format!(
            "no node {node} in this cell (nodes: {})",
            lab.topo.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    }
}

/// `{peer}`: n1's BGP peer in the cell's fabric (n2 in the mesh, its ToR, the route
/// reflector); any other name as it is.
pub fn resolve_node(lab: &Lab, name: &str) -> String {
    use crate::render::Fabric;
    match name {
        "{peer}" => match lab.cell.fabric {
            Fabric::Mesh => "n2",
            Fabric::Tor(_) | Fabric::DualTor(_) | Fabric::Rack => "tor1",
            Fabric::Rr(_) => "rr",
        }
        .to_string(),
        n => n.to_string(),
    }
}

/// Who must follow a change made in `origin`: every other container whose daemon
/// programs its kernel and runs (nodes, ToRs, spines, reflectors that install); in
/// the fabrics here each of them holds every node's blocks and borrowed IPs.
pub fn followers(lab: &Lab, origin: &str) -> Vec<String> {
    lab.plan
        .nodes
        .iter()
        .filter(|n| n.kernel() && n.name != origin && !lab.down.contains(&n.name))
        .map(|n| n.name.clone())
        .collect()
}

/// The kind of a node's BGP daemon.
pub fn implementation_of(lab: &Lab, node: &str) -> Result<&'static dyn crate::bgp::Implementation, String> {
    let n = lab.topo.nodes.get(node).ok_or_else(|| format!("no node {node}"))?;
    n.bgp()
        .and_then(crate::bgp::for_label)
        .ok_or_else(|| format!("{node}: no BGP daemon"))
}

/// The lifecycle of a node's BGP daemon.
pub fn daemon_of(lab: &Lab, node: &str) -> Result<crate::bgp::Daemon, String> {
    let kind = implementation_of(lab, node)?;
    kind.daemon()
        .ok_or_else(|| format!("{node}: the lab cannot control {}", kind.name()))
}

/// The resident memory (KiB) of a node's BGP daemon.
pub async fn rss(rt: &Runtime, lab: &Lab, node: &str) -> Result<u64, String> {
    let d = daemon_of(lab, node)?;
    let out = exec_ok(
        rt,
        lab,
        node,
        &sh(&format!("grep VmRSS /proc/$(cat {})/status", d.pid_file)),
    )
    .await?;
    out.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{node}: cannot read VmRSS from {out:?}"))
}

/// Every address of every container, link-local ones with them, on its interface:
/// who a next hop is.
#[derive(Debug, Clone, Default)]
pub struct AddressBook(pub(super) Vec<(String, String, IpAddr)>);

impl AddressBook {
    /// Reads every container's addresses (not management's, not loopback's).
    pub async fn read(rt: &Runtime, topo: &Topology) -> Result<AddressBook, String> {
        let reads = topo.nodes.values().map(|n| async move {
            let cmd: Vec<String> = ["ip", "-j", "addr", "show"].map(String::from).to_vec();
            let out = rt
                .exec(&topo.container_name(&n.name), &cmd)
                .await
                .map_err(|e| format!("{}: {e}", n.name))?;
            let v: serde_json::Value =
                serde_json::from_str(&out.stdout).map_err(|e| format!("{}: `ip -j addr`: {e}", n.name))?;
            let mut found = Vec::new();
            for i in v.as_array().into_iter().flatten() {
                let Some(dev) = i["ifname"].as_str().filter(|d| !matches!(*d, "lo" | "eth0")) else {
                    continue;
                };
                for a in i["addr_info"].as_array().into_iter().flatten() {
                    if let Some(ip) = a["local"].as_str().and_then(|s| s.parse().ok()) {
                        found.push((n.name.clone(), dev.to_string(), ip));
                    }
                }
            }
            Ok::<_, String>(found)
        });
        let mut book = Vec::new();
        for r in futures::future::join_all(reads).await {
            book.extend(r?);
        }
        Ok(AddressBook(book))
    }

    /// Each container's global addresses on its links.
    pub fn globals(&self) -> BTreeMap<String, Vec<IpAddr>> {
        let mut out: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for (node, _, ip) in &self.0 {
            let link_local = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
            if !link_local {
                out.entry(node.clone()).or_default().push(*ip);
            }
        }
        out
    }

    /// The container a gateway belongs to: an address of its (an IPv4-mapped IPv6
    /// address names the IPv4 one).
    pub(super) fn who(&self, gateway: &str) -> Option<&str> {
        let ip: IpAddr = gateway.parse().ok()?;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.iter().find(|(_, _, a)| *a == ip).map(|(n, ..)| n.as_str())
    }
}

/// What a cell holds when it comes up, to compare every case's end with.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub book: AddressBook,
    /// Per container that programs its kernel, its routes outside the pools (less
    /// the pods' interfaces', which come and go with them).
    pub outside: BTreeMap<String, BTreeSet<String>>,
}

impl Baseline {
    pub async fn read(rt: &Runtime, lab: &Lab, book: AddressBook) -> Result<Baseline, String> {
        let nodes: Vec<&str> = lab
            .plan
            .nodes
            .iter()
            .filter(|n| n.kernel())
            .map(|n| n.name.as_str())
            .collect();
        let pools = lab.plan.pools();
        // Read until two readings half a second apart agree: the routes outside the
        // pools (service CIDRs gathering their ECMP next hops) may still be on their
        // way when the pools' have arrived.
        let start = std::time::Instant::now();
        let mut last: Option<BTreeMap<String, BTreeSet<String>>> = None;
        loop {
            let mut outside = BTreeMap::new();
            for (node, routes) in nodes.iter().zip(fibs(rt, lab, &nodes).await) {
                outside.insert(node.to_string(), outside_pools(&routes?, &pools));
            }
            if last.as_ref() == Some(&outside) || start.elapsed() > std::time::Duration::from_secs(10) {
                return Ok(Baseline { book, outside });
            }
            last = Some(outside);
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

pub(super) fn outside_pools(routes: &[Route], pools: &[IpNet]) -> BTreeSet<String> {
    routes
        .iter()
        .filter(|r| !in_pools(r, pools))
        .filter(|r| {
            !r.hops
                .iter()
                .any(|h| h.dev.as_deref().is_some_and(|d| d.starts_with("cali")))
        })
        .map(Route::line)
        .collect()
}

pub(super) fn in_pools(r: &Route, pools: &[IpNet]) -> bool {
    dst(r).is_some_and(|d| pools.iter().any(|p| p.contains(&d)))
}

/// A route's destination as a prefix (`ip` prints host routes without a length).
pub(super) fn dst(r: &Route) -> Option<IpNet> {
    r.dst
        .parse::<IpNet>()
        .ok()
        .or_else(|| r.dst.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The kernel FIBs of `nodes`, read all at once, in their order.
pub async fn fibs(rt: &Runtime, lab: &Lab, nodes: &[impl AsRef<str>]) -> Vec<Result<Vec<Route>, String>> {
    futures::future::join_all(nodes.iter().map(|n| async move {
        let container = lab.topo.container_name(n.as_ref());
        probes::fib(rt, &container).await.map_err(|e| e.to_string())
    }))
    .await
}
