//! Bringing a lab up and down: management network, containers, links, link addresses,
//! then each node's `exec` commands (which start its daemons), in containerlab's order.
//! A failed `up` removes what it made unless asked to keep it for a look.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::future::try_join_all;

use crate::progress::Progress;
use crate::runtime::{Runtime, RuntimeError, LABEL_LAB};
use crate::topology::{Node, Topology};

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Link(#[from] crate::links::LinkError),
    #[error(
        "lab {lab} is already deployed ({count} containers): `lab down -t {file}` first, or `lab up --reconfigure`"
    )]
    AlreadyUp { lab: String, count: usize, file: String },
    #[error("node {node} (topology line {line}): `{command}` exited with {code}: {output}")]
    Exec {
        node: String,
        line: usize,
        command: String,
        code: i64,
        output: String,
    },
}

#[derive(Debug, Default, Clone)]
pub struct UpOptions {
    /// Remove an existing deployment of the same lab first.
    pub reconfigure: bool,
    /// Keep what was made when a step fails, to look at it.
    pub keep_on_error: bool,
}

/// Deploys a topology. Containers exist and their exec commands ran when this returns.
pub async fn up(rt: &Runtime, topo: &Topology, opts: &UpOptions, progress: &Progress) -> Result<(), DeployError> {
    let existing = rt.containers(Some(&topo.name)).await?;
    if !existing.is_empty() {
        if opts.reconfigure {
            down(rt, &topo.name, progress).await?;
        } else {
            return Err(DeployError::AlreadyUp {
                lab: topo.name.clone(),
                count: existing.len(),
                file: topo.file.display().to_string(),
            });
        }
    }
    // Every image must be there before anything is made.
    for node in topo.nodes.values() {
        if !rt.image_exists(&node.image).await? {
            return Err(RuntimeError::MissingImage {
                node: node.name.clone(),
                image: node.image.clone(),
            }
            .into());
        }
    }
    for f in &topo.ignored {
        tracing::warn!(field = %f, "containerlab setting not supported by lab; ignored");
    }
    let result = deploy(rt, topo, progress).await;
    if result.is_err() && !opts.keep_on_error {
        let _ = down(rt, &topo.name, progress).await;
    }
    result
}

async fn deploy(rt: &Runtime, topo: &Topology, progress: &Progress) -> Result<(), DeployError> {
    let t = Instant::now();
    rt.ensure_network(&topo.name, &topo.mgmt).await?;
    let names: Vec<String> = try_join_all(topo.nodes.values().map(|n| async {
        rt.create_node(topo, n).await?;
        let name = topo.container_name(&n.name);
        rt.start(&name).await?;
        Ok::<_, RuntimeError>(name)
    }))
    .await?;
    progress.done(&format!("{} containers started", names.len()), t);

    let t = Instant::now();
    let mut pids = BTreeMap::new();
    for node in topo.nodes.keys() {
        pids.insert(node.clone(), rt.pid(&topo.container_name(node)).await?);
    }
    crate::links::wire(&topo.links, &pids).await?;
    // Addresses from the links' ipv4/ipv6 lists, before any daemon starts.
    for l in &topo.links {
        for ep in [&l.a, &l.b] {
            for addr in &ep.addrs {
                let mut cmd = vec![
                    "ip".to_string(),
                    "addr".into(),
                    "add".into(),
                    addr.to_string(),
                    "dev".into(),
                    ep.iface.clone(),
                ];
                if matches!(addr, ipnet::IpNet::V6(_)) {
                    cmd.push("nodad".into());
                }
                run(rt, topo, &topo.nodes[&ep.node], &cmd, &cmd.join(" ")).await?;
            }
        }
    }
    progress.done(&format!("{} links wired", topo.links.len()), t);

    let t = Instant::now();
    try_join_all(topo.nodes.values().map(|n| async move {
        for line in &n.exec {
            run(rt, topo, n, &crate::argv::split(line), line).await?;
        }
        Ok::<_, DeployError>(())
    }))
    .await?;
    progress.done("exec commands run", t);
    Ok(())
}

async fn run(rt: &Runtime, topo: &Topology, node: &Node, cmd: &[String], shown: &str) -> Result<(), DeployError> {
    let out = rt.exec(&topo.container_name(&node.name), cmd).await?;
    tracing::debug!(node = %node.name, command = shown, code = out.code, "exec");
    if !out.ok() {
        let text = format!("{}{}", out.stdout, out.stderr);
        return Err(DeployError::Exec {
            node: node.name.clone(),
            line: node.line,
            command: shown.to_string(),
            code: out.code,
            output: text.trim().to_string(),
        });
    }
    Ok(())
}

/// Removes every container of a lab and its management network once unused.
/// Returns how many containers were removed.
pub async fn down(rt: &Runtime, lab: &str, progress: &Progress) -> Result<usize, DeployError> {
    remove(rt, Some(lab), progress).await
}

/// Removes every container and network this runner made, of every lab.
pub async fn down_all(rt: &Runtime, progress: &Progress) -> Result<usize, DeployError> {
    remove(rt, None, progress).await
}

async fn remove(rt: &Runtime, lab: Option<&str>, progress: &Progress) -> Result<usize, DeployError> {
    let t = Instant::now();
    let containers = rt.containers(lab).await?;
    let mut networks: Vec<String> = containers
        .iter()
        .filter_map(|c| c.host_config.as_ref().and_then(|h| h.network_mode.clone()))
        .collect();
    let labs: std::collections::BTreeSet<String> = containers
        .iter()
        .filter_map(|c| c.labels.as_ref().and_then(|l| l.get(LABEL_LAB).cloned()))
        .collect();
    try_join_all(
        containers
            .iter()
            .filter_map(|c| c.id.as_deref())
            .map(|id| rt.remove(id)),
    )
    .await?;
    if lab.is_none() {
        networks.extend(rt.our_networks().await?);
    }
    networks.sort();
    networks.dedup();
    for n in networks {
        rt.remove_network_if_unused(&n).await?;
    }
    let labs: Vec<String> = labs.into_iter().collect();
    progress.done(
        &format!(
            "{} containers removed{}",
            containers.len(),
            if labs.is_empty() {
                String::new()
            } else {
                format!(" (lab {})", labs.join(", "))
            }
        ),
        t,
    );
    Ok(containers.len())
}
