//! The actions of a case on the deployed cell: pods, routes, links, pauses, the
//! node's BGP daemon, its sessions cut, fabric routers' announcements, a node's
//! configuration changed and read again, pod churn.

use std::net::IpAddr;

use ipnet::IpNet;

use super::lab::{check_node, daemon_of, exec_ok, implementation_of, label_blocks, resolve_node, sh, Lab};
use super::placeholders::subst;
use super::step::{Action, DaemonOp, PodAdd};
use crate::pods::{self, Pod};
use crate::runtime::Runtime;
use crate::services;

/// The address a `pod_add` gives its pod.
pub fn pod_ip(lab: &mut Lab, p: &PodAdd) -> Result<IpAddr, String> {
    if let Some(ip) = lab.pod_ips.get(&p.name) {
        return Ok(*ip);
    }
    match p.ip.as_deref() {
        None => free_in_block(lab, &p.node),
        // Borrowed from another node's block, as Calico's IPAM lends an address of a
        // block to a node that is not its owner.
        Some(from) if from.starts_with("borrowed:") => {
            let owner = resolve_node(lab, &from["borrowed:".len()..]);
            check_node(lab, &owner)?;
            free_in_block(lab, &owner)
        }
        Some("borrowed") => {
            // Outside every node's block, inside the pool (fd00:244:0:250::/64 on an
            // IPv6-only cell).
            lab.borrowed += 1;
            Ok(match lab.cell.v4() {
                true => IpAddr::from([10, 244, 250, lab.borrowed as u8]),
                false => IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0x244, 0, 0x250, 0, 0, 0, lab.borrowed)),
            })
        }
        Some(ip) => subst(lab, ip)?
            .parse()
            .map_err(|_| format!("pod_add: {ip:?} is not an address")),
    }
}

/// The IPv6 address of a pod on a dual-stack node: in the node's IPv6 block beside
/// its IPv4 one (the same host number), or in the pool for a borrowed one.
pub fn pod_ip6(lab: &Lab, p: &PodAdd, ip: IpAddr) -> Result<Option<IpAddr>, String> {
    if let Some(ip6) = lab.pod_ips6.get(&p.name) {
        return Ok(Some(*ip6));
    }
    let IpAddr::V4(v4) = ip else { return Ok(None) };
    if !lab.cell.dual() {
        return Ok(None);
    }
    // The node whose IPv4 block holds it (its own, or another's it is borrowed
    // from): the same host number in that node's IPv6 block.
    for n in lab.plan.k8s_nodes() {
        let b4 = n.blocks.iter().find_map(|b| match b {
            IpNet::V4(b) => Some(*b),
            IpNet::V6(_) => None,
        });
        let b6 = n.blocks.iter().find_map(|b| match b {
            IpNet::V6(b) => Some(*b),
            IpNet::V4(_) => None,
        });
        if let (Some(b4), Some(b6)) = (b4, b6) {
            if b4.contains(&v4) {
                let host = u128::from(u32::from(v4) & !u32::from(b4.netmask()));
                return Ok(Some(IpAddr::V6((u128::from(b6.network()) + host).into())));
            }
        }
    }
    // Borrowed from no block: inside the pool (fd00:244:0:250::/64).
    let addr = (0xfd00_0244_0000_0250u128 << 64) + u128::from(u32::from(v4) & 0xff);
    Ok(Some(IpAddr::V6(std::net::Ipv6Addr::from(addr))))
}

/// The next free address of a node's IPv4 block, for a pod.
fn free_in_block(lab: &Lab, node: &str) -> Result<IpAddr, String> {
    // The IPv4 block, or on an IPv6-only cell the IPv6 one.
    let block = label_blocks(lab, node)
        .into_iter()
        .find(|b| matches!(b, IpNet::V4(_)) == lab.cell.v4())
        .ok_or_else(|| format!("node {node} has no block to take an address from"))?;
    // The declared pods take the first addresses; cases take from the top down.
    let used: Vec<IpAddr> = lab.pod_ips.values().copied().collect();
    block
        .hosts()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|ip| !used.contains(ip))
        .ok_or_else(|| format!("no free address in {block}"))
}

