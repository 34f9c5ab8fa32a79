//! A plan written as containerlab takes it: the topology file and a folder per node.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::*;
use crate::images::BASE_IMAGE;

/// Who deploys a rendered cell, and so what its topology file may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deployer {
    /// `lab up` or `containerlab deploy` on this machine: links carry their addresses.
    Containerlab,
    /// clabernetes: a pod per node, links as VXLAN tunnels. It keeps no link addresses,
    /// so addressing, MTU and the lab's sysctls are in each node's exec and definition.
    Clabernetes,
}

impl Plan {
    pub fn clab_yaml(&self) -> String {
        self.clab_yaml_for(Deployer::Containerlab)
    }

    pub fn clab_yaml_for(&self, deployer: Deployer) -> String {
        let mut s = String::new();
        for l in self.about.lines() {
            let _ = writeln!(s, "# {l}");
        }
        let _ = writeln!(
            s,
            "# Rendered by `lab render` for the cell [{}]; regenerated, not edited.",
            self.cell
        );
        let base = self.image(BASE_IMAGE);
        let _ = writeln!(s, "name: {}", self.lab);
        if deployer == Deployer::Containerlab {
            let _ = writeln!(
                s,
                "mgmt:\n  network: {}-mgmt\n  ipv4-subnet: 172.21.{}.0/24",
                self.lab,
                self.cell.index()
            );
        }
        let _ = writeln!(
            s,
            "topology:\n  defaults:\n    kind: linux\n  kinds:\n    linux:\n      image: {base}\n  nodes:"
        );
        for n in &self.nodes {
            let _ = writeln!(s, "    {}:", n.name);
            let image = self.image(&n.image);
            if image != base {
                let _ = writeln!(s, "      image: {image}");
            }
            use crate::labels::{BGP, BLOCK, PODS, ROLE};
            let mut labels = vec![format!("{ROLE}: {}", n.role)];
            if let Some(b) = n.bgp {
                labels.insert(0, format!("{BGP}: {b}"));
            }
            if !n.blocks.is_empty() {
                let b: Vec<String> = n.blocks.iter().map(|b| b.to_string()).collect();
                labels.push(format!("{BLOCK}: \"{}\"", b.join(",")));
                labels.push(format!("{PODS}: \"{}\"", n.pods));
            }
            let _ = writeln!(s, "      labels: {{{}}}", labels.join(", "));
            if !n.files.is_empty() {
                s.push_str("      binds:\n");
                for (file, _, mount) in &n.files {
                    let _ = writeln!(s, "        - {}/{file}:{mount}:ro", n.name);
                }
            }
            let mut exec = Vec::new();
            if deployer == Deployer::Clabernetes {
                s.push_str("      sysctls:\n");
                for (key, value) in crate::runtime::NODE_SYSCTLS {
                    let _ = writeln!(s, "        {key}: \"{value}\"");
                }
                exec.extend(self.link_exec(n));
            }
            exec.extend(n.exec.iter().cloned());
            if !exec.is_empty() {
                s.push_str("      exec:\n");
                for e in &exec {
                    let _ = writeln!(s, "        - {}", yaml_string(e));
                }
            }
        }
        s.push_str("  links:\n");
        for l in &self.links {
            let _ = writeln!(s, "    - endpoints: [\"{}:{}\", \"{}:{}\"]", l.a.0, l.a.1, l.b.0, l.b.1);
            if deployer == Deployer::Clabernetes {
                continue;
            }
            for (key, v6) in [("ipv4", false), ("ipv6", true)] {
                if let Some((a, b)) = l.addrs.iter().find(|(a, _)| matches!(a, IpNet::V6(_)) == v6) {
                    let _ = writeln!(s, "      {key}: [{a}, {b}]");
                }
            }
        }
        s
    }

    /// Writes the cell's folder: `<dir>/<lab>.clab.yml` and a folder per node with
    /// its configuration. Returns the topology file.
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        self.write_files(dir)?;
        let path = dir.join(format!("{}.clab.yml", self.lab));
        std::fs::write(&path, self.clab_yaml())?;
        Ok(path)
    }
}

impl Plan {
    /// Writes a folder per node with the files bound into it.
    pub(super) fn write_files(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for n in &self.nodes {
            for (file, content, _) in &n.files {
                let d = dir.join(&n.name);
                std::fs::create_dir_all(&d)?;
                std::fs::write(d.join(file), content)?;
            }
        }
        Ok(())
    }
}

/// A command as one YAML scalar: quoted when it holds what YAML would read otherwise.
pub(super) fn yaml_string(s: &str) -> String {
    if s.contains([
        '"', ':', '#', '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '%', '@', '`',
    ]) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        s.to_string()
    }
}
