//! Bringing a lab up and down: management network, containers, links, link addresses,
//! then each node's `exec` commands (which start its daemons), in containerlab's order.
//! A failed `up` removes what it made unless asked to keep it for a look.

use crate::labels::Role;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures::future::try_join_all;

use crate::progress::Progress;
use crate::runtime::{node_of, Runtime, RuntimeError, LABEL_LAB};
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
    #[error(
        "the topology needs about {needed} IPv4 neighbour entries ({largest}), and the host's neighbour table holds {limit} in all, {in_use} in use now (net.ipv4.neigh.default.gc_thresh3: one table for every container, which none can change from inside); sessions would fail with `neighbor table overflow`. Raise it first: `sysctl -w net.ipv4.neigh.default.gc_thresh3={suggest} net.ipv4.neigh.default.gc_thresh2={suggest}`. Nothing was created"
    )]
    NeighbourTable {
        needed: usize,
        largest: String,
        limit: usize,
        in_use: usize,
        suggest: usize,
    },
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
    /// The topology is a part of its lab (`--node-filter`): other nodes of the lab may
    /// be up, and only this part's are replaced or removed.
    pub partial: bool,
}

/// Deploys a topology. Containers exist and their exec commands ran when this returns.
pub async fn up(rt: &Runtime, topo: &Topology, opts: &UpOptions, progress: &Progress) -> Result<(), DeployError> {
    let mut existing = rt.containers(Some(&topo.name)).await?;
    let only = opts
        .partial
        .then(|| topo.nodes.keys().cloned().collect::<BTreeSet<String>>());
    if let Some(only) = &only {
        existing.retain(|c| node_of(c).is_some_and(|n| only.contains(&n)));
    }
    if !existing.is_empty() {
        if opts.reconfigure {
            remove(rt, Some(&topo.name), only.as_ref(), progress).await?;
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
    check_neighbour_table(topo)?;
    for f in &topo.ignored {
        tracing::warn!(field = %f, "containerlab setting not supported by lab; ignored");
    }
    let result = deploy(rt, topo, progress).await;
    if result.is_err() && !opts.keep_on_error {
        let _ = remove(rt, Some(&topo.name), only.as_ref(), progress).await;
    }
    result
}

/// The IPv4 neighbour entries a topology may need at most, and its largest segment:
/// every node on a switch's segment of n ports learns the other n - 1 (a full mesh
/// talks to all of them), a point-to-point link makes two, and each container one
/// for the management network's gateway.
pub fn neighbour_entries(topo: &Topology) -> (usize, String) {
    let mut ports: BTreeMap<&str, usize> = BTreeMap::new();
    let mut p2p = 0;
    for l in &topo.links {
        let switch =
            |e: &crate::topology::Endpoint| topo.nodes.get(&e.node).is_some_and(|n| n.role == Some(Role::Switch));
        match (switch(&l.a), switch(&l.b)) {
            (true, _) => *ports.entry(l.a.node.as_str()).or_default() += 1,
            (_, true) => *ports.entry(l.b.node.as_str()).or_default() += 1,
            _ => p2p += 2,
        }
    }
    let segments: usize = ports.values().map(|n| n * n.saturating_sub(1)).sum();
    let largest = ports
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(sw, n)| format!("{n} nodes on the segment of {sw}: {n} x {}", n - 1))
        .unwrap_or_else(|| "point-to-point links".into());
    (segments + p2p + topo.nodes.len(), largest)
}

/// Refuses, before anything is made, a topology whose neighbour entries would
/// overflow the host's table: 50 nodes in a mesh need 2450, and the default limit
/// is 1024 (FIELD-NOTES). Where the kernel does not say, nothing is checked.
fn check_neighbour_table(topo: &Topology) -> Result<(), DeployError> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let Some(limit) = read("/proc/sys/net/ipv4/neigh/default/gc_thresh3").and_then(|s| s.trim().parse::<usize>().ok())
    else {
        return Ok(());
    };
    // /proc/net/stat/arp_cache: a header, then a line per CPU whose first column
    // (hex) is the table's entries, the same on every line.
    let in_use = read("/proc/net/stat/arp_cache")
        .and_then(|s| {
            s.lines()
                .nth(1)
                .and_then(|l| l.split_whitespace().next().map(str::to_string))
        })
        .and_then(|h| usize::from_str_radix(&h, 16).ok())
        .unwrap_or(0);
    let (needed, largest) = neighbour_entries(topo);
    if needed + in_use > limit {
        let suggest = (needed + in_use + 1024).next_power_of_two();
        return Err(DeployError::NeighbourTable {
            needed,
            largest,
            limit,
            in_use,
            suggest,
        });
    }
    Ok(())
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
    remove(rt, Some(lab), None, progress).await
}