/// Carries out one action (not a wait or traffic: the step runner does those).
pub async fn act(rt: &Runtime, lab: &mut Lab, action: &Action) -> Result<(), String> {
    match action {
        Action::PodAdd(p) => {
            let ip = pod_ip(lab, p)?;
            let pod = Pod {
                node: p.node.clone(),
                name: p.name.clone(),
                ip,
                ip6: lab.pod_ips6.get(&p.name).copied(),
                iface: pods::iface_name(&p.name),
            };
            pods::add(rt, &lab.topo, &pod).await.map_err(|e| e.to_string())?;
            lab.pods.insert(p.name.clone(), pod);
            follow_pods(rt, lab).await
        }
        Action::PodDel(p) => {
            // As Kubernetes does it: the pod leaves its EndpointSlices as it begins
            // to terminate, and its network goes after.
            let pod = lab.pods.remove(&p.name);
            let followed = follow_pods(rt, lab).await;
            if let Some(pod) = pod {
                lab.pods.insert(p.name.clone(), pod);
            }
            delete_pod(rt, lab, p).await?;
            followed
        }
        Action::Route(r) => {
            let verb = r.verb;
            let specs: Vec<String> = r.routes.iter().map(|s| subst(lab, s)).collect::<Result<_, _>>()?;
            // One command for all of them, so they change at once; deleting what is gone
            // leaves it gone (for `always` steps).
            let script: Vec<String> = specs
            .iter()
            .map(|spec| {
                let six = if spec.contains(':') { " -6" } else { "" };
                let cmd = format!("ip{six} route {verb} {spec}");
                match verb {
                    "del" => format!(
                        "out=$({cmd} 2>&1) || {{ echo \"$out\" | grep -q 'No such process' || {{ echo \"{cmd}: $out\" >&2; exit 1; }}; }}"
                    ),
                    _ => format!("{cmd} || exit 1"),
                }
            })
            .collect();
            exec_ok(rt, lab, &r.node, &sh(&script.join("\n"))).await?;
            // A blackhole in the pools is a block, as Calico's IPAM makes one.
            for spec in &specs {
                let words: Vec<&str> = spec.split_whitespace().collect();
                if let ["blackhole", net, ..] = words[..] {
                    if let Ok(net) = net.parse::<IpNet>() {
                        let b = lab.blocks.entry(r.node.clone()).or_default();
                        b.retain(|x| *x != net);
                        if verb != "del" {
                            b.push(net);
                        }
                    }
                }
            }
            Ok(())
        }
        Action::Link(l) => {
            let state = if l.up { "up" } else { "down" };
            let cmd: Vec<String> = ["ip", "link", "set", &l.iface, state].map(String::from).to_vec();
            exec_ok(rt, lab, &l.node, &cmd).await?;
            if l.up {
                static_routes_back(rt, lab, &l.node).await?;
            }
            Ok(())
        }
        Action::Impair(i) => {
            let container = lab.topo.container_name(&i.node);
            let done = if i.clear {
                crate::impair::clear(rt, &container, &i.node, Some(&i.iface)).await
            } else {
                crate::impair::apply(rt, &container, &i.node, &i.iface, &i.impairment()).await
            };
            done.map_err(|e| e.to_string())
        }
        Action::Pause(n) => {
            rt.pause(&lab.topo.container_name(n)).await.map_err(|e| e.to_string())?;
            lab.down.insert(n.clone());
            Ok(())
        }
        Action::Unpause(n) => {
            match rt.unpause(&lab.topo.container_name(n)).await {
                Ok(()) => {}
                // Unpausing what runs leaves it running (for `always` steps).
                Err(e) if e.to_string().contains("is not paused") => {}
                Err(e) => return Err(e.to_string()),
            }
            lab.down.remove(n);
            Ok(())
        }
        Action::Daemon(d) => {
            let daemon = daemon_of(lab, &d.node)?;
            let stop = daemon.stop_and_wait();
            let cmd = match (d.op, daemon.drain) {
                (DaemonOp::Stop, _) => &stop,
                (DaemonOp::Kill, _) => daemon.kill,
                (DaemonOp::Start, _) => daemon.start,
                (DaemonOp::Drain, Some((drain, _))) => drain,
                (DaemonOp::Undrain, Some((_, undrain))) => undrain,
                (DaemonOp::Drain | DaemonOp::Undrain, None) => {
                    return Err(format!("{}: this daemon has no drain command", d.node))
                }
            };
            exec_ok(rt, lab, &d.node, &sh(cmd)).await?;
            match d.op {
                DaemonOp::Start => {
                    lab.down.remove(&d.node);
                }
                DaemonOp::Stop | DaemonOp::Kill => {
                    lab.down.insert(d.node.clone());
                }
                DaemonOp::Drain | DaemonOp::Undrain => {}
            }
            Ok(())
        }
        Action::CutSessions(node) => {
            // Each BGP connection of the node as it is now: dropped both ways.
            let script = r#"nft add table inet lab-cut
nft add chain inet lab-cut out '{ type filter hook output priority -10 ; }'
nft add chain inet lab-cut in '{ type filter hook input priority -10 ; }'
ss -tnH state established '( sport = :179 or dport = :179 )' | while read -r _ _ local peer _; do
  lp="${local##*:}"; pp="${peer##*:}"
  nft add rule inet lab-cut out tcp sport "$lp" tcp dport "$pp" drop
  nft add rule inet lab-cut in tcp sport "$pp" tcp dport "$lp" drop
done"#;
            exec_ok(rt, lab, node, &sh(script)).await?;
            Ok(())
        }
        Action::UncutSessions(node) => {
            exec_ok(rt, lab, node, &sh("nft delete table inet lab-cut 2>/dev/null; true")).await?;
            Ok(())
        }
        Action::Flap(f) => {
            let script = format!(
                "for i in $(seq {}); do ip link set {} down; sleep 0.1; ip link set {} up; sleep 0.1; done",
                f.times, f.iface, f.iface
            );
            exec_ok(rt, lab, &f.node, &sh(&script)).await?;
            static_routes_back(rt, lab, &f.node).await
        }
        Action::Exec(x) => {
            let cmd = subst(lab, &x.cmd)?;
            exec_ok(rt, lab, &x.node, &sh(&cmd)).await?;
            Ok(())
        }
        Action::Announce(x) | Action::Withdraw(x) => {
            let on = matches!(action, Action::Announce(_));
            let kind = implementation_of(lab, &x.node)?;
            let prefix = subst(lab, &x.prefix)?;
            let (add, del) = kind
                .announce(&prefix)
                .ok_or_else(|| format!("{}: the lab cannot make {} announce a route", x.node, kind.name()))?;
            exec_ok(rt, lab, &x.node, &sh(if on { &add } else { &del })).await?;
            Ok(())
        }
        Action::Reconfigure { node, tweaks } => reconfigure(rt, lab, node, tweaks).await,
        Action::Restore(node) => reconfigure(rt, lab, node, &[]).await,
        Action::ServiceAdd(a) => {
            if lab.services.iter().any(|s| s.name == a.name) {
                return Err(format!("service_add: the case has a service {} already", a.name));
            }
            let kind: services::Type = a.service_type.parse()?;
            let ips = service_ips(lab, kind, a.ip);
            let s = services::Service {
                name: a.name.clone(),
                ips,
                port: a.port,
                service_type: kind,
                policy: a.policy.parse()?,
                endpoints: a.endpoints.clone(),
                not_ready: a.not_ready.clone(),
            };
            s.check()?;
            lab.services.push(s);
            services::apply(rt, &lab.topo, &lab.services)
                .await
                .map_err(|e| e.to_string())
        }
        Action::ServiceReady(a) => {
            let s = lab
                .services
                .iter_mut()
                .find(|s| s.name == a.name)
                .ok_or_else(|| format!("service_ready: no service {} made by this case", a.name))?;
            s.set_ready(&a.pods, a.ready)?;
            services::apply(rt, &lab.topo, &lab.services)
                .await
                .map_err(|e| e.to_string())
        }
        Action::ServiceDel(name) => {
            // Deleting one that is gone leaves it gone (for `always` steps).
            lab.services.retain(|s| &s.name != name);
            services::apply(rt, &lab.topo, &lab.services)
                .await
                .map_err(|e| e.to_string())
        }
        Action::Churn(c) => {
            // Borrowed pods made and unmade as fast as the node takes them: the host
            // side of a pod's veth and its /32 is what a node speaker sees of it. One
            // `ip -batch` does every cycle (a process per command took 75 ms a cycle,
            // slower than any node speaker); on a dual-stack cell each pod has an
            // IPv6 address too. The first command that fails stops it, and the step.
            let (add6, del6) = match lab.cell.v6() {
                true => (
                    "\n  echo \"route add fd00:244:0:251::$(( i % 250 + 1 ))/128 dev calichurn\"",
                    "\n  echo \"route del fd00:244:0:251::$(( i % 250 + 1 ))/128 dev calichurn\"",
                ),
                false => ("", ""),
            };
            let (add4, del4) = match lab.cell.v4() {
                true => (
                    "\n  echo \"route add 10.244.251.$(( i % 250 + 1 ))/32 dev calichurn\"",
                    "\n  echo \"route del 10.244.251.$(( i % 250 + 1 ))/32 dev calichurn\"",
                ),
                false => ("", ""),
            };
            let script = format!(
                r#"for i in $(seq {}); do
  echo "link add calichurn type veth peer name calichurnp"
  echo "link set calichurn up"{add4}{add6}{del4}{del6}
  echo "link del calichurn"
done | ip -batch -"#,
                c.cycles
            );
            exec_ok(rt, lab, &c.node, &sh(&script)).await?;
            Ok(())
        }
        Action::Wait(_) | Action::Traffic(_) => Err("not an action of the lab's: the step runner does it".into()),
    }
}

