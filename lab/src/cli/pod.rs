//! `lab pod`: pods added, deleted and listed, and timed to every kernel that follows.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::args::*;
use crate::open;
use crate::print::*;
use lab::probes::{self};
use lab::{pods, report, services, watch};

pub async fn pod(verb: PodVerb) -> Result<ExitCode> {
    match verb {
        PodVerb::Add {
            topo,
            node,
            ip,
            ip6,
            name,
            timing,
            json,
        } => {
            let (t, rt) = open(&topo).await?;
            let name = name.unwrap_or_else(|| format!("{node}-{}", ip.to_string().replace(['.', ':'], "-")));
            let p = pods::Pod {
                iface: pods::iface_name(&name),
                node,
                name,
                ip,
                ip6,
            };
            if !timing {
                pods::add(&rt, &t, &p).await?;
                services::follow_pods(&rt, &t).await?;
                println!("pod {} ({}) on {} via {}", p.name, p.ip, p.node, p.iface);
                return Ok(ExitCode::SUCCESS);
            }
            let followers: Vec<String> = t
                .nodes
                .values()
                .filter(|n| n.name != p.node && n.follows_routes())
                .map(|n| n.name.clone())
                .collect();
            let prefix = host_prefix(p.ip);
            let change = async {
                pods::add(&rt, &t, &p).await?;
                services::follow_pods(&rt, &t).await.map_err(anyhow::Error::from)
            };
            let prefixes = [prefix];
            let c = watch::Change {
                prefixes: &prefixes,
                deleted: false,
                origin: &p.node,
                followers: &followers,
                deadline: Duration::from_secs(10),
                from_origin_event: true,
                settle: Duration::ZERO,
            };
            let prop = watch::time_change(&rt, &t, c, change).await?;
            return print_propagation(&prop[0], json);
        }
        PodVerb::Del {
            topo,
            node,
            name,
            timing,
            json,
        } => {
            let (t, rt) = open(&topo).await?;
            if !timing {
                pods::delete(&rt, &t, &node, &name, pods::Teardown::Routes).await?;
                services::follow_pods(&rt, &t).await?;
                println!("pod {name} deleted from {node}");
                return Ok(ExitCode::SUCCESS);
            }
            let pod = pods::list(&rt, &t)
                .await?
                .into_iter()
                .find(|p| p.node == node && p.name == name)
                .with_context(|| format!("no pod {name} on node {node}"))?;
            let prefix = host_prefix(pod.ip);
            // The nodes whose kernels route to the pod now: each must let go.
            let mut followers = Vec::new();
            for n in t.nodes.values().filter(|n| n.name != node && n.follows_routes()) {
                let fib = probes::fib(&rt, &t.container_name(&n.name)).await?;
                if fib
                    .iter()
                    .any(|r| host_prefix_of(&r.dst) == prefix && r.route_type != "blackhole")
                {
                    followers.push(n.name.clone());
                }
            }
            let change = async {
                pods::delete(&rt, &t, &node, &name, pods::Teardown::Routes).await?;
                services::follow_pods(&rt, &t).await.map_err(anyhow::Error::from)
            };
            let prefixes = [prefix];
            let c = watch::Change {
                prefixes: &prefixes,
                deleted: true,
                origin: &node,
                followers: &followers,
                deadline: Duration::from_secs(10),
                from_origin_event: true,
                settle: Duration::ZERO,
            };
            let prop = watch::time_change(&rt, &t, c, change).await?;
            return print_propagation(&prop[0], json);
        }
        PodVerb::List { topo, json } => {
            let (t, rt) = open(&topo).await?;
            let list = pods::list(&rt, &t).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|p| {
                        let ips: Vec<String> = p.addresses().iter().map(|a| a.to_string()).collect();
                        vec![p.node.clone(), p.name.clone(), ips.join(" "), p.iface.clone()]
                    })
                    .collect();
                print!("{}", report::table(&["NODE", "POD", "IP", "HOST IFACE"], &rows));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A host route's prefix as route events and `ip -j route` name it.
pub fn host_prefix(ip: std::net::IpAddr) -> String {
    format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 })
}

/// `ip -j route` writes host routes without their length.
pub fn host_prefix_of(dst: &str) -> String {
    match dst.parse::<std::net::IpAddr>() {
        Ok(ip) => host_prefix(ip),
        Err(_) => dst.to_string(),
    }
}
