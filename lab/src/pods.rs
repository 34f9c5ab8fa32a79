//! Pods, Calico style, inside node containers: a network namespace with `eth0` holding
//! the pod's IP as a /32, a link route to 169.254.1.1 and a default route through it;
//! the node side of the veth (`cali…`) answers ARP by proxy, and the node has a /32
//! route to the pod on it. That host route is what a node speaker sees of a pod: inside
//! the node's block it is covered by the block, outside it is a borrowed IP.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::runtime::{Runtime, RuntimeError};
use crate::topology::Topology;

/// Name prefix of a pod's network namespace inside its node.
const NETNS_PREFIX: &str = "pod-";
/// Where a node keeps the PID files of what runs in its pods (`<pod>_<what>.pid`),
/// stopped by PID when the pod is deleted.
pub const PROCESS_DIR: &str = "/run/podlab/pods";

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{0}")]
    Invalid(String),
    #[error("node {node}: pod {pod}: `{step}` failed: {output}")]
    Failed {
        node: String,
        pod: String,
        step: String,
        output: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    pub node: String,
    pub name: String,
    /// The pod's address: IPv4, or IPv6 on an IPv6-only node.
    pub ip: IpAddr,
    /// Its IPv6 address, on a dual-stack node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<IpAddr>,
    /// The node side of the pod's veth.
    pub iface: String,
}

impl Pod {
    /// Its addresses: IPv4, then IPv6 where it has one.
    pub fn addresses(&self) -> Vec<IpAddr> {
        std::iter::once(self.ip).chain(self.ip6).collect()
    }
}

/// Calico names the node side `cali` + 11 hex digits of a hash of the endpoint.
pub fn iface_name(pod: &str) -> String {
    let h = Sha256::digest(pod.as_bytes());
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("cali{}", &hex[..11])
}

fn check_name(name: &str) -> Result<(), PodError> {
    let ok =
        !name.is_empty() && name.len() <= 40 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(PodError::Invalid(format!(
            "pod name {name:?}: use letters, digits, '-' and '.', at most 40 characters"
        )))
    }
}

/// The pods a topology declares with `lab.pods: N` on a node that has a `lab.block`:
/// N pods named `<node>-pod<i>` on the first addresses of the block (of each block,
/// on a dual-stack node).
pub fn declared(topo: &Topology) -> Result<Vec<Pod>, PodError> {
    let mut pods = Vec::new();
    for n in topo.nodes.values() {
        let Some(count) = n.labels.get(crate::labels::PODS) else {
            continue;
        };
        let count: usize = count.parse().map_err(|_| {
            PodError::Invalid(format!(
                "node {}: label lab.pods: {count:?} is not a number of pods",
                n.name
            ))
        })?;
        let blocks = &n.blocks;
        let v4 = blocks.iter().find(|b| matches!(b, IpNet::V4(_)));
        let v6 = blocks.iter().find(|b| matches!(b, IpNet::V6(_)));
        // IPv6 hosts take the same numbers as IPv4 ones: ::1, ::2 (not the subnet's ::).
        let v6_hosts = |b: &IpNet| -> Vec<IpAddr> { b.hosts().skip(1).take(count).collect() };
        let (block, hosts, hosts6) = match (v4, v6) {
            (Some(b4), b6) => (
                *b4,
                b4.hosts().take(count).collect::<Vec<_>>(),
                b6.map(v6_hosts).unwrap_or_default(),
            ),
            // An IPv6-only node: its pods have an IPv6 address alone.
            (None, Some(b6)) => (*b6, v6_hosts(b6), Vec::new()),
            (None, None) => {
                return Err(PodError::Invalid(format!(
                    "node {}: lab.pods needs a lab.block to take addresses from",
                    n.name
                )))
            }
        };
        if hosts.len() < count {
            return Err(PodError::Invalid(format!(
                "node {}: block {block} has room for {} pods",
                n.name,
                hosts.len()
            )));
        }
        for (i, ip) in hosts.into_iter().enumerate() {
            let name = format!("{}-pod{}", n.name, i + 1);
            pods.push(Pod {
                node: n.name.clone(),
                iface: iface_name(&name),
                name,
                ip,
                ip6: hosts6.get(i).copied(),
            });
        }
    }
    Ok(pods)
}

