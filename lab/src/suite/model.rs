//! WD-04, nothing lingers: every container whose daemon programs its kernel (nodes,
//! ToRs, spines, reflectors that install) holds exactly what the oracle says, read
//! from all its routing tables in both families. Inside the pools: each prefix once,
//! of the right type, with exactly the expected next hops (gateway and interface,
//! ECMP sets as sets), nothing more. Outside the pools: the routes the container had
//! when the cell came up, unchanged. Running daemons must also have settled (no
//! route of a previous run kept), and their RIBs are read from their own interface
//! when the lab knows how (`rib.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::lab::{dst, fibs, in_pools, outside_pools, AddressBook, Baseline, Lab};
use super::oracle::{self, Hop, PodAt, Want};
use crate::pods;
use crate::probes::Route;
use crate::runtime::Runtime;

/// The oracle's view of the lab as the cases left it.
pub async fn expected(rt: &Runtime, lab: &Lab) -> Result<oracle::Expected, String> {
    let pods = pods::list(rt, &lab.topo).await.map_err(|e| e.to_string())?;
    let state = oracle::State {
        down: lab.down.clone(),
        blocks: lab.blocks.clone(),
        pods: pods
            .into_iter()
            .map(|p| PodAt {
                addrs: p.addresses(),
                node: p.node,
                iface: p.iface,
            })
            .collect(),
    };
    Ok(oracle::expected(&lab.plan, &state))
}

/// What a route of the FIB is, in the oracle's terms.
fn actual(r: &Route, book: &AddressBook) -> Want {
    if r.route_type == "blackhole" {
        return Want::Blackhole;
    }
    if r.gateways.is_empty() {
        return Want::Pod(r.dev.clone().unwrap_or_default());
    }
    Want::Via(
        r.hops
            .iter()
            .map(|h| {
                let gw = h.gateway.clone().unwrap_or_default();
                Hop {
                    router: book.who(&gw).map(String::from).unwrap_or(gw),
                    dev: h.dev.clone().unwrap_or_default(),
                }
            })
            .collect(),
    )
}

/// Compares one container's FIB with what it should hold: what is wrong, as lines.
fn compare(
    node: &str,
    routes: &[Route],
    want: &BTreeMap<IpNet, Want>,
    baseline: &Baseline,
    pools: &[IpNet],
    own_protocol: Option<&str>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut seen: BTreeMap<IpNet, Vec<&Route>> = BTreeMap::new();
    for r in routes.iter().filter(|r| in_pools(r, pools)) {
        if let Some(d) = dst(r) {
            seen.entry(d).or_default().push(r);
        }
    }
    for (prefix, rs) in &seen {
        let Some(w) = want.get(prefix) else {
            let found: Vec<String> = rs.iter().map(|r| r.line()).collect();
            wrong.push(format!(
                "{node}: {prefix}: expected nothing, found {}",
                found.join(" | ")
            ));
            continue;
        };
        if rs.len() > 1 {
            let found: Vec<String> = rs.iter().map(|r| r.line()).collect();
            wrong.push(format!(
                "{node}: {prefix}: expected one route ({w}), found {}: {}",
                rs.len(),
                found.join(" | ")
            ));
            continue;
        }
        let r = rs[0];
        let is = actual(r, &baseline.book);
        // Blocks and pods are the node's own (Calico's IPAM, the CNI), never its
        // daemon's; learned routes are its daemon's.
        let owner_ok = match (w, own_protocol) {
            (Want::Via(_), Some(p)) => r.protocol == p,
            (Want::Via(_), None) => true,
            (_, p) => Some(r.protocol.as_str()) != p,
        };
        if is != *w || r.table.is_some() || !owner_ok {
            wrong.push(format!("{node}: {prefix}: expected {w}, found {}", r.line()));
        }
    }
    for (prefix, w) in want {
        if !seen.contains_key(prefix) {
            wrong.push(format!("{node}: {prefix}: expected {w}, found nothing"));
        }
    }
    if let Some(before) = baseline.outside.get(node) {
        let now = outside_pools(routes, pools);
        for gone in before.difference(&now) {
            wrong.push(format!(
                "{node}: outside the pools, gone since the cell came up: {gone}"
            ));
        }
        for new in now.difference(before) {
            wrong.push(format!("{node}: outside the pools, new since the cell came up: {new}"));
        }
    }
    wrong
}

