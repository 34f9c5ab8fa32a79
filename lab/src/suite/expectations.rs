//! The expectations of a case, each retried until it holds or its time is up: the
//! sessions, the FIBs, pings, the model (WD-04), the traffic's loss, memory growth,
//! and what the daemons say of themselves (reflection attributes, capabilities,
//! session state and uptime, what a router advertises).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::lab::{exec_ok, implementation_of, rss, sh, Lab};
use super::placeholders::{host_prefix, node_set, subst, twins};
use super::record::CaseRun;
use super::step::{self, Check, Expectation, FibExpect, PingExpect, SessionsExpect, Step, What};
use super::Flow;
use crate::pods;
use crate::probes;
use crate::runtime::Runtime;

impl CaseRun {
    /// Notes the memory of the daemons the case's expectations measure.
    pub async fn measure_start(&mut self, rt: &Runtime, lab: &Lab, steps: &[Step]) {
        for s in steps {
            if let What::Expect(Expectation {
                check: Check::RssGrowth(r),
                ..
            }) = &s.what
            {
                if let Ok(kib) = rss(rt, lab, &r.node).await {
                    self.rss_at_start.insert(r.node.clone(), kib);
                }
            }
        }
    }
}

/// Checks an expectation: those of the case's own record at once, the others retried
/// until they hold or `within` (10 s by default) has passed.
pub async fn expect(rt: &Runtime, lab: &Lab, ctx: &mut CaseRun, e: &Expectation) -> Result<(), String> {
    if let Check::RssGrowth(r) = &e.check {
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
    if let Check::UpWithin(limit) = e.check {
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
    if let Check::Loss(max) = e.check {
        let flows = ctx.peek_traffic(rt, lab).await;
        if flows.is_empty() {
            return Err("expect loss: no traffic was started in this case".into());
        }
        let over: Vec<String> = flows
            .iter()
            .filter(|f| f.lost > max || f.sent == 0)
            .map(|f| match (f.lost, f.longest_gap_ms) {
                (u64::MAX, _) => format!("the {} traffic said nothing of what it sent", f.family),
                (lost, Some(_)) => format!("the connections {} lost {lost} of {}", f.family, f.sent),
                (lost, None) => format!("the {} traffic lost {lost} of {} packets", f.family, f.sent),
            })
            .collect();
        return if over.is_empty() {
            Ok(())
        } else {
            Err(format!("{} (at most {max} allowed)", over.join("; ")))
        };
    }
    if let Check::Outage(max) = e.check {
        let flows: Vec<Flow> = ctx
            .peek_traffic(rt, lab)
            .await
            .into_iter()
            .filter(|f| f.longest_gap_ms.is_some() || f.lost == u64::MAX)
            .collect();
        if flows.is_empty() {
            return Err("expect outage: no connections to a service were started in this case".into());
        }
        let limit = max.as_secs_f64() * 1000.0;
        let over: Vec<String> = flows
            .iter()
            .filter(|f| f.longest_gap_ms.is_none_or(|g| g > limit) || f.sent == 0)
            .map(|f| match f.longest_gap_ms {
                None => format!("the connections {} said nothing of what they counted", f.family),
                Some(g) => format!(
                    "the connections {} went {g:.0} ms without an answer ({} of {} failed)",
                    f.family, f.lost, f.sent
                ),
            })
            .collect();
        return if over.is_empty() {
            Ok(())
        } else {
            Err(format!("{} (at most {limit:.0} ms allowed)", over.join("; ")))
        };
    }
    // An uptime is looked at once: retried, a reset session would pass in the end.
    let default = match e.check {
        Check::UpFor(_) => Duration::ZERO,
        _ => Duration::from_secs(10),
    };
    let within = e.within.unwrap_or(default);
    let pause = Duration::from_millis(if e.check.daemon_view() { 300 } else { 200 });
    let start = Instant::now();
    loop {
        let r = match e.check.daemon_view() {
            true => daemon_view(rt, lab, &e.check, ctx.started.elapsed()).await,
            false => once(rt, lab, &e.check).await,
        };
        match r {
            Ok(()) => return Ok(()),
            Err(why) if start.elapsed() >= within => {
                return Err(format!("not within {:.1} s: {why}", within.as_secs_f64()))
            }
            Err(_) => tokio::time::sleep(pause).await,
        }
    }
}

/// What `node`'s daemon shows of its best path to `prefix` (its route command),
/// read by `parse`; an error when it shows none.
async fn best_path<T>(
    rt: &Runtime,
    lab: &Lab,
    node: &str,
    prefix: &str,
    parse: impl Fn(&dyn crate::bgp::Implementation, &str) -> Option<T>,
) -> Result<T, String> {
    let kind = implementation_of(lab, node)?;
    let cmd = kind
        .route_command(prefix)
        .ok_or_else(|| format!("{node}: the lab cannot read {}'s routes", kind.name()))?;
    let out = exec_ok(rt, lab, node, &cmd).await?;
    parse(kind, &out).ok_or_else(|| format!("{node}: no path to {prefix} in `{}`", cmd.join(" ")))
}

/// How `r.node` sees its best path to `prefix`: reflected, with the originator's router
/// ID as ORIGINATOR_ID and a CLUSTER_LIST.
async fn reflected(rt: &Runtime, lab: &Lab, r: &step::ReflectedExpect, prefix: &str) -> Result<(), String> {
    let (originator, clusters) =
        best_path(rt, lab, &r.node, prefix, |kind, out| kind.parse_reflection(out, prefix)).await?;
    // The originator's router ID, as its intent has it.
    let want = lab
        .plan
        .nodes
        .iter()
        .find(|n| n.name == r.originator && n.intent.is_some())
        .and_then(|n| n.router_id())
        .map(|id| id.to_string())
        .ok_or_else(|| format!("no Kubernetes node {}", r.originator))?;
    match originator {
        Some(o) if o == want && !clusters.is_empty() => Ok(()),
        o => Err(format!(
            "{}'s path to {prefix}: ORIGINATOR_ID {o:?}, CLUSTER_LIST {clusters:?}; expected {want} and a cluster",
            r.node
        )),
    }
}

/// The communities on `c.node`'s best path to `prefix`: all of `has`, none of `lacks`.
async fn communities(rt: &Runtime, lab: &Lab, c: &step::CommunitiesExpect, prefix: &str) -> Result<(), String> {
    let have = best_path(rt, lab, &c.node, prefix, |kind, out| {
        kind.parse_communities(out, prefix)
    })
    .await?;
    let missing: Vec<&String> = c.has.iter().filter(|w| !have.contains(w)).collect();
    let unwanted: Vec<&String> = c.lacks.iter().filter(|w| have.contains(w)).collect();
    match missing.is_empty() && unwanted.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "{}'s best path to {prefix} carries [{}]: missing {missing:?}, unwanted {unwanted:?}",
            c.node,
            have.join(" ")
        )),
    }
}