/// Creates a pod in its node. Fails, and leaves nothing behind, if any step fails.
pub async fn add(rt: &Runtime, topo: &Topology, pod: &Pod) -> Result<(), PodError> {
    check_name(&pod.name)?;
    if !topo.nodes.contains_key(&pod.node) {
        return Err(PodError::Invalid(format!(
            "no node {:?} in lab {}",
            pod.node, topo.name
        )));
    }
    // An IPv4 address and an IPv6 one beside it (dual stack), or an IPv6 one alone.
    let (ip4, ip6) = match (pod.ip, pod.ip6) {
        (IpAddr::V4(v4), None) => (Some(v4), None),
        (IpAddr::V4(v4), Some(IpAddr::V6(v6))) => (Some(v4), Some(v6)),
        (IpAddr::V6(v6), None) => (None, Some(v6)),
        _ => {
            return Err(PodError::Invalid(format!(
                "pod {}: give it an IPv4 address, an IPv4 and an IPv6 one, or an IPv6 one alone",
                pod.name
            )))
        }
    };
    let text = r#"
set -e
ns="$1"; ip="$2"; host="$3"; ip6="$4"
# A pod of that name stays as it is; what this script makes is undone if a step fails.
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null; ip link del "$host" 2>/dev/null' ERR
ip link add "$host" type veth peer name eth0 netns "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link set eth0 up
ip link set "$host" up
if [ -n "$ip" ]; then
  ip -n "$ns" addr add "$ip/32" dev eth0
  ip -n "$ns" route add 169.254.1.1 dev eth0 scope link
  ip -n "$ns" route add default via 169.254.1.1 dev eth0 onlink
  echo 1 > "/proc/sys/net/ipv4/conf/$host/proxy_arp"
  echo 0 > "/proc/sys/net/ipv4/neigh/$host/proxy_delay"
  ip route add "$ip/32" dev "$host" scope link
fi
if [ -n "$ip6" ]; then
  # IPv6 as Calico does it: the pod's /128, a default route to a link-local
  # address of the node's side, and a /128 route to the pod on the node.
  ip netns exec "$ns" sh -c 'echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad'
  ip -n "$ns" -6 addr add "$ip6/128" dev eth0 nodad
  ip -6 addr add fe80::1/64 dev "$host" nodad
  ip -n "$ns" -6 route add default via fe80::1 dev eth0
  ip -6 route add "$ip6/128" dev "$host"
fi
"#;
    let ns = format!("{NETNS_PREFIX}{}", pod.name);
    script(
        rt,
        topo,
        &pod.node,
        &pod.name,
        "add",
        text,
        &[
            &ns,
            &ip4.map(|a| a.to_string()).unwrap_or_default(),
            &pod.iface,
            &ip6.map(|a| a.to_string()).unwrap_or_default(),
        ],
    )
    .await
}

