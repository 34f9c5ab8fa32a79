//! A service seen from outside: real TCP connections from a client container (a plain
//! host the fabric routes, `lab.role: client`), counted by the pod that answered and
//! the client address it saw; and which nodes a service IP is learned from, read from
//! the fabric's routers' own RIBs.

use crate::labels::Role;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::ServiceError;
use crate::bgp;
use crate::runtime::Runtime;
use crate::topology::Topology;

/// What `count` connections to a service got.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Answers {
    pub connections: usize,
    /// Connections refused, timed out (2 s) or closed without a word.
    pub failed: usize,
    /// Connections answered, by the pod that answered.
    pub by_pod: BTreeMap<String, usize>,
    /// The client addresses each pod saw.
    pub seen_as: BTreeMap<String, BTreeSet<String>>,
}

impl Answers {
    pub fn answered(&self) -> usize {
        self.connections - self.failed
    }

    /// `n1-pod1 10, n3-pod1 12` with the addresses the pods saw.
    pub fn line(&self) -> String {
        let pods: Vec<String> = self.by_pod.iter().map(|(p, n)| format!("{p} {n}")).collect();
        let seen: BTreeSet<&String> = self.seen_as.values().flatten().collect();
        format!(
            "{}/{} answered: {}; client seen as {}",
            self.answered(),
            self.connections,
            if pods.is_empty() { "-".into() } else { pods.join(", ") },
            if seen.is_empty() {
                "-".into()
            } else {
                seen.into_iter().cloned().collect::<Vec<_>>().join(" ")
            }
        )
    }
}

/// Opens `count` TCP connections, one after the other, from `client` to `ip:port`.
pub async fn connect(
    rt: &Runtime,
    topo: &Topology,
    client: &str,
    ip: IpAddr,
    port: u16,
    count: usize,
) -> Result<Answers, ServiceError> {
    let text = r#"ip="$1"; port="$2"; n="$3"; i=0
while [ $i -lt "$n" ]; do
  out=$(nc -N -w 2 "$ip" "$port" </dev/null 2>/dev/null | head -n 1)
  if [ -n "$out" ]; then echo "$out"; else echo "-"; fi
  i=$((i + 1))
done"#;
    let cmd: Vec<String> = vec![
        "bash".into(),
        "-c".into(),
        text.into(),
        "connect".into(),
        ip.to_string(),
        port.to_string(),
        count.to_string(),
    ];
    let out = rt.exec(&topo.container_name(client), &cmd).await?;
    if !out.ok() {
        return Err(ServiceError::Failed {
            node: client.into(),
            step: format!("connect to {ip} port {port}"),
            output: out.stderr.trim().to_string(),
        });
    }
    Ok(parse_answers(&out.stdout))
}

fn parse_answers(out: &str) -> Answers {
    let mut a = Answers::default();
    for line in out.lines() {
        a.connections += 1;
        let mut it = line.split_whitespace();
        match (it.next(), it.next()) {
            (Some(pod), Some(addr)) if pod != "-" => {
                *a.by_pod.entry(pod.to_string()).or_default() += 1;
                // socat writes IPv6 addresses whole (fd00:0001:...): read as addresses.
                let addr = addr.trim_start_matches('[').trim_end_matches(']');
                let addr = addr
                    .parse::<IpAddr>()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| addr.to_string());
                a.seen_as.entry(pod.to_string()).or_default().insert(addr);
            }
            _ => a.failed += 1,
        }
    }
    a
}

