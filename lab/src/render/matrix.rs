//! The matrix: what runs BGP on the nodes, the fabric, the family, and the cells they make.

use std::fmt;
use std::str::FromStr;

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
    pub(super) fn index(&self) -> usize {
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