/// Runs a bash script in a node with positional arguments, which stay data.
async fn script(
    rt: &Runtime,
    topo: &Topology,
    node: &str,
    pod: &str,
    step: &str,
    text: &str,
    args: &[&str],
) -> Result<(), PodError> {
    let mut cmd: Vec<String> = vec!["bash".into(), "-c".into(), text.into(), format!("pod-{step}")];
    cmd.extend(args.iter().map(|a| a.to_string()));
    let out = rt.exec(&topo.container_name(node), &cmd).await?;
    if !out.ok() {
        return Err(PodError::Failed {
            node: node.into(),
            pod: pod.into(),
            step: step.into(),
            output: format!("{}{}", out.stdout, out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// How a pod's network is taken down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Teardown {
    /// Its routes first, one by one, so every kernel (the node's too) reports their
    /// removal, then its veth.
    #[default]
    Routes,
    /// Its veth at once, as a CNI plugin's DEL does (Calico's deletes the pod's end of
    /// the pair): the kernel takes the pod's IPv4 /32 away without a route event, and
    /// a node speaker must notice from the link.
    Veth,
}

/// Deletes a pod: its namespace, veth and host route go together.
pub async fn delete(rt: &Runtime, topo: &Topology, node: &str, name: &str, how: Teardown) -> Result<(), PodError> {
    check_name(name)?;
    // Then what runs in the pod, by the PIDs it was started with: a process would
    // keep the namespace alive.
    let routes = match how {
        Teardown::Routes => {
            r#"ip route flush dev "$host" && { ip -6 route flush dev "$host" proto boot || true; } && "#
        }
        Teardown::Veth => "",
    };
    let text = format!(
        r#"ns="$1"; host="$2"; pod="$3"; ip link show "$host" >/dev/null && {routes}ip link del "$host" &&
for f in {PROCESS_DIR}/"$pod"_*.pid; do [ -e "$f" ] || continue; kill "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; done &&
ip netns del "$ns""#
    );
    let ns = format!("{NETNS_PREFIX}{name}");
    script(rt, topo, node, name, "delete", &text, &[&ns, &iface_name(name), name]).await
}

/// The pods that exist in the lab's running nodes, read from the nodes themselves.
pub async fn list(rt: &Runtime, topo: &Topology) -> Result<Vec<Pod>, PodError> {
    // One line per pod: "<netns> <address> [<IPv6 address>]".
    let script = r#"for ns in $(ip netns list | awk '{print $1}'); do
  case "$ns" in pod-*) echo "$ns $(ip -n "$ns" -o -4 addr show dev eth0 | awk '{print $4}') $(ip -n "$ns" -o -6 addr show dev eth0 scope global | awk '{print $4}')";; esac
done"#;
    let cmd: Vec<String> = vec!["bash".into(), "-c".into(), script.into()];
    // Every node at once: the suite reads the pods after every case.
    let outs = futures::future::join_all(topo.nodes.keys().map(|node| {
        let cmd = &cmd;
        async move { (node, rt.exec(&topo.container_name(node), cmd).await) }
    }))
    .await;
    let mut pods = Vec::new();
    for (node, out) in outs {
        let Ok(out) = out else {
            continue;
        };
        for line in out.stdout.lines() {
            let mut it = line.split_whitespace();
            let (Some(ns), Some(addr)) = (it.next(), it.next()) else {
                continue;
            };
            let Some(name) = ns.strip_prefix(NETNS_PREFIX) else {
                continue;
            };
            let Ok(ip) = addr.split('/').next().unwrap_or("").parse() else {
                continue;
            };
            let ip6 = it.next().and_then(|a| a.split('/').next()?.parse().ok());
            pods.push(Pod {
                node: node.clone(),
                name: name.to_string(),
                ip,
                ip6,
                iface: iface_name(name),
            });
        }
    }
    pods.sort_by(|a, b| (&a.node, &a.name).cmp(&(&b.node, &b.name)));
    Ok(pods)
}

/// Every pod pinging every other pod: (from, to) -> reached.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PingMatrix {
    pub pods: Vec<Pod>,
    pub reached: BTreeMap<String, BTreeMap<String, bool>>,
}

impl PingMatrix {
    pub fn pairs(&self) -> usize {
        self.reached.values().map(|m| m.len()).sum()
    }
    pub fn ok(&self) -> usize {
        self.reached.values().flat_map(|m| m.values()).filter(|v| **v).count()
    }
    pub fn complete(&self) -> bool {
        self.ok() == self.pairs()
    }
}

/// Pings between every pair of pods, one ICMP echo each, retrying failed pairs until
/// `timeout` (routes of a pod just created may still be on their way).
pub async fn ping_matrix(
    rt: &Runtime,
    topo: &Topology,
    pods: Vec<Pod>,
    timeout: std::time::Duration,
) -> Result<PingMatrix, PodError> {
    let start = std::time::Instant::now();
    let mut m = PingMatrix {
        pods: pods.clone(),
        reached: BTreeMap::new(),
    };
    for p in &pods {
        let row = m.reached.entry(p.name.clone()).or_default();
        for q in pods.iter().filter(|q| q.name != p.name) {
            row.insert(q.name.clone(), false);
        }
    }
    loop {
        let rounds = pods.iter().map(|src| {
            let targets: Vec<&Pod> = pods
                .iter()
                .filter(|dst| dst.name != src.name && !m.reached[&src.name][&dst.name])
                .collect();
            async move {
                if targets.is_empty() {
                    return Ok::<_, PodError>((src.name.clone(), Vec::new()));
                }
                // Pings run in the pod's namespace, all at once; each line says which
                // target answered.
                let script = r#"ns="$1"; shift
for ip in "$@"; do (ping -n -q -c 1 -W 1 -I eth0 "$ip" >/dev/null 2>&1 && echo "$ip") & done; wait"#;
                let mut cmd: Vec<String> = vec![
                    "ip".into(),
                    "netns".into(),
                    "exec".into(),
                    format!("{NETNS_PREFIX}{}", src.name),
                    "bash".into(),
                    "-c".into(),
                    script.into(),
                    "ping".into(),
                    "_".into(),
                ];
                cmd.extend(targets.iter().flat_map(|t| t.addresses()).map(|a| a.to_string()));
                let out = rt.exec(&topo.container_name(&src.node), &cmd).await?;
                let answered: Vec<String> = out.stdout.lines().map(str::to_string).collect();
                Ok((src.name.clone(), answered))
            }
        });
        for r in futures::future::join_all(rounds).await {
            let (src, answered) = r?;
            // A pair is reached when every address of the target answered.
            for dst in &pods {
                if !answered.is_empty() && dst.addresses().iter().all(|a| answered.contains(&a.to_string())) {
                    if let Some(v) = m.reached.get_mut(&src).and_then(|row| row.get_mut(&dst.name)) {
                        *v = true;
                    }
                }
            }
        }
        if m.complete() || start.elapsed() >= timeout {
            return Ok(m);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iface_names_are_calico_like_and_short() {
        let n = iface_name("n1-pod1");
        assert!(n.starts_with("cali") && n.len() == 15, "{n}");
        assert_eq!(n, iface_name("n1-pod1"));
        assert_ne!(n, iface_name("n1-pod2"));
    }

    #[test]
    fn declared_pods_take_the_first_addresses_of_the_block() {
        let src = "name: t\ntopology:\n  nodes:\n    n1:\n      kind: linux\n      image: x\n      labels: {lab.block: 10.244.0.64/26, lab.pods: \"2\"}\n";
        let t = Topology::parse(src, std::path::Path::new("/t.clab.yml")).unwrap();
        let pods = declared(&t).unwrap();
        assert_eq!(pods.len(), 2);
        assert_eq!(pods[0].name, "n1-pod1");
        assert_eq!(pods[0].ip.to_string(), "10.244.0.65");
        assert_eq!(pods[1].ip.to_string(), "10.244.0.66");
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(check_name("a b").is_err());
        assert!(check_name("$(x)").is_err());
        assert!(check_name("web-1").is_ok());
    }
}