/// For each router of the fabric (`lab.role` tor, spine or rr): the most specific
/// prefix it holds that covers `ip`, and the Kubernetes nodes it has a path for it
/// from (a path from another router names no node), read from its RIB where the lab
/// reads it, else from its kernel's next hops (a reflector that reads neither is left
/// out).
pub async fn advertised_by(
    rt: &Runtime,
    topo: &Topology,
    ip: IpAddr,
) -> Result<BTreeMap<String, (IpNet, BTreeSet<String>)>, ServiceError> {
    let owner: BTreeMap<IpAddr, &str> = topo
        .links
        .iter()
        .flat_map(|l| [&l.a, &l.b])
        .filter(|e| topo.nodes.get(&e.node).is_some_and(|n| n.role == Some(Role::Node)))
        .flat_map(|e| e.addrs.iter().map(move |a| (a.addr(), e.node.as_str())))
        .collect();
    // (router, its interface) -> the Kubernetes node at the link's other end.
    let is_node = |n: &str| topo.nodes.get(n).is_some_and(|n| n.role == Some(Role::Node));
    let beyond: BTreeMap<(&str, &str), &str> = topo
        .links
        .iter()
        .flat_map(|l| [(&l.a, &l.b), (&l.b, &l.a)])
        .filter(|(_, far)| is_node(&far.node))
        .map(|(near, far)| ((near.node.as_str(), near.iface.as_str()), far.node.as_str()))
        .collect();
    let mut out = BTreeMap::new();
    for r in topo.nodes.values().filter(|n| n.role.is_some_and(Role::is_router)) {
        let Some(kind) = r.bgp().and_then(bgp::for_label) else {
            continue;
        };
        let container = topo.container_name(&r.name);
        // Every path its RIB holds, where the lab reads its RIB; otherwise the next
        // hops its kernel routes by (BIRD's best paths, merged as ECMP).
        let from: Vec<(IpNet, Vec<String>)> = match kind.rib_command() {
            Some(cmd) => {
                let res = rt.exec(&container, &cmd).await?;
                let rib = kind
                    .parse_rib(&res.stdout)
                    .map_err(|e| ServiceError::Invalid(format!("router {}: {e}", r.name)))?;
                rib.into_iter()
                    .filter_map(|route| {
                        let prefix = route.prefix.parse().ok()?;
                        Some((prefix, route.paths.into_iter().map(|p| p.from).collect()))
                    })
                    .collect()
            }
            None if r.role == Some(Role::Rr) => continue,
            None => crate::probes::fib(rt, &container)
                .await?
                .into_iter()
                .filter_map(|route| {
                    // `ip -j route` writes a host route as its address alone.
                    let prefix =
                        (route.dst.parse().ok()).or_else(|| route.dst.parse::<IpAddr>().ok().map(IpNet::from))?;
                    // A hop through a link-local gateway (BIRD's IPv6 next hops) is
                    // named by its interface: the node at that link's other end.
                    let hops = route.hops.into_iter().filter_map(|h| {
                        let global = h
                            .gateway
                            .filter(|g| g.parse::<IpAddr>().is_ok_and(|a| owner.contains_key(&a)));
                        global.or_else(|| h.dev.map(|d| format!("dev {d}")))
                    });
                    Some((prefix, hops.collect()))
                })
                .collect(),
        };
        let best = from
            .iter()
            .filter(|(p, _)| p.contains(&ip))
            .max_by_key(|(p, _)| p.prefix_len());
        if let Some((prefix, peers)) = best {
            let nodes = peers
                .iter()
                .filter_map(|a| match a.strip_prefix("dev ") {
                    Some(dev) => beyond.get(&(r.name.as_str(), dev)).copied(),
                    None => owner.get(&a.parse::<IpAddr>().ok()?).copied(),
                })
                .map(|n| n.to_string())
                .collect();
            out.insert(r.name.clone(), (*prefix, nodes));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_count_pods_and_failures() {
        let a = parse_answers(
            "n1-pod1 10.1.9.1\nn3-pod1 10.244.0.62\n-\nn1-pod1 10.1.9.1\nn3-pod2 [fd00:0000:0000:0000:0000:0000:0000:0001]\n",
        );
        assert_eq!(a.connections, 5);
        assert_eq!(a.failed, 1);
        assert_eq!(a.by_pod["n1-pod1"], 2);
        assert!(a.seen_as["n3-pod2"].contains("fd00::1"));
        assert_eq!(
            a.line(),
            "4/5 answered: n1-pod1 2, n3-pod1 1, n3-pod2 1; client seen as 10.1.9.1 10.244.0.62 fd00::1"
        );
    }
}
