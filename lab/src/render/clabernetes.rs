//! A cell written for clabernetes (containerlab on Kubernetes: a pod per node, links as
//! VXLAN tunnels between pods), from its own documentation and code:
//!
//! - the containerlab file is the Topology resource's `spec.definition.containerlab`;
//!   clabernetes reads it into its own types (`util/containerlab/types.go`) and writes a
//!   one-node file per pod from them, so what they lack is dropped: a link keeps
//!   `endpoints`, `labels`, `vars` and `mtu`, not `ipv4`/`ipv6`. Addresses and MTU are
//!   therefore commands in each node's `exec`, which it keeps, and the lab's sysctls
//!   are the nodes' `sysctls`;
//! - files bound into nodes come from ConfigMaps (`spec.deployment.filesFromConfigMap`):
//!   a relative `filePath` is mounted under `/clabernetes/`, beside the pod's topology
//!   file, so the binds keep their relative paths (clabverter does the same);
//! - images come from a registry (`lab images --push`), named `naming: prefixed`: node
//!   `n1` of topology `c-speaker-mesh-v4` is Deployment `c-speaker-mesh-v4-n1`, its
//!   container in the pod's own Docker `clab-clabernetes-n1-n1`.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_yaml::{Mapping, Value};

use super::writer::Deployer;
use super::*;

/// The MTU of every lab link under clabernetes: VXLAN costs 50 bytes, over a pod
/// network that may itself be an overlay (1450 under Calico's VXLAN).
pub const MTU: u32 = 1400;

fn map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Value::from(k), v);
    }
    Value::Mapping(m)
}

impl Plan {
    /// The commands that give `n` what a containerlab link's `ipv4`/`ipv6` would: the MTU
    /// of each of its link interfaces, then the links' addresses.
    pub(super) fn link_exec(&self, n: &PlanNode) -> Vec<String> {
        let mut ifaces: Vec<&str> = Vec::new();
        for l in &self.links {
            for end in [&l.a, &l.b] {
                if end.0 == n.name && !ifaces.contains(&end.1.as_str()) {
                    ifaces.push(&end.1);
                }
            }
        }
        let mut exec: Vec<String> = ifaces
            .iter()
            .map(|i| format!("ip link set dev {i} mtu {MTU}"))
            .collect();
        for (iface, addr) in self.link_addrs(&n.name) {
            exec.push(match addr {
                IpNet::V4(_) => format!("ip addr add {addr} dev {iface}"),
                IpNet::V6(_) => format!("ip -6 addr add {addr} dev {iface} nodad"),
            });
        }
        exec
    }

    /// The name of the ConfigMap holding node `node`'s files.
    pub fn config_map(&self, node: &str) -> String {
        format!("{}-{node}-files", self.lab)
    }

