//! Topology files in containerlab's format (`*.clab.yml`): parsing, inheritance of
//! `defaults` and `kinds`, and validation before anything is created. Every error names
//! the file, the line and the field, so a user can fix it without guessing.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::labels::{self, Role};

mod locate;
mod parse;
mod raw;
mod schema;
pub mod vars;

use parse::Parser;

/// The default MTU containerlab gives veth links.
pub const DEFAULT_MTU: u32 = 9500;

/// A topology file that failed to load or validate.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}:{line}: {field}: {msg}")]
    Invalid {
        file: PathBuf,
        line: usize,
        field: String,
        msg: String,
    },
}

impl TopologyError {
    /// The line the error points at (1-based), when it points at one.
    pub fn line(&self) -> Option<usize> {
        match self {
            TopologyError::Invalid { line, .. } => Some(*line),
            TopologyError::Read { .. } => None,
        }
    }
}

/// A topology ready to deploy: inheritance resolved, paths absolute, names checked.
#[derive(Debug, Clone)]
pub struct Topology {
    pub name: String,
    pub file: PathBuf,
    pub prefix: Option<String>,
    pub mgmt: Mgmt,
    pub nodes: BTreeMap<String, Node>,
    pub links: Vec<Link>,
    /// Keys containerlab accepts that this runner ignores, as `field` paths.
    pub ignored: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mgmt {
    pub network: String,
    pub ipv4_subnet: Ipv4Net,
    pub ipv6_subnet: Option<Ipv6Net>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub kind: String,
    pub image: String,
    pub binds: Vec<Bind>,
    pub env: BTreeMap<String, String>,
    pub exec: Vec<String>,
    pub cmd: Option<String>,
    pub entrypoint: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub sysctls: BTreeMap<String, String>,
    pub mgmt_ipv4: Option<Ipv4Addr>,
    pub mgmt_ipv6: Option<Ipv6Addr>,
    /// Its part in the fabric (`lab.role`), checked when the file is read.
    pub role: Option<Role>,
    /// A Kubernetes node's pod blocks (`lab.block`), read once here.
    pub blocks: Vec<IpNet>,
    /// Line of the node's key in the file, for later errors about this node.
    pub line: usize,
}

impl Node {
    /// The BGP implementation the node runs (`lab.bgp` label), if any.
    pub fn bgp(&self) -> Option<&str> {
        self.labels.get(labels::BGP).map(String::as_str)
    }

