//! What a case's expectations take, one type per check.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectExpect {
    pub service: String,
    /// Connections per address of the service.
    #[serde(default = "twenty")]
    pub count: usize,
    /// Every answer came from one of these pods.
    pub by: Vec<String>,
    /// Each of them answered at least once.
    #[serde(default)]
    pub each: bool,
    /// The pods saw the client's own address (policy Local: no masquerade).
    #[serde(default)]
    pub client_seen: bool,
    /// Connections that may fail (refused, timed out).
    #[serde(default)]
    pub max_failed: usize,
}

fn twenty() -> usize {
    20
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedExpect {
    pub service: String,
    /// A node set (`all`, `n1,n3`), or `none`.
    pub from: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionExpect {
    pub node: String,
    /// A node, or an address.
    pub peer: String,
    pub up: SessionState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum SessionState {
    /// `false`: not Established.
    Up(bool),
    /// `reset`: down, or up again for 2 s at most.
    Reset(ResetWord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResetWord {
    Reset,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdvertisedExpect {
    /// The router that advertises.
    pub node: String,
    /// The node it advertises to (its sessions of each family).
    pub to: String,
    pub has: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpForExpect {
    pub node: String,
    /// A node, or an address.
    pub peer: String,
    /// Up at least this long (`5s`); by default, since the case started.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    /// And at most this long: the session was reset within it (a case's reset did
    /// happen).
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputExpect {
    pub node: String,
    pub cmd: String,
    pub line: Vec<String>,
    /// No line holds all of `line` (what a command no longer shows).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReflectedExpect {
    pub node: String,
    pub prefix: String,
    pub originator: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommunitiesExpect {
    pub node: String,
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub has: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lacks: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CapsExpect {
    pub node: String,
    pub peer: String,
    pub has: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InfoExpect {
    pub node: String,
    /// Only its sessions with this peer (a node, or an address); all of them if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    pub any: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RssExpect {
    pub node: String,
    pub max_kib: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum SessionsExpect {
    /// `true`: every session Established.
    All(bool),
    /// The sessions the listed nodes' peers have with them are not Established.
    Down { down: Vec<String> },
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PingExpect {
    /// `all`: every pod pings every other.
    All(String),
    Pair {
        from: String,
        to: String,
    },
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FibExpect {
    /// `all` (Kubernetes nodes), `others:n1`, or a node list `n2,n3`.
    #[serde(default = "all")]
    pub nodes: String,
    #[serde(default)]
    pub has: Vec<String>,
    #[serde(default)]
    pub lacks: Vec<String>,
    /// The routes of `has` are of this protocol (`static`, `bird`, ...), and no route of
    /// another is beside them.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Each route of `has` is one route with this many different next hops (ECMP).
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_hops: Option<usize>,
}

fn all() -> String {
    "all".into()
}
