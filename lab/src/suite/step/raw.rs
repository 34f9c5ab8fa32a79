//! A step and an expectation as a case file writes them: one action or check among
//! optional fields, and what modifies it. `super` reads them into a `Step` once.

use serde::{Deserialize, Serialize};

use super::*;

/// A step as a case file writes it: one action or expectation among optional fields,
/// and what modifies it. Read into a `Step` once, and checked then.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    /// A pod: `{node: n1, name: web, ip: borrowed}` (`ip`: `borrowed` from no block,
    /// `borrowed:n2` from n2's block, the next free address of the node's own block
    /// when absent, or an address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_add: Option<PodAdd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_del: Option<PodDel>,
    /// `ip route` in a node: `{node: n1, add: "blackhole {n1.block}"}` (or del, replace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteAct>,
    /// A link end down or up: `{node: n1, iface: eth1, up: false}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkAct>,
    /// What leaves a node's interface impaired, as `lab impair` does: `{node: n1,
    /// iface: eth1, loss: 30}` (percent dropped; `rate` in kbit/s, `delay` in ms where
    /// the kernel has netem), or `{node: n1, iface: eth1, clear: true}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impair: Option<ImpairAct>,
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
    /// A Kubernetes service on pods of the case: `{name: web, ip: 10, policy: Local,
    /// endpoints: [a, b]}` (`ip`: the host number in the service CIDR of its type, of
    /// each family of the cell; `type`: LoadBalancer by default, or ClusterIP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_add: Option<ServiceAdd>,
    /// The service of that name deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_del: Option<String>,
    /// Endpoints of a service of the case made ready or not, as a readiness probe
    /// that starts or stops failing: `{name: web, pods: [a], ready: false}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_ready: Option<ServiceReady>,
    /// A continuous ping between pods, for the loss it counts: `{from: POD, to: POD}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    /// A pause in the case: `2s`, `500ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<RawExpect>,
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

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
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
    /// The connections to a service started in this case went at most this long
    /// without an answer (`1s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outage: Option<String>,
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
    /// The standard and large communities on `node`'s best path to `prefix`, as
    /// the daemon shows them: every one of `has` there, none of `lacks` (and a
    /// path to `prefix` in either case).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub communities: Option<CommunitiesExpect>,
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
    /// TCP connections from the cell's outside client to a service, as it counts who
    /// answered: `{service: web, by: [a, b], each: true}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectExpect>,
    /// The fabric's routers learned a service's IP from exactly these nodes, read from
    /// their own RIBs: `{service: web, from: "n1,n3"}` (`all`: every node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learned: Option<LearnedExpect>,
}
