//! Calico's own resource documents (`projectcalico.org/v3` BGPConfiguration, BGPPeer,
//! BGPFilter, Node and IPPool, one per document or as `calicoctl get` and `kubectl get`
//! print them: a `BGPPeerList`, a `List` or a sequence), read beside the speaker's
//! own configuration document and turned into its fields, as Calico's confd turns
//! them into BIRD's configuration for one node:
//!
//! - the peers of this node: global BGPPeers, those whose `node` or `nodeSelector`
//!   names it, the Calico nodes a `peerSelector` selects (and, peering back, the nodes
//!   of a BGPPeer whose `peerSelector` selects this one), and the node-to-node mesh;
//! - its AS, router ID and addresses from its Node resource, its pools from the
//!   IPPools, the rest from BGPConfiguration `default` and `node.<name>`.
//!
//! What the own document says wins. Every resource is reported used or left out, and
//! why (`speaker check`); a field that would change routing and that the speaker does
//! not have is refused, naming the resource and the field.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use crate::selector::Selector;

/// Calico's default AS, when neither BGPConfiguration `default` nor the Node has one.
const CALICO_DEFAULT_AS: u32 = 64512;

/// What became of one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Use {
    /// `BGPPeer rack-tor`.
    pub resource: String,
    pub used: bool,
    /// What it gave, or why it was left out.
    pub why: String,
}

/// One resource, out of its envelope.
#[derive(Clone, Debug)]
struct Resource {
    kind: String,
    name: String,
    labels: BTreeMap<String, String>,
    spec: Mapping,
}

impl Resource {
    fn title(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }

    fn str(&self, field: &str) -> Result<Option<String>, String> {
        match self.spec.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("{}: spec.{field}: a string, not {other:?}", self.title())),
        }
    }
}

/// The documents of a configuration file that holds Calico resources: the own
/// document (if any) and the resources. None when the file is one document of the
/// speaker's own, read as before (its errors keep their lines).
pub struct Documents {
    own: Option<Mapping>,
    resources: Vec<Resource>,
    skipped: Vec<Use>,
}

/// Splits `text` into its documents.
pub fn documents(text: &str) -> Result<Option<Documents>, String> {
    let mut values = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc).map_err(|e| format!("document {}: {e}", i + 1))?;
        values.push(v);
    }
    let is_resource = |v: &Value| v.get("apiVersion").is_some() || v.is_sequence();
    if values.len() <= 1 && !values.iter().any(is_resource) {
        return Ok(None);
    }
    let mut docs = Documents {
        own: None,
        resources: Vec::new(),
        skipped: Vec::new(),
    };
    for (i, v) in values.into_iter().enumerate() {
        let at = format!("document {}", i + 1);
        match v {
            Value::Null => {}
            Value::Sequence(items) => {
                for (k, item) in items.into_iter().enumerate() {
                    docs.envelope(item, &format!("{at}, item {}", k + 1))?;
                }
            }
            Value::Mapping(m) if m.get("apiVersion").is_none() => {
                if docs.own.is_some() {
                    return Err(format!(
                        "{at}: a second document of the speaker's own configuration (one without apiVersion); give one"
                    ));
                }
                docs.own = Some(m);
            }
            v @ Value::Mapping(_) => docs.envelope(v, &at)?,
            other => return Err(format!("{at}: a mapping or a list of resources, not {other:?}")),
        }
    }
    Ok(Some(docs))
}

