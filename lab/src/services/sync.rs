//! The services of a lab, kept in its Kubernetes nodes (`lab.role: node`) and applied
//! to them: each node gets the list, its kube-proxy ruleset, its endpoint pods'
//! servers, and its BGP agent's view of the services.

use crate::labels::Role;
use std::net::IpAddr;

use super::{confd, kubeproxy, manifest, servers, Service, ServiceError};
use crate::pods::{self, Pod};
use crate::runtime::Runtime;
use crate::topology::Topology;

/// Where each Kubernetes node keeps the lab's services (the same in every one).
const STORE: &str = "/run/podlab/services.json";

fn kube_nodes(topo: &Topology) -> Vec<&str> {
    topo.nodes
        .values()
        .filter(|n| n.role == Some(Role::Node))
        .map(|n| n.name.as_str())
        .collect()
}

/// The lab's services as last applied, read from its first Kubernetes node that
/// answers; none before the first.
pub async fn stored(rt: &Runtime, topo: &Topology) -> Result<Vec<Service>, ServiceError> {
    let cmd: Vec<String> = ["sh", "-c", &format!("[ ! -e {STORE} ] || cat {STORE}")]
        .map(String::from)
        .to_vec();
    let mut last = None;
    for node in kube_nodes(topo) {
        match rt.exec(&topo.container_name(node), &cmd).await {
            Ok(out) if out.ok() => {
                if out.stdout.trim().is_empty() {
                    return Ok(Vec::new());
                }
                return serde_json::from_str(&out.stdout)
                    .map_err(|e| ServiceError::Invalid(format!("node {node}: {STORE}: {e}")));
            }
            Ok(out) => {
                last = Some(ServiceError::Failed {
                    node: node.into(),
                    step: format!("cat {STORE}"),
                    output: out.stderr.trim().to_string(),
                })
            }
            Err(e) => last = Some(e.into()),
        }
    }
    Err(last.unwrap_or_else(|| {
        ServiceError::Invalid(format!(
            "lab {} has no Kubernetes node (lab.role: node) to run services",
            topo.name
        ))
    }))
}

/// Applies `services` to every Kubernetes node of the lab, from the pods that exist now.
pub async fn apply(rt: &Runtime, topo: &Topology, services: &[Service]) -> Result<(), ServiceError> {
    let pods = pods::list(rt, topo)
        .await
        .map_err(|e| ServiceError::Invalid(e.to_string()))?;
    apply_with(rt, topo, services, &pods).await
}

/// As `apply`, from the pods given: the suite knows the pods it made, and spares the
/// reading of every node between an endpoint's removal and its route's withdrawal.
pub async fn apply_with(rt: &Runtime, topo: &Topology, services: &[Service], pods: &[Pod]) -> Result<(), ServiceError> {
    for s in services {
        s.check().map_err(ServiceError::Invalid)?;
    }
    let nodes = kube_nodes(topo);
    if nodes.is_empty() {
        return Err(ServiceError::Invalid(format!(
            "lab {} has no Kubernetes node (lab.role: node) to run services",
            topo.name
        )));
    }
    // What advertises a service route is the node's agent: the lab writes the
    // speaker's state file, BIRD's static routes and FRR's networks (`confd.rs`).
    if let Some(n) = nodes
        .iter()
        .filter(|_| !services.is_empty())
        .find(|n| !matches!(topo.nodes[**n].bgp(), Some("speaker" | "bird" | "frr")))
    {
        return Err(ServiceError::Invalid(format!(
            "node {n} runs {}: the lab feeds services to the speaker, BIRD and FRR",
            topo.nodes[*n].bgp().unwrap_or("no BGP agent")
        )));
    }
    let stored = serde_json::to_string_pretty(services).expect("services serialize");
    let state = serde_json::to_string_pretty(&manifest::list(services, pods)).expect("a List serializes");
    let results = futures::future::join_all(nodes.iter().map(|node| {
        let (stored, state) = (&stored, &state);
        async move { apply_node(rt, topo, node, services, pods, stored, state).await }
    }))
    .await;
    results.into_iter().collect()
}

async fn apply_node(
    rt: &Runtime,
    topo: &Topology,
    node: &str,
    services: &[Service],
    pods: &[Pod],
    stored: &str,
    state: &str,
) -> Result<(), ServiceError> {
    let n = &topo.nodes[node];
    let snat: Vec<IpAddr> = n.blocks.iter().filter_map(|b| b.hosts().last()).collect();
    let rules = kubeproxy::ruleset(node, services, pods, &snat);
    // Every file replaced by a rename: a reader never sees half of one.
    let text = format!(
        r#"set -e
mkdir -p "$(dirname {STORE})"
printf '%s\n' "$1" >{STORE}.tmp && mv {STORE}.tmp {STORE}
printf '%s' "$2" | nft -f -
if [ -n "$3" ]; then
  mkdir -p "$(dirname {state_file})"
  printf '%s\n' "$3" >{state_file}.tmp && mv {state_file}.tmp {state_file}
fi"#,
        state_file = manifest::SPEAKER_STATE
    );
    let speaker = if n.bgp() == Some("speaker") { state } else { "" };
    // BIRD's and FRR's service routes in the same exec: one round trip less between an
    // endpoint's removal and its route's withdrawal, which SVC-04 times.
    let local = confd::local_prefixes(node, services, pods);
    let agent = match n.bgp() {
        Some("bird") => confd::bird_script(&local),
        Some("frr") => confd::frr_script(&local),
        _ => String::new(),
    };
    let text = format!("{text}\n{agent}");
    run(rt, topo, node, "write services", &text, &[stored, &rules, speaker]).await?;
    let keys: Vec<String> = pods
        .iter()
        .filter(|p| p.node == node)
        .flat_map(|p| {
            services
                .iter()
                .filter(|s| s.endpoints.contains(&p.name))
                .flat_map(move |s| {
                    s.ips
                        .iter()
                        .filter(|ip| p.addresses().iter().any(|a| a.is_ipv4() == ip.is_ipv4()))
                        .map(move |ip| servers::key(&p.name, s.port, ip.is_ipv4()))
                })
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    run(rt, topo, node, "endpoint servers", &servers::reconcile_script(), &keys).await
}

async fn run(
    rt: &Runtime,
    topo: &Topology,
    node: &str,
    step: &str,
    text: &str,
    args: &[&str],
) -> Result<(), ServiceError> {
    let mut cmd: Vec<String> = vec!["bash".into(), "-c".into(), text.into(), "services".into()];
    cmd.extend(args.iter().map(|a| a.to_string()));
    let out = rt.exec(&topo.container_name(node), &cmd).await?;
    if !out.ok() {
        return Err(ServiceError::Failed {
            node: node.into(),
            step: step.into(),
            output: format!("{}{}", out.stdout, out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Applies the lab's services again after its pods changed: an endpoint pod deleted
/// leaves its services (its node withdraws a Local service's route when it was the
/// last one there), one created again under its name joins them.
pub async fn follow_pods(rt: &Runtime, topo: &Topology) -> Result<(), ServiceError> {
    if kube_nodes(topo).is_empty() {
        return Ok(());
    }
    let services = stored(rt, topo).await?;
    if services.is_empty() {
        return Ok(());
    }
    apply(rt, topo, &services).await
}
