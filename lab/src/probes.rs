//! Reading a running lab: the BGP sessions of every node, through each implementation's
//! own interface, and the kernel FIB of a node. Readers run inside the containers, so
//! what they see is what the node sees.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::bgp;
use crate::progress::Progress;
use crate::runtime::{is_running, name_of, Runtime, RuntimeError, LABEL_LAB, LABEL_NODE};

/// One row of the peer table: a session as its node reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRow {
    pub lab: String,
    pub node: String,
    /// The implementation, as in the node's `lab.bgp` label.
    pub bgp: String,
    #[serde(flatten)]
    pub session: bgp::Session,
}

/// A node whose sessions could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    pub lab: String,
    pub node: String,
    pub error: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PeerTable {
    pub rows: Vec<PeerRow>,
    pub unreadable: Vec<Unreadable>,
}

impl PeerTable {
    pub fn all_established(&self) -> bool {
        self.unreadable.is_empty()
            && !self.rows.is_empty()
            && self.rows.iter().all(|r| r.session.state == "Established")
    }
}

/// Reads every BGP session of every running node of a lab (or of all labs).
pub async fn peers(rt: &Runtime, lab: Option<&str>) -> Result<PeerTable, RuntimeError> {
    let containers = rt.containers(lab).await?;
    let reads = containers.iter().filter_map(|c| {
        let labels = c.labels.as_ref()?;
        let kind = bgp::for_label(labels.get(crate::labels::BGP)?)?;
        let running = is_running(c);
        let name = name_of(c)?;
        let lab = labels.get(LABEL_LAB).cloned().unwrap_or_default();
        let node = labels.get(LABEL_NODE).cloned().unwrap_or_else(|| name.clone());
        Some(async move {
            if !running {
                return Err(Unreadable {
                    lab,
                    node,
                    error: "container is not running".into(),
                });
            }
            let out = rt.exec(&name, &kind.sessions_command()).await.map_err(|e| Unreadable {
                lab: lab.clone(),
                node: node.clone(),
                error: e.to_string(),
            })?;
            if !out.ok() {
                return Err(Unreadable {
                    lab,
                    node,
                    error: format!(
                        "`{}` exited with {}: {}",
                        kind.sessions_command().join(" "),
                        out.code,
                        format!("{}{}", out.stdout, out.stderr).trim()
                    ),
                });
            }
            let sessions = kind.parse_sessions(&out.stdout).map_err(|e| Unreadable {
                lab: lab.clone(),
                node: node.clone(),
                error: e.to_string(),
            })?;
            Ok(sessions
                .into_iter()
                .map(|session| PeerRow {
                    lab: lab.clone(),
                    node: node.clone(),
                    bgp: kind.name().to_string(),
                    session,
                })
                .collect::<Vec<_>>())
        })
    });
    let mut table = PeerTable::default();
    for r in futures::future::join_all(reads).await {
        match r {
            Ok(rows) => table.rows.extend(rows),
            Err(u) => table.unreadable.push(u),
        }
    }
    table
        .rows
        .sort_by(|a, b| (&a.lab, &a.node, &a.session.peer).cmp(&(&b.lab, &b.node, &b.session.peer)));
    table
        .unreadable
        .sort_by(|a, b| (&a.lab, &a.node).cmp(&(&b.lab, &b.node)));
    Ok(table)
}