impl Documents {
    /// One resource or list of them, with `at` saying where it is in the file.
    fn envelope(&mut self, v: Value, at: &str) -> Result<(), String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Envelope {
            api_version: String,
            #[serde(default)]
            kind: String,
            #[serde(default)]
            metadata: Metadata,
            #[serde(default)]
            spec: Option<Mapping>,
            #[serde(default)]
            items: Option<Vec<Value>>,
        }
        #[derive(Default, Deserialize)]
        struct Metadata {
            #[serde(default)]
            name: String,
            #[serde(default)]
            labels: BTreeMap<String, String>,
        }
        let e: Envelope = serde_yaml::from_value(v).map_err(|e| format!("{at}: {e}"))?;
        let calico = match e.api_version.as_str() {
            "projectcalico.org/v3" | "crd.projectcalico.org/v1" => true,
            v if v.contains("projectcalico.org") => {
                return Err(format!(
                    "{at}: apiVersion {v}: the speaker reads projectcalico.org/v3 (or crd.projectcalico.org/v1)"
                ))
            }
            _ => false,
        };
        if let Some(items) = e.items {
            for (k, item) in items.into_iter().enumerate() {
                self.envelope(item, &format!("{at}, {} item {}", e.kind, k + 1))?;
            }
            return Ok(());
        }
        let title = format!("{} {}", e.kind, e.metadata.name);
        if !calico {
            self.skipped
                .push(left_out(&title, &format!("not a Calico resource ({})", e.api_version)));
            return Ok(());
        }
        if !matches!(
            e.kind.as_str(),
            "BGPConfiguration" | "BGPPeer" | "BGPFilter" | "Node" | "IPPool"
        ) {
            self.skipped.push(left_out(&title, "not about BGP"));
            return Ok(());
        }
        if e.metadata.name.is_empty() {
            return Err(format!("{at}: {}: metadata.name is missing", e.kind));
        }
        self.resources.push(Resource {
            kind: e.kind,
            name: e.metadata.name,
            labels: e.metadata.labels,
            spec: e.spec.unwrap_or_default(),
        });
        Ok(())
    }

    /// The own configuration's fields, with what the resources give this node
    /// (`hostname` names it when the own document does not), and what became of each
    /// resource.
    pub fn merge(self, hostname: Option<&str>) -> Result<(Mapping, Vec<Use>), String> {
        let mut own = self.own.unwrap_or_default();
        let mut uses = self.skipped;
        let node_name = match own.get("nodeName") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(format!("nodeName: a string, not {other:?}")),
            None => hostname.map(str::to_string).ok_or(
                "nodeName: not given and no host name: the Calico resources that apply to this node cannot be chosen",
            )?,
        };
        let of = |kind: &'static str| self.resources.iter().filter(move |r| r.kind == kind);

        // Nodes, this one first.
        let nodes: Vec<NodeInfo> = of("Node").map(NodeInfo::read).collect::<Result<_, _>>()?;
        let me = nodes.iter().find(|n| n.name == node_name);
        let mut labels = me.map(|n| n.labels.clone()).unwrap_or_default();
        if let Some(v) = own.get("nodeLabels") {
            let extra: BTreeMap<String, String> =
                serde_yaml::from_value(v.clone()).map_err(|e| format!("nodeLabels: {e}"))?;
            labels.extend(extra);
        }
        for n in &nodes {
            let why = match (n.name == node_name, n.v4.is_some() || n.v6.is_some()) {
                (true, _) => "this node: its AS, addresses and labels".to_string(),
                (false, true) => "another node: a mesh or selected peer when one applies".to_string(),
                (false, false) => "another node, without spec.bgp addresses: no peer".to_string(),
            };
            uses.push(Use {
                resource: format!("Node {}", n.name),
                used: n.name == node_name || n.v4.is_some() || n.v6.is_some(),
                why,
            });
        }

        // BGPConfiguration: `default`, then `node.<this node>`.
        let mut global = Mapping::new();
        let mut has_default = false;
        let mut mine = Mapping::new();
        for r in of("BGPConfiguration") {
            match r.name.strip_prefix("node.") {
                _ if r.name == "default" => {
                    global = r.spec.clone();
                    has_default = true;
                    uses.push(used(r, "the cluster's BGP configuration"));
                }
                Some(n) if n == node_name => {
                    for f in DEFAULT_ONLY {
                        if r.spec.contains_key(*f) {
                            return Err(format!(
                                "{}: spec.{f}: set only on BGPConfiguration default (Calico refuses it here)",
                                r.title()
                            ));
                        }
                    }
                    mine = r.spec.clone();
                    uses.push(used(r, "this node's BGP configuration"));
                }
                Some(n) => uses.push(left_out(&r.title(), &format!("for node {n}"))),
                None => uses.push(left_out(
                    &r.title(),
                    "named neither default nor node.<name>: Calico does not read it",
                )),
            }
        }
        let mut notes = Vec::new();
        check_bgp_configuration(&global, "BGPConfiguration default", &mut notes)?;
        check_bgp_configuration(&mine, &format!("BGPConfiguration node.{node_name}"), &mut notes)?;
        let default_as = match global.get("asNumber") {
            Some(v) => as_number(v).map_err(|e| format!("BGPConfiguration default: spec.asNumber: {e}"))?,
            None => CALICO_DEFAULT_AS,
        };
        let listen_port = |n: &str| -> Option<u16> {
            of("BGPConfiguration")
                .find(|r| r.name == format!("node.{n}"))
                .and_then(|r| r.spec.get("listenPort"))
                .or_else(|| global.get("listenPort"))
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
        };

        let set = |own: &mut Mapping, key: &str, v: Value| {
            if !own.contains_key(key) {
                own.insert(key.into(), v);
            }
        };
        set(
            &mut own,
            "asNumber",
            Value::from(me.and_then(|n| n.asn).unwrap_or(default_as)),
        );
        if let Some(me) = me {
            if let Some(v4) = me.v4 {
                set(&mut own, "routerID", Value::from(v4.to_string()));
                set(&mut own, "nodeIPv4", Value::from(v4.to_string()));
            }
            if let Some(v6) = me.v6 {
                set(&mut own, "nodeIPv6", Value::from(v6.to_string()));
            }
            if let Some(id) = &me.cluster_id {
                let mut rr = Mapping::new();
                rr.insert("clusterID".into(), Value::from(id.clone()));
                set(&mut own, "routeReflector", Value::Mapping(rr));
            }
        }
        for key in [
            "serviceClusterIPs",
            "serviceExternalIPs",
            "serviceLoadBalancerIPs",
            "nodeMeshMaxRestartTime",
        ] {
            if let Some(v) = global.get(key) {
                set(&mut own, key, v.clone());
            }
        }
        if let Some(p) = listen_port(&node_name) {
            set(&mut own, "listenPort", Value::from(p));
        }
        // Calico reads bindMode from `default` only (`node.<name>` may hold it, unread).
        let bind = global.get("bindMode").and_then(Value::as_str);
        if bind == Some("NodeIP") {
            match me.and_then(|n| n.v4.or(n.v6)) {
                Some(a) => set(&mut own, "listenAddress", Value::from(a.to_string())),
                None => {
                    return Err(format!(
                        "BGPConfiguration: bindMode NodeIP, and no Node resource {node_name} with an address"
                    ))
                }
            }
        }
        // Communities: the cluster's, then this node's; its prefixAdvertisements
        // replace the cluster's.
        let mut communities: Vec<Value> = Vec::new();
        for m in [&global, &mine] {
            if let Some(Value::Sequence(c)) = m.get("communities") {
                communities.extend(c.iter().cloned());
            }
        }
        if !communities.is_empty() {
            set(&mut own, "communities", Value::Sequence(communities));
        }
        if let Some(p) = mine
            .get("prefixAdvertisements")
            .or_else(|| global.get("prefixAdvertisements"))
        {
            set(&mut own, "prefixAdvertisements", p.clone());
        }

        // Pools.
        let mut pools = Vec::new();
        for r in of("IPPool") {
            let cidr: IpNet = r
                .str("cidr")?
                .ok_or_else(|| format!("{}: spec.cidr is missing", r.title()))?
                .parse()
                .map_err(|e| format!("{}: spec.cidr: {e}", r.title()))?;
            if r.spec.get("disableBGPExport").and_then(Value::as_bool) == Some(true) {
                uses.push(left_out(
                    &r.title(),
                    "disableBGPExport: its routes are neither advertised nor accepted (the speaker has one list of pools)",
                ));
                continue;
            }
            pools.push(Value::from(cidr.to_string()));
            uses.push(used(r, &format!("pool {cidr}")));
        }
        if !pools.is_empty() {
            set(&mut own, "pools", Value::Sequence(pools));
        }

        // Filters.
        let mut filters = match own.get("filters") {
            Some(Value::Sequence(f)) => f.clone(),
            _ => Vec::new(),
        };
        for r in of("BGPFilter") {
            let mut f = r.spec.clone();
            f.insert("name".into(), Value::from(r.name.clone()));
            filters.push(Value::Mapping(f));
            uses.push(used(r, "a filter for the peers that name it"));
        }
        if !filters.is_empty() {
            own.insert("filters".into(), Value::Sequence(filters));
        }

        // Peers: the own document's, then global BGPPeers, then this node's, then
        // those of selectors, each address once.
        let mut peers = match own.get("peers") {
            Some(Value::Sequence(p)) => p.clone(),
            _ => Vec::new(),
        };
        let mut seen: Vec<String> = peers
            .iter()
            .filter_map(|p| p.get("peerIP").and_then(Value::as_str).map(peer_address))
            .collect();
        // This node as the selectors see it: its Node resource with the labels of
        // both; without one, the own document's addresses are this node's.
        let own_addr = |k: &str| {
            own.get(k)
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok())
        };
        let base = me.cloned().unwrap_or_default();
        let me_info = NodeInfo {
            name: node_name.clone(),
            labels: labels.clone(),
            v4: base.v4.or_else(|| own_addr("nodeIPv4")),
            v6: base.v6.or_else(|| own_addr("nodeIPv6")),
            ..base
        };
        let bgp_peers: Vec<&Resource> = of("BGPPeer").collect();
        let mut ordered: Vec<&Resource> = bgp_peers
            .iter()
            .copied()
            .filter(|r| !r.spec.contains_key("node") && !r.spec.contains_key("nodeSelector"))
            .collect();
        ordered.extend(
            bgp_peers
                .iter()
                .copied()
                .filter(|r| r.spec.contains_key("node") || r.spec.contains_key("nodeSelector")),
        );
        for r in ordered {
            let made = peer_resource(r, &me_info, &nodes, default_as, &listen_port)?;
            let (mut added, mut duplicate) = (Vec::new(), Vec::new());
            for p in made.peers {
                let addr = p
                    .get("peerIP")
                    .and_then(Value::as_str)
                    .map(peer_address)
                    .unwrap_or_default();
                if seen.contains(&addr) {
                    duplicate.push(addr);
                    continue;
                }
                seen.push(addr.clone());
                added.push(addr);
                peers.push(Value::Mapping(p));
            }
            let mut why = made.why;
            if !duplicate.is_empty() {
                why.push_str(&format!(" ({} peered already)", duplicate.join(", ")));
            }
            match added.is_empty() {
                true => uses.push(left_out(&r.title(), &why)),
                false => uses.push(Use {
                    resource: r.title(),
                    used: true,
                    why: format!("{why}: {}", added.join(", ")),
                }),
            }
        }
        if !peers.is_empty() {
            own.insert("peers".into(), Value::Sequence(peers));
        }

        // The node-to-node mesh: every other node with an address of a family this
        // one has; nodes with a route reflector cluster ID leave it.
        // Only where the file says something of the cluster: filters alone leave
        // the own document's mesh (off unless it says so) as it is.
        if !own.contains_key("nodeToNodeMesh") && (has_default || !nodes.is_empty()) {
            let enabled = global
                .get("nodeToNodeMeshEnabled")
                .and_then(Value::as_bool)
                .unwrap_or(true)
                && me_info.cluster_id.is_none();
            let mut mesh = Mapping::new();
            mesh.insert("enabled".into(), Value::from(enabled));
            if enabled {
                let mut addrs = Vec::new();
                for n in nodes.iter().filter(|n| n.name != node_name && n.cluster_id.is_none()) {
                    for (mine, theirs) in [(me_info.v4, n.v4), (me_info.v6, n.v6)] {
                        let (Some(_), Some(a)) = (mine, theirs) else { continue };
                        // A BGPPeer to a node in the mesh makes that session (with
                        // its filters and timers) instead of the mesh's.
                        match seen.contains(&a.to_string()) {
                            true => notes.push(format!(
                                "node-to-node mesh: {a} ({}) is peered by a BGPPeer instead",
                                n.name
                            )),
                            false => addrs.push(Value::from(a.to_string())),
                        }
                    }
                }
                notes.push(match addrs.is_empty() {
                    true => "node-to-node mesh: on, but no other Node resource with an address: no mesh peer".into(),
                    false => format!("node-to-node mesh: {} peer address(es)", addrs.len()),
                });
                mesh.insert("peers".into(), Value::Sequence(addrs));
                if let Some(pw) = global.get("nodeMeshPassword") {
                    mesh.insert("password".into(), pw.clone());
                }
            }
            own.insert("nodeToNodeMesh".into(), Value::Mapping(mesh));
        }
        // Asked last, so that a resource at fault is named first.
        if !own.contains_key("routerID") {
            return Err(format!(
                "routerID: not given, and no Node resource {node_name} with spec.bgp.ipv4Address to take it from"
            ));
        }
        uses.extend(notes.into_iter().map(|n| Use {
            resource: "(note)".into(),
            used: true,
            why: n,
        }));
        Ok((own, uses))
    }
}

