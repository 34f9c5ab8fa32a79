//! Conformance cases as data: `suites/<family>.yaml` files hold the cases of one
//! family of the catalogue (`SES`, `RT`, ...), each with an ID, a title, the cells
//! it applies to (and the ones left out, with why), and its steps: actions on the
//! lab and expectations retried until they hold or a deadline passes. Errors name
//! the file, the line where YAML knows it, and the field.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::render::{Cell, Fabric, Family, NodeSpeaker};

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}: {msg}")]
    Invalid { file: PathBuf, msg: String },
}

/// Why a case failed: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub at: At,
    /// The step as the case file writes it, when a step failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
    pub message: String,
}

impl Reason {
    pub fn deploy(message: String) -> Reason {
        Reason {
            at: At::Phase(Phase::Deploy),
            step: String::new(),
            message,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.step.is_empty() {
            write!(f, "{}: {}", self.at, self.message)
        } else {
            write!(f, "{} {}: {}", self.at, self.step, self.message)
        }
    }
}

/// One file of cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// The catalogue's family: SES, RT, DP, WD, GR, RB.
    pub family: String,
    pub title: String,
    pub cases: Vec<Case>,
    #[serde(skip)]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub title: String,
    /// The cells it runs on; empty lists mean every value.
    #[serde(default)]
    pub cells: CellFilter,
    /// Cells left out, each with why: a case that does not make sense there.
    #[serde(default)]
    pub skip: Vec<Skip>,
    /// What is known of failures of the reference rows on some cells, by symptom: the
    /// step that fails and what it says. A failure every reason of which a finding
    /// matches is explained (a result about BIRD or FRR, not a skip); any other is not.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Part of the smoke subset `make test` runs.
    #[serde(default)]
    pub smoke: bool,
    pub steps: Vec<Step>,
    /// Run after the steps whatever happened, to give the lab back as it was.
    #[serde(default)]
    pub always: Vec<Step>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CellFilter {
    #[serde(default)]
    pub node: Vec<String>,
    /// `mesh`, `tor`, `rr` (any implementation), or `tor/frr` and the like.
    #[serde(default)]
    pub fabric: Vec<String>,
    #[serde(default)]
    pub family: Vec<String>,
}

impl CellFilter {
    /// Whether a case with these cells runs on `cell`. A fabric that only the cases
    /// naming it run on (`Fabric::opt_in`) matches only when named.
    pub fn matches(&self, cell: &Cell) -> bool {
        self.matches_any_fabric(cell) && (!cell.fabric.opt_in() || !self.fabric.is_empty())
    }

    /// Any fabric matches an empty list: a `skip` or a finding without `fabric`
    /// applies on every fabric.
    fn matches_any_fabric(&self, cell: &Cell) -> bool {
        (self.node.is_empty() || self.node.iter().any(|n| n == cell.node.as_str()))
            && (self.fabric.is_empty()
                || self
                    .fabric
                    .iter()
                    .any(|f| *f == cell.fabric.to_string() || f == cell.fabric.kind()))
            && (self.family.is_empty() || self.family.iter().any(|f| f == cell.family.as_str()))
    }

