//! Carrying out a case's steps on a deployed cell: pods, routes, links, pauses, the
//! node's BGP daemon, traffic, waits, and expectations retried until they hold. Also
//! what a case leaves as evidence when it fails: a pcap of TCP port 179 in every node
//! taken during the case, the daemons' logs, and the peers and FIBs as JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::case::{self, DaemonOp, Expect, FibExpect, PingExpect, SessionsExpect, Step};
use super::{Flow, Lab, Sample};
use crate::pods::{self, Pod};
use crate::probes;
use crate::runtime::Runtime;
use crate::watch;

/// What a case made along the way: its traffic, its timings, the memory of the
/// daemons it measures.
pub struct CaseRun {
    /// When the case started: `up_for` without a minimum asks for a session up since.
    started: std::time::Instant,
    /// Each node's daemon's resident memory (KiB) when the case first looked.
    rss_at_start: BTreeMap<String, u64>,
    /// Each ping running: (node, PID, family, its log).
    traffic: Vec<(String, u32, String, String)>,
    /// What the traffic counted when it was stopped.
    last_traffic: Vec<Flow>,
    /// Memory measured: (node, KiB at the start, KiB at the check).
    pub rss: Vec<(String, u64, u64)>,
    pub samples: Vec<Sample>,
}

impl Default for CaseRun {
    fn default() -> CaseRun {
        CaseRun {
            started: std::time::Instant::now(),
            rss_at_start: BTreeMap::new(),
            traffic: Vec::new(),
            last_traffic: Vec::new(),
            rss: Vec::new(),
            samples: Vec::new(),
        }
    }
}

fn sh(cmd: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), cmd.into()]
}

async fn exec_ok(rt: &Runtime, lab: &Lab, node: &str, cmd: &[String]) -> Result<String, String> {
    let container = lab.topo.container_name(node);
    let out = rt.exec(&container, cmd).await.map_err(|e| e.to_string())?;
    if out.ok() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{node}: `{}` exited with {}: {}",
            cmd.join(" "),
            out.code,
            format!("{}{}", out.stdout, out.stderr).trim()
        ))
    }
}

/// The Kubernetes nodes of the cell.
pub fn k8s_nodes(lab: &Lab) -> Vec<String> {
    lab.plan.k8s_nodes().map(|n| n.name.clone()).collect()
}

/// A node's blocks as the cell made them (what `{n1.block}` names).
fn label_blocks(lab: &Lab, node: &str) -> Vec<IpNet> {
    lab.plan
        .nodes
        .iter()
        .find(|n| n.name == node)
        .map(|n| n.blocks.clone())
        .unwrap_or_default()
}

/// Replaces `{n1.block}`, `{n1.block6}` and `{pod.NAME}` in `s`.
fn subst(lab: &Lab, s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').ok_or_else(|| format!("{s:?}: an unclosed {{"))? + i;
        let key = &rest[i + 1..end];
        let value = match key.split_once('.') {
            Some(("pod", name)) => lab
                .pod_ips
                .get(name)
                .map(|ip| ip.to_string())
                .ok_or_else(|| format!("{s:?}: no pod {name} made by this case"))?,
            // On an IPv6-only cell a pod's one address is its IPv6 one.
            Some(("pod6", name)) => lab
                .pod_ips6
                .get(name)
                .or_else(|| lab.pod_ips.get(name).filter(|ip| ip.is_ipv6()))
                .map(|ip| ip.to_string())
                .ok_or_else(|| format!("{s:?}: no IPv6 pod {name} made by this case (an IPv4 cell?)"))?,
            // `addr` and `block`: the IPv4 one, or the IPv6 one on an IPv6-only cell;
            // `addr6` and `block6`: the IPv6 one.
            Some((node, "addr")) | Some((node, "addr6")) => {
                let v6 = key.ends_with('6') || !lab.cell.v4();
                let node = resolve_node(lab, node);
                lab.addresses
                    .get(&node)
                    .and_then(|a| a.iter().find(|a| a.is_ipv6() == v6))
                    .map(|a| a.to_string())
                    .ok_or_else(|| format!("{s:?}: node {node} has no such address"))?
            }
            Some((node, "block")) | Some((node, "block6")) => {
                let v6 = key.ends_with('6') || !lab.cell.v4();
                label_blocks(lab, node)
                    .into_iter()
                    .find(|b| matches!(b, IpNet::V6(_)) == v6)
                    .map(|b| b.to_string())
                    .ok_or_else(|| format!("{s:?}: node {node} has no such block in this cell"))?
            }
            _ => return Err(format!("{s:?}: unknown placeholder {{{key}}}")),
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `s` with its placeholders replaced, and on a dual-stack cell its IPv6 twin too when
/// it names a block or a pod (`{n1.block}` and `{n1.block6}`, `{pod.x}` and
/// `{pod6.x}`): every expectation of a route holds for both families.
fn twins(lab: &Lab, s: &str) -> Result<Vec<String>, String> {
    let mut out = vec![subst(lab, s)?];
    if lab.cell.dual() {
        let six = s.replace(".block}", ".block6}").replace("{pod.", "{pod6.");
        if six != s {
            out.push(subst(lab, &six)?);
        }
    }
    Ok(out)
}

/// The nodes a node set names: `all`, `others:n1`, or `n2,n3`.
fn node_set(lab: &Lab, spec: &str) -> Result<Vec<String>, String> {
    let all = k8s_nodes(lab);
    let set: Vec<String> = match spec {
        "all" => all,
        s if s.starts_with("others:") => {
            let me = &s["others:".len()..];
            all.into_iter().filter(|n| n != me).collect()
        }
        s => s.split(',').map(|n| n.trim().to_string()).collect(),
    };
    for n in &set {
        if !lab.topo.nodes.contains_key(n) {
            return Err(format!("no node {n} in this cell"));
        }
    }
    Ok(set)
}

/// `10.244.1.5` and `10.244.1.5/32` alike.
pub fn host_prefix(s: &str) -> String {
    match s.parse::<IpAddr>() {
        Ok(ip) => format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 }),
        Err(_) => s.to_string(),
    }
}