/// Fields Calico takes from BGPConfiguration `default` only.
const DEFAULT_ONLY: &[&str] = &[
    "nodeToNodeMeshEnabled",
    "asNumber",
    "serviceLoadBalancerIPs",
    "serviceExternalIPs",
    "serviceClusterIPs",
    "nodeMeshPassword",
    "nodeMeshMaxRestartTime",
];

/// Refuses a BGPConfiguration field the speaker does not have, and notes the ones
/// it reads but has no use for.
fn check_bgp_configuration(spec: &Mapping, title: &str, notes: &mut Vec<String>) -> Result<(), String> {
    for (k, v) in spec {
        let key = k.as_str().unwrap_or_default();
        let refuse = |why: &str| Err(format!("{title}: spec.{key}: {why}"));
        match key {
            "asNumber"
            | "nodeToNodeMeshEnabled"
            | "listenPort"
            | "serviceClusterIPs"
            | "serviceExternalIPs"
            | "serviceLoadBalancerIPs"
            | "communities"
            | "prefixAdvertisements"
            | "nodeMeshPassword"
            | "nodeMeshMaxRestartTime"
            | "bindMode" => {}
            "logSeverityScreen" => notes.push(format!(
                "{title}: logSeverityScreen not used (the speaker's log level is RUST_LOG)"
            )),
            "ignoredInterfaces" => notes.push(format!(
                "{title}: ignoredInterfaces not used (the speaker reads pod interfaces only, podInterfacePrefix)"
            )),
            "serviceLoadBalancerAggregation" if v.as_str() == Some("Enabled") => {}
            "programClusterRoutes" if v.as_str() == Some("Enabled") => {}
            "ipv4NormalRoutePriority" | "ipv6NormalRoutePriority" if v.as_u64() == Some(1024) => {}
            "serviceLoadBalancerAggregation"
            | "programClusterRoutes"
            | "ipv4NormalRoutePriority"
            | "ipv6NormalRoutePriority" => return refuse("only Calico's default value is supported"),
            _ => return refuse("not a field the speaker has"),
        }
    }
    Ok(())
}