/// What a daemon says itself: reflection attributes, capabilities, session info.
async fn daemon_view(rt: &Runtime, lab: &Lab, check: &Check, case_age: Duration) -> Result<(), String> {
    if let Check::Communities(c) = check {
        for prefix in twins(lab, &c.prefix)? {
            communities(rt, lab, c, &host_prefix(&prefix)).await?;
        }
        return Ok(());
    }
    if let Check::Reflected(r) = check {
        for prefix in twins(lab, &r.prefix)? {
            reflected(rt, lab, r, &prefix).await?;
        }
        return Ok(());
    }
    if let Check::Capabilities(c) = check {
        let kind = implementation_of(lab, &c.node)?;
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
    if let Check::Output(o) = check {
        let cmd = subst(lab, &o.cmd)?;
        let out = exec_ok(rt, lab, &o.node, &sh(&cmd)).await?;
        let want: Vec<String> = o.line.iter().map(|w| subst(lab, w)).collect::<Result<_, _>>()?;
        let found: Vec<&str> = out
            .lines()
            .filter(|l| want.iter().all(|w| l.contains(w.as_str())))
            .collect();
        return match (found.is_empty(), o.absent) {
            (false, false) | (true, true) => Ok(()),
            (false, true) => Err(format!(
                "{}: `{cmd}` still has a line that holds all of {want:?}: {}",
                o.node, found[0]
            )),
            (true, false) => {
                let shown: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).take(20).collect();
                // One thing wrong, with what was seen: no `; ` before it, which
                // would make it two for the findings (`case.rs`).
                Err(format!(
                    "{}: no line of `{cmd}` holds all of {want:?}, it printed:\n{}",
                    o.node,
                    shown.join("\n")
                ))
            }
        };
    }
    let addrs_of = |p: &String| -> Vec<String> {
        match lab.addresses.get(p) {
            Some(a) => a.iter().map(|a| a.to_string()).collect(),
            None => vec![p.clone()],
        }
    };
    if let Check::Session(x) = check {
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
                step::SessionState::Up(_) => down,
                step::SessionState::Reset(_) => down || s.uptime_secs.is_some_and(|t| t <= 2),
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
    if let Check::Advertised(a) = check {
        let kind = implementation_of(lab, &a.node)?;
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
    if let Check::UpFor(u) = check {
        // Uptimes are whole seconds: a session up since the case started may show one
        // less than the case's age.
        let min = match &u.min {
            Some(m) => step::duration(m)?,
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
        let max = u.max.as_deref().map(step::duration).transpose()?;
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
    if let Check::Info(i) = check {
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
async fn once(rt: &Runtime, lab: &Lab, check: &Check) -> Result<(), String> {
    if let Check::Connect(c) = check {
        return super::svc::connect(rt, lab, c).await;
    }
    if let Check::Learned(l) = check {
        return super::svc::learned(rt, lab, l).await;
    }
    if let Check::Sessions(s) = check {
        return sessions(rt, lab, s).await;
    }
    if let Check::Fib(f) = check {
        return fib(rt, lab, f).await;
    }
    if let Check::Ping(ping) = check {
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
    if let Check::Model = check {
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
        SessionsExpect::All(false) => Err("sessions: false means nothing".into()),
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
    let fibs = super::lab::fibs(rt, lab, &nodes).await;
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
                    .filter(|r| host_prefix(&r.dst) == *p && r.route_type != "blackhole")
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
            // Of that protocol alone: another owner's route beside it (of a lower
            // metric, or the same) would take its traffic.
            if let Some(proto) = &f.protocol {
                let beside: Vec<String> = of_prefix()
                    .filter(|r| r.protocol != *proto)
                    .map(|r| format!("{} via {}", r.protocol, r.gateways.join(",")))
                    .collect();
                if !beside.is_empty() {
                    wrong.push(format!(
                        "{p} in {node}: a route of {} beside the {proto} one",
                        beside.join(" and ")
                    ));
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