    /// Whether its kernel follows BGP, so that it must follow every route change:
    /// a daemon runs there and its role programs the kernel (the one rule of
    /// [`Role::programs_kernel`]).
    pub fn follows_routes(&self) -> bool {
        self.bgp().is_some() && self.role.is_some_and(Role::programs_kernel)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub host: PathBuf,
    pub container: String,
    pub options: Option<String>,
}

impl Bind {
    /// The bind in Docker's `HostConfig.Binds` form.
    pub fn docker(&self) -> String {
        match &self.options {
            Some(o) => format!("{}:{}:{}", self.host.display(), self.container, o),
            None => format!("{}:{}", self.host.display(), self.container),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub node: String,
    pub iface: String,
    /// Addresses the runner puts on the interface (containerlab's `ipv4`/`ipv6` lists).
    pub addrs: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub a: Endpoint,
    pub b: Endpoint,
    pub mtu: u32,
    pub line: usize,
}

impl Topology {
    /// Reads and validates a topology file. Nothing is created.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let src = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Topology::parse(&src, &file)
    }

    /// Parses topology text as if it came from `file` (binds resolve beside it), its
    /// `${VAR}`s expanded from the process environment.
    pub fn parse(src: &str, file: &Path) -> Result<Topology, TopologyError> {
        Topology::parse_with(src, file, &vars::process_env)
    }

    /// Parses topology text with the variables' values read from `env`.
    pub fn parse_with(src: &str, file: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Topology, TopologyError> {
        let src = vars::expand(src, env).map_err(|e| TopologyError::Invalid {
            file: file.to_path_buf(),
            line: e.line,
            field: e.expr,
            msg: e.msg,
        })?;
        Parser { src: &src, file }.parse()
    }

    /// The topology restricted to `names` (containerlab's `--node-filter`): the other
    /// nodes and every link that touches one of them are left out. A name that is not
    /// a node is an error, so a typo does not deploy or remove nothing.
    pub fn filtered(&self, names: &[String]) -> Result<Topology, String> {
        if let Some(bad) = names.iter().find(|n| !self.nodes.contains_key(*n)) {
            return Err(format!(
                "--node-filter: {}: no node {bad:?} (nodes: {})",
                self.file.display(),
                self.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        let mut t = self.clone();
        t.nodes.retain(|n, _| names.contains(n));
        t.links
            .retain(|l| names.contains(&l.a.node) && names.contains(&l.b.node));
        Ok(t)
    }

    /// The container name of a node, as containerlab forms it from the prefix.
    pub fn container_name(&self, node: &str) -> String {
        match self.prefix.as_deref() {
            None => format!("clab-{}-{}", self.name, node),
            Some("") => node.to_string(),
            Some("__lab-name") => format!("{}-{}", self.name, node),
            Some(p) => format!("{}-{}-{}", p, self.name, node),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::locate::{locate, Step};
    use super::*;

    fn parse(src: &str) -> Result<Topology, TopologyError> {
        Topology::parse(src, Path::new("/nonexistent/t.clab.yml"))
    }

    const GOOD: &str = r#"
name: t1
mgmt:
  network: t1-mgmt
  ipv4-subnet: 172.30.9.0/24
topology:
  defaults:
    kind: linux
    labels:
      lab.role: node
  kinds:
    linux:
      image: podlab/base:latest
  nodes:
    a:
      labels:
        lab.bgp: bird
      exec:
        - ip route add blackhole 10.244.0.0/26
    b:
      mgmt-ipv4: 172.30.9.12
      image: podlab/speaker:latest
      labels: {lab.bgp: speaker, lab.role: tor}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
      ipv4: [10.0.0.0/31, 10.0.0.1/31]
    - endpoints: ["a:eth2", "b:eth2"]
      mtu: 1500
"#;

    #[test]
    fn good_file_resolves_inheritance() {
        let t = parse(GOOD).unwrap();
        assert_eq!(t.name, "t1");
        assert_eq!(t.mgmt.network, "t1-mgmt");
        let a = &t.nodes["a"];
        assert_eq!(a.image, "podlab/base:latest");
        assert_eq!(a.bgp(), Some("bird"));
        assert_eq!(a.role, Some(Role::Node));
        assert_eq!(a.line, 15);
        let b = &t.nodes["b"];
        assert_eq!(b.image, "podlab/speaker:latest");
        assert_eq!(b.role, Some(Role::Tor));
        assert_eq!(b.mgmt_ipv4, Some("172.30.9.12".parse().unwrap()));
        assert_eq!(t.links.len(), 2);
        assert_eq!(t.links[0].mtu, DEFAULT_MTU);
        assert_eq!(t.links[0].a.addrs, vec!["10.0.0.0/31".parse::<IpNet>().unwrap()]);
        assert_eq!(t.links[1].mtu, 1500);
        assert_eq!(t.links[1].line, 27);
        assert_eq!(t.container_name("a"), "clab-t1-a");
    }

    #[test]
    fn prefixes_name_containers_like_containerlab() {
        let mut t = parse(GOOD).unwrap();
        t.prefix = Some(String::new());
        assert_eq!(t.container_name("a"), "a");
        t.prefix = Some("__lab-name".into());
        assert_eq!(t.container_name("a"), "t1-a");
        t.prefix = Some("x".into());
        assert_eq!(t.container_name("a"), "x-t1-a");
    }

    fn expect_err(src: &str, line: usize, field: &str, needle: &str) {
        let e = parse(src).expect_err("must be refused");
        let s = e.to_string();
        assert!(s.starts_with("/nonexistent/t.clab.yml:"), "{s}");
        assert_eq!(e.line(), Some(line), "{s}");
        assert!(s.contains(field), "field {field:?} missing in: {s}");
        assert!(s.contains(needle), "{needle:?} missing in: {s}");
    }

    #[test]
    fn link_to_unknown_node() {
        let src = GOOD.replace("[\"a:eth2\", \"b:eth2\"]", "[\"a:eth2\", \"c:eth2\"]");
        expect_err(&src, 27, "topology.links[1].endpoints[1]", "names node \"c\"");
    }

    #[test]
    fn duplicate_endpoint() {
        let src = GOOD.replace("[\"a:eth2\", \"b:eth2\"]", "[\"a:eth1\", \"b:eth2\"]");
        expect_err(
            &src,
            27,
            "topology.links[1].endpoints[0]",
            "already used by topology.links[0]",
        );
    }

    #[test]
    fn missing_bind_file() {
        let src = GOOD.replace(
            "        lab.bgp: bird\n",
            "        lab.bgp: bird\n      binds:\n        - a/bird.conf:/etc/bird/bird.conf:ro\n",
        );
        expect_err(&src, 19, "topology.nodes.a.binds[0]", "does not exist");
    }

    #[test]
    fn a_key_twice_is_refused_where_it_comes_again() {
        let src = GOOD.replace("  links:\n", "    a:\n      labels: {lab.bgp: frr}\n  links:\n");
        expect_err(&src, 24, "topology.nodes", "a is defined twice (first at line 15)");
        // In a flow mapping too, at its line.
        let src = GOOD.replace("{lab.bgp: speaker, lab.role: tor}", "{lab.bgp: speaker, lab.bgp: frr}");
        expect_err(&src, 23, "labels", "lab.bgp");
    }

    #[test]
    fn a_link_gives_an_address_per_endpoint_or_none() {
        let src = GOOD.replace("ipv4: [10.0.0.0/31, 10.0.0.1/31]", "ipv4: [10.0.0.0/31]");
        expect_err(&src, 26, "topology.links[0].ipv4", "1 address(es) for 2 endpoints");
        let src = GOOD.replace("ipv4: [10.0.0.0/31, 10.0.0.1/31]", "ipv4: [10.0.0.0/31, \"\"]");
        let t = parse(&src).unwrap();
        assert!(t.links[0].b.addrs.is_empty(), "\"\" is no address on that end");
    }

    #[test]
    fn bad_yaml_names_the_line() {
        let src = GOOD.replace("    b:\n", "    b:\n   bad: [\n");
        let e = parse(&src).unwrap_err();
        assert!(e.line().is_some_and(|l| l >= 20), "{e}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let src = GOOD.replace("      mtu: 1500", "      mtu: big");
        expect_err(&src, 28, "topology.links[1].mtu", "invalid");
    }

    #[test]
    fn misspelt_node_key_is_refused_with_a_hint() {
        let src = GOOD.replace("      image: podlab/speaker", "      imagee: podlab/speaker");
        expect_err(&src, 22, "topology.nodes.b.imagee", "did you mean `image`");
    }

    #[test]
    fn containerlab_keys_lab_does_not_run_are_noted() {
        let src = GOOD.replace(
            "      image: podlab/speaker:latest\n",
            "      image: podlab/speaker:latest\n      startup-delay: 3\n",
        );
        let t = parse(&src).unwrap();
        assert_eq!(t.ignored, vec!["topology.nodes.b.startup-delay".to_string()]);
    }

    #[test]
    fn other_kinds_are_refused() {
        let src = GOOD.replace("    a:\n", "    a:\n      kind: nokia_srlinux\n");
        expect_err(
            &src,
            16,
            "topology.nodes.a.kind",
            "containerlab kind that lab cannot run",
        );
    }

    #[test]
    fn unknown_bgp_label() {
        let src = GOOD.replace("lab.bgp: bird", "lab.bgp: quagga");
        expect_err(&src, 17, "topology.nodes.a.labels.lab.bgp", "not one of");
    }

    #[test]
    fn roles_and_blocks_are_read_once_and_checked() {
        let src = GOOD.replace(
            "lab.bgp: bird",
            "lab.bgp: bird\n        lab.block: \"10.244.0.0/26, fd00:244::/64\"",
        );
        let t = parse(&src).unwrap();
        assert_eq!(t.nodes["a"].blocks.len(), 2);
        assert!(t.nodes["a"].follows_routes() && t.nodes["b"].follows_routes());
        let src = GOOD.replace("lab.role: node", "lab.role: leaf");
        expect_err(&src, 16, "topology.nodes.a.labels.lab.role", "unknown role \"leaf\"");
        let src = GOOD.replace("lab.bgp: bird", "lab.bgp: bird\n        lab.block: 10.244.0.0/33");
        expect_err(&src, 18, "topology.nodes.a.labels.lab.block", "is not a CIDR");
    }

    #[test]
    fn mgmt_address_outside_subnet() {
        let src = GOOD.replace("172.30.9.12", "172.31.9.12");
        expect_err(&src, 21, "topology.nodes.b.mgmt-ipv4", "outside mgmt.ipv4-subnet");
    }

    #[test]
    fn link_with_one_endpoint() {
        let src = GOOD.replace("[\"a:eth2\", \"b:eth2\"]", "[\"a:eth2\"]");
        expect_err(&src, 27, "topology.links[1].endpoints", "two endpoints");
    }

    #[test]
    fn bad_link_address() {
        let src = GOOD.replace("10.0.0.1/31", "10.0.0.300/31");
        expect_err(&src, 26, "topology.links[0].ipv4[1]", "not an address");
    }

    #[test]
    fn missing_image() {
        let src = GOOD.replace("      image: podlab/base:latest\n", "");
        expect_err(&src, 14, "topology.nodes.a.image", "no image");
    }

    #[test]
    fn a_node_filter_keeps_its_nodes_and_the_links_among_them() {
        let src = "name: f\ntopology:\n  defaults: {kind: linux, image: i}\n  nodes:\n    a:\n    b:\n    c:\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n    - endpoints: [\"b:eth2\", \"c:eth1\"]\n";
        let t = parse(src).unwrap();
        let f = t.filtered(&["a".into(), "b".into()]).unwrap();
        assert_eq!(f.nodes.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(f.links.len(), 1);
        assert!(t
            .filtered(&["a".into(), "x".into()])
            .unwrap_err()
            .contains("no node \"x\""));
    }

    #[test]
    fn variables_are_expanded_before_the_file_is_read() {
        let src = "name: ${LAB_NAME:=v}\ntopology:\n  nodes:\n    a:\n      kind: linux\n      image: ${IMG}\n";
        let env = |k: &str| (k == "IMG").then(|| "podlab/base:latest".to_string());
        let t = Topology::parse_with(src, Path::new("/tmp/v.clab.yml"), &env).unwrap();
        assert_eq!(
            (t.name.as_str(), t.nodes["a"].image.as_str()),
            ("v", "podlab/base:latest")
        );
        let none = |_: &str| None;
        let e = Topology::parse_with(src, Path::new("/tmp/v.clab.yml"), &none).unwrap_err();
        assert_eq!(e.line(), Some(6));
        assert!(e.to_string().contains("v.clab.yml:6: ${IMG}: IMG is not set"), "{e}");
    }

    #[test]
    fn locate_follows_indentation() {
        let src = "a:\n  b:\n    c: 1\n  d:\n    - x: 1\n    - x: 2\n      y: 3\n";
        assert_eq!(locate(src, &[Step::Key("a"), Step::Key("d"), Step::Index(1)]), Some(6));
        assert_eq!(
            locate(src, &[Step::Key("a"), Step::Key("d"), Step::Index(1), Step::Key("y")]),
            Some(7)
        );
        assert_eq!(locate(src, &[Step::Key("a"), Step::Key("b"), Step::Key("c")]), Some(3));
        assert_eq!(locate(src, &[Step::Key("a"), Step::Key("b"), Step::Key("y")]), None);
    }
}