/// What one Node resource says for BGP.
#[derive(Clone, Debug, Default)]
struct NodeInfo {
    name: String,
    labels: BTreeMap<String, String>,
    v4: Option<IpAddr>,
    v6: Option<IpAddr>,
    asn: Option<u32>,
    cluster_id: Option<String>,
}

impl NodeInfo {
    fn read(r: &Resource) -> Result<NodeInfo, String> {
        let bgp = r.spec.get("bgp").cloned().unwrap_or(Value::Null);
        let addr = |f: &str| -> Result<Option<IpAddr>, String> {
            match bgp.get(f).and_then(Value::as_str) {
                None | Some("") => Ok(None),
                Some(s) => {
                    let a = s.split('/').next().unwrap_or(s);
                    a.parse()
                        .map(Some)
                        .map_err(|_| format!("{}: spec.bgp.{f}: {s:?} is not an address", r.title()))
                }
            }
        };
        Ok(NodeInfo {
            name: r.name.clone(),
            labels: r.labels.clone(),
            v4: addr("ipv4Address")?,
            v6: addr("ipv6Address")?,
            asn: bgp
                .get("asNumber")
                .map(as_number)
                .transpose()
                .map_err(|e| format!("{}: spec.bgp.asNumber: {e}", r.title()))?,
            cluster_id: bgp
                .get("routeReflectorClusterID")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        })
    }
}