/// The protocol a BGP implementation installs its routes with, as `ip -j` names it.
fn protocol_of(bgp: Option<&str>) -> Option<&'static str> {
    match bgp? {
        "speaker" => Some("201"),
        "bird" => Some("bird"),
        "frr" => Some("bgp"),
        _ => None,
    }
}

/// Compares one daemon's RIB with what it should hold: the peers it takes a path
/// from for each prefix, no path stale, and its best path's next hops and AS_PATH
/// length. `all`: every prefix it holds counts (our speaker); otherwise those in
/// the pools (the fabric's routers hold more of their own).
fn compare_rib(
    node: &str,
    rib: &[crate::bgp::RibRoute],
    want: &oracle::Expected,
    book: &AddressBook,
    pools: &[IpNet],
    all: bool,
) -> Vec<String> {
    let none = BTreeMap::new();
    let accepted = want.accepted.get(node).unwrap_or(&none);
    let no_best = BTreeMap::new();
    let best = want.ribs.get(node).unwrap_or(&no_best);
    let name = |a: &str| book.who(a).map(String::from).unwrap_or_else(|| a.to_string());
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for r in rib {
        let Ok(prefix) = r.prefix.parse::<IpNet>() else {
            continue;
        };
        if !all && !pools.iter().any(|p| p.contains(&prefix)) {
            continue;
        }
        seen.insert(prefix);
        let from: BTreeSet<String> = r.paths.iter().filter(|p| p.accepted).map(|p| name(&p.from)).collect();
        let expected = accepted.get(&prefix).cloned().unwrap_or_default();
        if from != expected {
            wrong.push(format!(
                "{node}: RIB {prefix}: paths taken from {}, expected from {}",
                list(&from),
                list(&expected)
            ));
        }
        for p in r.paths.iter().filter(|p| p.stale) {
            wrong.push(format!(
                "{node}: RIB {prefix}: the path from {} is still stale",
                name(&p.from)
            ));
        }
        let Some(b) = best.get(&prefix) else { continue };
        let chosen: Vec<&crate::bgp::RibPath> = r.paths.iter().filter(|p| p.best).collect();
        let via: BTreeSet<String> = chosen
            .iter()
            .map(|p| p.next_hop.as_deref().map(name).unwrap_or_else(|| "none".into()))
            .collect();
        let want_via: BTreeSet<String> = b.hops.iter().map(|h| h.router.clone()).collect();
        let len = chosen.first().map(|p| p.as_path_len);
        if via != want_via || len != Some(b.as_path_len) {
            wrong.push(format!(
                "{node}: RIB {prefix}: best via {} with an AS_PATH of {}, expected via {} with {}",
                list(&via),
                len.map_or("-".into(), |l| l.to_string()),
                list(&want_via),
                b.as_path_len
            ));
        }
    }
    for prefix in accepted.keys().filter(|p| !seen.contains(*p)) {
        wrong.push(format!(
            "{node}: RIB {prefix}: nothing, expected paths from {}",
            list(&accepted[prefix])
        ));
    }
    wrong
}

