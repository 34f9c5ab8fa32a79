//! The conformance matrix's cells, rendered into containerlab folders. A cell is a
//! node speaker (ours, BIRD as Calico configures it, FRR), a fabric (a node-to-node
//! mesh, ToRs, or a route reflector, each on FRR, BIRD or GoBGP) and a family (IPv4,
//! or dual stack). Each fabric is described once here with the node speaker as a
//! parameter; each node's BGP intent is written once, in Calico's field names
//! (`intent.rs`), and the daemons' configurations are rendered from it
//! (`configs.rs`). `lab render` writes a cell as a plain folder that `containerlab
//! deploy` takes as well as `lab up`.

mod addressing;
mod clabernetes;
mod configs;
mod fabrics;
pub mod intent;
mod matrix;
mod nodes;
mod plan;
mod policy;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use addressing::*;
pub use addressing::{CLUSTER_CIDR4, CLUSTER_CIDR6, EXTERNAL_CIDR4, EXTERNAL_CIDR6, SERVICE_CIDR4, SERVICE_CIDR6};
use fabrics::*;
pub use matrix::*;
use nodes::*;
pub use plan::*;
pub use writer::Deployer;

/// Where and for whom `lab render` writes cells.
#[derive(Clone, Debug)]
pub struct Output {
    pub deployer: Deployer,
    /// Where the nodes pull their images from; none: the local engine.
    pub registry: Option<crate::registry::Registry>,
    /// The Kubernetes namespace of clabernetes' resources.
    pub namespace: String,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            deployer: Deployer::Containerlab,
            registry: None,
            namespace: "podlab".into(),
        }
    }
}