/// An AS number as Calico writes it: a number, or `x.y` (asdot).
fn as_number(v: &Value) -> Result<u32, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("{n} is not an AS number")),
        Value::String(s) => match s.split_once('.') {
            Some((hi, lo)) => match (hi.parse::<u16>(), lo.parse::<u16>()) {
                (Ok(hi), Ok(lo)) => Ok(u32::from(hi) << 16 | u32::from(lo)),
                _ => Err(format!("{s:?} is not an AS number")),
            },
            None => s.parse().map_err(|_| format!("{s:?} is not an AS number")),
        },
        other => Err(format!("{other:?} is not an AS number")),
    }
}

/// The address of a `peerIP` (`10.0.0.1:1790` is 10.0.0.1), for telling peers apart.
fn peer_address(peer_ip: &str) -> String {
    match peer_ip.parse::<std::net::SocketAddr>() {
        Ok(s) => s.ip().to_string(),
        Err(_) => peer_ip.to_string(),
    }
}

/// The peers one BGPPeer gives this node, and in a few words why (or why none).
struct Made {
    peers: Vec<Mapping>,
    why: String,
}

/// Fields of BGPPeer copied as they are into a peer of the speaker's.
const PEER_FIELDS: &[&str] = &[
    "password",
    "sourceAddress",
    "maxRestartTime",
    "keepaliveTime",
    "numAllowedLocalASNumbers",
    "localASNumber",
    "ttlSecurity",
    "filters",
    "nextHopMode",
];

fn peer_resource(
    r: &Resource,
    me: &NodeInfo,
    nodes: &[NodeInfo],
    default_as: u32,
    listen_port: &dyn Fn(&str) -> Option<u16>,
) -> Result<Made, String> {
    let field = |f: &str, why: &str| format!("{}: spec.{f}: {why}", r.title());
    let mut base = Mapping::new();
    for (k, v) in &r.spec {
        let key = k.as_str().unwrap_or_default();
        match key {
            "node" | "nodeSelector" | "peerSelector" | "peerIP" | "asNumber" | "reversePeering" => {}
            f if PEER_FIELDS.contains(&f) => {
                base.insert(k.clone(), v.clone());
            }
            "keepOriginalNextHop" => {
                if v.as_bool() == Some(true) && !r.spec.contains_key("nextHopMode") {
                    base.insert("nextHopMode".into(), "Keep".into());
                }
            }
            "failureDetectionMode" => match v.as_str() {
                Some("None") => {}
                Some("BFDIfDirectlyConnected") => {
                    base.insert("bfd".into(), Value::Mapping(Mapping::new()));
                }
                _ => return Err(field(key, "None or BFDIfDirectlyConnected")),
            },
            "restartMode" => match v.as_str() {
                Some("GracefulRestart") => {}
                _ => {
                    return Err(field(
                        key,
                        "only GracefulRestart (the speaker has no long-lived graceful restart)",
                    ))
                }
            },
            "birdGatewayMode" => {}
            "reachableBy" => return Err(field(key, "not supported: the speaker adds no static route to a peer")),
            "localWorkloadSelector" => return Err(field(key, "not supported: the speaker peers with no pod")),
            _ => return Err(field(key, "not a field of BGPPeer the speaker has")),
        }
    }
    let node = r.str("node")?;
    let node_selector = r.str("nodeSelector")?;
    let peer_selector = r.str("peerSelector")?;
    let peer_ip = r.str("peerIP")?;
    if node.is_some() && node_selector.is_some() {
        return Err(field("nodeSelector", "node and nodeSelector cannot both be set"));
    }
    if peer_selector.is_some() && (peer_ip.is_some() || r.spec.contains_key("asNumber")) {
        return Err(field(
            "peerSelector",
            "peerIP and asNumber must be empty when peerSelector is set",
        ));
    }
    let parse = |f: &str, s: &str| Selector::parse(s).map_err(|e| field(f, &e));
    let node_sel = node_selector.as_deref().map(|s| parse("nodeSelector", s)).transpose()?;
    let peer_sel = peer_selector.as_deref().map(|s| parse("peerSelector", s)).transpose()?;
    // Whether the BGPPeer is for `n` (by its node or nodeSelector, or for all).
    let for_node = |n: &NodeInfo| match (&node, &node_sel) {
        (Some(name), _) => *name == n.name,
        (None, Some(sel)) => sel.matches(&n.labels),
        (None, None) => true,
    };
    let reverse = r.spec.get("reversePeering").and_then(Value::as_str) != Some("Manual");
    let mut peers = Vec::new();
    let to_node = |n: &NodeInfo, peers: &mut Vec<Mapping>| {
        for (mine, theirs) in [(me.v4, n.v4), (me.v6, n.v6)] {
            let (Some(_), Some(a)) = (mine, theirs) else { continue };
            let mut p = base.clone();
            let ip = match (listen_port(&n.name), a) {
                (Some(port), IpAddr::V4(a)) if port != 179 => format!("{a}:{port}"),
                (Some(port), IpAddr::V6(a)) if port != 179 => format!("[{a}]:{port}"),
                _ => a.to_string(),
            };
            p.insert("peerIP".into(), Value::from(ip));
            p.insert("asNumber".into(), Value::from(n.asn.unwrap_or(default_as)));
            // A route reflector's peers without its cluster ID are its clients.
            if me.cluster_id.is_some() && n.cluster_id != me.cluster_id {
                p.insert("routeReflectorClient".into(), Value::from(true));
            }
            peers.push(p);
        }
    };
    let mut whys = Vec::new();
    if for_node(me) {
        match (&peer_ip, &peer_sel) {
            (Some(ip), _) => {
                let asn = r
                    .spec
                    .get("asNumber")
                    .ok_or_else(|| field("asNumber", "missing (a peerIP needs its AS)"))?;
                let mut p = base.clone();
                p.insert("peerIP".into(), Value::from(ip.clone()));
                p.insert(
                    "asNumber".into(),
                    Value::from(as_number(asn).map_err(|e| field("asNumber", &e))?),
                );
                peers.push(p);
                whys.push("a peer of this node".to_string());
            }
            (None, Some(sel)) => {
                let before = peers.len();
                for n in nodes.iter().filter(|n| n.name != me.name && sel.matches(&n.labels)) {
                    to_node(n, &mut peers);
                }
                whys.push(match peers.len() == before {
                    true => "its peerSelector selects no other node with an address of this node's families".into(),
                    false => "the Calico nodes its peerSelector selects".into(),
                });
            }
            (None, None) => return Err(field("peerIP", "missing (give peerIP or peerSelector)")),
        }
    }
    // Peering back (reversePeering Auto): this node is one a peerSelector selects,
    // and peers with the nodes the BGPPeer is for.
    if let (Some(sel), true) = (&peer_sel, reverse) {
        if sel.matches(&me.labels) {
            let before = peers.len();
            for n in nodes.iter().filter(|n| n.name != me.name && for_node(n)) {
                to_node(n, &mut peers);
            }
            if peers.len() > before {
                whys.push("peering back with the nodes whose BGPPeer selects this one".into());
            }
        }
    }
    if whys.is_empty() {
        whys.push(match (&node, &node_selector) {
            (Some(n), _) => format!("for node {n}"),
            (None, Some(s)) => format!("its nodeSelector ({s}) does not select this node"),
            (None, None) => "for every node".into(),
        });
    }
    let why = whys.join("; ");
    Ok(Made { peers, why })
}

