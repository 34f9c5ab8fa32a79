//! Topology files in containerlab's format (`*.clab.yml`): parsing, inheritance of
//! `defaults` and `kinds`, and validation before anything is created. Every error names
//! the file, the line and the field, so a user can fix it without guessing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;
use serde_yaml::Value;

use crate::labels::{self, Role};

pub mod vars;

/// containerlab's own JSON schema (BSD-3, Nokia), vendored so the runner knows which
/// keys containerlab accepts that it does not implement (ignored with a warning) and
/// which keys are simply wrong (refused).
const CLAB_SCHEMA: &str = include_str!("../../schema/clab.schema.json");

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

// ---- raw file shapes -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: String,
    prefix: Option<String>,
    mgmt: Option<RawMgmt>,
    topology: RawTopology,
    settings: Option<Value>,
    debug: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMgmt {
    network: Option<String>,
    ipv4_subnet: Option<String>,
    ipv6_subnet: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    #[serde(default)]
    nodes: BTreeMap<String, Option<RawNode>>,
    #[serde(default)]
    kinds: BTreeMap<String, RawNode>,
    defaults: Option<RawNode>,
    groups: Option<Value>,
    #[serde(default)]
    links: Vec<RawLink>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "kebab-case")]
struct RawNode {
    kind: Option<String>,
    image: Option<String>,
    #[serde(default)]
    binds: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, ScalarString>,
    exec: Option<Vec<String>>,
    cmd: Option<String>,
    entrypoint: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, ScalarString>,
    #[serde(default)]
    sysctls: BTreeMap<String, ScalarString>,
    mgmt_ipv4: Option<String>,
    mgmt_ipv6: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

/// YAML scalars that containerlab reads as strings (`1`, `true`, `x`).
#[derive(Clone)]
struct ScalarString(String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(ScalarString(s)),
            Value::Number(n) => Ok(ScalarString(n.to_string())),
            Value::Bool(b) => Ok(ScalarString(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string, number or boolean, found {}",
                value_kind(&other)
            ))),
        }
    }
}

#[derive(Deserialize)]
struct RawLink {
    endpoints: Option<Vec<String>>,
    mtu: Option<u32>,
    #[serde(default)]
    ipv4: Vec<String>,
    #[serde(default)]
    ipv6: Vec<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

// ---- parsing and validation --------------------------------------------------------

struct Parser<'a> {
    src: &'a str,
    file: &'a Path,
}

/// One step of a path into the YAML document, for locating a line.
#[derive(Clone, Copy)]
enum Step<'s> {
    Key(&'s str),
    Index(usize),
}

impl<'a> Parser<'a> {
    fn err(&self, path: &[Step], field: impl Into<String>, msg: impl Into<String>) -> TopologyError {
        TopologyError::Invalid {
            file: self.file.to_path_buf(),
            // The deepest part of the path that can be found (flow-style maps hide keys).
            line: (1..=path.len())
                .rev()
                .find_map(|n| locate(self.src, &path[..n]))
                .unwrap_or(1),
            field: field.into(),
            msg: msg.into(),
        }
    }

    fn parse(&self) -> Result<Topology, TopologyError> {
        // Read as a plain document first: YAML forbids a key twice in one mapping (a
        // node defined twice would otherwise be its last definition, silently), and
        // the typed reading below lets the last one win. Its other errors are left to
        // the typed reading, which names the field.
        if let Err(e) = serde_yaml::from_str::<serde_yaml::Value>(self.src) {
            if e.to_string().contains("duplicate entry") {
                return Err(self.yaml_err(e));
            }
        }
        let raw: RawFile = serde_yaml::from_str(self.src).map_err(|e| self.yaml_err(e))?;
        self.checked(raw)
    }

