//! A case's steps: each one action on the lab (with, where it changes a route, how
//! the change is timed) or one expectation retried until it holds, and the cells it
//! runs on. Case files write a step as a map with one of many optional fields
//! (`RawStep`); it is read into a `Step` once, when the file is read, and a step that
//! holds none or two of them, or a value that cannot be, is an error then.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::render::{Cell, Fabric, Family, NodeSpeaker, Tweak};

/// One step of a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawStep")]
pub struct Step {
    pub what: What,
    /// It runs only on cells of these families (all when empty).
    pub families: Vec<Family>,
    /// It runs only on cells of these fabrics (`tor`, `rr/frr`; all when empty).
    pub fabrics: Vec<String>,
    /// As the case file writes it, for messages.
    pub text: String,
}

#[derive(Debug, Clone)]
pub enum What {
    /// An action, and how the route change it makes is timed, if it is.
    Act(Action, Option<Timing>),
    Expect(Expectation),
}

/// What a step does to the lab.
#[derive(Debug, Clone)]
pub enum Action {
    PodAdd(PodAdd),
    PodDel(PodDel),
    Route(RouteChange),
    Link(LinkAct),
    Impair(ImpairAct),
    Pause(String),
    Unpause(String),
    Daemon(DaemonAct),
    CutSessions(String),
    UncutSessions(String),
    Flap(FlapAct),
    Churn(ChurnAct),
    Exec(ExecAct),
    Announce(PrefixAct),
    Withdraw(PrefixAct),
    Reconfigure { node: String, tweaks: Vec<Tweak> },
    Restore(String),
    ServiceAdd(ServiceAdd),
    ServiceDel(String),
    ServiceReady(ServiceReady),
    Traffic(Traffic),
    Wait(Duration),
}

/// `ip route add|del|replace` of one route or several at once in a node.
#[derive(Debug, Clone)]
pub struct RouteChange {
    pub node: String,
    /// `add`, `del` or `replace`.
    pub verb: &'static str,
    pub routes: Vec<String>,
}

/// What must hold, and for how long it may be retried (`None`: the check's default).
#[derive(Debug, Clone)]
pub struct Expectation {
    pub within: Option<Duration>,
    pub check: Check,
}

/// One thing looked at.
#[derive(Debug, Clone)]
pub enum Check {
    Sessions(SessionsExpect),
    Fib(FibExpect),
    Ping(PingExpect),
    /// Every FIB and RIB as the oracle has it (WD-04).
    Model,
    /// The case's traffic lost at most this many packets (connections).
    Loss(u64),
    /// The case's connections to a service went at most this long without an answer.
    Outage(Duration),
    /// Every session Established within this of `lab up`.
    UpWithin(Duration),
    RssGrowth(RssExpect),
    Reflected(ReflectedExpect),
    Communities(CommunitiesExpect),
    Capabilities(CapsExpect),
    Info(InfoExpect),
    Output(OutputExpect),
    UpFor(UpForExpect),
    Session(SessionExpect),
    Advertised(AdvertisedExpect),
    Connect(ConnectExpect),
    Learned(LearnedExpect),
}

impl Check {
    /// Whether it asks a daemon what it says of itself (retried every 300 ms).
    pub fn daemon_view(&self) -> bool {
        matches!(
            self,
            Check::Reflected(_)
                | Check::Communities(_)
                | Check::Capabilities(_)
                | Check::Info(_)
                | Check::Output(_)
                | Check::UpFor(_)
                | Check::Session(_)
                | Check::Advertised(_)
        )
    }
}

impl Action {
    /// Whether it may reset a BGP session on purpose: it stops, pauses or
    /// reconfigures a daemon, takes a link or a session down, sends a peer something
    /// from x1, or floods it with routes.
    pub fn may_reset_sessions(&self) -> bool {
        matches!(
            self,
            Action::Link(_)
                | Action::Impair(_)
                | Action::Pause(_)
                | Action::Unpause(_)
                | Action::Daemon(_)
                | Action::CutSessions(_)
                | Action::UncutSessions(_)
                | Action::Flap(_)
                | Action::Exec(_)
                | Action::Reconfigure { .. }
                | Action::Restore(_)
                | Action::Churn(_)
        )
    }
}

