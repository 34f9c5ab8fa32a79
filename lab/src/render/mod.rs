//! The conformance matrix's cells, rendered into containerlab folders. A cell is a
//! node speaker (ours, BIRD as Calico configures it, FRR), a fabric (a node-to-node
//! mesh, ToRs, or a route reflector, each on FRR, BIRD or GoBGP) and a family (IPv4,
//! or dual stack). Each fabric is described once here with the node speaker as a
//! parameter; each node's BGP intent is written once, in Calico's field names
//! (`intent.rs`), and the daemons' configurations are rendered from it
//! (`configs.rs`). `lab render` writes a cell as a plain folder that `containerlab
//! deploy` takes as well as `lab up`.

mod configs;
pub mod intent;

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::labels::Role;

use ipnet::IpNet;

use intent::{NodeIntent, RouterIntent, RouterNeighbor};

/// What runs BGP on the Kubernetes nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeSpeaker {
    Speaker,
    Bird,
    Frr,
}

impl NodeSpeaker {
    pub const ALL: [NodeSpeaker; 3] = [NodeSpeaker::Speaker, NodeSpeaker::Bird, NodeSpeaker::Frr];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeSpeaker::Speaker => "speaker",
            NodeSpeaker::Bird => "bird",
            NodeSpeaker::Frr => "frr",
        }
    }
}

/// What the fabric's routers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Router {
    Frr,
    Bird,
    Gobgp,
}

impl Router {
    pub fn as_str(self) -> &'static str {
        match self {
            Router::Frr => "frr",
            Router::Bird => "bird",
            Router::Gobgp => "gobgp",
        }
    }
}

/// What the nodes peer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fabric {
    /// Calico's default: an iBGP full mesh of the nodes on one L2 segment.
    Mesh,
    /// Two racks of two nodes, eBGP with an AS per node to the rack's ToR.
    Tor(Router),
    /// The nodes on one segment, iBGP clients of a route reflector.
    Rr(Router),
    /// One rack of three nodes, each dual-homed: eBGP to both of the rack's ToRs,
    /// ECMP over the two (RT-04). Only the cases that name it run on it.
    DualTor(Router),
    /// Calico's AS per rack: two racks of two nodes, the nodes iBGP route-reflector
    /// clients of their ToR (next hop self), the ToRs eBGP to a spine; rack 1's ToR
    /// and the spine on FRR, rack 2's ToR on BIRD.
    Rack,
}

impl Fabric {
    pub const ALL: [Fabric; 9] = [
        Fabric::Mesh,
        Fabric::Tor(Router::Frr),
        Fabric::Tor(Router::Bird),
        Fabric::Rr(Router::Bird),
        Fabric::Rr(Router::Frr),
        Fabric::Rr(Router::Gobgp),
        Fabric::Rack,
        Fabric::DualTor(Router::Frr),
        Fabric::DualTor(Router::Bird),
    ];

    /// `mesh`, `tor`, `rr`, `rack`, `dualtor`.
    pub fn shape(self) -> &'static str {
        match self {
            Fabric::Mesh => "mesh",
            Fabric::Tor(_) => "tor",
            Fabric::Rr(_) => "rr",
            Fabric::Rack => "rack",
            Fabric::DualTor(_) => "dualtor",
        }
    }

    /// Whether `name` names fabrics: a fabric (`tor/frr`), or a kind of them
    /// (`tor`: every ToR fabric), as case files and mutants' headers write them.
    pub fn check_name(name: &str) -> Result<(), String> {
        if Fabric::ALL.iter().any(|f| f.shape() == name) {
            return Ok(());
        }
        name.parse::<Fabric>().map(|_| ())
    }

    /// A fabric only the cases that name it run on (`cells: {fabric: [dualtor]}`):
    /// it exists for what the others cannot show, and would only repeat the rest.
    pub fn opt_in(self) -> bool {
        matches!(self, Fabric::DualTor(_))
    }
}

impl fmt::Display for Fabric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fabric::Mesh => f.write_str("mesh"),
            Fabric::Tor(r) => write!(f, "tor/{}", r.as_str()),
            Fabric::Rr(r) => write!(f, "rr/{}", r.as_str()),
            Fabric::DualTor(r) => write!(f, "dualtor/{}", r.as_str()),
            Fabric::Rack => f.write_str("rack"),
        }
    }
}

impl FromStr for Fabric {
    type Err = String;

    fn from_str(s: &str) -> Result<Fabric, String> {
        Fabric::ALL
            .into_iter()
            .find(|f| f.to_string() == s)
            .ok_or_else(|| format!("unknown fabric {s:?}: one of mesh, tor/frr, tor/bird, rr/bird, rr/frr, rr/gobgp, rack, dualtor/frr, dualtor/bird"))
    }
}

impl FromStr for NodeSpeaker {
    type Err = String;

    fn from_str(s: &str) -> Result<NodeSpeaker, String> {
        NodeSpeaker::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| format!("unknown node speaker {s:?}: one of speaker, bird, frr"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    /// IPv4 and IPv6 side by side: blocks, pods and separate sessions of each.
    Dual,
    /// IPv6 only: blocks, pods, links and sessions (router IDs stay 32-bit numbers).
    V6,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::V4, Family::Dual, Family::V6];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::Dual => "dual",
            Family::V6 => "v6",
        }
    }

    /// Whether its cells have IPv4, and IPv6.
    pub fn v4(self) -> bool {
        self != Family::V6
    }
    pub fn v6(self) -> bool {
        self != Family::V4
    }
}

impl FromStr for Family {
    type Err = String;

    fn from_str(s: &str) -> Result<Family, String> {
        match s {
            "v4" => Ok(Family::V4),
            "dual" => Ok(Family::Dual),
            "v6" => Ok(Family::V6),
            _ => Err(format!("unknown family {s:?}: v4, dual or v6")),
        }
    }
}

/// One cell of the conformance matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    pub node: NodeSpeaker,
    pub fabric: Fabric,
    pub family: Family,
}

impl fmt::Display for Cell {
    /// As test names carry it: `node=speaker fabric=tor/frr v4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node={} fabric={} {}",
            self.node.as_str(),
            self.fabric,
            self.family.as_str()
        )
    }
}

impl Cell {
    /// Every cell: node speakers, then fabrics, then families.
    pub fn matrix() -> Vec<Cell> {
        let mut out = Vec::new();
        for node in NodeSpeaker::ALL {
            for fabric in Fabric::ALL {
                for family in Family::ALL {
                    out.push(Cell { node, fabric, family });
                }
            }
        }
        out
    }