/// A link that came back up gets the node's static routes through it back (the kernel
/// drops them with the link), as a node's network manager puts them back: the route
/// to the outside client's network through the ToR.
async fn static_routes_back(rt: &Runtime, lab: &Lab, node: &str) -> Result<(), String> {
    let Some(n) = lab.plan.nodes.iter().find(|n| n.name == node) else {
        return Ok(());
    };
    let routes = n.static_routes();
    if routes.is_empty() {
        return Ok(());
    }
    let script: Vec<String> = routes.iter().map(|r| format!("{r} || exit 1")).collect();
    exec_ok(rt, lab, node, &sh(&script.join("\n"))).await?;
    Ok(())
}

/// A pod deleted, without its services told.
pub async fn delete_pod(rt: &Runtime, lab: &mut Lab, p: &super::step::PodDel) -> Result<(), String> {
    if let Err(e) = pods::delete(rt, &lab.topo, &p.node, &p.name, p.teardown).await {
        // Deleting a pod that is gone already leaves it gone (for `always` steps).
        let list = pods::list(rt, &lab.topo).await.map_err(|e| e.to_string())?;
        if list.iter().any(|x| x.name == p.name && x.node == p.node) {
            return Err(e.to_string());
        }
    }
    lab.pods.remove(&p.name);
    Ok(())
}

