//! What kube-proxy (nftables mode) programs in a node, for one node: traffic to a
//! service IP and port is DNAT'ed to one of its endpoints, picked at random; policy
//! Cluster picks among every endpoint of the cluster and masquerades what goes to
//! another node (its reply must come back through this one to be un-NAT'ed), policy
//! Local picks among this node's endpoints only and keeps the client's address; a
//! Local service with no endpoint here drops its traffic, and a service with no
//! endpoint at all refuses it (TCP reset), as kube-proxy does.
//!
//! The masquerade address is the last address of the node's block (of each family),
//! as Calico gives a node its tunnel address from its block: every other node routes
//! the block to this node, which the link addresses of a fabric do not promise.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::{Policy, Service};
use crate::pods::Pod;

/// The nftables table the lab owns in each node; written whole, atomically, each time.
pub const TABLE: &str = "podlab_services";
/// The packet mark of connections to masquerade.
const MASQ_MARK: u32 = 0x4000;

/// The node's ruleset for `nft -f`: the table replaced whole.
pub fn ruleset(node: &str, services: &[Service], pods: &[Pod], snat: &[IpAddr]) -> String {
    let mut pre = String::new();
    let mut forward = String::new();
    let mut chains = String::new();
    for (i, s) in services.iter().enumerate() {
        for ip in &s.ips {
            let (fam, nfproto) = if ip.is_ipv4() { ("ip", "4") } else { ("ip6", "6") };
            let chain = format!("svc{i}_{nfproto}");
            let m = format!("{fam} daddr {ip} tcp dport {}", s.port);
            // The ready endpoints of the service's family; a pod without such an
            // address has no endpoint in it.
            let endpoints: Vec<(&Pod, IpAddr)> = s
                .ready_endpoints()
                .filter_map(|e| pods.iter().find(|p| &p.name == e))
                .filter(|p| s.policy == Policy::Cluster || p.node == node)
                .filter_map(|p| {
                    p.addresses()
                        .into_iter()
                        .find(|a| a.is_ipv4() == ip.is_ipv4())
                        .map(|a| (p, a))
                })
                .collect();
            if endpoints.is_empty() {
                let any = s.ready_endpoints().any(|e| pods.iter().any(|p| &p.name == e));
                if s.policy == Policy::Local && any {
                    let _ = writeln!(
                        forward,
                        "    {m} drop comment \"{}: policy Local, no endpoint on {node}\"",
                        s.name
                    );
                } else {
                    let _ = writeln!(
                        forward,
                        "    {m} reject with tcp reset comment \"{}: no endpoints\"",
                        s.name
                    );
                }
                continue;
            }
            let _ = writeln!(pre, "    {m} jump {chain} comment \"{}\"", s.name);
            let arms: Vec<String> = (0..endpoints.len())
                .map(|j| format!("{j} : jump {chain}_e{j}"))
                .collect();
            let _ = writeln!(
                chains,
                "  chain {chain} {{\n    numgen random mod {} vmap {{ {} }}\n  }}",
                endpoints.len(),
                arms.join(", ")
            );
            for (j, (pod, addr)) in endpoints.iter().enumerate() {
                let mark = if pod.node != node {
                    format!("meta mark set meta mark or {MASQ_MARK:#x} ")
                } else {
                    String::new()
                };
                let _ = writeln!(
                    chains,
                    "  chain {chain}_e{j} {{\n    {mark}dnat {fam} to {addr} comment \"{}\"\n  }}",
                    pod.name
                );
            }
        }
    }
    let mut post = String::new();
    for (fam, proto, v4) in [("ip", "ipv4", true), ("ip6", "ipv6", false)] {
        let to = match snat.iter().find(|a| a.is_ipv4() == v4) {
            Some(a) => format!("snat {fam} to {a}"),
            None => "masquerade".to_string(),
        };
        let _ = writeln!(
            post,
            "    meta mark and {MASQ_MARK:#x} == {MASQ_MARK:#x} meta nfproto {proto} {to}"
        );
    }
    format!(
        "table inet {TABLE} {{}}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{pre}  }}\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{post}  }}\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n{forward}  }}\n{chains}}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::Type;

    fn pod(node: &str, name: &str, ip: &str) -> Pod {
        Pod {
            node: node.into(),
            name: name.into(),
            ip: ip.parse().unwrap(),
            ip6: None,
            iface: crate::pods::iface_name(name),
        }
    }

    fn svc(name: &str, ip: &str, policy: Policy, endpoints: &[&str]) -> Service {
        Service {
            name: name.into(),
            ips: vec![ip.parse().unwrap()],
            port: 80,
            service_type: Type::LoadBalancer,
            policy,
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            not_ready: Vec::new(),
        }
    }

    #[test]
    fn cluster_spreads_over_every_endpoint_and_masquerades_the_remote_ones() {
        let pods = [pod("n1", "a", "10.244.0.1"), pod("n3", "b", "10.244.0.129")];
        let r = ruleset(
            "n1",
            &[svc("web", "198.51.100.10", Policy::Cluster, &["a", "b"])],
            &pods,
            &["10.244.0.62".parse().unwrap()],
        );
        assert!(r.contains("ip daddr 198.51.100.10 tcp dport 80 jump svc0_4"), "{r}");
        assert!(
            r.contains("numgen random mod 2 vmap { 0 : jump svc0_4_e0, 1 : jump svc0_4_e1 }"),
            "{r}"
        );
        assert!(r.contains("chain svc0_4_e0 {\n    dnat ip to 10.244.0.1"), "{r}");
        assert!(
            r.contains("chain svc0_4_e1 {\n    meta mark set meta mark or 0x4000 dnat ip to 10.244.0.129"),
            "{r}"
        );
        assert!(r.contains("meta nfproto ipv4 snat ip to 10.244.0.62"), "{r}");
        assert!(r.contains("meta nfproto ipv6 masquerade"), "{r}");
    }

    #[test]
    fn local_takes_this_nodes_endpoints_only_and_drops_without_one() {
        let pods = [pod("n1", "a", "10.244.0.1"), pod("n3", "b", "10.244.0.129")];
        let s = [svc("shop", "198.51.100.20", Policy::Local, &["b"])];
        let on_n3 = ruleset("n3", &s, &pods, &[]);
        assert!(
            on_n3.contains("chain svc0_4_e0 {\n    dnat ip to 10.244.0.129"),
            "{on_n3}"
        );
        let on_n1 = ruleset("n1", &s, &pods, &[]);
        assert!(on_n1.contains("ip daddr 198.51.100.20 tcp dport 80 drop"), "{on_n1}");
        assert!(!on_n1.contains("jump svc0_4"), "{on_n1}");
        // No endpoint anywhere: refused, as kube-proxy does.
        let none = ruleset("n1", &[svc("gone", "198.51.100.30", Policy::Local, &["x"])], &pods, &[]);
        assert!(none.contains("reject with tcp reset"), "{none}");
        // Not ready is no endpoint: n3 drops, and with none ready anywhere n1 refuses.
        let mut sick = svc("shop", "198.51.100.20", Policy::Local, &["b"]);
        sick.not_ready = vec!["b".into()];
        let on_n3 = ruleset("n3", std::slice::from_ref(&sick), &pods, &[]);
        assert!(!on_n3.contains("dnat"), "{on_n3}");
        assert!(on_n3.contains("reject with tcp reset"), "{on_n3}");
    }
}
