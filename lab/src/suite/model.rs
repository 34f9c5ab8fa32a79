//! WD-04, nothing lingers: what every Kubernetes node's kernel FIB must hold, derived
//! from the lab itself (blocks from the nodes' labels, pods read from the nodes, which
//! daemons are up), compared with what it holds. Inside the pools, a node has its own
//! blocks as blackholes and its pods' /32s on their cali interfaces, and a route with a
//! next hop to every other running node's blocks and borrowed pod IPs; nothing else.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::steps::{blocks, fibs, host_prefix, k8s_nodes};
use super::Lab;
use crate::pods;
use crate::runtime::Runtime;

/// What a route must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Blackhole,
    /// On a pod interface of this node.
    Pod,
    /// Through a next hop.
    Via,
}

/// Checks every running node's FIB against the model once.
pub async fn check(rt: &Runtime, lab: &Lab) -> Result<(), String> {
    let nodes = k8s_nodes(lab);
    let pools: Vec<IpNet> = nodes
        .iter()
        .flat_map(|n| blocks(lab, n))
        .map(|b| match b {
            IpNet::V4(_) => "10.244.0.0/16".parse().expect("literal"),
            IpNet::V6(_) => "fd00:244::/48".parse().expect("literal"),
        })
        .collect();
    let in_pools = |p: &IpNet| pools.iter().any(|pool| pool.contains(p));
    let all_pods = pods::list(rt, &lab.topo).await.map_err(|e| e.to_string())?;
    // Each node's routes to be: its own, and every other running node's.
    let mut model: BTreeMap<&str, BTreeMap<String, Want>> = BTreeMap::new();
    for n in &nodes {
        let own = blocks(lab, n);
        let entry = model.entry(n.as_str()).or_default();
        for b in &own {
            entry.insert(b.to_string(), Want::Blackhole);
        }
        for p in all_pods.iter().filter(|p| p.node == *n) {
            for a in p.addresses() {
                entry.insert(host_prefix(&a.to_string()), Want::Pod);
            }
        }
        if lab.down.contains(n) {
            continue;
        }
        for other in nodes.iter().filter(|o| *o != n) {
            let e = model.entry(other.as_str()).or_default();
            for b in &own {
                e.insert(b.to_string(), Want::Via);
            }
            for a in all_pods.iter().filter(|p| p.node == *n).flat_map(|p| p.addresses()) {
                if !own.iter().any(|b| b.contains(&a)) {
                    e.insert(host_prefix(&a.to_string()), Want::Via);
                }
            }
        }
    }
    let mut wrong = Vec::new();
    let up: Vec<&String> = nodes.iter().filter(|n| !lab.down.contains(*n)).collect();
    let fibs = fibs(rt, lab, &up).await;
    for (n, routes) in up.into_iter().zip(fibs) {
        let routes = routes?;
        let want = &model[n.as_str()];
        let mut seen = BTreeMap::new();
        for r in &routes {
            let dst = host_prefix(&r.dst);
            let Ok(net) = dst.parse::<IpNet>() else { continue };
            if !in_pools(&net) {
                continue;
            }
            let is = if r.kind == "blackhole" {
                Want::Blackhole
            } else if r.dev.as_deref().is_some_and(|d| d.starts_with("cali")) && r.gateways.is_empty() {
                Want::Pod
            } else if !r.gateways.is_empty() {
                Want::Via
            } else {
                wrong.push(format!("{n}: {dst} {} ({}) goes nowhere", r.kind, r.protocol));
                continue;
            };
            match want.get(&dst) {
                None => wrong.push(format!("{n}: stale {dst} ({} {})", r.protocol, r.gateways.join(","))),
                Some(w) if *w != is => wrong.push(format!("{n}: {dst} is {is:?} ({}), should be {w:?}", r.protocol)),
                Some(_) => {
                    seen.insert(dst, ());
                }
            }
        }
        for (dst, w) in want {
            if !seen.contains_key(dst) {
                wrong.push(format!("{n}: {dst} missing ({w:?})"));
            }
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// Every running node's daemon settled, as its kind reads it (our speaker: no route
/// of a previous run kept while it waits for its peers' End-of-RIB): a case that
/// restarted a daemon ends only once the restart is over, so that the next case
/// does not meet its tail (seen: GR-04's Hard Reset landing while n1 still kept
/// the routes of the run GR-03 ended).
pub async fn settled(rt: &Runtime, lab: &Lab) -> Result<(), String> {
    let reads = k8s_nodes(lab)
        .into_iter()
        .filter(|n| !lab.down.contains(n))
        .filter_map(|n| {
            let kind = lab.topo.nodes.get(&n)?.bgp().and_then(crate::kinds::for_label)?;
            Some(async move {
                let out = rt
                    .exec(&lab.topo.container_name(&n), &kind.sessions_command())
                    .await
                    .map_err(|e| format!("{n}: {e}"))?;
                kind.settled(&out.stdout).map_err(|e| format!("{n}: {e}"))
            })
        });
    let wrong: Vec<String> = futures::future::join_all(reads)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// Retries [`check`] and [`settled`] until both hold or `within` passes.
pub async fn wait_exact(rt: &Runtime, lab: &Lab, within: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let now = match check(rt, lab).await {
            Ok(()) => settled(rt, lab).await,
            Err(e) => Err(e),
        };
        match now {
            Ok(()) => return Ok(()),
            Err(e) if start.elapsed() >= within => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}