fn list(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "nobody".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The RIB of every running daemon the lab can read (our speaker's, FRR's, GoBGP's), against
/// the oracle.
async fn check_ribs(rt: &Runtime, lab: &Lab, want: &oracle::Expected) -> Vec<String> {
    let pools = &lab.plan.pools();
    let reads = lab
        .plan
        .nodes
        .iter()
        .filter(|n| !lab.down.contains(&n.name) && (n.intent.is_some() || n.router.is_some()))
        .filter_map(|n| {
            let kind = crate::bgp::for_label(n.bgp?)?;
            let cmd = kind.rib_command()?;
            Some(async move {
                let out = rt
                    .exec(&lab.topo.container_name(&n.name), &cmd)
                    .await
                    .map_err(|e| format!("{}: {e}", n.name))?;
                let rib = kind.parse_rib(&out.stdout).map_err(|e| format!("{}: {e}", n.name))?;
                let all = kind.name() == "speaker";
                Ok::<_, String>(compare_rib(&n.name, &rib, want, &lab.baseline.book, pools, all))
            })
        });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap_or_else(|e| vec![e]))
        .collect()
}

/// Checks every running kernel-programming container's FIB, and every readable
/// daemon's RIB, against the oracle once.
pub async fn check(rt: &Runtime, lab: &Lab) -> Result<(), String> {
    let want = expected(rt, lab).await?;
    let nodes: Vec<&String> = want.fibs.keys().collect();
    let pools = lab.plan.pools();
    let mut wrong = Vec::new();
    for (node, routes) in nodes.iter().zip(fibs(rt, lab, &nodes).await) {
        let routes = routes?;
        let bgp = lab.plan.nodes.iter().find(|n| n.name == **node).and_then(|n| n.bgp);
        wrong.extend(compare(
            node,
            &routes,
            &want.fibs[*node],
            &lab.baseline,
            &pools,
            protocol_of(bgp),
        ));
    }
    // The FIB first: when it is wrong, the RIB's say would only repeat it.
    if wrong.is_empty() {
        wrong = check_ribs(rt, lab, &want).await;
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
    let reads = lab
        .plan
        .nodes
        .iter()
        .filter(|n| !lab.down.contains(&n.name))
        .filter_map(|n| {
            let kind = crate::bgp::for_label(n.bgp?)?;
            Some(async move {
                let out = rt
                    .exec(&lab.topo.container_name(&n.name), &kind.sessions_command())
                    .await
                    .map_err(|e| format!("{}: {e}", n.name))?;
                kind.settled(&out.stdout).map_err(|e| format!("{}: {e}", n.name))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn route(json: &str) -> Vec<Route> {
        crate::probes::parse_ip_routes(json).unwrap()
    }

    #[test]
    fn a_route_is_compared_by_type_next_hops_owner_and_count() {
        let book = AddressBook(vec![
            ("tor1".into(), "eth1".into(), "10.1.1.0".parse().unwrap()),
            ("n2".into(), "eth1".into(), "10.1.1.3".parse().unwrap()),
            ("tor1".into(), "eth1".into(), "fe80::1".parse().unwrap()),
        ]);
        let baseline = Baseline {
            book,
            outside: BTreeMap::from([(
                "n1".to_string(),
                BTreeSet::from(["default via 172.21.3.1 dev eth0".to_string()]),
            )]),
        };
        let pools: Vec<IpNet> = vec!["10.244.0.0/16".parse().unwrap(), "fd00:244::/48".parse().unwrap()];
        let hop = Hop {
            router: "tor1".into(),
            dev: "eth1".into(),
        };
        let want = BTreeMap::from([
            ("10.244.2.0/26".parse().unwrap(), Want::Via([hop.clone()].into())),
            ("fd00:244:0:2::/122".parse().unwrap(), Want::Via([hop].into())),
            ("10.244.1.0/26".parse().unwrap(), Want::Blackhole),
        ]);
        let good = route(
            r#"[{"dst":"default","gateway":"172.21.3.1","dev":"eth0","flags":[]},
            {"type":"blackhole","dst":"10.244.1.0/26","flags":[]},
            {"dst":"10.244.2.0/26","gateway":"10.1.1.0","dev":"eth1","protocol":"201","flags":[]},
            {"dst":"fd00:244:0:2::/122","gateway":"fe80::1","dev":"eth1","protocol":"201","metric":1024,"flags":[]}]"#,
        );
        assert_eq!(
            compare("n1", &good, &want, &baseline, &pools, Some("201")),
            Vec::<String>::new()
        );
        // A working but wrong next hop; a stale duplicate; a stray route; a blackhole
        // replaced by the daemon; a missing route; a route outside the pools gone.
        let bad = route(
            r#"[{"type":"blackhole","dst":"10.244.1.0/26","protocol":"201","flags":[]},
            {"dst":"10.244.2.0/26","gateway":"10.1.1.3","dev":"eth1","protocol":"201","flags":[]},
            {"dst":"10.244.9.9","gateway":"10.1.1.0","dev":"eth1","protocol":"201","flags":[]},
            {"dst":"10.244.9.9","gateway":"10.1.1.0","dev":"eth1","protocol":"201","metric":5,"flags":[]}]"#,
        );
        let wrong = compare("n1", &bad, &want, &baseline, &pools, Some("201")).join("\n");
        for w in [
            "n1: 10.244.1.0/26: expected blackhole, found blackhole 10.244.1.0/26 proto 201",
            "n1: 10.244.2.0/26: expected via tor1 dev eth1, found 10.244.2.0/26 via 10.1.1.3 dev eth1 proto 201",
            "n1: 10.244.9.9/32: expected nothing, found",
            "n1: fd00:244:0:2::/122: expected via tor1 dev eth1, found nothing",
            "n1: outside the pools, gone since the cell came up: default via 172.21.3.1 dev eth0",
        ] {
            assert!(wrong.contains(w), "{w}\nnot in\n{wrong}");
        }
        // IPv4-mapped next hops name the IPv4 router.
        assert_eq!(baseline.book.who("::ffff:10.1.1.0"), Some("tor1"));
    }
}