    /// A name fit for a lab, a folder and a container: `speaker-tor-frr-v4`.
    pub fn slug(&self) -> String {
        format!(
            "{}-{}-{}",
            self.node.as_str(),
            self.fabric.to_string().replace('/', "-"),
            self.family.as_str()
        )
    }

    /// Its place in the matrix, which gives its management subnet.
    fn index(&self) -> usize {
        Cell::matrix()
            .iter()
            .position(|c| c == self)
            .expect("every cell is in the matrix")
    }

    pub fn dual(&self) -> bool {
        self.family == Family::Dual
    }

    /// Whether the cell has IPv4, and IPv6.
    pub fn v4(&self) -> bool {
        self.family.v4()
    }
    pub fn v6(&self) -> bool {
        self.family.v6()
    }
}

/// A node of a rendered cell.
#[derive(Clone, Debug)]
pub struct PlanNode {
    pub name: String,
    /// `node`, `tor`, `rr`, `peer` (a scripted one), `switch`.
    pub role: Role,
    /// `speaker`, `bird`, `frr`, `gobgp`; none on a switch.
    pub bgp: Option<&'static str>,
    pub image: String,
    pub blocks: Vec<IpNet>,
    pub pods: usize,
    /// (file name in the node's folder, content, where it is mounted).
    pub files: Vec<(String, String, String)>,
    pub exec: Vec<String>,
    /// A Kubernetes node's BGP intent, from which its files were rendered.
    pub intent: Option<NodeIntent>,
    /// A fabric router's intent (ToR, spine, route reflector).
    pub router: Option<RouterIntent>,
    /// Its addresses on the lab's links: (interface, address with its prefix length).
    pub addrs: Vec<(String, IpNet)>,
    about: String,
}

impl PlanNode {
    /// Whether its daemon programs the container's kernel with what BGP learns: the
    /// rule of [`Role::programs_kernel`], as for a topology's nodes.
    pub fn kernel(&self) -> bool {
        self.bgp.is_some() && self.role.programs_kernel()
    }

    /// Its static routes through a gateway (`ip route replace ...`), from its exec
    /// commands: what a link that goes down takes away.
    pub fn static_routes(&self) -> Vec<String> {
        self.exec
            .iter()
            .filter(|e| (e.starts_with("ip route add ") || e.starts_with("ip -6 route add ")) && e.contains(" via "))
            .map(|e| e.replacen(" route add ", " route replace ", 1))
            .collect()
    }
}

/// A change to a node's intent a conformance case makes, to see what follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tweak {
    /// Every peer's AS number is wrong.
    WrongPeerAs,
    /// Graceful restart off.
    NoGracefulRestart,
    /// BFD (300 ms x 3) on the node-to-node mesh: both ends are the cell's node
    /// speaker (the fabric's routers and the scripted peer x1 have no such change).
    Bfd,
    /// The catalogue's hold time 3 s and keepalive 1 s on every session of the node
    /// (its peers take the lower hold time the node offers).
    ShortHold,
    /// A TCP-MD5 password on every session of the node, which its peers do not have.
    WrongPassword,
    /// A graceful-restart time of 5 s where every other daemon has 10 s: its helpers
    /// must keep its routes for the time it asks (RFC 4724 4.2), not their own.
    ShortRestart,
}

impl Tweak {
    /// Makes the change to a node's intent.
    pub fn apply(self, intent: &mut NodeIntent) {
        match self {
            Tweak::WrongPeerAs => {
                for p in &mut intent.peers {
                    p.as_number += 1000;
                }
                // The mesh takes the node's own AS: the peers become explicit.
                explicit_mesh(intent, intent.as_number + 1000);
            }
            Tweak::WrongPassword => {
                explicit_mesh(intent, intent.as_number);
                for p in &mut intent.peers {
                    p.password = Some("not-the-peers-password".into());
                }
            }
            Tweak::NoGracefulRestart => intent.graceful_restart.enabled = false,
            Tweak::ShortRestart => intent.graceful_restart.restart_time = 5,
            Tweak::Bfd => intent.node_to_node_mesh.bfd = Some(intent::BFD),
            Tweak::ShortHold => {
                let m = &mut intent.node_to_node_mesh;
                (m.hold_time, m.keepalive_time) = (3, 1);
                for p in &mut intent.peers {
                    (p.hold_time, p.keepalive_time) = (3, 1);
                }
            }
        }
    }
}

/// The node-to-node mesh's peers as BGPPeers of AS `asn`, which a change can set
/// apart from the mesh's.
fn explicit_mesh(intent: &mut NodeIntent, asn: u32) {
    if intent.node_to_node_mesh.enabled {
        let peers: Vec<IpAddr> = std::mem::take(&mut intent.node_to_node_mesh.peers);
        intent.node_to_node_mesh.enabled = false;
        for p in peers {
            intent.peer(p, asn);
        }
    }
}

/// A link of a rendered cell, with the addresses of each end.
#[derive(Clone, Debug)]
pub struct PlanLink {
    pub a: (String, String),
    pub b: (String, String),
    pub addrs: Vec<(IpNet, IpNet)>,
}

/// A cell made concrete: nodes, links, configurations.
#[derive(Clone, Debug)]
pub struct Plan {
    pub cell: Cell,
    pub lab: String,
    pub about: String,
    pub nodes: Vec<PlanNode>,
    pub links: Vec<PlanLink>,
}

const POOL4: &str = "10.244.0.0/16";
const POOL6: &str = "fd00:244::/48";

fn net(s: &str) -> IpNet {
    s.parse().expect("a literal network")
}

fn pools(cell: &Cell) -> Vec<IpNet> {
    let mut p = Vec::new();
    if cell.v4() {
        p.push(net(POOL4));
    }
    if cell.v6() {
        p.push(net(POOL6));
    }
    p
}

/// Node `k`'s blocks (k from 1): a /26 and a /122 as the cell's families have them,
/// as Calico's IPAM makes them.
fn blocks(cell: &Cell, k: u8) -> Vec<IpNet> {
    let mut b = Vec::new();
    if cell.v4() {
        b.push(net(&format!("10.244.{k}.0/26")));
    }
    if cell.v6() {
        b.push(net(&format!("fd00:244:0:{k}::/122")));
    }
    b
}