impl Step {
    /// Whether the step runs on `cell` (its families and fabrics, if it names them).
    pub fn runs_on(&self, cell: &Cell) -> bool {
        (self.families.is_empty() || self.families.contains(&cell.family))
            && (self.fabrics.is_empty()
                || self
                    .fabrics
                    .iter()
                    .any(|f| *f == cell.fabric.to_string() || f == cell.fabric.shape()))
    }

    /// What the step says, as written, for messages.
    pub fn describe(&self) -> String {
        self.text.clone()
    }

    /// The step with every node it names passed through `f` (`{peer}` resolved).
    pub fn map_nodes(&self, f: impl Fn(&str) -> String) -> Step {
        let mut s = self.clone();
        let r = |n: &mut String| *n = f(n);
        match &mut s.what {
            What::Act(a, _) => match a {
                Action::PodAdd(x) => r(&mut x.node),
                Action::PodDel(x) => r(&mut x.node),
                Action::Route(x) => r(&mut x.node),
                Action::Link(x) => r(&mut x.node),
                Action::Impair(x) => r(&mut x.node),
                Action::Daemon(x) => r(&mut x.node),
                Action::Flap(x) => r(&mut x.node),
                Action::Churn(x) => r(&mut x.node),
                Action::Exec(x) => r(&mut x.node),
                Action::Announce(x) | Action::Withdraw(x) => r(&mut x.node),
                Action::Reconfigure { node, .. } => r(node),
                Action::Pause(n)
                | Action::Unpause(n)
                | Action::CutSessions(n)
                | Action::UncutSessions(n)
                | Action::Restore(n) => r(n),
                Action::ServiceAdd(x) => {
                    for e in x.endpoints.iter_mut().chain(x.not_ready.iter_mut()) {
                        r(e)
                    }
                }
                Action::ServiceReady(x) => {
                    for e in &mut x.pods {
                        r(e)
                    }
                }
                Action::ServiceDel(_) | Action::Traffic(_) | Action::Wait(_) => {}
            },
            What::Expect(e) => match &mut e.check {
                Check::Capabilities(x) => {
                    r(&mut x.node);
                    r(&mut x.peer);
                }
                Check::Info(x) => {
                    r(&mut x.node);
                    if let Some(p) = x.peer.as_mut() {
                        r(p);
                    }
                }
                Check::Output(x) => r(&mut x.node),
                Check::Communities(x) => r(&mut x.node),
                Check::UpFor(x) => {
                    r(&mut x.node);
                    r(&mut x.peer);
                }
                Check::Session(x) => {
                    r(&mut x.node);
                    r(&mut x.peer);
                }
                Check::Advertised(x) => {
                    r(&mut x.node);
                    r(&mut x.to);
                }
                _ => {}
            },
        }
        s
    }

    /// The node an action happens in (none for traffic, waits and expectations).
    pub fn action_node(&self) -> Option<&str> {
        let What::Act(a, _) = &self.what else { return None };
        Some(match a {
            Action::PodAdd(x) => &x.node,
            Action::PodDel(x) => &x.node,
            Action::Route(x) => &x.node,
            Action::Link(x) => &x.node,
            Action::Impair(x) => &x.node,
            Action::Daemon(x) => &x.node,
            Action::Flap(x) => &x.node,
            Action::Churn(x) => &x.node,
            Action::Exec(x) => &x.node,
            Action::Announce(x) | Action::Withdraw(x) => &x.node,
            Action::Reconfigure { node, .. } => node,
            Action::Pause(n)
            | Action::Unpause(n)
            | Action::CutSessions(n)
            | Action::UncutSessions(n)
            | Action::Restore(n) => n,
            Action::ServiceAdd(_)
            | Action::ServiceDel(_)
            | Action::ServiceReady(_)
            | Action::Traffic(_)
            | Action::Wait(_) => return None,
        })
    }
}

const ACTIONS: &str = "pod_add, pod_del, route, link, impair, pause, unpause, daemon, cut_sessions, uncut_sessions, flap, churn, exec, announce, withdraw, reconfigure, restore, service_add, service_del, service_ready, traffic, wait, expect";
const CHECKS: &str =
    "sessions, fib, ping, model, loss, up_within, rss_growth, reflected, communities, capabilities, info, output, up_for, session, advertised, connect, learned";