    /// A YAML error as a topology error at its line.
    fn yaml_err(&self, e: serde_yaml::Error) -> TopologyError {
        let mut line = e.location().map(|l| l.line()).unwrap_or(1);
        // serde_yaml says "path: message at line L column C"; split the path off so
        // the field is its own part of the message.
        let text = e.to_string();
        let text = match text.rfind(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        let (field, mut msg) = match text.split_once(": ") {
            Some((f, m)) if !f.contains(' ') => (f.to_string(), m.to_string()),
            _ => ("(document)".to_string(), text),
        };
        // A key given twice: serde_yaml points at the mapping; point at the second.
        if let Some(key) = msg.strip_prefix("duplicate entry with key ") {
            let key = key.trim_matches('"').to_string();
            if let Some((first, again)) = duplicate_key_lines(self.src, line, &key) {
                line = again;
                msg = format!("{key} is defined twice (first at line {first}); YAML allows a key once per mapping");
            }
        }
        TopologyError::Invalid {
            file: self.file.to_path_buf(),
            line,
            field,
            msg,
        }
    }

    fn checked(&self, raw: RawFile) -> Result<Topology, TopologyError> {
        let mut ignored = Vec::new();
        if raw.settings.is_some() {
            ignored.push("settings".to_string());
        }
        if raw.debug.is_some() {
            ignored.push("debug".to_string());
        }
        if raw.topology.groups.is_some() {
            return Err(self.err(
                &[Step::Key("topology"), Step::Key("groups")],
                "topology.groups",
                "groups are not supported by lab; put the settings in kinds or defaults",
            ));
        }

        if !name_ok(&raw.name) {
            return Err(self.err(
                &[Step::Key("name")],
                "name",
                format!(
                    "{:?} is not a valid lab name (letters, digits, '-', '_', '.')",
                    raw.name
                ),
            ));
        }
        if let Some(p) = &raw.prefix {
            if !(p.is_empty() || p == "__lab-name" || name_ok(p)) {
                return Err(self.err(&[Step::Key("prefix")], "prefix", format!("{p:?} is not a valid prefix")));
            }
        }

        let mgmt = self.mgmt(raw.mgmt.as_ref(), &mut ignored)?;

        let defaults = raw.topology.defaults.clone().unwrap_or_default();
        self.check_other(&defaults.other, &["topology", "defaults"], &mut ignored)?;
        for (kind, k) in &raw.topology.kinds {
            self.check_other(&k.other, &["topology", "kinds", kind], &mut ignored)?;
        }

        if raw.topology.nodes.is_empty() {
            return Err(self.err(&[Step::Key("topology")], "topology.nodes", "the topology has no nodes"));
        }
        let mut nodes = BTreeMap::new();
        let mut mgmt_addrs = BTreeSet::new();
        for (name, node) in &raw.topology.nodes {
            let node = node.clone().unwrap_or_default();
            let path = [Step::Key("topology"), Step::Key("nodes"), Step::Key(name)];
            let field = format!("topology.nodes.{name}");
            if !name_ok(name) {
                return Err(self.err(&path, &field, "node names are letters, digits, '-', '_', '.'"));
            }
            self.check_other(&node.other, &["topology", "nodes", name], &mut ignored)?;
            let resolved = self.resolve(name, &node, &raw.topology.kinds, &defaults, &mgmt)?;
            if let Some(ip) = resolved.mgmt_ipv4 {
                if !mgmt_addrs.insert(ip) {
                    return Err(self.err(
                        &[
                            Step::Key("topology"),
                            Step::Key("nodes"),
                            Step::Key(name),
                            Step::Key("mgmt-ipv4"),
                        ],
                        format!("{field}.mgmt-ipv4"),
                        format!("{ip} is used by another node"),
                    ));
                }
            }
            nodes.insert(name.clone(), resolved);
        }

        let mut links = Vec::new();
        let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (i, link) in raw.topology.links.iter().enumerate() {
            let path = [Step::Key("topology"), Step::Key("links"), Step::Index(i)];
            let field = format!("topology.links[{i}]");
            let line = locate(self.src, &path).unwrap_or(1);
            if let Some(k) = link.other.keys().next() {
                let msg = if k == "type" {
                    "only brief links (`endpoints: [\"a:eth1\", \"b:eth1\"]`) are supported by lab".to_string()
                } else {
                    format!("unknown field `{k}`; a link has endpoints, mtu, ipv4, ipv6")
                };
                return Err(self.err(&path, format!("{field}.{k}"), msg));
            }
            let eps = link.endpoints.as_ref().ok_or_else(|| {
                self.err(
                    &path,
                    format!("{field}.endpoints"),
                    "a link needs `endpoints: [\"node:iface\", \"node:iface\"]`",
                )
            })?;
            let epath = [
                Step::Key("topology"),
                Step::Key("links"),
                Step::Index(i),
                Step::Key("endpoints"),
            ];
            if eps.len() != 2 {
                return Err(self.err(
                    &epath,
                    format!("{field}.endpoints"),
                    format!("a link has two endpoints, found {}", eps.len()),
                ));
            }
            // One address per endpoint, in their order (`""` for none): a single one
            // would go to the first end only, silently.
            for (list, key) in [(&link.ipv4, "ipv4"), (&link.ipv6, "ipv6")] {
                if !list.is_empty() && list.len() != eps.len() {
                    let apath = [
                        Step::Key("topology"),
                        Step::Key("links"),
                        Step::Index(i),
                        Step::Key(key),
                    ];
                    return Err(self.err(
                        &apath,
                        format!("{field}.{key}"),
                        format!(
                            "{} address(es) for {} endpoints: give one per endpoint, in the endpoints' order (\"\" for none)",
                            list.len(),
                            eps.len()
                        ),
                    ));
                }
            }
            let mut parsed = Vec::new();
            for (j, ep) in eps.iter().enumerate() {
                let efield = format!("{field}.endpoints[{j}]");
                let (node, iface) = ep
                    .split_once(':')
                    .filter(|(n, i)| !n.is_empty() && !i.is_empty())
                    .ok_or_else(|| {
                        self.err(&epath, &efield, format!("{ep:?} is not of the form \"node:interface\""))
                    })?;
                if !nodes.contains_key(node) {
                    let known: Vec<&str> = nodes.keys().map(String::as_str).collect();
                    return Err(self.err(
                        &epath,
                        &efield,
                        format!(
                            "{ep:?} names node {node:?}, which is not in topology.nodes (known: {})",
                            known.join(", ")
                        ),
                    ));
                }
                if iface.len() > 15 || iface.contains('/') || iface.contains(char::is_whitespace) {
                    return Err(self.err(
                        &epath,
                        &efield,
                        format!("{iface:?} is not a valid Linux interface name (at most 15 characters)"),
                    ));
                }
                if iface == "eth0" || iface == "lo" {
                    return Err(self.err(
                        &epath,
                        &efield,
                        format!("{iface} is reserved (eth0 is the management interface)"),
                    ));
                }
                if let Some(prev) = seen.insert((node.to_string(), iface.to_string()), i) {
                    return Err(self.err(
                        &epath,
                        &efield,
                        format!("endpoint {ep:?} is already used by topology.links[{prev}]"),
                    ));
                }
                let mut addrs = Vec::new();
                for (list, key) in [(&link.ipv4, "ipv4"), (&link.ipv6, "ipv6")] {
                    if let Some(a) = list.get(j).filter(|a| !a.is_empty()) {
                        let apath = [
                            Step::Key("topology"),
                            Step::Key("links"),
                            Step::Index(i),
                            Step::Key(key),
                        ];
                        let net: IpNet = a.parse().map_err(|_| {
                            self.err(
                                &apath,
                                format!("{field}.{key}[{j}]"),
                                format!("{a:?} is not an address with a prefix length"),
                            )
                        })?;
                        if (key == "ipv4") != matches!(net, IpNet::V4(_)) {
                            return Err(self.err(
                                &apath,
                                format!("{field}.{key}[{j}]"),
                                format!("{a} is not an {key} address"),
                            ));
                        }
                        addrs.push(net);
                    }
                }
                parsed.push(Endpoint {
                    node: node.to_string(),
                    iface: iface.to_string(),
                    addrs,
                });
            }
            let mtu = link.mtu.unwrap_or(DEFAULT_MTU);
            if !(68..=65535).contains(&mtu) {
                return Err(self.err(
                    &path,
                    format!("{field}.mtu"),
                    format!("{mtu} is not a valid MTU (68..65535)"),
                ));
            }
            let b = parsed.pop().expect("two endpoints");
            let a = parsed.pop().expect("two endpoints");
            if a.node == b.node && a.iface == b.iface {
                return Err(self.err(
                    &epath,
                    format!("{field}.endpoints"),
                    "a link cannot join an interface to itself",
                ));
            }
            links.push(Link { a, b, mtu, line });
        }

        Ok(Topology {
            name: raw.name,
            file: self.file.to_path_buf(),
            prefix: raw.prefix,
            mgmt,
            nodes,
            links,
            ignored,
        })
    }

    fn mgmt(&self, raw: Option<&RawMgmt>, ignored: &mut Vec<String>) -> Result<Mgmt, TopologyError> {
        let path = [Step::Key("mgmt")];
        let mut m = Mgmt {
            network: "clab".to_string(),
            ipv4_subnet: "172.20.20.0/24".parse().expect("constant"),
            ipv6_subnet: None,
        };
        let Some(raw) = raw else { return Ok(m) };
        if let Some(n) = &raw.network {
            m.network = n.clone();
        }
        if let Some(s) = &raw.ipv4_subnet {
            m.ipv4_subnet = s.parse().map_err(|_| {
                self.err(
                    &[Step::Key("mgmt"), Step::Key("ipv4-subnet")],
                    "mgmt.ipv4-subnet",
                    format!("{s:?} is not an IPv4 subnet"),
                )
            })?;
        }
        if let Some(s) = &raw.ipv6_subnet {
            m.ipv6_subnet = Some(s.parse().map_err(|_| {
                self.err(
                    &[Step::Key("mgmt"), Step::Key("ipv6-subnet")],
                    "mgmt.ipv6-subnet",
                    format!("{s:?} is not an IPv6 subnet"),
                )
            })?);
        }
        let allowed = schema_keys("mgmt");
        for k in raw.other.keys() {
            if allowed.contains(k) {
                ignored.push(format!("mgmt.{k}"));
            } else {
                return Err(self.err(&path, format!("mgmt.{k}"), format!("unknown field `{k}`")));
            }
        }
        Ok(m)
    }

    /// Keys containerlab knows but lab does not implement are noted; others refused.
    fn check_other(
        &self,
        other: &BTreeMap<String, Value>,
        at: &[&str],
        ignored: &mut Vec<String>,
    ) -> Result<(), TopologyError> {
        let allowed = schema_keys("node");
        for k in other.keys() {
            let field = format!("{}.{k}", at.join("."));
            if allowed.contains(k) {
                ignored.push(field);
            } else {
                let mut path: Vec<Step> = at.iter().map(|s| Step::Key(s)).collect();
                path.push(Step::Key(k));
                let hint = closest(k, &SUPPORTED_NODE_KEYS)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                return Err(self.err(&path, field, format!("unknown field `{k}`{hint}")));
            }
        }
        Ok(())
    }

    /// Node settings override kind settings, which override defaults; maps merge.
    fn resolve(
        &self,
        name: &str,
        node: &RawNode,
        kinds: &BTreeMap<String, RawNode>,
        defaults: &RawNode,
        mgmt: &Mgmt,
    ) -> Result<Node, TopologyError> {
        let base = [Step::Key("topology"), Step::Key("nodes"), Step::Key(name)];
        let field = format!("topology.nodes.{name}");
        let kind = node.kind.clone().or_else(|| defaults.kind.clone()).ok_or_else(|| {
            self.err(
                &base,
                format!("{field}.kind"),
                "no kind given (set `kind: linux` on the node or in topology.defaults)",
            )
        })?;
        if kind != "linux" {
            let known = schema_kinds();
            let msg = if known.contains(&kind) {
                format!("kind {kind:?} is a containerlab kind that lab cannot run; use `kind: linux` and say what runs there with labels (lab.bgp, lab.role)")
            } else {
                format!(
                    "unknown kind {kind:?}; use `kind: linux` and say what runs there with labels (lab.bgp, lab.role)"
                )
            };
            let mut p = base.to_vec();
            p.push(Step::Key("kind"));
            return Err(self.err(&p, format!("{field}.kind"), msg));
        }
        let empty = RawNode::default();
        let k = kinds.get(&kind).unwrap_or(&empty);
        let layers = [node, k, defaults];
        let first = |f: fn(&RawNode) -> Option<String>| layers.iter().find_map(|l| f(l));
        let image = first(|l| l.image.clone()).ok_or_else(|| {
            self.err(
                &base,
                format!("{field}.image"),
                "no image given (set it on the node, its kind, or topology.defaults)",
            )
        })?;
        let merge = |f: fn(&RawNode) -> &BTreeMap<String, ScalarString>| {
            let mut m = BTreeMap::new();
            for l in layers.iter().rev() {
                for (key, v) in f(l) {
                    m.insert(key.clone(), v.0.clone());
                }
            }
            m
        };
        let labels = merge(|l| &l.labels);
        let env = merge(|l| &l.env);
        let sysctls = merge(|l| &l.sysctls);
        let label_err = |key: &str, msg: String| {
            let mut p = base.to_vec();
            p.push(Step::Key("labels"));
            p.push(Step::Key(key));
            self.err(&p, format!("{field}.labels.{key}"), msg)
        };
        if let Some(bgp) = labels.get(labels::BGP) {
            if !crate::bgp::IMPLEMENTATIONS.contains(&bgp.as_str()) {
                return Err(label_err(
                    labels::BGP,
                    format!("{bgp:?} is not one of {}", crate::bgp::IMPLEMENTATIONS.join(", ")),
                ));
            }
        }
        let role = labels
            .get(labels::ROLE)
            .map(|r| r.parse::<Role>().map_err(|e| label_err(labels::ROLE, e)))
            .transpose()?;
        let blocks = match labels.get(labels::BLOCK) {
            None => Vec::new(),
            Some(b) => b
                .split(',')
                .map(|c| {
                    c.trim().parse::<IpNet>().map_err(|_| {
                        label_err(
                            labels::BLOCK,
                            format!("{c:?} is not a CIDR (write 10.244.1.0/26, or several with commas)"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };

        // Binds merge by container path, the most specific layer winning.
        let mut binds: BTreeMap<String, Bind> = BTreeMap::new();
        let dir = self.file.parent().unwrap_or(Path::new("."));
        let layer_paths: [Vec<&str>; 3] = [
            vec!["topology", "nodes", name],
            vec!["topology", "kinds", kind.as_str()],
            vec!["topology", "defaults"],
        ];
        for (layer, at) in layers.iter().zip(&layer_paths).rev() {
            for (i, b) in layer.binds.iter().enumerate() {
                let parts: Vec<&str> = b.splitn(3, ':').collect();
                let mut p: Vec<Step> = at.iter().map(|s| Step::Key(s)).collect();
                p.push(Step::Key("binds"));
                p.push(Step::Index(i));
                let bfield = format!("{}.binds[{i}]", at.join("."));
                if parts.len() < 2 || parts[0].is_empty() || !parts[1].starts_with('/') {
                    return Err(self.err(
                        &p,
                        bfield,
                        format!("{b:?} is not of the form \"host-path:/container/path[:ro]\""),
                    ));
                }
                let host = dir.join(parts[0]);
                if !host.exists() {
                    return Err(self.err(
                        &p,
                        bfield,
                        format!(
                            "bind source {} does not exist (paths are relative to the topology file)",
                            host.display()
                        ),
                    ));
                }
                let bind = Bind {
                    host: std::path::absolute(&host).unwrap_or(host),
                    container: parts[1].to_string(),
                    options: parts.get(2).map(|s| s.to_string()),
                };
                binds.insert(bind.container.clone(), bind);
            }
        }

        let addr_field = |key: &'static str| {
            let mut p = base.to_vec();
            p.push(Step::Key(key));
            (p, format!("{field}.{key}"))
        };
        let mgmt_ipv4 = match &node.mgmt_ipv4 {
            None => None,
            Some(s) => {
                let (p, f) = addr_field("mgmt-ipv4");
                let ip: Ipv4Addr = s
                    .parse()
                    .map_err(|_| self.err(&p, &f, format!("{s:?} is not an IPv4 address")))?;
                if !mgmt.ipv4_subnet.contains(&ip) {
                    return Err(self.err(&p, &f, format!("{ip} is outside mgmt.ipv4-subnet {}", mgmt.ipv4_subnet)));
                }
                Some(ip)
            }
        };
        let mgmt_ipv6 = match &node.mgmt_ipv6 {
            None => None,
            Some(s) => {
                let (p, f) = addr_field("mgmt-ipv6");
                Some(
                    s.parse()
                        .map_err(|_| self.err(&p, &f, format!("{s:?} is not an IPv6 address")))?,
                )
            }
        };

        Ok(Node {
            name: name.to_string(),
            kind,
            image,
            binds: binds.into_values().collect(),
            env,
            exec: layers.iter().find_map(|l| l.exec.clone()).unwrap_or_default(),
            cmd: first(|l| l.cmd.clone()),
            entrypoint: first(|l| l.entrypoint.clone()),
            labels,
            sysctls,
            mgmt_ipv4,
            mgmt_ipv6,
            role,
            blocks,
            line: locate(self.src, &base).unwrap_or(1),
        })
    }
}

const SUPPORTED_NODE_KEYS: [&str; 11] = [
    "kind",
    "image",
    "binds",
    "env",
    "exec",
    "cmd",
    "entrypoint",
    "labels",
    "sysctls",
    "mgmt-ipv4",
    "mgmt-ipv6",
];

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The supported key closest to a misspelt one, when it is close enough to suggest.
fn closest<'k>(k: &str, candidates: &[&'k str]) -> Option<&'k str> {
    candidates
        .iter()
        .map(|c| (edit_distance(k, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

struct SchemaKeys {
    node: BTreeSet<String>,
    mgmt: BTreeSet<String>,
    kinds: BTreeSet<String>,
}

fn schema() -> &'static SchemaKeys {
    static KEYS: OnceLock<SchemaKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let s: serde_json::Value = serde_json::from_str(CLAB_SCHEMA).expect("vendored schema is JSON");
        let keys = |v: &serde_json::Value| -> BTreeSet<String> {
            v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
        };
        SchemaKeys {
            node: keys(&s["definitions"]["node-config"]["properties"]),
            mgmt: keys(&s["properties"]["mgmt"]["properties"]),
            kinds: keys(&s["properties"]["topology"]["properties"]["kinds"]["properties"]),
        }
    })
}

fn schema_keys(which: &str) -> &'static BTreeSet<String> {
    match which {
        "mgmt" => &schema().mgmt,
        _ => &schema().node,
    }
}

fn schema_kinds() -> &'static BTreeSet<String> {
    &schema().kinds
}

/// The lines (1-based) of the first two occurrences of `key` among the keys of the
/// block mapping that starts at line `from` (its keys at that line's indentation).
fn duplicate_key_lines(src: &str, from: usize, key: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = src.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let start = from.checked_sub(1)?;
    let depth = indent(lines.get(start)?);
    let mut found = Vec::new();
    for (i, l) in lines.iter().enumerate().skip(start) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') || indent(l) > depth {
            continue;
        }
        if indent(l) < depth {
            break;
        }
        let k = t
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(|c| c == '"' || c == '\'');
        if k == key {
            found.push(i + 1);
        }
    }
    match found[..] {
        [first, again, ..] => Some((first, again)),
        _ => None,
    }
}