fn speaker_files(node: &str, about: &str, n: &NodeIntent, speaker: NodeSpeaker) -> Vec<(String, String, String)> {
    match speaker {
        NodeSpeaker::Speaker => vec![(
            "speaker.yaml".into(),
            configs::speaker_node(node, about, n),
            "/etc/speaker/speaker.yaml".into(),
        )],
        NodeSpeaker::Bird => vec![(
            "bird.conf".into(),
            configs::bird_node(node, about, n),
            "/etc/bird/bird.conf".into(),
        )],
        NodeSpeaker::Frr => vec![(
            "frr.conf".into(),
            configs::frr_node(node, about, n),
            "/etc/frr/frr.conf".into(),
        )],
    }
}

/// How a node speaker is started, after its block's blackhole routes exist.
fn node_exec(speaker: NodeSpeaker, addrs: &[String], blocks: &[IpNet]) -> Vec<String> {
    let mut exec: Vec<String> = addrs.to_vec();
    for b in blocks {
        let f = if matches!(b, IpNet::V4(_)) { "" } else { "-6 " };
        exec.push(format!("ip {f}route add blackhole {b}"));
    }
    exec.extend(daemon_exec(speaker.as_str()));
    exec
}

fn daemon_exec(bgp: &str) -> Vec<String> {
    match bgp {
        // The PID file is how the lab stops, kills and restarts it (never by name).
        "speaker" => vec![
            "sh -c \"mkdir -p /run/speaker; speaker run -c /etc/speaker/speaker.yaml >/var/log/speaker.log 2>&1 & echo $! >/run/speaker/speaker.pid\"".into(),
        ],
        "bird" => vec![
            "mkdir -p /run/bird /run/podlab/bird".into(),
            "bird -c /etc/bird/bird.conf -s /run/bird/bird.ctl -P /run/bird/bird.pid".into(),
        ],
        "frr" => vec!["/usr/lib/frr/frrinit.sh start".into()],
        "gobgp" => vec!["sh -c \"gobgpd -f /etc/gobgp/gobgpd.toml -t toml --log-plain >/var/log/gobgpd.log 2>&1 &\"".into()],
        "exabgp" => vec!["exabgp-start".into()],
        _ => vec![],
    }
}

fn image(speaker: NodeSpeaker) -> &'static str {
    match speaker {
        NodeSpeaker::Speaker => "podlab/speaker:latest",
        _ => "podlab/base:latest",
    }
}

/// Addresses on a switch segment are set by hand (`ip addr add`), as containerlab
/// leaves bridged ports alone.
fn segment_addrs(addrs: &[IpAddr]) -> Vec<String> {
    addrs
        .iter()
        .map(|a| match a {
            IpAddr::V4(v4) => format!("ip addr add {v4}/24 dev eth1"),
            IpAddr::V6(v6) => format!("ip addr add {v6}/64 dev eth1 nodad"),
        })
        .collect()
}

/// Host `h`'s addresses on a switch segment, of the cell's families:
/// 10.0.0.h and fd00::h.
fn seg_addrs(cell: &Cell, h: u8) -> Vec<IpAddr> {
    let mut a = Vec::new();
    if cell.v4() {
        a.push(IpAddr::V4(seg4(h)));
    }
    if cell.v6() {
        a.push(IpAddr::V6(seg6(h)));
    }
    a
}

fn seg4(host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, host)
}

/// An address on a switch segment, with its prefix length (/24, /64).
fn seg_net(a: IpAddr) -> IpNet {
    IpNet::new(a, if a.is_ipv4() { 24 } else { 64 }).expect("a valid prefix length")
}

/// The last node added holds these addresses on its segment port, eth1.
fn on_segment(plan: &mut Plan, addrs: &[IpAddr]) {
    if let Some(n) = plan.nodes.last_mut() {
        n.addrs = addrs.iter().map(|a| ("eth1".to_string(), seg_net(*a))).collect();
    }
}

/// `fd00::11` for host 11: the IPv4 host number read as the IPv6 one, as people write it.
fn seg6(host: u8) -> Ipv6Addr {
    format!("fd00::{host}").parse().expect("a valid address")
}

fn switch(ports: usize) -> PlanNode {
    let mut exec = vec!["ip link add br0 type bridge".to_string(), "ip link set br0 up".into()];
    for p in 1..=ports {
        exec.push(format!("ip link set eth{p} master br0"));
    }
    PlanNode {
        name: "sw".into(),
        role: Role::Switch,
        bgp: None,
        image: "podlab/base:latest".into(),
        blocks: vec![],
        pods: 0,
        files: vec![],
        exec,
        intent: None,
        router: None,
        addrs: vec![],
        about: String::new(),
    }
}

fn node(name: &str, about: &str, cell: &Cell, n: &NodeIntent, addrs: &[String]) -> PlanNode {
    PlanNode {
        name: name.into(),
        role: Role::Node,
        bgp: Some(cell.node.as_str()),
        image: image(cell.node).into(),
        blocks: n.blocks.clone(),
        pods: 2,
        files: speaker_files(name, about, n, cell.node),
        exec: node_exec(cell.node, addrs, &n.blocks),
        intent: Some(n.clone()),
        router: None,
        addrs: vec![],
        about: about.to_string(),
    }
}

fn router_files(r: Router, about: &str, ri: &RouterIntent, family: Family, tor: bool) -> Vec<(String, String, String)> {
    match r {
        Router::Frr => vec![(
            "frr.conf".into(),
            configs::frr_router(about, ri, family, tor),
            "/etc/frr/frr.conf".into(),
        )],
        Router::Bird => vec![(
            "bird.conf".into(),
            configs::bird_router(about, ri, family, tor),
            "/etc/bird/bird.conf".into(),
        )],
        Router::Gobgp => vec![(
            "gobgpd.toml".into(),
            configs::gobgp_rr(about, ri),
            "/etc/gobgp/gobgpd.toml".into(),
        )],
    }
}