fn used(r: &Resource, why: &str) -> Use {
    Use {
        resource: r.title(),
        used: true,
        why: why.to_string(),
    }
}

fn left_out(resource: &str, why: &str) -> Use {
    Use {
        resource: resource.to_string(),
        used: false,
        why: why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    /// The samples of Calico's reference pages (BGPConfiguration, BGPFilter, BGPPeer
    /// with filters, Node) in one file, the filters renamed to the names the peer's
    /// sample uses, with Node resources for two nodes and the own document.
    const DOCS: &str = r#"
nodeName: node-hostname
pools: [10.244.0.0/16]
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  logSeverityScreen: Info
  nodeToNodeMeshEnabled: true
  nodeMeshMaxRestartTime: 120s
  asNumber: 63400
  serviceClusterIPs:
    - cidr: 10.96.0.0/12
  serviceExternalIPs:
    - cidr: 104.244.42.129/32
    - cidr: 172.217.3.0/24
  listenPort: 178
  bindMode: NodeIP
  communities:
    - name: bgp-large-community
      value: 63400:300:100
  prefixAdvertisements:
    - cidr: 172.218.4.0/26
      communities:
        - bgp-large-community
        - 63400:120
---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: first-bgp-filter
spec:
  exportV4:
    - action: Accept
      matchOperator: In
      cidr: 77.0.0.0/16
      source: RemotePeers
    - action: Reject
      interface: '*.calico'
  importV4:
    - action: Accept
      matchOperator: In
      cidr: 55.0.0.0/16
      prefixLength:
        min: 30
    - action: Reject
      matchOperator: NotIn
      cidr: 44.0.0.0/16
  exportV6:
    - action: Reject
      source: RemotePeers
    - action: Reject
      interface: '*.calico'
  importV6:
    - action: Accept
      matchOperator: Equal
      cidr: 5000::0/64
    - action: Reject
---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: second-bgp-filter
spec:
  importV4:
    - action: Reject
      matchOperator: In
      cidr: 10.96.0.0/12
---
kind: BGPPeer
apiVersion: projectcalico.org/v3
metadata:
  name: peer-with-filter
spec:
  peerSelector: has(filter-bgp)
  filters:
    - first-bgp-filter
    - second-bgp-filter
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: node-hostname
spec:
  bgp:
    asNumber: 64512
    ipv4Address: 10.244.0.1/24
    ipv6Address: 2001:db8:85a3::8a2e:370:7334/120
    ipv4IPIPTunnelAddr: 192.168.0.1
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: other
  labels: {filter-bgp: "yes"}
spec:
  bgp:
    ipv4Address: 10.244.0.2/24
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: third
spec:
  bgp:
    ipv4Address: 10.244.0.3/24
"#;

    #[test]
    fn calicos_samples_give_this_node_its_peers_filters_and_communities() {
        let c = Config::parse_on("calico.yaml", DOCS, None).unwrap();
        // The Node's AS wins over the cluster's; its address is the router ID.
        assert_eq!(c.as_number, 64512);
        assert_eq!(c.router_id.to_string(), "10.244.0.1");
        assert_eq!(c.listen_port, 178);
        assert_eq!(c.listen_address.map(|a| a.to_string()).as_deref(), Some("10.244.0.1"));
        assert_eq!(c.filters.len(), 2);
        assert_eq!(c.service_external_ips.len(), 2);
        assert_eq!(
            c.prefix_advertisements[0].communities,
            ["bgp-large-community", "63400:120"]
        );
        // The selected node, on the cluster's listen port, with its AS (the cluster's).
        let p = &c.peers[0];
        assert_eq!(c.peers.len(), 1);
        assert_eq!(p.peer_ip.to_string(), "10.244.0.2:178");
        assert_eq!(p.as_number, 63400);
        assert_eq!(p.filters, ["first-bgp-filter", "second-bgp-filter"]);
        // The mesh: the other nodes, IPv4 only (they have no IPv6 address), but
        // the one the BGPPeer peers with (with its filters) instead.
        assert!(c.node_to_node_mesh.enabled);
        assert_eq!(
            c.node_to_node_mesh.peers,
            ["10.244.0.3".parse::<std::net::IpAddr>().unwrap()]
        );
        let said: Vec<String> = c
            .resources
            .iter()
            .map(|u| format!("{} {}: {}", u.used, u.resource, u.why))
            .collect();
        assert!(
            said.iter().any(|s| s
                .starts_with("true BGPPeer peer-with-filter: the Calico nodes its peerSelector selects: 10.244.0.2")),
            "{said:#?}"
        );
        assert!(
            said.iter().any(|s| s.contains("logSeverityScreen not used")),
            "{said:#?}"
        );
        assert!(
            said.iter()
                .any(|s| s.contains("mesh: 10.244.0.2 (other) is peered by a BGPPeer instead")),
            "{said:#?}"
        );
    }

    #[test]
    fn calicoctl_lists_choose_the_peers_of_this_node() {
        let text = r#"
nodeName: n1
routerID: 10.0.0.11
nodeLabels: {rack: a}
pools: [10.244.0.0/16]
---
apiVersion: projectcalico.org/v3
items:
- apiVersion: projectcalico.org/v3
  kind: BGPPeer
  metadata: {creationTimestamp: "2024-05-01T10:00:00Z", name: rack-a-tor, resourceVersion: "1", uid: x}
  spec: {asNumber: 65001, nodeSelector: "rack == 'a'", peerIP: 10.0.0.1, keepaliveTime: 1s, password: {secretKeyRef: {name: bgp, key: tor}}}
- apiVersion: projectcalico.org/v3
  kind: BGPPeer
  metadata: {name: rack-b-tor}
  spec: {asNumber: "1.2", nodeSelector: "rack == 'b'", peerIP: 10.0.1.1}
- apiVersion: projectcalico.org/v3
  kind: BGPPeer
  metadata: {name: n2-only}
  spec: {asNumber: 65002, node: n2, peerIP: 10.0.2.1}
- apiVersion: projectcalico.org/v3
  kind: BGPPeer
  metadata: {name: everyone}
  spec: {asNumber: 65003, peerIP: "[fd00::1]:1790", keepOriginalNextHop: true}
kind: BGPPeerList
metadata: {resourceVersion: "2"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: false}
"#;
        let dir = std::env::temp_dir().join(format!("speaker-calico-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bgp")).unwrap();
        std::fs::write(dir.join("bgp/tor"), "s3cret").unwrap();
        let text = text.replace("pools:", &format!("secretsDirectory: {}\npools:", dir.display()));
        let c = Config::parse_on("list.yaml", &text, Some("ignored")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let peers: Vec<(String, u32)> = c.peers.iter().map(|p| (p.peer_ip.to_string(), p.as_number)).collect();
        // Global first, as confd orders them.
        assert_eq!(
            peers,
            [("[fd00::1]:1790".to_string(), 65003), ("10.0.0.1".to_string(), 65001)]
        );
        assert_eq!(c.peers[0].next_hop_mode, crate::config::NextHopMode::Keep);
        assert_eq!(c.peers[1].keepalive_time, Some(1));
        assert_eq!(c.peers[1].password.as_ref().and_then(|p| p.value()), Some("s3cret"));
        assert!(!c.node_to_node_mesh.enabled);
        assert_eq!(c.as_number, 64512, "Calico's default AS");
        let out: Vec<(bool, &str, &str)> = c
            .resources
            .iter()
            .map(|u| (u.used, u.resource.as_str(), u.why.as_str()))
            .collect();
        assert!(out.contains(&(false, "BGPPeer n2-only", "for node n2")), "{out:#?}");
        assert!(out.contains(&(
            false,
            "BGPPeer rack-b-tor",
            "its nodeSelector (rack == 'b') does not select this node"
        )));
        assert!(out.contains(&(false, "ConfigMap unrelated", "not a Calico resource (v1)")));
    }

    #[test]
    fn route_reflectors_selected_by_a_peer_selector_peer_back_with_their_clients() {
        let nodes = r#"
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: false, asNumber: 65000}
---
- apiVersion: projectcalico.org/v3
  kind: Node
  metadata: {name: rr1, labels: {route-reflector: "true"}}
  spec: {bgp: {ipv4Address: 10.0.0.1/24, routeReflectorClusterID: 244.0.0.1}}
- apiVersion: projectcalico.org/v3
  kind: Node
  metadata: {name: n1}
  spec: {bgp: {ipv4Address: 10.0.0.11/24, ipv6Address: "fd00::11/64"}}
- apiVersion: projectcalico.org/v3
  kind: Node
  metadata: {name: n2}
  spec: {bgp: {ipv4Address: 10.0.0.12/24}}
---
kind: BGPPeer
apiVersion: projectcalico.org/v3
metadata: {name: peer-with-route-reflectors}
spec: {nodeSelector: all(), peerSelector: "route-reflector == 'true'"}
"#;
        let n1 = Config::parse_on("rr.yaml", nodes, Some("n1")).unwrap();
        let peers: Vec<String> = n1.peers.iter().map(|p| p.peer_ip.to_string()).collect();
        assert_eq!(peers, ["10.0.0.1"]);
        assert!(!n1.peers[0].route_reflector_client);
        assert_eq!(n1.node_ipv6.map(|a| a.to_string()).as_deref(), Some("fd00::11"));
        let rr = Config::parse_on("rr.yaml", nodes, Some("rr1")).unwrap();
        let peers: Vec<(String, bool)> = rr
            .peers
            .iter()
            .map(|p| (p.peer_ip.to_string(), p.route_reflector_client))
            .collect();
        assert_eq!(
            peers,
            [("10.0.0.11".to_string(), true), ("10.0.0.12".to_string(), true)]
        );
        assert_eq!(
            rr.route_reflector.map(|r| r.cluster_id.to_string()).as_deref(),
            Some("244.0.0.1")
        );
        assert!(!rr.node_to_node_mesh.enabled);
    }

    #[test]
    fn what_the_speaker_does_not_have_is_refused_naming_the_resource_and_field() {
        let own = "nodeName: n1\nrouterID: 10.0.0.11\n---\n";
        for (doc, says) in [
            (
                "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 65001, localASNumber: 0}",
                "peers[0].localASNumber: 0 is not an AS number",
            ),
            (
                "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 65001, holdTime: 9s}",
                "BGPPeer p: spec.holdTime: not a field of BGPPeer",
            ),
            (
                "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerSelector: has(rr), asNumber: 65001}",
                "peerIP and asNumber must be empty",
            ),
            (
                "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {nodeSelector: rack = 'a', peerIP: 10.0.0.1, asNumber: 1}",
                "BGPPeer p: spec.nodeSelector: \"rack = 'a'\": '=' at 6",
            ),
            (
                "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: node.n1}\nspec: {asNumber: 65001}",
                "BGPConfiguration node.n1: spec.asNumber: set only on BGPConfiguration default",
            ),
            (
                "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {localWorkloadPeeringIPV4: 169.254.0.179}",
                "BGPConfiguration default: spec.localWorkloadPeeringIPV4: not a field the speaker has",
            ),
            ("apiVersion: projectcalico.org/v2\nkind: BGPPeer\nmetadata: {name: p}", "document 2: apiVersion projectcalico.org/v2"),
            (
                "apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: f}\nspec: {importV4: [{action: Reject, peerType: eBGP}]}",
                "unknown field `peerType`",
            ),
        ] {
            let e = Config::parse_on("bad.yaml", &format!("{own}{doc}"), None).unwrap_err().to_string();
            assert!(e.starts_with("bad.yaml: ") && e.contains(says), "{doc}:\n{e}");
        }
        let e = Config::parse_on("bad.yaml", "pools: []\n---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {}", Some("n1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("routerID: not given, and no Node resource n1"), "{e}");
    }

    #[test]
    fn a_peers_local_as_number_is_its_sessions_own() {
        let text = "nodeName: n1\nrouterID: 10.0.0.11\nasNumber: 64512\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 10.0.0.1, asNumber: 65001, localASNumber: 65100}\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: other}\nspec: {peerIP: 10.0.0.2, asNumber: 65002}";
        let c = Config::parse_on("c.yaml", text, None).unwrap();
        let n = c.neighbors();
        assert_eq!((n[0].remote_as, n[0].local_as), (65001, 65100));
        assert_eq!((n[1].remote_as, n[1].local_as), (65002, 64512));
    }
}
