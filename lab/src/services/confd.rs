//! What a node's BIRD or FRR is given for services, as Calico's confd gives BIRD
//! (its `bird_aggr.cfg` and `bird_ipam.cfg` templates): each configured service CIDR
//! as a blackhole static route, exported to BGP peers and never programmed into the
//! node's kernel (confd's `/rejectcidrs`), rendered once with the node's configuration
//! (`render/configs.rs`); and here, whenever the services change, a Local service's
//! /32 or /128 as a static route of the nodes that host one of its endpoints. For BIRD
//! a file its configuration includes, then `birdc configure` (what confd does); for
//! FRR, which Calico does not drive, the equivalent: `network` statements (FRR checks
//! no route for them: `no bgp network import-check`) through a route-map that passes
//! only what lies in a configured CIDR, as BIRD's export filter does.

use std::collections::BTreeSet;

use ipnet::IpNet;

use super::{Policy, Service};
use crate::pods::Pod;

/// The folder BIRD's rendered configuration includes (`*.conf`), and the file in it.
pub const BIRD_DIR: &str = "/run/podlab/bird";
const BIRD_FILE: &str = "/run/podlab/bird/services.conf";
/// The route-map of FRR's service `network` statements (rendered with the CIDRs).
pub const FRR_ROUTE_MAP: &str = "SERVICE_LOCAL";
/// The prefixes last given to FRR, to take back those that are no longer local.
const FRR_LAST: &str = "/run/podlab/frr-services";

/// The /32s and /128s of Local services that `node` hosts a ready endpoint of (a pod
/// that exists), as Calico advertises them. Whether each lies in a configured CIDR is the
/// daemon's filter's business, as in Calico.
pub fn local_prefixes(node: &str, services: &[Service], pods: &[Pod]) -> BTreeSet<IpNet> {
    services
        .iter()
        .filter(|s| s.policy == Policy::Local)
        .filter(|s| {
            s.ready_endpoints()
                .any(|e| pods.iter().any(|p| &p.name == e && p.node == node))
        })
        .flat_map(|s| s.ips.iter().map(|ip| IpNet::from(*ip)))
        .collect()
}

/// The script that gives BIRD its Local routes: the included file replaced by a rename,
/// then a reconfiguration (BIRD changes the static protocols and keeps its sessions).
pub fn bird_script(prefixes: &BTreeSet<IpNet>) -> String {
    let mut file = String::from(
        "# Written by `lab service` as Calico's confd writes its static routes: the\n# /32s and /128s of Local services with an endpoint on this node.\n",
    );
    file.push_str(&bird_blackholes("svc_local", prefixes.iter().copied()));
    format!(
        r#"set -e
mkdir -p {BIRD_DIR}
cat >{BIRD_FILE}.tmp <<'EOF'
{file}EOF
mv {BIRD_FILE}.tmp {BIRD_FILE}
out=$(birdc -s /run/bird/bird.ctl configure 2>&1)
case "$out" in *Reconfigured*|*"Reconfiguration in progress"*) ;; *) echo "$out"; exit 1 ;; esac"#
    )
}

/// BIRD static protocols `<name>4` and `<name>6` (those with routes) holding `nets` as
/// blackholes: how Calico's confd writes a node's static routes.
pub fn bird_blackholes(name: &str, nets: impl Iterator<Item = IpNet>) -> String {
    let nets: Vec<IpNet> = nets.collect();
    let mut s = String::new();
    for (v4, k, channel) in [(true, "4", "ipv4"), (false, "6", "ipv6")] {
        let routes: Vec<String> = nets
            .iter()
            .filter(|p| matches!(p, IpNet::V4(_)) == v4)
            .map(|p| format!("  route {p} blackhole;"))
            .collect();
        if !routes.is_empty() {
            s.push_str(&format!(
                "protocol static {name}{k} {{\n  {channel};\n{}\n}}\n",
                routes.join("\n")
            ));
        }
    }
    s
}

/// The script that gives FRR its Local routes: the difference from what it was given
/// last, as `network` statements under its one BGP instance.
pub fn frr_script(prefixes: &BTreeSet<IpNet>) -> String {
    let want: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
    format!(
        r#"set -e
want="{want}"
have=$(cat {FRR_LAST} 2>/dev/null || true)
args=(-c "configure terminal" -c "router bgp")
for p in $have; do
  case " $want " in *" $p "*) continue ;; esac
  af=ipv4; case "$p" in *:*) af=ipv6 ;; esac
  args+=(-c "address-family $af unicast" -c "no network $p route-map {FRR_ROUTE_MAP}" -c "exit-address-family")
done
for p in $want; do
  case " $have " in *" $p "*) continue ;; esac
  af=ipv4; case "$p" in *:*) af=ipv6 ;; esac
  args+=(-c "address-family $af unicast" -c "network $p route-map {FRR_ROUTE_MAP}" -c "exit-address-family")
done
if [ ${{#args[@]}} -gt 4 ]; then
  out=$(vtysh "${{args[@]}}" 2>&1)
  [ -z "$out" ] || {{ echo "$out"; exit 1; }}
fi
mkdir -p "$(dirname {FRR_LAST})"
echo "$want" >{FRR_LAST}.tmp && mv {FRR_LAST}.tmp {FRR_LAST}"#,
        want = want.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(node: &str, name: &str) -> Pod {
        Pod {
            node: node.into(),
            name: name.into(),
            ip: "10.244.0.2".parse().unwrap(),
            ip6: None,
            iface: "cali0".into(),
        }
    }

    #[test]
    fn a_local_service_is_routed_only_by_the_nodes_of_its_existing_endpoints() {
        let svc = |spec: &str| Service::parse_spec("s", spec).unwrap();
        let services = [
            svc("ip=198.51.100.20,fd00:198::20 port=80 policy=Local endpoints=a,gone"),
            Service {
                name: "c".into(),
                ..svc("ip=198.51.100.10 port=80 endpoints=a")
            },
        ];
        let pods = [pod("n1", "a"), pod("n2", "b")];
        let n1: Vec<String> = local_prefixes("n1", &services, &pods)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            n1,
            ["198.51.100.20/32", "fd00:198::20/128"],
            "Local only, both families"
        );
        assert!(local_prefixes("n2", &services, &pods).is_empty(), "no endpoint on n2");
        // An endpoint that is not ready is no reason to route the service.
        let not_ready = [svc("ip=198.51.100.20 port=80 policy=Local endpoints=a,b not_ready=a")];
        assert!(local_prefixes("n1", &not_ready, &pods).is_empty(), "a is not ready");
        assert_eq!(local_prefixes("n2", &not_ready, &pods).len(), 1, "b is");
    }

    #[test]
    fn birds_file_holds_a_static_protocol_per_family_and_none_when_empty() {
        let p: BTreeSet<IpNet> = ["198.51.100.20/32".parse().unwrap()].into();
        let s = bird_script(&p);
        assert!(
            s.contains("protocol static svc_local4 {\n  ipv4;\n  route 198.51.100.20/32 blackhole;\n}"),
            "{s}"
        );
        assert!(!s.contains("svc_local6"));
        assert!(!bird_script(&BTreeSet::new()).contains("protocol static"));
    }
}
