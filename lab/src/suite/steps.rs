//! Carrying out a case's steps on a deployed cell: each action (timed from route
//! events where the step asks), each expectation, with what the case makes along the
//! way (its traffic, its timings, the memory of the daemons it measures).

use std::time::Duration;

use ipnet::IpNet;

use super::lab::{check_node, followers, resolve_node, Lab};
use super::placeholders::{host_prefix, node_set, subst, twins};
use super::record::CaseRun;
use super::step::{self, Action, Step, What};
use super::{actions, expectations, Sample};
use crate::pods;
use crate::runtime::Runtime;
use crate::watch;

/// Runs one step.
pub async fn run(rt: &Runtime, lab: &mut Lab, ctx: &mut CaseRun, step: &Step) -> Result<(), String> {
    let step = step.map_nodes(|n| resolve_node(lab, n));
    let (action, timing) = match &step.what {
        What::Expect(e) => return expectations::expect(rt, lab, ctx, e).await,
        What::Act(Action::Wait(d), _) => {
            tokio::time::sleep(*d).await;
            return Ok(());
        }
        What::Act(Action::Traffic(t), _) => return ctx.start_traffic(rt, lab, t).await,
        What::Act(a @ (Action::ServiceAdd(_) | Action::ServiceDel(_) | Action::ServiceReady(_)), _) => {
            return actions::act(rt, lab, a).await
        }
        What::Act(a, t) => (a, t),
    };
    let origin = step.action_node().unwrap_or_default().to_string();
    check_node(lab, &origin)?;
    if let Action::PodAdd(p) = action {
        // Known before it exists, so the timing can name it.
        let ip = actions::pod_ip(lab, p)?;
        lab.pod_ips.insert(p.name.clone(), ip);
        if let Some(ip6) = actions::pod_ip6(lab, p, ip)? {
            lab.pod_ips6.insert(p.name.clone(), ip6);
        }
    }
    let Some(timing) = timing else {
        return actions::act(rt, lab, action).await;
    };
    // A route step changes one family's route: its timing is of that one alone.
    let prefixes: Vec<String> = match action {
        Action::Route(_) => vec![subst(lab, &timing.prefix)?],
        _ => twins(lab, &timing.prefix)?,
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
        .map(step::duration)
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
        // daemon, a link or a pause does not, and is timed from the act, as is a
        // service's route, which is in no node's kernel (kube-proxy handles it there),
        // and a pod whose veth goes first (its IPv4 /32 leaves without an event).
        from_origin_event: match action {
            Action::PodAdd(_) | Action::Route(_) => true,
            Action::PodDel(p) => p.teardown == pods::Teardown::Routes,
            _ => false,
        } && !timing.prefix.contains("{svc"),
        settle: SETTLE,
    };
    // A service route changes when its endpoints do, as the EndpointSlice says: a pod
    // deleted is timed from the services written without it, not from the pod's
    // own teardown (Kubernetes' part, not the node's).
    let endpoint_gone = matches!(action, Action::PodDel(_)) && timing.prefix.contains("{svc");
    if let (true, Action::PodDel(p)) = (endpoint_gone, action) {
        actions::delete_pod(rt, lab, p).await?;
    }
    let topo = lab.topo.clone();
    let props = watch::time_change(rt, &topo, change, async {
        match endpoint_gone {
            true => actions::follow_pods(rt, lab).await.map_err(Why),
            false => actions::act(rt, lab, action).await.map_err(Why),
        }
    })
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