    /// The cell as clabernetes takes it, one YAML stream for `kubectl apply -f`: a
    /// ConfigMap per node with files, then the Topology.
    pub fn clabernetes_yaml(&self, namespace: &str) -> String {
        let mut docs = Vec::new();
        let mut files = Mapping::new();
        for n in self.nodes.iter().filter(|n| !n.files.is_empty()) {
            let mut data = Mapping::new();
            let mut mounts = Vec::new();
            for (file, content, _) in &n.files {
                data.insert(Value::from(file.as_str()), Value::from(content.as_str()));
                mounts.push(map(vec![
                    ("filePath", Value::from(format!("{}/{file}", n.name))),
                    ("configMapName", Value::from(self.config_map(&n.name))),
                    ("configMapPath", Value::from(file.as_str())),
                    ("mode", Value::from("read")),
                ]));
            }
            files.insert(Value::from(n.name.as_str()), Value::Sequence(mounts));
            docs.push(map(vec![
                ("apiVersion", Value::from("v1")),
                ("kind", Value::from("ConfigMap")),
                (
                    "metadata",
                    map(vec![
                        ("name", Value::from(self.config_map(&n.name))),
                        ("namespace", Value::from(namespace)),
                    ]),
                ),
                ("data", Value::Mapping(data)),
            ]));
        }
        docs.push(map(vec![
            ("apiVersion", Value::from("clabernetes.containerlab.dev/v1alpha1")),
            ("kind", Value::from("Topology")),
            (
                "metadata",
                map(vec![
                    ("name", Value::from(self.lab.as_str())),
                    ("namespace", Value::from(namespace)),
                ]),
            ),
            (
                "spec",
                map(vec![
                    ("naming", Value::from("prefixed")),
                    (
                        "definition",
                        map(vec![(
                            "containerlab",
                            Value::from(self.clab_yaml_for(Deployer::Clabernetes)),
                        )]),
                    ),
                    ("deployment", map(vec![("filesFromConfigMap", Value::Mapping(files))])),
                    // The lab's probes go through `kubectl exec`; nothing to expose.
                    ("expose", map(vec![("disableExpose", Value::from(true))])),
                ]),
            ),
        ]));
        let mut out = format!(
            "# The cell [{}] for clabernetes: `kubectl apply -f` this file (see the README).\n# Rendered by `lab render --for clabernetes`; regenerated, not edited.\n",
            self.cell
        );
        for d in docs {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(&d).expect("a mapping of strings serializes"));
        }
        out
    }

    /// Writes `<dir>/<lab>.c9s.yaml` (for `kubectl apply`), and beside it the containerlab
    /// file it holds and the nodes' folders, to read or check. Returns the first.
    pub fn write_clabernetes(&self, dir: &Path, namespace: &str) -> std::io::Result<PathBuf> {
        self.write_files(dir)?;
        std::fs::write(
            dir.join(format!("{}.clab.yml", self.lab)),
            self.clab_yaml_for(Deployer::Clabernetes),
        )?;
        let path = dir.join(format!("{}.c9s.yaml", self.lab));
        std::fs::write(&path, self.clabernetes_yaml(namespace))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use crate::topology::Topology;
    use serde::Deserialize;

    /// The keys clabernetes reads from a containerlab file (its
    /// `util/containerlab/types.go`): anything else is dropped on the way to the pods.
    fn kept(path: &str) -> Option<&'static [&'static str]> {
        Some(match path {
            "" => &["name", "prefix", "mgmt", "topology", "debug"],
            "topology" => &["defaults", "kinds", "nodes", "links"],
            "node" => &[
                "kind",
                "group",
                "type",
                "startup-config",
                "startup-delay",
                "enforce-startup-config",
                "auto-remove",
                "config",
                "image",
                "image-pull-policy",
                "license",
                "position",
                "entrypoint",
                "cmd",
                "SANs",
                "exec",
                "binds",
                "ports",
                "mgmt-ipv4",
                "mgmt-ipv6",
                "publish",
                "env",
                "env-files",
                "user",
                "labels",
                "network-mode",
                "sandbox",
                "kernel",
                "runtime",
                "cpu",
                "cpu-set",
                "memory",
                "sysctls",
                "extras",
                "wait-for",
                "dns",
                "certificate",
                "healthcheck",
                "aliases",
                "components",
            ],
            "link" => &["endpoints", "labels", "vars", "mtu", "type"],
            _ => return None,
        })
    }

    fn keys(v: &Value) -> Vec<String> {
        v.as_mapping()
            .map(|m| m.keys().filter_map(|k| k.as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    /// Every key of a containerlab definition that clabernetes would drop.
    fn dropped(def: &Value) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |what: &str, at: &str, v: &Value| {
            let allowed = kept(what).unwrap();
            for k in keys(v) {
                if !allowed.contains(&k.as_str()) {
                    out.push(format!("{at}.{k}"));
                }
            }
        };
        check("", "", def);
        let topo = &def["topology"];
        check("topology", "topology", topo);
        check("node", "defaults", &topo["defaults"]);
        for kind in keys(&topo["kinds"]) {
            check("node", &format!("kinds.{kind}"), &topo["kinds"][kind.as_str()]);
        }
        for node in keys(&topo["nodes"]) {
            check("node", &format!("nodes.{node}"), &topo["nodes"][node.as_str()]);
        }
        for (i, l) in topo["links"].as_sequence().into_iter().flatten().enumerate() {
            check("link", &format!("links[{i}]"), l);
        }
        out
    }

    #[test]
    fn every_cell_keeps_on_clabernetes_what_it_has_on_containerlab() {
        let registry = Registry::parse("registry.example:5000/lab").unwrap();
        let dir = std::env::temp_dir().join(format!("lab-c9s-{}", std::process::id()));
        for cell in Cell::matrix() {
            let plan = Plan::new(cell).unwrap().with_registry(registry.clone());
            let text = plan.clabernetes_yaml("podlab");
            let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
                .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{cell}: {e}")))
                .collect();
            let topo = docs.iter().find(|d| d["kind"] == "Topology").expect("a Topology");
            assert_eq!(topo["apiVersion"], "clabernetes.containerlab.dev/v1alpha1");
            let src = topo["spec"]["definition"]["containerlab"].as_str().unwrap();
            let def: Value = serde_yaml::from_str(src).unwrap();
            assert_eq!(dropped(&def), Vec::<String>::new(), "{cell}: keys clabernetes drops");

            // Every node's image is the registry's.
            let nodes = &def["topology"]["nodes"];
            for n in &plan.nodes {
                let image = nodes[n.name.as_str()]["image"]
                    .as_str()
                    .or(def["topology"]["kinds"]["linux"]["image"].as_str())
                    .unwrap();
                assert!(
                    image.starts_with("registry.example:5000/lab/podlab/"),
                    "{cell} {}: {image}",
                    n.name
                );
            }

            // Every link address and MTU is in its node's exec, before the daemons start.
            for n in &plan.nodes {
                let exec: Vec<&str> = nodes[n.name.as_str()]["exec"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.as_str())
                    .collect();
                for (iface, addr) in &plan.link_addrs(&n.name) {
                    let at = exec
                        .iter()
                        .position(|e| e.contains(&format!("addr add {addr} dev {iface}")))
                        .unwrap_or_else(|| panic!("{cell} {}: no address {addr} on {iface} in {exec:?}", n.name));
                    if let Some(first) = n.exec.first() {
                        let daemon = exec.iter().position(|e| e == first).unwrap();
                        assert!(at < daemon, "{cell} {}: {addr} after `{first}`", n.name);
                    }
                }
                for l in plan.links.iter().filter(|l| l.a.0 == n.name || l.b.0 == n.name) {
                    let iface = if l.a.0 == n.name { &l.a.1 } else { &l.b.1 };
                    let mtu = format!("ip link set dev {iface} mtu {MTU}");
                    assert!(exec.contains(&mtu.as_str()), "{cell} {}: no `{mtu}`", n.name);
                }
            }

            // Every bound file comes from a ConfigMap holding it, at the bind's path.
            let mounts = &topo["spec"]["deployment"]["filesFromConfigMap"];
            for n in &plan.nodes {
                for (file, content, _) in &n.files {
                    let path = format!("{}/{file}", n.name);
                    let m = mounts[n.name.as_str()]
                        .as_sequence()
                        .and_then(|s| s.iter().find(|m| m["filePath"] == path.as_str()))
                        .unwrap_or_else(|| panic!("{cell}: no mount of {path}"));
                    let cm = docs
                        .iter()
                        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == m["configMapName"])
                        .unwrap_or_else(|| panic!("{cell}: no ConfigMap {:?}", m["configMapName"]));
                    let key = m["configMapPath"].as_str().unwrap();
                    assert_eq!(cm["data"][key].as_str(), Some(content.as_str()), "{cell}: {path}");
                    assert!(src.contains(&format!("- {path}:")), "{cell}: {path} not bound");
                }
            }

            // And the definition is a topology `lab` reads, with no address on a link.
            let path = plan.write_clabernetes(&dir.join(cell.slug()), "podlab").unwrap();
            assert!(path.to_string_lossy().ends_with(".c9s.yaml"));
            let t = Topology::load(&dir.join(cell.slug()).join(format!("{}.clab.yml", plan.lab)))
                .unwrap_or_else(|e| panic!("{cell}: {e}"));
            assert!(
                t.links.iter().all(|l| l.a.addrs.is_empty() && l.b.addrs.is_empty()),
                "{cell}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_check_sees_a_dropped_key() {
        // The control: the containerlab file of `lab up` carries link addresses (a
        // cell with point-to-point links: ToRs).
        let cell = Cell::matrix()
            .into_iter()
            .find(|c| Plan::new(*c).is_ok_and(|p| p.links.iter().any(|l| !l.addrs.is_empty())))
            .expect("a cell with addressed links");
        let plan = Plan::new(cell).unwrap();
        let def: Value = serde_yaml::from_str(&plan.clab_yaml()).unwrap();
        let d = dropped(&def);
        assert!(d.iter().any(|k| k.ends_with(".ipv4")), "{d:?}");
    }
}