impl Plan {
    /// Renders a cell.
    pub fn new(cell: Cell) -> Result<Plan, String> {
        let mut plan = match cell.fabric {
            Fabric::Mesh => mesh(cell),
            Fabric::Tor(Router::Gobgp) => {
                return Err("GoBGP has no kernel FIB: it cannot be a ToR (FIELD-NOTES)".into())
            }
            Fabric::Tor(r) => tor(cell, r),
            Fabric::Rr(r) => rr(cell, r),
            Fabric::DualTor(Router::Gobgp) => {
                return Err("GoBGP has no kernel FIB: it cannot be a ToR (FIELD-NOTES)".into())
            }
            Fabric::DualTor(r) => dual_tor(cell, r),
            Fabric::Rack => rack(cell),
        };
        // Each end of a point-to-point link holds its address of the link.
        for l in &plan.links {
            for (end, pick) in [(&l.a, 0), (&l.b, 1)] {
                if let Some(n) = plan.nodes.iter_mut().find(|n| n.name == end.0) {
                    for pair in &l.addrs {
                        n.addrs.push((end.1.clone(), if pick == 0 { pair.0 } else { pair.1 }));
                    }
                }
            }
        }
        Ok(plan)
    }

    /// The same cell with our speaker's nodes running `image` (a mutant's, say).
    pub fn with_speaker_image(mut self, image: &str) -> Plan {
        for n in self.nodes.iter_mut().filter(|n| n.bgp == Some("speaker")) {
            n.image = image.to_string();
        }
        self
    }

    /// The pools the cell's pod addresses come from.
    pub fn pools(&self) -> Vec<IpNet> {
        vec![net(POOL4), net(POOL6)]
    }