/// The one value among `found`, or what is wrong with them.
fn exactly_one<T>(found: Vec<Option<T>>, what: &str) -> Result<T, String> {
    let mut found: Vec<T> = found.into_iter().flatten().collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(format!("{what}; this one has {n}")),
    }
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(raw: RawStep) -> Result<Step, String> {
        let text = serde_json::to_string(&raw).unwrap_or_default();
        let families = raw
            .family
            .as_ref()
            .map(|f| {
                f.list()
                    .iter()
                    .map(|f| f.parse::<Family>())
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        for f in &raw.fabric {
            Fabric::check_name(f)?;
        }
        let route = raw
            .route
            .map(|r| {
                let (verb, routes) = match (r.add, r.del, r.replace) {
                    (Some(a), None, None) => ("add", a),
                    (None, Some(d), None) => ("del", d),
                    (None, None, Some(x)) => ("replace", x),
                    _ => return Err("route: give one of add, del, replace".to_string()),
                };
                Ok(Action::Route(RouteChange {
                    node: r.node,
                    verb,
                    routes: routes.list().iter().map(|s| s.to_string()).collect(),
                }))
            })
            .transpose()?;
        let wait = raw.wait.as_deref().map(duration).transpose()?.map(Action::Wait);
        let expect = raw.expect.map(Expectation::try_from).transpose()?;
        let act = exactly_one(
            vec![
                raw.pod_add.map(Action::PodAdd),
                raw.pod_del.map(Action::PodDel),
                route,
                raw.link.map(Action::Link),
                raw.impair.map(|x| x.check().map(|()| Action::Impair(x))).transpose()?,
                raw.pause.map(Action::Pause),
                raw.unpause.map(Action::Unpause),
                raw.daemon.map(Action::Daemon),
                raw.cut_sessions.map(Action::CutSessions),
                raw.uncut_sessions.map(Action::UncutSessions),
                raw.flap.map(Action::Flap),
                raw.churn.map(Action::Churn),
                raw.exec.map(Action::Exec),
                raw.announce.map(Action::Announce),
                raw.withdraw.map(Action::Withdraw),
                raw.reconfigure.map(|x| Action::Reconfigure {
                    node: x.node,
                    tweaks: x.change.list(),
                }),
                raw.restore.map(Action::Restore),
                raw.service_add
                    .map(|x| x.check().map(|()| Action::ServiceAdd(x)))
                    .transpose()?,
                raw.service_del.map(Action::ServiceDel),
                raw.service_ready.map(Action::ServiceReady),
                raw.traffic
                    .map(|t| match (&t.from, &t.to, &t.service) {
                        (Some(_), Some(_), None) | (None, None, Some(_)) => Ok(Action::Traffic(t)),
                        _ => Err("traffic: {from: POD, to: POD} or {service: NAME}".to_string()),
                    })
                    .transpose()?,
                wait,
            ]
            .into_iter()
            .map(|a| a.map(Ok))
            .chain([expect.map(Err)])
            .collect(),
            &format!("a step holds exactly one of {ACTIONS}"),
        )?;
        let what = match (act, raw.time) {
            (Ok(Action::ServiceAdd(_) | Action::ServiceDel(_) | Action::ServiceReady(_)), Some(_)) => {
                return Err("time: goes on the change that moves a service route (a pod, a daemon), not on service_add, service_del or service_ready (their routes change in no node's kernel: check them with `learned` and `within`)".into())
            }
            (Ok(a), Some(t)) if !matches!(a, Action::Wait(_) | Action::Traffic(_)) => {
                t.check()?;
                What::Act(a, Some(t))
            }
            (Ok(a), None) => What::Act(a, None),
            (_, Some(_)) => return Err("time: goes on an action, not on expect, wait or traffic".into()),
            (Err(e), None) => What::Expect(e),
        };
        Ok(Step {
            what,
            families,
            fabrics: raw.fabric,
            text,
        })
    }
}

impl TryFrom<RawExpect> for Expectation {
    type Error = String;

    fn try_from(e: RawExpect) -> Result<Expectation, String> {
        let within = e.within.as_deref().map(duration).transpose()?;
        let model = match e.model {
            Some(true) => Some(Check::Model),
            Some(false) => return Err("expect model: false means nothing; leave it out".into()),
            None => None,
        };
        if let Some(PingExpect::All(s)) = &e.ping {
            if s != "all" {
                return Err(format!("expect ping: {s:?}: write all, or {{from: POD, to: POD}}"));
            }
        }
        if matches!(e.sessions, Some(SessionsExpect::All(false))) {
            return Err("expect sessions: false means nothing; use {down: [NODE]}".into());
        }
        if e.session.as_ref().is_some_and(|x| x.up == SessionState::Up(true)) {
            return Err("expect session: up is false or reset (`sessions: true` says all are up)".into());
        }
        let up_within = e.up_within.as_deref().map(duration).transpose()?;
        let outage = e.outage.as_deref().map(duration).transpose()?;
        let check = exactly_one(
            vec![
                e.sessions.map(Check::Sessions),
                e.fib.map(Check::Fib),
                e.ping.map(Check::Ping),
                model,
                e.loss.map(Check::Loss),
                outage.map(Check::Outage),
                up_within.map(Check::UpWithin),
                e.rss_growth.map(Check::RssGrowth),
                e.reflected.map(Check::Reflected),
                e.communities.map(Check::Communities),
                e.capabilities.map(Check::Capabilities),
                e.info.map(Check::Info),
                e.output.map(Check::Output),
                e.up_for.map(Check::UpFor),
                e.session.map(Check::Session),
                e.advertised.map(Check::Advertised),
                e.connect.map(Check::Connect),
                e.learned.map(Check::Learned),
            ],
            &format!("expect: holds exactly one of {CHECKS}"),
        )?;
        if let Check::UpFor(u) = &check {
            for d in u.min.iter().chain(&u.max) {
                duration(d)?;
            }
        }
        Ok(Expectation { within, check })
    }
}

impl Timing {
    fn check(&self) -> Result<(), String> {
        self.budget.check()?;
        if self.steady && (!self.deleted || self.min.is_some()) {
            return Err("time: steady watches for a removal that must not come: deleted: true, no min".into());
        }
        if let Some(m) = &self.min {
            duration(m)?;
        }
        Ok(())
    }
}

/// A step as a case file writes it: one action or expectation among optional fields,
/// and what modifies it. Read into a `Step` once, and checked then.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
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

/// `{node: n1, name: a}`: the pod's routes go first, then its veth;
/// `{node: n1, name: a, teardown: veth}`: its veth at once, as a CNI plugin deletes a
/// pod (the IPv4 /32 leaves the kernel without a route event).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PodDel {
    pub node: String,
    pub name: String,
    #[serde(default)]
    pub teardown: crate::pods::Teardown,
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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImpairAct {
    pub node: String,
    #[serde(default = "eth1")]
    pub iface: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    #[serde(default)]
    pub clear: bool,
}

impl ImpairAct {
    pub fn impairment(&self) -> crate::impair::Impairment {
        crate::impair::Impairment {
            loss: self.loss,
            delay_ms: self.delay,
            jitter_ms: None,
            rate_kbit: self.rate,
        }
    }

    fn check(&self) -> Result<(), String> {
        match (self.clear, self.impairment() == crate::impair::Impairment::default()) {
            (true, false) => Err("impair: clear: true takes nothing else".into()),
            (true, true) => Ok(()),
            (false, _) => self.impairment().check().map_err(|e| format!("impair: {e}")),
        }
    }
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
    One(Tweak),
    Many(Vec<Tweak>),
}

impl Tweaks {
    pub fn list(&self) -> Vec<Tweak> {
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
    /// A ping every millisecond from this pod to `to`.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// Or TCP connections to this service (made by the case) from the client outside
    /// the cluster, one every 20 ms.
    #[serde(default)]
    pub service: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAdd {
    pub name: String,
    /// Host number in the CIDR (198.51.100.N and fd00:198::N for a LoadBalancer).
    pub ip: u16,
    #[serde(default = "port80")]
    pub port: u16,
    #[serde(rename = "type", default = "load_balancer")]
    pub service_type: String,
    #[serde(default = "cluster")]
    pub policy: String,
    pub endpoints: Vec<String>,
    /// Endpoints among them that are not ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceReady {
    pub name: String,
    pub pods: Vec<String>,
    pub ready: bool,
}

fn port80() -> u16 {
    80
}
fn load_balancer() -> String {
    "LoadBalancer".into()
}
fn cluster() -> String {
    "Cluster".into()
}

impl ServiceAdd {
    fn check(&self) -> Result<(), String> {
        let kind: crate::services::Type = self.service_type.parse()?;
        if kind == crate::services::Type::External {
            return Err("service_add: type ClusterIP or LoadBalancer (the cells configure those CIDRs)".into());
        }
        self.policy.parse::<crate::services::Policy>()?;
        if self.ip == 0 || self.ip > 254 {
            return Err(format!("service_add: ip {}: a host number, 1 to 254", self.ip));
        }
        Ok(())
    }
}

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