/// Waits until every session of the lab is Established. On the deadline, the last table
/// is returned as the error so the caller can name the stuck sessions.
pub async fn wait_established(
    rt: &Runtime,
    lab: &str,
    timeout: Duration,
    progress: &Progress,
) -> Result<PeerTable, (PeerTable, Duration)> {
    let start = Instant::now();
    loop {
        let table = match peers(rt, Some(lab)).await {
            Ok(t) => t,
            Err(e) => PeerTable {
                rows: vec![],
                unreadable: vec![Unreadable {
                    lab: lab.into(),
                    node: "*".into(),
                    error: e.to_string(),
                }],
            },
        };
        if table.all_established() {
            progress.done(&format!("{} sessions Established", table.rows.len()), start);
            return Ok(table);
        }
        if start.elapsed() >= timeout {
            return Err((table, start.elapsed()));
        }
        let up = table.rows.iter().filter(|r| r.session.state == "Established").count();
        progress.running(
            &format!("waiting for sessions: {up}/{} Established", table.rows.len()),
            start,
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until every node that owns a pod block (`lab.block` label) has every other
/// node's block in its kernel FIB, and its own as a blackhole. Returns the nodes still
/// missing routes, as `node: block` strings, when the deadline passes.
pub async fn wait_blocks(
    rt: &Runtime,
    topo: &crate::topology::Topology,
    timeout: Duration,
    progress: &Progress,
) -> Result<usize, Vec<String>> {
    // Every block of every node (one of each family on a dual-stack node).
    let blocks: Vec<(&str, String)> = topo
        .nodes
        .values()
        .flat_map(|n| n.blocks.iter().map(move |b| (n.name.as_str(), b.to_string())))
        .collect();
    let mut nodes: Vec<&str> = blocks.iter().map(|(n, _)| *n).collect();
    nodes.dedup();
    let start = Instant::now();
    loop {
        let mut missing = Vec::new();
        for node in &nodes {
            let routes = match fib(rt, &topo.container_name(node)).await {
                Ok(r) => r,
                Err(e) => {
                    missing.push(format!("{node}: {e}"));
                    continue;
                }
            };
            for (owner, block) in &blocks {
                let found = routes.iter().find(|r| r.dst == *block && r.table.is_none());
                let node = *node;
                let ok = if *owner == node {
                    found.is_some_and(|r| r.route_type == "blackhole")
                } else {
                    found.is_some_and(|r| r.route_type == "unicast" && !r.gateways.is_empty())
                };
                if !ok {
                    missing.push(format!("{node}: {block} of {owner}"));
                }
            }
        }
        if missing.is_empty() {
            if !blocks.is_empty() {
                progress.done(&format!("{} pod blocks in every node's FIB", blocks.len()), start);
            }
            return Ok(blocks.len());
        }
        if start.elapsed() >= timeout {
            return Err(missing);
        }
        progress.running(
            &format!("waiting for pod blocks: {} routes missing", missing.len()),
            start,
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A route of a node's kernel FIB, from `ip -j route`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: String,
    /// `unicast`, `blackhole`, ...
    #[serde(rename = "type")]
    pub route_type: String,
    pub protocol: String,
    pub dev: Option<String>,
    pub gateways: Vec<String>,
    /// Each next hop with its interface (several: a multipath route).
    #[serde(default)]
    pub hops: Vec<NextHop>,
    /// The table, when not `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextHop {
    pub gateway: Option<String>,
    pub dev: Option<String>,
}

impl Route {
    /// As `ip route` would print it, less what changes on its own (nhid, flags):
    /// how routes are compared before and after a case.
    pub fn line(&self) -> String {
        let mut s = String::new();
        if self.route_type != "unicast" {
            s.push_str(&self.route_type);
            s.push(' ');
        }
        s.push_str(&self.dst);
        for h in &self.hops {
            if let Some(g) = &h.gateway {
                s.push_str(&format!(" via {g}"));
            }
            if let Some(d) = &h.dev {
                s.push_str(&format!(" dev {d}"));
            }
        }
        if self.protocol != "boot" {
            s.push_str(&format!(" proto {}", self.protocol));
        }
        if let Some(m) = self.metric {
            s.push_str(&format!(" metric {m}"));
        }
        if let Some(t) = &self.table {
            s.push_str(&format!(" table {t}"));
        }
        s
    }
}

/// Every routing table of a node but `local` (the kernel's own addresses), IPv4 and
/// IPv6: a route a daemon put into another table is as much its doing as one in
/// `main`.
pub async fn fib(rt: &Runtime, container: &str) -> Result<Vec<Route>, RuntimeError> {
    let mut routes = Vec::new();
    for family in ["-4", "-6"] {
        let cmd: Vec<String> = ["ip", "-j", family, "route", "show", "table", "all"]
            .map(String::from)
            .to_vec();
        let out = rt.exec(container, &cmd).await?;
        if !out.ok() {
            return Err(RuntimeError::Other(format!(
                "{container}: `{}` failed: {}",
                cmd.join(" "),
                out.stderr.trim()
            )));
        }
        routes.extend(parse_ip_routes(&out.stdout).map_err(|e| RuntimeError::Other(format!("{container}: {e}")))?);
    }
    routes.retain(|r| r.table.as_deref() != Some("local"));
    Ok(routes)
}

/// Parses `ip -j route` output into routes; multipath routes carry every next hop.
pub fn parse_ip_routes(json: &str) -> Result<Vec<Route>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("`ip -j route` is not JSON: {e}"))?;
    let list = v.as_array().ok_or("`ip -j route` is not a list")?;
    Ok(list
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().map(String::from);
            // `via inet 10.1.2.0` (an IPv6 route through an IPv4 gateway) is an object.
            let hop = |h: &serde_json::Value| NextHop {
                gateway: h["gateway"].as_str().or(h["via"]["host"].as_str()).map(String::from),
                dev: h["dev"].as_str().map(String::from),
            };
            let mut hops: Vec<NextHop> = Vec::new();
            if r["gateway"].is_string() || r["via"].is_object() || r["dev"].is_string() {
                hops.push(hop(r));
            }
            if let Some(list) = r["nexthops"].as_array() {
                hops.extend(list.iter().map(hop));
            }
            Route {
                dst: s("dst").unwrap_or_default(),
                route_type: s("type").unwrap_or_else(|| "unicast".into()),
                protocol: s("protocol").unwrap_or_else(|| "boot".into()),
                dev: s("dev"),
                gateways: hops.iter().filter_map(|h| h.gateway.clone()).collect(),
                hops,
                table: s("table").filter(|t| t != "main"),
                metric: r["metric"].as_u64(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_routes_parse() {
        let json = r#"[{"type":"blackhole","dst":"10.244.0.0/26","flags":[]},
            {"dst":"10.244.0.64/26","gateway":"10.0.0.12","dev":"eth1","protocol":"bird","metric":32,"flags":[]},
            {"dst":"10.244.1.0/26","protocol":"bgp","metric":20,"flags":[],"nexthops":[{"gateway":"10.1.1.0","dev":"eth1","weight":1,"flags":[]},{"gateway":"10.1.2.0","dev":"eth2","weight":1,"flags":[]}]}]"#;
        let r = parse_ip_routes(json).unwrap();
        assert_eq!(r[0].route_type, "blackhole");
        assert_eq!(r[0].protocol, "boot");
        assert_eq!(r[1].gateways, vec!["10.0.0.12"]);
        assert_eq!(r[1].protocol, "bird");
        assert_eq!(r[2].gateways, vec!["10.1.1.0", "10.1.2.0"]);
        assert_eq!(r[2].hops[1].dev.as_deref(), Some("eth2"));
        assert_eq!(
            r[2].line(),
            "10.244.1.0/26 via 10.1.1.0 dev eth1 via 10.1.2.0 dev eth2 proto bgp metric 20"
        );
        assert_eq!(r[0].line(), "blackhole 10.244.0.0/26");
        assert!(parse_ip_routes("nope").is_err());
    }
}