/// Renders `cells` into `dir/<slug>/`; returns each cell's file to deploy: its
/// containerlab file, or for clabernetes its resources.
pub fn render_all(cells: &[Cell], dir: &Path, out: &Output) -> Result<BTreeMap<Cell, PathBuf>, String> {
    let mut written = BTreeMap::new();
    for c in cells {
        let mut plan = Plan::new(*c)?;
        if let Some(r) = &out.registry {
            plan = plan.with_registry(r.clone());
        }
        let cell_dir = dir.join(c.slug());
        let path = match out.deployer {
            Deployer::Containerlab => plan.write(&cell_dir),
            Deployer::Clabernetes => plan.write_clabernetes(&cell_dir, &out.namespace),
        }
        .map_err(|e| format!("{}: {e}", dir.display()))?;
        written.insert(*c, path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Role;
    use crate::topology::Topology;
    use ipnet::IpNet;

    #[test]
    fn every_cell_renders_a_valid_topology() {
        let dir = std::env::temp_dir().join(format!("lab-render-{}", std::process::id()));
        for cell in Cell::matrix() {
            let path = Plan::new(cell).unwrap().write(&dir.join(cell.slug())).unwrap();
            let t = Topology::load(&path).unwrap_or_else(|e| panic!("{cell}: {e}"));
            assert!(t.name.starts_with("c-"), "{}", t.name);
            let nodes = t.nodes.values().filter(|n| n.role == Some(Role::Node)).count();
            assert!(nodes >= 3, "{cell}: {nodes} nodes");
            for n in t.nodes.values().filter(|n| n.role == Some(Role::Node)) {
                assert_eq!(n.blocks.len(), if cell.dual() { 2 } else { 1 }, "{cell}: {}", n.name);
                let v6 = n.blocks.iter().any(|b| matches!(b, IpNet::V6(_)));
                assert_eq!(v6, cell.v6(), "{cell}: {}", n.name);
            }
            // Every node's files: the header is comment lines to its last, and the
            // speaker's configuration reads back.
            for n in t.nodes.values() {
                let Ok(files) = std::fs::read_dir(dir.join(cell.slug()).join(&n.name)) else {
                    continue;
                };
                for f in files {
                    let f = f.unwrap().path();
                    let text = std::fs::read_to_string(&f).unwrap();
                    let end = text
                        .find("endered by")
                        .unwrap_or_else(|| panic!("{}: no header", f.display()));
                    for line in text[..end].lines() {
                        assert!(
                            line.starts_with(['#', '!']),
                            "{}: header line {line:?} is not a comment",
                            f.display()
                        );
                    }
                    if f.ends_with("speaker.yaml") {
                        // The own document first; Calico resources may follow it.
                        let first = serde_yaml::Deserializer::from_str(&text).next().expect("a document");
                        let v = <serde_yaml::Value as serde::Deserialize>::deserialize(first)
                            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                        assert!(v.get("asNumber").is_some(), "{}", f.display());
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cells_read_back_from_their_names() {
        for cell in Cell::matrix() {
            assert_eq!(cell.fabric.to_string().parse::<Fabric>().unwrap(), cell.fabric);
            assert_eq!(cell.node.as_str().parse::<NodeSpeaker>().unwrap(), cell.node);
        }
        assert_eq!(Cell::matrix().len(), 81);
        assert!("tor/gobgp".parse::<Fabric>().is_err());
    }

    /// In the dual-homed rack a node peers with each ToR from its address on that
    /// ToR's link, in all three node speakers' configurations.
    #[test]
    fn dual_homed_nodes_peer_from_each_link() {
        for node in NodeSpeaker::ALL {
            let plan = Plan::new(Cell {
                node,
                fabric: Fabric::DualTor(Router::Frr),
                family: Family::Dual,
            })
            .unwrap();
            let n2 = plan.nodes.iter().find(|n| n.name == "n2").unwrap();
            let intent = n2.intent.as_ref().unwrap();
            let pairs: Vec<(String, String)> = intent
                .peers
                .iter()
                .map(|p| (p.peer_ip.to_string(), p.source_address.to_string()))
                .collect();
            let want = [
                ("10.1.2.0", "10.1.2.1"),
                ("fd00:1:2::1", "fd00:1:2::2"),
                ("10.2.2.0", "10.2.2.1"),
                ("fd00:2:2::1", "fd00:2:2::2"),
            ];
            assert_eq!(pairs, want.map(|(a, b)| (a.to_string(), b.to_string())), "{node:?}");
            let text = &plan.node_files("n2", &[]).unwrap()[0].1;
            match node {
                NodeSpeaker::Frr => assert!(text.contains("neighbor 10.2.2.0 update-source 10.2.2.1"), "{text}"),
                NodeSpeaker::Bird => assert!(
                    text.contains("neighbor 10.2.2.0 as 65002;\n  source address 10.2.2.1;"),
                    "{text}"
                ),
                NodeSpeaker::Speaker => assert!(text.contains("sourceAddress: 10.2.2.1"), "{text}"),
            }
            let links: Vec<String> = plan
                .links
                .iter()
                .filter(|l| l.b.0 == "n2")
                .map(|l| format!("{}:{}", l.a.0, l.b.1))
                .collect();
            assert_eq!(links, ["tor1:eth1", "tor2:eth2"]);
        }
    }

    /// The `bfd` change as each node speaker reads it, on n1's two mesh sessions.
    #[test]
    fn policy_tweaks_reach_every_node_speaker() {
        let files = |node, tweak| {
            let plan = Plan::new(Cell {
                node,
                fabric: Fabric::Mesh,
                family: Family::Dual,
            })
            .unwrap();
            plan.node_files("n1", &[tweak]).unwrap()[0].1.clone()
        };
        let speaker = files(NodeSpeaker::Speaker, Tweak::ImportFilter);
        assert!(
            speaker.contains("kind: BGPFilter\nmetadata:\n  name: pol-import\nspec:\n"),
            "{speaker}"
        );
        assert!(
            speaker.contains("  importV4:\n  - action: Reject\n    matchOperator: Equal\n    cidr: 10.244.220.0/26"),
            "{speaker}"
        );
        let bird = files(NodeSpeaker::Bird, Tweak::ExportFilter);
        assert!(bird.contains("export filter export_Node_10_0_0_100"), "{bird}");
        let frr = files(NodeSpeaker::Frr, Tweak::Communities);
        assert!(frr.contains("set large-community 65000:1:2 additive"), "{frr}");
    }

    #[test]
    fn bfd_tweak_reaches_every_node_speaker() {
        let files = |node| {
            let plan = Plan::new(Cell {
                node,
                fabric: Fabric::Mesh,
                family: Family::V4,
            })
            .unwrap();
            let plain = plan.node_files("n1", &[]).unwrap()[0].1.clone();
            (plain, plan.node_files("n1", &[Tweak::Bfd]).unwrap()[0].1.clone())
        };
        let (plain, speaker) = files(NodeSpeaker::Speaker);
        assert!(!plain.contains("bfd"), "{plain}");
        assert!(
            speaker.contains("  bfd:\n    minRx: 300\n    minTx: 300\n    multiplier: 3"),
            "{speaker}"
        );
        let (plain, bird) = files(NodeSpeaker::Bird);
        assert!(!plain.contains("bfd"), "{plain}");
        assert!(
            bird.contains(
                "protocol bfd {\n  interface \"*\" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; };"
            ),
            "{bird}"
        );
        assert_eq!(bird.matches("bfd on;").count(), 2, "{bird}");
        let (plain, frr) = files(NodeSpeaker::Frr);
        assert!(!plain.contains("bfd"), "{plain}");
        assert_eq!(frr.matches(" bfd\n").count(), 2, "{frr}");
    }

    #[test]
    fn one_intent_three_configurations() {
        let plan = Plan::new(Cell {
            node: NodeSpeaker::Bird,
            fabric: Fabric::Mesh,
            family: Family::Dual,
        })
        .unwrap();
        let n1 = &plan.nodes[1];
        let bird = &n1.files[0].1;
        // Calico's mesh: the lower address is passive, one session per family.
        assert!(
            bird.contains("protocol bgp Mesh_10_0_0_12 from bgp_template {"),
            "{bird}"
        );
        assert!(
            bird.contains("protocol bgp Mesh_fd00__12 from bgp_template6 {"),
            "{bird}"
        );
        assert!(bird.contains("passive on;"), "{bird}");
        assert!(
            bird.contains("if ( net = fd00:244:0:1::/122 ) then { accept; }"),
            "{bird}"
        );
        let frr = Plan::new(Cell {
            node: NodeSpeaker::Frr,
            fabric: Fabric::Tor(Router::Frr),
            family: Family::Dual,
        })
        .unwrap();
        let conf = &frr.nodes.iter().find(|n| n.name == "n1").unwrap().files[0].1;
        assert!(
            conf.contains("ip prefix-list POOL seq 6 deny 10.244.1.0/26 le 32"),
            "{conf}"
        );
        assert!(conf.contains("  no neighbor fd00:1:1::1 activate"), "{conf}");
        let speaker = Plan::new(Cell {
            node: NodeSpeaker::Speaker,
            fabric: Fabric::Rr(Router::Gobgp),
            family: Family::V4,
        })
        .unwrap();
        let yaml = &speaker.nodes.iter().find(|n| n.name == "n1").unwrap().files[0].1;
        assert!(yaml.contains("peerIP: 10.0.0.2"), "{yaml}");
        assert!(yaml.contains("routerID: 10.0.0.11"), "{yaml}");
    }
}