    /// The containerlab topology file.
    pub fn clab_yaml(&self) -> String {
        let mut s = String::new();
        for l in self.about.lines() {
            let _ = writeln!(s, "# {l}");
        }
        let _ = writeln!(
            s,
            "# Rendered by `lab render` for the cell [{}]; regenerated, not edited.",
            self.cell
        );
        let _ = writeln!(
            s,
            "name: {}\nmgmt:\n  network: {}-mgmt\n  ipv4-subnet: 172.21.{}.0/24\ntopology:\n  defaults:\n    kind: linux\n  kinds:\n    linux:\n      image: podlab/base:latest\n  nodes:",
            self.lab,
            self.lab,
            self.cell.index()
        );
        for n in &self.nodes {
            let _ = writeln!(s, "    {}:", n.name);
            if n.image != "podlab/base:latest" {
                let _ = writeln!(s, "      image: {}", n.image);
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
            if !n.exec.is_empty() {
                s.push_str("      exec:\n");
                for e in &n.exec {
                    let _ = writeln!(s, "        - {}", yaml_string(e));
                }
            }
        }
        s.push_str("  links:\n");
        for l in &self.links {
            let _ = writeln!(s, "    - endpoints: [\"{}:{}\", \"{}:{}\"]", l.a.0, l.a.1, l.b.0, l.b.1);
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
        std::fs::create_dir_all(dir)?;
        for n in &self.nodes {
            for (file, content, _) in &n.files {
                let d = dir.join(&n.name);
                std::fs::create_dir_all(&d)?;
                std::fs::write(d.join(file), content)?;
            }
        }
        let path = dir.join(format!("{}.clab.yml", self.lab));
        std::fs::write(&path, self.clab_yaml())?;
        Ok(path)
    }

    /// A Kubernetes node's configuration files rendered again from its intent, with
    /// `tweak` made to it (none: as the cell has it).
    pub fn node_files(&self, node: &str, tweaks: &[Tweak]) -> Result<Vec<(String, String, String)>, String> {
        let n = self
            .nodes
            .iter()
            .find(|n| n.name == node)
            .ok_or_else(|| format!("no node {node} in this cell"))?;
        let mut intent = n
            .intent
            .clone()
            .ok_or_else(|| format!("{node} is not a Kubernetes node: it has no BGP intent"))?;
        for tweak in tweaks {
            tweak.apply(&mut intent);
        }
        Ok(speaker_files(node, &n.about, &intent, self.cell.node))
    }

    /// The Kubernetes nodes.
    pub fn k8s_nodes(&self) -> impl Iterator<Item = &PlanNode> {
        self.nodes.iter().filter(|n| n.role == Role::Node)
    }
}

/// A command as one YAML scalar: quoted when it holds what YAML would read otherwise.
fn yaml_string(s: &str) -> String {
    if s.contains([
        '"', ':', '#', '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '%', '@', '`',
    ]) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        s.to_string()
    }
}

fn mesh(cell: Cell) -> Plan {
    const ASN: u32 = 64512;
    let hosts: [u8; 3] = [11, 12, 13];
    let shown: Vec<String> = [(cell.v4(), "10.0.0.11-13/24"), (cell.v6(), "fd00::11-13/64")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, a)| a.to_string())
        .collect();
    let mut plan = Plan {
        cell,
        lab: format!("c-{}", cell.slug()),
        about: format!(
            "Calico's default: three Kubernetes nodes in an iBGP node-to-node mesh (AS {ASN}) on\none L2 segment (a switch container bridging its ports), {} as the node speaker.\nx1 is a scripted peer (ExaBGP) with two eBGP sessions to n1 (of each family), from AS\n{XA} and AS {XB}, for the robustness cases; it announces nothing unless a case makes it.\n\n          sw (bridge br0)\n     /      |      |      \\\n   n1      n2      n3      x1     {}, x1 hosts 100-101",
            cell.node.as_str(),
            shown.join(", ")
        ),
        nodes: vec![switch(hosts.len() + 1)],
        links: Vec::new(),
    };
    let addr = |h: u8| seg_addrs(&cell, h);
    for (i, h) in hosts.iter().enumerate() {
        let k = i as u8 + 1;
        let name = format!("n{k}");
        let mut n = NodeIntent::new(ASN, seg4(*h), pools(&cell));
        n.blocks = blocks(&cell, k);
        n.addresses = addr(*h);
        n.node_to_node_mesh.enabled = true;
        n.node_to_node_mesh.peers = hosts.iter().filter(|o| *o != h).flat_map(|o| addr(*o)).collect();
        let mut about = "a Kubernetes node in Calico's node-to-node mesh (iBGP) with the other two.";
        if k == 1 {
            for (x, asn) in [(X_HOSTS[0], XA), (X_HOSTS[1], XB)] {
                for a in addr(x) {
                    n.peer(a, asn);
                    if asn == XA {
                        if let Some(p) = n.peers.last_mut() {
                            p.max_prefixes = Some(X_LIMIT);
                        }
                    }
                }
            }
            about = "a Kubernetes node in Calico's node-to-node mesh (iBGP) with the other two, and\nwith two eBGP BGPPeers (of each family) on x1, the first limited to 10 prefixes.";
        }
        plan.nodes
            .push(node(&name, about, &cell, &n, &segment_addrs(&addr(*h))));
        on_segment(&mut plan, &addr(*h));
        plan.links.push(PlanLink {
            a: (name, "eth1".into()),
            b: ("sw".into(), format!("eth{k}")),
            addrs: vec![],
        });
    }
    let about = "a scripted peer (ExaBGP) with two eBGP sessions (of each family) to n1.";
    let locals: Vec<(IpAddr, u32)> = [(X_HOSTS[0], XA), (X_HOSTS[1], XB)]
        .iter()
        .flat_map(|(h, asn)| addr(*h).into_iter().map(move |a| (a, *asn)))
        .collect();
    let mut exec = segment_addrs(&locals.iter().map(|(a, _)| *a).collect::<Vec<_>>());
    exec.extend(daemon_exec("exabgp"));
    plan.nodes.push(PlanNode {
        name: "x1".into(),
        role: Role::Peer,
        bgp: Some("exabgp"),
        image: "podlab/base:latest".into(),
        blocks: vec![],
        pods: 0,
        files: vec![(
            "exabgp.conf".into(),
            configs::exabgp_peer(about, "x1", &addr(hosts[0]), ASN, &locals),
            "/etc/exabgp/exabgp.conf".into(),
        )],
        exec,
        intent: None,
        router: None,
        addrs: locals.iter().map(|(a, _)| ("eth1".to_string(), seg_net(*a))).collect(),
        about: about.into(),
    });
    plan.links.push(PlanLink {
        a: ("x1".into(), "eth1".into()),
        b: ("sw".into(), format!("eth{}", hosts.len() + 1)),
        addrs: vec![],
    });
    plan
}

/// The scripted peer's addresses on the mesh segment, its two ASes, and the prefix
/// limit n1 sets on the first session.
const X_HOSTS: [u8; 2] = [100, 101];
const XA: u32 = 65000;
const XB: u32 = 65001;
const X_LIMIT: u32 = 10;

fn tor(cell: Cell, r: Router) -> Plan {
    let mut plan = Plan {
        cell,
        lab: format!("c-{}", cell.slug()),
        about: format!(
            "Two racks of two Kubernetes nodes, {} as the node speaker, each node eBGP (an AS per\nnode) to its rack's ToR ({}); the ToRs peer with each other.\n\n  tor1 (AS 65001) ---- tor2 (AS 65002)\n   |        |           |        |\n  n1       n2          n3       n4      (AS 65101..65104)",
            cell.node.as_str(),
            r.as_str()
        ),
        nodes: Vec::new(),
        links: Vec::new(),
    };
    let mut tors = two_tors();
    for k in 1..=4u8 {
        let (rack, slot) = ((k - 1) / 2 + 1, (k - 1) % 2);
        let tor4 = Ipv4Addr::new(10, 1, rack, slot * 2);
        let node4 = Ipv4Addr::new(10, 1, rack, slot * 2 + 1);
        let tor6 = Ipv6Addr::new(0xfd00, 1, u16::from(rack), u16::from(slot), 0, 0, 0, 1);
        let node6 = Ipv6Addr::new(0xfd00, 1, u16::from(rack), u16::from(slot), 0, 0, 0, 2);
        let name = format!("n{k}");
        let asn = 65100 + u32::from(k);
        let mut n = NodeIntent::new(asn, node4, pools(&cell));
        n.blocks = blocks(&cell, k);
        services(&mut n, &name, &cell);
        let (v4, v6) = (cell.v4().then_some((tor4, node4)), cell.v6().then_some((tor6, node6)));
        let addrs = uplink(&mut n, &name, &mut tors[usize::from(rack - 1)], v4, v6);
        let about = format!("a Kubernetes node of rack {rack}, eBGP to its ToR (AS per node).");
        // The outside client's network through the node's ToR, as its default route
        // would take it (the ToRs do not advertise it: a node's routes are its pods').
        let to_client = client_routes(&cell, IpAddr::V4(tor4), IpAddr::V6(tor6));
        plan.nodes.push(node(&name, &about, &cell, &n, &to_client));
        plan.links.push(PlanLink {
            a: (format!("tor{rack}"), format!("eth{}", slot + 1)),
            b: (name, "eth1".into()),
            addrs,
        });
    }
    // The ToRs' own link.
    let mut addrs = Vec::new();
    if cell.v4() {
        addrs.push((net("10.0.255.0/31"), net("10.0.255.1/31")));
        let pairs: [(usize, IpAddr, u32); 2] = [
            (0, IpAddr::V4(Ipv4Addr::new(10, 0, 255, 1)), 65002),
            (1, IpAddr::V4(Ipv4Addr::new(10, 0, 255, 0)), 65001),
        ];
        for (t, addr, asn) in pairs {
            tors[t].neighbors.push(RouterNeighbor {
                name: format!("tor{}", 2 - t),
                address: addr,
                as_number: asn,
                rr_client: false,
                next_hop_self: false,
            });
        }
    }
    if cell.v6() {
        addrs.push((net("fd00:1:255::1/64"), net("fd00:1:255::2/64")));
        tors[0].neighbors.push(RouterNeighbor {
            name: "tor2".into(),
            address: "fd00:1:255::2".parse().expect("literal"),
            as_number: 65002,
            rr_client: false,
            next_hop_self: false,
        });
        tors[1].neighbors.push(RouterNeighbor {
            name: "tor1".into(),
            address: "fd00:1:255::1".parse().expect("literal"),
            as_number: 65001,
            rr_client: false,
            next_hop_self: false,
        });
    }
    plan.links.push(PlanLink {
        a: ("tor1".into(), "eth3".into()),
        b: ("tor2".into(), "eth3".into()),
        addrs,
    });
    add_tors(&mut plan, &tors, r, |t| {
        format!(
            "the top-of-rack router of rack {} ({}), eBGP to its nodes and the other ToR.",
            &t.name[3..],
            r.as_str()
        )
    });
    // The client behind tor1; tor2 reaches it through tor1.
    let tor2_to_client = client_routes(
        &cell,
        IpAddr::V4(Ipv4Addr::new(10, 0, 255, 0)),
        "fd00:1:255::1".parse().expect("literal"),
    );
    add_client(&mut plan, "tor1", "eth4", &[("tor2", tor2_to_client)]);
    plan
}

/// The service CIDRs every node advertises (BGPConfiguration
/// `serviceLoadBalancerIPs`), of the cell's families: the SVC cases' services take
/// their IPs there.
pub const SERVICE_CIDR4: &str = "198.51.100.0/24";
pub const SERVICE_CIDR6: &str = "fd00:198::/112";
/// The cluster IP CIDRs (`serviceClusterIPs`).
pub const CLUSTER_CIDR4: &str = "10.96.0.0/16";
pub const CLUSTER_CIDR6: &str = "fd00:96::/112";
/// The outside client's link to its router: the router's end, the client's end.
const CLIENT4: (&str, &str) = ("10.1.9.0/31", "10.1.9.1/31");
const CLIENT6: (&str, &str) = ("fd00:1:9::1/64", "fd00:1:9::2/64");

/// A node of a fabric with a client outside the cluster advertises the service
/// CIDRs (the speaker from its configuration; BIRD and FRR as static routes of
/// theirs, `services/confd.rs`).
fn services(n: &mut NodeIntent, name: &str, cell: &Cell) {
    n.node_name = Some(name.to_string());
    for (on, lb, cluster) in [
        (cell.v4(), SERVICE_CIDR4, CLUSTER_CIDR4),
        (cell.v6(), SERVICE_CIDR6, CLUSTER_CIDR6),
    ] {
        if on {
            n.service_load_balancer_ips.push(intent::CidrIntent { cidr: net(lb) });
            n.service_cluster_ips.push(intent::CidrIntent { cidr: net(cluster) });
        }
    }
}

/// `ip route add` of the client's network through `via4` / `via6`, of the cell's
/// families.
fn client_routes(cell: &Cell, via4: IpAddr, via6: IpAddr) -> Vec<String> {
    let mut r = Vec::new();
    if cell.v4() {
        r.push(format!("ip route add {} via {via4}", net(CLIENT4.1).trunc()));
    }
    if cell.v6() {
        r.push(format!("ip -6 route add {} via {via6}", net(CLIENT6.1).trunc()));
    }
    r
}

/// A client outside the cluster (SVC cases): a plain container linked to `router`'s
/// `iface`, routing the service CIDRs to it; the router hashes ECMP on ports, so that
/// connections to a service spread over the nodes that advertise it, and `others`
/// get their routes to the client's network.
fn add_client(plan: &mut Plan, router: &str, iface: &str, others: &[(&str, Vec<String>)]) {
    let cell = plan.cell;
    let mut exec = Vec::new();
    let mut addrs = Vec::new();
    for (on, (r, c), lb, cluster, f) in [
        (cell.v4(), CLIENT4, SERVICE_CIDR4, CLUSTER_CIDR4, ""),
        (cell.v6(), CLIENT6, SERVICE_CIDR6, CLUSTER_CIDR6, "-6 "),
    ] {
        if on {
            for cidr in [lb, cluster] {
                exec.push(format!("ip {f}route add {cidr} via {}", net(r).addr()));
            }
            addrs.push((net(r), net(c)));
        }
    }
    for n in plan.nodes.iter_mut() {
        if n.name == router {
            n.exec.insert(
                0,
                "sysctl -qw net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1".into(),
            );
        }
        if let Some((_, routes)) = others.iter().find(|(o, _)| *o == n.name) {
            for (i, r) in routes.iter().enumerate() {
                n.exec.insert(i, r.clone());
            }
        }
    }
    plan.nodes.push(PlanNode {
        name: "client".into(),
        role: Role::Client,
        bgp: None,
        image: "podlab/base:latest".into(),
        blocks: vec![],
        pods: 0,
        files: vec![],
        exec,
        intent: None,
        router: None,
        addrs: addrs.iter().map(|(_, c)| ("eth1".to_string(), *c)).collect(),
        about: "a host outside the cluster, routed by the fabric: the SVC cases' client.".into(),
    });
    plan.links.push(PlanLink {
        a: (router.into(), iface.into()),
        b: ("client".into(), "eth1".into()),
        addrs,
    });
}

/// One rack, two ToRs, every node dual-homed: a link and an eBGP session to each ToR
/// (an AS per node, an AS per ToR), so every node learns every other node's block
/// from both ToRs with AS paths of one length, and ECMP carries it over both.
fn dual_tor(cell: Cell, r: Router) -> Plan {
    let mut plan = Plan {
        cell,
        lab: format!("c-{}", cell.slug()),
        about: format!(
            "One rack of three Kubernetes nodes, {} as the node speaker, each dual-homed: a link\nand an eBGP session (an AS per node) to each of the rack's two ToRs ({}). Every\nblock reaches the other nodes over both ToRs: one route, two next hops (ECMP).\n\n  tor1 (AS 65001)        tor2 (AS 65002)\n   |eth1 |eth2 |eth3      |eth1 |eth2 |eth3\n  n1    n2    n3  (eth1)  n1    n2    n3  (eth2)     n1..n3: AS 65101..65103",
            cell.node.as_str(),
            r.as_str()
        ),
        nodes: Vec::new(),
        links: Vec::new(),
    };
    let mut tors = two_tors();
    for k in 1..=3u8 {
        let name = format!("n{k}");
        let asn = 65100 + u32::from(k);
        // Towards tor t: 10.t.k.0/31 (the ToR) and .1 (the node); fd00:t:k::1 and ::2.
        let ends = |t: u8| {
            (
                Ipv4Addr::new(10, t, k, 0),
                Ipv4Addr::new(10, t, k, 1),
                Ipv6Addr::new(0xfd00, u16::from(t), u16::from(k), 0, 0, 0, 0, 1),
                Ipv6Addr::new(0xfd00, u16::from(t), u16::from(k), 0, 0, 0, 0, 2),
            )
        };
        let mut n = NodeIntent::new(asn, ends(1).1, pools(&cell));
        n.blocks = blocks(&cell, k);
        for t in 1..=2u8 {
            let (tor4, node4, tor6, node6) = ends(t);
            let (v4, v6) = (cell.v4().then_some((tor4, node4)), cell.v6().then_some((tor6, node6)));
            let addrs = uplink(&mut n, &name, &mut tors[usize::from(t - 1)], v4, v6);
            plan.links.push(PlanLink {
                a: (format!("tor{t}"), format!("eth{k}")),
                b: (name.clone(), format!("eth{t}")),
                addrs,
            });
        }
        let about = "a Kubernetes node dual-homed to both ToRs, eBGP to each (AS per node).";
        plan.nodes.push(node(&name, about, &cell, &n, &[]));
    }
    add_tors(&mut plan, &tors, r, |_| {
        format!(
            "one of the rack's two top-of-rack routers ({}), eBGP to every node.",
            r.as_str()
        )
    });
    plan
}

fn rack(cell: Cell) -> Plan {
    let mut plan = Plan {
        cell,
        lab: format!("c-{}", cell.slug()),
        about: format!(
            "Calico's AS per rack: two racks of two Kubernetes nodes, {} as the node speaker,\neach rack one AS, its nodes iBGP route-reflector clients of their ToR (next hop\nself); the ToRs eBGP to a spine. Rack 1's ToR is FRR, rack 2's BIRD, the spine FRR.\n\n      client --- spine (FRR, AS 65000)\n                /                      \\\n  tor1 (FRR, AS 65101, RR)      tor2 (BIRD, AS 65102, RR)\n     |          |                  |          |\n    n1         n2                 n3         n4",
            cell.node.as_str()
        ),
        nodes: Vec::new(),
        links: Vec::new(),
    };
    let mut tors: Vec<RouterIntent> = (1..=2u8)
        .map(|t| RouterIntent {
            name: format!("tor{t}"),
            as_number: 65100 + u32::from(t),
            router_id: Ipv4Addr::new(10, 0, 255, 2 * t - 1),
            cluster_id: Some(Ipv4Addr::new(10, 0, 255, 2 * t - 1)),
            neighbors: Vec::new(),
            addresses: Vec::new(),
        })
        .collect();
    let mut spine = RouterIntent {
        name: "spine".into(),
        as_number: 65000,
        router_id: Ipv4Addr::new(10, 0, 255, 254),
        cluster_id: None,
        neighbors: Vec::new(),
        addresses: Vec::new(),
    };
    for k in 1..=4u8 {
        let (rack, slot) = ((k - 1) / 2 + 1, (k - 1) % 2);
        let tor = &mut tors[usize::from(rack - 1)];
        let name = format!("n{k}");
        let tor4 = Ipv4Addr::new(10, 1, rack, slot * 2);
        let node4 = Ipv4Addr::new(10, 1, rack, slot * 2 + 1);
        let tor6 = Ipv6Addr::new(0xfd00, 1, u16::from(rack), u16::from(slot), 0, 0, 0, 1);
        let node6 = Ipv6Addr::new(0xfd00, 1, u16::from(rack), u16::from(slot), 0, 0, 0, 2);
        let mut n = NodeIntent::new(tor.as_number, node4, pools(&cell));
        n.blocks = blocks(&cell, k);
        services(&mut n, &name, &cell);
        let (v4, v6) = (cell.v4().then_some((tor4, node4)), cell.v6().then_some((tor6, node6)));
        let addrs = uplink(&mut n, &name, tor, v4, v6);
        let about =
            format!("a Kubernetes node of rack {rack}, an iBGP route-reflector client of its ToR (AS per rack).");
        let to_client = client_routes(&cell, IpAddr::V4(tor4), IpAddr::V6(tor6));
        plan.nodes.push(node(&name, &about, &cell, &n, &to_client));
        plan.links.push(PlanLink {
            a: (format!("tor{rack}"), format!("eth{}", slot + 1)),
            b: (name, "eth1".into()),
            addrs,
        });
    }
    // The ToRs' links to the spine: spine eth<t> to tor<t> eth3.
    let mut to_client = Vec::new();
    for t in 1..=2u8 {
        let tor = &mut tors[usize::from(t - 1)];
        let (spine4, tor4) = (
            Ipv4Addr::new(10, 0, 255, 2 * t - 2),
            Ipv4Addr::new(10, 0, 255, 2 * t - 1),
        );
        let (spine6, tor6) = (
            Ipv6Addr::new(0xfd00, 0, 255, u16::from(t), 0, 0, 0, 1),
            Ipv6Addr::new(0xfd00, 0, 255, u16::from(t), 0, 0, 0, 2),
        );
        let mut addrs = Vec::new();
        let ends = [
            (cell.v4(), IpAddr::V4(spine4), IpAddr::V4(tor4), 31),
            (cell.v6(), IpAddr::V6(spine6), IpAddr::V6(tor6), 64),
        ];
        for (_, s_ip, t_ip, len) in ends.into_iter().filter(|e| e.0) {
            spine.neighbors.push(RouterNeighbor {
                name: tor.name.clone(),
                address: t_ip,
                as_number: tor.as_number,
                rr_client: false,
                next_hop_self: false,
            });
            tor.neighbors.push(RouterNeighbor {
                name: "spine".into(),
                address: s_ip,
                as_number: spine.as_number,
                rr_client: false,
                next_hop_self: false,
            });
            addrs.push((IpNet::new(s_ip, len).expect("len"), IpNet::new(t_ip, len).expect("len")));
        }
        plan.links.push(PlanLink {
            a: ("spine".into(), format!("eth{t}")),
            b: (tor.name.clone(), "eth3".into()),
            addrs,
        });
        to_client.push((
            tor.name.clone(),
            client_routes(&cell, IpAddr::V4(spine4), IpAddr::V6(spine6)),
        ));
    }
    let routers = [
        (Router::Frr, &tors[0], "rack 1's top-of-rack router (FRR), AS 65101: a route reflector for its nodes, next\nhop self, eBGP to the spine.".to_string()),
        (Router::Bird, &tors[1], "rack 2's top-of-rack router (BIRD), AS 65102: a route reflector for its nodes, next\nhop self, eBGP to the spine.".to_string()),
        (Router::Frr, &spine, "the spine (FRR), AS 65000, eBGP to each rack's ToR.".to_string()),
    ];
    for (i, (r, ri, about)) in routers.into_iter().enumerate() {
        plan.nodes.insert(
            i,
            PlanNode {
                name: ri.name.clone(),
                role: if ri.name == "spine" { Role::Spine } else { Role::Tor },
                bgp: Some(r.as_str()),
                image: "podlab/base:latest".into(),
                blocks: vec![],
                pods: 0,
                files: router_files(r, &about, ri, cell.family, true),
                exec: daemon_exec(r.as_str()),
                intent: None,
                router: Some(ri.clone()),
                addrs: vec![],
                about,
            },
        );
    }
    // The client behind the spine, which spreads its connections over both racks.
    let others: Vec<(&str, Vec<String>)> = to_client.iter().map(|(t, r)| (t.as_str(), r.clone())).collect();
    add_client(&mut plan, "spine", "eth3", &others);
    plan
}

/// A node's uplink to a ToR over a point-to-point link: the sessions over IPv4 and
/// IPv6 as the cell has them, on both sides, from the node's address on the link, and
/// the link's addresses (the ToR's end first). eBGP where the node has an AS of its
/// own; where it shares the ToR's (AS per rack), iBGP with the node the ToR's
/// route-reflector client and the ToR the next hop.
fn uplink(
    n: &mut NodeIntent,
    name: &str,
    tor: &mut RouterIntent,
    v4: Option<(Ipv4Addr, Ipv4Addr)>,
    v6: Option<(Ipv6Addr, Ipv6Addr)>,
) -> Vec<(IpNet, IpNet)> {
    let ends = v4
        .map(|(t, m)| (IpAddr::V4(t), IpAddr::V4(m), 31))
        .into_iter()
        .chain(v6.map(|(t, m)| (IpAddr::V6(t), IpAddr::V6(m), 64)));
    let mut addrs = Vec::new();
    for (tor_ip, node_ip, len) in ends {
        n.addresses.push(node_ip);
        n.peer_from(tor_ip, tor.as_number, node_ip);
        tor.neighbors.push(RouterNeighbor {
            name: name.to_string(),
            address: node_ip,
            as_number: n.as_number,
            rr_client: n.as_number == tor.as_number,
            next_hop_self: n.as_number == tor.as_number,
        });
        addrs.push((
            IpNet::new(tor_ip, len).expect("len"),
            IpNet::new(node_ip, len).expect("len"),
        ));
    }
    addrs
}

/// tor1 (AS 65001) and tor2 (AS 65002), no neighbors yet.
fn two_tors() -> Vec<RouterIntent> {
    (1..=2u8)
        .map(|t| RouterIntent {
            name: format!("tor{t}"),
            as_number: 65000 + u32::from(t),
            router_id: Ipv4Addr::new(10, 0, 255, t - 1),
            cluster_id: None,
            neighbors: Vec::new(),
            addresses: Vec::new(),
        })
        .collect()
}

/// The ToRs as the first nodes of the plan, in order, each described by `about`.
fn add_tors(plan: &mut Plan, tors: &[RouterIntent], r: Router, about: impl Fn(&RouterIntent) -> String) {
    for t in tors.iter().rev() {
        let about = about(t);
        plan.nodes.insert(
            0,
            PlanNode {
                name: t.name.clone(),
                role: Role::Tor,
                bgp: Some(r.as_str()),
                image: "podlab/base:latest".into(),
                blocks: vec![],
                pods: 0,
                files: router_files(r, &about, t, plan.cell.family, true),
                exec: daemon_exec(r.as_str()),
                intent: None,
                router: Some(t.clone()),
                addrs: vec![],
                about,
            },
        );
    }
}

fn rr(cell: Cell, r: Router) -> Plan {
    const ASN: u32 = 64512;
    let hosts: [u8; 3] = [11, 12, 13];
    let mut plan = Plan {
        cell,
        lab: format!("c-{}", cell.slug()),
        about: format!(
            "Three Kubernetes nodes, {} as the node speaker, iBGP (AS {ASN}) clients of a route\nreflector ({}) on one L2 segment, as Calico runs with route reflectors (no mesh).\n\n            sw (bridge br0)\n     /      |      |      \\\n   rr      n1     n2      n3      10.0.0.2, 10.0.0.11-13/24",
            cell.node.as_str(),
            r.as_str()
        ),
        nodes: vec![switch(hosts.len() + 1)],
        links: Vec::new(),
    };
    let addr = |h: u8| seg_addrs(&cell, h);
    let mut rri = RouterIntent {
        name: "rr".into(),
        as_number: ASN,
        router_id: seg4(2),
        cluster_id: Some(seg4(2)),
        neighbors: Vec::new(),
        addresses: addr(2),
    };
    for (i, h) in hosts.iter().enumerate() {
        let k = i as u8 + 1;
        let name = format!("n{k}");
        let mut n = NodeIntent::new(ASN, seg4(*h), pools(&cell));
        n.blocks = blocks(&cell, k);
        n.addresses = addr(*h);
        for a in addr(2) {
            n.peer(a, ASN);
        }
        for a in addr(*h) {
            rri.neighbors.push(RouterNeighbor {
                name: name.clone(),
                address: a,
                as_number: ASN,
                rr_client: true,
                next_hop_self: false,
            });
        }
        let about = "a Kubernetes node, an iBGP client of the route reflector (no node-to-node mesh).";
        plan.nodes
            .push(node(&name, about, &cell, &n, &segment_addrs(&addr(*h))));
        on_segment(&mut plan, &addr(*h));
        plan.links.push(PlanLink {
            a: (name, "eth1".into()),
            b: ("sw".into(), format!("eth{}", k + 1)),
            addrs: vec![],
        });
    }
    let about = format!("the route reflector ({}) of the nodes, cluster 10.0.0.2.", r.as_str());
    let mut exec = segment_addrs(&addr(2));
    exec.extend(daemon_exec(r.as_str()));
    plan.nodes.insert(
        1,
        // The reflectors only reflect (they program no kernel, `Role::Rr`): FRR's with
        // `bgp no-rib`, BIRD's without a kernel protocol, GoBGP's with none at all.
        PlanNode {
            name: "rr".into(),
            role: Role::Rr,
            bgp: Some(r.as_str()),
            image: "podlab/base:latest".into(),
            blocks: vec![],
            pods: 0,
            files: router_files(r, &about, &rri, cell.family, false),
            exec,
            intent: None,
            addrs: rri
                .addresses
                .iter()
                .map(|a| ("eth1".to_string(), seg_net(*a)))
                .collect(),
            router: Some(rri),
            about,
        },
    );
    plan.links.insert(
        0,
        PlanLink {
            a: ("rr".into(), "eth1".into()),
            b: ("sw".into(), "eth1".into()),
            addrs: vec![],
        },
    );
    plan
}

/// Renders `cells` into `dir/<slug>/`; returns each cell's topology file.
pub fn render_all(cells: &[Cell], dir: &Path) -> Result<BTreeMap<Cell, PathBuf>, String> {
    let mut out = BTreeMap::new();
    for c in cells {
        let plan = Plan::new(*c)?;
        let path = plan
            .write(&dir.join(c.slug()))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        out.insert(*c, path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

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
                        let v: serde_yaml::Value =
                            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
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
