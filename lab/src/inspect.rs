//! `lab inspect`: the nodes of deployed labs, in containerlab's shape. The JSON is
//! what `containerlab inspect -f json` prints (an object keyed by lab name, each a
//! list of nodes with `lab_name`, `labPath`, `absLabPath`, `name`, `container_id`,
//! `image`, `kind`, `group`, `state`, `status`, `ipv4_address`, `ipv6_address`,
//! `owner`), so a script written for containerlab reads it unchanged; what `lab`
//! adds (the node's name in the topology, its BGP implementation and role, its
//! interfaces) is under `podlab`, a key containerlab does not use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bollard::models::ContainerSummary;
use serde::Serialize;

use crate::runtime::{
    name_of, node_of, Runtime, RuntimeError, LABEL_GROUP, LABEL_KIND, LABEL_LAB, LABEL_OWNER, LABEL_TOPO,
};

/// One node, as containerlab's `inspect -f json` has it, and `lab`'s additions.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub lab_name: String,
    #[serde(rename = "labPath")]
    pub lab_path: String,
    #[serde(rename = "absLabPath")]
    pub abs_lab_path: String,
    /// The container's name.
    pub name: String,
    pub container_id: String,
    pub image: String,
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub state: String,
    pub status: String,
    /// Management addresses with their prefix length; `N/A` when there is none.
    pub ipv4_address: String,
    pub ipv6_address: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub owner: String,
    pub podlab: Extra,
}

/// What `lab` adds to containerlab's fields.
#[derive(Debug, Clone, Serialize)]
pub struct Extra {
    /// The node's name in the topology file.
    pub node: String,
    /// The BGP implementation (`lab.bgp` label).
    pub bgp: Option<String>,
    /// Its role in the fabric (`lab.role` label).
    pub role: Option<String>,
    /// Interfaces with their addresses (not link-local ones); empty when not running.
    pub interfaces: Vec<Iface>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Iface {
    pub name: String,
    pub state: String,
    pub addresses: Vec<String>,
}

/// The nodes of one lab (or of every lab `lab` deployed), restricted to `nodes` when
/// given, sorted by lab and container name.
pub async fn rows(rt: &Runtime, lab: Option<&str>, nodes: Option<&BTreeSet<String>>) -> Result<Vec<Row>, RuntimeError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut rows = Vec::new();
    for c in rt.containers(lab).await? {
        let mut row = row(&c, &cwd);
        if nodes.is_some_and(|n| !n.contains(&row.podlab.node)) {
            continue;
        }
        if row.state == "running" {
            row.podlab.interfaces = interfaces(rt, &row.name).await.unwrap_or_default();
        }
        rows.push(row);
    }
    rows.sort_by(|a, b| (&a.lab_name, &a.name).cmp(&(&b.lab_name, &b.name)));
    Ok(rows)
}

fn row(c: &ContainerSummary, cwd: &Path) -> Row {
    let labels = c.labels.clone().unwrap_or_default();
    let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
    let topo = label(LABEL_TOPO);
    let endpoint = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .and_then(|n| {
            n.values()
                .find(|e| e.ip_address.as_deref().is_some_and(|a| !a.is_empty()))
        });
    let with_len = |addr: Option<&String>, len: Option<i64>| match (addr, len) {
        (Some(a), Some(l)) if !a.is_empty() => format!("{a}/{l}"),
        _ => "N/A".to_string(),
    };
    Row {
        lab_name: label(LABEL_LAB),
        lab_path: relative(&topo, cwd),
        abs_lab_path: topo,
        name: name_of(c).unwrap_or_default(),
        container_id: c.id.as_deref().unwrap_or("").chars().take(12).collect(),
        image: c.image.clone().unwrap_or_default(),
        kind: label(LABEL_KIND),
        group: label(LABEL_GROUP),
        state: c.state.as_ref().map(|s| s.to_string()).unwrap_or_default(),
        status: c.status.clone().unwrap_or_default(),
        ipv4_address: with_len(
            endpoint.and_then(|e| e.ip_address.as_ref()),
            endpoint.and_then(|e| e.ip_prefix_len),
        ),
        ipv6_address: with_len(
            endpoint.and_then(|e| e.global_ipv6_address.as_ref()),
            endpoint.and_then(|e| e.global_ipv6_prefix_len),
        ),
        owner: label(LABEL_OWNER),
        podlab: Extra {
            node: node_of(c).unwrap_or_default(),
            bgp: labels.get(crate::labels::BGP).cloned(),
            role: labels.get(crate::labels::ROLE).cloned(),
            interfaces: Vec::new(),
        },
    }
}