    fn check(&self) -> Result<(), String> {
        for n in &self.node {
            n.parse::<NodeSpeaker>()?;
        }
        for f in &self.fabric {
            Fabric::check_name(f)?;
        }
        for f in &self.family {
            f.parse::<Family>()?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skip {
    #[serde(flatten)]
    pub cells: CellFilter,
    pub why: String,
}

/// A failure of a reference row the suite knows, by symptom.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// The node speakers, the fabrics and the families it is seen on: all three named
    /// (never our speaker: its failures are failures).
    #[serde(flatten)]
    pub cells: CellFilter,
    /// The step that fails: its number in `steps` (from 1), `always` (putting the
    /// lab back), or `after` (WD-04 after the case).
    pub step: At,
    /// What the failure says, `*` standing for any text: one pattern, or several. A
    /// message that lists several things wrong (`; ` between them) is explained only
    /// if each of them matches one.
    pub message: Patterns,
    pub why: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Patterns {
    One(String),
    Many(Vec<String>),
}

impl Patterns {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Patterns::One(p) => vec![p.as_str()],
            Patterns::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// The things wrong a failure's message lists, without the deadline it says first
/// (`not within 2.0 s: a; b` is `a` and `b`).
fn items(message: &str) -> Vec<&str> {
    let rest = match message.strip_prefix("not within ") {
        Some(r) => r.split_once(" s: ").map_or(message, |(_, r)| r),
        None => message,
    };
    rest.split("; ").collect()
}

/// Where in a case a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", untagged)]
pub enum At {
    /// A step of `steps`, counted from 1.
    Step(usize),
    /// One of the others, by name: `always`, `after`, `deploy`.
    Phase(Phase),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A step of `always`, putting the lab back.
    Always,
    /// WD-04 after the case.
    After,
    /// The cell did not come up (or back up after an earlier case).
    Deploy,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Step(n) => write!(f, "step {n}"),
            At::Phase(Phase::Always) => f.write_str("putting the lab back"),
            At::Phase(Phase::After) => f.write_str("WD-04 nothing lingers, after the case"),
            At::Phase(Phase::Deploy) => f.write_str("the cell did not come up"),
        }
    }
}

/// Whether `text` is `pattern`, each `*` of which stands for any text.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for piece in middle {
        match rest.find(piece) {
            Some(k) => rest = &rest[k + piece.len()..],
            None => return false,
        }
    }
    true
}

/// One step: exactly one action or expectation, and what modifies it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A pod: `{node: n1, name: web, ip: borrowed}` (`ip`: `borrowed` from no block,
    /// `borrowed:n2` from n2's block, the next free address of the node's own block
    /// when absent, or an address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_add: Option<PodAdd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_del: Option<NodeName>,
    /// `ip route` in a node: `{node: n1, add: "blackhole {n1.block}"}` (or del, replace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteAct>,
    /// A link end down or up: `{node: n1, iface: eth1, up: false}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkAct>,
    /// `docker pause` / `unpause` of a node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpause: Option<String>,
    /// The node's BGP daemon: `{node: n1, do: stop|kill|start}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon: Option<DaemonAct>,
    /// Drops the node's BGP connections as they are now, both ways, so that a daemon
    /// killed after it closes nothing its peers see (a node that lost power).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_sessions: Option<String>,
    /// Lets them through again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncut_sessions: Option<String>,
    /// A link taken down and up `times` times, 100 ms each way: `{node, iface, times}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flap: Option<FlapAct>,
    /// Pod churn: `cycles` borrowed pods added and deleted one after the other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnAct>,
    /// A command in a node: `{node: tor1, cmd: "vtysh -c 'clear bgp {n1.addr}'"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAct>,
    /// A fabric router announces a prefix, or stops: `{node: tor1, prefix: 0.0.0.0/0}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announce: Option<PrefixAct>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdraw: Option<PrefixAct>,
    /// A node's BGP intent changed and its daemon told to read it again:
    /// `{node: n1, change: wrong_peer_as}` (or `no_graceful_restart`, `bfd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconfigure: Option<ReconfigureAct>,
    /// A node's configuration as the cell has it again, read again by its daemon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<String>,
    /// A continuous ping between pods, for the loss it counts: `{from: POD, to: POD}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    /// A pause in the case: `2s`, `500ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// On an action: time how its route change reaches the other nodes' kernels,
    /// from route events, against a budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<Timing>,
    /// The step runs only on cells of this family (`dual`: IPv6 beside IPv4), or of
    /// these (`[v4, dual]`: where there is IPv4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Families>,
    /// The step runs only on cells of these fabrics (`tor`, `rr/frr`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fabric: Vec<String>,
}

