//! What `lab up` checks of the services a topology declares: each is answered from
//! every outside client (`lab.role: client`) on every connection, a policy Cluster
//! service by every endpoint pod, a policy Local one with the client's own address
//! seen by the pod, and its IP learned by the routers from exactly the nodes that
//! should advertise it: every node for Cluster (the configured CIDR), the nodes of its
//! endpoints for Local (its /32 or /128).

use crate::labels::Role;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde::Serialize;

use super::{advertised_by, connect, Answers, Policy, Service, ServiceError};
use crate::pods::Pod;
use crate::runtime::Runtime;
use crate::topology::Topology;

/// Connections per service and client: with four endpoints picked at random, the
/// chance that one gets none of 40 is 4 x 0.75^40, 4 in 100,000.
pub const CONNECTIONS: usize = 40;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub service: String,
    pub ip: IpAddr,
    pub port: u16,
    pub policy: Policy,
    /// The nodes that should advertise it.
    pub expected_from: BTreeSet<String>,
    /// Per router: the prefix it routes the IP by and the nodes it learned it from.
    pub routers: BTreeMap<String, (IpNet, BTreeSet<String>)>,
    /// Per client.
    pub answers: BTreeMap<String, Answers>,
}

impl Row {
    /// The nodes every router together learned it from.
    pub fn learned_from(&self) -> BTreeSet<String> {
        self.routers.values().flat_map(|(_, n)| n.iter().cloned()).collect()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
    pub problems: Vec<String>,
}

/// Checks the services now applied; `wait` bounds the time for their routes to reach
/// the routers and the first connection to be answered.
pub async fn check(
    rt: &Runtime,
    topo: &Topology,
    services: &[Service],
    pods: &[Pod],
    wait: Duration,
) -> Result<Report, ServiceError> {
    let clients: Vec<&str> = topo
        .nodes
        .values()
        .filter(|n| n.role == Some(Role::Client))
        .map(|n| n.name.as_str())
        .collect();
    let client_addrs: BTreeSet<String> = topo
        .links
        .iter()
        .flat_map(|l| [&l.a, &l.b])
        .filter(|e| clients.contains(&e.node.as_str()))
        .flat_map(|e| e.addrs.iter().map(|a| a.addr().to_string()))
        .collect();
    let all_nodes: BTreeSet<String> = topo
        .nodes
        .values()
        .filter(|n| n.role == Some(Role::Node))
        .map(|n| n.name.clone())
        .collect();
    let mut report = Report::default();
    let deadline = Instant::now() + wait;
    for s in services {
        let endpoints: Vec<&Pod> = s
            .ready_endpoints()
            .filter_map(|e| pods.iter().find(|p| &p.name == e))
            .collect();
        for ip in &s.ips {
            let family_endpoints: Vec<&&Pod> = endpoints
                .iter()
                .filter(|p| p.addresses().iter().any(|a| a.is_ipv4() == ip.is_ipv4()))
                .collect();
            let expected_from: BTreeSet<String> = match s.policy {
                Policy::Cluster => all_nodes.clone(),
                Policy::Local => family_endpoints.iter().map(|p| p.node.clone()).collect(),
            };
            // The routes first: until the routers have them all, connections may go
            // where the service is not yet.
            let mut routers = advertised_by(rt, topo, *ip).await?;
            loop {
                let learned: BTreeSet<String> = routers.values().flat_map(|(_, n)| n.iter().cloned()).collect();
                if learned == expected_from || Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                routers = advertised_by(rt, topo, *ip).await?;
            }
            let mut row = Row {
                service: s.name.clone(),
                ip: *ip,
                port: s.port,
                policy: s.policy,
                expected_from,
                routers,
                answers: BTreeMap::new(),
            };
            let learned = row.learned_from();
            if learned != row.expected_from {
                report.problems.push(format!(
                    "{} {ip}: the routers learned it from {} where it should come from {}",
                    s.name,
                    names(&learned),
                    names(&row.expected_from)
                ));
            }
            if s.policy == Policy::Local {
                for (router, (prefix, _)) in &row.routers {
                    if prefix.prefix_len() != prefix.max_prefix_len() {
                        report.problems.push(format!(
                            "{} {ip}: policy Local, but {router} routes it by {prefix}, not by its own host route",
                            s.name
                        ));
                    }
                }
            }
            for client in &clients {
                // The first connection may wait for the routes; the counted ones not.
                loop {
                    let a = connect(rt, topo, client, *ip, s.port, 1).await?;
                    if a.failed == 0 || Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                let a = connect(rt, topo, client, *ip, s.port, CONNECTIONS).await?;
                if a.failed > 0 {
                    report.problems.push(format!(
                        "{} {ip} port {} from {client}: {} of {} connections failed",
                        s.name, s.port, a.failed, a.connections
                    ));
                }
                let silent: Vec<&str> = family_endpoints
                    .iter()
                    .filter(|p| s.policy == Policy::Cluster && !a.by_pod.contains_key(&p.name))
                    .map(|p| p.name.as_str())
                    .collect();
                if !silent.is_empty() && a.answered() > 0 {
                    report.problems.push(format!(
                        "{} {ip} from {client}: policy Cluster, but {} never answered in {} connections",
                        s.name,
                        silent.join(", "),
                        a.connections
                    ));
                }
                if s.policy == Policy::Local {
                    let foreign: BTreeSet<&String> = a
                        .seen_as
                        .values()
                        .flatten()
                        .filter(|addr| !client_addrs.contains(*addr))
                        .collect();
                    if !foreign.is_empty() {
                        report.problems.push(format!(
                            "{} {ip} from {client}: policy Local, but the pods saw the client as {} (not its own address)",
                            s.name,
                            foreign.into_iter().cloned().collect::<Vec<_>>().join(" ")
                        ));
                    }
                }
                row.answers.insert(client.to_string(), a);
            }
            report.rows.push(row);
        }
    }
    Ok(report)
}

fn names(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "no node".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(" ")
    }
}

/// The report as `lab up` prints it: one block per service IP.
pub fn render(report: &Report) -> String {
    let mut s = String::from("Services\n");
    for r in &report.rows {
        s.push_str(&format!(
            "  {} {} port {} (policy {}): should come from {}\n",
            r.service,
            r.ip,
            r.port,
            r.policy,
            names(&r.expected_from)
        ));
        for (router, (prefix, nodes)) in &r.routers {
            s.push_str(&format!(
                "    {router} routes it by {prefix}, learned from {}\n",
                names(nodes)
            ));
        }
        for (client, a) in &r.answers {
            s.push_str(&format!("    from {client}: {}\n", a.line()));
        }
    }
    s
}