/// Removes some nodes of a lab (`lab down --node-filter`); the management network
/// goes with the last of the lab's containers.
pub async fn down_nodes(
    rt: &Runtime,
    lab: &str,
    nodes: &BTreeSet<String>,
    progress: &Progress,
) -> Result<usize, DeployError> {
    remove(rt, Some(lab), Some(nodes), progress).await
}

/// Removes every container and network this runner made, of every lab.
pub async fn down_all(rt: &Runtime, progress: &Progress) -> Result<usize, DeployError> {
    remove(rt, None, None, progress).await
}

async fn remove(
    rt: &Runtime,
    lab: Option<&str>,
    nodes: Option<&BTreeSet<String>>,
    progress: &Progress,
) -> Result<usize, DeployError> {
    let t = Instant::now();
    let mut containers = rt.containers(lab).await?;
    if let Some(nodes) = nodes {
        containers.retain(|c| node_of(c).is_some_and(|n| nodes.contains(&n)));
    }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn mesh(n: usize) -> Topology {
        let dir = std::env::temp_dir().join(format!("lab-neigh-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut t = String::from("name: m\ntopology:\n  nodes:\n    sw:\n      kind: linux\n      image: podlab/base:latest\n      labels: {lab.role: switch}\n");
        for i in 1..=n {
            t.push_str(&format!(
                "    n{i}:\n      kind: linux\n      image: podlab/base:latest\n"
            ));
        }
        t.push_str("  links:\n");
        for i in 1..=n {
            t.push_str(&format!("    - endpoints: [\"n{i}:eth1\", \"sw:eth{i}\"]\n"));
        }
        let file = dir.join("m.clab.yml");
        std::fs::write(&file, t).unwrap();
        let topo = Topology::load(&file).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        topo
    }

    #[test]
    fn a_mesh_needs_n_times_n_minus_one_neighbour_entries() {
        let (needed, largest) = neighbour_entries(&mesh(50));
        assert_eq!(needed, 50 * 49 + 51);
        assert_eq!(largest, "50 nodes on the segment of sw: 50 x 49");
        let (needed, _) = neighbour_entries(&mesh(3));
        assert_eq!(needed, 6 + 4);
        // What the error says: the limit, the value needed and how to raise it.
        let e = DeployError::NeighbourTable {
            needed: 2501,
            largest,
            limit: 1024,
            in_use: 12,
            suggest: 4096,
        }
        .to_string();
        assert!(
            e.contains("2501 IPv4 neighbour entries (50 nodes on the segment of sw"),
            "{e}"
        );
        assert!(
            e.contains("holds 1024 in all, 12 in use now (net.ipv4.neigh.default.gc_thresh3"),
            "{e}"
        );
        assert!(e.contains("sysctl -w net.ipv4.neigh.default.gc_thresh3=4096"), "{e}");
    }

    #[test]
    fn the_racks_need_two_entries_per_link() {
        let topo =
            Topology::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies/racks/racks.clab.yml")).unwrap();
        assert_eq!(
            neighbour_entries(&topo),
            (5 * 2 + 6, "point-to-point links".to_string())
        );
    }
}
