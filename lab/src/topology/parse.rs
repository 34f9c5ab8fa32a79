//! From the raw file to a checked [`Topology`]: inheritance of `defaults` and `kinds`,
//! every check, and errors that name the file, the line and the field.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::IpNet;
use serde_yaml::Value;

use crate::labels::{self, Role};

use super::locate::{duplicate_key_lines, locate, Step};
use super::raw::*;
use super::schema::*;
use super::*;

pub(super) struct Parser<'a> {
    pub(super) src: &'a str,
    pub(super) file: &'a Path,
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

    pub(super) fn parse(&self) -> Result<Topology, TopologyError> {
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

pub(super) const SUPPORTED_NODE_KEYS: [&str; 11] = [
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

pub(super) fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The supported key closest to a misspelt one, when it is close enough to suggest.
pub(super) fn closest<'k>(k: &str, candidates: &[&'k str]) -> Option<&'k str> {
    candidates
        .iter()
        .map(|c| (edit_distance(k, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, c)| c)
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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