fn check_node(lab: &Lab, node: &str) -> Result<(), String> {
    if lab.topo.nodes.contains_key(node) {
        Ok(())
    } else {
        Err(format!(
            "no node {node} in this cell (nodes: {})",
            lab.topo.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    }
}

/// `{peer}`: n1's BGP peer in the cell's fabric (n2 in the mesh, its ToR, the route
/// reflector); any other name as it is.
fn resolve_node(lab: &Lab, name: &str) -> String {
    use crate::render::Fabric;
    match name {
        "{peer}" => match lab.cell.fabric {
            Fabric::Mesh => "n2",
            Fabric::Tor(_) | Fabric::DualTor(_) | Fabric::Rack => "tor1",
            Fabric::Rr(_) => "rr",
        }
        .to_string(),
        n => n.to_string(),
    }
}

/// The step with its node names resolved.
fn resolved(lab: &Lab, step: &Step) -> Step {
    let mut s = step.clone();
    let r = |n: &mut String| *n = resolve_node(lab, n);
    if let Some(x) = s.pod_add.as_mut() {
        r(&mut x.node);
    }
    if let Some(x) = s.pod_del.as_mut() {
        r(&mut x.node);
    }
    if let Some(x) = s.route.as_mut() {
        r(&mut x.node);
    }
    if let Some(x) = s.link.as_mut() {
        r(&mut x.node);
    }
    if let Some(x) = s.daemon.as_mut() {
        r(&mut x.node);
    }
    if let Some(x) = s.flap.as_mut() {
        r(&mut x.node);
    }
    if let Some(x) = s.churn.as_mut() {
        r(&mut x.node);
    }
    if let Some(x) = s.exec.as_mut() {
        r(&mut x.node);
    }
    for x in [s.announce.as_mut(), s.withdraw.as_mut()].into_iter().flatten() {
        r(&mut x.node);
    }
    if let Some(x) = s.reconfigure.as_mut() {
        r(&mut x.node);
    }
    if let Some(e) = s.expect.as_mut() {
        if let Some(x) = e.capabilities.as_mut() {
            r(&mut x.node);
            r(&mut x.peer);
        }
        if let Some(x) = e.info.as_mut() {
            r(&mut x.node);
            if let Some(p) = x.peer.as_mut() {
                r(p);
            }
        }
        if let Some(x) = e.output.as_mut() {
            r(&mut x.node);
        }
        if let Some(x) = e.up_for.as_mut() {
            r(&mut x.node);
            r(&mut x.peer);
        }
        if let Some(x) = e.session.as_mut() {
            r(&mut x.node);
            r(&mut x.peer);
        }
        if let Some(x) = e.advertised.as_mut() {
            r(&mut x.node);
            r(&mut x.to);
        }
    }
    for x in [
        s.pause.as_mut(),
        s.unpause.as_mut(),
        s.cut_sessions.as_mut(),
        s.uncut_sessions.as_mut(),
        s.restore.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        r(x);
    }
    s
}

/// Runs one step.
pub async fn run(rt: &Runtime, lab: &mut Lab, ctx: &mut CaseRun, step: &Step) -> Result<(), String> {
    let step = &resolved(lab, step);
    if let Some(w) = &step.wait {
        tokio::time::sleep(case::duration(w)?).await;
        return Ok(());
    }
    if let Some(e) = &step.expect {
        return expect(rt, lab, ctx, e).await;
    }
    if let Some(t) = &step.traffic {
        return ctx.start_traffic(rt, lab, &t.from, &t.to).await;
    }
    let origin = action_node(lab, step)?;
    if let Some(p) = &step.pod_add {
        // Known before it exists, so the timing can name it.
        let ip = pod_ip(lab, p)?;
        lab.pod_ips.insert(p.name.clone(), ip);
        if let Some(ip6) = pod_ip6(lab, p, ip)? {
            lab.pod_ips6.insert(p.name.clone(), ip6);
        }
    }
    let Some(timing) = &step.time else {
        return act(rt, lab, step).await;
    };
    // A route step changes one family's route: its timing is of that one alone.
    let prefixes: Vec<String> = match step.route {
        Some(_) => vec![subst(lab, &timing.prefix)?],
        None => twins(lab, &timing.prefix)?,
    }
    .iter()
    .map(|p| host_prefix(p))
    .collect();
    for p in &prefixes {
        prefix_of(p)?;
    }
    let budget = timing.budget.on(lab.cell.node)?;
    let min = timing
        .min
        .as_deref()
        .map(case::duration)
        .transpose()?
        .unwrap_or_default();
    let followers = match &timing.followers {
        Some(spec) => node_set(lab, spec)?,
        None => followers(lab, &origin),
    };
    if followers.is_empty() {
        // A timing nobody follows measures nothing: it must not pass.
        return Err(format!("time: no container follows {} here", prefixes.join(" and ")));
    }
    let change = watch::Change {
        prefixes: &prefixes,
        deleted: timing.deleted,
        origin: &origin,
        followers: &followers,
        // A steady route is watched for the budget, no longer.
        deadline: match timing.steady {
            true => budget,
            false => budget.max(Duration::from_secs(3)) * 2,
        },
        // A pod or a route changes the prefix in the acting node's kernel first; a
        // daemon, a link or a pause does not, and is timed from the act.
        from_origin_event: step.pod_add.is_some() || step.pod_del.is_some() || step.route.is_some(),
        settle: SETTLE,
    };
    let topo = lab.topo.clone();
    let props = watch::time_change(rt, &topo, change, async { act(rt, lab, step).await.map_err(Why) })
        .await
        .map_err(|Why(e)| e)?;
    if timing.steady {
        let removed: Vec<String> = props
            .iter()
            .flat_map(|p| {
                p.first_ms
                    .iter()
                    .filter_map(move |(node, ms)| ms.map(|ms| format!("{node} removed {} after {ms:.1} ms", p.prefix)))
            })
            .collect();
        return if removed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "kept for {:.0} ms, it should have been: {}",
                budget.as_secs_f64() * 1000.0,
                removed.join(", ")
            ))
        };
    }
    let name = timing.name.clone().unwrap_or_else(|| "route change".into());
    let (budget_ms, min_ms) = (budget.as_secs_f64() * 1000.0, min.as_secs_f64() * 1000.0);
    let mut wrong = Vec::new();
    for prop in &props {
        let name = match prop.prefix.contains(':') && props.len() > 1 {
            true => format!("{name} (IPv6)"),
            false => name.clone(),
        };
        if prop.origin_at.is_none() {
            wrong.push(format!("{} did not change in {origin}'s kernel", prop.prefix));
            continue;
        }
        let mut off = Vec::new();
        for (node, ms) in &prop.after_ms {
            ctx.samples.push(Sample {
                name: name.clone(),
                node: node.clone(),
                ms: *ms,
                budget_ms,
            });
            match ms {
                Some(ms) if *ms < 0.0 => off.push(format!("{node} {:.1} ms before the change", -ms)),
                Some(ms) if *ms < min_ms => off.push(format!("{node} after {ms:.1} ms, before {min_ms:.0} ms")),
                Some(ms) if *ms <= budget_ms => {}
                Some(ms) => off.push(format!("{node} after {ms:.1} ms")),
                None => off.push(format!("{node} not at all (or not for good)")),
            }
        }
        if !off.is_empty() {
            let window = match min_ms > 0.0 {
                true => format!("between {min_ms:.0} and {budget_ms:.0} ms"),
                false => format!("budget {budget_ms:.0} ms"),
            };
            wrong.push(format!(
                "{} {} ({window}): {}",
                prop.prefix,
                if timing.deleted { "removed" } else { "added" },
                off.join(", ")
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// How long a timed route must stay as it was followed: one that comes back (or goes
/// again) within it was not followed.
const SETTLE: Duration = Duration::from_secs(1);

/// A step's failure, as `watch::time_change` needs it.
struct Why(String);

impl From<crate::runtime::RuntimeError> for Why {
    fn from(e: crate::runtime::RuntimeError) -> Why {
        Why(e.to_string())
    }
}

fn prefix_of(s: &str) -> Result<IpNet, String> {
    s.parse().map_err(|_| format!("{s:?} is not a prefix"))
}

/// The node an action happens in.
fn action_node(lab: &Lab, step: &Step) -> Result<String, String> {
    let node = if let Some(p) = &step.pod_add {
        &p.node
    } else if let Some(p) = &step.pod_del {
        &p.node
    } else if let Some(r) = &step.route {
        &r.node
    } else if let Some(l) = &step.link {
        &l.node
    } else if let Some(d) = &step.daemon {
        &d.node
    } else if let Some(n) = step
        .pause
        .as_ref()
        .or(step.unpause.as_ref())
        .or(step.cut_sessions.as_ref())
        .or(step.uncut_sessions.as_ref())
        .or(step.restore.as_ref())
    {
        n
    } else if let Some(x) = &step.exec {
        &x.node
    } else if let Some(x) = step.announce.as_ref().or(step.withdraw.as_ref()) {
        &x.node
    } else if let Some(x) = &step.reconfigure {
        &x.node
    } else if let Some(f) = &step.flap {
        &f.node
    } else if let Some(c) = &step.churn {
        &c.node
    } else {
        return Err("not an action".into());
    };
    check_node(lab, node)?;
    Ok(node.clone())
}

/// Who must follow a change made in `origin`: every other container whose daemon
/// programs its kernel and runs (nodes, ToRs, spines, reflectors that install); in
/// the fabrics here each of them holds every node's blocks and borrowed IPs.
fn followers(lab: &Lab, origin: &str) -> Vec<String> {
    lab.plan
        .nodes
        .iter()
        .filter(|n| n.kernel && n.name != origin && !lab.down.contains(&n.name))
        .map(|n| n.name.clone())
        .collect()
}

/// The address a `pod_add` gives its pod.
fn pod_ip(lab: &mut Lab, p: &case::PodAdd) -> Result<IpAddr, String> {
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
fn pod_ip6(lab: &Lab, p: &case::PodAdd, ip: IpAddr) -> Result<Option<IpAddr>, String> {
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

async fn act(rt: &Runtime, lab: &mut Lab, step: &Step) -> Result<(), String> {
    if let Some(p) = &step.pod_add {
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
        return Ok(());
    }
    if let Some(p) = &step.pod_del {
        if let Err(e) = pods::delete(rt, &lab.topo, &p.node, &p.name).await {
            // Deleting a pod that is gone already leaves it gone (for `always` steps).
            let list = pods::list(rt, &lab.topo).await.map_err(|e| e.to_string())?;
            if list.iter().any(|x| x.name == p.name && x.node == p.node) {
                return Err(e.to_string());
            }
        }
        lab.pods.remove(&p.name);
        return Ok(());
    }
    if let Some(r) = &step.route {
        let (verb, specs) = match (&r.add, &r.del, &r.replace) {
            (Some(a), ..) => ("add", a),
            (_, Some(d), _) => ("del", d),
            (.., Some(x)) => ("replace", x),
            _ => return Err("route: add, del or replace".into()),
        };
        let specs: Vec<String> = specs.list().iter().map(|s| subst(lab, s)).collect::<Result<_, _>>()?;
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
        return Ok(());
    }
    if let Some(l) = &step.link {
        let state = if l.up { "up" } else { "down" };
        let cmd: Vec<String> = ["ip", "link", "set", &l.iface, state].map(String::from).to_vec();
        exec_ok(rt, lab, &l.node, &cmd).await?;
        return Ok(());
    }
    if let Some(n) = &step.pause {
        rt.pause(&lab.topo.container_name(n)).await.map_err(|e| e.to_string())?;
        lab.down.insert(n.clone());
        return Ok(());
    }
    if let Some(n) = &step.unpause {
        match rt.unpause(&lab.topo.container_name(n)).await {
            Ok(()) => {}
            // Unpausing what runs leaves it running (for `always` steps).
            Err(e) if e.to_string().contains("is not paused") => {}
            Err(e) => return Err(e.to_string()),
        }
        lab.down.remove(n);
        return Ok(());
    }
    if let Some(d) = &step.daemon {
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
        return Ok(());
    }
    if let Some(node) = &step.cut_sessions {
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
        return Ok(());
    }
    if let Some(node) = &step.uncut_sessions {
        exec_ok(rt, lab, node, &sh("nft delete table inet lab-cut 2>/dev/null; true")).await?;
        return Ok(());
    }
    if let Some(f) = &step.flap {
        let script = format!(
            "for i in $(seq {}); do ip link set {} down; sleep 0.1; ip link set {} up; sleep 0.1; done",
            f.times, f.iface, f.iface
        );
        exec_ok(rt, lab, &f.node, &sh(&script)).await?;
        return Ok(());
    }
    if let Some(x) = &step.exec {
        let cmd = subst(lab, &x.cmd)?;
        exec_ok(rt, lab, &x.node, &sh(&cmd)).await?;
        return Ok(());
    }
    if let Some((x, on)) = step
        .announce
        .as_ref()
        .map(|x| (x, true))
        .or(step.withdraw.as_ref().map(|x| (x, false)))
    {
        let kind = kind_of(lab, &x.node)?;
        let prefix = subst(lab, &x.prefix)?;
        let (add, del) = kind
            .announce(&prefix)
            .ok_or_else(|| format!("{}: the lab cannot make {} announce a route", x.node, kind.name()))?;
        exec_ok(rt, lab, &x.node, &sh(if on { &add } else { &del })).await?;
        return Ok(());
    }
    if let Some(x) = &step.reconfigure {
        return reconfigure(rt, lab, &x.node, &x.change.list()).await;
    }
    if let Some(node) = &step.restore {
        return reconfigure(rt, lab, node, &[]).await;
    }
    if let Some(c) = &step.churn {
        // Borrowed pods made and unmade as fast as the node takes them: the host
        // side of a pod's veth and its /32 is what a node speaker sees of it.
        // On a dual-stack cell each pod has an IPv6 address too.
        let (add6, del6) = match lab.cell.v6() {
            true => (
                "\n  ip -6 route add \"fd00:244:0:251::$(( i % 250 + 1 ))/128\" dev calichurn",
                "\n  ip -6 route del \"fd00:244:0:251::$(( i % 250 + 1 ))/128\" dev calichurn",
            ),
            false => ("", ""),
        };
        let (add4, del4) = match lab.cell.v4() {
            true => (
                "\n  ip route add \"10.244.251.$(( i % 250 + 1 ))/32\" dev calichurn",
                "\n  ip route del \"10.244.251.$(( i % 250 + 1 ))/32\" dev calichurn",
            ),
            false => ("", ""),
        };
        let script = format!(
            r#"for i in $(seq {}); do
  ip link add calichurn type veth peer name calichurnp
  ip link set calichurn up{add4}{add6}{del4}{del6}
  ip link del calichurn
done"#,
            c.cycles
        );
        exec_ok(rt, lab, &c.node, &sh(&script)).await?;
        return Ok(());
    }
    Err("not an action".into())
}

/// Renders a node's configuration again from its intent (changed by `tweak`), writes
/// it where the node reads it, and has its daemon read it again.
async fn reconfigure(rt: &Runtime, lab: &Lab, node: &str, tweaks: &[crate::render::Tweak]) -> Result<(), String> {
    let files = lab.plan.node_files(node, tweaks)?;
    for (file, content, _) in &files {
        let path = lab.dir.join(node).join(file);
        // Written in place: the node sees the file through a bind mount of this inode.
        std::fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let daemon = daemon_of(lab, node)?;
    exec_ok(rt, lab, node, &sh(daemon.reload)).await?;
    Ok(())
}

/// The kind of a node's BGP daemon.
fn kind_of(lab: &Lab, node: &str) -> Result<&'static dyn crate::kinds::BgpKind, String> {
    let n = lab.topo.nodes.get(node).ok_or_else(|| format!("no node {node}"))?;
    n.bgp()
        .and_then(crate::kinds::for_label)
        .ok_or_else(|| format!("{node}: no BGP daemon"))
}

/// The lifecycle of a node's BGP daemon.
fn daemon_of(lab: &Lab, node: &str) -> Result<crate::kinds::Daemon, String> {
    let kind = kind_of(lab, node)?;
    kind.daemon()
        .ok_or_else(|| format!("{node}: the lab cannot control {}", kind.name()))
}

/// The resident memory (KiB) of a node's BGP daemon.
async fn rss(rt: &Runtime, lab: &Lab, node: &str) -> Result<u64, String> {
    let d = daemon_of(lab, node)?;
    let out = exec_ok(
        rt,
        lab,
        node,
        &sh(&format!("grep VmRSS /proc/$(cat {})/status", d.pid_file)),
    )
    .await?;
    out.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{node}: cannot read VmRSS from {out:?}"))
}

impl CaseRun {
    /// Notes the memory of the daemons the case's expectations measure.
    pub async fn measure_start(&mut self, rt: &Runtime, lab: &Lab, steps: &[Step]) {
        for s in steps {
            if let Some(r) = s.expect.as_ref().and_then(|e| e.rss_growth.as_ref()) {
                if let Ok(kib) = rss(rt, lab, &r.node).await {
                    self.rss_at_start.insert(r.node.clone(), kib);
                }
            }
        }
    }
}

async fn expect(rt: &Runtime, lab: &Lab, ctx: &mut CaseRun, e: &Expect) -> Result<(), String> {
    if e.reflected.is_some()
        || e.capabilities.is_some()
        || e.info.is_some()
        || e.output.is_some()
        || e.up_for.is_some()
        || e.session.is_some()
        || e.advertised.is_some()
    {
        // An uptime is looked at once: retried, a reset session would pass in the end.
        let default = if e.up_for.is_some() {
            Duration::ZERO
        } else {
            Duration::from_secs(10)
        };
        let within = e.within.as_deref().map(case::duration).transpose()?.unwrap_or(default);
        let start = Instant::now();
        loop {
            match daemon_view(rt, lab, e, ctx.started.elapsed()).await {
                Ok(()) => return Ok(()),
                Err(why) if start.elapsed() >= within => {
                    return Err(format!("not within {:.1} s: {why}", within.as_secs_f64()))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }
    if let Some(r) = &e.rss_growth {
        let now = rss(rt, lab, &r.node).await?;
        let start = *ctx
            .rss_at_start
            .get(&r.node)
            .ok_or_else(|| format!("{}: its memory was not read when the case began", r.node))?;
        let grew = now.saturating_sub(start);
        ctx.rss.push((r.node.clone(), start, now));
        return if grew <= r.max_kib {
            Ok(())
        } else {
            Err(format!(
                "{}: the BGP daemon grew from {start} KiB to {now} KiB (+{grew}, at most +{} allowed)",
                r.node, r.max_kib
            ))
        };
    }
    if let Some(limit) = &e.up_within {
        let limit = case::duration(limit)?;
        let took = lab.up.sessions_after;
        return if took <= limit {
            Ok(())
        } else {
            Err(format!(
                "every session Established {:.1} s after lab up began, more than {:.0} s",
                took.as_secs_f64(),
                limit.as_secs_f64()
            ))
        };
    }
    if let Some(max) = e.loss {
        let flows = ctx.peek_traffic(rt, lab).await;
        if flows.is_empty() {
            return Err("expect loss: no traffic was started in this case".into());
        }
        let over: Vec<String> = flows
            .iter()
            .filter(|f| f.lost > max || f.sent == 0)
            .map(|f| match f.lost {
                u64::MAX => format!("the {} traffic said nothing of what it sent", f.family),
                lost => format!("the {} traffic lost {lost} of {} packets", f.family, f.sent),
            })
            .collect();
        return if over.is_empty() {
            Ok(())
        } else {
            Err(format!("{} (at most {max} allowed)", over.join("; ")))
        };
    }
    let within = e
        .within
        .as_deref()
        .map(case::duration)
        .transpose()?
        .unwrap_or(Duration::from_secs(10));
    let start = Instant::now();
    loop {
        let r = once(rt, lab, e).await;
        match r {
            Ok(()) => return Ok(()),
            Err(why) if start.elapsed() >= within => {
                return Err(format!("not within {:.1} s: {why}", within.as_secs_f64()))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// How `r.node` sees its best path to `prefix`: reflected, with the originator's router
/// ID as ORIGINATOR_ID and a CLUSTER_LIST.
async fn reflected(rt: &Runtime, lab: &Lab, r: &case::ReflectedExpect, prefix: &str) -> Result<(), String> {
    let kind = kind_of(lab, &r.node)?;
    let prefix = prefix.to_string();
    let cmd = kind
        .route_command(&prefix)
        .ok_or_else(|| format!("{}: the lab cannot read {}'s routes", r.node, kind.name()))?;
    let out = exec_ok(rt, lab, &r.node, &cmd).await?;
    let (originator, clusters) = kind
        .parse_reflection(&out, &prefix)
        .ok_or_else(|| format!("{}: no path to {prefix} in `{}`", r.node, cmd.join(" ")))?;
    // The originator's router ID, as its intent has it.
    let want = lab
        .plan
        .nodes
        .iter()
        .find(|n| n.name == r.originator)
        .and_then(|n| n.intent.as_ref())
        .map(|i| i.router_id.to_string())
        .ok_or_else(|| format!("no Kubernetes node {}", r.originator))?;
    match originator {
        Some(o) if o == want && !clusters.is_empty() => Ok(()),
        o => Err(format!(
            "{}'s path to {prefix}: ORIGINATOR_ID {o:?}, CLUSTER_LIST {clusters:?}; expected {want} and a cluster",
            r.node
        )),
    }
}

/// What a daemon says itself: reflection attributes, capabilities, session info.
async fn daemon_view(rt: &Runtime, lab: &Lab, e: &Expect, case_age: Duration) -> Result<(), String> {
    if let Some(r) = &e.reflected {
        for prefix in twins(lab, &r.prefix)? {
            reflected(rt, lab, r, &prefix).await?;
        }
        return Ok(());
    }
    if let Some(c) = &e.capabilities {
        let kind = kind_of(lab, &c.node)?;
        let peers: Vec<String> = lab
            .addresses
            .get(&c.peer)
            .ok_or_else(|| format!("no node {}", c.peer))?
            .iter()
            .map(|a| a.to_string())
            .collect();
        let mut missing = Vec::new();
        for peer in &peers {
            let cmd = kind
                .capabilities_command(peer)
                .ok_or_else(|| format!("{}: the lab cannot read {}'s capabilities", c.node, kind.name()))?;
            let out = exec_ok(rt, lab, &c.node, &cmd).await?;
            let have = kind.parse_capabilities(&out, peer).map_err(|e| e.to_string())?;
            let family = if peer.contains(':') {
                "ipv6-unicast"
            } else {
                "ipv4-unicast"
            };
            for want in c.has.iter().map(String::as_str).chain([family]) {
                if !have.iter().any(|h| h == want) {
                    missing.push(format!("{} with {peer}: no {want} (has {})", c.node, have.join(", ")));
                }
            }
        }
        return if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        };
    }
    if let Some(o) = &e.output {
        let cmd = subst(lab, &o.cmd)?;
        let out = exec_ok(rt, lab, &o.node, &sh(&cmd)).await?;
        let want: Vec<String> = o.line.iter().map(|w| subst(lab, w)).collect::<Result<_, _>>()?;
        return if out.lines().any(|l| want.iter().all(|w| l.contains(w.as_str()))) {
            Ok(())
        } else {
            let shown: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).take(20).collect();
            Err(format!(
                "{}: no line of `{cmd}` holds all of {want:?}; it printed:\n{}",
                o.node,
                shown.join("\n")
            ))
        };
    }
    let addrs_of = |p: &String| -> Vec<String> {
        match lab.addresses.get(p) {
            Some(a) => a.iter().map(|a| a.to_string()).collect(),
            None => vec![p.clone()],
        }
    };
    if let Some(x) = &e.session {
        let table = probes::peers(rt, Some(&lab.topo.name))
            .await
            .map_err(|e| e.to_string())?;
        let peers = addrs_of(&x.peer);
        let rows: Vec<_> = table
            .rows
            .iter()
            .filter(|r| r.node == x.node && peers.contains(&r.session.peer))
            .collect();
        if rows.is_empty() {
            return Err(format!("{} has no session with {}", x.node, x.peer));
        }
        for r in rows {
            let s = &r.session;
            let down = s.state != "Established";
            let ok = match x.up {
                case::SessionState::Up(_) => down,
                case::SessionState::Reset(_) => down || s.uptime_secs.is_some_and(|t| t <= 2),
            };
            if !ok {
                return Err(format!(
                    "{}: the session with {} is {} (up {} s)",
                    x.node,
                    s.peer,
                    s.state,
                    s.uptime_secs.map_or("?".into(), |t| t.to_string())
                ));
            }
        }
        return Ok(());
    }
    if let Some(a) = &e.advertised {
        let kind = kind_of(lab, &a.node)?;
        let want: Vec<String> = a.has.iter().map(|p| subst(lab, p)).collect::<Result<_, _>>()?;
        let mut missing = Vec::new();
        for peer in addrs_of(&a.to) {
            let v6 = peer.contains(':');
            let wanted: Vec<&String> = want.iter().filter(|p| p.contains(':') == v6).collect();
            if wanted.is_empty() {
                continue;
            }
            let cmd = kind
                .advertised_command(&peer)
                .ok_or_else(|| format!("{}: the lab cannot read what {} advertises", a.node, kind.name()))?;
            let out = exec_ok(rt, lab, &a.node, &cmd).await?;
            let sent = kind.parse_advertised(&out).map_err(|e| e.to_string())?;
            for p in wanted {
                if !sent.iter().any(|s| s == p) {
                    missing.push(format!(
                        "{} does not advertise {p} to {peer} (it does: {})",
                        a.node,
                        sent.join(" ")
                    ));
                }
            }
        }
        return if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        };
    }
    if let Some(u) = &e.up_for {
        // Uptimes are whole seconds: a session up since the case started may show one
        // less than the case's age.
        let min = match &u.min {
            Some(m) => case::duration(m)?,
            None => case_age.saturating_sub(Duration::from_secs(1)),
        };
        let table = probes::peers(rt, Some(&lab.topo.name))
            .await
            .map_err(|e| e.to_string())?;
        let peers = addrs_of(&u.peer);
        let rows: Vec<_> = table
            .rows
            .iter()
            .filter(|r| r.node == u.node && peers.contains(&r.session.peer))
            .collect();
        if rows.is_empty() {
            return Err(format!("{} has no session with {}", u.node, u.peer));
        }
        let max = u.max.as_deref().map(case::duration).transpose()?;
        for r in rows {
            let s = &r.session;
            if let (Some(t), Some(max)) = (s.uptime_secs, max) {
                if t > max.as_secs() {
                    return Err(format!(
                        "{}: the session with {} has been up {t} s: it was not reset in the last {} s",
                        u.node,
                        s.peer,
                        max.as_secs()
                    ));
                }
            }
            match s.uptime_secs {
                Some(t) if s.state == "Established" && t >= min.as_secs() => {}
                Some(t) if s.state == "Established" => {
                    return Err(format!(
                        "{}: the session with {} has been up {t} s only (reset within the last {} s)",
                        u.node,
                        s.peer,
                        min.as_secs()
                    ))
                }
                None if s.state == "Established" => {
                    return Err(format!("{}: the session with {} reports no uptime", u.node, s.peer))
                }
                _ => return Err(format!("{}: the session with {} is {}", u.node, s.peer, s.state)),
            }
        }
        return Ok(());
    }
    if let Some(i) = &e.info {
        let table = probes::peers(rt, Some(&lab.topo.name))
            .await
            .map_err(|e| e.to_string())?;
        let peer_addrs: Option<Vec<String>> = i.peer.as_ref().map(addrs_of);
        let infos: Vec<String> = table
            .rows
            .iter()
            .filter(|r| r.node == i.node)
            .filter(|r| peer_addrs.as_ref().is_none_or(|a| a.contains(&r.session.peer)))
            .map(|r| format!("{}: {}", r.session.peer, r.session.info.clone().unwrap_or_default()))
            .collect();
        return if !infos.is_empty() && infos.iter().all(|s| i.any.iter().any(|w| s.contains(w.as_str()))) {
            Ok(())
        } else {
            Err(format!("{} says: {}", i.node, infos.join("; ")))
        };
    }
    Err("an empty expectation".into())
}

/// One look at what an expectation says.
async fn once(rt: &Runtime, lab: &Lab, e: &Expect) -> Result<(), String> {
    if let Some(s) = &e.sessions {
        return sessions(rt, lab, s).await;
    }
    if let Some(f) = &e.fib {
        return fib(rt, lab, f).await;
    }
    if let Some(ping) = &e.ping {
        let mut list = pods::list(rt, &lab.topo).await.map_err(|e| e.to_string())?;
        if let PingExpect::Pair { from, to } = ping {
            for p in [from, to] {
                if !list.iter().any(|x| x.name == *p) {
                    return Err(format!("no pod {p}"));
                }
            }
            list.retain(|p| p.name == *from || p.name == *to);
        }
        let m = pods::ping_matrix(rt, &lab.topo, list, Duration::from_secs(2))
            .await
            .map_err(|e| e.to_string())?;
        let failing: Vec<String> = m
            .reached
            .iter()
            .flat_map(|(a, row)| {
                row.iter()
                    .filter(|(_, ok)| !**ok)
                    .map(move |(b, _)| format!("{a}->{b}"))
            })
            .filter(|pair| match ping {
                PingExpect::Pair { from, to } => *pair == format!("{from}->{to}"),
                PingExpect::All(_) => true,
            })
            .collect();
        return if failing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} pod pair(s) do not ping: {}",
                failing.len(),
                failing.join(" ")
            ))
        };
    }
    if e.model == Some(true) {
        return super::model::check(rt, lab).await;
    }
    Err("an empty expectation".into())
}

async fn sessions(rt: &Runtime, lab: &Lab, s: &SessionsExpect) -> Result<(), String> {
    let table = probes::peers(rt, Some(&lab.topo.name))
        .await
        .map_err(|e| e.to_string())?;
    match s {
        SessionsExpect::All(true) => {
            let stuck: Vec<String> = table
                .rows
                .iter()
                .filter(|r| r.session.state != "Established")
                .map(|r| format!("{} -> {} is {}", r.node, r.session.peer, r.session.state))
                .chain(
                    table
                        .unreadable
                        .iter()
                        .map(|u| format!("{} cannot be read: {}", u.node, u.error)),
                )
                .collect();
            if stuck.is_empty() && !table.rows.is_empty() {
                Ok(())
            } else if stuck.is_empty() {
                Err("no session at all".into())
            } else {
                Err(stuck.join("; "))
            }
        }
        SessionsExpect::All(false) => Err("sessions: false means nothing; use {down: [NODE]}".into()),
        SessionsExpect::Down { down } => {
            // A node whose sessions cannot be read says nothing of them: that is not
            // a session down (the listed nodes themselves may be frozen).
            let mut up: Vec<String> = table
                .unreadable
                .iter()
                .filter(|u| !down.contains(&u.node))
                .map(|u| format!("{} cannot be read: {}", u.node, u.error))
                .collect();
            for node in down {
                let addrs = lab.addresses.get(node).ok_or_else(|| format!("no node {node}"))?;
                for r in table.rows.iter().filter(|r| &r.node != node) {
                    let peer: Option<IpAddr> = r.session.peer.parse().ok();
                    if peer.is_some_and(|p| addrs.contains(&p)) && r.session.state == "Established" {
                        up.push(format!("{} -> {node} ({})", r.node, r.session.peer));
                    }
                }
            }
            if up.is_empty() {
                Ok(())
            } else {
                Err(format!("still Established, or unknown: {}", up.join("; ")))
            }
        }
    }
}

async fn fib(rt: &Runtime, lab: &Lab, f: &FibExpect) -> Result<(), String> {
    let all = |list: &[String]| -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for p in list {
            out.extend(twins(lab, p)?.iter().map(|p| host_prefix(p)));
        }
        Ok(out)
    };
    let (has, lacks) = (all(&f.has)?, all(&f.lacks)?);
    let mut wrong = Vec::new();
    let nodes = node_set(lab, &f.nodes)?;
    let fibs = super::model::fibs(rt, lab, &nodes).await;
    for (node, routes) in nodes.into_iter().zip(fibs) {
        let mut routes = routes?;
        // eth0 is the lab's management network (Docker's default route is there),
        // not part of the fabric under test.
        routes.retain(|r| r.dev.as_deref() != Some("eth0"));
        for p in &has {
            // With a protocol asked for, a route of that protocol, if there is one.
            let of_prefix = || {
                routes
                    .iter()
                    .filter(|r| host_prefix(&r.dst) == *p && r.kind != "blackhole")
            };
            let found = of_prefix()
                .find(|r| f.protocol.as_ref().is_none_or(|proto| r.protocol == *proto))
                .or_else(|| of_prefix().next());
            match (found, &f.protocol) {
                (None, _) => wrong.push(format!("{p} missing from {node}")),
                (Some(r), Some(proto)) if r.protocol != *proto => {
                    wrong.push(format!("{p} in {node} is of protocol {}, not {proto}", r.protocol))
                }
                (Some(r), _) => {
                    let hops: BTreeSet<&String> = r.gateways.iter().collect();
                    if let Some(n) = f.next_hops.filter(|n| *n != hops.len()) {
                        let via = if hops.is_empty() {
                            "none".to_string()
                        } else {
                            r.gateways.join(", ")
                        };
                        wrong.push(format!("{p} in {node} has {} next hop(s) ({via}), not {n}", hops.len()));
                    }
                }
            }
        }
        for p in &lacks {
            if let Some(r) = routes.iter().find(|r| host_prefix(&r.dst) == *p) {
                wrong.push(format!("{p} still in {node} ({} {})", r.protocol, r.gateways.join(",")));
            }
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

impl CaseRun {
    /// A ping every millisecond from one pod to another, in each family both have:
    /// a gap of 50 ms costs 50 packets.
    async fn start_traffic(&mut self, rt: &Runtime, lab: &Lab, from: &str, to: &str) -> Result<(), String> {
        let list = pods::list(rt, &lab.topo).await.map_err(|e| e.to_string())?;
        let find = |name: &str| {
            list.iter()
                .find(|p| p.name == name)
                .cloned()
                .ok_or_else(|| format!("traffic: no pod {name}"))
        };
        let (src, dst) = (find(from)?, find(to)?);
        let pairs = [(src.ip, dst.ip), (src.ip6.unwrap_or(src.ip), dst.ip6.unwrap_or(dst.ip))];
        for (k, (a, b)) in pairs.iter().enumerate() {
            if k == 1 && (src.ip6.is_none() || dst.ip6.is_none()) {
                break;
            }
            let family = if a.is_ipv4() { "IPv4" } else { "IPv6" };
            let log = format!("/tmp/lab-traffic-{family}.log");
            // ip netns exec becomes ping: the PID we print is ping's.
            let cmd = format!(
                "ip netns exec pod-{} ping -n -q -i 0.001 -W 1 {b} >{log} 2>&1 & echo $!",
                src.name
            );
            let out = exec_ok(rt, lab, &src.node, &sh(&cmd)).await?;
            let pid: u32 = out.trim().parse().map_err(|_| format!("traffic: no PID in {out:?}"))?;
            self.traffic.push((src.node.clone(), pid, family.to_string(), log));
        }
        Ok(())
    }

    /// Stops the traffic (if any) and says what it sent and lost in each family.
    pub async fn stop_traffic(&mut self, rt: &Runtime, lab: &Lab) -> Vec<Flow> {
        if self.traffic.is_empty() {
            return self.last_traffic.clone();
        }
        let mut flows = Vec::new();
        for (node, pid, family, log) in std::mem::take(&mut self.traffic) {
            let cmd = format!(
                "kill -INT {pid}; while kill -0 {pid} 2>/dev/null; do sleep 0.05; done; cat {log}; rm -f {log}"
            );
            let counted = exec_ok(rt, lab, &node, &sh(&cmd))
                .await
                .ok()
                .and_then(|out| parse_ping_summary(&out));
            // A ping that printed no summary counts as all lost: it cannot pass.
            let (sent, lost) = counted.unwrap_or((0, u64::MAX));
            flows.push(Flow { family, sent, lost });
        }
        flows
    }

    /// Stops the traffic to count it; a later `loss` sees the same count.
    async fn peek_traffic(&mut self, rt: &Runtime, lab: &Lab) -> Vec<Flow> {
        let counted = self.stop_traffic(rt, lab).await;
        if !counted.is_empty() {
            self.last_traffic = counted;
        }
        self.last_traffic.clone()
    }
}

/// `20 packets transmitted, 19 received, 5% packet loss` -> (20, 1).
fn parse_ping_summary(out: &str) -> Option<(u64, u64)> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let nums: Vec<u64> = line
        .split(',')
        .filter_map(|part| part.split_whitespace().next()?.parse().ok())
        .collect();
    match nums[..] {
        [sent, received, ..] => Some((sent, sent.saturating_sub(received))),
        _ => None,
    }
}

/// A pcap of TCP port 179 in every BGP node, for the length of a case.
pub struct Capture {
    nodes: Vec<(String, u32)>,
}

const PCAP: &str = "/tmp/lab-case.pcap";

impl Capture {
    pub async fn start(rt: &Runtime, lab: &Lab) -> Capture {
        // One exec per node, all at once: this runs before every case of the matrix.
        let cmd = sh(&format!(
            "tcpdump -i any -U -s 256 -w {PCAP} 'tcp port 179' >/dev/null 2>&1 & echo $!"
        ));
        let started = lab.topo.nodes.values().filter(|n| n.bgp().is_some()).map(|n| async {
            let out = exec_ok(rt, lab, &n.name, &cmd).await.ok()?;
            Some((n.name.clone(), out.trim().parse().ok()?))
        });
        let nodes = futures::future::join_all(started).await.into_iter().flatten().collect();
        Capture { nodes }
    }

    /// Stops every node's capture and runs `then` after it in the same exec.
    async fn stop(&self, rt: &Runtime, lab: &Lab, then: &str) {
        let stops = self.nodes.iter().map(|(node, pid)| async move {
            let _ = exec_ok(rt, lab, node, &sh(&format!("kill -INT {pid} 2>/dev/null; {then}"))).await;
        });
        futures::future::join_all(stops).await;
    }

    pub async fn discard(self, rt: &Runtime, lab: &Lab) {
        self.stop(rt, lab, &format!("rm -f {PCAP}")).await;
    }

    /// Writes the case's evidence into `dir`.
    pub async fn collect(self, rt: &Runtime, lab: &Lab, dir: &Path, why: &str) {
        // tcpdump flushes its last packets on SIGINT: give it a moment before reading.
        self.stop(rt, lab, "sleep 0.1").await;
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(dir.join("failure.txt"), format!("{why}\n"));
        if let Ok(t) = probes::peers(rt, Some(&lab.topo.name)).await {
            let _ = std::fs::write(
                dir.join("peers.json"),
                serde_json::to_string_pretty(&t.rows).unwrap_or_default(),
            );
        }
        for n in lab.topo.nodes.values() {
            let container = lab.topo.container_name(&n.name);
            if let Ok(routes) = probes::fib(rt, &container).await {
                let _ = std::fs::write(
                    dir.join(format!("fib-{}.json", n.name)),
                    serde_json::to_string_pretty(&routes).unwrap_or_default(),
                );
            }
            if let Some(d) = n.bgp().and_then(crate::kinds::for_label).and_then(|k| k.daemon()) {
                if let Ok(log) = exec_ok(rt, lab, &n.name, &sh(&format!("tail -c 300000 {}", d.log))).await {
                    let _ = std::fs::write(dir.join(format!("{}.log", n.name)), log);
                }
            }
            if self.nodes.iter().any(|(node, _)| *node == n.name) {
                if let Ok(b64) = exec_ok(rt, lab, &n.name, &sh(&format!("base64 -w0 {PCAP}; rm -f {PCAP}"))).await {
                    if let Some(bytes) = base64_decode(b64.trim()) {
                        let _ = std::fs::write(dir.join(format!("{}.pcap", n.name)), bytes);
                    }
                }
            }
        }
    }
}

/// Standard base64, as coreutils writes it.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= val(*b)? << (18 - 6 * i);
        }
        let take = chunk.len().saturating_sub(1);
        for i in 0..take {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summaries_and_base64_read() {
        let out = "PING 10.244.2.1\n\n--- 10.244.2.1 ping statistics ---\n40 packets transmitted, 37 received, 7.5% packet loss, time 1950ms\n";
        assert_eq!(parse_ping_summary(out), Some((40, 3)));
        assert_eq!(parse_ping_summary("nothing"), None);
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(host_prefix("10.244.1.5"), "10.244.1.5/32");
        assert_eq!(host_prefix("fd00::5"), "fd00::5/128");
    }
}
