//! The SVC cases' checks: a service seen from the cell's outside client (real TCP
//! connections, who answered, which client address the pod saw), and the nodes the
//! fabric's routers learned a service's IP from, read from their own RIBs.

use crate::labels::Role;
use std::collections::BTreeSet;

use super::lab::Lab;
use super::placeholders::node_set;
use super::step::{ConnectExpect, LearnedExpect};
use crate::runtime::Runtime;
use crate::services::{self, Service};

pub(super) fn service<'a>(lab: &'a Lab, name: &str) -> Result<&'a Service, String> {
    lab.services
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no service {name} made by this case"))
}

pub(super) fn client(lab: &Lab) -> Result<String, String> {
    lab.topo
        .nodes
        .values()
        .find(|n| n.role == Some(Role::Client))
        .map(|n| n.name.clone())
        .ok_or_else(|| "this cell has no client outside the cluster (lab.role: client)".into())
}

/// Every address of the service, `count` connections each, from the client.
pub async fn connect(rt: &Runtime, lab: &Lab, c: &ConnectExpect) -> Result<(), String> {
    let s = service(lab, &c.service)?;
    let client = client(lab)?;
    // The client's own addresses, as a pod sees them without masquerade.
    let own: BTreeSet<String> = lab
        .topo
        .links
        .iter()
        .flat_map(|l| [&l.a, &l.b])
        .filter(|e| e.node == client)
        .flat_map(|e| e.addrs.iter().map(|a| a.addr().to_string()))
        .collect();
    let mut wrong = Vec::new();
    for ip in &s.ips {
        let a = services::connect(rt, &lab.topo, &client, *ip, s.port, c.count)
            .await
            .map_err(|e| e.to_string())?;
        let what = format!("{} {ip} port {}: {}", s.name, s.port, a.line());
        if a.failed > c.max_failed {
            wrong.push(format!("{what}: {} failed (at most {})", a.failed, c.max_failed));
        }
        let strangers: Vec<&String> = a.by_pod.keys().filter(|p| !c.by.contains(p)).collect();
        if !strangers.is_empty() {
            wrong.push(format!(
                "{what}: answered by {}, not one of {}",
                strangers.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
                c.by.join(", ")
            ));
        }
        if c.each {
            let silent: Vec<&str> =
                c.by.iter()
                    .filter(|p| !a.by_pod.contains_key(*p))
                    .map(String::as_str)
                    .collect();
            if !silent.is_empty() {
                wrong.push(format!("{what}: {} never answered", silent.join(", ")));
            }
        }
        if c.client_seen {
            let seen: BTreeSet<&String> = a.seen_as.values().flatten().collect();
            let foreign: Vec<&str> = seen.iter().filter(|x| !own.contains(**x)).map(|x| x.as_str()).collect();
            if !foreign.is_empty() {
                wrong.push(format!(
                    "{what}: the pods saw the client as {}, not its own address",
                    foreign.join(" ")
                ));
            }
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// The routers learned each address of the service from exactly `from`: by its
/// host route for policy Local, by whatever covers it otherwise.
pub async fn learned(rt: &Runtime, lab: &Lab, l: &LearnedExpect) -> Result<(), String> {
    let s = service(lab, &l.service)?;
    let want: BTreeSet<String> = match l.from.as_str() {
        "none" => BTreeSet::new(),
        spec => node_set(lab, spec)?.into_iter().collect(),
    };
    let mut wrong = Vec::new();
    for ip in &s.ips {
        let routers = services::advertised_by(rt, &lab.topo, *ip)
            .await
            .map_err(|e| e.to_string())?;
        if routers.is_empty() {
            return Err(format!(
                "{} {ip}: no router of the cell holds a route to it (expected one learned from {})",
                s.name,
                list(&want)
            ));
        }
        let mut got = BTreeSet::new();
        for (prefix, nodes) in routers.values() {
            let host = prefix.prefix_len() == prefix.max_prefix_len();
            // Local: only its host route says who has an endpoint; a covering CIDR
            // is every node's and says nothing of it.
            if s.policy == services::Policy::Local && !host {
                continue;
            }
            got.extend(nodes.iter().cloned());
        }
        if got != want {
            let seen: Vec<String> = routers
                .iter()
                .map(|(r, (p, n))| format!("{r} by {p} from {}", n.iter().cloned().collect::<Vec<_>>().join(" ")))
                .collect();
            wrong.push(format!(
                "{} {ip}: learned from {}, expected from {} ({})",
                s.name,
                list(&got),
                list(&want),
                seen.join("; ")
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

fn list(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "no node".into()
    } else {
        s.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}