/// The services follow the pods, as EndpointSlices do.
pub async fn follow_pods(rt: &Runtime, lab: &Lab) -> Result<(), String> {
    if lab.services.is_empty() {
        return Ok(());
    }
    let pods: Vec<Pod> = lab.pods.values().cloned().collect();
    services::apply_with(rt, &lab.topo, &lab.services, &pods)
        .await
        .map_err(|e| e.to_string())
}

/// A service's addresses: host `host` of the cell's service CIDRs of its type, of each
/// family the cell has.
fn service_ips(lab: &Lab, kind: services::Type, host: u16) -> Vec<IpAddr> {
    let (v4, v6) = match kind {
        services::Type::ClusterIP => (crate::render::CLUSTER_CIDR4, crate::render::CLUSTER_CIDR6),
        services::Type::External => (crate::render::EXTERNAL_CIDR4, crate::render::EXTERNAL_CIDR6),
        services::Type::LoadBalancer => (crate::render::SERVICE_CIDR4, crate::render::SERVICE_CIDR6),
    };
    let mut ips = Vec::new();
    for (on, cidr) in [(lab.cell.v4(), v4), (lab.cell.v6(), v6)] {
        if on {
            let net: IpNet = cidr.parse().expect("a literal CIDR");
            let addr = match net {
                IpNet::V4(n) => IpAddr::V4((u32::from(n.network()) + u32::from(host)).into()),
                IpNet::V6(n) => IpAddr::V6((u128::from(n.network()) + u128::from(host)).into()),
            };
            ips.push(addr);
        }
    }
    ips
}

/// Renders a node's configuration again from its intent (changed by `tweak`), writes
/// it where the node reads it, and has its daemon read it again if it runs.
async fn reconfigure(rt: &Runtime, lab: &Lab, node: &str, tweaks: &[crate::render::Tweak]) -> Result<(), String> {
    let files = lab.plan.node_files(node, tweaks)?;
    for (file, content, _) in &files {
        let path = lab.dir.join(node).join(file);
        // Written in place: the node sees the file through a bind mount of this inode.
        std::fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    // A daemon that is not running reads the file when it is started: telling it to
    // read it now would fail, and reloading one in the middle of its start (BIRD
    // recovering with -R) can hold its routes back for minutes.
    let daemon = daemon_of(lab, node)?;
    let cmd = format!(
        "if kill -0 \"$(cat {} 2>/dev/null)\" 2>/dev/null; then {}; fi",
        daemon.pid_file, daemon.reload
    );
    exec_ok(rt, lab, node, &sh(&cmd)).await?;
    Ok(())
}
