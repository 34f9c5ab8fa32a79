//! Every label `lab` reads or writes, by name: those a topology puts on a node to say
//! what runs there (`lab.*`), those on the containers it makes (containerlab's own, so
//! containerlab's tools see them, and the runner's), and the one on images it builds.
//! A node's role is a [`Role`], read once when the topology is.

use std::fmt;
use std::str::FromStr;

/// The BGP implementation a node runs: speaker, bird, frr, gobgp, exabgp.
pub const BGP: &str = "lab.bgp";
/// The node's part in the fabric: a [`Role`].
pub const ROLE: &str = "lab.role";
/// A Kubernetes node's pod blocks, comma-separated CIDRs.
pub const BLOCK: &str = "lab.block";
/// How many pods `lab up` creates on the node.
pub const PODS: &str = "lab.pods";
/// `lab.service.<name>`: a service `lab up` creates.
pub const SERVICE_PREFIX: &str = "lab.service.";

/// On every container and network `lab` creates: `down --all` removes what has it.
pub const LABEL_RUNNER: &str = "dev.podlab.runner";
/// The lab's name, under the key containerlab uses, so `containerlab inspect` sees it too.
pub const LABEL_LAB: &str = "containerlab";
pub const LABEL_NODE: &str = "clab-node-name";
pub const LABEL_KIND: &str = "clab-node-kind";
pub const LABEL_TOPO: &str = "clab-topo-file";
pub const LABEL_GROUP: &str = "clab-node-group";
/// Who deployed the lab: the user behind sudo, or the user.
pub const LABEL_OWNER: &str = "clab-owner";
/// On images `lab images` builds: the hash of their inputs.
pub const LABEL_INPUTS: &str = "dev.podlab.inputs";

/// A node's part in the fabric (`lab.role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A Kubernetes node: pods, a node speaker, its blocks.
    Node,
    /// A top-of-rack router.
    Tor,
    Spine,
    /// A route reflector that installs nothing in its kernel.
    Rr,
    /// A scripted peer (ExaBGP).
    Peer,
    /// A bridge between nodes of one segment.
    Switch,
    /// A host outside the cluster that reaches services.
    Client,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Node,
        Role::Tor,
        Role::Spine,
        Role::Rr,
        Role::Peer,
        Role::Switch,
        Role::Client,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Tor => "tor",
            Role::Spine => "spine",
            Role::Rr => "rr",
            Role::Peer => "peer",
            Role::Switch => "switch",
            Role::Client => "client",
        }
    }

    /// Whether a BGP daemon in this role programs its kernel with what it learns, so
    /// that it must follow every route change (the one rule the suite's timings and
    /// `lab pod --timing` share): nodes, ToRs and spines do; reflectors, scripted
    /// peers, switches and clients do not.
    pub fn programs_kernel(self) -> bool {
        matches!(self, Role::Node | Role::Tor | Role::Spine)
    }

    /// A fabric router: what a client's traffic and the nodes' routes cross.
    pub fn is_router(self) -> bool {
        matches!(self, Role::Tor | Role::Spine | Role::Rr)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; one of {}", Role::ALL.map(Role::as_str).join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_back_what_they_print() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("leaf".parse::<Role>().unwrap_err().contains("one of node, tor"));
        assert!(Role::Tor.programs_kernel() && !Role::Rr.programs_kernel());
    }
}