/// The topology file's path relative to the current folder when that is shorter, as
/// containerlab shows it.
fn relative(path: &str, cwd: &Path) -> String {
    match Path::new(path).strip_prefix(cwd) {
        Ok(rel) if !path.is_empty() => rel.display().to_string(),
        _ => path.to_string(),
    }
}

/// containerlab's JSON: `{"<lab>": [nodes...]}`, `{}` when there are none.
pub fn json(rows: &[Row]) -> Result<String, serde_json::Error> {
    let mut labs: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        labs.entry(r.lab_name.as_str()).or_default().push(r);
    }
    serde_json::to_string_pretty(&labs)
}

/// The table: one row per node, the lab's topology file first when several labs show.
pub fn table(rows: &[Row], all: bool) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let ifs: Vec<String> = r
                .podlab
                .interfaces
                .iter()
                .filter(|i| i.name != "lo")
                .map(|i| format!("{}[{}]", i.name, i.addresses.join(" ")))
                .collect();
            let mut row = Vec::new();
            if all {
                row.extend([r.lab_path.clone(), r.lab_name.clone()]);
            }
            row.extend([
                r.podlab.node.clone(),
                r.name.clone(),
                r.state.clone(),
                r.image.clone(),
                r.podlab.bgp.clone().unwrap_or_else(|| "-".into()),
                r.podlab.role.clone().unwrap_or_else(|| "-".into()),
                r.ipv4_address.clone(),
                ifs.join(" "),
            ]);
            row
        })
        .collect();
    let mut header = Vec::new();
    if all {
        header.extend(["TOPOLOGY", "LAB"]);
    }
    header.extend([
        "NODE",
        "CONTAINER",
        "STATE",
        "IMAGE",
        "BGP",
        "ROLE",
        "MGMT IPV4",
        "INTERFACES",
    ]);
    crate::report::table(&header, &body)
}

async fn interfaces(rt: &Runtime, container: &str) -> Result<Vec<Iface>, RuntimeError> {
    let cmd: Vec<String> = ["ip", "-j", "addr", "show"].map(String::from).to_vec();
    let out = rt.exec(container, &cmd).await?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|i| Iface {
            name: i["ifname"].as_str().unwrap_or("").to_string(),
            state: i["operstate"].as_str().unwrap_or("").to_string(),
            addresses: i["addr_info"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|x| x["scope"].as_str() != Some("link"))
                .map(|x| format!("{}/{}", x["local"].as_str().unwrap_or(""), x["prefixlen"]))
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Row {
        Row {
            lab_name: "mesh3".into(),
            lab_path: "topologies/mesh3/mesh3.clab.yml".into(),
            abs_lab_path: "/w/topologies/mesh3/mesh3.clab.yml".into(),
            name: "clab-mesh3-n1".into(),
            container_id: "0123456789ab".into(),
            image: "podlab/base:latest".into(),
            kind: "linux".into(),
            group: String::new(),
            state: "running".into(),
            status: "Up 2 minutes".into(),
            ipv4_address: "172.20.20.2/24".into(),
            ipv6_address: "N/A".into(),
            owner: "root".into(),
            podlab: Extra {
                node: "n1".into(),
                bgp: Some("bird".into()),
                role: Some("node".into()),
                interfaces: vec![],
            },
        }
    }

    /// The fields a containerlab script reads, under containerlab's names, grouped by lab.
    #[test]
    fn json_is_containerlabs_shape() {
        let v: serde_json::Value = serde_json::from_str(&json(&[sample()]).unwrap()).unwrap();
        let n = &v["mesh3"][0];
        for (k, want) in [
            ("lab_name", "mesh3"),
            ("labPath", "topologies/mesh3/mesh3.clab.yml"),
            ("absLabPath", "/w/topologies/mesh3/mesh3.clab.yml"),
            ("name", "clab-mesh3-n1"),
            ("container_id", "0123456789ab"),
            ("kind", "linux"),
            ("state", "running"),
            ("ipv4_address", "172.20.20.2/24"),
            ("ipv6_address", "N/A"),
            ("owner", "root"),
        ] {
            assert_eq!(n[k], want, "{k}");
        }
        assert_eq!(n["podlab"]["node"], "n1");
        assert!(n.get("group").is_none());
        assert_eq!(json(&[]).unwrap(), "{}");
    }

    #[test]
    fn paths_are_shown_relative_to_the_current_folder() {
        assert_eq!(relative("/w/t/a.clab.yml", Path::new("/w")), "t/a.clab.yml");
        assert_eq!(relative("/x/a.clab.yml", Path::new("/w")), "/x/a.clab.yml");
    }
}