/// One family, or several.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Families {
    One(String),
    Many(Vec<String>),
}

impl Families {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Families::One(f) => vec![f.as_str()],
            Families::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PodAdd {
    pub node: String,
    pub name: String,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeName {
    pub node: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAct {
    pub node: String,
    /// `ip route replace`: adds, or leaves as it is (for `always` steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<Routes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add: Option<Routes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub del: Option<Routes>,
}

/// One route, or several changed at once (one after the other in a single command:
/// two blocks released together, as Calico's IPAM may).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Routes {
    One(String),
    Many(Vec<String>),
}

impl Routes {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Routes::One(r) => vec![r.as_str()],
            Routes::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkAct {
    pub node: String,
    #[serde(default = "eth1")]
    pub iface: String,
    pub up: bool,
}

fn eth1() -> String {
    "eth1".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonOp {
    /// SIGTERM.
    Stop,
    /// SIGKILL.
    Kill,
    /// Started again, as the node's `exec` started it.
    Start,
    /// Withdraw the node's routes before maintenance, where the daemon can.
    Drain,
    Undrain,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExecAct {
    pub node: String,
    pub cmd: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixAct {
    pub node: String,
    pub prefix: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReconfigureAct {
    pub node: String,
    /// One change, or several: `[short_hold, no_graceful_restart]`.
    pub change: Tweaks,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Tweaks {
    One(crate::render::Tweak),
    Many(Vec<crate::render::Tweak>),
}

impl Tweaks {
    pub fn list(&self) -> Vec<crate::render::Tweak> {
        match self {
            Tweaks::One(t) => vec![*t],
            Tweaks::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlapAct {
    pub node: String,
    #[serde(default = "eth1")]
    pub iface: String,
    pub times: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnAct {
    pub node: String,
    pub cycles: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonAct {
    pub node: String,
    #[serde(rename = "do")]
    pub op: DaemonOp,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// How long it may take to hold (retried until then): default 10 s.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// Every session of the lab Established (`true`), or the sessions of the nodes
    /// listed not Established.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionsExpect>,
    /// Prefixes in kernel FIBs: `{nodes: others:n1, has: [...], lacks: [...]}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fib: Option<FibExpect>,
    /// Pods ping: `all` of them each other, or `{from: POD, to: POD}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping: Option<PingExpect>,
    /// Every node's FIB equals the lab's model (WD-04), as after every case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<bool>,
    /// The traffic started in this case lost at most this many packets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<u64>,
    /// The time from `lab up` to every session Established, at most this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_within: Option<String>,
    /// The node's BGP daemon's resident memory grew by at most this many KiB since
    /// the case began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_growth: Option<RssExpect>,
    /// How `node` sees the best path to `prefix`: reflected, with `originator`'s
    /// router ID as ORIGINATOR_ID and a CLUSTER_LIST (RFC 4456).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reflected: Option<ReflectedExpect>,
    /// The capabilities `node` negotiated with `peer`, read from its own output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<CapsExpect>,
    /// What `node` says of its sessions (`info`) holds one of these words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<InfoExpect>,
    /// A command's output in a node has a line holding every one of these strings:
    /// `{node: x1, cmd: "exabgp-cli show adj-rib in extensive", line: [10.244.203.0/26]}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputExpect>,
    /// `node`'s sessions with `peer` have been Established for at least `min`, as
    /// `node` itself reports it: the session was not reset meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_for: Option<UpForExpect>,
    /// `node`'s sessions with `peer` are down (`up: false`), or were reset a moment
    /// ago (`up: reset`: down, or Established for 2 s at most), as `node` reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionExpect>,
    /// A fabric router advertises these prefixes to `to`, as it reads its own
    /// Adj-RIB-Out: a positive control that what a node must refuse was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertised: Option<AdvertisedExpect>,
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
    /// The routes of `has` are of this protocol (`static`, `bird`, ...).
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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// The route that changes (placeholders allowed). On a dual-stack cell a block's
    /// or a pod's placeholder (`{n1.block}`, `{pod.web}`) times its IPv6 twin too.
    pub prefix: String,
    /// Timed to its removal (true) or its appearance.
    #[serde(default)]
    pub deleted: bool,
    /// Every follower's kernel must have followed within this: one duration, or one
    /// per node speaker (`{speaker: 4s, bird: 7s, frr: 4s}`) where their timers differ.
    pub budget: Budget,
    /// And not before this: a route flushed too early is as wrong as one too late
    /// (a graceful restart's stale routes kept for the restart time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    /// The route must stay as it is: no follower may remove it (`deleted` must be
    /// true) for the budget after the act, as a graceful restart must keep it.
    #[serde(default)]
    pub steady: bool,
    /// Who must follow (`all`, `others:n1`, `n2,n3`); by default every other
    /// container whose daemon programs its kernel and runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<String>,
    /// What the timing is called in the report (default: the case's title).
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Budget {
    All(String),
    ByNode(std::collections::BTreeMap<String, String>),
}

impl Budget {
    /// The budget on a cell of `node`.
    pub fn on(&self, node: NodeSpeaker) -> Result<Duration, String> {
        match self {
            Budget::All(d) => duration(d),
            Budget::ByNode(m) => duration(
                m.get(node.as_str())
                    .ok_or_else(|| format!("time.budget: nothing for {}", node.as_str()))?,
            ),
        }
    }

    fn check(&self) -> Result<(), String> {
        for n in NodeSpeaker::ALL {
            self.on(n)?;
        }
        if let Budget::ByNode(m) = self {
            for k in m.keys() {
                k.parse::<NodeSpeaker>()?;
            }
        }
        Ok(())
    }
}

/// `2s`, `500ms`, `1.5s`.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(format!("{s:?} is not a duration: write 2s or 500ms"));
    };
    let v: f64 = n.trim().parse().map_err(|_| format!("{s:?} is not a duration"))?;
    if !(0.0..=3600.0).contains(&v) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(v * unit))
}

impl Step {
    /// Whether the step runs on `cell` (its `family`, if it names one).
    pub fn runs_on(&self, cell: &Cell) -> bool {
        self.family
            .as_ref()
            .is_none_or(|f| f.list().contains(&cell.family.as_str()))
            && (self.fabric.is_empty()
                || self
                    .fabric
                    .iter()
                    .any(|f| *f == cell.fabric.to_string() || f == cell.fabric.kind()))
    }

    /// What the step says, as written, for messages.
    pub fn describe(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn check(&self) -> Result<(), String> {
        let n = [
            self.pod_add.is_some(),
            self.pod_del.is_some(),
            self.route.is_some(),
            self.link.is_some(),
            self.pause.is_some(),
            self.unpause.is_some(),
            self.daemon.is_some(),
            self.cut_sessions.is_some(),
            self.uncut_sessions.is_some(),
            self.flap.is_some(),
            self.churn.is_some(),
            self.exec.is_some(),
            self.announce.is_some(),
            self.withdraw.is_some(),
            self.reconfigure.is_some(),
            self.restore.is_some(),
            self.traffic.is_some(),
            self.wait.is_some(),
            self.expect.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if n != 1 {
            return Err(format!(
                "a step holds exactly one of pod_add, pod_del, route, link, pause, unpause, daemon, cut_sessions, uncut_sessions, flap, churn, exec, announce, withdraw, reconfigure, restore, traffic, wait, expect; this one has {n}"
            ));
        }
        if let Some(w) = &self.wait {
            duration(w)?;
        }
        for f in self.family.iter().flat_map(Families::list) {
            f.parse::<Family>()?;
        }
        for f in &self.fabric {
            Fabric::check_name(f)?;
        }
        if let Some(r) = &self.route {
            if [r.add.is_some(), r.del.is_some(), r.replace.is_some()]
                .iter()
                .filter(|x| **x)
                .count()
                != 1
            {
                return Err("route: give one of add, del, replace".into());
            }
        }
        if let Some(t) = &self.time {
            t.budget.check()?;
            if t.steady && (!t.deleted || t.min.is_some()) {
                return Err("time: steady watches for a removal that must not come: deleted: true, no min".into());
            }
            if let Some(m) = &t.min {
                duration(m)?;
            }
            if self.expect.is_some() || self.wait.is_some() {
                return Err("time: goes on an action, not on expect or wait".into());
            }
        }
        if let Some(e) = &self.expect {
            if let Some(PingExpect::All(s)) = &e.ping {
                if s != "all" {
                    return Err(format!("expect ping: {s:?}: write all, or {{from: POD, to: POD}}"));
                }
            }
            if let Some(w) = &e.within {
                duration(w)?;
            }
            if let Some(w) = &e.up_within {
                duration(w)?;
            }
            let n = [
                e.sessions.is_some(),
                e.fib.is_some(),
                e.ping.is_some(),
                e.model.is_some(),
                e.loss.is_some(),
                e.up_within.is_some(),
                e.rss_growth.is_some(),
                e.reflected.is_some(),
                e.capabilities.is_some(),
                e.info.is_some(),
                e.output.is_some(),
                e.up_for.is_some(),
                e.session.is_some(),
                e.advertised.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if n != 1 {
                return Err(format!(
                    "expect: holds exactly one of sessions, fib, ping, model, loss, up_within, rss_growth, reflected, capabilities, info, output, up_for, session, advertised; this one has {n}"
                ));
            }
            if e.session.as_ref().is_some_and(|x| x.up == SessionState::Up(true)) {
                return Err("expect session: up is false or reset (`sessions: true` says all are up)".into());
            }
        }
        Ok(())
    }
}

/// Reads and checks one file of cases.
pub fn load(path: &Path) -> Result<SuiteFile, CaseError> {
    let text = std::fs::read_to_string(path).map_err(|source| CaseError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

pub fn parse(text: &str, path: &Path) -> Result<SuiteFile, CaseError> {
    let invalid = |msg: String| CaseError::Invalid {
        file: path.to_path_buf(),
        msg,
    };
    let mut suite: SuiteFile = serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    suite.file = path.to_path_buf();
    let mut ids = std::collections::HashSet::new();
    for (i, c) in suite.cases.iter().enumerate() {
        let at = |field: &str| format!("cases[{i}] ({}).{field}", c.id);
        if !c.id.starts_with(&format!("{}-", suite.family)) {
            return Err(invalid(format!(
                "{}: {} is not of family {}",
                at("id"),
                c.id,
                suite.family
            )));
        }
        if !ids.insert(c.id.clone()) {
            return Err(invalid(format!("{}: {} appears twice", at("id"), c.id)));
        }
        c.cells.check().map_err(|m| invalid(format!("{}: {m}", at("cells"))))?;
        for (j, s) in c.skip.iter().enumerate() {
            s.cells
                .check()
                .map_err(|m| invalid(format!("{}: {m}", at(&format!("skip[{j}]")))))?;
        }
        for (j, f) in c.findings.iter().enumerate() {
            let at = at(&format!("findings[{j}]"));
            f.cells.check().map_err(|m| invalid(format!("{at}: {m}")))?;
            if f.cells.node.is_empty() || f.cells.fabric.is_empty() || f.cells.family.is_empty() {
                return Err(invalid(format!(
                    "{at}: a finding names its node speakers, fabrics and families (node, fabric, family)"
                )));
            }
            if f.cells.node.iter().any(|n| n == "speaker") {
                return Err(invalid(format!(
                    "{at}: a finding about our speaker is a failure, not a finding: fix the speaker, or the case"
                )));
            }
            match f.step {
                At::Step(n) if n == 0 || n > c.steps.len() => {
                    return Err(invalid(format!("{at}.step: the case has steps 1 to {}", c.steps.len())))
                }
                At::Phase(Phase::Always) if c.always.is_empty() => {
                    return Err(invalid(format!("{at}.step: the case has no always steps")))
                }
                _ => {}
            }
            if f.message.list().iter().any(|m| m.trim_matches('*').trim().is_empty()) {
                return Err(invalid(format!(
                    "{at}.message: say what the failure says, not only `*`"
                )));
            }
        }
        for (j, s) in c.steps.iter().enumerate() {
            s.check()
                .map_err(|m| invalid(format!("{}: {m}", at(&format!("steps[{j}]")))))?;
        }
        for (j, s) in c.always.iter().enumerate() {
            s.check()
                .map_err(|m| invalid(format!("{}: {m}", at(&format!("always[{j}]")))))?;
        }
    }
    Ok(suite)
}

/// Every `*.yaml` file of a folder, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<SuiteFile>, CaseError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| CaseError::Read {
            file: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut suites: Vec<SuiteFile> = files.iter().map(|f| load(f)).collect::<Result<_, _>>()?;
    // The catalogue's order.
    let order = |f: &str| {
        ["SES", "RT", "DP", "WD", "GR", "RB"]
            .iter()
            .position(|x| *x == f)
            .unwrap_or(99)
    };
    suites.sort_by_key(|s| order(&s.family));
    Ok(suites)
}

impl Case {
    /// The findings about `cell`.
    pub fn findings_on(&self, cell: &Cell) -> impl Iterator<Item = &Finding> {
        let cell = *cell;
        self.findings.iter().filter(move |f| f.cells.matches_any_fabric(&cell))
    }

    /// What explains a failure on `cell` with these reasons: the findings matching
    /// them, when every thing wrong that each says is matched by one (`None`: it is
    /// unexplained). Also the findings about the cell that matched nothing.
    pub fn explain<'a>(&'a self, cell: &Cell, reasons: &[Reason]) -> (Option<Vec<&'a Finding>>, Vec<&'a Finding>) {
        let mut used: Vec<&Finding> = Vec::new();
        let mut all_matched = !reasons.is_empty();
        for r in reasons {
            for item in items(&r.message) {
                let found = self.findings_on(cell).find(|f| {
                    let step = match (f.step, r.at) {
                        (At::Phase(Phase::Always), At::Phase(Phase::Always)) => true,
                        (a, b) => a == b,
                    };
                    step && f.message.list().iter().any(|p| glob(p, item))
                });
                match found {
                    Some(f) => {
                        if !used.iter().any(|u| std::ptr::eq(*u, f)) {
                            used.push(f);
                        }
                    }
                    None => all_matched = false,
                }
            }
        }
        let unused = self
            .findings_on(cell)
            .filter(|f| !used.iter().any(|u| std::ptr::eq(*u, *f)))
            .collect();
        (all_matched.then_some(used), unused)
    }

    /// Whether the case runs on `cell`: `Err` with why when it is left out there.
    pub fn applies(&self, cell: &Cell) -> Result<bool, String> {
        if !self.cells.matches(cell) {
            return Ok(false);
        }
        match self.skip.iter().find(|s| s.cells.matches_any_fabric(cell)) {
            Some(s) => Err(s.why.clone()),
            None => Ok(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<SuiteFile, CaseError> {
        parse(s, Path::new("suites/x.yaml"))
    }

    #[test]
    fn a_case_reads_and_applies_to_its_cells() {
        let s = parse_str(
            r#"
family: WD
title: Withdrawal
cases:
  - id: WD-01
    title: pod delete
    cells: {fabric: [tor]}
    skip: [{node: [frr], why: "FRR has no borrowed IPs"}]
    steps:
      - pod_add: {node: n1, name: wd01, ip: borrowed}
      - pod_del: {node: n1, name: wd01}
        time: {prefix: "{pod.wd01}/32", deleted: true, budget: 1s}
      - expect: {fib: {nodes: "others:n1", lacks: ["{pod.wd01}/32"]}, within: 2s}
"#,
        )
        .unwrap();
        let c = &s.cases[0];
        let cell = |node, fabric: &str| Cell {
            node,
            fabric: fabric.parse().unwrap(),
            family: Family::V4,
        };
        assert_eq!(c.applies(&cell(NodeSpeaker::Speaker, "tor/bird")), Ok(true));
        assert_eq!(c.applies(&cell(NodeSpeaker::Speaker, "mesh")), Ok(false));
        assert!(c.applies(&cell(NodeSpeaker::Frr, "tor/frr")).is_err());
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn only_cases_that_name_it_run_on_the_dual_tor_rack() {
        let s = parse_str(
            r#"
family: RT
title: Routes
cases:
  - id: RT-01
    title: everywhere
    skip: [{node: [frr], why: "not FRR"}]
    steps: [{wait: 1s}]
  - id: RT-04
    title: ECMP
    cells: {fabric: [dualtor]}
    skip: [{node: [frr], why: "not FRR"}]
    steps:
      - wait: 1s
      - expect: {fib: {has: ["{n1.block6}"], next_hops: 2}}
        family: dual
"#,
        )
        .unwrap();
        let cell = |node, fabric: &str, family| Cell {
            node,
            fabric: fabric.parse().unwrap(),
            family,
        };
        let (everywhere, ecmp) = (&s.cases[0], &s.cases[1]);
        let dual_tor = cell(NodeSpeaker::Speaker, "dualtor/frr", Family::V4);
        assert_eq!(everywhere.applies(&dual_tor), Ok(false));
        assert_eq!(
            everywhere.applies(&cell(NodeSpeaker::Speaker, "tor/frr", Family::V4)),
            Ok(true)
        );
        assert_eq!(ecmp.applies(&dual_tor), Ok(true));
        assert_eq!(
            ecmp.applies(&cell(NodeSpeaker::Speaker, "tor/frr", Family::V4)),
            Ok(false)
        );
        // A skip that names no fabric holds on the opt-in fabric too.
        assert!(ecmp
            .applies(&cell(NodeSpeaker::Frr, "dualtor/bird", Family::V4))
            .is_err());
        let v6 = &ecmp.steps[1];
        assert!(!v6.runs_on(&dual_tor));
        assert!(v6.runs_on(&cell(NodeSpeaker::Speaker, "dualtor/frr", Family::Dual)));
        assert!(ecmp.steps[0].runs_on(&dual_tor));
        let e = parse_str(
            "family: RT\ntitle: t\ncases:\n  - id: RT-04\n    title: x\n    steps: [{wait: 1s, family: v6only}]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("v6only"), "{e}");
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse_str("family: WD\ntitle: t\ncases:\n  - id: RT-01\n    title: x\n    steps: []\n").unwrap_err();
        assert!(
            e.to_string().contains("cases[0] (RT-01).id: RT-01 is not of family WD"),
            "{e}"
        );
        let e = parse_str(
            "family: WD\ntitle: t\ncases:\n  - id: WD-01\n    title: x\n    steps: [{wait: 2s, pause: n1}]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("steps[0]: a step holds exactly one"), "{e}");
        let e = parse_str("family: WD\ntitle: t\ncases:\n  - id: WD-01\n    title: x\n    steps: [{wiat: 2s}]\n")
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `wiat`"), "{e}");
        assert!(e.to_string().contains("line"), "{e}");
        let e = parse_str(
            "family: WD\ntitle: t\ncases:\n  - id: WD-01\n    title: x\n    cells: {fabric: [ring]}\n    steps: []\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown fabric"), "{e}");
    }
}