/// Finds the line (1-based) of a path in block-style YAML by following indentation.
/// Flow collections are treated as values on their key's line; good enough to point a
/// user at the right place, which is all it is for.
fn locate(src: &str, path: &[Step]) -> Option<usize> {
    let lines: Vec<&str> = src.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let meaningful = |l: &str| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with('#')
    };
    // The block we search in: lines [start, end) deeper than `parent`.
    let (mut start, mut end, mut parent): (usize, usize, isize) = (0, lines.len(), -1);
    let mut found = None;
    for step in path {
        let mut hit = None;
        let mut item = 0usize;
        let mut item_indent: Option<usize> = None;
        for (i, l) in lines.iter().enumerate().take(end).skip(start) {
            if !meaningful(l) {
                continue;
            }
            let ind = indent(l) as isize;
            if ind <= parent {
                break;
            }
            let t = l.trim_start();
            match step {
                Step::Key(k) => {
                    let t = t.strip_prefix("- ").unwrap_or(t);
                    let key = t
                        .split(':')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .trim_matches(|c| c == '"' || c == '\'');
                    if key == *k && t.contains(':') {
                        hit = Some((i, ind));
                        break;
                    }
                }
                Step::Index(n) => {
                    if t.starts_with("- ") || t == "-" {
                        let ii = *item_indent.get_or_insert(ind as usize);
                        if ind as usize == ii {
                            if item == *n {
                                hit = Some((i, ind));
                                break;
                            }
                            item += 1;
                        }
                    }
                }
            }
        }
        let (i, ind) = hit?;
        found = Some(i + 1);
        // The block of this key: following lines deeper than it; a list item's own
        // keys sit after "- ", so its block is anything deeper than the dash.
        let block_end = lines
            .iter()
            .enumerate()
            .skip(i + 1)
            .find(|(_, l)| meaningful(l) && indent(l) as isize <= ind)
            .map(|(j, _)| j)
            .unwrap_or(lines.len());
        parent = ind;
        // For list items and keys inline after "- ", search the item's line too.
        start = if matches!(step, Step::Index(_)) { i } else { i + 1 };
        end = block_end.min(end);
        if matches!(step, Step::Index(_)) {
            parent = ind - 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
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
